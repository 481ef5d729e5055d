//! Doc comments of generated items.

use proc_macro2::TokenStream;
use quote::quote;

use crate::spec::Method;

pub(super) fn doc(text: &str) -> TokenStream {
    let lines: Vec<TokenStream> = text
        .lines()
        .map(|line| {
            let line = format!(" {line}");
            quote! { #[doc = #line] }
        })
        .collect();
    quote! { #(#lines)* }
}

pub(super) fn method_doc(m: &Method) -> String {
    let mut text = format!("`{}`: {}\n\nScope: `{}`.", m.name, m.summary, m.scope);
    if !m.events.is_empty() {
        text.push_str(&format!("\n\nEmits: {}.", m.events.join(", ")));
    }
    if !m.errors.is_empty() {
        text.push_str(&format!("\n\nErrors: {}.", m.errors.join(", ")));
    }
    text
}
