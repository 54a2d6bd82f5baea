//! Hostile backups: every crafted archive or object is rejected with an error naming the
//! entry, nothing is written outside the staging directory, and verification (which uses the
//! same reader) fails the same way. The attacker here controls the whole backup, manifest and
//! marker included, so these checks do not rely on the hashes alone.

mod support;

use std::io::Write;
use std::path::Path;

use storage_backup::{
    ArchiveRecord, BackupConfig, BackupError, BackupKind, Backups, Completion, Compression, FileRecord, Location,
    Manifest, Totals,
};
use support::*;
use tar::EntryType;

const ID: &str = "20261122T000000Z-physical-beef";

fn file(path: &str, data: &[u8]) -> FileRecord {
    FileRecord {
        path: path.into(),
        size: data.len() as u64,
        blake3: blake3::hash(data).to_hex().to_string(),
        modified_ns: None,
        location: Location::Archive,
    }
}

/// Appends an entry with a raw name (no validation, as an attacker's tool would).
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// Writes a complete backup with `stored` as its archive and `files` as its manifest.
fn plant(dest: &Path, stored: &[u8], files: Vec<FileRecord>) {
    let dir = dest.join(format!("backups/{ID}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("archive.tar.zst"), stored).unwrap();
    let archive = ArchiveRecord {
        key: format!("backups/{ID}/archive.tar.zst"),
        compression: Compression::Zstd,
        stored_size: stored.len() as u64,
        stored_blake3: blake3::hash(stored).to_hex().to_string(),
    };
    let (count, raw_bytes, stored_bytes) = Totals::derived(&files, Some(&archive));
    let manifest = Manifest {
        format: 1,
        id: ID.into(),
        created_at_ms: 1,
        created_at: String::new(),
        kind: BackupKind::Physical,
        stores: vec![chain_record()],
        totals: Totals { files: count, raw_bytes, stored_bytes, ..Totals::default() },
        files,
        archive: Some(archive),
    };
    let bytes = manifest.to_bytes();
    let marker = Completion { manifest_blake3: blake3::hash(&bytes).to_hex().to_string(), completed_at_ms: 2 };
    std::fs::write(dir.join("manifest.json"), bytes).unwrap();
    std::fs::write(dir.join("COMPLETE"), serde_json::to_vec(&marker).unwrap()).unwrap();
}

fn zstd(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).unwrap()
}

/// Plants the backup, then checks that verify and restore both fail with `expect` in the
/// message, and that nothing escaped the staging directory.
fn assert_rejected(stored: &[u8], files: Vec<FileRecord>, expect: &str) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    plant(&dest, stored, files);
    let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
    let m = rt.block_on(backups.load_manifest(ID)).unwrap();
    let scratch = work.path().join("scratch");
    let staging = work.path().join("stage/inner");
    std::fs::create_dir_all(&staging).unwrap();
    let verify = rt.block_on(backups.verify(&m, &scratch, quiet())).unwrap_err();
    assert!(verify.to_string().contains(expect), "verify: expected `{expect}` in: {verify}");
    let restore = rt.block_on(backups.extract(&m, &scratch, &staging, quiet())).unwrap_err();
    assert!(restore.to_string().contains(expect), "restore: expected `{expect}` in: {restore}");
    assert!(matches!(restore, BackupError::Integrity(_)), "{restore:?}");
    // Nothing outside staging: the work dir holds only what the test made.
    let mut outside: Vec<_> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    outside.sort();
    assert_eq!(outside, vec!["dest", "scratch", "stage"]);
    let stage: Vec<_> = std::fs::read_dir(work.path().join("stage")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(stage, vec!["inner"]);
    assert!(!Path::new("/tmp/escaped-by-node-storage-test").exists());
}

fn good() -> (Vec<u8>, FileRecord) {
    let data = b"current manifest".to_vec();
    (data.clone(), file("chain/CURRENT", &data))
}

#[test]
fn a_well_formed_planted_backup_restores() {
    // The harness itself: a correct archive passes, so the rejections below are meaningful.
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    plant(&work.path().join("dest"), &zstd(&b.into_inner().unwrap()), vec![record]);
    let backups = Backups::open(&BackupConfig::local(work.path().join("dest"))).unwrap();
    let m = rt.block_on(backups.load_manifest(ID)).unwrap();
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap();
    assert_eq!(std::fs::read(staging.join("chain/CURRENT")).unwrap(), data);
}

#[test]
fn absolute_paths_are_rejected() {
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"/tmp/escaped-by-node-storage-test", EntryType::Regular, b"", b"x");
    let listed = FileRecord { path: "tmp/escaped-by-node-storage-test".into(), ..file("x", b"x") };
    assert_rejected(
        &zstd(&b.into_inner().unwrap()),
        vec![listed],
        "entry `/tmp/escaped-by-node-storage-test` rejected",
    );
}

#[test]
fn parent_components_are_rejected() {
    for name in ["../escaped", "chain/../../escaped"] {
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, name.as_bytes(), EntryType::Regular, b"", b"x");
        assert_rejected(
            &zstd(&b.into_inner().unwrap()),
            vec![file("chain/x", b"x")],
            &format!("`{name}` rejected: `..`"),
        );
    }
}

