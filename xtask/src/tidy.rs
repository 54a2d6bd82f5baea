//! The workspace's layering invariants, read from `cargo metadata`:
//!
//! 1. `storage-api` depends on no backend, no engine and no other workspace crate;
//! 2. a backend depends on `storage-api`, its own engine and a few general-purpose crates
//!    (serialisation, logging, errors), never on another workspace crate or engine; domain
//!    crates depend on `storage-api` and codec/hash crates, never on a backend or engine;
//! 3. `nodestore` reaches the workspace only through `node-storage`;
//! 4. only `engine-test` (the one place tests and benchmarks open engines), `node-storage` and
//!    the benchmarks depend on a backend crate; `engine-test` is a dev-dependency (the
//!    benchmarks may use it directly);
//! 5. the service crates (cache, metrics, backup, migrate, history) depend on no backend, engine, domain
//!    crate or the facade;
//! 6. no async below the facade: `storage-api`, the backends, the domain crates, the cache and
//!    the migration runner depend on no async runtime or future crate;
//! 7. the facade (`node-storage`) re-exports chosen items, never a whole workspace crate;
//! 8. `workspace-hack` pins exactly the features the workspace enables on the crates it pins;
//! 9. no import loops inside a crate: at every level of its module tree, sibling modules
//!    import each other one way only (see [`crate::cycles`]);
//! 10. the surface crates (the JSON-RPC endpoint) sit between the models and the facade:
//!     they depend on no backend, engine or the facade, which composes them.
//!
//! Every crate must also opt into the workspace lints.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// The storage engines and their backend crates.
const ENGINES: [(&str, &str); 3] = [("rocksdb", "storage-rocksdb"), ("redb", "storage-redb"), ("sled", "storage-sled")];
/// Crates engines pull in directly, counted as engines too.
const ENGINE_SYS: [&str; 1] = ["librocksdb-sys"];
/// General-purpose crates a backend may use besides its engine.
const BACKEND_UTILS: [&str; 6] = ["serde", "toml", "tracing", "thiserror", "libc", "rustix"];
const DOMAIN: [&str; 2] = ["chain-store", "dag-store"];
/// Crates built on the domain crates that are still below the facade.
const MODELS: [&str; 1] = ["chain-eth"];
/// The service crates: generic over storage-api, used by the facade.
const SERVICES: [&str; 5] =
    ["storage-cache", "storage-metrics", "storage-backup", "storage-migrate", "storage-history"];
/// Surface crates: serve a model's data to the outside; composed by the facade.
const SURFACES: [&str; 1] = ["eth-rpc"];
/// Crates that may depend on a backend crate.
const ENGINE_USERS: [&str; 3] = ["engine-test", "node-storage", "node-storage-benches"];
/// The dev-only crate that opens engines for tests and benchmarks.
const ENGINE_TEST: &str = "engine-test";
/// Async runtimes and future crates, kept above the facade's line.
const ASYNC: [&str; 6] = ["tokio", "futures", "async-trait", "async-std", "smol", "hyper"];
/// Crates below the facade that must stay synchronous.
const SYNC_ONLY: [&str; 3] = ["storage-api", "storage-cache", "storage-migrate"];
/// The crate with no code that pins native-build features; any crate may depend on it.
const HACK: &str = "workspace-hack";

/// One crate's declared dependencies: (name, kind) where kind is `normal`, `dev` or `build`.
#[derive(Debug, Default)]
pub(crate) struct Crate {
    deps: Vec<(String, String)>,
    workspace_lints: bool,
}

pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let mut crates = BTreeMap::new();
    let mut loops = Vec::new();
    for pkg in meta["packages"].as_array().context("packages")? {
        let name = pkg["name"].as_str().context("name")?.to_owned();
        let deps = pkg["dependencies"]
            .as_array()
            .context("dependencies")?
            .iter()
            .map(|d| {
                let dep = d["rename"].as_str().or(d["name"].as_str()).unwrap_or_default().to_owned();
                (dep, d["kind"].as_str().unwrap_or("normal").to_owned())
            })
            .collect();
        let manifest = pkg["manifest_path"].as_str().context("manifest_path")?;
        let text = std::fs::read_to_string(manifest)?;
        let workspace_lints = text.contains("[lints]\nworkspace = true");
        for (target, root) in crate::cycles::roots(pkg) {
            loops.extend(crate::cycles::check(&format!("{name} ({target})"), &root));
        }
        crates.insert(name, Crate { deps, workspace_lints });
    }
    let mut problems = rules(&crates);
    problems.extend(loops);
    problems.extend(pins(root)?);
    let facade = root.join("crates/node-storage/src/lib.rs");
    problems.extend(whole_crate_reexports(&std::fs::read_to_string(&facade)?, &crates));
    Ok(problems)
}

/// Rule 7: the facade re-exports its own vocabulary (chosen items), never a whole workspace
/// crate (`pub use chain_store;`), so what a node developer sees is what the facade means.
fn whole_crate_reexports(lib_rs: &str, crates: &BTreeMap<String, Crate>) -> Vec<String> {
    lib_rs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub use ")?.strip_suffix(';'))
        .filter(|name| crates.contains_key(&name.replace('_', "-")))
        .map(|name| format!("node-storage re-exports the whole crate `{name}`: re-export the items a node needs"))
        .collect()
}

/// The features `crates/workspace-hack/Cargo.toml` pins, per crate and major version: lines of
/// the form `name = { version = "3.0", … features = ["a", "b"] }` (or a renamed
/// `alias = { package = "name", … }` for a second major version), keyed `name v3.`.
fn pinned(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(" = {") else { continue };
        let name = rest.split_once("package = \"").and_then(|(_, p)| p.split('"').next()).unwrap_or(name);
        let Some(version) =
            rest.split_once("version = \"").map(|(_, v)| v.split(['.', '"']).next().unwrap_or_default())
        else {
            continue;
        };
        let Some(list) = rest.split_once("features = [").map(|(_, l)| l) else { continue };
        let list = list.split(']').next().unwrap_or_default();
        let mut features: Vec<String> =
            list.split(',').map(|f| f.trim().trim_matches('"').to_owned()).filter(|f| !f.is_empty()).collect();
        features.sort();
        out.insert(format!("{} v{version}.", name.trim()), features);
    }
    out
}

/// Rule 8: the pins must equal the features the whole workspace enables on those crates: otherwise a
/// narrower `cargo test -p …` builds them (and RocksDB over them) differently, once more.
fn pins(root: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(root.join("crates/workspace-hack/Cargo.toml"))?;
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["tree", "--workspace", "--offline", "-e", "normal,build,dev", "--prefix", "none", "-f", "{p} {f}"])
        .output()
        .context("running cargo tree")?;
    anyhow::ensure!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let mut problems = Vec::new();
    for (name, features) in pinned(&text) {
        let mut used: Vec<String> = tree
            .lines()
            .filter(|l| l.starts_with(name.as_str()))
            .filter_map(|l| l.split(' ').nth(2))
            .flat_map(|f| f.split(','))
            .filter(|f| !f.is_empty() && *f != "default" && *f != "(*)")
            .map(str::to_owned)
            .collect();
        used.sort();
        used.dedup();
        let pins: Vec<String> = features.into_iter().filter(|f| f != "default").collect();
        if used != pins {
            problems.push(format!(
                "workspace-hack pins {name} with {pins:?} but the workspace enables {used:?}: update \
                 crates/workspace-hack/Cargo.toml"
            ));
        }
    }
    Ok(problems)
}

fn is_engine(dep: &str) -> bool {
    ENGINES.iter().any(|(e, _)| *e == dep) || ENGINE_SYS.contains(&dep)
}

fn is_backend(dep: &str) -> bool {
    ENGINES.iter().any(|(_, b)| *b == dep)
}

