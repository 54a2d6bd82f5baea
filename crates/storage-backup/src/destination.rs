//! Where backups live: a local directory, S3 (or any S3-compatible server), GCS or Azure Blob,
//! all through the `object_store` crate — the crate's one `dyn` seam.
//!
//! Credentials come only from the environment, read by object_store's builders:
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN` (S3),
//! `GOOGLE_SERVICE_ACCOUNT` / `GOOGLE_APPLICATION_CREDENTIALS` (GCS), `AZURE_STORAGE_ACCOUNT_NAME`
//! / `AZURE_STORAGE_ACCOUNT_KEY` (Azure). They are never logged or written to a manifest.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{BackoffConfig, ObjectStore, PutPayload, RetryConfig};
use tokio::sync::mpsc;

use crate::config::BackupConfig;
use crate::error::{BackupError, DestinationError};

/// An object found by [`Destination::list`].
#[derive(Debug, Clone)]
pub struct Listed {
    /// The key, relative to the destination's prefix.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

/// What an upload stored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stored {
    /// Bytes stored.
    pub size: u64,
    /// BLAKE3 of the stored bytes.
    pub hash: blake3::Hash,
}

/// The version of an object as [`Destination::get_versioned`] read it: what
/// [`Destination::put_if`] compares before it overwrites the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion(Version);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Version {
    /// A remote store's ETag and/or version (generation).
    Store(object_store::UpdateVersion),
    /// A local file's content hash (object_store's local backend has no conditional update).
    Local(blake3::Hash),
}

/// An opened backup destination.
#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    shown: String,
    hint: &'static str,
    part_size: usize,
    threshold: u64,
    parallel: usize,
    /// The directory of a local destination (object_store's local backend does not fsync).
    local: Option<PathBuf>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Destination {
    /// Opens the destination `config.destination` names (creating a local directory if needed).
    pub fn open(config: &BackupConfig) -> Result<Self, BackupError> {
        let url = config.destination.trim();
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: config.max_retries,
            retry_timeout: Duration::from_secs(config.retry_timeout_secs),
        };
        let config_error = |message: String| DestinationError::Config { destination: url.to_owned(), message };
        let mut local_dir = None;
        let (store, prefix, hint): (Arc<dyn ObjectStore>, &str, &'static str) =
            if let Some(rest) = url.strip_prefix("s3://") {
                let (bucket, prefix) = split_bucket(rest);
                // Conditional writes (`put_if`) as `If-Match` / `If-None-Match` (S3 and the
                // compatible servers have taken them since 2024).
                let mut b = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(retry)
                    .with_allow_http(config.allow_http)
                    .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
                if let Some(endpoint) = &config.endpoint {
                    b = b.with_endpoint(endpoint).with_virtual_hosted_style_request(false);
                }
                if let Some(region) = &config.region {
                    b = b.with_region(region);
                }
                if let Some(c) = &config.credentials {
                    b = b.with_access_key_id(&c.access_key_id).with_secret_access_key(&c.secret_access_key);
                }
                let hint = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
                (Arc::new(b.build().map_err(|e| config_error(e.to_string()))?), prefix, hint)
            } else if let Some(rest) = url.strip_prefix("gs://") {
                let (bucket, prefix) = split_bucket(rest);
                let mut b =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).with_retry(retry);
                if let Some(endpoint) = &config.endpoint {
                    // An emulator (gcp-storage-emulator, fake-gcs-server): object_store takes another
                    // base URL only from a service-account key, which also turns OAuth off.
                    let key = serde_json::json!({
                        "gcs_base_url": endpoint.trim_end_matches('/'), "disable_oauth": true,
                        "client_email": "", "private_key": "", "private_key_id": "",
                    });
                    b = b.with_service_account_key(key.to_string());
                }
                let hint = "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS";
                (Arc::new(b.build().map_err(|e| config_error(e.to_string()))?), prefix, hint)
            } else if let Some(rest) = url.strip_prefix("az://") {
                let (container, prefix) = split_bucket(rest);
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env()
                    .with_container_name(container)
                    .with_retry(retry)
                    .with_allow_http(config.allow_http);
                if let Some(endpoint) = &config.endpoint {
                    // The account's blob service URL; for Azurite, path-style with the account:
                    // `http://127.0.0.1:10000/devstoreaccount1`.
                    b = b.with_endpoint(endpoint.clone());
                }
                if let Some(c) = &config.credentials {
                    b = b.with_account(&c.access_key_id).with_access_key(&c.secret_access_key);
                }
                let hint = "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY";
                (Arc::new(b.build().map_err(|e| config_error(e.to_string()))?), prefix, hint)
            } else if url.contains("://") && !url.starts_with("file://") {
                return Err(config_error("unknown scheme (use file://, s3://, gs:// or az://)".into()).into());
            } else {
                let dir = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
                storage_api::durable::create_dir_all(&dir)
                    .map_err(|e| config_error(format!("cannot create directory: {e}")))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| config_error(e.to_string()))?;
                local_dir = Some(dir);
                (Arc::new(local), "", "the directory's permissions")
            };
        let shown = match &config.endpoint {
            Some(endpoint) if url.starts_with("s3://") || url.starts_with("az://") || url.starts_with("gs://") => {
                format!("{url} (endpoint {endpoint})")
            }
            _ => url.to_owned(),
        };
        Ok(Destination {
            store,
            prefix: Path::from(prefix),
            shown,
            hint,
            part_size: config.part_size_bytes as usize,
            threshold: config.multipart_threshold_bytes.max(1),
            parallel: config.parallel_uploads.max(1),
            local: local_dir,
        })
    }

    /// Makes `keys` durable on a local destination (fsync of each file and of every directory
    /// from the file's up to the destination's root: object_store creates the directories of a
    /// key as it writes it, and a directory's name is only durable once its parent is synced —
    /// found by the power cuts of `fault-fs`, which lost backups reported complete); remote
    /// stores acknowledge writes durably already.
    pub async fn sync(&self, keys: Vec<String>) -> Result<(), BackupError> {
        let Some(root) = self.local.clone() else { return Ok(()) };
        tokio::task::spawn_blocking(move || {
            let mut dirs = std::collections::BTreeSet::new();
            for key in keys {
                let path = root.join(&key);
                let file = std::fs::File::open(&path).map_err(BackupError::io("opening", &path))?;
                file.sync_all().map_err(BackupError::io("syncing", &path))?;
                let mut dir = path.parent();
                while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
                    dirs.insert(d.to_owned());
                    dir = d.parent();
                }
            }
            for dir in dirs {
                let d = std::fs::File::open(&dir).map_err(BackupError::io("opening", &dir))?;
                d.sync_all().map_err(BackupError::io("syncing", &dir))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| BackupError::Invalid(format!("sync worker failed: {e}")))?
    }

    /// The destination as shown to operators (never with credentials).
    pub fn describe(&self) -> &str {
        &self.shown
    }

    /// How many uploads run at once.
    pub(crate) fn parallel(&self) -> usize {
        self.parallel
    }

    fn path(&self, key: &str) -> Path {
        let key = Path::from(key);
        let mut parts: Vec<_> = self.prefix.parts().collect();
        parts.extend(key.parts());
        Path::from_iter(parts)
    }

    /// Maps a failed request (`action` on `key`) to its error, by kind: object_store types
    /// most refusals, but its S3 client reports a refused list or multipart request as a
    /// generic error. For those, one authenticated read of `key` tells: a refusal there is a
    /// typed `PermissionDenied`/`Unauthenticated`, so the failure was the credentials.
    async fn failed(&self, action: &'static str, key: &str, e: object_store::Error) -> DestinationError {
        let refused = matches!(e, object_store::Error::Generic { .. })
            && matches!(
                self.store.head(&self.path(key)).await,
                Err(object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. })
            );
        DestinationError::from_store(&self.shown, self.hint, action, key, e, refused)
    }

    /// `result`, or its failure mapped by [`Destination::failed`].
    async fn check<T>(
        &self,
        action: &'static str,
        key: &str,
        result: Result<T, object_store::Error>,
    ) -> Result<T, DestinationError> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(action, key, e).await),
        }
    }

    /// Stores `bytes` under `key` in one request.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BackupError> {
        let put = self.store.put(&self.path(key), PutPayload::from(bytes)).await;
        self.check("writing", key, put).await?;
        Ok(())
    }

    /// Reads the whole object `key`, a small one (manifest, marker) of at most `max` bytes:
    /// a larger object is refused before it is read (by its listed size) and while it is read
    /// (should the size lie), so a hostile destination cannot make the reader allocate more.
    pub async fn get_bytes(&self, key: &str, max: u64) -> Result<Bytes, BackupError> {
        let too_large = |size: u64| {
            BackupError::Integrity(crate::IntegrityError::TooLarge { path: key.to_owned(), size, limit: max })
        };
        let got = self.store.get(&self.path(key)).await;
        let got = self.check("reading", key, got).await?;
        if got.meta.size > max {
            return Err(too_large(got.meta.size));
        }
        let mut stream = got.into_stream();
        let mut out = Vec::with_capacity(usize::try_from(max.min(64 << 10)).unwrap_or(0));
        while let Some(chunk) = {
            let next = stream.try_next().await;
            self.check("reading", key, next).await?
        } {
            if (out.len() + chunk.len()) as u64 > max {
                return Err(too_large((out.len() + chunk.len()) as u64));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    /// Reads the whole small object `key` (at most `max` bytes, as [`Destination::get_bytes`])
    /// with its version, for a conditional overwrite; `None` if there is no such object.
    pub async fn get_versioned(&self, key: &str, max: u64) -> Result<Option<(Bytes, ObjectVersion)>, BackupError> {
        if let Some(root) = &self.local {
            let path = root.join(key);
            let read = tokio::task::spawn_blocking(move || local_read(&path, max))
                .await
                .map_err(|e| BackupError::Invalid(format!("read worker failed: {e}")))?;
            return Ok(read?.map(|bytes| {
                let version = ObjectVersion(Version::Local(blake3::hash(&bytes)));
                (Bytes::from(bytes), version)
            }));
        }
        let got = match self.store.get(&self.path(key)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed("reading", key, e).await.into()),
        };
        let version = ObjectVersion(Version::Store(object_store::UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        }));
        if got.meta.size > max {
            return Err(BackupError::Integrity(crate::IntegrityError::TooLarge {
                path: key.to_owned(),
                size: got.meta.size,
                limit: max,
            }));
        }
        let bytes = got.bytes().await;
        let bytes = self.check("reading", key, bytes).await?;
        if bytes.len() as u64 > max {
            return Err(BackupError::Integrity(crate::IntegrityError::TooLarge {
                path: key.to_owned(),
                size: bytes.len() as u64,
                limit: max,
            }));
        }
        Ok(Some((bytes, version)))
    }

    /// Stores the small object `bytes` under `key` only if `key` is still as read: at
    /// `expected` (from [`Destination::get_versioned`]), or absent when `expected` is `None`.
    /// Otherwise nothing is written and the answer is [`DestinationError::Conflict`]. Durable
    /// when it returns (a local destination syncs the file and its directory).
    ///
    /// Remote stores decide atomically (`If-Match` / `If-None-Match`, generations); a local
    /// directory compares and renames under an exclusive `flock` of the object's directory,
    /// so writers through this crate exclude each other.
    pub async fn put_if(&self, key: &str, bytes: Bytes, expected: Option<&ObjectVersion>) -> Result<(), BackupError> {
        if let Some(root) = &self.local {
            let (root, key_owned, expected) = (root.clone(), key.to_owned(), expected.cloned());
            let shown = self.shown.clone();
            return tokio::task::spawn_blocking(move || local_put_if(&root, &key_owned, &bytes, expected, &shown))
                .await
                .map_err(|e| BackupError::Invalid(format!("write worker failed: {e}")))?;
        }
        let mode = match expected {
            None => object_store::PutMode::Create,
            Some(ObjectVersion(Version::Store(v))) => object_store::PutMode::Update(v.clone()),
            Some(ObjectVersion(Version::Local(_))) => {
                return Err(DestinationError::Conflict { destination: self.shown.clone(), key: key.to_owned() }.into());
            }
        };
        let put = self.store.put_opts(&self.path(key), PutPayload::from(bytes), mode.into()).await;
        self.check("writing", key, put).await?;
        Ok(())
    }

    /// Stores `bytes` under `key` whole: one request up to the multipart threshold, a
    /// parallel multipart upload above it (aborted on failure, so nothing partial is left
    /// under `key`). Not durable on a local destination until [`Destination::sync`].
    pub async fn put_object(&self, key: &str, bytes: Bytes) -> Result<(), BackupError> {
        if bytes.len() as u64 <= self.threshold {
            let put = self.store.put(&self.path(key), PutPayload::from(bytes)).await;
            self.check("writing", key, put).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&self.path(key)).await;
        let upload = self.check("starting upload of", key, upload).await?;
        let mut writer = Multipart::new(upload, self.parallel);
        let mut rest = bytes;
        while !rest.is_empty() {
            let part = rest.split_to(rest.len().min(self.part_size));
            if let Err(e) = writer.put(part).await {
                writer.abort().await;
                return Err(self.failed("uploading", key, e).await.into());
            }
        }
        let finished = writer.finish().await;
        self.check("uploading", key, finished).await?;
        Ok(())
    }

    /// The bytes `range` of object `key` (one ranged request).
    pub async fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes, BackupError> {
        let got = self.store.get_range(&self.path(key), range).await;
        Ok(self.check("reading", key, got).await?)
    }

    /// Several byte ranges of object `key` (nearby ranges are fetched together).
    pub async fn get_ranges(&self, key: &str, ranges: &[std::ops::Range<u64>]) -> Result<Vec<Bytes>, BackupError> {
        let got = self.store.get_ranges(&self.path(key), ranges).await;
        Ok(self.check("reading", key, got).await?)
    }

    /// The size of object `key`, or `None` if there is no such object.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BackupError> {
        match self.store.head(&self.path(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("reading", key, e).await.into()),
        }
    }

    /// Deletes `key` (a missing key is not an error).
    pub async fn delete(&self, key: &str) -> Result<(), BackupError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("deleting", key, e).await.into()),
        }
    }

    /// Every object under `prefix` (relative keys), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, BackupError> {
        let full = self.path(prefix);
        let skip = self.prefix.parts().count();
        let listed = self.store.list(Some(&full)).try_collect::<Vec<_>>().await;
        let metas = self.check("listing", prefix, listed).await?;
        Ok(metas
            .into_iter()
            .map(|m| Listed {
                key: m.location.parts().skip(skip).map(|p| p.as_ref().to_owned()).collect::<Vec<_>>().join("/"),
                size: m.size,
                modified: m.last_modified.into(),
            })
            .collect())
    }

    /// Uploads what `produce` writes (on a blocking thread) to `key`: one request for small
    /// objects, a parallel multipart upload above the threshold. Nothing is stored under `key`
    /// unless `produce` succeeds and every part is accepted; a failed multipart upload is
    /// aborted.
    pub(crate) async fn put_stream<T: Send + 'static>(
        &self,
        key: &str,
        produce: impl FnOnce(&mut ChunkWriter) -> Result<T, BackupError> + Send + 'static,
    ) -> Result<(T, Stored), BackupError> {
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let part = self.part_size;
        let producer = tokio::task::spawn_blocking(move || {
            let mut writer = ChunkWriter::new(tx, part);
            let value = produce(&mut writer)?;
            let stored = writer.finish()?;
            Ok::<_, BackupError>((value, stored))
        });
        let joined = |r: Result<Result<(T, Stored), BackupError>, tokio::task::JoinError>| {
            r.map_err(|e| BackupError::Invalid(format!("backup worker failed: {e}")))?
        };
        // Collect up to the threshold: small objects go in one request.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0u64;
        while head_len <= self.threshold {
            match rx.recv().await {
                Some(chunk) => {
                    head_len += chunk.len() as u64;
                    head.push(chunk);
                }
                None => {
                    let (value, stored) = joined(producer.await)?;
                    let payload: PutPayload = head.into_iter().collect();
                    let put = self.store.put(&self.path(key), payload).await;
                    self.check("uploading", key, put).await?;
                    return Ok((value, stored));
                }
            }
        }
        let upload = self.store.put_multipart(&self.path(key)).await;
        let upload = self.check("starting upload of", key, upload).await?;
        // The producer sends whole parts (all but the last exactly `part` bytes).
        let mut writer = Multipart::new(upload, self.parallel);
        let mut failure = None;
        for chunk in head {
            if let Err(e) = writer.put(chunk).await {
                failure = Some(e);
                break;
            }
        }
        while failure.is_none() {
            match rx.recv().await {
                Some(chunk) => {
                    if let Err(e) = writer.put(chunk).await {
                        failure = Some(e);
                    }
                }
                None => break,
            }
        }
        drop(rx); // a producer still writing sees the upload has stopped
        let produced = joined(producer.await);
        match (failure, produced) {
            (None, Ok(done)) => {
                let finished = writer.finish().await;
                self.check("uploading", key, finished).await?;
                Ok(done)
            }
            (Some(e), _) => {
                writer.abort().await;
                Err(self.failed("uploading", key, e).await.into())
            }
            (None, Err(e)) => {
                writer.abort().await;
                Err(e)
            }
        }
    }

    /// Downloads `key` into the new file `file`, returning the size and BLAKE3 of the bytes.
    pub(crate) async fn get_to_file(&self, key: &str, file: &FsPath) -> Result<Stored, BackupError> {
        let got = self.store.get(&self.path(key)).await;
        let got = self.check("downloading", key, got).await?;
        let mut stream = got.into_stream();
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let target = file.to_owned();
        let writer = tokio::task::spawn_blocking(move || -> Result<Stored, BackupError> {
            use std::io::Write;
            let out = std::fs::File::create_new(&target).map_err(BackupError::io("creating", &target))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).map_err(BackupError::io("writing", &target))?;
            }
            out.flush().map_err(BackupError::io("writing", &target))?;
            Ok(Stored { size, hash: hasher.finalize() })
        });
        let mut failure = None;
        loop {
            match stream.try_next().await {
                Ok(Some(chunk)) => {
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let written = writer.await.map_err(|e| BackupError::Invalid(format!("download worker failed: {e}")))?;
        if let Some(e) = failure {
            return Err(self.failed("downloading", key, e).await.into());
        }
        written
    }
}

/// The local file `path` (at most `max` bytes), or `None` if it does not exist.
fn local_read(path: &FsPath, max: u64) -> Result<Option<Vec<u8>>, BackupError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::io("reading", path)(e)),
    };
    let mut out = Vec::new();
    file.take(max + 1).read_to_end(&mut out).map_err(BackupError::io("reading", path))?;
    if out.len() as u64 > max {
        return Err(BackupError::Integrity(crate::IntegrityError::TooLarge {
            path: path.display().to_string(),
            size: out.len() as u64,
            limit: max,
        }));
    }
    Ok(Some(out))
}

