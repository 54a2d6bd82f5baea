//! Opening a RocksDB directory whose files were damaged, then reading everything, errors
//! cleanly and never panics. The input is a list of edits to a populated template database:
//! 6 bytes each, `[file][op][offset u32 LE]`; `op < 0xf0` XORs one byte with `op | 1`,
//! otherwise the file is truncated at the offset.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use storage_api::testkit::{Items, Pairs, Records, suite_schema};
use storage_api::{Blob, Direction, Durability, KvFlush, KvWrite, ReadExt};
use storage_rocksdb::{RocksConfig, RocksStore};

fn config(dir: &Path) -> RocksConfig {
    RocksConfig { write_buffer_size: 1 << 20, block_cache_size: 1 << 20, ..RocksConfig::at(dir) }
}

fn template() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static T: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RocksStore::open(&config(dir.path()), suite_schema(1)).unwrap();
            for round in 0..3u32 {
                let mut b = s.batch();
                for i in 0..300u32 {
                    b.put::<Items>(&(round * 1000 + i), &Blob(vec![i as u8; 40])).unwrap();
                    b.put::<Pairs>(&(round as u16, i as u16), &Blob(vec![1; 8])).unwrap();
                    b.put::<Records>(&u64::from(i), &(u64::from(round), format!("r{i}"))).unwrap();
                }
                s.write(b, Durability::Synced).unwrap();
                s.flush().unwrap();
            }
            // Leave some data only in the log as well.
            s.put::<Items>(&99_999, &Blob(vec![7; 10]), Durability::Synced).unwrap();
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into())
            .filter(|p: &PathBuf| !p.to_string_lossy().starts_with("LOG"))
            .collect();
        files.sort();
        (dir, files)
    })
}

fuzz_target!(|data: &[u8]| {
    let (template, files) = template();
    let work = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::copy(template.path().join(f), work.path().join(f)).unwrap();
    }
    for edit in data.chunks_exact(6) {
        let file = work.path().join(&files[edit[0] as usize % files.len()]);
        let mut bytes = std::fs::read(&file).unwrap();
        if bytes.is_empty() {
            continue;
        }
        let at = u32::from_le_bytes([edit[2], edit[3], edit[4], edit[5]]) as usize % bytes.len();
        if edit[1] < 0xf0 {
            bytes[at] ^= edit[1] | 1;
        } else {
            bytes.truncate(at);
        }
        std::fs::write(&file, bytes).unwrap();
    }
    if let Ok(store) = RocksStore::open(&config(work.path()), suite_schema(1)) {
        for e in store.iter_all::<Items>(Direction::Forward).unwrap() {
            let _ = e;
        }
        for e in store.iter_all::<Pairs>(Direction::Reverse).unwrap() {
            let _ = e;
        }
        for e in store.iter_all::<Records>(Direction::Forward).unwrap() {
            let _ = e;
        }
        let _ = store.get::<Items>(&99_999);
    }
});
