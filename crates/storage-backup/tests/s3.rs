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
