//! Creating backups: physical (a checkpoint directory's files) and logical (table dumps).
//!
//! Order of writes: objects, then the archive, then the manifest, then the completion marker.
//! A failure anywhere leaves no marker, so the backup never lists as complete; the next run
//! removes its leftovers and reuses any objects it had uploaded (they are content-addressed).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tracing::info;

use crate::archive::{self, Encoder};
use crate::error::BackupError;
use crate::logical::LogicalWriter;
use crate::manifest::{
    ArchiveRecord, Completion, FileRecord, Location, MANIFEST_FORMAT, Manifest, StoreRecord, Totals, manifest_key,
    marker_key, object_key,
};
use crate::{BackupKind, Backups, Progress, new_id, now_ms, rfc3339};

/// Files at least this large are stored as shared objects even when mutable.
const OBJECT_MIN_BYTES: u64 = 4 << 20;

/// A file of the checkpoint being backed up.
#[derive(Debug, Clone)]
struct SourceFile {
    rel: String,
    abs: PathBuf,
    size: u64,
    /// Modification time, ns since the epoch.
    modified_ns: u64,
    /// Immutable by the engine's contract (SST and blob files): its hash may be reused by name.
    immutable: bool,
}

/// A file planned as a shared object.
struct Planned {
    file: SourceFile,
    hash: String,
    location: Option<Location>,
}

