//! Backups against Azure Blob's emulator (Azurite on loopback, SharedKey signatures checked):
//! round trip with block uploads, wrong credentials, and an outage in the middle of an upload —
//! the cases `s3.rs` runs on S3. Each test prints SKIPPED where Azurite is not installed.

mod support;

use std::sync::{Arc, Mutex};

use storage_backup::Credentials;
use storage_backup::testkit::{AZURITE_ACCOUNT, AzuriteServer};
use support::remote;

#[test]
fn round_trip_through_azurite_with_block_uploads() {
    let Some(server) = AzuriteServer::start_or_skip("round_trip_through_azurite_with_block_uploads") else { return };
    remote::round_trip(&server.config("node-a"), |rt, backups| {
        let objects = rt.block_on(backups.destination().list("objects")).unwrap();
        assert!(objects.len() >= 2, "the two SSTs as objects: {objects:?}");
    });
}

#[test]
fn wrong_credentials_give_a_clear_error_and_list_nothing() {
    let Some(server) = AzuriteServer::start_or_skip("wrong_credentials_give_a_clear_error_and_list_nothing") else {
        return;
    };
    let mut bad = server.config("node-b");
    // A well-formed key of the right account, but not its key.
    let guess = "Z3Vlc3Mtbm90LXRoZS1rZXktb2YtdGhpcy1hY2NvdW50LWd1ZXNzLWd1ZXNzLWd1ZXNzLWd1ZXNzIQ==";
    bad.credentials = Some(Credentials { access_key_id: AZURITE_ACCOUNT.into(), secret_access_key: guess.into() });
    let err = remote::wrong_credentials(&bad, &server.config("node-b"), "AZURE_STORAGE_ACCOUNT_KEY", guess);
    assert!(!format!("{err:?}").contains(guess), "nor in Debug: {err:?}");
}

#[test]
fn server_stopped_mid_upload_leaves_no_complete_backup_and_the_next_run_recovers() {
    let Some(server) =
        AzuriteServer::start_or_skip("server_stopped_mid_upload_leaves_no_complete_backup_and_the_next_run_recovers")
    else {
        return;
    };
    let config = server.config("node-c");
    let server = Arc::new(Mutex::new(server));
    let stopped = server.clone();
    remote::outage_mid_upload(&config, move || stopped.lock().unwrap().stop(), || server.lock().unwrap().restart());
}
