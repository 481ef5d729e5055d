//! The client side: typed event emitters (used by handlers), the `Event` enum and `Client`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::docs::{doc, method_doc};
use crate::names;
use crate::spec::Spec;

pub(super) fn event_emitters(spec: &Spec) -> TokenStream {
    let decls = spec.events.iter().map(|e| {
        let f = format_ident!("{}", names::snake(&e.name));
        let data = format_ident!("{}", e.data);
        let d = doc(&format!("Emits `{}`: {}", e.name, e.description));
        quote! {
            #d
            fn #f(&self, data: &types::#data);
        }
    });
    let fns = spec.events.iter().map(|e| {
        let f = format_ident!("{}", names::snake(&e.name));
        let data = format_ident!("{}", e.data);
        let konst = format_ident!("{}", names::shouty(&e.name));
        quote! {
            fn #f(&self, data: &types::#data) {
                self.emit(events::#konst, data)
            }
        }
    });
    // A trait: the emitter is defined in `flynn-wire`, so this crate cannot add inherent methods.
    quote! {
        /// Typed emitters, one per event type (`use flynn_protocol::EmitEvents as _;`).
        pub trait EmitEvents {
            #(#decls)*
        }
        impl EmitEvents for crate::wire::EventEmitter {
            #(#fns)*
        }
    }
}

pub(super) fn event_enum(spec: &Spec) -> TokenStream {
    let variants = spec.events.iter().map(|e| {
        let ident = format_ident!("{}", names::pascal(&e.name));
        let data = format_ident!("{}", e.data);
        let d = doc(&format!("`{}`", e.name));
        quote! { #d #ident(types::#data) }
    });
    let decode = spec.events.iter().map(|e| {
        let ident = format_ident!("{}", names::pascal(&e.name));
        let konst = format_ident!("{}", names::shouty(&e.name));
        quote! { events::#konst => Self::#ident(::serde_json::from_value(data)?) }
    });
    let names_ = spec.events.iter().map(|e| {
        let ident = format_ident!("{}", names::pascal(&e.name));
        let konst = format_ident!("{}", names::shouty(&e.name));
        quote! { Self::#ident(_) => events::#konst }
    });
    quote! {
        /// A received event, decoded by name. Unknown event names are kept, not rejected, so an
        /// older client survives a newer server.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            #(#variants,)*
            /// An event this version of the spec does not know.
            Unknown { event: String, data: ::serde_json::Value },
        }

        impl Event {
            /// Decodes `data` according to the event name.
            pub fn decode(event: &str, data: ::serde_json::Value) -> ::core::result::Result<Self, ::serde_json::Error> {
                Ok(match event {
                    #(#decode,)*
                    other => Self::Unknown { event: other.to_owned(), data },
                })
            }

            /// The wire name.
            pub fn name(&self) -> &str {
                match self {
                    #(#names_,)*
                    Self::Unknown { event, .. } => event,
                }
            }
        }
    }
}

pub(super) fn client(spec: &Spec) -> TokenStream {
    let fns = spec.methods.iter().map(|m| {
        let f = format_ident!("{}", names::snake(&m.name));
        let params = format_ident!("{}", m.params_type());
        let result = format_ident!("{}", m.result);
        let konst = format_ident!("{}", names::shouty(&m.name));
        let d = doc(&method_doc(m));
        let plain = quote! {
            #d
            pub async fn #f(&self, params: types::#params) -> ::core::result::Result<types::#result, crate::wire::ClientError> {
                self.transport.start(methods::#konst, crate::wire::to_params(&params)?).await?.finish().await
            }
        };
        if m.events.is_empty() {
            plain
        } else {
            let fs = format_ident!("{}_streaming", names::snake(&m.name));
            let ds = doc(&format!("`{}` with its events: read them with `next_event`, then `finish`.", m.name));
            quote! {
                #plain
                #ds
                pub async fn #fs(&self, params: types::#params) -> ::core::result::Result<crate::wire::Streaming<types::#result>, crate::wire::ClientError> {
                    Ok(self.transport.start(methods::#konst, crate::wire::to_params(&params)?).await?.streaming())
                }
            }
        }
    });
    quote! {
        /// A typed client over any `crate::wire::Transport` (a WebSocket one ships with the
        /// `ws-client` feature).
        #[derive(Debug, Clone)]
        pub struct Client<T> {
            transport: T,
        }

        impl<T: crate::wire::Transport> Client<T> {
            pub fn new(transport: T) -> Self {
                Self { transport }
            }

            /// The transport, for raw calls.
            pub fn transport(&self) -> &T {
                &self.transport
            }

            #(#fns)*
        }
    }
}
