//! Operating a running node (`nodestore serve` with `[admin] enabled`): the commands go through
//! its admin socket and print what they print on a stopped node.

use super::{json, nodestore};

#[test]
fn commands_reach_a_running_node_through_its_admin_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "[metrics]\nlisten = \"127.0.0.1:0\"\n[admin]\nenabled = true\n[backup]\ndestination = \"{}\"\n",
            dir.path().join("backups").display()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let mut c = nodestore(dir.path());
        c.arg("--config").arg(&config).args(args);
        c.output().unwrap()
    };
    let ok = |out: &std::process::Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&cli(&["demo", "--blocks", "300", "--vertices", "500"]));
    // The stopped node, opened by the CLI.
    let offline_check = ok(&cli(&["check"]));
    let offline_check_json = json(ok(&cli(&["--json", "check", "--state"])).as_bytes());
    let offline_stats = json(ok(&cli(&["--json", "stats"])).as_bytes());
    let offline_schedule = ok(&cli(&["backup", "schedule"]));
    assert!(offline_schedule.contains("no node is running"), "{offline_schedule}");

    let (mut serve, log) = super::serve(dir.path(), &config);

    // Same output as on the stopped node, from the running one.
    assert_eq!(ok(&cli(&["check"])), offline_check);
    assert_eq!(json(ok(&cli(&["--json", "check", "--state"])).as_bytes()), offline_check_json);
    let stats = json(ok(&cli(&["--json", "stats"])).as_bytes());
    for key in ["backend", "chain_head", "finalized", "pruned_below"] {
        assert_eq!(stats[key], offline_stats[key], "{key}");
    }
    assert_eq!(ok(&cli(&["compact"])).trim(), "compacted");
    let pruned = json(ok(&cli(&["--json", "prune", "--chain-keep", "100"])).as_bytes());
    assert!(pruned["chain"]["pruned_below"].as_u64().unwrap() > 0, "{pruned}");
    assert!(ok(&cli(&["dead-letter", "list"])).contains("reason"));
    let backup = json(ok(&cli(&["--json", "backup", "create"])).as_bytes());
    assert_eq!(backup["kind"], "physical");
    assert!(backup["chain_head"].as_u64().unwrap() >= 300, "{backup}");
    let logical = ok(&cli(&["backup", "create", "--kind", "logical"]));
    assert!(logical.contains("complete"), "{logical}");
    let schedule = ok(&cli(&["backup", "schedule"]));
    assert!(schedule.contains("off in the running node"), "{schedule}");
    // What the admin endpoint does not offer still needs the node stopped, and says how.
    let repair = cli(&["repair", "state-trie", "--dry-run"]);
    assert!(!repair.status.success());
    assert!(String::from_utf8_lossy(&repair.stderr).contains("[admin] enabled"), "{repair:?}");
    // Backups taken by the running node are listed and verify.
    assert_eq!(json(ok(&cli(&["--json", "backup", "list"])).as_bytes()).as_array().unwrap().len(), 2);
    ok(&cli(&["backup", "verify"]));

    // Killed: its socket stays behind, and the CLI opens the stores itself again.
    serve.kill().unwrap();
    serve.wait().unwrap();
    let log = log.join().unwrap();
    assert!(log.contains("admin request"), "{log}");
    assert!(dir.path().join("db").join("admin.sock").exists());
    assert_eq!(ok(&cli(&["check"])), offline_check);
}
