//! The house: the import graph between the files of `src/` has no cycle, and no file
//! imports from a floor above its own. The floors are the tables of
//! `docs/architecture.md` (one per folder that has one; `src/` must), so the picture a
//! newcomer reads is the rule the code is held to.
//!
//! An edge is every `crate::`, `super::` and `self::` path (and a bare path through a
//! child module the file declares), in `use` lines and inline, outside `#[cfg(test)]`
//! items; test doubles under `cfg(any(test, feature = "testing"))` count. A path ends at
//! the deepest module that is a file of `src/`; a folder's `mod.rs` (or the `x.rs`
//! beside a folder `x/`) is that folder's module. A file naming its own ancestor
//! modules is not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path below the crate root (`["pipeline", "candidates"]`).
type Module = Vec<String>;

#[test]
fn the_import_graph_has_no_cycle_and_no_import_runs_up_a_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = modules_of(&root.join("src"));
    let floors = Floors::parse(
        &std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs/architecture.md"),
    );
    let edges = edges_of(&modules);
    let count: usize = edges.values().map(BTreeMap::len).sum();
    assert!(
        count > 200,
        "the scanner found only {count} edges: it is reading nothing"
    );

    let mut faults = Vec::new();
    for (from, targets) in &edges {
        for (to, names) in targets {
            if let Err(why) = floors.allows(from, to) {
                faults.push(format!(
                    "{} -> {} ({}): {why}",
                    file_of(&modules, from),
                    file_of(&modules, to),
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    for cycle in cycles(&edges) {
        faults.push(format!(
            "a cycle: {}",
            cycle
                .iter()
                .map(|m| file_of(&modules, m))
                .collect::<Vec<_>>()
                .join(" -> ")
        ));
    }
    assert!(faults.is_empty(), "the house:\n{}", faults.join("\n"));
}

#[test]
fn the_scanner_sees_use_trees_inline_paths_and_skips_test_code() {
    let text = r#"
        use crate::{a::b::{C, d}, e};
        use super::f as g;
        pub(crate) use self::h::I;
        use child::J;
        mod child;
        // crate::comment::X
        fn f() { let s = "crate::string::X"; crate::inline::call(); let c = '{'; }
        #[cfg(test)]
        mod tests { use crate::testonly::X; }
        #[cfg(any(test, feature = "testing"))]
        pub mod doubles { use crate::double::Y; }
    "#;
    let found: BTreeSet<String> = paths_in(&strip(text))
        .into_iter()
        .map(|(p, _)| p.join("::"))
        .collect();
    let want: BTreeSet<String> = [
        "crate::a::b::C",
        "crate::a::b::d",
        "crate::e",
        "super::f",
        "self::h::I",
        "child::J",
        "crate::inline::call",
        "crate::double::Y",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, want);
}

#[test]
fn an_upward_import_and_a_cycle_are_caught() {
    let floors = Floors::parse(
        "| floor | in `src/` |\n|---|---|\n| 2 | `top.rs` |\n| 1 | `ground/`, `side.rs` |\n",
    );
    let m = |s: &str| -> Module { s.split("::").map(String::from).collect() };
    assert!(floors.allows(&m("top"), &m("ground::x")).is_ok());
    assert!(floors.allows(&m("ground::x"), &m("top")).is_err());
    assert!(floors.allows(&m("side"), &m("ground")).is_ok());
    assert!(floors.allows(&m("nowhere"), &m("ground")).is_err());

    let mut edges: Edges = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges.entry(m(a)).or_default().insert(m(b), BTreeSet::new());
    }
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 4, "{found:?}");
}

/// Every module of the crate, with its file.
fn modules_of(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).expect("under src");
            let mut module: Module = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            // `lib.rs` is the root; a folder's `mod.rs` is the folder; `main.rs` is
            // the binary, a root of its own above the library.
            if module == ["lib"] {
                module.clear();
            } else if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            out.insert(module, path);
        }
    }
    out
}

