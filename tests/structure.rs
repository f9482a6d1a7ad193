//! The shape of the code: short files, short functions, and no circle among the modules.
//!
//! - No file under `src/` or `actors/` is over [`MAX_FILE_LINES`] lines.
//! - No function there is over [`MAX_FN_LINES`] lines (from its `fn` line to its closing brace).
//! - The modules form no circle: module `a` depends on module `b` when code of `a` (not its
//!   comments) names `crate::b…` or reaches `b` through `super::`. A module and the modules
//!   inside it count as one (a parent declares its children, and children use their parent's
//!   items), and the crate root's re-exports are not a dependency of their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

/// Every Rust file under `src/` and `actors/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    let mut pending = vec![root.join("src"), root.join("actors")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let relative = path
                    .strip_prefix(root)
                    .expect("under the root")
                    .to_path_buf();
                files.push((relative, text));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn no_file_is_over_the_limit() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_FILE_LINES)
        .map(|(path, text)| format!("{} ({} lines)", path.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines: {long:?}");
}

/// Whether `line` starts a function: `fn`, after any of `pub`, `pub(crate)`, `async`,
/// `const`, `unsafe`, `extern "…"`.
fn starts_fn(line: &str) -> bool {
    let mut rest = line.trim_start();
    loop {
        let before = rest;
        for prefix in [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "async ",
            "const ",
            "unsafe ",
        ] {
            rest = rest.strip_prefix(prefix).unwrap_or(rest);
        }
        if rest == before {
            break;
        }
    }
    rest.starts_with("fn ")
}

/// Functions longer than the limit in `text`: (first line number, length). Braces are counted
/// outside strings, characters and comments, which is enough for this crate's code.
fn long_functions(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut long = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        if !starts_fn(line) {
            continue;
        }
        let mut depth = 0i64;
        let mut opened = false;
        for (offset, body) in lines[start..].iter().enumerate() {
            depth += brace_balance(body);
            opened |= body.contains('{');
            if !opened && body.trim_end().ends_with(';') {
                break; // a declaration without a body
            }
            if opened && depth <= 0 {
                if offset + 1 > MAX_FN_LINES {
                    long.push((start + 1, offset + 1));
                }
                break;
            }
        }
    }
    long
}

/// `{` minus `}` on one line, outside string and character literals and `//` comments.
fn brace_balance(line: &str) -> i64 {
    let bytes = line.as_bytes();
    let (mut balance, mut i) = (0, 0);
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'/' if bytes.get(i + 1) == Some(&b'/') => break,
                // A character literal: '{', '}', '"', or an escape such as '\''.
                b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
                b'\'' if bytes.get(i + 1) == Some(&b'\\') && bytes.get(i + 3) == Some(&b'\'') => {
                    i += 3
                }
                b'{' => balance += 1,
                b'}' => balance -= 1,
                _ => {}
            }
        }
        i += 1;
    }
    balance
}

#[test]
fn no_function_is_over_the_limit() {
    let mut long = Vec::new();
    for (path, text) in sources() {
        for (line, length) in long_functions(&text) {
            long.push(format!("{}:{line} ({length} lines)", path.display()));
        }
    }
    assert!(long.is_empty(), "over {MAX_FN_LINES} lines: {long:?}");
}

