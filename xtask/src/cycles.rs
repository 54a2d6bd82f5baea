//! Rule 9: no import loops inside a crate. At every level of a crate's module tree, the
//! sibling modules (a directory's files and folders, each with everything under it) import
//! each other in one direction only, so the tree reads from the bottom up. A module and its
//! own submodules may use each other (`use super::*`); siblings may not both ways.
//!
//! Read from the source, not the compiler: the module tree follows `mod name;` from each
//! library or binary root, and an import is any `crate::…` or `super::…` path outside comments
//! and test modules, resolved to the deepest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path inside a crate (`[]`: the root).
type ModPath = Vec<String>;

/// One import of a file: the path it names, and where (file, line, the path as written).
#[derive(Debug, Clone)]
struct Import {
    to: ModPath,
    at: String,
}

/// The modules of one crate target, each module file's imports, and its re-exports (name →
/// the path it re-exports).
#[derive(Debug, Default)]
struct Tree {
    modules: BTreeSet<ModPath>,
    imports: BTreeMap<ModPath, Vec<Import>>,
    reexports: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
}

/// The import loops of the crate target rooted at `root` (`name` labels the findings).
pub(crate) fn check(name: &str, root: &Path) -> Vec<String> {
    let mut tree = Tree::default();
    read_module(root, Vec::new(), true, &mut tree);
    loops(&tree).into_iter().map(|l| format!("{name}: import loop between sibling modules: {l}")).collect()
}

/// Reads the module file `file` at `path` (`dir_owner`: a `lib.rs`, `main.rs` or `mod.rs`,
/// whose submodules sit beside it) and every submodule it declares.
fn read_module(file: &Path, path: ModPath, dir_owner: bool, tree: &mut Tree) {
    let Ok(text) = std::fs::read_to_string(file) else { return };
    let code = without_tests_and_comments(&text);
    let children_dir = if dir_owner { file.parent().map(Path::to_owned) } else { Some(file.with_extension("")) };
    tree.modules.insert(path.clone());
    let mut imports = Vec::new();
    let mut reexports = BTreeMap::new();
    for (line_no, statement) in statements(&code) {
        let (reexport, used) = match use_tree(&statement) {
            Some((public, tree)) => (public, expand("", tree)),
            None => (false, inline_paths(&statement)),
        };
        for written in used {
            let resolved = resolve(&path, &written);
            if reexport
                && let Some((name, target)) = written
                    .rsplit_once("::")
                    .map(|(_, n)| n)
                    .zip(resolved.clone().or_else(|| relative(&path, &written)))
            {
                reexports.insert(name.split(" as ").last().unwrap_or(name).trim().to_owned(), target);
            }
            if let Some(to) = resolved {
                imports.push(Import { to, at: format!("{}:{line_no} `{written}`", file.display()) });
            }
        }
    }
    tree.imports.insert(path.clone(), imports);
    tree.reexports.insert(path.clone(), reexports);
    for child in declared_modules(&code) {
        let Some(dir) = &children_dir else { continue };
        let mut child_path = path.clone();
        child_path.push(child.clone());
        let flat = dir.join(format!("{child}.rs"));
        let nested = dir.join(&child).join("mod.rs");
        if flat.exists() {
            read_module(&flat, child_path, false, tree);
        } else if nested.exists() {
            read_module(&nested, child_path, true, tree);
        }
    }
}

/// The lines of `text` (numbered from 1) without comments, and without anything from the first
/// `#[cfg(test)]` on (test modules sit at the end of a file).
fn without_tests_and_comments(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find("//") {
            // A `//` inside a string is rare in a `use`; cutting there is good enough here.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        };
        out.push((i + 1, code.to_owned()));
    }
    out
}