impl Backups {
    /// Backs up the checkpoint directory `root` (laid out like the data directory) holding the
    /// stores described by `stores`.
    pub async fn create_physical<P: Progress + 'static>(
        &self,
        root: &Path,
        stores: Vec<StoreRecord>,
        progress: Arc<P>,
    ) -> Result<Manifest, BackupError> {
        let started = Instant::now();
        let created_at_ms = now_ms();
        let id = new_id(BackupKind::Physical, created_at_ms);
        // One listing serves both the clean-up and the search for the previous backup.
        let all = self.list().await?;
        self.remove_incomplete(&all, Duration::from_secs(self.config.gc_grace_secs), false).await?;
        let previous = all.into_iter().filter_map(|b| b.manifest).rev().find(|m| m.kind == BackupKind::Physical);
        let existing: HashSet<String> = self.dest.list("objects").await?.into_iter().map(|l| l.key).collect();

        let walk_root = root.to_owned();
        let files = tokio::task::spawn_blocking(move || walk(&walk_root))
            .await
            .map_err(|e| BackupError::Invalid(format!("backup worker failed: {e}")))??;

        // What earlier backups already hold: hash by content, and hash by (identity, name, size).
        let mut by_hash: HashMap<String, Location> = HashMap::new();
        let mut by_name: HashMap<(String, String, u64, u64), String> = HashMap::new();
        if let Some(prev) = &previous {
            for f in &prev.files {
                if let Location::Object { key, .. } = &f.location
                    && existing.contains(key)
                {
                    by_hash.insert(f.blake3.clone(), f.location.clone());
                    if let (Some(identity), Some(modified)) = (identity_of(&prev.stores, &f.path), f.modified_ns) {
                        by_name.insert((identity, f.path.clone(), f.size, modified), f.blake3.clone());
                    }
                }
            }
        }

        // Plan: hash what is not known by name, then decide upload or reuse.
        let (mut to_archive, mut planned, mut to_hash) = (Vec::new(), Vec::new(), Vec::new());
        for file in files {
            if !file.immutable && file.size < OBJECT_MIN_BYTES {
                to_archive.push(file);
                continue;
            }
            let known = identity_of(&stores, &file.rel)
                .filter(|_| file.immutable)
                .and_then(|identity| by_name.get(&(identity, file.rel.clone(), file.size, file.modified_ns)).cloned());
            match known {
                Some(hash) => planned.push(Planned { location: by_hash.get(&hash).cloned(), file, hash }),
                None => to_hash.push(file),
            }
        }
        progress.phase("hashing", to_hash.iter().map(|f| f.size).sum());
        let hasher_progress = progress.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            to_hash
                .into_iter()
                .map(|file| {
                    let hash = hash_file(&file.abs, &*hasher_progress)?;
                    Ok((file, hash))
                })
                .collect::<Result<Vec<_>, BackupError>>()
        })
        .await
        .map_err(|e| BackupError::Invalid(format!("backup worker failed: {e}")))??;
        for (file, hash) in hashed {
            planned.push(Planned { location: by_hash.get(&hash).cloned(), file, hash });
        }

        // Upload new objects, a few at a time.
        // Owned items: borrowed ones make the future fail rustc's Send analysis when spawned.
        let uploads: Vec<(SourceFile, String)> =
            planned.iter().filter(|p| p.location.is_none()).map(|p| (p.file.clone(), p.hash.clone())).collect();
        progress.phase("uploading", uploads.iter().map(|(f, _)| f.size).sum());
        let mut uploaded_bytes = 0u64;
        let results: Vec<(String, Location)> = crate::run_limited(
            uploads
                .into_iter()
                .map(|(file, hash)| {
                    let progress = progress.clone();
                    async move { self.upload_object(&file, &hash, progress).await.map(|l| (hash, l)) }.boxed()
                })
                .collect(),
            self.dest.parallel(),
        )
        .await?;
        let mut reused_files = 0;
        let mut fresh: HashMap<String, Location> = HashMap::new();
        for (hash, location) in results {
            if let Location::Object { stored_size, .. } = &location {
                uploaded_bytes += stored_size;
            }
            fresh.insert(hash, location);
        }
        let mut records = Vec::new();
        for p in planned {
            let location = match p.location {
                Some(l) => {
                    reused_files += 1;
                    l
                }
                None => fresh.get(&p.hash).cloned().expect("every new object was uploaded"),
            };
            let modified_ns = p.file.immutable.then_some(p.file.modified_ns);
            records.push(FileRecord { path: p.file.rel, size: p.file.size, blake3: p.hash, modified_ns, location });
        }

        // The archive of small mutable files.
        progress.phase("archiving", to_archive.iter().map(|f| f.size).sum());
        let (archive, archived) = self.upload_archive(&id, to_archive, progress.clone()).await?;
        if let Some(a) = &archive {
            uploaded_bytes += a.stored_size;
        }
        records.extend(archived);
        let manifest = self
            .finish(id, created_at_ms, BackupKind::Physical, stores, records, archive, uploaded_bytes, reused_files)
            .await?;
        info!(
            backup = %manifest.id, files = manifest.totals.files, reused = reused_files,
            uploaded_bytes, elapsed_ms = started.elapsed().as_millis() as u64, "physical backup complete"
        );
        Ok(manifest)
    }

    /// Backs up a logical dump: `produce` runs on a worker thread and calls
    /// [`LogicalWriter::dump_store`] for each store.
    pub async fn create_logical<P, F>(&self, produce: F, progress: Arc<P>) -> Result<Manifest, BackupError>
    where
        P: Progress + 'static,
        F: FnOnce(&mut LogicalWriter<'_>) -> Result<(), BackupError> + Send + 'static,
    {
        let created_at_ms = now_ms();
        let id = new_id(BackupKind::Logical, created_at_ms);
        self.clean_incomplete(Duration::from_secs(self.config.gc_grace_secs), false).await?;
        let key = format!("backups/{id}/archive.tar.{}", self.config.compression.extension());
        let (compression, level, workers) = (self.config.compression, self.config.zstd_level, self.config.zstd_workers);
        progress.phase("dumping", 0);
        let ((files, stores), stored) = self
            .dest
            .put_stream(&key, move |w| {
                let mut encoder = Encoder::new(w, compression, level, workers)
                    .map_err(BackupError::io("compressing", "(archive)"))?;
                let on_bytes = move |n| progress.advance(n);
                let mut writer = LogicalWriter {
                    builder: tar::Builder::new(&mut encoder as &mut dyn Write),
                    files: Vec::new(),
                    stores: Vec::new(),
                    on_bytes: &on_bytes,
                };
                produce(&mut writer)?;
                writer.builder.finish().map_err(BackupError::io("archiving", "(archive)"))?;
                let (files, stores) = (std::mem::take(&mut writer.files), std::mem::take(&mut writer.stores));
                drop(writer);
                encoder.finish().map_err(BackupError::io("compressing", "(archive)"))?;
                Ok((files, stores))
            })
            .await?;
        let archive = ArchiveRecord {
            key,
            compression,
            stored_size: stored.size,
            stored_blake3: stored.hash.to_hex().to_string(),
        };
        let records = files
            .into_iter()
            .map(|(path, size, blake3)| FileRecord {
                path,
                size,
                blake3,
                modified_ns: None,
                location: Location::Archive,
            })
            .collect();
        self.finish(id, created_at_ms, BackupKind::Logical, stores, records, Some(archive), stored.size, 0).await
    }

    async fn upload_object<P: Progress + 'static>(
        &self,
        file: &SourceFile,
        hash: &str,
        progress: Arc<P>,
    ) -> Result<Location, BackupError> {
        let compression = self.config.compression;
        let key = object_key(hash, compression);
        let (abs, expected, level, workers) =
            (file.abs.clone(), hash.to_owned(), self.config.zstd_level, self.config.zstd_workers);
        let ((), stored) = self
            .dest
            .put_stream(&key, move |w| {
                let input = std::fs::File::open(&abs).map_err(BackupError::io("opening", &abs))?;
                let mut reader = archive::Hashing::new(ProgressRead { inner: input, progress: &*progress });
                let mut encoder =
                    Encoder::new(w, compression, level, workers).map_err(BackupError::io("compressing", &abs))?;
                std::io::copy(&mut reader, &mut encoder).map_err(BackupError::io("reading", &abs))?;
                encoder.finish().map_err(BackupError::io("compressing", &abs))?;
                let found = reader.hasher.finalize().to_hex().to_string();
                if found != expected {
                    return Err(BackupError::Invalid(format!("`{}` changed while being backed up", abs.display())));
                }
                Ok(())
            })
            .await?;
        Ok(Location::Object {
            key,
            compression,
            stored_size: stored.size,
            stored_blake3: stored.hash.to_hex().to_string(),
        })
    }

    async fn upload_archive<P: Progress + 'static>(
        &self,
        id: &str,
        files: Vec<SourceFile>,
        progress: Arc<P>,
    ) -> Result<(Option<ArchiveRecord>, Vec<FileRecord>), BackupError> {
        if files.is_empty() {
            return Ok((None, Vec::new()));
        }
        let compression = self.config.compression;
        let key = format!("backups/{id}/archive.tar.{}", compression.extension());
        let (level, workers) = (self.config.zstd_level, self.config.zstd_workers);
        let (records, stored) = self
            .dest
            .put_stream(&key, move |w| {
                let encoder = Encoder::new(w, compression, level, workers)
                    .map_err(BackupError::io("compressing", "(archive)"))?;
                let mut builder = tar::Builder::new(encoder);
                let mut records = Vec::new();
                for f in files {
                    let input = std::fs::File::open(&f.abs).map_err(BackupError::io("opening", &f.abs))?;
                    let hash = archive::append(&mut builder, &f.rel, f.size, input)?;
                    progress.advance(f.size);
                    records.push(FileRecord {
                        path: f.rel,
                        size: f.size,
                        blake3: hash.to_hex().to_string(),
                        modified_ns: None,
                        location: Location::Archive,
                    });
                }
                let encoder = builder.into_inner().map_err(BackupError::io("archiving", "(archive)"))?;
                encoder.finish().map_err(BackupError::io("compressing", "(archive)"))?;
                Ok(records)
            })
            .await?;
        let record = ArchiveRecord {
            key,
            compression,
            stored_size: stored.size,
            stored_blake3: stored.hash.to_hex().to_string(),
        };
        Ok((Some(record), records))
    }

    /// Writes the manifest, then the completion marker.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        id: String,
        created_at_ms: u64,
        kind: BackupKind,
        stores: Vec<StoreRecord>,
        mut files: Vec<FileRecord>,
        archive: Option<ArchiveRecord>,
        uploaded_bytes: u64,
        reused_files: u64,
    ) -> Result<Manifest, BackupError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let (count, raw_bytes, stored_bytes) = Totals::derived(&files, archive.as_ref());
        let totals = Totals { files: count, raw_bytes, stored_bytes, uploaded_bytes, reused_files };
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            id: id.clone(),
            created_at_ms,
            created_at: rfc3339(created_at_ms),
            kind,
            stores,
            files,
            archive,
            totals,
        };
        let bytes = manifest.to_bytes();
        let completion =
            Completion { manifest_blake3: blake3::hash(&bytes).to_hex().to_string(), completed_at_ms: now_ms() };
        self.dest.put_bytes(&manifest_key(&id), bytes).await?;
        // Everything this backup wrote is durable before the marker says it is complete.
        let mut written: Vec<String> = manifest.referenced_keys();
        written.push(manifest_key(&id));
        self.dest.sync(written).await?;
        let marker = serde_json::to_vec_pretty(&completion).expect("a marker always serializes");
        self.dest.put_bytes(&marker_key(&id), marker).await?;
        self.dest.sync(vec![marker_key(&id)]).await?;
        Ok(manifest)
    }
}