/// Rules 4–6, which hold for every crate whatever its layer.
fn cross_rules(name: &str, dep: &str, kind: &str, problems: &mut Vec<String>) {
    let what = format!("{name} has a {kind} dependency on `{dep}`");
    if is_backend(dep) && !ENGINE_USERS.contains(&name) && !is_backend(name) {
        problems.push(format!("{what}: tests and benchmarks open engines through {ENGINE_TEST}"));
    }
    if dep == ENGINE_TEST && kind == "normal" && name != "node-storage-benches" {
        problems.push(format!("{what}: {ENGINE_TEST} is for tests and benchmarks only"));
    }
    let below_facade = dep == "node-storage" || DOMAIN.contains(&dep) || MODELS.contains(&dep);
    if SERVICES.contains(&name) && kind == "normal" && (is_backend(dep) || is_engine(dep) || below_facade) {
        problems.push(format!("{what}: service crates depend on storage-api, not on engines or domain crates"));
    }
    let sync_only = SYNC_ONLY.contains(&name) || DOMAIN.contains(&name) || MODELS.contains(&name) || is_backend(name);
    if sync_only && kind == "normal" && ASYNC.contains(&dep) {
        problems.push(format!("{what}: no async below the facade"));
    }
}

pub(crate) fn rules(crates: &BTreeMap<String, Crate>) -> Vec<String> {
    let members: Vec<&str> = crates.keys().map(String::as_str).collect();
    let is_member = |d: &str| members.contains(&d);
    let mut problems = Vec::new();
    for (name, c) in crates {
        if !c.workspace_lints {
            problems.push(format!("{name}: Cargo.toml lacks `[lints] workspace = true`"));
        }
        for (dep, kind) in c.deps.iter().filter(|(d, _)| d != HACK) {
            cross_rules(name, dep, kind, &mut problems);
            let what = format!("{name} has a {kind} dependency on `{dep}`");
            match name.as_str() {
                "storage-api" if is_member(dep) || is_engine(dep) => {
                    problems.push(format!("{what}: storage-api must know no backend, engine or other crate"));
                }
                backend if ENGINES.iter().any(|(_, b)| *b == backend) => {
                    let own = ENGINES.iter().find(|(_, b)| *b == backend).map(|(e, _)| *e);
                    let allowed = dep == "storage-api"
                        || Some(dep.as_str()) == own
                        || (kind != "normal" && !is_member(dep) && !is_engine(dep))
                        || (kind == "normal" && BACKEND_UTILS.contains(&dep.as_str()));
                    if !allowed {
                        problems.push(format!("{what}: a backend may depend only on storage-api and its engine"));
                    }
                }
                // Tests instantiate a domain crate on real engines (through engine-test); its
                // library may not.
                domain
                    if DOMAIN.contains(&domain)
                        && kind != "dev"
                        && ((is_member(dep) && dep != "storage-api") || is_engine(dep)) =>
                {
                    problems.push(format!("{what}: domain crates depend on storage-api only, never a backend"));
                }
                surface
                    if SURFACES.contains(&surface)
                        && kind == "normal"
                        && (dep == "node-storage" || is_backend(dep) || is_engine(dep)) =>
                {
                    problems.push(format!("{what}: a surface crate is composed by the facade, below it"));
                }
                "nodestore" if is_member(dep) && dep != "node-storage" && kind == "normal" => {
                    problems.push(format!("{what}: nodestore may use the workspace only through node-storage"));
                }
                _ => {}
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(deps: &[(&str, &str)]) -> Crate {
        Crate { deps: deps.iter().map(|(d, k)| (d.to_string(), k.to_string())).collect(), workspace_lints: true }
    }

    #[test]
    fn workspace_is_tidy() {
        let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
        let root = Path::new(&manifest_dir).parent().unwrap();
        let problems = check(root).unwrap();
        assert!(problems.is_empty(), "tidy problems:\n{}", problems.join("\n"));
    }

    #[test]
    fn whole_crate_reexports_are_caught() {
        let mut ws = BTreeMap::new();
        ws.insert("chain-store".to_string(), krate(&[]));
        let lib = "pub use chain_store;\npub use chain_store::Block;\npub use tokio;\n";
        let problems = whole_crate_reexports(lib, &ws);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`chain_store`"));
    }

    #[test]
    fn pins_are_parsed() {
        let p = pinned(
            "[dependencies]\nzstd-sys = { version = \"2\", features = [\"std\", \"legacy\"] }\nx = 1\n\
             syn2 = { package = \"syn\", version = \"2.0\", features = [\"full\"] }\n",
        );
        assert_eq!(p.get("syn v2."), Some(&vec!["full".to_owned()]), "a renamed pin counts for its package");
        assert_eq!(p["zstd-sys v2."], vec!["legacy".to_string(), "std".to_string()]);
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn violations_are_caught() {
        let mut ws = BTreeMap::new();
        ws.insert("storage-api".to_string(), krate(&[("serde", "normal"), ("rocksdb", "normal")]));
        ws.insert(
            "storage-rocksdb".to_string(),
            krate(&[("storage-api", "normal"), ("rocksdb", "normal"), ("redb", "normal"), ("reqwest", "normal")]),
        );
        ws.insert("storage-redb".to_string(), krate(&[("storage-api", "normal"), ("storage-rocksdb", "dev")]));
        ws.insert(
            "chain-store".to_string(),
            krate(&[("storage-api", "normal"), ("storage-rocksdb", "normal"), ("storage-redb", "dev")]),
        );
        ws.insert("node-storage".to_string(), krate(&[("storage-rocksdb", "normal")]));
        ws.insert(
            "dag-store".to_string(),
            krate(&[("storage-api", "normal"), ("engine-test", "dev"), ("tokio", "normal")]),
        );
        ws.insert("chain-eth".to_string(), krate(&[("chain-store", "normal"), ("engine-test", "normal")]));
        ws.insert("storage-backup".to_string(), krate(&[("tokio", "normal"), ("chain-store", "normal")]));
        ws.insert("nodestore".to_string(), krate(&[("node-storage", "normal"), ("chain-store", "normal")]));
        ws.insert("eth-rpc".to_string(), krate(&[("chain-eth", "normal"), ("node-storage", "normal")]));
        let mut unlinted = krate(&[]);
        unlinted.workspace_lints = false;
        ws.insert("xtask".to_string(), unlinted);
        let problems = rules(&ws);
        let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
        assert!(has("storage-api has a normal dependency on `rocksdb`"), "{problems:#?}");
        assert!(has("storage-rocksdb has a normal dependency on `redb`"));
        assert!(has("storage-rocksdb has a normal dependency on `reqwest`"));
        assert!(has("storage-redb has a dev dependency on `storage-rocksdb`"));
        assert!(has("chain-store has a normal dependency on `storage-rocksdb`"));
        assert!(has("nodestore has a normal dependency on `chain-store`"));
        assert!(has("eth-rpc has a normal dependency on `node-storage`: a surface crate"));
        assert!(has("xtask: Cargo.toml lacks"));
        assert!(has("chain-store has a dev dependency on `storage-redb`: tests and benchmarks open engines through"));
        assert!(has("dag-store has a normal dependency on `tokio`: no async below the facade"));
        assert!(has("chain-eth has a normal dependency on `engine-test`"));
        assert!(has("storage-backup has a normal dependency on `chain-store`"));
        assert!(!has("`serde`"));
        assert!(!has("node-storage has"), "{problems:#?}");
        assert!(!has("dag-store has a dev dependency on `engine-test`"), "{problems:#?}");
        assert!(!has("storage-backup has a normal dependency on `tokio`"), "{problems:#?}");
        assert_eq!(problems.len(), 13, "{problems:#?}");
    }
}
