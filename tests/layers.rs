//! The layers of docs/architecture.md, checked: no import cycle between top-level modules,
//! and the foundations name nothing above them. A `crate::x` path in a module's non-test
//! code is an edge from that module to `x`, and so is a path through a name some `use`
//! binds to `x` or to something in it (`pub use services::use_stats as rpc;` in lib.rs makes
//! `crate::rpc::…` an edge to `services`).

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

/// A path's segments after `crate::`, as the crate's root sees it.
type Segments = Vec<String>;

/// The paths of a use tree (`a::{b as c, d::{self, e}}`), each with the name it binds: its
/// `as` name, or else its last segment (`self` binds its parent). A glob binds nothing.
fn use_tree(tree: &str) -> Vec<(Segments, Option<String>)> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let (path, rename) = match tree.split_once(" as ") {
            Some((path, name)) => (path, Some(name.trim().to_string())),
            None => (tree, None),
        };
        let mut segments: Segments = path
            .split("::")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if segments.last().is_some_and(|s| s == "self") {
            segments.pop();
        }
        if segments.last().is_some_and(|s| s == "*") {
            segments.pop();
            return vec![(segments, None)];
        }
        let name = rename.or_else(|| segments.last().cloned());
        return vec![(segments, name)];
    };
    let prefix = tree[..open].trim().trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut from) = (0, 0);
    for (at, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[from..at]);
                from = at + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[from..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(|item| match prefix {
            "" => use_tree(item),
            prefix => use_tree(&format!("{prefix}::{}", item.trim())),
        })
        .collect()
}

/// The trees of a file's `use` declarations (each starts a line), comments left out.
fn use_declarations(text: &str) -> Vec<String> {
    let code = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut line_start = 0;
    for line in code.split('\n') {
        let trimmed = line.trim_start();
        let unqualified = match trimmed.strip_prefix("pub") {
            Some(tail) if tail.starts_with('(') => {
                tail.split_once(')').map_or(tail, |(_, t)| t).trim_start()
            }
            Some(tail) if tail.starts_with(' ') => tail.trim_start(),
            _ => trimmed,
        };
        if unqualified.starts_with("use ") {
            let from = line_start + (line.len() - unqualified.len()) + "use ".len();
            let tail = &code[from..];
            let tree = &tail[..tail.find(';').unwrap_or(tail.len())];
            found.push(tree.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        line_start += line.len() + 1;
    }
    found
}

/// A name a `use` binds, renamed or not, and the crate path it stands for:
/// `pub use services::use_stats as rpc;` in lib.rs makes `crate::rpc::…` a path into
/// `services`.
struct Binding {
    at: Segments,
    to: Segments,
}

/// The module path of a file under `src`: `[]` for lib.rs, `[a, b]` for a/b.rs or a/b/mod.rs.
fn module_path(src: &Path, file: &Path) -> Segments {
    let mut segments: Segments = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().to_string())
        .collect();
    if segments.last().is_some_and(|s| s == "mod" || s == "lib") {
        segments.pop();
    }
    segments
}

/// A `use` path written in `module`, from the crate's root. A path that names no `crate`,
/// `self` or `super` is taken as relative to the module (what it is in lib.rs, and harmless
/// for an external crate's path elsewhere: it reaches no other module).
fn absolute(module: &[String], path: &[String]) -> Segments {
    let ups = path.iter().take_while(|s| *s == "super").count();
    let (base, rest) = match path.first().map(String::as_str) {
        Some("crate") => (&[][..], &path[1..]),
        Some("self") => (module, &path[1..]),
        Some("super") => (&module[..module.len().saturating_sub(ups)], &path[ups..]),
        _ => (module, path),
    };
    base.iter().chain(rest).cloned().collect()
}

/// Every binding in the crate under `src`, lib.rs included.
fn bindings(src: &Path) -> Vec<Binding> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut bindings = Vec::new();
    for file in files.iter().filter(|f| **f != src.join("main.rs")) {
        let module = module_path(src, file);
        for declaration in use_declarations(&code_of(file)) {
            for (path, name) in use_tree(&declaration) {
                let Some(name) = name else { continue };
                let at = module.iter().cloned().chain([name]).collect();
                let to = absolute(&module, &path);
                bindings.push(Binding { at, to });
            }
        }
    }
    bindings
}

/// The `crate::` path tree that starts `text`: identifiers and `::`, then at most one
/// braced group.
fn path_tree(text: &str) -> &str {
    let mut depth = 0;
    for (at, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => return &text[..=at],
            '}' => depth -= 1,
            _ if depth > 0 || c.is_ascii_alphanumeric() || c == '_' || c == ':' => {}
            _ => return &text[..at],
        }
    }
    text
}

/// The modules a crate path reaches: its first segment, and what every binding it goes
/// through stands for, followed again (a re-export of a re-export).
fn reach(path: &[String], known: &BTreeSet<String>, bindings: &[Binding], found: &mut Names) {
    reach_within(path, known, bindings, found, 8);
}

