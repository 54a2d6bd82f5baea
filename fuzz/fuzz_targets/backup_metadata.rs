//! Backup metadata from a hostile destination: parsing a completion marker and checking a
//! manifest never panics, and a manifest that passes the checks keeps their promises (safe
//! relative paths, objects under `objects/`, an archive inside the backup, totals that match
//! the file list). The input is split at its first NUL: marker bytes, then manifest bytes (the
//! marker is re-sealed with the manifest's hash half the time, so the manifest checks run).
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_backup::{Completion, Location, Manifest, Totals};

const ID: &str = "20261122T000000Z-physical-beef";

fuzz_target!(|data: &[u8]| {
    let (marker, manifest) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let parsed: Option<Completion> = serde_json::from_slice(marker).ok();
    let sealed = Completion { manifest_blake3: blake3::hash(manifest).to_hex().to_string(), completed_at_ms: 0 };
    let completion = match parsed {
        Some(c) if marker.len() % 2 == 1 => c,
        _ => sealed,
    };
    let Ok(m) = Manifest::from_bytes(ID, manifest, &completion) else { return };
    assert_eq!(m.id, ID);
    for f in &m.files {
        assert!(!f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".." || c.is_empty()), "{}", f.path);
        if let Location::Object { key, .. } = &f.location {
            assert!(key.starts_with("objects/") && !key.split('/').any(|c| c == ".."), "{key}");
        }
    }
    if let Some(a) = &m.archive {
        assert!(a.key.starts_with(&format!("backups/{ID}/")), "{}", a.key);
    }
    let (files, raw, stored) = Totals::derived(&m.files, m.archive.as_ref());
    assert_eq!((m.totals.files, m.totals.raw_bytes, m.totals.stored_bytes), (files, raw, stored));
});
