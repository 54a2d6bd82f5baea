//! Power cuts during backups, on the fault-injecting FUSE file system (`fault-fs`): the data
//! directory and a local backup destination both live on it. A child backs the node up again
//! and again (physical and logical in turn), printing each completed backup; the driver cuts
//! the power at a random moment, then checks that every backup the child saw complete is
//! listed complete, that every backup listed complete verifies byte for byte and the newest
//! restores, and that the node reopens with a clean integrity check. Skipped, saying why,
//! where FUSE cannot mount.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::generator::DagGenerator;
use fault_fs::Cut;
use node_storage::{Backend, Config, RedbStore, RocksStore, StorageHandle, restore};
use storage_backup::{BackupConfig, BackupKind, Backups, Selector};

const CYCLES: u64 = 4;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config<B: Backend>(data: &Path, dest: &Path) -> Config {
    let mut c =
        Config { data_dir: data.to_owned(), backend: B::KIND, backup: BackupConfig::local(dest), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 1 << 20;
    c.metrics.enabled = false;
    c
}

/// The child: fills an empty node, then backs it up until the power goes.
#[test]
#[ignore = "run by the backup power-cut tests as a child process"]
fn backup_child() {
    let (Ok(data), Ok(dest)) = (std::env::var("POWERCUT_DATA"), std::env::var("POWERCUT_DEST")) else { return };
    match std::env::var("POWERCUT_ENGINE").as_deref() {
        Ok("redb") => back_up_until_cut::<RedbStore>(Path::new(&data), Path::new(&dest)),
        _ => back_up_until_cut::<RocksStore>(Path::new(&data), Path::new(&dest)),
    }
}

fn back_up_until_cut<B: Backend>(data: &Path, dest: &Path) {
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(config::<B>(data, dest)).expect("open");
        if h.pointers().head.is_none() {
            let mut g = ChainGenerator::new(GenConfig { txs_per_block: 10, ..GenConfig::default() });
            h.init_chain(g.next_blocks().remove(0)).await.expect("init");
            let blocks: Vec<_> = (0..150).flat_map(|_| g.next_blocks()).collect();
            for r in h.insert_blocks(blocks).await {
                r.expect("insert");
            }
            for r in h.insert_vertices(DagGenerator::new(3).generate(1_500)).await {
                r.expect("insert vertex");
            }
        }
        println!("READY");
        for i in 0u64.. {
            let kind = if i % 2 == 0 { BackupKind::Physical } else { BackupKind::Logical };
            let report = h.backup(kind, Arc::new(())).await.expect("backup");
            println!("BACKUP {}", report.manifest.id);
        }
    });
}

fn cuts_during_backups<B: Backend>() {
    let Some(mut fs) = fault_fs::mount_or_skip(&format!("power cuts during backups on {}", B::KIND)) else { return };
    let (data, dest) = (fs.path().join("node"), fs.path().join("backups"));
    let scratch = tempfile::tempdir().unwrap();
    let (mut listed, mut incomplete, mut cut_mid_backup) = (0, 0, 0);
    for cycle in 0..CYCLES {
        let engine = B::KIND.to_string();
        let env: [(&str, &OsStr); 4] = [
            ("POWERCUT_DATA", data.as_os_str()),
            ("POWERCUT_DEST", dest.as_os_str()),
            ("POWERCUT_ENGINE", OsStr::new(&engine)),
            ("RUST_LOG", OsStr::new("off")),
        ];
        let wait = Duration::from_millis(100 + cycle * 211 % 700);
        let killed = engine_test::child::run_and_cut("backup_child", &env, "READY", wait, || fs.power_off());
        assert!(killed.was_running, "cycle {cycle}: the child stopped before the cut: {:?}", killed.lines);
        fs.power_on(Cut { tear: cycle % 2 == 1, seed: cycle }).unwrap();
        let acked: Vec<&str> = killed.lines.iter().filter_map(|l| l.strip_prefix("BACKUP ")).collect();
        rt().block_on(async {
            let c = config::<B>(&data, &dest);
            // The node reopens, clean.
            let h = StorageHandle::<B, Synthetic>::open(c.clone())
                .unwrap_or_else(|e| panic!("{} cycle {cycle}: reopen after the cut: {e}", B::KIND));
            let (chain, dag) = h.check().await.unwrap();
            assert!(chain.is_ok() && dag.is_ok(), "{} cycle {cycle}: {chain:?} {dag:?}", B::KIND);
            h.shutdown().await;
            drop(h);
            let backups = Backups::open(&c.backup).unwrap();
            let all = backups.list().await.unwrap_or_else(|e| panic!("{} cycle {cycle}: listing: {e}", B::KIND));
            for id in &acked {
                let info = all.iter().find(|b| b.id == *id);
                assert!(
                    info.is_some_and(|b| b.manifest.is_some()),
                    "{} cycle {cycle}: backup {id} was reported complete, after the cut it is not",
                    B::KIND
                );
            }
            cut_mid_backup += u64::from(all.iter().any(|b| b.manifest.is_none()));
            incomplete += all.iter().filter(|b| b.manifest.is_none()).count();
            let complete: Vec<_> = all.iter().filter_map(|b| b.manifest.clone()).collect();
            for m in &complete {
                backups.verify(m, scratch.path(), Arc::new(())).await.unwrap_or_else(|e| {
                    panic!("{} cycle {cycle}: backup {} is listed complete but does not verify: {e}", B::KIND, m.id)
                });
            }
            listed = complete.len();
            // The newest restores, into a new data directory off the fault file system.
            if let Some(newest) = complete.last() {
                let target = tempfile::tempdir().unwrap();
                let rc = config::<B>(&target.path().join("restored"), &dest);
                restore::<B, Synthetic, ()>(&rc, &Selector::Id(newest.id.clone()), false, Arc::new(()))
                    .await
                    .unwrap_or_else(|e| panic!("{} cycle {cycle}: restoring {}: {e}", B::KIND, newest.id));
                let h = StorageHandle::<B, Synthetic>::open(rc).unwrap();
                let (chain, dag) = h.check().await.unwrap();
                assert!(chain.is_ok() && dag.is_ok(), "{} cycle {cycle}: restored {}: {chain:?}", B::KIND, newest.id);
                h.shutdown().await;
            }
        });
    }
    println!(
        "{}: {CYCLES} power cuts during backups: {listed} backups listed complete, each verified, the newest \
         restored; {cut_mid_backup} cuts left {incomplete} incomplete backups, none listed complete",
        B::KIND
    );
}

#[test]
fn power_cuts_during_backups_rocksdb() {
    cuts_during_backups::<RocksStore>();
}

#[test]
fn power_cuts_during_backups_redb() {
    cuts_during_backups::<RedbStore>();
}
