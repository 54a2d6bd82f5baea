//! Backups against Azure Blob's emulator (Azurite on loopback, SharedKey signatures checked):
//! round trip with block uploads, wrong credentials, and an outage in the middle of an upload —
//! the cases `s3.rs` runs on S3. Each test prints SKIPPED where Azurite is not installed.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use storage_backup::testkit::AzuriteServer;
use storage_backup::{BackupError, Backups, Credentials, DestinationError, Progress};
use support::*;

#[test]
fn round_trip_through_azurite_with_block_uploads() {
    let rt = runtime();
    let Some(server) = AzuriteServer::start_or_skip("round_trip_through_azurite_with_block_uploads") else { return };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    // 20 MiB SSTs: above the 16 MiB threshold, so uploaded in 8 MiB parts.
    fake_checkpoint(&src, 1, 2, 20 << 20);
    let backups = Backups::open(&server.config("node-a")).unwrap();
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let listed = rt.block_on(backups.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_complete());
    // The objects really are on the server, under the prefix.
    let objects = rt.block_on(backups.destination().list("objects")).unwrap();
    assert!(objects.len() >= 2, "the two SSTs as objects: {objects:?}");
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap();
    assert_eq!(tree(&src), tree(&staging));
    // Unchanged: the second backup uploads only its small archive.
    let again = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    assert_eq!(again.totals.reused_files, 2);
    assert!(again.totals.uploaded_bytes < 10_000, "{:?}", again.totals);
}

#[test]
fn wrong_credentials_give_a_clear_error_and_list_nothing() {
    let rt = runtime();
    let Some(server) = AzuriteServer::start_or_skip("wrong_credentials_give_a_clear_error_and_list_nothing") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    fake_checkpoint(&src, 2, 1, 100_000);
    let mut config = server.config("node-b");
    // A well-formed key of the right account, but not its key.
    let guess = "Z3Vlc3Mtbm90LXRoZS1rZXktb2YtdGhpcy1hY2NvdW50LWd1ZXNzLWd1ZXNzLWd1ZXNzLWd1ZXNzIQ==";
    config.credentials = Some(Credentials {
        access_key_id: storage_backup::testkit::AZURITE_ACCOUNT.into(),
        secret_access_key: guess.into(),
    });
    let backups = Backups::open(&config).unwrap();
    let err = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap_err();
    assert!(matches!(&err, BackupError::Destination(d) if matches!(**d, DestinationError::Denied { .. })), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refused the credentials") && text.contains("AZURE_STORAGE_ACCOUNT_KEY"), "{text}");
    assert!(!text.contains(guess), "the secret must never appear: {text}");
    assert!(!format!("{err:?}").contains(guess), "nor in Debug: {err:?}");
    let good = Backups::open(&server.config("node-b")).unwrap();
    assert!(rt.block_on(good.list()).unwrap().is_empty());
}

/// Stops the server once `after` bytes have been read for upload.
struct Outage {
    server: Arc<Mutex<AzuriteServer>>,
    read: AtomicU64,
    after: u64,
    fired: AtomicBool,
}

impl Progress for Outage {
    fn advance(&self, bytes: u64) {
        let total = self.read.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total > self.after && !self.fired.swap(true, Ordering::Relaxed) {
            self.server.lock().unwrap().stop();
        }
    }
}

#[test]
fn server_stopped_mid_upload_leaves_no_complete_backup_and_the_next_run_recovers() {
    let rt = runtime();
    let Some(server) =
        AzuriteServer::start_or_skip("server_stopped_mid_upload_leaves_no_complete_backup_and_the_next_run_recovers")
    else {
        return;
    };
    let server = Arc::new(Mutex::new(server));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("ckpt");
    let total = fake_checkpoint(&src, 3, 3, 24 << 20);
    let config = server.lock().unwrap().config("node-c");
    let backups = Backups::open(&config).unwrap();
    // Hashing reads everything once; stop during the upload that follows.
    let outage = Arc::new(Outage {
        server: server.clone(),
        read: AtomicU64::new(0),
        after: total + (30 << 20),
        fired: AtomicBool::new(false),
    });
    let err = rt.block_on(backups.create_physical(&src, vec![chain_record()], outage.clone())).unwrap_err();
    assert!(outage.fired.load(Ordering::Relaxed), "the outage happened");
    assert!(matches!(err, BackupError::Destination(_) | BackupError::Io { .. }), "{err:?}");
    server.lock().unwrap().restart();
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
