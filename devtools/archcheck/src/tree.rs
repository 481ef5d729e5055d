//! The module tree of one crate root, found the way rustc finds it: from the root file, each
//! `mod name;` is `name.rs` or `name/mod.rs` in the module's directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::Error;

/// A module path inside the crate: `[]` is the root, `["handlers", "nodes"]` is
/// `crate::handlers::nodes`.
pub type ModPath = Vec<String>;

/// One module that has a file of its own.
pub struct FileModule {
    pub file: PathBuf,
    pub ast: syn::File,
    /// Names of the `mod name;` declarations in the file (children with files of their own).
    pub children: BTreeSet<String>,
}

/// Every file module of one crate root.
pub struct ModuleTree {
    pub modules: BTreeMap<ModPath, FileModule>,
}

impl ModuleTree {
    /// Reads the root file and every module file it declares, recursively.
    pub fn load(root_file: &Path) -> Result<Self, Error> {
        let mut modules = BTreeMap::new();
        let mut pending = vec![(Vec::new(), root_file.to_path_buf(), true)];
        while let Some((path, file, owns_dir)) = pending.pop() {
            let text = std::fs::read_to_string(&file).map_err(|source| Error::Read {
                file: file.clone(),
                source,
            })?;
            let ast = syn::parse_file(&text).map_err(|error| Error::Parse {
                file: file.clone(),
                message: error.to_string(),
            })?;
            let children = declared_children(&ast);
            // `lib.rs`, `main.rs` and `mod.rs` keep their children beside them; `a.rs` in `a/`.
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            let child_dir = if owns_dir {
                dir
            } else {
                let stem = file.file_stem().unwrap_or_default();
                dir.join(stem)
            };
            for child in &children {
                let flat = child_dir.join(format!("{child}.rs"));
                let nested = child_dir.join(child).join("mod.rs");
                let (child_file, child_owns_dir) = if flat.is_file() {
                    (flat, false)
                } else if nested.is_file() {
                    (nested, true)
                } else {
                    return Err(Error::MissingModule {
                        parent: file.clone(),
                        name: child.clone(),
                    });
                };
                let mut child_path = path.clone();
                child_path.push(child.clone());
                pending.push((child_path, child_file, child_owns_dir));
            }
            modules.insert(
                path,
                FileModule {
                    file,
                    ast,
                    children,
                },
            );
        }
        Ok(Self { modules })
    }

    /// The longest prefix of `path` that is a file module (at least the root).
    pub fn file_module_of(&self, path: &[String]) -> ModPath {
        (0..=path.len())
            .rev()
            .map(|len| path[..len].to_vec())
            .find(|prefix| self.modules.contains_key(prefix))
            .unwrap_or_default()
    }
}

/// `mod name;` declarations without a body, outside `#[cfg(test)]`.
fn declared_children(ast: &syn::File) -> BTreeSet<String> {
    ast.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Mod(module)
                if module.content.is_none() && !crate::is_cfg_test(&module.attrs) =>
            {
                Some(module.ident.to_string())
            }
            _ => None,
        })
        .collect()
}