fn file_of(modules: &BTreeMap<Module, PathBuf>, m: &Module) -> String {
    modules
        .get(m)
        .map(|p| {
            let s = p.to_string_lossy();
            s[s.find("src/").unwrap_or(0)..].to_string()
        })
        .unwrap_or_else(|| m.join("::"))
}

/// from → to → the names taken.
type Edges = BTreeMap<Module, BTreeMap<Module, BTreeSet<String>>>;

fn edges_of(modules: &BTreeMap<Module, PathBuf>) -> Edges {
    let mut edges: Edges = BTreeMap::new();
    for (module, path) in modules {
        let text = std::fs::read_to_string(path).expect("read a source file");
        let code = strip(&text);
        let children = declared_children(&code);
        // The binary's `crate::` is itself; it reaches the library by its name.
        let is_bin = module == &vec!["main".to_string()];
        for (segments, _) in paths_in(&code) {
            let absolute: Module = match segments[0].as_str() {
                "crate" if is_bin => continue,
                "crate" => segments[1..].to_vec(),
                "bundleforge" if is_bin => segments[1..].to_vec(),
                "super" | "self" => {
                    let mut at = module.clone();
                    let mut rest = &segments[..];
                    while let Some(first) = rest.first() {
                        match first.as_str() {
                            "super" => {
                                at.pop();
                            }
                            "self" => {}
                            _ => break,
                        }
                        rest = &rest[1..];
                    }
                    at.extend(rest.iter().cloned());
                    at
                }
                first if children.contains(first) => {
                    let mut at = module.clone();
                    at.extend(segments.iter().cloned());
                    at
                }
                _ => continue,
            };
            let Some(target) = (0..=absolute.len())
                .rev()
                .map(|n| absolute[..n].to_vec())
                .find(|m| modules.contains_key(m) || m.is_empty())
            else {
                continue;
            };
            // Oneself and one's ancestors are not edges.
            if module.starts_with(&target) {
                continue;
            }
            let name = absolute.get(target.len()..).map_or(String::new(), |rest| {
                rest.first().cloned().unwrap_or_default()
            });
            let names = edges
                .entry(module.clone())
                .or_default()
                .entry(target)
                .or_default();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    edges
}

/// `mod x;` and `mod x {` declarations of a file (its child modules).
fn declared_children(code: &str) -> BTreeSet<String> {
    let words: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[0] == "mod")
        .map(|w| w[1].to_string())
        .collect()
}

/// The code without comments, string and char literals, and `#[cfg(test)]` items.
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_prefix(&chars[..i]) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{…}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    skip_test_items(&out)
}

/// Whether an `r` after these characters opens a raw string (`r"`, `br"`), not ends
/// an identifier.
fn raw_prefix(before: &[char]) -> bool {
    let ident = |c: &char| c.is_alphanumeric() || *c == '_';
    match before {
        [.., p, 'b'] => !ident(p),
        ['b'] => true,
        [.., p] => !ident(p),
        [] => true,
    }
}

