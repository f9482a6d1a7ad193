//! The message tables of docs/architecture.md and the code cannot disagree: every message in
//! the tables has a handler in the code, and every message some actor handles is in a table.

use std::collections::BTreeSet;
use std::path::Path;

/// The names in the first column of the tables after the lines "Public messages" and
/// "Internal messages": the first backticked word of each row, without generics.
fn documented() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .expect("docs/architecture.md");
    let mut names = BTreeSet::new();
    let (mut in_table, mut rows) = (false, 0);
    for line in text.lines() {
        if line.starts_with("Public messages") || line.starts_with("Internal messages") {
            (in_table, rows) = (true, 0);
            continue;
        }
        if !in_table {
            continue;
        }
        if line.trim().is_empty() && rows > 0 {
            // A blank line after a table's rows ends it.
            in_table = false;
            continue;
        }
        rows += usize::from(line.starts_with('|'));
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let name: String = cell
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !name.is_empty() && name != "message" {
            names.insert(name);
        }
    }
    names
}

/// Every Rust file under `src/` and `actors/`: its path from the crate's root, and its text.
fn sources() -> Vec<(String, String)> {
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
                let relative = path.strip_prefix(root).expect("under the root");
                files.push((relative.to_string_lossy().into_owned(), text));
            }
        }
    }
    files
}

/// Every message type some `impl … Handler<M>` in `src/` or `actors/` handles.
fn handled() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, text) in sources() {
        names.extend(handled_by_macro(&text));
        for line in text.lines().filter(|l| l.trim_start().starts_with("impl")) {
            let Some(at) = line.find("Handler<") else {
                continue;
            };
            let rest = &line[at + "Handler<".len()..];
            let rest = rest.rsplit("::").next().unwrap_or(rest);
            let rest = rest.strip_prefix("crate::messages::").unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

/// The messages listed in a `through_the_mailbox!(…)` invocation, the macro that writes the
/// Recorder's handlers of the messages its inbox also takes (`actors/recorder/inbound.rs`).
fn handled_by_macro(text: &str) -> Vec<String> {
    let Some(start) = text.find("\nthrough_the_mailbox!(") else {
        return Vec::new();
    };
    let list = &text[start + "\nthrough_the_mailbox!(".len()..];
    let list = &list[..list.find(')').unwrap_or(list.len())];
    list.split(',')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn every_documented_message_is_handled_and_every_handled_one_documented() {
    let documented = documented();
    let handled = handled();
    assert!(documented.len() > 30, "tables not found: {documented:?}");
    let undocumented: Vec<_> = handled.difference(&documented).collect();
    let unhandled: Vec<_> = documented.difference(&handled).collect();
    assert!(
        undocumented.is_empty() && unhandled.is_empty(),
        "handled but not in docs/architecture.md: {undocumented:?}; \
         in docs/architecture.md but handled nowhere: {unhandled:?}"
    );
}

/// The files named in the first column of the table after "## Modules".
fn listed_modules(text: &str) -> BTreeSet<String> {
    let Some(start) = text.find("\n## Modules") else {
        return BTreeSet::new();
    };
    let section = &text[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|cell| cell.split('`').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_module_list_names_every_file_and_only_those() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs");
    let listed = listed_modules(&text);
    let files: BTreeSet<String> = sources().into_iter().map(|(path, _)| path).collect();
    let missing: Vec<_> = files.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&files).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "files not in docs/architecture.md's module list: {missing:?}; listed but gone: {gone:?}"
    );
}
