//! Power cuts during a restore and after an era1 import into a fresh directory, on the
//! fault-injecting FUSE file system (`fault-fs`; skipped, saying why, where FUSE cannot
//! mount). After each cut the data directory holds a whole node that checks clean: the old
//! data or the restored data — and once a restore or an import reported success, its result.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use fault_fs::Cut;
use node_storage::backups::{BackupKind, Selector};
use node_storage::{Config, ModelKind, NodeReader, RocksStore, StorageHandle, restore};
use storage_backup::BackupConfig;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(data: &Path, dest: &Path) -> Config {
    let mut c = Config { data_dir: data.to_owned(), backup: BackupConfig::local(dest), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 1 << 20;
    c.metrics.enabled = false;
    c
}

/// The chain head of the stopped node at `data`, after checking it clean.
fn head_after_check(c: &Config) -> u64 {
    let reader = NodeReader::<RocksStore, Synthetic>::open(c.clone()).unwrap_or_else(|e| panic!("reopen: {e}"));
    let (chain, dag) = reader.check().unwrap();
    assert!(chain.is_ok() && dag.is_ok(), "{chain:?} {dag:?}");
    reader.node_stats().unwrap().chain_head.expect("a chain")
}

/// The child: restores the backup `RESTORE_ID` into the node at `RESTORE_DATA`, prints
/// `RESTORED`, and waits for the cut.
#[test]
#[ignore = "run by power_cuts_during_a_restore as a child process"]
fn restore_child() {
    let (Ok(data), Ok(dest), Ok(id)) =
        (std::env::var("RESTORE_DATA"), std::env::var("RESTORE_DEST"), std::env::var("RESTORE_ID"))
    else {
        return;
    };
    rt().block_on(async {
        println!("READY");
        restore::<RocksStore, Synthetic, ()>(
            &config(data.as_ref(), dest.as_ref()),
            &Selector::Id(id),
            false,
            Arc::new(()),
        )
        .await
        .expect("restore");
        println!("RESTORED");
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

/// A node at head 150 is restored from its backup at head 100, and the power is cut at moments
/// spread over the restore and after it: the node afterwards is whole and clean, at 150 or 100,
/// and at 100 whenever the restore had reported success.
#[test]
fn power_cuts_during_a_restore() {
    let Some(mut fs) = fault_fs::mount_or_skip("power cuts during a restore") else { return };
    let data = fs.path().join("node");
    let dest = tempfile::tempdir().unwrap();
    let c = config(&data, dest.path());
    let mut g = ChainGenerator::new(GenConfig { txs_per_block: 10, fork_probability: 0.0, ..GenConfig::default() });
    let blocks = g.generate(151);
    let id = rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(c.clone()).unwrap();
        h.init_chain(blocks[0].clone()).await.unwrap();
        for r in h.insert_blocks(blocks[1..=100].to_vec()).await {
            r.unwrap();
        }
        let id = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap().manifest.id;
        for r in h.insert_blocks(blocks[101..].to_vec()).await {
            r.unwrap();
        }
        h.shutdown().await;
        id
    });
    fs.power_on(Cut { tear: false, seed: 0 }).unwrap();
    assert_eq!(head_after_check(&c), 150);
    let (mut restored, mut kept_old) = (0, 0);
    for cycle in 0..6u64 {
        let env: [(&str, &OsStr); 4] = [
            ("RESTORE_DATA", data.as_os_str()),
            ("RESTORE_DEST", dest.path().as_os_str()),
            ("RESTORE_ID", OsStr::new(&id)),
            ("RUST_LOG", OsStr::new("off")),
        ];
        let wait = Duration::from_millis(cycle * 150);
        let cut = engine_test::child::run_and_cut("restore_child", &env, "READY", wait, || fs.power_off());
        fs.power_on(Cut { tear: cycle % 2 == 1, seed: cycle }).unwrap();
        let reported = cut.lines.iter().any(|l| l == "RESTORED");
        let head = head_after_check(&c);
        assert!(head == 150 || head == 100, "cycle {cycle}: head {head}");
        if reported {
            assert_eq!(head, 100, "cycle {cycle}: the restore reported success, the cut undid it");
        }
        restored += u64::from(head == 100);
        kept_old += u64::from(head == 150);
        // Back to the node at 150 for the next cycle: the data kept beside it by the swap.
        if head == 100 {
            let parent = data.parent().unwrap();
            let kept = std::fs::read_dir(parent)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("node.pre-restore-")))
                .expect("the previous data is kept beside the node");
            std::fs::remove_dir_all(&data).unwrap();
            std::fs::rename(&kept, &data).unwrap();
            storage_api::durable::sync_dir(parent).unwrap();
            fs.power_on(Cut { tear: false, seed: cycle }).unwrap();
            assert_eq!(head_after_check(&c), 150);
        }
        for e in std::fs::read_dir(data.parent().unwrap()).unwrap().filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".node.restore-") || name.starts_with("node.pre-restore-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    println!("6 power cuts during a restore: {restored} left the restored node, {kept_old} the previous one");
}

/// An era1 import into a directory that does not exist yet, then a power cut: the directory and
/// everything imported are there afterwards.
#[test]
fn an_era1_import_into_a_fresh_directory_survives_a_power_cut() {
    let Some(mut fs) = fault_fs::mount_or_skip("a power cut after an era1 import") else { return };
    let archives = tempfile::tempdir().unwrap();
    let files = chain_eth::import::write_generated(
        archives.path(),
        chain_eth::generator::EthShape { txs_per_block: 20, ..chain_eth::generator::MAINNET_LONDON },
        3,
        2,
        40,
    )
    .unwrap();
    let data = fs.path().join("fresh").join("node");
    let mut c = config(&data, &fs.path().join("backups"));
    c.model = ModelKind::Ethereum;
    let report = node_storage::import_era1::<RocksStore, node_storage::eth::Eth>(
        &c,
        &files,
        &Default::default(),
        64 << 20,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(report.check.is_ok());
    fs.power_on(Cut { tear: true, seed: 7 }).unwrap();
    let reader =
        NodeReader::<RocksStore, chain_eth::Eth>::open(c.clone()).unwrap_or_else(|e| panic!("after the cut: {e}"));
    assert_eq!(reader.node_stats().unwrap().chain_head, Some(79), "every imported block is there");
    let (chain, _) = reader.check().unwrap();
    assert!(chain.is_ok(), "{chain:?}");
}
