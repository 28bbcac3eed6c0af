//! The workspace's layering rules, checked on the source tree itself.
//!
//! 1. In every crate, the top-level modules of `src/` import each other without a cycle.
//! 2. No `.rs` file in the workspace (outside `target/` and `vendor/`) is over 1,000 lines.
//! 3. In `cascade-core`, a module imports only the layers below it in [`CORE_LAYERS`].
//!
//! Why: when imports only go downward, a newcomer can read a crate from its folders, ground
//! layer first, and every file is short enough to be read in one sitting.
//!
//! The parsing is a port of the `modgraph.py` tool and keeps its semantics exactly, quirks
//! included, so that both tools print the same graph. A top-level module is a file or folder
//! directly under `src/` (`lib.rs` and `main.rs` are left out: they wire). Doc and line
//! comments and `#[cfg(test)]` modules are skipped. An import is any `crate::X` or
//! `use crate::{X, ...}` written on one line. The workspace root is `$LAYERS_ROOT` when set,
//! else the parent of this crate.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers of `core/src`, top first. A module may import only the modules strictly below
/// it, and every top-level module of core must be in this table. What each layer owns:
/// - `config`: flags composed into each part's settings;
/// - `api`: HTTP WHIP/WHEP, status, pages, gRPC status, relay service, auth;
/// - `cluster`: node, placement, routing store, relay client, cluster decisions;
/// - `rtc`: WebRTC sessions over webrtc-rs and the rtc core, peer-connection factory, UDP mux
///   and driver, negotiation;
/// - `media`: pure forwarding, rooms and fan-out, egress SRTP/NACK history, outbox, keyframe
///   cache, `MediaKind`, `RoomId`;
/// - `obs`: metrics, telemetry, trace context, CPU/process figures, rate meter;
/// - `error` (the ground): the crate's error type.
const CORE_LAYERS: &[&str] = &["config", "api", "cluster", "rtc", "media", "obs", "error"];
const MAX_LINES: usize = 1000;

/// Module -> module it imports -> the files (relative to `src/`) that make that edge.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `code[..i]` does not end in a word character (a regex `\b` before a word at `i`).
fn boundary_before(code: &str, i: usize) -> bool {
    !code[..i].chars().next_back().is_some_and(is_word)
}

/// The top-level modules that one file of module `top` imports (`top` itself left out).
fn imports(text: &str, top: &str) -> BTreeSet<String> {
    enum Test {
        Off,
        Pending,
        In(i64),
    }
    let (mut deps, mut depth, mut test) = (BTreeSet::new(), 0i64, Test::Off);
    for line in text.split('\n') {
        let code = line.split("//").next().unwrap_or("");
        if matches!(test, Test::Off) && line.trim_start().starts_with("#[cfg(test)]") {
            test = Test::Pending;
            continue;
        }
        if matches!(test, Test::Pending) {
            if !code.contains('{') {
                continue;
            }
            test = Test::In(depth);
        }
        depth += code.matches('{').count() as i64 - code.matches('}').count() as i64;
        if let Test::In(start) = test {
            if depth <= start {
                test = Test::Off;
            }
            continue;
        }
        // `\bcrate::(\w+)`, matches not overlapping.
        let mut end = 0;
        for (i, _) in code.match_indices("crate::") {
            if i < end || !boundary_before(code, i) {
                continue;
            }
            let name: String = code[i + 7..].chars().take_while(|&c| is_word(c)).collect();
            if !name.is_empty() {
                end = i + 7 + name.len();
                if name != top {
                    deps.insert(name);
                }
            }
        }
        // `\buse\s+crate::\{([^}]*)\}`: the first path segment of each item.
        let mut end = 0;
        for (i, _) in code.match_indices("use") {
            if i < end || !boundary_before(code, i) {
                continue;
            }
            let (after, rest) = (&code[i + 3..], code[i + 3..].trim_start());
            let body = rest
                .strip_prefix("crate::{")
                .filter(|_| rest.len() < after.len());
            let Some((body, close)) = body.and_then(|b| Some((b, b.find('}')?))) else {
                continue;
            };
            end = code.len() - body.len() + close + 1;
            for part in body[..close].split(',') {
                let p = part.trim().split("::").next().unwrap_or("");
                if !p.is_empty() && p != top && p != "self" {
                    deps.insert(p.to_string());
                }
            }
        }
    }
    deps
}