#[test]
fn symlinks_and_hard_links_are_rejected() {
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/link", EntryType::Symlink, b"/etc", b"");
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![file("chain/link", b"")], "symbolic link to `/etc`");
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/hard", EntryType::Link, b"../../etc/passwd", b"");
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![file("chain/hard", b"")], "hard link to `../../etc/passwd`");
}

#[test]
fn devices_and_fifos_are_rejected() {
    for (kind, what) in
        [(EntryType::Char, "character device"), (EntryType::Block, "block device"), (EntryType::Fifo, "FIFO")]
    {
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, b"chain/dev", kind, b"", b"");
        assert_rejected(
            &zstd(&b.into_inner().unwrap()),
            vec![file("chain/dev", b"")],
            &format!("`chain/dev` rejected: {what}"),
        );
    }
}

#[test]
fn unlisted_and_duplicate_entries_are_rejected() {
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    raw(&mut b, b"chain/EXTRA", EntryType::Regular, b"", b"smuggled");
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![record.clone()], "`chain/EXTRA` rejected: not listed");
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![record], "`chain/CURRENT` rejected: not listed");
}

#[test]
fn entries_larger_than_the_manifest_are_rejected() {
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &vec![b'a'; 5000]);
    let record = file("chain/CURRENT", b"0123456789");
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![record], "declares 5000 bytes, more than the 10");
}

#[test]
fn missing_and_altered_entries_are_rejected() {
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    let other = file("chain/OPTIONS", b"opts");
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![record.clone(), other], "missing, first `chain/OPTIONS`");
    let mut b = tar::Builder::new(Vec::new());
    let mut altered = data.clone();
    altered[0] ^= 1;
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &altered);
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![record], "`chain/CURRENT`: BLAKE3");
}

#[test]
fn truncated_and_tampered_archives_are_rejected() {
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    raw(&mut b, b"chain/BIG", EntryType::Regular, b"", &vec![9u8; 100_000]);
    let full = zstd(&b.into_inner().unwrap());
    let big = file("chain/BIG", &vec![9u8; 100_000]);
    // Truncated, with a manifest that matches the truncated bytes (a broken writer).
    assert_rejected(&full[..full.len() / 2], vec![record.clone(), big.clone()], "is malformed");

    // Tampered after the manifest was written: the stored hash catches it before any parsing.
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    plant(&dest, &full, vec![record, big]);
    let archive = dest.join(format!("backups/{ID}/archive.tar.zst"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
    let m = rt.block_on(backups.load_manifest(ID)).unwrap();
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let err = rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap_err();
    assert!(err.to_string().contains("archive.tar.zst`: BLAKE3"), "{err}");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "nothing extracted");
}

#[test]
fn decompression_bombs_are_capped() {
    // A GNU long-name entry declaring 512 MiB of name: a few kB compressed. The reader stops
    // at the manifest's cap instead of inflating it.
    let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(EntryType::GNULongName);
    h.set_size(512 << 20);
    h.set_cksum();
    enc.write_all(h.as_bytes()).unwrap();
    let zeros = vec![b'a'; 1 << 20];
    for _ in 0..512 {
        enc.write_all(&zeros).unwrap();
    }
    let stored = enc.finish().unwrap();
    assert!(stored.len() < 1 << 20);
    let (_, record) = good();
    assert_rejected(&stored, vec![record], "exceeds what the manifest allows");
}

#[test]
fn object_bombs_and_swapped_objects_are_rejected() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    let src = work.path().join("ckpt");
    fake_checkpoint(&src, 9, 1, 10_000);
    let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let (key, sst) = m
        .files
        .iter()
        .find_map(|f| match &f.location {
            Location::Object { key, .. } => Some((key.clone(), f.clone())),
            _ => None,
        })
        .unwrap();
    // Replace the object with 64 MiB of zeros and re-sign the manifest, as an attacker would.
    let bomb = zstd::encode_all(std::io::Read::take(std::io::repeat(0), 64 << 20), 3).unwrap();
    std::fs::write(dest.join(&key), &bomb).unwrap();
    let mut forged = m.clone();
    for f in &mut forged.files {
        if f.path == sst.path
            && let Location::Object { stored_size, stored_blake3, .. } = &mut f.location
        {
            *stored_size = bomb.len() as u64;
            *stored_blake3 = blake3::hash(&bomb).to_hex().to_string();
        }
    }
    // A careful attacker keeps the totals consistent too.
    let (files, raw_bytes, stored_bytes) = Totals::derived(&forged.files, forged.archive.as_ref());
    forged.totals = Totals { files, raw_bytes, stored_bytes, ..forged.totals };
    let bytes = forged.to_bytes();
    let marker = Completion { manifest_blake3: blake3::hash(&bytes).to_hex().to_string(), completed_at_ms: 2 };
    std::fs::write(dest.join(format!("backups/{}/manifest.json", m.id)), bytes).unwrap();
    std::fs::write(dest.join(format!("backups/{}/COMPLETE", m.id)), serde_json::to_vec(&marker).unwrap()).unwrap();
    let m = rt.block_on(backups.load_manifest(&m.id)).unwrap();
    let staging = work.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let err = rt.block_on(backups.extract(&m, &work.path().join("scratch"), &staging, quiet())).unwrap_err();
    assert!(err.to_string().contains("exceeds what the manifest allows"), "{err}");
}

