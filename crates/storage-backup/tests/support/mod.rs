//! Helpers shared by the backup tests.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use storage_backup::{Progress, StoreRecord};

pub mod remote;

/// A fake checkpoint directory laid out like a RocksDB data directory: SSTs (immutable), and
/// small mutable files. Returns the total bytes.
pub fn fake_checkpoint(root: &Path, seed: u8, ssts: usize, sst_bytes: usize) -> u64 {
    let dir = root.join("chain");
    std::fs::create_dir_all(&dir).unwrap();
    let mut total = 0;
    for i in 0..ssts {
        let data: Vec<u8> = (0..sst_bytes).map(|j| (j as u64 * 2654435761 % 251) as u8 ^ (i as u8) ^ seed).collect();
        std::fs::write(dir.join(format!("{:06}.sst", i + 10)), &data).unwrap();
        total += data.len() as u64;
    }
    for (name, body) in [
        ("CURRENT", "MANIFEST-000005\n".to_string()),
        ("IDENTITY", "5e1f-identity\n".to_string()),
        ("MANIFEST-000005", format!("manifest seed {seed}")),
        ("OPTIONS-000007", "[Version]\n".to_string()),
    ] {
        std::fs::write(dir.join(name), &body).unwrap();
        total += body.len() as u64;
    }
    total
}

/// The store record matching [`fake_checkpoint`].
pub fn chain_record() -> StoreRecord {
    StoreRecord {
        node: None,
        name: "chain".into(),
        backend: "rocksdb".into(),
        schema: "chain".into(),
        schema_version: 1,
        head: Some(42),
        finalized: Some(40),
        identity: Some("5e1f-identity".into()),
        tables: Vec::new(),
    }
}

/// Every file under `root` with its contents, by relative path.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Counts progress bytes.
#[derive(Default)]
pub struct Count(pub AtomicU64);

impl Progress for Count {
    fn advance(&self, bytes: u64) {
        self.0.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// No progress.
pub fn quiet() -> Arc<()> {
    Arc::new(())
}

/// A runtime for the async API.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}
