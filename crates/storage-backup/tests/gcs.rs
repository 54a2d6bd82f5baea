//! Backups' GCS path against gcp-storage-emulator (PyPI; the one GCS emulator installable on
//! machines of this kind — fake-gcs-server needs GitHub or the Go module proxy) on loopback.
//!
//! What runs: `gs://` with an `endpoint` reaches the emulator through object_store's GCS client
//! without OAuth, and the upload lands byte for byte in the right bucket under the right key
//! (read back through the emulator's own JSON API). What cannot: the emulator answers the XML
//! API's upload without an ETag, which object_store requires, and serves no XML listing, HEAD,
//! DELETE or multipart upload — so no backup completes on it. The test pins that (with the
//! error an operator would see), so a change on either side is noticed. SKIPPED where the
//! emulator is not installed.

use std::io::{Read, Write};

use storage_backup::Backups;
use storage_backup::testkit::{GCS_BUCKET, GcsEmulator};

/// `GET path` on the emulator over plain HTTP/1.0: (status, body).
fn http_get(endpoint: &str, path: &str) -> (u16, Vec<u8>) {
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status");
    (status, raw[split + 4..].to_vec())
}

#[test]
fn the_gcs_client_reaches_the_emulator_and_its_gaps_are_clear_errors() {
    let Some(server) = GcsEmulator::start_or_skip("the_gcs_client_reaches_the_emulator_and_its_gaps_are_clear_errors")
    else {
        return;
    };
    let backups = Backups::open(&server.config("node-a")).unwrap();
    let dest = backups.destination();
    assert!(dest.describe().contains(&server.endpoint()), "{}", dest.describe());
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let put = rt.block_on(dest.put_bytes("objects/probe", payload.clone()));
    // The object arrived, byte for byte, under the destination's prefix.
    let (status, body) = http_get(
        &server.endpoint(),
        &format!("/download/storage/v1/b/{GCS_BUCKET}/o/node-a%2Fobjects%2Fprobe?alt=media"),
    );
    assert_eq!(status, 200);
    assert!(body == payload, "the stored object differs ({} bytes)", body.len());
    // ...but the emulator's answer has no ETag, which the client needs: a clear error naming
    // the destination, its endpoint and the key.
    let err = put.expect_err("this emulator answers an upload without an ETag").to_string();
    for part in ["gs://", &server.endpoint(), "objects/probe", "writing"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    // Listing (backup list, select, prune) is not served either.
    let listed = rt.block_on(backups.list()).unwrap_err().to_string();
    assert!(listed.contains("gs://") && listed.contains("listing"), "{listed}");
}
