//! The module graph of one crate root and its cycles.
//!
//! A node is a module with a file of its own (inline modules belong to their file). An edge
//! `a -> b` means code in `a` names something in `b`. Re-exports are transparent: `pub use`
//! (any `pub(..)`) adds no edge, and a path through a re-exported name leads to where the name
//! comes from, so a crate root or `mod.rs` that only re-exports is not a hub of false cycles.

use std::collections::{BTreeMap, BTreeSet};

use crate::refs::{self, Reference};
use crate::tree::{ModPath, ModuleTree};

/// Why an edge exists: the first reference found for it.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub file: String,
    pub path: String,
}

/// Edges between file modules, each with its evidence.
#[derive(Debug, Default)]
pub struct ModuleGraph {
    pub edges: BTreeMap<ModPath, BTreeMap<ModPath, Evidence>>,
}

/// Re-exported names per module: name -> the path it re-exports.
type Reexports = BTreeMap<ModPath, BTreeMap<String, Vec<String>>>;

/// How many re-export hops are followed before a name is taken to live where it was found.
const MAX_REEXPORT_HOPS: usize = 8;

impl ModuleGraph {
    pub fn build(tree: &ModuleTree) -> Self {
        let references: Vec<(ModPath, Reference)> = tree
            .modules
            .iter()
            .flat_map(|(path, module)| {
                refs::collect(&module.ast, path)
                    .into_iter()
                    .map(move |r| (path.clone(), r))
            })
            .collect();
        let mut reexports = Reexports::new();
        for (_, reference) in &references {
            if let Some(name) = &reference.reexport
                && let Some(target) = absolute(tree, reference)
            {
                reexports
                    .entry(reference.scope.clone())
                    .or_default()
                    .insert(name.clone(), target);
            }
        }
        let mut graph = Self::default();
        for (from, reference) in &references {
            if reference.reexport.is_some() {
                continue;
            }
            let Some(target) = absolute(tree, reference) else {
                continue;
            };
            let to = owner(tree, &reexports, target);
            if &to != from {
                let file = tree.modules[from].file.display().to_string();
                graph
                    .edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert(Evidence {
                        file,
                        path: reference.segments.join("::"),
                    });
            }
        }
        graph
    }

    /// Strongly connected components with more than one module (each one or more cycles),
    /// members sorted, components sorted.
    pub fn cycles(&self) -> Vec<Vec<ModPath>> {
        let nodes: BTreeSet<&ModPath> = self
            .edges
            .iter()
            .flat_map(|(from, to)| std::iter::once(from).chain(to.keys()))
            .collect();
        let mut tarjan = Tarjan::default();
        for node in nodes {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(self, node.clone());
            }
        }
        let mut components: Vec<Vec<ModPath>> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        components.sort();
        components
    }

    /// One concrete cycle through `component`'s first module, as the edges that make it.
    pub fn example_cycle(&self, component: &[ModPath]) -> Vec<(ModPath, ModPath, Evidence)> {
        let members: BTreeSet<&ModPath> = component.iter().collect();
        let Some(start) = component.first() else {
            return Vec::new();
        };
        // Breadth-first from start's successors back to start, inside the component.
        let mut came_from: BTreeMap<ModPath, ModPath> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.clone()]);
        while let Some(node) = queue.pop_front() {
            for next in self.edges.get(&node).into_iter().flat_map(|e| e.keys()) {
                if !members.contains(next) || came_from.contains_key(next) {
                    continue;
                }
                came_from.insert(next.clone(), node.clone());
                if next == start {
                    queue.clear();
                    break;
                }
                queue.push_back(next.clone());
            }
        }
        let mut cycle = Vec::new();
        let mut node = start.clone();
        while let Some(previous) = came_from.get(&node) {
            let evidence = self.edges[previous][&node].clone();
            cycle.push((previous.clone(), node.clone(), evidence));
            node = previous.clone();
            if &node == start {
                break;
            }
        }
        cycle.reverse();
        cycle
    }
}

/// The absolute module-tree path a reference names, or `None` when it leaves the crate.
fn absolute(tree: &ModuleTree, reference: &Reference) -> Option<Vec<String>> {
    let segments = &reference.segments;
    let first = segments.first()?;
    let mut base = reference.scope.clone();
    let rest: &[String] = match first.as_str() {
        "crate" => {
            base.clear();
            &segments[1..]
        }
        "self" => &segments[1..],
        "super" => {
            let supers = segments.iter().take_while(|s| *s == "super").count();
            for _ in 0..supers {
                base.pop()?;
            }
            &segments[supers..]
        }
        name => {
            // A child module named without `self::` (2018 paths).
            let file_module = tree.file_module_of(&base);
            let is_child = base == file_module
                && tree
                    .modules
                    .get(&file_module)
                    .is_some_and(|m| m.children.contains(name));
            if !is_child {
                return None;
            }
            segments
        }
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The file module that defines what `target` names, following re-exports.
fn owner(tree: &ModuleTree, reexports: &Reexports, mut target: Vec<String>) -> ModPath {
    for _ in 0..MAX_REEXPORT_HOPS {
        let module = tree.file_module_of(&target);
        let Some(name) = target.get(module.len()) else {
            return module;
        };
        match reexports.get(&module).and_then(|names| names.get(name)) {
            Some(source) => {
                let mut next = source.clone();
                next.extend(target[module.len() + 1..].iter().cloned());
                target = next;
            }
            None => return module,
        }
    }
    tree.file_module_of(&target)
}

#[derive(Default)]
struct Tarjan {
    next: usize,
    index: BTreeMap<ModPath, usize>,
    low: BTreeMap<ModPath, usize>,
    stack: Vec<ModPath>,
    on_stack: BTreeSet<ModPath>,
    components: Vec<Vec<ModPath>>,
}

impl Tarjan {
    // Recursive: module graphs are a few hundred nodes deep at most.
    fn visit(&mut self, graph: &ModuleGraph, node: ModPath) {
        self.index.insert(node.clone(), self.next);
        self.low.insert(node.clone(), self.next);
        self.next += 1;
        self.stack.push(node.clone());
        self.on_stack.insert(node.clone());
        let successors: Vec<ModPath> = graph
            .edges
            .get(&node)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        for next in successors {
            if !self.index.contains_key(&next) {
                self.visit(graph, next.clone());
                let low = self.low[&node].min(self.low[&next]);
                self.low.insert(node.clone(), low);
            } else if self.on_stack.contains(&next) {
                let low = self.low[&node].min(self.index[&next]);
                self.low.insert(node.clone(), low);
            }
        }
        if self.low[&node] == self.index[&node] {
            let mut component = Vec::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(&member);
                let done = member == node;
                component.push(member);
                if done {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}
