//! The cases every object-storage destination runs on its real server (`s3.rs` on s3s-fs,
//! `azure.rs` on Azurite): a round trip with multipart uploads, wrong credentials, and an
//! outage in the middle of an upload.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use storage_backup::{BackupConfig, BackupError, Backups, DestinationError, Progress};

use super::{chain_record, fake_checkpoint, quiet, runtime, tree};

/// Backs up twice (the second by reference), lists and extracts; `on_server` checks that the
/// objects really are on the server, under the prefix.
pub fn round_trip(config: &BackupConfig, on_server: impl FnOnce(&tokio::runtime::Runtime, &Backups)) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    // 20 MiB SSTs: above the 16 MiB threshold, so uploaded in 8 MiB parts.
    fake_checkpoint(&src, 1, 2, 20 << 20);
    let backups = Backups::open(config).unwrap();
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let listed = rt.block_on(backups.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_complete());
    on_server(&rt, &backups);
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap();
    assert_eq!(tree(&src), tree(&staging));
    // Unchanged: the second backup uploads only its small archive.
    let again = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    assert_eq!(again.totals.reused_files, 2);
    assert!(again.totals.uploaded_bytes < 10_000, "{:?}", again.totals);
}

/// A backup with the `bad` credentials is refused by kind, naming `hint` and never `secret`;
/// the `good` configuration then lists nothing. Returns the error for further checks.
pub fn wrong_credentials(bad: &BackupConfig, good: &BackupConfig, hint: &str, secret: &str) -> BackupError {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    fake_checkpoint(&src, 2, 1, 100_000);
    let backups = Backups::open(bad).unwrap();
    let err = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap_err();
    assert!(matches!(&err, BackupError::Destination(d) if matches!(**d, DestinationError::Denied { .. })), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refused the credentials") && text.contains(hint), "{text}");
    assert!(!text.contains(secret), "the secret must never appear: {text}");
    let good = Backups::open(good).unwrap();
    assert!(rt.block_on(good.list()).unwrap().is_empty());
    err
}

/// Calls `stop` once `after` bytes have been read for upload.
struct Outage {
    stop: Box<dyn Fn() + Send + Sync>,
    read: AtomicU64,
    after: u64,
    fired: AtomicBool,
}

impl Progress for Outage {
    fn advance(&self, bytes: u64) {
        let total = self.read.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total > self.after && !self.fired.swap(true, Ordering::Relaxed) {
            (self.stop)();
        }
    }
}

/// The server stopped (`stop`) in the middle of an upload leaves no complete backup; after
/// `restart` the next run completes and restores.
pub fn outage_mid_upload(config: &BackupConfig, stop: impl Fn() + Send + Sync + 'static, restart: impl FnOnce()) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    let total = fake_checkpoint(&src, 3, 3, 24 << 20);
    let backups = Backups::open(config).unwrap();
    // Hashing reads everything once; stop during the upload that follows.
    let outage = Arc::new(Outage {
        stop: Box::new(stop),
        read: AtomicU64::new(0),
        after: total + (30 << 20),
        fired: AtomicBool::new(false),
    });
    let err = rt.block_on(backups.create_physical(&src, vec![chain_record()], outage.clone())).unwrap_err();
    assert!(outage.fired.load(Ordering::Relaxed), "the outage happened");
    assert!(matches!(err, BackupError::Destination(_) | BackupError::Io { .. }), "{err:?}");
    restart();
    let listed = rt.block_on(backups.list()).unwrap();
    assert!(listed.iter().all(|b| !b.is_complete()), "nothing complete after the outage: {listed:?}");
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let listed = rt.block_on(backups.list()).unwrap();
    assert_eq!(listed.iter().map(|b| (b.id.clone(), b.is_complete())).collect::<Vec<_>>(), vec![(m.id.clone(), true)]);
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap();
    assert_eq!(tree(&src), tree(&staging));
}
