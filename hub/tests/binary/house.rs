//! The structure the code promises (issue 16), checked so that it stays true:
//! - the runtime library does not link the command-line tools' dependencies;
//! - the alarm engine and the store stay free of the hub, and the engine of I/O;
//! - no crate's top-level modules import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hub/ is inside the workspace")
        .to_path_buf()
}

/// The names of every package in `package`'s normal (non-dev, non-build) dependency tree.
fn normal_deps(package: &str, features: &[&str]) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "tree",
            "--locked",
            "--offline",
            "-p",
            package,
            "-e",
            "normal",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .args(features)
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deps: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        deps.contains(package),
        "{package} not in its own tree: {deps:?}"
    );
    deps
}

fn assert_none(package: &str, deps: &BTreeSet<String>, forbidden: &[&str]) {
    let found: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(found.is_empty(), "{package} depends on {found:?}");
}

/// The hub without its tools is the runtime: no simulator (it is the hub's client), no HTTP
/// client, no anyhow, no tempfile. (clap and tracing-subscriber are still there: rumqttd
/// links them.)
#[test]
fn the_runtime_does_not_link_the_tools() {
    let tools = ["ward-sim", "reqwest", "anyhow", "tempfile"];
    let runtime = normal_deps("wardhub", &["--no-default-features"]);
    assert_none("wardhub --no-default-features", &runtime, &tools);
    // The guard itself: the binary's build does link them.
    let binary = normal_deps("wardhub", &[]);
    assert!(tools.iter().all(|t| binary.contains(*t)), "{binary:?}");
}

/// The engine is pure: nothing in its dependencies can read a socket, a file or a clock
/// asynchronously; the store and the engine know nothing of the hub or the adapters.
#[test]
fn the_engine_and_the_store_stay_apart() {
    let engine = normal_deps("wardhub-alarm-engine", &[]);
    assert_none(
        "wardhub-alarm-engine",
        &engine,
        &[
            "tokio",
            "sled",
            "mio",
            "rustix",
            "wardhub",
            "wardhub-adapters",
            "wardhub-store",
        ],
    );
    let store = normal_deps("wardhub-store", &[]);
    assert_none(
        "wardhub-store",
        &store,
        &[
            "wardhub",
            "wardhub-adapters",
            "wardhub-alarm-engine",
            "axum",
        ],
    );
    let model = normal_deps("wardhub-model", &[]);
    assert_none(
        "wardhub-model",
        &model,
        &["tokio", "sled", "wardhub-adapters"],
    );
}

/// A crate's top-level module (`src/x.rs` or `src/x/`) of a source file.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level modules a piece of source names through `crate::…` (also in
/// `use crate::{a, b::c}` groups).
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The first name of each path at the group's own nesting level.
            let (mut depth, mut name, mut skipping) = (0, String::new(), false);
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            refs.insert(std::mem::take(&mut name));
                        }
                        skipping = false;
                    }
                    c if depth == 0 && !skipping && (c.is_alphanumeric() || c == '_') => {
                        name.push(c)
                    }
                    _ if depth == 0 && !name.is_empty() => {
                        refs.insert(std::mem::take(&mut name));
                        skipping = true;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                refs.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            refs.insert(name);
        }
    }
    refs
}

/// Code outside `#[cfg(test)]` modules and test files: tests may reach anywhere.
fn non_test_code(file: &Path, code: &str) -> Option<String> {
    let name = file.file_name()?.to_str()?;
    if name == "tests.rs" || name.ends_with("_tests.rs") || name == "testing.rs" {
        return None;
    }
    Some(match code.find("#[cfg(test)]\nmod tests {") {
        Some(i) => code[..i].to_owned(),
        None => code.to_owned(),
    })
}

/// Top-level module → the top-level modules it imports, for one crate's `src/`.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(top) = top_module(src, &file) else {
            continue;
        };
        let code = std::fs::read_to_string(&file).unwrap();
        let Some(code) = non_test_code(&file, &code) else {
            continue;
        };
        // Comments (doc links included) name modules without importing them.
        let code: Vec<&str> = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        let refs = crate_refs(&code.join("\n"));
        let edges = graph.entry(top.clone()).or_default();
        edges.extend(refs.into_iter().filter(|r| *r != top && !r.is_empty()));
    }
    graph
}

/// A cycle in the graph, if there is one (depth-first search, three colours).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for t in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(t, graph, done, path) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_crate_has_an_import_circle() {
    let root = workspace();
    for src in [
        "hub/src",
        "hub/store/src",
        "hub/alarm-engine/src",
        "adapters/src",
        "adapters/model/src",
        "simulator/src",
    ] {
        let graph = module_graph(&root.join(src));
        assert!(graph.len() > 1 || src.contains("model"), "{src}: {graph:?}");
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "{src}: top-level modules import each other: {}",
                cycle.join(" → ")
            );
        }
    }
}

/// The checker itself finds a circle, also through a `use crate::{…}` group.
#[test]
fn the_circle_check_can_fail() {
    let refs =
        crate_refs("use crate::{alpha::X, beta, gamma::{d, e}};\nfn f() { crate::delta::g() }");
    assert_eq!(
        refs.into_iter().collect::<Vec<_>>(),
        ["alpha", "beta", "delta", "gamma"]
    );
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &[][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
