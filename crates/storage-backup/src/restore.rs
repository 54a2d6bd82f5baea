//! Verifying and restoring. Every stored object is downloaded to a temporary file, its stored
//! size and BLAKE3 checked against the manifest, then decompressed under a cap with the
//! contents' size and BLAKE3 checked again. Restores write only into a fresh staging directory;
//! [`swap_in`] replaces the target with it atomically once the caller has opened and checked it.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::FutureExt;
use storage_api::KvStore;
use tracing::info;

use crate::archive::{self, Capped, Hashing};
use crate::error::{BackupError, IntegrityError};
use crate::logical;
use crate::manifest::{FileRecord, Location, Manifest};
use crate::{BackupKind, Backups, Compression, Progress};

/// Where the data replaced by a restore went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredFrom {
    /// The backup restored.
    pub backup: String,
    /// The previous contents of the target, kept for the operator (`None` if there were none).
    pub previous: Option<PathBuf>,
}

impl Backups {
    /// Checks every byte of backup `manifest` against it, writing nothing.
    pub async fn verify<P: Progress + 'static>(
        &self,
        manifest: &Manifest,
        scratch: &Path,
        progress: Arc<P>,
    ) -> Result<(), BackupError> {
        self.fetch(manifest, scratch, None, progress).await
    }

    /// Downloads, verifies and extracts physical backup `manifest` into `staging` (which must
    /// be an empty directory), using `scratch` for downloads.
    pub async fn extract<P: Progress + 'static>(
        &self,
        manifest: &Manifest,
        scratch: &Path,
        staging: &Path,
        progress: Arc<P>,
    ) -> Result<(), BackupError> {
        if manifest.kind != BackupKind::Physical {
            return Err(BackupError::Invalid(format!(
                "backup {} is logical: load it into stores instead",
                manifest.id
            )));
        }
        self.fetch(manifest, scratch, Some(staging), progress).await
    }

    /// Downloads and verifies the archive of logical backup `manifest`, then loads every table
    /// into the stores `stores` names (by store name), each chunk through `load`, and checks
    /// each table's count and digest. The stores should be new and empty; the caller flushes
    /// them.
    pub async fn load_logical<S: KvStore + 'static, P: Progress + 'static>(
        &self,
        manifest: &Manifest,
        scratch: &Path,
        stores: Vec<(String, Arc<S>)>,
        load: logical::ChunkLoader<S>,
        progress: Arc<P>,
    ) -> Result<(), BackupError> {
        if manifest.archive.is_none() {
            return Err(BackupError::Invalid(format!("backup {} has no archive to load", manifest.id)));
        }
        progress.phase("loading", manifest.totals.raw_bytes);
        let targets = stores.clone();
        self.read_stored_archive(manifest, scratch, move |entry, reader| {
            let (store, table) = logical::chunk_target(&entry.path)
                .ok_or_else(|| BackupError::Invalid(format!("`{}` is not a logical chunk", entry.path)))?;
            let (_, target) = targets.iter().find(|(name, _)| name == store).ok_or_else(|| {
                BackupError::Invalid(format!("backup holds store `{store}`, which this node does not have"))
            })?;
            if !target.schema().tables().iter().any(|t| t.name == table) {
                return Err(BackupError::Invalid(format!(
                    "backup holds table `{store}/{table}`, which this schema does not have"
                )));
            }
            load(store, &**target, table, reader)?;
            progress.advance(entry.size);
            Ok(())
        })
        .await?;
        let records = manifest.stores.clone();
        tokio::task::spawn_blocking(move || {
            for record in &records {
                let (_, target) = stores
                    .iter()
                    .find(|(name, _)| *name == record.name)
                    .ok_or_else(|| BackupError::Invalid(format!("no target store `{}`", record.name)))?;
                logical::verify_store(record, &**target)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| BackupError::Invalid(format!("restore worker failed: {e}")))?
    }

    /// Fetches every object and the archive; with `staging`, writes the files there.
    async fn fetch<P: Progress + 'static>(
        &self,
        manifest: &Manifest,
        scratch: &Path,
        staging: Option<&Path>,
        progress: Arc<P>,
    ) -> Result<(), BackupError> {
        progress.phase(if staging.is_some() { "restoring" } else { "verifying" }, manifest.totals.raw_bytes);
        // Owned items: borrowed ones make the future fail rustc's Send analysis when spawned.
        let objects: Vec<FileRecord> =
            manifest.files.iter().filter(|f| matches!(f.location, Location::Object { .. })).cloned().collect();
        crate::run_limited(
            objects
                .into_iter()
                .map(|f| {
                    let progress = progress.clone();
                    async move { self.fetch_object(&f, scratch, staging, progress).await }.boxed()
                })
                .collect(),
            self.dest.parallel(),
        )
        .await?;
        let staging = staging.map(Path::to_owned);
        self.read_stored_archive(manifest, scratch, move |entry, reader| {
            match &staging {
                Some(dir) => {
                    let out = create_in(dir, &entry.path)?;
                    archive::drain(reader, std::io::BufWriter::new(out), &dir.join(&entry.path))?;
                }
                None => archive::drain(reader, std::io::sink(), Path::new(&entry.path))?,
            }
            progress.advance(entry.size);
            Ok(())
        })
        .await?;
        info!(backup = %manifest.id, files = manifest.totals.files, "backup verified");
        Ok(())
    }

    /// Downloads and verifies `manifest`'s archive, then passes every entry through the
    /// validating reader to `sink` on a worker thread (verify, extract and logical loads all
    /// read archives this way). Without an archive, no file may claim to be in one.
    async fn read_stored_archive(
        &self,
        manifest: &Manifest,
        scratch: &Path,
        sink: impl FnMut(&FileRecord, &mut dyn Read) -> Result<(), BackupError> + Send + 'static,
    ) -> Result<(), BackupError> {
        let Some(record) = manifest.archive.clone() else {
            if manifest.archived().next().is_some() {
                return Err(IntegrityError::Manifest {
                    backup: manifest.id.clone(),
                    message: "files are listed in an archive the manifest does not name".into(),
                }
                .into());
            }
            return Ok(());
        };
        let file = self.download_verified(&record.key, record.stored_size, &record.stored_blake3, scratch).await?;
        let manifest = manifest.clone();
        tokio::task::spawn_blocking(move || {
            let expected: Vec<&FileRecord> = manifest.archived().collect();
            let result = std::fs::File::open(&file)
                .map_err(BackupError::io("opening", &file))
                .and_then(|input| archive::read_archive(&record.key, input, record.compression, &expected, sink));
            let _ = std::fs::remove_file(&file);
            result
        })
        .await
        .map_err(|e| BackupError::Invalid(format!("restore worker failed: {e}")))?
    }

    async fn fetch_object<P: Progress + 'static>(
        &self,
        file: &FileRecord,
        scratch: &Path,
        staging: Option<&Path>,
        progress: Arc<P>,
    ) -> Result<(), BackupError> {
        let Location::Object { key, compression, stored_size, stored_blake3 } = &file.location else {
            return Ok(());
        };
        let tmp = self.download_verified(key, *stored_size, stored_blake3, scratch).await?;
        let (record, compression, staging) = (file.clone(), *compression, staging.map(Path::to_owned));
        tokio::task::spawn_blocking(move || {
            let result = decompress_checked(&tmp, compression, &record, staging.as_deref());
            let _ = std::fs::remove_file(&tmp);
            progress.advance(record.size);
            result
        })
        .await
        .map_err(|e| BackupError::Invalid(format!("restore worker failed: {e}")))?
    }

    /// Downloads `key` into `scratch` and checks its stored size and BLAKE3; on mismatch the
    /// download is deleted and nothing else happens.
    async fn download_verified(
        &self,
        key: &str,
        size: u64,
        blake3: &str,
        scratch: &Path,
    ) -> Result<PathBuf, BackupError> {
        std::fs::create_dir_all(scratch).map_err(BackupError::io("creating", scratch))?;
        let tmp = scratch.join(format!("{}.part", key.replace('/', "_")));
        let _ = std::fs::remove_file(&tmp);
        let stored = self.dest.get_to_file(key, &tmp).await;
        let check = stored.and_then(|s| {
            if s.size != size {
                return Err(IntegrityError::Size { path: key.to_owned(), expected: size, found: s.size }.into());
            }
            let found = s.hash.to_hex().to_string();
            if found != blake3 {
                return Err(IntegrityError::Hash { path: key.to_owned(), expected: blake3.to_owned(), found }.into());
            }
            Ok(())
        });
        match check {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

/// Decompresses a verified object, capped at the manifest's size, checking the contents.
fn decompress_checked(
    stored: &Path,
    compression: Compression,
    record: &FileRecord,
    staging: Option<&Path>,
) -> Result<(), BackupError> {
    let input = std::fs::File::open(stored).map_err(BackupError::io("opening", stored))?;
    let raw = archive::decoder(BufReader::with_capacity(1 << 20, input), compression)
        .map_err(BackupError::io("decompressing", stored))?;
    let mut reader = Hashing::new(Capped::new(raw, record.size));
    let over = |e: std::io::Error| -> BackupError {
        IntegrityError::Archive { archive: record.path.clone(), reason: e.to_string() }.into()
    };
    match staging {
        Some(dir) => {
            let mut out = std::io::BufWriter::new(create_in(dir, &record.path)?);
            std::io::copy(&mut reader, &mut out).map_err(over)?;
            std::io::Write::flush(&mut out).map_err(BackupError::io("writing", dir.join(&record.path)))?;
        }
        None => {
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(over)?;
        }
    }
    // A stream that ends early is short; one that goes on is caught by the cap above.
    let mut extra = [0u8; 1];
    if reader.inner.read(&mut extra).map_err(over)? != 0 {
        return Err(
            IntegrityError::Size { path: record.path.clone(), expected: record.size, found: record.size + 1 }.into()
        );
    }
    if reader.count != record.size {
        return Err(
            IntegrityError::Size { path: record.path.clone(), expected: record.size, found: reader.count }.into()
        );
    }
    let found = reader.hasher.finalize().to_hex().to_string();
    if found != record.blake3 {
        return Err(IntegrityError::Hash { path: record.path.clone(), expected: record.blake3.clone(), found }.into());
    }
    Ok(())
}

/// Creates the new file `rel` (a checked relative path) under `dir`, with its parents.
fn create_in(dir: &Path, rel: &str) -> Result<std::fs::File, BackupError> {
    crate::manifest::check_path(rel).map_err(|reason| BackupError::Invalid(format!("`{rel}`: {reason}")))?;
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(BackupError::io("creating", parent))?;
    }
    std::fs::File::create_new(&path).map_err(BackupError::io("creating", &path))
}

/// Replaces `target` with `staging` atomically (Linux `renameat2(RENAME_EXCHANGE)`): at every
/// instant `target` is either the old data or the restored data. The old data is kept next to
/// it as `<target>.pre-restore-<backup>` and its path returned.
///
/// Durable: every file and directory of `staging` is synced before the swap, and the parent
/// directory after it, so a power cut never leaves `target` naming data that is not on disk.
pub fn swap_in(staging: &Path, target: &Path, backup: &str) -> Result<RestoredFrom, BackupError> {
    storage_api::durable::sync_tree(staging).map_err(BackupError::io("syncing", staging))?;
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let sync_parent = || storage_api::durable::sync_dir(&parent).map_err(BackupError::io("syncing", &parent));
    if !target.exists() {
        storage_api::durable::create_dir_all(&parent).map_err(BackupError::io("creating", &parent))?;
        std::fs::rename(staging, target).map_err(BackupError::io("moving restored data to", target))?;
        sync_parent()?;
        return Ok(RestoredFrom { backup: backup.to_owned(), previous: None });
    }
    rustix::fs::renameat_with(rustix::fs::CWD, staging, rustix::fs::CWD, target, rustix::fs::RenameFlags::EXCHANGE)
        .map_err(|e| BackupError::Io {
            action: "swapping restored data into",
            path: target.to_owned(),
            source: std::io::Error::from_raw_os_error(e.raw_os_error()),
        })?;
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    let mut kept = target.with_file_name(format!("{name}.pre-restore-{backup}"));
    if kept.exists() {
        // Restored from the same backup before: never overwrite what that restore kept.
        kept = target.with_file_name(format!("{name}.pre-restore-{backup}-{}", crate::now_ms()));
    }
    std::fs::rename(staging, &kept).map_err(BackupError::io("keeping previous data at", &kept))?;
    sync_parent()?;
    Ok(RestoredFrom { backup: backup.to_owned(), previous: Some(kept) })
}