/// `mod name;` declarations (inline `mod name { … }` are part of their file).
fn declared_modules(code: &[(usize, String)]) -> Vec<String> {
    code.iter()
        .filter_map(|(_, line)| {
            let l = line.trim();
            let l = match l.strip_prefix("pub") {
                Some(r) if r.starts_with('(') => r[r.find(')')? + 1..].trim_start(),
                Some(r) => r.trim_start(),
                None => l,
            };
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The code as statements to read: a `use` item whole (from `use` to its `;`, over as many
/// lines as it takes), every other line alone. Each with its first line's number.
fn statements(code: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in code {
        if let Some((start, text)) = &mut open {
            text.push(' ');
            text.push_str(line.trim());
            if line.contains(';') {
                out.push((*start, std::mem::take(text)));
                open = None;
            }
            continue;
        }
        if use_tree(line).is_some() && !line.contains(';') {
            open = Some((*n, line.trim().to_owned()));
        } else {
            out.push((*n, line.clone()));
        }
    }
    out.extend(open);
    out
}

/// A `use` item's tree (the text after `use`, without the `;`), and whether it is a re-export
/// (`pub use`, `pub(crate) use`…).
fn use_tree(statement: &str) -> Option<(bool, &str)> {
    let s = statement.trim();
    let (public, rest) = match s.strip_prefix("pub") {
        // `pub use`, `pub(crate) use`, `pub(super) use`, `pub(in …) use`.
        Some(r) if r.starts_with('(') => (true, r[r.find(')')? + 1..].trim_start()),
        Some(r) => (true, r.trim_start()),
        None => (false, s),
    };
    let tree = rest.strip_prefix("use ")?;
    Some((public, tree.split(';').next().unwrap_or(tree).trim()))
}

/// The paths of a use tree: `a::{b::C, d::{E, F}}` gives `a::b::C`, `a::d::E`, `a::d::F`.
fn expand(prefix: &str, tree: &str) -> Vec<String> {
    let join = |p: &str, s: &str| if p.is_empty() { s.to_owned() } else { format!("{p}::{s}") };
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let item = tree.split(" as ").next().unwrap_or(tree).trim();
            let item = item.trim_end_matches("::*").trim_end_matches("::self");
            if item == "self" || item == "*" { vec![prefix.to_owned()] } else { vec![join(prefix, item)] }
        }
        Some(open) => {
            let head = join(prefix, tree[..open].trim_end_matches("::").trim());
            let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or(&tree[open + 1..]);
            let mut items = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push(&inner[start..]);
            items.into_iter().filter(|i| !i.trim().is_empty()).flat_map(|i| expand(&head, i)).collect()
        }
    }
}

/// The `crate::…` and `super::…` paths written in a line of code.
fn inline_paths(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < line.len() {
        if !line.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &line[i..];
        let starts = rest.starts_with("crate::") || rest.starts_with("super::");
        let boundary =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b':');
        if !(starts && boundary) {
            i += 1;
            continue;
        }
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        out.push(rest[..end].trim_end_matches(':').to_owned());
        i += end;
    }
    out
}

/// The module path `written` (a `crate::` or `super::` path used in module `from`) names,
/// segment by segment (the caller keeps the deepest known module).
fn resolve(from: &ModPath, written: &str) -> Option<ModPath> {
    let mut segments = written.split("::").filter(|s| !s.is_empty());
    let mut path: ModPath = match segments.next()? {
        "crate" => Vec::new(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    for s in segments {
        match s {
            "super" => {
                path.pop()?;
            }
            "self" => {}
            s => path.push(s.to_owned()),
        }
    }
    Some(path)
}

/// A path relative to module `from` (a re-export of a submodule's item: `pub use a::B`).
fn relative(from: &ModPath, written: &str) -> Option<ModPath> {
    let mut path = from.clone();
    path.extend(written.split("::").filter(|s| !s.is_empty() && *s != "self").map(str::to_owned));
    Some(path)
}

/// The module `path` names: its deepest known module, following a re-export of the next
/// segment (`crate::Thing` re-exported from `crate::a::b`) once.
fn target(tree: &Tree, path: &ModPath) -> ModPath {
    let deepest = |p: &ModPath| {
        let mut p = p.clone();
        while !tree.modules.contains(&p) {
            p.pop();
        }
        p
    };
    let module = deepest(path);
    let through =
        path.get(module.len()).and_then(|name| tree.reexports.get(&module).and_then(|r| r.get(name))).map(deepest);
    through.unwrap_or(module)
}

/// The import loops among siblings, at every level, one line each.
fn loops(tree: &Tree) -> Vec<String> {
    // (parent, from sibling, to sibling) -> one example of the import.
    let mut edges: BTreeMap<(ModPath, String, String), String> = BTreeMap::new();
    for (from, imports) in &tree.imports {
        for import in imports {
            let to = target(tree, &import.to);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                let key = (from[..common].to_vec(), from[common].clone(), to[common].clone());
                edges.entry(key).or_insert_with(|| import.at.clone());
            }
        }
    }
    let mut by_parent: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (parent, a, b) in edges.keys() {
        by_parent.entry(parent.clone()).or_default().entry(a.clone()).or_default().insert(b.clone());
    }
    let mut out = Vec::new();
    for (parent, graph) in by_parent {
        for component in strongly_connected(&graph) {
            let at = |m: &str| {
                let mut p = parent.clone();
                p.push(m.to_owned());
                format!("crate::{}", p.join("::"))
            };
            let mut why = Vec::new();
            for a in &component {
                for b in graph.get(a).into_iter().flatten().filter(|b| component.contains(*b)) {
                    if let Some(example) = edges.get(&(parent.clone(), a.clone(), b.clone())) {
                        why.push(format!("{} -> {} ({example})", at(a), at(b)));
                    }
                }
            }
            out.push(why.join("; "));
        }
    }
    out
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn strongly_connected(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The library and binary roots of a package, from its `cargo metadata` targets.
pub(crate) fn roots(package: &serde_json::Value) -> Vec<(String, PathBuf)> {
    package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "lib" || k == "bin" || k == "rlib")))
        .filter_map(|t| Some((t["name"].as_str()?.to_owned(), PathBuf::from(t["src_path"].as_str()?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn sibling_loops_are_found_and_parent_child_use_is_not() {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write(
            &dir,
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\npub use a::G;\n"),
                ("a.rs", "use crate::b::Thing;\n"),
                ("b.rs", "// use crate::a::X;\nuse crate::{\n    c::Y,\n    c::Z,\n};\n"),
                ("c.rs", "fn f() { crate::G::g(); }\n"),
                ("d/mod.rs", "mod inner;\npub(crate) use inner::Z;\n"),
                (
                    "d/inner.rs",
                    "use super::*;\nuse super::super::c::Q;\n#[cfg(test)]\nmod tests { use crate::a::T; }\n",
                ),
            ],
        );
        let found = check("t", &dir.join("lib.rs"));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(found.len(), 1, "{found:#?}");
        for edge in ["crate::a -> crate::b", "crate::b -> crate::c", "crate::c -> crate::a"] {
            assert!(found[0].contains(edge), "{edge}: {found:#?}");
        }
        assert!(!found[0].contains("crate::d"), "d imports c one way only: {found:#?}");
    }

    #[test]
    fn groups_and_supers_resolve() {
        let (public, tree) =
            use_tree("pub(crate) use crate::{backend::Backend, config::{Config, X as Y}, deep::*};").unwrap();
        assert!(public);
        assert_eq!(
            expand("", tree),
            vec!["crate::backend::Backend", "crate::config::Config", "crate::config::X", "crate::deep"]
        );
        assert_eq!(inline_paths("let x = crate::a::b(super::c::D);"), vec!["crate::a::b", "super::c::D"]);
        assert_eq!(
            resolve(&vec!["a".into(), "b".into()], "super::c::D"),
            Some(vec!["a".into(), "c".into(), "D".into()])
        );
        assert_eq!(resolve(&vec![], "super::x"), None);
    }
}