/// [`Destination::put_if`] on a local directory: under an exclusive `flock` of the object's
/// directory, the current content is compared with `expected`, then the new content is written
/// to a temporary file, synced, renamed over the object, and the directory synced.
fn local_put_if(
    root: &FsPath,
    key: &str,
    bytes: &[u8],
    expected: Option<ObjectVersion>,
    shown: &str,
) -> Result<(), BackupError> {
    use std::io::Write;
    let path = root.join(key);
    let dir = path.parent().unwrap_or(root).to_owned();
    storage_api::durable::create_dir_all(&dir).map_err(BackupError::io("creating", &dir))?;
    let lock = std::fs::File::open(&dir).map_err(BackupError::io("opening", &dir))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| BackupError::io("locking", &dir)(e.into()))?;
    let current = local_read(&path, u64::MAX - 1)?.map(|b| blake3::hash(&b));
    let matches = match (&expected, current) {
        (None, None) => true,
        (Some(ObjectVersion(Version::Local(want))), Some(have)) => *want == have,
        _ => false,
    };
    if !matches {
        return Err(DestinationError::Conflict { destination: shown.to_owned(), key: key.to_owned() }.into());
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(BackupError::io("creating", &tmp))?;
    file.write_all(bytes).map_err(BackupError::io("writing", &tmp))?;
    file.sync_all().map_err(BackupError::io("syncing", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(BackupError::io("renaming", &path))?;
    storage_api::durable::sync_dir(&dir).map_err(BackupError::io("syncing", &dir))?;
    Ok(())
}

/// A multipart upload that is aborted unless it completes: on a failed part, a failed
/// completion, and when the future driving it is dropped (a caller's timeout), so no
/// unfinished upload is left behind at the destination (where it is billed and invisible).
/// Parts go up as given, at most `parallel` at a time.
struct Multipart {
    upload: Option<Box<dyn object_store::MultipartUpload>>,
    parts: tokio::task::JoinSet<Result<(), object_store::Error>>,
    parallel: usize,
}

impl Multipart {
    fn new(upload: Box<dyn object_store::MultipartUpload>, parallel: usize) -> Self {
        Multipart { upload: Some(upload), parts: tokio::task::JoinSet::new(), parallel: parallel.max(1) }
    }

    /// Starts uploading `part`, after waiting until fewer than `parallel` parts are in flight.
    async fn put(&mut self, part: Bytes) -> Result<(), object_store::Error> {
        while self.parts.len() >= self.parallel {
            self.join_one().await?;
        }
        let upload = self.upload.as_mut().expect("present until finish or abort");
        self.parts.spawn(upload.put_part(PutPayload::from(part)));
        Ok(())
    }

    async fn join_one(&mut self) -> Result<(), object_store::Error> {
        match self.parts.join_next().await {
            None => Ok(()),
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(object_store::Error::Generic { store: "multipart upload", source: Box::new(e) }),
        }
    }

    /// Waits for every part and completes the upload; any failure aborts it.
    async fn finish(mut self) -> Result<object_store::PutResult, object_store::Error> {
        while !self.parts.is_empty() {
            if let Err(e) = self.join_one().await {
                self.abort().await;
                return Err(e);
            }
        }
        let mut upload = self.upload.take().expect("present until finish or abort");
        match upload.complete().await {
            Ok(done) => Ok(done),
            Err(e) => {
                abort_upload(upload).await;
                Err(e)
            }
        }
    }

    async fn abort(&mut self) {
        self.parts.shutdown().await;
        if let Some(upload) = self.upload.take() {
            abort_upload(upload).await;
        }
    }
}

/// Aborts `upload`, retrying a refused or failed abort a few times: a part the server was
/// still receiving when the client gave up can race the abort (S3's own guidance is to abort
/// again until it succeeds). A last failure is left to the bucket's lifecycle rule.
async fn abort_upload(mut upload: Box<dyn object_store::MultipartUpload>) {
    let mut wait = std::time::Duration::from_millis(100);
    for _ in 0..ABORT_ATTEMPTS {
        if upload.abort().await.is_ok() {
            return;
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// How often an abort is tried before the unfinished upload is left behind.
const ABORT_ATTEMPTS: usize = 5;

impl Drop for Multipart {
    fn drop(&mut self) {
        // Dropped unfinished (the caller gave up): the parts in flight stop with the JoinSet,
        // and the upload is aborted on the runtime that drove it.
        if let Some(upload) = self.upload.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(abort_upload(upload));
        }
    }
}

fn split_bucket(rest: &str) -> (&str, &str) {
    match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket, prefix.trim_matches('/')),
        None => (rest, ""),
    }
}

/// A `Write` that hashes what passes through and hands it to the uploader in parts.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    part: usize,
    hasher: blake3::Hasher,
    size: u64,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Bytes>, part: usize) -> Self {
        ChunkWriter { tx, buf: Vec::with_capacity(part), part, hasher: blake3::Hasher::new(), size: 0 }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(self.part)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    fn finish(mut self) -> Result<Stored, BackupError> {
        self.send().map_err(BackupError::io("uploading", "(stream)"))?;
        Ok(Stored { size: self.size, hash: self.hasher.finalize() })
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        let mut rest = data;
        while !rest.is_empty() {
            let take = rest.len().min(self.part - self.buf.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.part {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