#[test]
fn manifests_pointing_outside_the_backup_are_refused() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    plant(&dest, &zstd(&b.into_inner().unwrap()), vec![record]);
    let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
    let mut m = rt.block_on(backups.load_manifest(ID)).unwrap();
    for (key, object) in
        [("../../etc/passwd", false), ("backups/other/archive.tar.zst", false), ("objects/../../x", true)]
    {
        if object {
            m.archive.as_mut().unwrap().key = format!("backups/{ID}/archive.tar.zst");
            m.files[0].location = Location::Object {
                key: key.into(),
                compression: Compression::Zstd,
                stored_size: 1,
                stored_blake3: String::new(),
            };
        } else {
            m.archive.as_mut().unwrap().key = key.into();
        }
        let bytes = m.to_bytes();
        let marker = Completion { manifest_blake3: blake3::hash(&bytes).to_hex().to_string(), completed_at_ms: 2 };
        std::fs::write(dest.join(format!("backups/{ID}/manifest.json")), bytes).unwrap();
        std::fs::write(dest.join(format!("backups/{ID}/COMPLETE")), serde_json::to_vec(&marker).unwrap()).unwrap();
        let err = rt.block_on(backups.load_manifest(ID)).unwrap_err();
        assert!(err.to_string().contains("points outside"), "{key}: {err}");
    }
}

/// Re-seals the manifest of the planted backup after `edit`, as an attacker with write access
/// to the destination would.
fn reseal(dest: &Path, edit: impl FnOnce(&mut Manifest)) {
    let dir = dest.join(format!("backups/{ID}"));
    let mut m: Manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    edit(&mut m);
    let bytes = m.to_bytes();
    let marker = Completion { manifest_blake3: blake3::hash(&bytes).to_hex().to_string(), completed_at_ms: 2 };
    std::fs::write(dir.join("manifest.json"), bytes).unwrap();
    std::fs::write(dir.join("COMPLETE"), serde_json::to_vec(&marker).unwrap()).unwrap();
}

fn planted_good(dest: &Path) {
    let (data, record) = good();
    let mut b = tar::Builder::new(Vec::new());
    raw(&mut b, b"chain/CURRENT", EntryType::Regular, b"", &data);
    plant(dest, &zstd(&b.into_inner().unwrap()), vec![record]);
}

#[test]
fn totals_that_disagree_with_the_file_list_are_refused() {
    let rt = runtime();
    for edit in [
        (|m: &mut Manifest| m.totals.raw_bytes += 1) as fn(&mut Manifest),
        |m| m.totals.files = 7,
        |m| m.totals.stored_bytes = 1 << 40,
        |m| m.totals.reused_files = 99,
    ] {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("dest");
        planted_good(&dest);
        reseal(&dest, edit);
        let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
        let err = rt.block_on(backups.load_manifest(ID)).unwrap_err();
        assert!(err.to_string().contains("disagree with the file list"), "{err}");
    }
}

/// Oversized markers and manifests are refused by size, before they are read into memory.
#[test]
fn oversized_metadata_is_refused_unread() {
    let rt = runtime();
    for (name, size, limit) in [
        ("COMPLETE", 1u64 << 30, storage_backup::MAX_MARKER_BYTES),
        ("manifest.json", storage_backup::MAX_MANIFEST_BYTES + 1, storage_backup::MAX_MANIFEST_BYTES),
    ] {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("dest");
        planted_good(&dest);
        // Sparse: the size is declared without writing the bytes.
        std::fs::File::options()
            .write(true)
            .open(dest.join(format!("backups/{ID}/{name}")))
            .unwrap()
            .set_len(size)
            .unwrap();
        let backups = Backups::open(&BackupConfig::local(&dest)).unwrap();
        let err = rt.block_on(backups.load_manifest(ID)).unwrap_err();
        assert!(err.to_string().contains(&format!("over the {limit}-byte limit")), "{name} of {size} bytes: {err}");
        // Listing (which reads every complete backup's manifest) fails the same way.
        assert!(rt.block_on(backups.list()).is_err());
    }
}

/// A GNU sparse entry whose header the tar reader cannot parse is rejected by its name.
#[test]
fn unparsable_sparse_entries_are_named() {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..12].copy_from_slice(b"chain/SPARSE");
    h.set_entry_type(EntryType::GNUSparse);
    h.set_size(0);
    h.as_gnu_mut().unwrap().realsize = *b"not a number";
    h.set_cksum();
    b.append(&h, &b""[..]).unwrap();
    assert_rejected(&zstd(&b.into_inner().unwrap()), vec![file("chain/SPARSE", b"")], "entry `chain/SPARSE` rejected");
}