/// The identity of the store owning `path` (`chain/…` or `chain.redb` belong to `chain`).
fn identity_of(stores: &[StoreRecord], path: &str) -> Option<String> {
    let first = path.split('/').next()?;
    let name = first.split('.').next()?;
    stores.iter().find(|s| s.name == name).and_then(|s| s.identity.clone())
}

/// Every regular file under `root`, sorted, with `/`-separated relative paths. Anything else
/// (symlinks, devices) is an error: checkpoints hold only files and directories.
fn walk(root: &Path) -> Result<Vec<SourceFile>, BackupError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(BackupError::io("listing", &dir))? {
            let entry = entry.map_err(BackupError::io("listing", &dir))?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).map_err(BackupError::io("inspecting", &path))?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
                    .ok_or_else(|| BackupError::Invalid(format!("`{}` has a non-UTF-8 name", path.display())))?;
                let immutable = rel.ends_with(".sst") || rel.ends_with(".blob");
                let modified_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                out.push(SourceFile { rel, abs: path, size: meta.len(), modified_ns, immutable });
            } else {
                return Err(BackupError::Invalid(format!("`{}` is not a regular file", path.display())));
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn hash_file(path: &Path, progress: &dyn Progress) -> Result<String, BackupError> {
    let file = std::fs::File::open(path).map_err(BackupError::io("opening", path))?;
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(ProgressRead { inner: file, progress }).map_err(BackupError::io("reading", path))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// A reader reporting how much it read.
struct ProgressRead<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
