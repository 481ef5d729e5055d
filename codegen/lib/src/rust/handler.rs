//! The gateway side: one handler trait per tag, `dispatch`, and the `for_each_*` macros.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::docs::{doc, method_doc};
use crate::names;
use crate::spec::{Method, Spec, TagDef};

/// `for_each_method!(m)` calls `m! { (fn_name, "wire.name", Params, Result), ... }`,
/// `for_each_tag!(m)` calls `m! { (TraitName, "tag", [ (fn_name, ...), ... ]), ... }` (the same
/// method tuples, grouped by handler trait) and `for_each_event!(m)` calls
/// `m! { (fn_name, "wire_name", Data), ... }`, so tests and middleware can cover every method,
/// handler trait and event without hand-kept lists.
pub(super) fn enumerators(spec: &Spec) -> TokenStream {
    let method_tuple = |m: &Method| {
        let f = format_ident!("{}", names::snake(&m.name));
        let name = &m.name;
        let params = format_ident!("{}", m.params_type());
        let result = format_ident!("{}", m.result);
        quote! { (#f, #name, #params, #result) }
    };
    let methods = spec.methods.iter().map(method_tuple);
    let tags = spec.tags.iter().map(|tag| {
        let trait_ = trait_ident(&tag.name);
        let name = &tag.name;
        let methods = spec.tag_methods(&tag.name).map(method_tuple);
        quote! { (#trait_, #name, [#(#methods),*]) }
    });
    let events = spec.events.iter().map(|e| {
        let f = format_ident!("{}", names::snake(&e.name));
        let name = &e.name;
        let data = format_ident!("{}", e.data);
        quote! { (#f, #name, #data) }
    });
    quote! {
        /// Calls the given macro with `(fn_name, "wire.name", ParamsType, ResultType)` for every
        /// method; the types are in `flynn_protocol::types`.
        #[macro_export]
        macro_rules! for_each_method {
            ($callback:ident) => {
                $callback! { #(#methods),* }
            };
        }

        /// Calls the given macro with `(TraitName, "tag", [(fn_name, "wire.name", ParamsType,
        /// ResultType), ...])` for every handler trait (one per tag), its methods in spec order.
        #[macro_export]
        macro_rules! for_each_tag {
            ($callback:ident) => {
                $callback! { #(#tags),* }
            };
        }

        /// Calls the given macro with `(fn_name, "wire_name", DataType)` for every event.
        #[macro_export]
        macro_rules! for_each_event {
            ($callback:ident) => {
                $callback! { #(#events),* }
            };
        }
    }
}

/// The handler trait of a tag: `insights` -> `InsightsMethods`.
fn trait_ident(tag: &str) -> proc_macro2::Ident {
    format_ident!("{}Methods", names::pascal(tag))
}

/// `HandlerBase`, one `<Tag>Methods` trait per tag, and `Handler`, their combination with a
/// blanket impl, so an implementation writes one impl block per trait and never names
/// `Handler` itself.
pub(super) fn handler_traits(spec: &Spec) -> TokenStream {
    let tag_traits = spec.tags.iter().map(|tag| tag_trait(spec, tag));
    let idents: Vec<_> = spec.tags.iter().map(|t| trait_ident(&t.name)).collect();
    let list = spec
        .tags
        .iter()
        .map(|t| format!("`{}Methods`", names::pascal(&t.name)))
        .collect::<Vec<_>>()
        .join(", ");
    let handler_doc = doc(&format!(
        "The whole gateway side of the protocol: [`HandlerBase`] and every tag's trait ({list}).\n\n\
         Implemented automatically for every type that implements them all: implement\n\
         `HandlerBase` and one `<Tag>Methods` per tag, then pass the value to [`dispatch`].\n\
         The traits have no default bodies, so adding a method to the spec fails the build of\n\
         every implementation until its tag's trait implements it."
    ));
    quote! {
        /// What every handler trait builds on: the per-connection state and the two access checks
        /// [`dispatch`] makes before any method runs.
        pub trait HandlerBase: Send + Sync {
            /// Per-connection state handed to every call (identity, attached session, ...).
            type Connection: Send + Sync + 'static;
            /// The scopes the connection's credential holds: `dispatch` refuses a method whose
            /// `x-scope` is not among them (ScopeRequired) before its params are read.
            fn granted_scopes(&self, connection: &Self::Connection) -> Scopes;
            /// Whether the connection may use `session_id` (a credential limited to some
            /// sessions): `dispatch` refuses a call naming another one (ScopeRequired).
            fn session_allowed(&self, connection: &Self::Connection, session_id: &str) -> bool;
        }
        #(#tag_traits)*
        #handler_doc
        pub trait Handler: HandlerBase #(+ #idents)* {}
        impl<H: HandlerBase #(+ #idents)* + ?Sized> Handler for H {}
    }
}

/// One tag's trait: its methods, each returning a `Reply`.
fn tag_trait(spec: &Spec, tag: &TagDef) -> TokenStream {
    let ident = trait_ident(&tag.name);
    let names_ = spec
        .tag_methods(&tag.name)
        .map(|m| format!("`{}`", m.name))
        .collect::<Vec<_>>()
        .join(", ");
    let d = doc(&format!(
        "Tag `{}`: {}\n\nMethods: {names_}.\n\n\
         Each returns a `Reply`: ready at once (answered from memory, no allocation) or later\n\
         (a future).",
        tag.name, tag.description
    ));
    let fns = spec.tag_methods(&tag.name).map(|m| {
        let f = format_ident!("{}", names::snake(&m.name));
        let params = format_ident!("{}", m.params_type());
        let result = format_ident!("{}", m.result);
        let d = doc(&method_doc(m));
        quote! {
            #d
            fn #f(
                &self,
                call: crate::wire::Call<Self::Connection>,
                params: types::#params,
            ) -> crate::wire::Reply<'_, types::#result>;
        }
    });
    quote! {
        #d
        pub trait #ident: HandlerBase {
            #(#fns)*
        }
    }
}

/// Param names that name a session, checked with `HandlerBase::session_allowed`.
const SESSION_PARAMS: [&str; 2] = ["sessionId", "session"];

pub(super) fn dispatch_fn(spec: &Spec) -> TokenStream {
    let arms = spec.methods.iter().map(|m| {
        let variant = format_ident!("{}", names::pascal(&m.name));
        let f = format_ident!("{}", names::snake(&m.name));
        let trait_ = trait_ident(&m.tag);
        let params = format_ident!("{}", m.params_type());
        // Params that name a session (`sessionId`, and `agent.send`'s deprecated `session`):
        // the connection must be allowed that session.
        let session_checks = m
            .params
            .iter()
            .filter(|p| SESSION_PARAMS.contains(&p.name.as_str()))
            .map(|p| {
                let field = format_ident!("{}", names::snake(&p.name));
                let name = &p.name;
                let value = if p.required {
                    quote! { Some(params.#field.as_str()) }
                } else {
                    quote! { params.#field.as_deref() }
                };
                quote! {
                    if let Some(session_id) = #value
                        && !handler.session_allowed(&call.connection, session_id)
                    {
                        return crate::wire::Dispatched::Ready(Err(
                            crate::wire::RpcError::session_not_allowed(method.name(), #name, session_id),
                        ));
                    }
                }
            });
        quote! {
            Method::#variant => {
                let params: types::#params = match crate::wire::decode_params(method, params) {
                    Ok(params) => params,
                    Err(error) => return crate::wire::Dispatched::Ready(Err(error)),
                };
                #(#session_checks)*
                let (id, jsonrpc) = (call.id().clone(), call.jsonrpc());
                crate::wire::finish(<H as #trait_>::#f(handler, call, params), id, jsonrpc)
            }
        }
    });
    quote! {
        /// Refuses a method whose scope the connection does not hold (ScopeRequired), decodes
        /// `params` for `method` (failing with -2 and the field path), refuses a session the
        /// connection may not use (ScopeRequired) and calls the method of the method's tag trait
        /// (`Method::tag`, `<Tag>Methods`): the reply frame comes at once when the handler
        /// answered at once, else as a future. Frame-level parsing (-1, -2, -3) happens in
        /// `crate::wire`.
        pub fn dispatch<'a, H: Handler + ?Sized>(
            handler: &'a H,
            call: crate::wire::Call<H::Connection>,
            method: Method,
            params: Option<&::serde_json::value::RawValue>,
        ) -> crate::wire::Dispatched<'a> {
            let needed = method.scope();
            if !handler.granted_scopes(&call.connection).contains(needed) {
                return crate::wire::Dispatched::Ready(Err(crate::wire::RpcError::scope_required(
                    method.name(),
                    Scopes::name(needed),
                )));
            }
            match method {
                #(#arms)*
            }
        }
    }
}
