//! Loading the configuration: TOML, environment overrides, clear errors.

use node_storage::{BackendKind, Config};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn toml_then_environment() {
    let toml = "backend = \"redb\"\ndata_dir = \"/var/lib/x\"\n[writer]\nretries = 7\n[caches.state]\nmax_entries = 5\nttl_ms = 1000\n";
    let c = Config::from_toml_and_env(
        toml,
        env(&[
            ("NODE_STORAGE_WRITER__RETRIES", "9"),
            ("NODE_STORAGE_BACKEND", "sled"),
            ("NODE_STORAGE_METRICS__LISTEN", "127.0.0.1:9999"),
            ("NODE_STORAGE_RETENTION__CHAIN_KEEP_BLOCKS", "1000"),
            ("UNRELATED", "x"),
        ]),
    )
    .unwrap();
    assert_eq!(c.backend, BackendKind::Sled);
    assert_eq!(c.writer.retries, 9);
    assert_eq!(c.caches.state.max_entries, 5);
    assert_eq!(c.metrics.listen.port(), 9999);
    assert_eq!(c.retention.chain_keep_blocks, Some(1000));
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/x"));
    // What it prints reads back the same.
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
}

#[test]
fn unknown_keys_and_bad_values_are_clear_errors() {
    let e = Config::from_toml("[writer]\nretires = 3\n").unwrap_err().to_string();
    assert!(e.contains("unknown field `retires`"), "{e}");
    let e = Config::from_toml("backend = \"leveldb\"").unwrap_err().to_string();
    assert!(e.contains("unknown variant `leveldb`"), "{e}");
    let e = Config::from_toml("[writer]\nmax_batch_requests = 0\n").unwrap_err().to_string();
    assert_eq!(e, "config: `writer.max_batch_requests` must be within 1..=1000000, not 0");
    let e = Config::from_toml_and_env("", env(&[("NODE_STORAGE_WRITER__NOPE", "1")])).unwrap_err().to_string();
    assert!(e.contains("unknown field `nope`") && e.contains("NODE_STORAGE_WRITER__NOPE"), "{e}");
    let e = Config::from_toml_and_env("", env(&[("NODE_STORAGE_WRITER__RETRIES", "many")])).unwrap_err().to_string();
    assert!(e.contains("invalid type"), "{e}");
    let e = Config::from_toml("[caches.state]\nttl_ms = 0\n").unwrap_err().to_string();
    assert_eq!(e, "config: `caches.state.ttl_ms` must be positive (omit it for no expiry)");
    let e = Config::load(Some(std::path::Path::new("/nonexistent/node.toml"))).unwrap_err().to_string();
    assert!(e.starts_with("config file /nonexistent/node.toml:"), "{e}");
}

/// `[state] trie`: `on` by default, `off` from TOML or the environment, anything else refused
/// by name; a root check without the trie is refused.
#[test]
fn the_state_trie_switch_reads_and_checks() {
    use node_storage::TrieSwitch;
    assert_eq!(Config::default().state.trie, TrieSwitch::On);
    assert_eq!(Config::from_toml("[state]\ntrie = \"off\"\n").unwrap().state.trie, TrieSwitch::Off);
    let c = Config::from_toml_and_env("", env(&[("NODE_STORAGE_STATE__TRIE", "off")])).unwrap();
    assert_eq!(c.state.trie, TrieSwitch::Off);
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    let e = Config::from_toml("[state]\ntrie = \"maybe\"\n").unwrap_err().to_string();
    assert!(e.contains("unknown variant `maybe`"), "{e}");
    let e = Config::from_toml("[state]\ntrie = \"off\"\ncheck_roots = true\n").unwrap_err().to_string();
    assert!(e.contains("state.check_roots"), "{e}");
}

/// `[rpc]`: off on loopback by default; TOML and the environment set it; a limit out of range
/// is refused by its key.
#[test]
fn the_json_rpc_section_reads_and_checks() {
    let d = Config::default().rpc;
    assert!(!d.enabled);
    assert_eq!(d.listen.to_string(), "127.0.0.1:8545");
    let c = Config::from_toml_and_env(
        "[rpc]\nenabled = true\nlisten = \"0.0.0.0:9545\"\nmax_batch = 5\n",
        env(&[("NODE_STORAGE_RPC__MAX_LOGS", "7")]),
    )
    .unwrap();
    assert!(c.rpc.enabled);
    assert_eq!((c.rpc.listen.port(), c.rpc.max_batch, c.rpc.max_logs), (9545, 5, 7));
    assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    let e = Config::from_toml("[rpc]\nmax_batch = 0\n").unwrap_err().to_string();
    assert_eq!(e, "config: `rpc.max_batch` must be within 1..=100000, not 0");
    let e = Config::from_toml("[rpc]\nlisten = \"localhost\"\n").unwrap_err().to_string();
    assert!(e.contains("rpc") || e.contains("socket address"), "{e}");
}
