//! Backups against a real S3-compatible server (s3s-fs on loopback, SigV4 checked): round
//! trip with multipart uploads, wrong credentials, and an outage in the middle of an upload.

mod support;

use std::sync::{Arc, Mutex};

use storage_backup::Credentials;
use storage_backup::testkit::S3Server;
use support::remote;

#[test]
fn round_trip_through_s3_with_multipart_uploads() {
    let server = S3Server::start();
    remote::round_trip(&server.config("node-a"), |_, _| {
        assert!(server.root().join("backups/node-a/objects").is_dir());
    });
}

#[test]
fn wrong_credentials_give_a_clear_error_and_list_nothing() {
    let server = S3Server::start();
    let mut bad = server.config("node-b");
    bad.credentials = Some(Credentials { access_key_id: "intruder".into(), secret_access_key: "guess".into() });
    remote::wrong_credentials(&bad, &server.config("node-b"), "AWS_ACCESS_KEY_ID", "guess");
}

#[test]
fn server_stopped_mid_upload_leaves_no_complete_backup_and_the_next_run_recovers() {
    let server = Arc::new(Mutex::new(S3Server::start()));
    let config = server.lock().unwrap().config("node-c");
    let stopped = server.clone();
    remote::outage_mid_upload(&config, move || stopped.lock().unwrap().stop(), || server.lock().unwrap().restart());
}

/// Multipart uploads that stop half way — a caller's timeout drops the upload's future, or a
/// part fails — are aborted at the server: no unfinished upload is left there (where it is
/// billed and never listed).
#[test]
fn an_abandoned_multipart_upload_is_aborted() {
    let server = S3Server::start();
    let mut config = server.config("node-d");
    config.part_size_bytes = 5 << 20;
    config.multipart_threshold_bytes = 5 << 20;
    config.parallel_uploads = 1;
    // s3s-fs keeps an upload as `.upload-<id>.json` and its parts as `.upload_id-<id>…`.
    let files = |prefix: &str| {
        std::fs::read_dir(server.root())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .count()
    };
    let unfinished = || files(".upload-");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let dest = storage_backup::Destination::open(&config).unwrap();
        let payload = bytes::Bytes::from(vec![7u8; 200 << 20]);
        let uploader = dest.clone();
        let upload = tokio::spawn(async move { uploader.put_object("big/object", payload).await });
        // Abandoned once the server receives a part: the client then knows the upload's id.
        // (Given up before the server's reply to the upload's creation, the client cannot name
        // the upload to abort it; that orphan is the bucket lifecycle rule's.)
        while files(".upload_id-") == 0 {
            assert!(!upload.is_finished(), "the upload finished before it could be abandoned");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        upload.abort();
        assert!(upload.await.unwrap_err().is_cancelled());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while unfinished() > 0 {
            assert!(std::time::Instant::now() < deadline, "{} unfinished upload(s) left at the server", unfinished());
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(dest.size("big/object").await.unwrap(), None, "nothing stored under the key");
    });
}
