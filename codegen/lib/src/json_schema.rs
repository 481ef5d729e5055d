//! `schemars::JsonSchema` for the spec's string enums (`QueueMode`, `ControlAction`, ...), behind
//! the generated crate's `schemars` feature, so a crate that derives a JSON Schema for its own
//! types (the gateway's config file) can use the protocol's enums instead of copies. The schema
//! is the spec's, as JSON text.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::spec::Spec;

/// One `impl ::schemars::JsonSchema for types::<Enum>` per string enum of `components.schemas`.
pub fn string_enum_schemas(spec: &Spec) -> TokenStream {
    let impls = spec
        .schemas
        .iter()
        .filter(|(_, schema)| schema.get("enum").is_some() && schema["type"] == "string")
        .map(|(name, schema)| {
            let ident = format_ident!("{}", name);
            let text = schema.to_string();
            quote! {
                #[cfg(feature = "schemars")]
                impl ::schemars::JsonSchema for types::#ident {
                    fn schema_name() -> ::std::borrow::Cow<'static, str> {
                        ::std::borrow::Cow::Borrowed(#name)
                    }
                    fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                        // Generated from a JSON object: it always reads (a test holds it).
                        ::serde_json::from_str(#text).unwrap_or_default()
                    }
                }
            }
        });
    quote! { #(#impls)* }
}
