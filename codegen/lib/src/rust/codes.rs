//! Names and codes as values: `ErrorCode`, the `Method` enum and `Scopes`.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use super::docs::doc;
use crate::names;
use crate::spec::Spec;

pub(super) fn error_code(spec: &Spec) -> TokenStream {
    let variants = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        let d = doc(&format!(
            "`{}`: {}",
            e.code,
            if e.description.is_empty() {
                &e.message
            } else {
                &e.description
            }
        ));
        quote! { #d #ident }
    });
    let codes = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        let code = Literal::i64_unsuffixed(e.code);
        quote! { Self::#ident => #code }
    });
    let from_codes = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        let code = Literal::i64_unsuffixed(e.code);
        quote! { #code => Some(Self::#ident) }
    });
    let names_ = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        let name = &e.name;
        quote! { Self::#ident => #name }
    });
    let messages = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        let message = &e.message;
        quote! { Self::#ident => #message }
    });
    let all = spec.errors.iter().map(|e| {
        let ident = format_ident!("{}", e.name);
        quote! { Self::#ident }
    });
    let count = Literal::usize_unsuffixed(spec.errors.len());
    quote! {
        /// The protocol's error codes (`components.errors`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            #(#variants,)*
        }

        impl ErrorCode {
            /// Every code, ordered by number.
            pub const ALL: [ErrorCode; #count] = [#(#all),*];

            /// The integer sent on the wire.
            pub const fn code(self) -> i64 {
                match self { #(#codes,)* }
            }

            /// The name used in the spec and the protocol document's table.
            pub const fn name(self) -> &'static str {
                match self { #(#names_,)* }
            }

            /// The spec's default message for this code.
            pub const fn default_message(self) -> &'static str {
                match self { #(#messages,)* }
            }

            /// The code for a wire integer, if the spec defines it.
            pub const fn from_code(code: i64) -> Option<Self> {
                match code { #(#from_codes,)* _ => None }
            }
        }

        impl ::core::fmt::Display for ErrorCode {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{} ({})", self.name(), self.code())
            }
        }
    }
}

pub(super) fn method_enum(spec: &Spec) -> TokenStream {
    let variants = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let d = doc(&format!("`{}`", m.name));
        quote! { #d #ident }
    });
    let to_name = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let konst = format_ident!("{}", names::shouty(&m.name));
        quote! { Self::#ident => methods::#konst }
    });
    let from_name = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let konst = format_ident!("{}", names::shouty(&m.name));
        quote! { methods::#konst => Some(Self::#ident) }
    });
    let events = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let evs = m.events.iter().map(|e| {
            let konst = format_ident!("{}", names::shouty(e));
            quote! { events::#konst }
        });
        quote! { Self::#ident => &[#(#evs),*] }
    });
    let all = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        quote! { Self::#ident }
    });
    let scope_arms = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let scope = format_ident!("{}", names::pascal(&m.scope));
        quote! { Self::#ident => types::Scope::#scope }
    });
    let tag_arms = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let tag = &m.tag;
        quote! { Self::#ident => #tag }
    });
    let count = Literal::usize_unsuffixed(spec.methods.len());
    quote! {
        /// Every method, as a value: what `dispatch` routes on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Method {
            #(#variants,)*
        }

        impl Method {
            /// Every method, in spec order.
            pub const ALL: [Method; #count] = [#(#all),*];

            /// The wire name.
            pub const fn name(self) -> &'static str {
                match self { #(#to_name,)* }
            }

            /// The method for a wire name, if the spec defines it.
            pub fn from_name(name: &str) -> Option<Self> {
                match name { #(#from_name,)* _ => None }
            }

            /// The scope a credential must hold to call this method (`x-scope`).
            pub const fn scope(self) -> types::Scope {
                match self { #(#scope_arms,)* }
            }

            /// The method's group (its tag in the spec): the handler trait `dispatch` routes it
            /// to is `<Tag>Methods`.
            pub const fn tag(self) -> &'static str {
                match self { #(#tag_arms,)* }
            }

            /// The events this method may emit before its reply.
            pub const fn events(self) -> &'static [&'static str] {
                match self { #(#events,)* }
            }
        }
    }
}

/// `Scopes`, the set of scopes a credential holds, over the spec's `Scope` type (`x-scopes`).
pub(super) fn scopes(spec: &Spec) -> TokenStream {
    let bits = spec.scopes.iter().enumerate().map(|(i, s)| {
        let variant = format_ident!("{}", names::pascal(&s.name));
        let bit = Literal::u8_unsuffixed(1u8 << i);
        quote! { types::Scope::#variant => #bit }
    });
    let names_arms = spec.scopes.iter().map(|s| {
        let variant = format_ident!("{}", names::pascal(&s.name));
        let name = &s.name;
        quote! { types::Scope::#variant => #name }
    });
    let from_name = spec.scopes.iter().map(|s| {
        let variant = format_ident!("{}", names::pascal(&s.name));
        let name = &s.name;
        quote! { #name => Some(types::Scope::#variant) }
    });
    let all_variants = spec.scopes.iter().map(|s| {
        let variant = format_ident!("{}", names::pascal(&s.name));
        quote! { types::Scope::#variant }
    });
    let count = Literal::usize_unsuffixed(spec.scopes.len());
    let all_bits = Literal::u8_unsuffixed(((1u16 << spec.scopes.len()) - 1) as u8);
    quote! {
        /// A set of scopes, as a credential holds them (decision scopes; `x-scopes`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct Scopes(u8);

        impl Scopes {
            /// No scope at all.
            pub const NONE: Scopes = Scopes(0);
            /// Every scope: `server.token`, an open loopback gateway, a Tailscale identity.
            pub const ALL: Scopes = Scopes(#all_bits);
            /// Every scope, in spec order.
            pub const EVERY: [types::Scope; #count] = [#(#all_variants),*];

            const fn bit(scope: types::Scope) -> u8 {
                match scope { #(#bits,)* }
            }

            /// The wire name of a scope.
            pub const fn name(scope: types::Scope) -> &'static str {
                match scope { #(#names_arms,)* }
            }

            /// The scope with this wire name.
            pub fn from_name(name: &str) -> Option<types::Scope> {
                match name { #(#from_name,)* _ => None }
            }

            /// This set with `scope` added.
            pub const fn with(self, scope: types::Scope) -> Self {
                Scopes(self.0 | Self::bit(scope))
            }

            /// Whether the set holds `scope`.
            pub const fn contains(self, scope: types::Scope) -> bool {
                self.0 & Self::bit(scope) != 0
            }

            /// The scopes held, in spec order.
            pub fn iter(self) -> impl Iterator<Item = types::Scope> {
                Self::EVERY.into_iter().filter(move |s| self.contains(*s))
            }
        }
    }
}
