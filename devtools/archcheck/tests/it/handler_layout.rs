//! The gateway's handler layout follows the spec's tags (README, "Finding a method"): for every
//! tag declared in `components.tags`, `runtime/gateway/src/handlers/<tag>.rs` (or
//! `<tag>/mod.rs`) holds `impl <Tag>Methods for Gateway`, and no other handler file does.
//! Run: `cargo test -p flynn-archcheck --test handler_layout`.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn spec_tags() -> Vec<String> {
    let path = workspace_root().join("spec/flynn.openrpc.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec: serde_json::Value = serde_json::from_str(&text).expect("the spec is JSON");
    let tags = spec["components"]["tags"]
        .as_object()
        .expect("the spec declares components.tags");
    tags.keys().cloned().collect()
}

/// `insights` -> `InsightsMethods`.
fn trait_name(tag: &str) -> String {
    let mut chars = tag.chars();
    let first = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .unwrap_or_default();
    format!("{first}{}Methods", chars.as_str())
}

/// The `<X>Methods` traits a file implements for `Gateway`.
fn gateway_impls(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    ast.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Impl(imp) => {
                let (_, path, _) = imp.trait_.as_ref()?;
                let trait_ = path.segments.last()?.ident.to_string();
                let self_is_gateway = matches!(&*imp.self_ty, syn::Type::Path(p)
                    if p.path.segments.last().is_some_and(|s| s.ident == "Gateway"));
                (self_is_gateway && trait_.ends_with("Methods")).then_some(trait_)
            }
            _ => None,
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn each_tag_is_served_by_its_own_handler_file() {
    let handlers = workspace_root().join("runtime/gateway/src/handlers");
    let tags = spec_tags();
    assert!(tags.len() >= 10, "the spec's tags: {tags:?}");
    let mut files = Vec::new();
    rust_files(&handlers, &mut files);
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for file in &files {
        for trait_ in gateway_impls(file) {
            found.push((trait_, file.clone()));
        }
    }
    for tag in &tags {
        let trait_ = trait_name(tag);
        let expected = [
            handlers.join(format!("{tag}.rs")),
            handlers.join(tag).join("mod.rs"),
        ];
        let holders: Vec<&PathBuf> = found
            .iter()
            .filter(|(t, _)| *t == trait_)
            .map(|(_, f)| f)
            .collect();
        assert!(
            holders.len() == 1 && expected.contains(holders[0]),
            "`impl {trait_} for Gateway` must be in handlers/{tag}.rs (or {tag}/mod.rs) only; found in {holders:?}"
        );
    }
    let known: Vec<String> = tags.iter().map(|t| trait_name(t)).collect();
    let stray: Vec<&(String, PathBuf)> = found.iter().filter(|(t, _)| !known.contains(t)).collect();
    assert!(stray.is_empty(), "handler impls of no spec tag: {stray:?}");
}
