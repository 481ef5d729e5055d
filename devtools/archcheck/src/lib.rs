//! Architecture checks of the workspace's own sources.
//!
//! [`module_cycles`] reads one crate root (`src/lib.rs` or `src/main.rs`) and every module file
//! it declares, builds the module graph from what each module names (`use` trees, paths in code
//! and types, `crate::`/`super::`/`self::` paths inside macro invocations) and returns its
//! import cycles, each with one concrete cycle and the reference behind every step. The test in
//! `tests/it/cycles.rs` runs it over every crate of the workspace: `cargo test -p flynn-archcheck`.
//!
//! [`size`] measures every function and module file of a source text; `tests/it/sizes.rs` holds
//! the workspace to its limits.
//!
//! It parses with `syn` instead of asking the compiler (`cargo modules` needs a nightly-built
//! rust-analyzer), which is enough for this question: which file modules name which. Not seen:
//! paths built by macros from pieces, and `#[cfg(test)]` code (on purpose: tests may reach in).

mod graph;
mod refs;
pub mod size;
mod tree;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub use graph::{Evidence, ModuleGraph};
pub use tree::{ModPath, ModuleTree};

/// Why a crate could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{parent} declares `mod {name};` but neither {name}.rs nor {name}/mod.rs exists")]
    MissingModule { parent: PathBuf, name: String },
}

/// One import cycle (a strongly connected component of the module graph) and, as evidence,
/// one concrete cycle through it.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// The modules in the component, sorted, as `a::b` paths (`crate` for the root).
    pub modules: Vec<String>,
    /// `from -> to (file: path)` for each step of one concrete cycle.
    pub example: Vec<String>,
}

impl Cycle {
    /// The cycle as the lines a failing test prints.
    pub fn describe(&self) -> String {
        let mut text = format!("[{}]\n", self.modules.join(", "));
        for step in &self.example {
            let _ = writeln!(text, "    {step}");
        }
        text
    }
}

/// The import cycles of the crate whose root file is `root_file`.
pub fn module_cycles(root_file: &Path) -> Result<Vec<Cycle>, Error> {
    let tree = ModuleTree::load(root_file)?;
    let graph = ModuleGraph::build(&tree);
    // Evidence files relative to the crate (`src/x.rs`): the crate is named by the caller.
    let crate_dir = root_file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""));
    Ok(graph
        .cycles()
        .into_iter()
        .map(|component| Cycle {
            example: graph
                .example_cycle(&component)
                .into_iter()
                .map(|(from, to, evidence)| {
                    format!(
                        "{} -> {} ({}: {})",
                        display(&from),
                        display(&to),
                        Path::new(&evidence.file)
                            .strip_prefix(crate_dir)
                            .unwrap_or(Path::new(&evidence.file))
                            .display(),
                        evidence.path
                    )
                })
                .collect(),
            modules: component.iter().map(|m| display(m)).collect(),
        })
        .collect())
}

/// `a::b`, or `crate` for the root.
pub fn display(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// Whether the attributes include `#[cfg(test)]`.
pub(crate) fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}
