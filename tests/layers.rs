//! The layers of docs/architecture.md, checked: no import cycle between top-level modules,
//! and the foundations name nothing above them. A `crate::x` path in a module's non-test
//! code is an edge from that module to `x`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that depend on nothing in the crate but each other.
const FOUNDATIONS: [&str; 8] = [
    "stats",
    "xmlrpc",
    "wwwroot",
    "text",
    "clock",
    "background",
    "blocking",
    "files",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module name → the files that make it up.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            rust_files(&path, modules.entry(name).or_default());
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            modules.entry(name).or_default().push(path);
        }
    }
    modules
}

/// Non-test code: everything before the first `#[cfg(test)]` (tests sit last), and no file
/// named `tests.rs`.
fn code_of(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The module names a text refers to as `crate::name` or inside `use crate::{…}`.
fn references(text: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if known.contains(&name) {
                    found.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if known.contains(&name) {
                found.insert(name);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let known: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, files)| {
            let mut edges = BTreeSet::new();
            for file in files {
                edges.extend(references(&code_of(file), &known));
            }
            edges.remove(name);
            (name.clone(), edges)
        })
        .collect()
}

/// A cycle through `start`, if there is one, as the path that closes it.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    node: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in &graph[node] {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(cycle) = cycle_from(graph, start, next, path, seen) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = graph();
    assert!(graph.len() > 20, "read the modules of src/: {graph:?}");
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        if let Some(cycle) = cycle_from(&graph, start, start, &mut path, &mut BTreeSet::new()) {
            cycles.push(cycle.join(" → "));
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_foundations_name_nothing_above_them() {
    let graph = graph();
    for module in FOUNDATIONS {
        let above: Vec<&String> = graph[module]
            .iter()
            .filter(|m| !FOUNDATIONS.contains(&m.as_str()))
            .collect();
        assert!(above.is_empty(), "{module} names {above:?}");
    }
}

#[test]
fn the_mnet_layer_never_names_the_application_or_a_service() {
    let graph = graph();
    for name in ["app", "services", "http", "ws", "cli"] {
        assert!(!graph["mnet"].contains(name), "mnet names {name}");
    }
}

#[test]
fn the_reference_reader_sees_edges() {
    // The checks above are only as good as this reader: it must see both forms.
    let known: BTreeSet<String> = ["app", "store", "mnet"].map(String::from).into();
    let found = references(
        "use crate::{app::App, store};\nlet x = crate::mnet::client::MnetClient::new();",
        &known,
    );
    assert_eq!(found, known);
}
