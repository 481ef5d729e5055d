//! The params schema of every method, emitted into the generated crate as `Method::params_schema`:
//! the one place params validation is derived from. It is the schema the `<Method>Params` type
//! is generated from ([`crate::spec::Method::params_schema`]); the wire runtime compiles it to
//! check what the serde types cannot carry (maximum, minLength, pattern, ...), and conformance
//! checks recorded requests against the same text.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::names;
use crate::spec::Spec;

/// `impl Method { pub const fn params_schema(self) -> &'static str }`.
pub fn params_schemas(spec: &Spec) -> TokenStream {
    let arms = spec.methods.iter().map(|m| {
        let ident = format_ident!("{}", names::pascal(&m.name));
        let schema = m.params_schema().to_string();
        quote! { Self::#ident => #schema }
    });
    quote! {
        impl Method {
            /// The JSON Schema of this method's params object, as JSON text: the schema
            /// `types::<Method>Params` is generated from. `$ref`s point into the spec's
            /// `components`. The wire runtime checks params against it; conformance checks
            /// recorded requests against it.
            pub const fn params_schema(self) -> &'static str {
                match self { #(#arms,)* }
            }
        }
    }
}
