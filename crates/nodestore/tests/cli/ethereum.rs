//! The Ethereum model through the CLI: the demo, reads by height and hash, inclusion and state
//! proofs, the state trie's check and repair.

use super::{json, nodestore};

/// The Ethereum model end to end: a mainnet-shaped demo, reads by height and hash, a log
/// filter, the integrity check; the synthetic model is refused on that data.
#[test]
fn the_ethereum_model_runs_the_demo_and_the_reads() {
    let dir = tempfile::tempdir().unwrap();
    let eth = |args: &[&str]| nodestore(dir.path()).args(["--model", "ethereum"]).args(args).output().unwrap();
    let out = eth(&["--json", "demo", "--blocks", "24", "--vertices", "200"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo = json(&out.stdout);
    assert_eq!(demo["model"], "ethereum");
    assert!(demo["chain"]["transactions"].as_u64().unwrap() > 24 * 150, "{demo}");
    assert!(demo["queries"]["log_filter"]["matches"].as_u64().unwrap() > 0, "{demo}");
    let block = json(&eth(&["--json", "get", "block", "10"]).stdout);
    assert_eq!(block["number"], 10);
    let tx = block["transactions"][3].as_str().unwrap().to_owned();
    let got = json(&eth(&["--json", "get", "tx", &tx]).stdout);
    assert_eq!((got["block"].as_u64(), got["index"].as_u64()), (Some(10), Some(3)));
    assert!(got["sender"].as_str().is_some_and(|s| s.len() == 42), "{got}");
    let receipt = json(&eth(&["--json", "get", "receipt", &tx]).stdout);
    assert_eq!(receipt["receipt"]["status"], true);
    let hash = block["hash"].as_str().unwrap().to_owned();
    // Inclusion proofs: verified by the command, and their bytes checked here again.
    let keccak = |v: &serde_json::Value| {
        let bytes = chain_eth::alloy_primitives::hex::decode(v.as_str().unwrap()).unwrap();
        chain_eth::alloy_primitives::keccak256(bytes).to_string()
    };
    for what in ["tx", "receipt"] {
        let out = eth(&["--json", "get", what, &tx, "--proof"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let proof = &json(&out.stdout)["proof"];
        assert_eq!(
            (proof["verified"].as_bool(), proof["block"].as_u64(), proof["index"].as_u64()),
            (Some(true), Some(10), Some(3))
        );
        assert_eq!(proof["item"], if what == "tx" { "transaction" } else { "receipt" });
        assert_eq!(keccak(&proof["header_rlp"]), hash, "the header proven is block 10's");
        assert!(!proof["nodes"].as_array().unwrap().is_empty(), "{proof}");
        if what == "tx" {
            assert_eq!(keccak(&proof["value"]), tx, "the value proven is the transaction");
        }
    }
    // A log filter with each log's receipt proof.
    let out = eth(&["--json", "logs", "--from", "10", "--to", "10", "--proof"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = json(&out.stdout);
    assert!(!logs.as_array().unwrap().is_empty(), "{logs}");
    for log in logs.as_array().unwrap() {
        let proof = &log["receipt_proof"];
        assert_eq!((proof["verified"].as_bool(), proof["item"].as_str()), (Some(true), Some("receipt")), "{log}");
        assert_eq!(keccak(&proof["header_rlp"]), hash);
    }
    assert_eq!(json(&eth(&["--json", "get", "block", &hash]).stdout)["number"], 10);
    let check = eth(&["check"]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // The state trie: a verified proof of the sender's account, the check, the repair.
    let sender = got["sender"].as_str().unwrap().to_owned();
    let out = eth(&["--json", "get", "proof", &sender]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proof = json(&out.stdout);
    assert_eq!(proof["verified"], true);
    assert!(proof["value"]["nonce"].is_number() || proof["value"].is_object(), "{proof}");
    assert!(!proof["state_proof"].as_array().unwrap().is_empty());
    let root = proof["root"].as_str().unwrap().to_owned();
    // The same account as of block 5: the state root then, not the head's.
    let out = eth(&["--json", "get", "proof", &sender, "--at", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let past = json(&out.stdout);
    assert_eq!((past["verified"].as_bool(), past["at"].as_u64()), (Some(true), Some(5)), "{past}");
    assert_ne!(past["root"], root.as_str(), "block 5's state is not the head's");
    let checked = json(&eth(&["--json", "check", "--state"]).stdout);
    assert_eq!(checked["state"]["ok"], true, "{checked}");
    assert_eq!(checked["state"]["root"], root.as_str());
    let dry = json(&eth(&["--json", "repair", "state-trie", "--dry-run"]).stdout);
    assert_eq!((dry["written"].as_bool(), dry["matched"].as_bool()), (Some(false), Some(true)), "{dry}");
    assert_eq!(dry["root"], root.as_str());
    let out = eth(&["repair", "state-trie"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("the stored trie matched"));
    let slot = "0x0000000000000000000000000000000000000000000000000000000000000001";
    let out = eth(&["--json", "get", "proof", &sender, "--slot", slot]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out.stdout)["verified"], true);
    // The synthetic model cannot read Ethereum data: refused, not misread.
    let out = nodestore(dir.path()).args(["stats"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chain-eth"), "{err}");
}

/// `serve --rpc` on a node, and `--replica serve --rpc` beside it: both answer from the same
/// data; the synthetic model is refused with the fix.
#[test]
fn the_json_rpc_endpoint_serves_a_node_and_a_replica() {
    let dir = tempfile::tempdir().unwrap();
    let eth = |args: &[&str]| nodestore(dir.path()).args(["--model", "ethereum"]).args(args).output().unwrap();
    assert!(eth(&["demo", "--blocks", "16", "--vertices", "50"]).status.success());
    let block = json(&eth(&["--json", "get", "block", "10"]).stdout);
    let out = nodestore(dir.path()).args(["serve", "--rpc"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--model ethereum"), "{err}");

    // Off the default ports (the default-configuration test binds them).
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[metrics]\nenabled = false\n[rpc]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let command = |replica: bool| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("nodestore"));
        c.env_remove("NODE_STORAGE_BACKEND").arg("--data-dir").arg(dir.path().join("db")).arg("--config").arg(&config);
        c.args(["--model", "ethereum"]);
        if replica {
            c.arg("--replica");
        }
        c.args(["serve", "--rpc"]);
        c
    };
    let (node, node_addr, node_log) = super::rpc::serve_rpc(command(false));
    let (replica, replica_addr, replica_log) = super::rpc::serve_rpc(command(true));
    assert_ne!(node_addr, replica_addr);
    for addr in [&node_addr, &replica_addr] {
        let got = super::rpc::call(addr, "eth_getBlockByNumber", serde_json::json!(["0xa", false]));
        assert_eq!(got["hash"], block["hash"], "{addr}");
        let tx = block["transactions"][2].as_str().unwrap();
        let receipt = super::rpc::call(addr, "eth_getTransactionReceipt", serde_json::json!([tx]));
        assert_eq!(receipt["blockNumber"], "0xa");
    }
    super::rpc::interrupt(replica, replica_log);
    super::rpc::interrupt(node, node_log);
}