/// Blanks every item under `#[cfg(test)]` (a whole file under `#![cfg(test)]`).
fn skip_test_items(code: &str) -> String {
    let compact = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if compact(code).contains("#![cfg(test)]") {
        return String::new();
    }
    let mut out = String::with_capacity(code.len());
    let mut i = 0;
    while i < code.len() {
        // The attribute as written, up to its closing bracket.
        let attribute = code[i..]
            .starts_with('#')
            .then(|| code[i..].find(']'))
            .flatten();
        if let Some(end) = attribute
            && compact(&code[i..=i + end]) == "#[cfg(test)]"
        {
            out.push(' ');
            i = item_end(code.as_bytes(), i + end + 1);
            continue;
        }
        let ch = code[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Where the item starting at `from` ends: after its closing brace, or its `;`.
fn item_end(bytes: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut j = from;
    while j < bytes.len() {
        match bytes[j] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            b';' if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    j
}

/// Every path of the code that starts at `crate`, `super`, `self` or a lower-case
/// name followed by `::`, with its byte offset: use trees expanded.
fn paths_in(code: &str) -> Vec<(Vec<String>, usize)> {
    let tokens = tokenize(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let (t, at) = (&tokens[i].0, tokens[i].1);
        if t == "use" {
            let end = (i..tokens.len())
                .find(|&j| tokens[j].0 == ";")
                .unwrap_or(tokens.len());
            let mut trees = Vec::new();
            use_tree(&tokens[i + 1..end], Vec::new(), &mut trees);
            out.extend(trees.into_iter().map(|p| (p, at)));
            i = end + 1;
            continue;
        }
        let starts = t == "crate" || t == "super" || t == "self";
        let after_sep = i > 0 && (tokens[i - 1].0 == "::" || tokens[i - 1].0 == "$");
        let bare_child = t.starts_with(|c: char| c.is_ascii_lowercase())
            && !after_sep
            && tokens.get(i + 1).is_some_and(|n| n.0 == "::")
            && tokens.get(i + 2).is_some_and(|n| n.0 != "{" && n.0 != "<");
        if (starts && !(i > 0 && tokens[i - 1].0 == "::")) || bare_child {
            let mut path = vec![t.clone()];
            let mut j = i + 1;
            while j + 1 < tokens.len()
                && tokens[j].0 == "::"
                && tokens[j + 1]
                    .0
                    .starts_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                path.push(tokens[j + 1].0.clone());
                j += 2;
            }
            if path.len() > 1 {
                out.push((path, at));
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Expands a use tree (`a::{b, c::{d as e, *}}`) into its paths.
fn use_tree(tokens: &[(String, usize)], prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].0.as_str();
        match t {
            "::" => i += 1,
            "{" => {
                // Split the group at its top-level commas.
                let mut depth = 0;
                let mut start = i + 1;
                let mut j = i;
                while j < tokens.len() {
                    match tokens[j].0.as_str() {
                        "{" => depth += 1,
                        "}" => {
                            depth -= 1;
                            if depth == 0 {
                                if start < j {
                                    use_tree(&tokens[start..j], path.clone(), out);
                                }
                                break;
                            }
                        }
                        "," if depth == 1 => {
                            if start < j {
                                use_tree(&tokens[start..j], path.clone(), out);
                            }
                            start = j + 1;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                return;
            }
            "as" | "*" => break,
            "pub" | "(" | ")" | "in" => i += 1,
            "self" if !path.is_empty() => i += 1,
            _ => {
                path.push(t.to_string());
                i += 1;
            }
        }
    }
    if path.len() > 1 {
        out.push(path);
    }
}

/// Identifiers, `::`, and single punctuation characters, with byte offsets.
fn tokenize(code: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::from(c);
            while let Some(&(_, n)) = chars.peek() {
                if n.is_alphanumeric() || n == '_' {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((word, at));
        } else if c == ':' && chars.peek().is_some_and(|&(_, n)| n == ':') {
            chars.next();
            out.push(("::".to_string(), at));
        } else if !c.is_whitespace() {
            out.push((c.to_string(), at));
        }
    }
    out
}

/// The floors of `docs/architecture.md`: tables headed `| floor | in `FOLDER` |`, each
/// row a floor number and the folder's entries on it (`model.rs`, `candidates/`).
struct Floors {
    /// folder (module path) → entry name (`mod` for the folder's own file) → floor.
    tables: BTreeMap<Module, BTreeMap<String, u32>>,
}

impl Floors {
    fn parse(doc: &str) -> Floors {
        let mut tables = BTreeMap::new();
        let mut current: Option<(Module, BTreeMap<String, u32>)> = None;
        for line in doc.lines() {
            let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
            if !line.trim().starts_with('|') || cells.len() < 4 {
                if let Some((folder, entries)) = current.take() {
                    tables.insert(folder, entries);
                }
                continue;
            }
            if cells[1] == "floor" && cells[2].starts_with("in ") {
                if let Some((folder, entries)) = current.take() {
                    tables.insert(folder, entries);
                }
                let folder = cells[2][3..].trim_matches('`').trim_end_matches('/');
                let module: Module = folder
                    .split('/')
                    .skip(1)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                current = Some((module, BTreeMap::new()));
                continue;
            }
            let (Some((_, entries)), Ok(floor)) = (current.as_mut(), cells[1].parse::<u32>())
            else {
                continue;
            };
            for entry in cells[2].split('`').skip(1).step_by(2) {
                let name = entry
                    .trim_end_matches('/')
                    .trim_end_matches(".rs")
                    .to_string();
                entries.insert(name, floor);
            }
        }
        if let Some((folder, entries)) = current.take() {
            tables.insert(folder, entries);
        }
        assert!(
            tables.contains_key(&Vec::new()),
            "docs/architecture.md has no floor table for src/"
        );
        Floors { tables }
    }

    /// Whether `from` may import `to`: compared in the table of the deepest folder
    /// holding both (no table there: any way, cycles aside).
    fn allows(&self, from: &Module, to: &Module) -> Result<(), String> {
        let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
        let folder = from[..common].to_vec();
        let Some(table) = self.tables.get(&folder) else {
            return Ok(());
        };
        let entry = |m: &Module| m.get(common).cloned().unwrap_or_else(|| "mod".into());
        let where_ = if folder.is_empty() {
            "src/".to_string()
        } else {
            format!("src/{}/", folder.join("/"))
        };
        let floor = |m: &Module| {
            table.get(&entry(m)).copied().ok_or_else(|| {
                format!(
                    "`{}` stands on no floor of {where_} in docs/architecture.md",
                    entry(m)
                )
            })
        };
        let (a, b) = (floor(from)?, floor(to)?);
        if a < b {
            return Err(format!(
                "floor {a} imports from floor {b} above it ({} < {} in {where_})",
                entry(from),
                entry(to)
            ));
        }
        Ok(())
    }
}

/// The cycles of the graph: each strongly connected component of two or more modules,
/// shown as one loop through it.
fn cycles(edges: &Edges) -> Vec<Vec<Module>> {
    // Tarjan's algorithm, iteratively over a small graph.
    let nodes: BTreeSet<&Module> = edges
        .iter()
        .flat_map(|(a, t)| std::iter::once(a).chain(t.keys()))
        .collect();
    let nodes: Vec<&Module> = nodes.into_iter().collect();
    let index_of: BTreeMap<&Module, usize> =
        nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|m| {
            edges
                .get(*m)
                .map(|t| t.keys().map(|k| index_of[k]).collect())
                .unwrap_or_default()
        })
        .collect();
    let n = nodes.len();
    let (mut index, mut low, mut on) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut components) = (Vec::new(), 0, Vec::new());
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        index[start] = next;
        low[start] = next;
        next += 1;
        stack.push(start);
        on[start] = true;
        while let Some(&(v, k)) = work.last() {
            if k < succ[v].len() {
                let w = succ[v][k];
                if let Some(top) = work.last_mut() {
                    top.1 += 1;
                }
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    components.push(component);
                }
            }
        }
    }
    // One loop through each component, by breadth-first search back to its start.
    components
        .into_iter()
        .map(|component| {
            let inside: BTreeSet<usize> = component.iter().copied().collect();
            let start = *component.iter().min().expect("non-empty");
            let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut end = start;
            'search: while let Some(v) = queue.pop_front() {
                for &w in &succ[v] {
                    if !inside.contains(&w) {
                        continue;
                    }
                    if w == start {
                        end = v;
                        break 'search;
                    }
                    if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = vec![end];
            while let Some(&p) = came_from.get(path.last().expect("non-empty")) {
                path.push(p);
            }
            path.reverse();
            if path.first() != Some(&start) {
                path.insert(0, start);
            }
            path.push(start);
            path.into_iter().map(|i| nodes[i].clone()).collect()
        })
        .collect()
}
