//! The layout rule ARCHITECTURE.md states, kept by a machine: in every crate of the
//! workspace, no module imports one that imports it back (directly or round a longer
//! circle).
//!
//! ```text
//!  crates/<crate>/src/**/*.rs ──► module paths (a/b.rs and a/b/mod.rs are a::b)
//!  each `use` tree and each `crate::…`/`super::…` path ──► an edge to the module it names
//!  (the longest module path it starts with; `mod x;` declarations are not edges)
//!  an edge between a module and its own parts does not count; any other is lifted to the
//!  two subtrees that meet under a common parent (a/x ─► b/y is a ─► b)
//!  strongly connected components of more than one module ──► the test fails, naming them
//! ```
//!
//! A module's tests (`#[cfg(test)]` children, `tests.rs`, `tests/`) may use anything:
//! they are not part of the layout.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is: `["access", "http"]` for src/access/http.rs, `[]` for lib.rs.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib" | "main") {
        parts.push(stem.to_owned());
    }
    parts
}

/// Whether a module is test code only.
fn is_test(module: &[String]) -> bool {
    module.iter().any(|part| part == "tests")
}

/// The code of `text` without `#[cfg(test)]` blocks and comments, roughly: lines from a
/// `#[cfg(test)]` to the end of the file are left out (tests sit at the foot of a file).
fn code(text: &str) -> String {
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The module paths `code` (of `module`) names: every `use` tree (`crate::`, `super::`,
/// `self::` and child modules), and every `crate::…`/`super::…` path in expressions, as
/// lists of segments from the crate root.
fn paths(code: &str, module: &[String], known: &BTreeSet<Vec<String>>) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let statement =
            statement.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" ");
        let mut rest = statement.trim();
        for visibility in ["pub(crate) ", "pub(super) ", "pub "] {
            rest = rest.strip_prefix(visibility).unwrap_or(rest);
        }
        if let Some(tree) = rest.strip_prefix("use ") {
            for path in expand(tree) {
                found.extend(resolve(&path, module, known));
            }
        }
    }
    for start in ["crate::", "super::"] {
        let mut at = 0;
        while let Some(i) = code[at..].find(start).map(|i| i + at) {
            at = i + start.len();
            let before = code[..i].chars().next_back();
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == '_' || b == ':') {
                continue; // part of a longer path, or a `use` tree (read above)
            }
            let end = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| e + i);
            let path: Vec<String> =
                code[i..end].split("::").filter(|p| !p.is_empty()).map(str::to_owned).collect();
            found.extend(resolve(&path, module, known));
        }
    }
    found
}

/// `path` as written in `module`, from the crate root; `None` for another crate's.
fn resolve(path: &[String], module: &[String], known: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let mut base = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => module[..module.len().saturating_sub(1)].to_vec(),
        child => {
            let mut base = module.to_vec();
            base.push(child.to_owned());
            if !known.contains(&base) {
                return None; // another crate (std, serde, ...)
            }
            base.pop();
            return Some([base, path.to_vec()].concat());
        }
    };
    let mut rest = rest;
    while let Some(("super", after)) = rest.split_first().map(|(f, a)| (f.as_str(), a)) {
        base.pop();
        rest = after;
    }
    Some([base, rest.to_vec()].concat())
}

/// `a::b::{c, d::e}` as `[[a,b,c], [a,b,d,e]]`; a plain path as itself.
fn expand(text: &str) -> Vec<Vec<String>> {
    let text = text.trim();
    let segments = |s: &str| -> Vec<String> {
        s.split("::").map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
    };
    match text.find('{') {
        None => vec![segments(text.split(" as ").next().unwrap_or("").trim())],
        Some(open) => {
            let prefix = segments(&text[..open]);
            let inner = &text[open + 1..text.rfind('}').unwrap_or(text.len())];
            let mut depth = 0;
            let mut members = Vec::new();
            let mut current = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        members.push(std::mem::take(&mut current));
                        continue;
                    }
                    _ => {}
                }
                current.push(c);
            }
            members.push(current);
            let mut out = Vec::new();
            for member in members.iter().filter(|m| !m.trim().is_empty()) {
                for tail in expand(member) {
                    let mut path = prefix.clone();
                    path.extend(tail.into_iter().filter(|t| t != "self"));
                    out.push(path);
                }
            }
            out
        }
    }
}