#[test]
fn the_function_length_check_finds_a_long_function() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let text = format!("fn short() {{}}\npub(crate) fn long() {{\n{body}}}\n");
    assert_eq!(long_functions(&text), vec![(2, MAX_FN_LINES + 2)]);
    assert_eq!(brace_balance(r#"let s = "{"; let c = '}'; // {"#), 0);
}

/// The module a file is: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`, `src/lib.rs` is the
/// root `""`, `actors/x.rs` is `actors::x`.
fn module_of(path: &Path) -> String {
    let mut parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.first().is_some_and(|p| p == "src") {
        parts.remove(0);
    }
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn within(module: &str, outer: &str) -> bool {
    outer.is_empty() || module == outer || module.starts_with(&format!("{outer}::"))
}

/// The known module that `path` (`a::b::Item`) names: its longest prefix that is a module.
fn named_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// The paths after each `crate::` or `super::` chain in the code of `text` (comments left out),
/// made absolute from `module`.
fn referenced_paths(module: &str, text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(['c', 's']) {
            let tail = &rest[at..];
            let preceded = at > 0 && {
                let before = rest.as_bytes()[at - 1];
                before.is_ascii_alphanumeric() || before == b'_'
            };
            let absolute = if preceded {
                None
            } else if let Some(after) = tail.strip_prefix("crate::") {
                Some(path_at(after))
            } else if tail.starts_with("super::") {
                let mut base: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
                // In `x/mod.rs` or `x.rs` alike, `super` is the module containing `x`.
                let mut after = tail;
                while let Some(next) = after.strip_prefix("super::") {
                    base.pop();
                    after = next;
                }
                let mut joined = base.join("::");
                if !joined.is_empty() {
                    joined.push_str("::");
                }
                joined.push_str(&path_at(after));
                Some(joined)
            } else {
                None
            };
            if let Some(path) = absolute {
                paths.push(path);
            }
            rest = &rest[at + 1..];
        }
    }
    paths
}

/// The `a::b::c` path at the start of `text`; `{` groups stop it at their parent.
fn path_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_string()
}

/// Module → the modules it depends on (outside itself, its ancestors and its descendants).
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = sources();
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let module = module_of(path);
        let edges = graph.entry(module.clone()).or_default();
        for reference in referenced_paths(&module, text) {
            let Some(target) = named_module(&reference, &modules) else {
                continue;
            };
            if target.is_empty() || within(&target, &module) || within(&module, &target) {
                continue;
            }
            edges.insert(target);
        }
    }
    graph
}

/// The groups of modules that depend on each other in a circle (Tarjan's strongly connected
/// components of more than one module).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Each module is taken together with its descendants: an edge into `a::b` is an edge into
    // the unit `a` when `a` is the top-level module holding it.
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in graph {
        let entry = units.entry(top(from)).or_default();
        for to in targets {
            if top(to) != top(from) {
                entry.insert(top(to));
            }
        }
    }
    let names: Vec<String> = units.keys().cloned().collect();
    let index_of: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            units[n]
                .iter()
                .filter_map(|t| index_of.get(t.as_str()).copied())
                .collect()
        })
        .collect();
    let mut state = Tarjan {
        edges: &edges,
        index: vec![None; names.len()],
        low: vec![0; names.len()],
        on_stack: vec![false; names.len()],
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in 0..names.len() {
        if state.index[v].is_none() {
            state.visit(v);
        }
    }
    state
        .components
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.into_iter().map(|i| names[i].clone()).collect())
        .collect()
}

struct Tarjan<'a> {
    edges: &'a [Vec<usize>],
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &self.edges[v] {
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(index) if self.on_stack[w] => self.low[v] = self.low[v].min(index),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}

#[test]
fn the_modules_form_no_circle() {
    let graph = module_graph();
    assert!(graph.len() > 40, "modules not found: {graph:?}");
    let found = circles(&graph);
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let detail: Vec<String> = found
        .iter()
        .flat_map(|circle| {
            graph.iter().flat_map(move |(from, to)| {
                to.iter()
                    .filter(move |t| {
                        top(t) != top(from)
                            && circle.contains(&top(from))
                            && circle.contains(&top(t))
                    })
                    .map(move |t| format!("{from} -> {t}"))
            })
        })
        .collect();
    assert!(
        found.is_empty(),
        "modules in a circle: {found:?}; their edges: {detail:#?}"
    );
}

#[test]
fn the_circle_check_finds_a_circle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b::x"]),
        ("b::x", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_string(), to.into_iter().map(String::from).collect()))
    .collect();
    let mut found = circles(&graph);
    for c in &mut found {
        c.sort();
    }
    assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert_eq!(
        referenced_paths(
            "actors::recorder::inbound",
            "use super::Recorder;\nuse crate::json::{x}; // crate::no"
        ),
        vec!["actors::recorder::Recorder".to_string(), "json".into()]
    );
}
