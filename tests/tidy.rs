//! Tidy checks on the source tree (like rust-analyzer's tidy tests): the import graph between
//! the top-level modules of `src/` has no cycle and follows the layer order written in
//! ARCHITECTURE.md; every source file opens with a `//!` line and stays under
//! [`MAX_LINES`] lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The longest a source file may grow; split it by concept before (see ARCHITECTURE.md).
const MAX_LINES: usize = 500;
/// The line of ARCHITECTURE.md that precedes the layer list.
const LAYERS_MARKER: &str = "<!-- tidy: layers, lowest first -->";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src/") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/store/writer.rs` → `store`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// The code of a file without its unit tests (which may reach anywhere), comments and string
/// literals (which may mention any path).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                out.push_str("\"\"");
                let mut escaped = false;
                for c in chars.by_ref() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => break,
                        _ => {}
                    }
                }
            }
            // A char literal ('"', '\'', '{'); lifetimes ('a) are left alone.
            '\'' => {
                let ahead: String = chars.clone().take(4).collect();
                let len = if ahead.starts_with('\\') {
                    ahead.find('\'').map(|i| i + 1)
                } else if ahead.chars().nth(1) == Some('\'') {
                    Some(2)
                } else {
                    None
                };
                match len {
                    Some(n) => {
                        for _ in 0..n {
                            chars.next();
                        }
                        out.push_str("' '");
                    }
                    None => out.push(c),
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a piece of code names: `crate::x…` and `use crate::{x, y::z}`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `babelcast_crate::` and the like
        }
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group, skipping nested groups.
            let mut depth = 0;
            let mut at_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if c.is_whitespace() => {}
                    _ if at_start && depth == 0 => {
                        at_start = false;
                        let name = ident_at(&group[j..]);
                        if !name.is_empty() {
                            out.insert(name.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident_at(rest);
            if !name.is_empty() {
                out.insert(name.to_string());
            }
        }
    }
    out
}

/// The layers of ARCHITECTURE.md, lowest first: the list after [`LAYERS_MARKER`], one
/// numbered line per layer naming its modules in backticks after a colon.
fn layers() -> Vec<Vec<String>> {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = doc
        .find(LAYERS_MARKER)
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no line {LAYERS_MARKER:?}"));
    let mut layers = Vec::new();
    for line in doc[start + LAYERS_MARKER.len()..].lines().skip(1) {
        let line = line.trim();
        if !line.starts_with(|c: char| c.is_ascii_digit()) {
            break;
        }
        let modules = line.split_once(':').map_or("", |(_, m)| m);
        layers.push(
            modules
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect(),
        );
    }
    assert!(!layers.is_empty(), "no layer list after {LAYERS_MARKER:?}");
    layers
}

/// Module → set of modules it imports, over every non-test source file of `src/`.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let m = module_of(&src, file);
        if m == "main" || m == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        let entry = graph.entry(m.clone()).or_default();
        for t in imports(&code_of(&text)) {
            if t != m && modules.contains(&t) {
                entry.insert(t);
            }
        }
    }
    graph
}

/// The cycles of the graph (strongly connected components of more than one module).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Kosaraju: order by finish time, then collect on the reversed graph.
    fn finish(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !seen.insert(v.to_string()) {
            return;
        }
        for w in g.get(v).into_iter().flatten() {
            finish(w, g, seen, order);
        }
        order.push(v.to_string());
    }
    let mut reversed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, targets) in graph {
        for b in targets {
            reversed.entry(b.clone()).or_default().insert(a.clone());
        }
    }
    let (mut seen, mut order) = (BTreeSet::new(), Vec::new());
    for v in graph.keys() {
        finish(v, graph, &mut seen, &mut order);
    }
    let mut assigned = BTreeSet::new();
    let mut out = Vec::new();
    for v in order.iter().rev() {
        let mut component = Vec::new();
        finish(v, &reversed, &mut assigned, &mut component);
        if component.len() > 1 {
            component.sort();
            out.push(component);
        }
    }
    out
}

/// The upward imports: `(from, to)` where `to` sits in a higher layer than `from`.
fn upward(graph: &BTreeMap<String, BTreeSet<String>>, layers: &[Vec<String>]) -> Vec<String> {
    let layer_of = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m));
    let mut problems = Vec::new();
    for (from, targets) in graph {
        let Some(lf) = layer_of(from) else {
            problems.push(format!(
                "module `{from}` is in no layer of ARCHITECTURE.md: add it to the list"
            ));
            continue;
        };
        for to in targets {
            match layer_of(to) {
                Some(lt) if lt > lf => problems.push(format!(
                    "`{from}` (layer {}) imports `{to}` (layer {}): an arrow {from} -> {to} \
                     goes up the layers",
                    lf + 1,
                    lt + 1
                )),
                Some(_) => {}
                None => problems.push(format!(
                    "module `{to}` is in no layer of ARCHITECTURE.md: add it to the list"
                )),
            }
        }
    }
    problems
}

#[test]
fn modules_form_layers_without_cycles() {
    let graph = graph();
    let cycles = cycles(&graph);
    let arrows: Vec<String> = cycles
        .iter()
        .map(|c| {
            let inside: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("cycle {}: {}", c.join(", "), inside.join(", "))
        })
        .collect();
    assert!(
        arrows.is_empty(),
        "import cycles between top-level modules:\n{}",
        arrows.join("\n")
    );
    let problems = upward(&graph, &layers());
    assert!(
        problems.is_empty(),
        "imports against the layer order of ARCHITECTURE.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn source_files_are_short_and_say_what_they_own() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut problems = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable source");
        let rel = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{rel}: {lines} lines (at most {MAX_LINES}; split it by concept)"
            ));
        }
        if !text.starts_with("//!") {
            problems.push(format!(
                "{rel}: does not open with a `//!` line saying what it owns"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: it must see the arrows, including grouped and nested `use`, and miss
/// what comments, strings and tests mention.
#[test]
fn the_checker_sees_imports_and_only_imports() {
    let code = code_of(
        "use crate::a::X;\nuse crate::{b, c::{D, e}, f::G};\nlet s = \"crate::h\"; // crate::i\n\
         /* crate::j */ let q = '\"'; crate::k::l();\n#[cfg(test)]\nuse crate::m;",
    );
    let found: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(found, ["a", "b", "c", "f", "k"]);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("low", vec![]),
        ("mid", vec!["low"]),
        ("high", vec!["mid", "low"]),
    ]
    .into_iter()
    .map(|(m, t)| (m.to_string(), t.into_iter().map(String::from).collect()))
    .collect();
    let layers = vec![
        vec!["low".to_string()],
        vec!["mid".into()],
        vec!["high".into()],
    ];
    assert!(cycles(&graph).is_empty());
    assert!(upward(&graph, &layers).is_empty());
    // An upward import is named by its arrow.
    let mut bad = graph.clone();
    bad.get_mut("low").unwrap().insert("high".into());
    let problems = upward(&bad, &layers);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("low -> high"), "{problems:?}");
    assert_eq!(cycles(&bad), [vec!["high", "low", "mid"]]);
}
