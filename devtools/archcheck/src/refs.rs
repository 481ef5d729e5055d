//! The paths one file names: `use` trees (flattened), paths in code and types, and
//! `crate::`/`super::`/`self::` sequences inside macro invocations (whose bodies are tokens,
//! not syntax). `#[cfg(test)]` items are skipped: the check is about the code that ships.

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

use crate::tree::ModPath;

/// A path as written, with the module it was written in (inline `mod` blocks included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The module the path appears in (a file module, plus any inline `mod` it sits in).
    pub scope: ModPath,
    /// The path's segments (`crate`, `super` and `self` kept; a glob import ends before `*`).
    pub segments: Vec<String>,
    /// Whether it is the source of a re-export (`pub use`, `pub(crate) use`, ...), which makes
    /// the name available here rather than this module depending on it.
    pub reexport: Option<String>,
}

/// Every reference in `ast`, a file whose module path is `scope`.
pub fn collect(ast: &syn::File, scope: &ModPath) -> Vec<Reference> {
    let mut collector = Collector {
        scope: scope.clone(),
        found: Vec::new(),
    };
    collector.visit_file(ast);
    collector.found
}

struct Collector {
    scope: ModPath,
    found: Vec<Reference>,
}

impl Collector {
    fn push(&mut self, segments: Vec<String>, reexport: Option<String>) {
        if segments.len() > 1 || matches!(segments.first().map(String::as_str), Some("super")) {
            self.found.push(Reference {
                scope: self.scope.clone(),
                segments,
                reexport,
            });
        }
    }

    fn flatten_use(&mut self, tree: &syn::UseTree, prefix: &mut Vec<String>, public: bool) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.flatten_use(&path.tree, prefix, public);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let mut segments = prefix.clone();
                segments.push(name.ident.to_string());
                let exported = public.then(|| name.ident.to_string());
                self.push(segments, exported);
            }
            syn::UseTree::Rename(rename) => {
                let mut segments = prefix.clone();
                segments.push(rename.ident.to_string());
                let exported = public.then(|| rename.rename.to_string());
                self.push(segments, exported);
            }
            syn::UseTree::Glob(_) => {
                let exported = public.then(|| "*".to_owned());
                self.push(prefix.clone(), exported);
            }
            syn::UseTree::Group(group) => {
                for item in &group.items {
                    self.flatten_use(item, prefix, public);
                }
            }
        }
    }

    /// `crate :: a :: b`, `super :: a`, `self :: a` sequences in macro tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut index = 0;
        while index < trees.len() {
            match &trees[index] {
                TokenTree::Group(group) => self.scan_tokens(group.stream()),
                TokenTree::Ident(ident)
                    if matches!(ident.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    let (segments, next) = path_at(&trees, index);
                    self.push(segments, None);
                    index = next;
                    continue;
                }
                _ => {}
            }
            index += 1;
        }
    }
}

/// Reads `ident (:: ident)*` from `start`; returns the segments and the index after them.
fn path_at(trees: &[TokenTree], start: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    let mut index = start;
    while let Some(TokenTree::Ident(ident)) = trees.get(index) {
        segments.push(ident.to_string());
        let is_colon =
            |i: usize| matches!(trees.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':');
        if is_colon(index + 1) && is_colon(index + 2) {
            index += 3;
        } else {
            index += 1;
            break;
        }
    }
    (segments, index)
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            syn::Item::Type(t) => &t.attrs,
            syn::Item::Macro(m) => &m.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !crate::is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        // Only inline modules have content here; file modules are visited as files of their own.
        if module.content.is_some() {
            self.scope.push(module.ident.to_string());
            syn::visit::visit_item_mod(self, module);
            self.scope.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let public = !matches!(item.vis, syn::Visibility::Inherited);
        let mut prefix = Vec::new();
        self.flatten_use(&item.tree, &mut prefix, public);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.push(segments, None);
        syn::visit::visit_path(self, path);
    }

    /// `pub(super)` and `pub(in crate::x)` name where an item is visible, not a dependency.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        self.scan_tokens(mac.tokens.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(code: &str) -> Vec<(String, Option<String>)> {
        let ast = syn::parse_file(code).unwrap();
        collect(&ast, &vec!["m".to_owned()])
            .into_iter()
            .map(|r| (r.segments.join("::"), r.reexport))
            .collect()
    }

    #[test]
    fn use_trees_paths_and_macro_bodies_are_collected() {
        let found = segments(
            "use crate::a::{B, c::D as E, f::*};\npub use super::g::H;\n\
             fn x() { crate::i::j(); tracing::info!(\"{}\", crate::k::L); }\n\
             #[cfg(test)] mod tests { use crate::never::Seen; }",
        );
        let names: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "crate::a::B",
                "crate::a::c::D",
                "crate::a::f",
                "super::g::H",
                "crate::i::j",
                "tracing::info",
                "crate::k::L"
            ]
        );
        assert_eq!(found[1].1, None);
        assert_eq!(found[3].1.as_deref(), Some("H"));
    }
}
