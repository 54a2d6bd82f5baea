//! History commands: era1 import and export, the history archive, and a replica of a running
//! node.

use assert_cmd::Command;

use super::{json, nodestore};

/// era1 through the CLI: generated archives imported (the chain starts at the first file's
/// first block), one file exported byte-identically, a tampered file refused with nothing
/// stored, and an import killed with SIGKILL part-way that resumes and checks clean.
#[test]
fn era1_import_export_and_kill_resume() {
    use chain_eth::import::write_generated;
    use node_storage::eth::generator::MAINNET_LONDON;
    let dir = tempfile::tempdir().unwrap();
    let archives = dir.path().join("archives");
    std::fs::create_dir(&archives).unwrap();
    let shape = node_storage::eth::generator::EthShape { txs_per_block: 40, ..MAINNET_LONDON };
    let files = write_generated(&archives, shape, 7, 6, 50).unwrap();
    let eth = |c: &mut Command| {
        c.args(["--model", "ethereum"]);
    };

    let started = std::time::Instant::now();
    let mut c = nodestore(dir.path());
    eth(&mut c);
    let out = c.args(["--json", "import", "era1"]).arg(&archives).output().unwrap();
    let full_run = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out.stdout);
    assert_eq!(report["imported"], 299, "genesis starts the chain; the other 299 blocks are imported");
    assert_eq!(report["check_ok"], true);
    assert_eq!(report["files"][0]["verified"], "own blocks", "generated files are of no published history");
    let stats = {
        let mut c = nodestore(dir.path());
        eth(&mut c);
        let out = c.args(["--json", "stats"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out.stdout)
    };
    assert_eq!(stats["chain_head"], 299);

    let out_dir = dir.path().join("out");
    let mut c = nodestore(dir.path());
    eth(&mut c);
    let out = c.args(["--json", "export", "era1", "--from", "100", "--to", "149"]).arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = json(&out.stdout)["files"][0]["file"].as_str().unwrap().to_owned();
    assert!(std::fs::read(&exported).unwrap() == std::fs::read(&files[2]).unwrap(), "byte-identical export");

    // A tampered file: refused, nothing of it stored.
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir(&bad_dir).unwrap();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let n = bytes.len();
    bytes[n - 300] ^= 0xff;
    std::fs::write(bad_dir.join("bad.era1"), &bytes).unwrap();
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let mut c = nodestore(&fresh);
    eth(&mut c);
    let out = c.args(["import", "era1"]).arg(&bad_dir).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.era1"), "{err}");

    // A file named as mainnet's: checked against the published accumulator, which holds whole
    // epochs only — refused with nothing stored; imported when the check is skipped.
    let named_dir = dir.path().join("named");
    std::fs::create_dir(&named_dir).unwrap();
    let accumulator = report["files"][0]["accumulator"].as_str().unwrap().parse().unwrap();
    let name = chain_eth::era1::file_name("mainnet", 0, accumulator);
    std::fs::copy(&files[0], named_dir.join(&name)).unwrap();
    let fresh = dir.path().join("fresh-named");
    std::fs::create_dir(&fresh).unwrap();
    let mut c = nodestore(&fresh);
    eth(&mut c);
    let out = c.args(["import", "era1"]).arg(&named_dir).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&name) && err.contains("published accumulator") && err.contains("epoch 0"), "{err}");
    let mut c = nodestore(&fresh);
    eth(&mut c);
    let out = c.args(["import", "era1", "--skip-published-check"]).arg(&named_dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verified against its own blocks only"), "{text}");

    // SIGKILL part-way through, then the same command again.
    let killed = dir.path().join("killed");
    std::fs::create_dir(&killed).unwrap();
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"));
    c.arg("--data-dir").arg(killed.join("db")).args(["--model", "ethereum", "--json", "import", "era1"]).arg(&archives);
    let mut child = c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(full_run / 2);
    let was_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut c = nodestore(&killed);
    eth(&mut c);
    let out = c.args(["--json", "import", "era1"]).arg(&archives).output().unwrap();
    assert!(out.status.success(), "resume: {}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out.stdout);
    assert_eq!(report["check_ok"], true);
    let (imported, skipped) = (report["imported"].as_u64().unwrap(), report["skipped"].as_u64().unwrap());
    assert_eq!(imported + skipped, 300);
    if was_running {
        eprintln!("killed part-way: the resumed run skipped {skipped} committed blocks and imported {imported}");
    }
    let check = nodestore(&killed).args(["--model", "ethereum", "check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

/// The history archive from the command line (segments in a local directory): upload from a
/// stopped node, prune to it, read pruned blocks back, verify; and a replica reading the node
/// while `serve` runs.
#[test]
fn archive_commands_and_a_replica_of_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n[history]\nkind = \"segments\"\nupload_interval_ms = 50\n\
             [history.segments]\ndestination = \"{}\"\nblocks_per_segment = 64\nvertices_per_segment = 64\n",
            archive.display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut c = nodestore(dir.path());
        c.arg("--config").arg(&config).args(args);
        c
    };
    let out = cli(&["demo", "--blocks", "300", "--vertices", "500"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let up = cli(&["--json", "archive", "upload"]).output().unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let status = json(&cli(&["--json", "archive", "status"]).output().unwrap().stdout);
    let next = status["chain"]["next"].as_u64().unwrap();
    let finalized = status["chain_finalized"].as_u64().unwrap();
    assert_eq!(next, (finalized + 1) / 64 * 64, "every whole finalized segment: {status}");
    assert_eq!(status["chain_lag"].as_u64().unwrap(), finalized + 1 - next);
    let pruned = json(&cli(&["--json", "prune", "--chain-keep", "10"]).output().unwrap().stdout);
    assert_eq!(pruned["chain"]["pruned_below"].as_u64().unwrap(), next, "pruned up to the archive, no further");
    assert_eq!(pruned["chain"]["limited_by_archive"], true);
    let block = cli(&["--json", "get", "block", "5"]).output().unwrap();
    assert!(
        block.status.success(),
        "a pruned block is read from the archive: {}",
        String::from_utf8_lossy(&block.stderr)
    );
    assert_eq!(json(&block.stdout)["number"], 5);
    let tx = json(&block.stdout)["transactions"][0].as_str().unwrap().to_owned();
    assert_eq!(json(&cli(&["--json", "get", "tx", &tx]).output().unwrap().stdout)["block"], 5);
    let verify = cli(&["archive", "verify"]).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("0 problem(s)"));

    // A running node: inspection through a replica, while it serves.
    let (mut serve, _log) = super::serve(dir.path(), &config);
    let locked = cli(&["stats"]).output().unwrap();
    let replica = cli(&["--replica", "--json", "stats"]).output().unwrap();
    let got = cli(&["--replica", "--json", "get", "block", "250"]).output().unwrap();
    let archived = cli(&["--replica", "--json", "get", "block", "7"]).output().unwrap();
    let upload = cli(&["archive", "upload"]).output().unwrap();
    let refused = cli(&["--replica", "compact"]).output().unwrap();
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(replica.status.success(), "{}", String::from_utf8_lossy(&replica.stderr));
    assert!(json(&replica.stdout)["chain_head"].as_u64().unwrap() >= 300);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(json(&got.stdout)["number"], 250);
    assert_eq!(json(&archived.stdout)["number"], 7, "{}", String::from_utf8_lossy(&archived.stderr));
    assert!(!upload.status.success());
    assert!(String::from_utf8_lossy(&upload.stderr).contains("uploads finalized history by itself"));
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--replica reads a running node"));
    // Without --replica, a read-only open of the running node still works (RocksDB) but sees
    // the state as of opening; it is not refused.
    assert!(locked.status.success(), "{}", String::from_utf8_lossy(&locked.stderr));
}

/// Header proofs through the CLI: a whole epoch imported from an era1 file proves its blocks
/// (against the file's root: a generated chain, not mainnet's — and the output says so); a
/// block of an epoch imported in part has none, said plainly.
#[test]
fn era1_header_proofs() {
    use chain_eth::import::write_generated;
    use node_storage::eth::generator::{EthShape, MAINNET_LONDON};
    let dir = tempfile::tempdir().unwrap();
    let archives = dir.path().join("archives");
    std::fs::create_dir(&archives).unwrap();
    let shape = EthShape { txs_per_block: 1, ..MAINNET_LONDON };
    write_generated(&archives, shape.clone(), 9, 1, 8192).unwrap();
    let eth = |args: &[&str]| nodestore(dir.path()).args(["--model", "ethereum"]).args(args).output().unwrap();
    let out = eth(&["--json", "import", "era1", archives.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let root = json(&out.stdout)["files"][0]["accumulator"].as_str().unwrap().to_owned();
    for n in ["0", "4321", "8191"] {
        let out = eth(&["--json", "get", "block", n, "--proof"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let block = json(&out.stdout);
        let proof = &block["header_proof"];
        assert_eq!(proof["epoch_root"], root.as_str(), "{proof}");
        assert_eq!(proof["hash"], block["hash"]);
        assert_eq!(proof["proof"].as_array().unwrap().len(), 15);
        assert_eq!(proof["mainnet_published_accumulator"], false, "a generated chain is not mainnet's");
        assert!(proof["verified_against"].as_str().unwrap().contains("not mainnet's"), "{proof}");
    }
    // A transaction's proof comes with its header's.
    let block = json(&eth(&["--json", "get", "block", "4321"]).stdout);
    let tx = block["transactions"][0].as_str().unwrap().to_owned();
    let out = eth(&["--json", "get", "tx", &tx, "--proof"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proof = &json(&out.stdout)["proof"];
    assert_eq!((proof["verified"].as_bool(), proof["block"].as_u64()), (Some(true), Some(4321)), "{proof}");
    assert_eq!(proof["header_proof"]["epoch_root"], root.as_str(), "{proof}");

    // An epoch imported in part: no proof, and the reason.
    let part = tempfile::tempdir().unwrap();
    let archives = part.path().join("archives");
    std::fs::create_dir(&archives).unwrap();
    write_generated(&archives, shape, 9, 1, 50).unwrap();
    let eth = |args: &[&str]| nodestore(part.path()).args(["--model", "ethereum"]).args(args).output().unwrap();
    assert!(eth(&["import", "era1", archives.to_str().unwrap()]).status.success());
    let out = eth(&["get", "block", "10", "--proof"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no header proof of block 10") && err.contains("whole epochs"), "{err}");
}
