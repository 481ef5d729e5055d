//! No import cycles among the modules of any crate of the workspace (see the crate docs for
//! how the graph is built). Run: `cargo test -p flynn-archcheck`.
//!
//! Cycles that may not be broken at once can be listed in [`KNOWN_CYCLES`], checked exactly: a
//! new cycle fails, and so does one that is gone or got smaller until the list is updated, so
//! the list can only shrink. It is empty: no crate of the workspace has an import cycle.

use std::path::{Path, PathBuf};

use flynn_archcheck::{Cycle, module_cycles};

/// Import cycles that exist today, per crate root: each is the sorted list of the modules of one
/// strongly connected component. Shrink this list; never grow it. Empty since the agent moved to
/// its own crate (`flynn-agent`) and the gateway's state stopped reaching the connection loop
/// and the handlers (issue 12); keep it so.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every crate root (`src/lib.rs`, `src/main.rs`) of the workspace members.
fn crate_roots() -> Vec<(String, PathBuf)> {
    let root = workspace_root();
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let members = manifest["workspace"]["members"].as_array().unwrap();
    let mut roots = Vec::new();
    for member in members {
        let member = member.as_str().unwrap();
        for file in ["src/lib.rs", "src/main.rs"] {
            let path = root.join(member).join(file);
            if path.is_file() {
                roots.push((format!("{member}/{file}"), path));
            }
        }
    }
    assert!(roots.len() > 10, "found the crate roots: {roots:?}");
    roots
}

#[test]
fn no_import_cycles_beyond_the_known_ones() {
    let mut unexpected = String::new();
    let mut gone = Vec::new();
    for (name, path) in crate_roots() {
        let cycles = module_cycles(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let known: Vec<Vec<&str>> = KNOWN_CYCLES
            .iter()
            .filter(|(root, _)| *root == name)
            .map(|(_, modules)| modules.to_vec())
            .collect();
        for cycle in &cycles {
            if !known.iter().any(|k| *k == cycle.modules) {
                unexpected.push_str(&format!("{name}: {}", cycle.describe()));
            }
        }
        for k in known {
            if !cycles.iter().any(|c: &Cycle| c.modules == k) {
                gone.push(format!("{name}: {k:?}"));
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "import cycles (modules of one strongly connected component, then one concrete cycle \
         with the reference behind each step); break them, e.g. by moving what both sides need \
         into a module of its own:\n{unexpected}"
    );
    assert!(
        gone.is_empty(),
        "these known cycles are gone or changed: update KNOWN_CYCLES in {}:\n{}",
        file!(),
        gone.join("\n")
    );
}

#[test]
fn finds_a_cycle_and_looks_through_reexports() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cyclic/src/lib.rs");
    let cycles = module_cycles(&root).unwrap();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].modules, ["a", "b"]);
    assert_eq!(cycles[0].example.len(), 2, "{cycles:?}");
    assert!(cycles[0].example[0].starts_with("a -> b ("), "{cycles:?}");
    assert!(
        cycles[0].example[0].ends_with(": crate::b::Bee)"),
        "{cycles:?}"
    );
}