/// The import graph of one `src/` directory, from (path relative to `src/`, text) pairs.
fn build_graph<S: AsRef<str>>(files: &[(S, S)]) -> Graph {
    let mut graph = Graph::new();
    for (rel, text) in files {
        let (rel, text) = (rel.as_ref(), text.as_ref());
        let first = rel.split('/').next().unwrap_or("");
        let top = first.strip_suffix(".rs").unwrap_or(first);
        if !rel.ends_with(".rs") || top == "lib" || top == "main" {
            continue;
        }
        let deps = graph.entry(top.to_string()).or_default();
        for dep in imports(text, top) {
            deps.entry(dep).or_default().insert(rel.to_string());
        }
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for deps in graph.values_mut() {
        deps.retain(|dep, _| modules.contains(dep));
    }
    graph
}

/// Tarjan's strongly connected components of two or more modules, each sorted.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        marks: BTreeMap<&'g str, (usize, usize, bool)>, // index, low link, on the stack
        stack: Vec<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.marks.len();
            self.marks.insert(v, (n, n, true));
            self.stack.push(v);
            for w in self.graph[v].keys().map(String::as_str) {
                let low = match self.marks.get(w) {
                    None => {
                        self.visit(w);
                        self.marks[w].1
                    }
                    Some(&(index, _, true)) => index,
                    Some(_) => continue,
                };
                let mark = self.marks.get_mut(v).unwrap();
                mark.1 = mark.1.min(low);
            }
            if self.marks[v].0 == self.marks[v].1 {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.marks.get_mut(w).unwrap().2 = false;
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let (marks, stack, found) = (BTreeMap::new(), Vec::new(), Vec::new());
    let mut t = Tarjan {
        graph,
        marks,
        stack,
        found,
    };
    for v in graph.keys() {
        if !t.marks.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

/// One line per cycle, then one indented line per edge inside it naming the files.
fn describe_cycles(graph: &Graph, label: &str) -> Vec<String> {
    let mut out = Vec::new();
    for component in cycles(graph) {
        out.push(format!("{label}: import cycle {}", component.join(" <-> ")));
        for from in &component {
            for (to, files) in &graph[from] {
                if component.contains(to) {
                    let files: Vec<&str> = files.iter().map(String::as_str).collect();
                    out.push(format!("    {from} -> {to}: {}", files.join(", ")));
                }
            }
        }
    }
    out
}

/// Every module missing from `layers` (top first), and every import not strictly downward.
fn layer_violations(graph: &Graph, layers: &[&str]) -> Vec<String> {
    let rank = |m: &str| layers.iter().position(|l| *l == m);
    let order = layers.join(" > ");
    let mut out = Vec::new();
    for (module, deps) in graph {
        let Some(from) = rank(module) else {
            out.push(format!(
                "module `{module}` is not in CORE_LAYERS: add it to the table (or move it into a layer folder)"
            ));
            continue;
        };
        for (dep, files) in deps {
            if rank(dep).is_some_and(|to| to <= from) {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                out.push(format!(
                    "`{module}` imports `{dep}`, which is not below it ({order}): {}",
                    files.join(", ")
                ));
            }
        }
    }
    out
}

fn root() -> PathBuf {
    std::env::var_os("LAYERS_ROOT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
        PathBuf::from,
    )
}

/// Every file under `dir`, sorted; with `prune`, skipping `target`, `vendor` and hidden dirs.
fn walk(dir: &Path, prune: bool, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let (path, name) = (entry.path(), entry.file_name());
        let name = name.to_string_lossy();
        if entry.file_type().unwrap().is_dir() {
            if !(prune && (name == "target" || name == "vendor" || name.starts_with('.'))) {
                walk(&path, prune, out);
            }
        } else if path.is_file() {
            out.push(path);
        }
    }
}

/// A file's text with universal newlines, as Python's `open()` reads it.
fn read(path: &Path) -> String {
    let text = String::from_utf8_lossy(&fs::read(path).unwrap()).into_owned();
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    walk(&root(), true, &mut files);
    files.retain(|f| f.extension().is_some_and(|e| e == "rs"));
    files
}

/// Every crate `src/` directory (one holding `lib.rs` or `main.rs`), relative to the root.
fn src_dirs() -> Vec<PathBuf> {
    let root = root();
    let mut dirs: Vec<PathBuf> = (rust_files().iter())
        .filter(|f| f.ends_with("src/lib.rs") || f.ends_with("src/main.rs"))
        .map(|f| f.parent().unwrap().strip_prefix(&root).unwrap().into())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn relative(path: &Path, to: &Path) -> String {
    path.strip_prefix(to)
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/")
}

fn graph_of(src: &Path) -> Graph {
    let (dir, mut paths) = (root().join(src), Vec::new());
    walk(&dir, false, &mut paths);
    let files: Vec<_> = paths.iter().map(|p| (relative(p, &dir), read(p))).collect();
    build_graph(&files)
}

fn assert_none(problems: &[String], what: &str) {
    assert!(problems.is_empty(), "{what}:\n{}", problems.join("\n"));
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let dirs = src_dirs();
    assert!(
        dirs.contains(&PathBuf::from("core/src")),
        "no core/src in {root:?}",
        root = root()
    );
    let problems: Vec<String> = (dirs.iter())
        .flat_map(|d| describe_cycles(&graph_of(d), &d.display().to_string()))
        .collect();
    assert_none(&problems, "import cycles between top-level modules");
}

#[test]
fn no_file_over_the_line_limit() {
    let mut problems = Vec::new();
    for file in rust_files() {
        // Counted as modgraph.py does: a final newline starts one more (empty) line.
        let lines = read(&file).split('\n').count();
        if lines > MAX_LINES {
            problems.push(format!("{} ({lines} lines)", relative(&file, &root())));
        }
    }
    assert_none(&problems, &format!("files over {MAX_LINES} lines"));
}

#[test]
fn core_imports_only_downward() {
    let graph = graph_of(Path::new("core/src"));
    assert_none(&layer_violations(&graph, CORE_LAYERS), "core layering");
}

mod unit {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_two_module_cycle_is_found_with_the_files_making_each_edge() {
        let graph = build_graph(&[
            ("a.rs", "use crate::b::Thing;\nuse crate::missing;"),
            ("b/mod.rs", "fn f() { crate::a::go() }"),
            ("b/inner.rs", "use crate::c;"),
            ("c.rs", "use crate::error::Error;"),
            ("lib.rs", "use crate::c;"),
        ]);
        assert_eq!(graph.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(cycles(&graph), [["a", "b"]]);
        let text = describe_cycles(&graph, "x/src").join("\n");
        assert!(
            text.contains("a <-> b") && text.contains("b -> a: b/mod.rs"),
            "{text}"
        );
    }

    #[test]
    fn no_cycle_in_a_chain() {
        let graph = build_graph(&[("a.rs", "use crate::b;"), ("b.rs", "use crate::c;")]);
        assert!(cycles(&graph).is_empty());
    }

    #[test]
    fn cfg_test_modules_are_skipped() {
        let text = "#[cfg(test)]\nmod tests {\n    use crate::x;\n    fn f() {\n        crate::y::z();\n    }\n}\nuse crate::after;";
        assert_eq!(imports(text, "me"), set(&["after"]));
    }

    #[test]
    fn comments_are_skipped() {
        let text = "//! see crate::a\n/// crate::b\n// use crate::c;\nlet x = 1; // crate::d\nuse crate::e;";
        assert_eq!(imports(text, "me"), set(&["e"]));
    }

    #[test]
    fn grouped_use_gives_each_first_segment() {
        let text = "pub(crate) use crate::{a, b::c, self, me::x};";
        assert_eq!(imports(text, "me"), set(&["a", "b"]));
        assert_eq!(imports("crate::me::f(); $crate::m::g", "me"), set(&["m"]));
        assert!(imports("mycrate::a; reuse crate::{b}", "me").is_empty());
    }

    #[test]
    fn layers_allow_only_strictly_downward_imports() {
        let graph = build_graph(&[
            ("top.rs", "use crate::{mid, low};"),
            ("mid/mod.rs", "use crate::low;"),
            ("low.rs", "use crate::mid;"),
            ("stray.rs", ""),
        ]);
        let problems = layer_violations(&graph, &["top", "mid", "low"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("`low` imports `mid`") && problems[0].contains("low.rs"));
        assert!(problems[1].contains("`stray` is not in CORE_LAYERS: add it to the table"));
    }
}