fn reach_within(
    path: &[String],
    known: &BTreeSet<String>,
    bindings: &[Binding],
    found: &mut Names,
    hops: usize,
) {
    if let Some(first) = path.first().filter(|m| known.contains(*m)) {
        found.insert(first.clone());
    }
    if hops == 0 {
        return;
    }
    for binding in bindings.iter().filter(|b| path.starts_with(&b.at)) {
        let through: Segments = binding
            .to
            .iter()
            .chain(&path[binding.at.len()..])
            .cloned()
            .collect();
        reach_within(&through, known, bindings, found, hops - 1);
    }
}

type Names = BTreeSet<String>;

/// The modules a text refers to through `crate::` paths (`crate::a::b`, `use crate::{a,
/// b::c}`), followed through any `use` that binds another name to them.
fn references(text: &str, known: &Names, bindings: &[Binding]) -> Names {
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        for (path, _) in use_tree(path_tree(&text[at..])) {
            reach(&path[1..], known, bindings, &mut found);
        }
    }
    found
}

type Graph = BTreeMap<String, Names>;

/// The edges between the top-level modules of the crate under `src`.
fn graph_of(src: &Path) -> Graph {
    let modules = modules(src);
    let known: Names = modules.keys().cloned().collect();
    let bindings = bindings(src);
    modules
        .iter()
        .map(|(name, files)| {
            let mut edges = BTreeSet::new();
            for file in files {
                edges.extend(references(&code_of(file), &known, &bindings));
            }
            edges.remove(name);
            (name.clone(), edges)
        })
        .collect()
}

fn graph() -> Graph {
    graph_of(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
}

/// A cycle through `start`, if there is one, as the path that closes it.
fn cycle_from(
    graph: &Graph,
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

fn cycles(graph: &Graph) -> Vec<String> {
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        if let Some(cycle) = cycle_from(graph, start, start, &mut path, &mut BTreeSet::new()) {
            cycles.push(cycle.join(" → "));
        }
    }
    cycles
}

fn foundations_naming_above(graph: &Graph) -> Vec<String> {
    FOUNDATIONS
        .iter()
        .filter_map(|module| {
            let above: Vec<&String> = graph
                .get(*module)?
                .iter()
                .filter(|m| !FOUNDATIONS.contains(&m.as_str()))
                .collect();
            (!above.is_empty()).then(|| format!("{module} names {above:?}"))
        })
        .collect()
}

fn mnet_naming_above(graph: &Graph) -> Vec<String> {
    ["app", "services", "http", "ws", "cli"]
        .into_iter()
        .filter(|name| graph["mnet"].contains(*name))
        .map(|name| format!("mnet names {name}"))
        .collect()
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = graph();
    assert!(graph.len() > 20, "read the modules of src/: {graph:?}");
    let cycles = cycles(&graph);
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_foundations_name_nothing_above_them() {
    let breaches = foundations_naming_above(&graph());
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn the_mnet_layer_never_names_the_application_or_a_service() {
    let breaches = mnet_naming_above(&graph());
    assert!(breaches.is_empty(), "{}", breaches.join("\n"));
}

#[test]
fn the_reference_reader_sees_edges() {
    // The checks above are only as good as this reader: it must see both forms.
    let known: Names = ["app", "store", "mnet"].map(String::from).into();
    let found = references(
        "use crate::{app::App, store};\nlet x = crate::mnet::client::MnetClient::new();",
        &known,
        &[],
    );
    assert_eq!(found, known);
}

#[test]
fn an_edge_written_through_an_alias_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    };
    write(
        "lib.rs",
        "pub mod http;\npub mod mnet;\npub mod services;\npub mod text;\n\
         pub use services::use_stats as rpc;\n",
    );
    write("services/mod.rs", "pub mod use_stats;\n");
    write(
        "services/use_stats.rs",
        "pub const GET_STATS: &str = \"get_stats\";\n",
    );
    write("mnet/mod.rs", "pub mod server;\n");
    write(
        "mnet/server.rs",
        "pub fn method() -> &'static str {\n    crate::rpc::GET_STATS\n}\n",
    );
    // A re-export inside a module, renamed within a group, followed by a foundation.
    write(
        "http/mod.rs",
        "pub(crate) use crate::services::{\n    use_stats as published,\n};\n",
    );
    write(
        "text.rs",
        "use crate::http::published::GET_STATS;\npub fn name() -> &'static str {\n    GET_STATS\n}\n",
    );
    let graph = graph_of(dir.path());
    assert_eq!(mnet_naming_above(&graph), ["mnet names services"]);
    assert_eq!(
        foundations_naming_above(&graph),
        [r#"text names ["http", "services"]"#]
    );
    assert!(cycles(&graph).is_empty(), "{graph:?}");
}