/// The longest known module `path` starts with.
fn target(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|prefix| modules.contains(prefix))
}

/// Modules of one crate that import each other round a circle.
fn circles(src: &Path) -> Vec<Vec<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let modules: BTreeMap<Vec<String>, PathBuf> =
        files.iter().map(|f| (module_of(src, f), f.clone())).filter(|(m, _)| !is_test(m)).collect();
    let known: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).expect("readable");
        for path in paths(&code(&text), module, &known) {
            let Some(to) = target(&path, &known) else { continue };
            // Between a module and its own parts nothing counts; otherwise the edge is
            // between the two subtrees that meet under a common parent.
            let common = module.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == module.len() || common == to.len() {
                continue;
            }
            edges.entry(module[..=common].to_vec()).or_default().insert(to[..=common].to_vec());
        }
    }
    let nodes: BTreeSet<Vec<String>> =
        edges.iter().flat_map(|(a, bs)| std::iter::once(a.clone()).chain(bs.iter().cloned())).collect();
    strongly_connected(&nodes, &edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            c.into_iter().map(|m| if m.is_empty() { "crate".to_owned() } else { m.join("::") }).collect()
        })
        .collect()
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    nodes: &BTreeSet<Vec<String>>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on_stack: BTreeSet<Vec<String>>,
        next: usize,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit(s: &mut State<'_>, node: &Vec<String>) {
        s.index.insert(node.clone(), s.next);
        s.low.insert(node.clone(), s.next);
        s.next += 1;
        s.stack.push(node.clone());
        s.on_stack.insert(node.clone());
        let edges = s.edges;
        for to in edges.get(node).into_iter().flatten() {
            if !s.index.contains_key(to) {
                visit(s, to);
                let low = s.low[node].min(s.low[to]);
                s.low.insert(node.clone(), low);
            } else if s.on_stack.contains(to) {
                let low = s.low[node].min(s.index[to]);
                s.low.insert(node.clone(), low);
            }
        }
        if s.low[node] == s.index[node] {
            let mut component = Vec::new();
            while let Some(top) = s.stack.pop() {
                s.on_stack.remove(&top);
                let done = top == *node;
                component.push(top);
                if done {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for node in nodes {
        if !state.index.contains_key(node) {
            visit(&mut state, node);
        }
    }
    state.out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("the crates").flatten() {
        let src = entry.path().join("src");
        if src.is_dir() {
            for circle in circles(&src) {
                found.push(format!("{}: {}", entry.file_name().to_string_lossy(), circle.join(" ⇄ ")));
            }
        }
    }
    found.sort();
    assert!(found.is_empty(), "modules that import each other:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_through_use_groups_and_super() {
    let dir = std::env::temp_dir().join(format!("duet-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a")).expect("made");
    std::fs::write(dir.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("written");
    std::fs::write(dir.join("a/mod.rs"), "mod inner;\nuse inner::X;\nuse crate::{c, d::{self, Y}};\n")
        .expect("written");
    std::fs::write(dir.join("a/inner.rs"), "use super::super::b;\nuse super::Z;\n").expect("written");
    std::fs::write(
        dir.join("b.rs"),
        "pub struct Thing;\nfn f() { crate::a::inner::g(); }\n#[cfg(test)]\nuse crate::c;\n",
    )
    .expect("written");
    std::fs::write(dir.join("c.rs"), "// crate::b::Thing in a comment is no edge\n").expect("written");
    std::fs::write(dir.join("d.rs"), "use std::fmt;\nuse crate::c as see;\n").expect("written");
    let found = circles(&dir);
    assert_eq!(
        found,
        [vec!["b".to_owned(), "a".to_owned()]],
        "a ⇄ b (a part of a uses b); a and its part, c and d are no circle"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
