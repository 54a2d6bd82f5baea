//! The `nodestore` binary against a temporary directory (one test binary: `history.rs` holds
//! the era1 and history-archive commands, `admin.rs` a running node operated through its admin
//! socket, `ethereum.rs` the Ethereum model's reads, proofs and JSON-RPC endpoint; `rpc.rs` starts,
//! calls and stops `serve --rpc`).

mod admin;
mod ethereum;
mod history;
mod rpc;

use assert_cmd::Command;

pub(crate) fn nodestore(dir: &std::path::Path) -> Command {
    let mut c = Command::cargo_bin("nodestore").unwrap();
    c.arg("--data-dir").arg(dir.join("db")).env_remove("NODE_STORAGE_BACKEND");
    c
}

/// `nodestore serve` on `dir`'s database with `config`, returned once it says it is ready (log
/// lines may come first); the thread drains the rest of its stderr and returns it (the log).
pub(crate) fn serve(
    dir: &std::path::Path,
    config: &std::path::Path,
) -> (std::process::Child, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"))
        .arg("--data-dir")
        .arg(dir.join("db"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Ctrl-C to stop"));
    assert!(ready, "serve stopped before it was ready");
    (serve, std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n")))
}

pub(crate) fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(out)))
}

#[test]
fn demo_then_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let out = nodestore(dir.path()).args(["--json", "demo", "--blocks", "300", "--vertices", "3000"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo = json(&out.stdout);
    assert_eq!(demo["chain"]["blocks"], 300);
    assert_eq!(demo["reorg"]["removed"], 5);
    assert!(demo["queries"]["log_filter"]["matches"].as_u64().unwrap() > 0);

    let stats = json(&nodestore(dir.path()).args(["--json", "stats"]).output().unwrap().stdout);
    assert_eq!(stats["chain_head"], 301);
    let block = json(&nodestore(dir.path()).args(["--json", "get", "block", "150"]).output().unwrap().stdout);
    assert_eq!(block["number"], 150);
    let tx = block["transactions"][0].as_str().unwrap().to_owned();
    let got = json(&nodestore(dir.path()).args(["--json", "get", "tx", &tx]).output().unwrap().stdout);
    assert_eq!(got["block"], 150);
    let tip = demo["queries"]["dag_tips"][0].as_str().unwrap().to_owned();
    // Tips are printed short in the demo; look one up through `get vertex` via the full hash.
    assert!(!tip.is_empty());
    let check = nodestore(dir.path()).args(["check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("0 problem(s)"));
    let human = nodestore(dir.path()).args(["stats"]).output().unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("store") && text.contains("(on disk)"), "{text}");
    let dl = json(&nodestore(dir.path()).args(["--json", "dead-letter", "list"]).output().unwrap().stdout);
    assert_eq!(dl, serde_json::json!([]));
    assert!(nodestore(dir.path()).args(["compact"]).output().unwrap().status.success());
    let pruned = json(&nodestore(dir.path()).args(["--json", "prune", "--chain-keep", "100"]).output().unwrap().stdout);
    assert!(pruned["chain"]["pruned_below"].as_u64().unwrap() > 0);
}

/// `GET path` on `addr`: the status code and the body.
pub(crate) fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {out}"));
    (code, out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// The README's commands exactly as written: no `--config`, no `--data-dir` (so
/// `./nodestore-data`), every setting at its default — the metrics endpoint on
/// 127.0.0.1:9464 included, and then, for the Ethereum model, `serve --rpc` on
/// 127.0.0.1:8545. (The only test that binds the default ports.)
#[test]
fn serve_runs_with_the_default_configuration() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let bare = || {
        let mut c = Command::cargo_bin("nodestore").unwrap();
        c.current_dir(dir.path()).env_remove("NODE_STORAGE_BACKEND");
        c
    };
    let out = bare().args(["demo", "--blocks", "50", "--vertices", "200"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("nodestore-data").is_dir());
    let config = bare().arg("config").output().unwrap();
    assert!(String::from_utf8_lossy(&config.stdout).contains("127.0.0.1:9464"), "{config:?}");

    let mut serve = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"))
        .current_dir(dir.path())
        .env_remove("NODE_STORAGE_BACKEND")
        .env_remove("NODESTORE_LOG")
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let ready = lines.by_ref().map_while(Result::ok).find(|l| {
        seen.push(l.clone());
        l.contains("Ctrl-C to stop")
    });
    let ready = ready.unwrap_or_else(|| panic!("serve ended before it was ready: {}", seen.join("\n")));
    assert!(ready.contains("http://127.0.0.1:9464/metrics"), "{ready}");
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    let (code, metrics) = http_get("127.0.0.1:9464", "/metrics");
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("node_storage_"), "{metrics}");
    let (code, health) = http_get("127.0.0.1:9464", "/health");
    assert_eq!(code, 200, "{health}");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    // Ctrl-C: a clean stop, with the store closed (it opens again at once).
    rustix::process::kill_process(rustix::process::Pid::from_child(&serve), rustix::process::Signal::INT).unwrap();
    let status = serve.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "serve exited with {status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
    let stats = bare().args(["--json", "stats"]).output().unwrap();
    assert!(stats.status.success(), "{}", String::from_utf8_lossy(&stats.stderr));
    assert_eq!(json(&stats.stdout)["chain_head"], 51);

    // The Ethereum model with the JSON-RPC endpoint, every setting at its default.
    let dir = tempfile::tempdir().unwrap();
    let bare = || {
        let mut c = Command::cargo_bin("nodestore").unwrap();
        c.current_dir(dir.path()).env_remove("NODE_STORAGE_BACKEND").args(["--model", "ethereum"]);
        c
    };
    let out = bare().args(["demo", "--blocks", "12", "--vertices", "50"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let head = json(&bare().args(["--json", "stats"]).output().unwrap().stdout)["chain_head"].as_u64().unwrap();
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"));
    command.current_dir(dir.path()).env_remove("NODE_STORAGE_BACKEND").args(["--model", "ethereum", "serve", "--rpc"]);
    let (serve, addr, log) = rpc::serve_rpc(command);
    assert_eq!(addr, "127.0.0.1:8545");
    assert_eq!(rpc::call(&addr, "eth_blockNumber", serde_json::json!([])), format!("{head:#x}"));
    let block = rpc::call(&addr, "eth_getBlockByNumber", serde_json::json!(["latest", true]));
    assert!(!block["transactions"].as_array().unwrap().is_empty(), "{block}");
    let (code, metrics) = http_get("127.0.0.1:9464", "/metrics");
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("node_storage_rpc_seconds") && metrics.contains("eth_getBlockByNumber"), "{metrics}");
    rpc::interrupt(serve, log);
}

#[test]
fn errors_are_one_line_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let out = nodestore(dir.path()).args(["stats"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("nodestore: error: no database at"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    std::fs::write(dir.path().join("bad.toml"), "[writer]\nretires = 1\n").unwrap();
    let out = nodestore(dir.path()).arg("--config").arg(dir.path().join("bad.toml")).arg("config").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `retires`"), "{err}");

    assert!(
        nodestore(dir.path()).args(["demo", "--blocks", "20", "--vertices", "50"]).output().unwrap().status.success()
    );
    let out = nodestore(dir.path()).args(["get", "block", "0xzz"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("block hash `0xzz`: expected 64 hex digits"));
    let out = nodestore(dir.path()).args(["get", "block", "99999"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no block 99999"));
    let out = nodestore(dir.path()).args(["demo"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a chain"));
}

#[test]
fn backup_create_list_verify_restore_prune() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backups");
    let dest = dest.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = nodestore(dir.path()).args(["--json", "backup", "--destination", dest]).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        json(&out.stdout)
    };
    let demo =
        nodestore(dir.path()).args(["--json", "demo", "--blocks", "200", "--vertices", "2000"]).output().unwrap();
    assert!(demo.status.success());
    let first = run(&["create"]);
    assert_eq!(first["kind"], "physical");
    assert_eq!(first["chain_head"], 201);
    let logical = run(&["create", "--kind", "logical"]);
    assert_eq!(logical["kind"], "logical");
    let listed = run(&["list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let id = first["id"].as_str().unwrap();
    assert_eq!(run(&["verify", id])["verified"]["id"], id);
    let dry = run(&["restore", id, "--dry-run"]);
    assert_eq!(dry["dry_run"], true);
    let restored = run(&["restore", id]);
    assert!(restored["previous"].as_str().unwrap().contains("pre-restore"));
    let stats = json(&nodestore(dir.path()).args(["--json", "stats"]).output().unwrap().stdout);
    assert_eq!(stats["chain_head"], 201);
    let pruned = run(&["prune", "--dry-run"]);
    assert_eq!(pruned["kept"].as_array().unwrap().len(), 2);
    // A missing backup is a one-line error.
    let out = nodestore(dir.path()).args(["backup", "--destination", dest, "restore", "nope"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no complete backup `nope`") && err.lines().count() == 1, "{err}");
}

#[test]
fn migrate_copy_to_another_engine() {
    let dir = tempfile::tempdir().unwrap();
    let demo =
        nodestore(dir.path()).args(["--json", "demo", "--blocks", "100", "--vertices", "1000"]).output().unwrap();
    assert!(demo.status.success());
    let to = dir.path().join("copy");
    let to = to.to_str().unwrap();
    let out = nodestore(dir.path())
        .args(["--json", "migrate", "copy", "--to-backend", "sled", "--to-path", to])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out.stdout);
    assert_eq!(report["to"], "sled");
    assert!(report["entries"].as_u64().unwrap() > 1_000);
    let stats = json(
        &Command::cargo_bin("nodestore")
            .unwrap()
            .args(["--json", "--backend", "sled", "--data-dir", to, "stats"])
            .output()
            .unwrap()
            .stdout,
    );
    assert_eq!(stats["chain_head"], 101);
    let again =
        nodestore(dir.path()).args(["migrate", "copy", "--to-backend", "sled", "--to-path", to]).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists: copy into a new path"));
}

/// Rewrites the DAG store of the node in `dir/db` as DAG schema v1 wrote it.
fn downgrade_dag(dir: &std::path::Path) {
    use node_storage::{Backend, Config, RocksStore};
    use storage_api::VersionPolicy;
    let config = Config { data_dir: dir.join("db"), ..Config::default() };
    let store = RocksStore::open_store_with(
        &config,
        node_storage::StoreId::Dag,
        dag_store::dag_schema(),
        VersionPolicy::AllowOlder,
    )
    .unwrap();
    dag_store::migrate::fixture::downgrade_to_v1(&store).unwrap();
}

#[test]
fn migrate_refuses_older_schemas_dry_runs_and_resumes_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let demo = nodestore(dir.path()).args(["--json", "demo", "--blocks", "20", "--vertices", "4000"]).output().unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    downgrade_dag(dir.path());

    // The node refuses, naming the exact command.
    let out = nodestore(dir.path()).args(["stats"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let db = dir.path().join("db");
    let command = format!("nodestore --data-dir {} migrate", db.display());
    assert!(err.contains(&format!("`{command} --dry-run`")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let dry = nodestore(dir.path()).args(["--json", "migrate", "--dry-run"]).output().unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let dry = json(&dry.stdout);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["steps"][0]["changed"], 4000);
    assert!(!nodestore(dir.path()).args(["stats"]).output().unwrap().status.success(), "a dry run changes nothing");

    // A real run, one vertex per synced batch, killed once it has committed a few batches.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"))
        .arg("--data-dir")
        .arg(&db)
        .args(["migrate", "--no-backup", "--batch", "1"])
        .env("NODESTORE_LOG", "storage_migrate=debug")
        .env_remove("NODE_STORAGE_BACKEND")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut committed = 0;
    let mut line = String::new();
    while committed < 20 {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "the migration ended before it could be killed");
        committed += usize::from(line.contains("migration batch committed"));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let out = nodestore(dir.path()).args(["--json", "migrate", "--no-backup"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out.stdout);
    let step = &report["steps"][0];
    let resumed = step["resumed_after"].as_u64().unwrap();
    assert!((20..4000).contains(&resumed), "resumed after {resumed}");
    assert_eq!(step["scanned"], 4000);
    assert_eq!(step["verified"], 4000);
    // Entries rewritten by the killed run are not rewritten again.
    assert_eq!(step["changed"], 4000);
    let check = nodestore(dir.path()).args(["check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("0 problem(s)"));
    let again = nodestore(dir.path()).args(["migrate"]).output().unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to migrate"));
}

#[test]
fn migrate_takes_a_backup_first() {
    let dir = tempfile::tempdir().unwrap();
    let demo = nodestore(dir.path()).args(["--json", "demo", "--blocks", "20", "--vertices", "500"]).output().unwrap();
    assert!(demo.status.success());
    downgrade_dag(dir.path());
    let dest = dir.path().join("backups");
    let out = nodestore(dir.path())
        .args(["--json", "migrate", "--backup-destination", dest.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = json(&out.stdout)["backup"].as_str().unwrap().to_owned();
    let list = nodestore(dir.path())
        .args(["--json", "backup", "--destination", dest.to_str().unwrap(), "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
}

#[test]
fn import_legacy_dry_run_import_and_corrupt_records() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy");
    let out = nodestore(dir.path())
        .args(["migrate", "legacy-fixture", "--vertices", "2000", "--finalized", "900", "--out"])
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dry = nodestore(dir.path())
        .args(["--json", "migrate", "import-legacy", "--dry-run", "--from"])
        .arg(&legacy)
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(json(&dry.stdout)["vertices"], 2000);
    assert!(!dir.path().join("db").join("dag").exists());
    let real = nodestore(dir.path()).args(["migrate", "import-legacy", "--from"]).arg(&legacy).output().unwrap();
    assert!(real.status.success(), "{}", String::from_utf8_lossy(&real.stderr));
    assert!(String::from_utf8_lossy(&real.stdout).contains("every record verified"));
    let check = nodestore(dir.path()).args(["check"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("0 problem(s)"),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let bad = dir.path().join("bad");
    let out = nodestore(dir.path())
        .args(["--json", "migrate", "legacy-fixture", "--vertices", "300", "--corrupt", "2", "--out"])
        .arg(&bad)
        .output()
        .unwrap();
    let keys: Vec<String> =
        json(&out.stdout)["corrupt_keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    let other = tempfile::tempdir().unwrap();
    let out = nodestore(other.path()).args(["migrate", "import-legacy", "--from"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(keys.iter().all(|k| err.contains(k.as_str())), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert!(!other.path().join("db").join("dag").exists());
}

/// Every numeric setting at its extremes is either refused naming its key, or runs: no value
/// may make the node panic (exit code 101) at start, while writing or in a background thread.
#[test]
fn every_config_value_is_refused_by_name_or_safe() {
    let dir = tempfile::tempdir().unwrap();
    let out = nodestore(dir.path()).arg("config").output().unwrap();
    let defaults: toml::Table = String::from_utf8_lossy(&out.stdout).parse().unwrap();
    let mut keys: Vec<(Vec<String>, toml::Value)> = Vec::new();
    fn walk(t: &toml::Table, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, toml::Value)>) {
        for (k, v) in t {
            path.push(k.clone());
            match v {
                toml::Value::Table(sub) => walk(sub, path, out),
                toml::Value::Integer(_) | toml::Value::Float(_) => out.push((path.clone(), v.clone())),
                _ => {}
            }
            path.pop();
        }
    }
    walk(&defaults, &mut Vec::new(), &mut keys);
    // Optional settings are absent from the defaults.
    for cache in ["blocks", "canonical", "receipts", "state", "vertices", "archive"] {
        for field in ["ttl_ms", "tti_ms", "max_bytes"] {
            keys.push((vec!["caches".into(), cache.into(), field.into()], toml::Value::Integer(1)));
        }
    }
    for field in ["chain_keep_blocks", "dag_keep_heights"] {
        keys.push((vec!["retention".into(), field.into()], toml::Value::Integer(1)));
    }
    assert!(keys.len() > 40, "only {} numeric settings found", keys.len());
    let (mut refused, mut ran) = (0, 0);
    for (path, default) in &keys {
        let extremes: Vec<toml::Value> = match default {
            toml::Value::Float(_) => [0.0, -1.0, f64::INFINITY, f64::NAN, 1e300].map(toml::Value::Float).to_vec(),
            _ => [0, i64::MAX].map(toml::Value::Integer).to_vec(),
        };
        for value in extremes {
            let mut doc = defaults.clone();
            let mut t = &mut doc;
            for p in &path[..path.len() - 1] {
                t = t.get_mut(p).and_then(toml::Value::as_table_mut).unwrap();
            }
            t.insert(path[path.len() - 1].clone(), value.clone());
            let key = path.join(".");
            let case = dir.path().join(format!("case-{}", refused + ran));
            std::fs::create_dir_all(&case).unwrap();
            std::fs::write(case.join("c.toml"), toml::to_string(&doc).unwrap()).unwrap();
            let out = nodestore(&case)
                .arg("--config")
                .arg(case.join("c.toml"))
                .args(["demo", "--blocks", "20", "--vertices", "40"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(101), "{key} = {value}: panicked: {err}");
            assert!(!err.contains("panicked"), "{key} = {value}: a thread panicked: {err}");
            if out.status.success() {
                ran += 1;
            } else {
                refused += 1;
                assert!(err.contains(&format!("`{key}`")), "{key} = {value}: the error does not name the key: {err}");
                assert_eq!(err.lines().count(), 1, "{err}");
            }
            let _ = std::fs::remove_dir_all(&case);
        }
    }
    assert!(refused > 0 && ran > 0, "refused {refused}, ran {ran}");
}

/// Every file under `dir` with its contents' hash.
fn fingerprint(dir: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, (u64, u64)> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeMap<std::path::PathBuf, (u64, u64)>,
    ) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&bytes, &mut h);
                out.insert(
                    p.strip_prefix(root).unwrap().to_owned(),
                    (bytes.len() as u64, std::hash::Hasher::finish(&h)),
                );
            }
        }
    }
    let mut out = Default::default();
    walk(dir, dir, &mut out);
    out
}

fn demo(dir: &std::path::Path, blocks: &str) {
    let out = nodestore(dir).args(["demo", "--blocks", blocks, "--vertices", "500"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn chain_log(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(dir.join("db/chain"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log") && std::fs::metadata(p).unwrap().len() > 0)
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the chain store has a non-empty log")
}

/// A damaged log is refused by every command, changing nothing; `recover --accept-wal-loss`
/// is the explicit way through.
#[test]
fn a_damaged_wal_is_refused_and_recovered_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "2000");
    let log = chain_log(dir.path());
    let mut bytes = std::fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&log, bytes).unwrap();
    let before = fingerprint(&dir.path().join("db"));
    for args in [&["check"][..], &["stats"], &["get", "block", "1999"], &["demo", "--blocks", "10"]] {
        let out = nodestore(dir.path()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded on a damaged log");
        assert!(err.contains("write-ahead log is damaged") && err.contains("--accept-wal-loss"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert_eq!(before, fingerprint(&dir.path().join("db")), "a refused command changed the data directory");
    let out = nodestore(dir.path()).args(["recover"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--accept-wal-loss"));
    let out = nodestore(dir.path()).args(["--json", "recover", "--accept-wal-loss"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out.stdout);
    let chain = report["stores"].as_array().unwrap().iter().find(|s| s["store"] == "chain").unwrap().clone();
    assert_eq!(chain["recovered"], true, "{report}");
    let kept = std::path::PathBuf::from(chain["damaged_files_kept_at"].as_str().unwrap());
    assert!(kept.join(log.file_name().unwrap()).exists(), "the damaged log is kept");
    assert_eq!(report["check"]["ok"], true, "{report}");
    let check = nodestore(dir.path()).args(["check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn a_deleted_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "500");
    std::fs::remove_file(chain_log(dir.path())).unwrap();
    let out = nodestore(dir.path()).args(["check"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("acknowledged"), "{err}");
}

/// The data directory remembers its engine: another `--backend` is refused, creating nothing.
#[test]
fn another_backend_than_the_data_was_written_with_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "50");
    let before = fingerprint(&dir.path().join("db"));
    for backend in ["redb", "sled"] {
        for args in [&["stats"][..], &["check"], &["demo", "--blocks", "5"]] {
            let out = nodestore(dir.path()).args(["--backend", backend]).args(args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "--backend {backend} {args:?} succeeded");
            assert!(err.contains("holds rocksdb stores") && err.contains("--backend rocksdb"), "{err}");
        }
        let out = nodestore(dir.path()).env("NODE_STORAGE_BACKEND", backend).args(["stats"]).output().unwrap();
        assert!(!out.status.success());
    }
    assert_eq!(before, fingerprint(&dir.path().join("db")), "a refused command changed the data directory");
}

/// Read-only commands change nothing, and find nothing where there is nothing.
#[test]
fn read_only_commands_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "100");
    let before = fingerprint(&dir.path().join("db"));
    for args in [
        &["check"][..],
        &["stats"],
        &["get", "block", "50"],
        &["logs", "--from", "0", "--to", "3"],
        &["history", "0x0000000000000000000000000000000000000001"],
        &["dead-letter", "list"],
    ] {
        let out = nodestore(dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(before, fingerprint(&dir.path().join("db")), "a read-only command changed the data directory");
    // An existing, empty directory is not a database, and stays empty.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = Command::cargo_bin("nodestore").unwrap().arg("--data-dir").arg(&empty).args(["stats"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no database at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "stats created files in an empty directory");
}

/// A bind mount of `src` at `dst`, read-only, unmounted when dropped.
struct ReadOnlyMount(std::path::PathBuf);

impl ReadOnlyMount {
    fn new(src: &std::path::Path, dst: &std::path::Path) -> Option<Self> {
        std::fs::create_dir_all(dst).unwrap();
        let ok = |args: &[&std::ffi::OsStr]| {
            std::process::Command::new("mount").args(args).status().is_ok_and(|s| s.success())
        };
        if !ok(&["--bind".as_ref(), src.as_os_str(), dst.as_os_str()]) {
            return None;
        }
        let mount = ReadOnlyMount(dst.to_owned());
        ok(&["-o".as_ref(), "remount,ro,bind".as_ref(), dst.as_os_str()]).then_some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The inspection commands work on a read-only mount (where a read-write open fails).
#[test]
fn read_only_commands_work_on_a_read_only_mount() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path(), "60");
    let mnt = dir.path().join("ro");
    let Some(_mount) = ReadOnlyMount::new(&dir.path().join("db"), &mnt) else {
        eprintln!("SKIPPED: cannot make a read-only bind mount here (needs root and mount(8))");
        return;
    };
    let ro = |args: &[&str]| {
        Command::cargo_bin("nodestore").unwrap().arg("--data-dir").arg(&mnt).args(args).output().unwrap()
    };
    assert!(std::fs::write(mnt.join("probe"), b"x").is_err(), "the mount is writable");
    for args in [&["check"][..], &["stats"], &["get", "block", "30"]] {
        let out = ro(args);
        assert!(out.status.success(), "{args:?} on a read-only mount: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = ro(&["compact"]);
    assert!(!out.status.success(), "a write command cannot succeed on a read-only mount");
}
