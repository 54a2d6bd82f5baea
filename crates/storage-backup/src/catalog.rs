//! Listing backups, loading manifests, choosing one (by id, latest, or point in time) and
//! cleaning up interrupted backups.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use tracing::info;

use crate::Backups;
use crate::error::{BackupError, IntegrityError};
use crate::manifest::{Completion, Manifest, manifest_key, marker_key, valid_id};

/// A backup found at the destination.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    /// The id.
    pub id: String,
    /// The manifest, for complete backups; `None` for an interrupted one (no marker).
    pub manifest: Option<Manifest>,
    /// Object keys under the backup's own prefix.
    pub keys: Vec<String>,
    /// Newest modification among those objects.
    pub modified: SystemTime,
}

impl BackupInfo {
    /// Whether the completion marker is present (and the manifest matched it).
    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }
}

/// Which backup to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest complete backup.
    Latest,
    /// The backup with this id.
    Id(String),
    /// The newest complete backup created at or before this time (ms since the epoch).
    AtOrBefore(u64),
}

impl Backups {
    /// Every backup at the destination, oldest first. A backup whose marker is present but
    /// whose manifest fails its check is an error (tampering), not silently hidden.
    pub async fn list(&self) -> Result<Vec<BackupInfo>, BackupError> {
        let mut by_id: BTreeMap<String, (Vec<String>, SystemTime)> = BTreeMap::new();
        for item in self.dest.list("backups").await? {
            let mut parts = item.key.splitn(3, '/');
            let (Some("backups"), Some(id), Some(_)) = (parts.next(), parts.next(), parts.next()) else { continue };
            let entry = by_id.entry(id.to_owned()).or_insert((Vec::new(), SystemTime::UNIX_EPOCH));
            entry.0.push(item.key.clone());
            entry.1 = entry.1.max(item.modified);
        }
        let mut out = Vec::new();
        for (id, (keys, modified)) in by_id {
            if !valid_id(&id) {
                continue; // not ours
            }
            let manifest = if keys.contains(&marker_key(&id)) { Some(self.load_manifest(&id).await?) } else { None };
            out.push(BackupInfo { id, manifest, keys, modified });
        }
        out.sort_by_key(|b| (b.manifest.as_ref().map(|m| m.created_at_ms).unwrap_or(0), b.id.clone()));
        Ok(out)
    }

    /// The complete backups, oldest first.
    pub async fn complete(&self) -> Result<Vec<Manifest>, BackupError> {
        Ok(self.list().await?.into_iter().filter_map(|b| b.manifest).collect())
    }

    /// Loads and checks the manifest of complete backup `id`.
    pub async fn load_manifest(&self, id: &str) -> Result<Manifest, BackupError> {
        if !valid_id(id) {
            return Err(BackupError::NoSuchBackup(format!("`{id}` (not a backup id)")));
        }
        let marker = match self.dest.get_bytes(&marker_key(id), crate::manifest::MAX_MARKER_BYTES).await {
            Ok(bytes) => bytes,
            Err(BackupError::Destination(d)) if matches!(*d, crate::DestinationError::NotFound { .. }) => {
                return Err(BackupError::NoSuchBackup(format!("`{id}` (missing or incomplete)")));
            }
            Err(e) => return Err(e),
        };
        let completion: Completion = serde_json::from_slice(&marker).map_err(|e| IntegrityError::Manifest {
            backup: id.to_owned(),
            message: format!("completion marker unreadable: {e}"),
        })?;
        let bytes = self.dest.get_bytes(&manifest_key(id), crate::manifest::MAX_MANIFEST_BYTES).await?;
        Ok(Manifest::from_bytes(id, &bytes, &completion)?)
    }

    /// The complete backup `selector` names.
    pub async fn select(&self, selector: &Selector) -> Result<Manifest, BackupError> {
        match selector {
            Selector::Id(id) => self.load_manifest(id).await,
            Selector::Latest => {
                self.complete().await?.pop().ok_or_else(|| BackupError::NoSuchBackup("exists yet".into()))
            }
            Selector::AtOrBefore(ms) => {
                self.complete().await?.into_iter().rev().find(|m| m.created_at_ms <= *ms).ok_or_else(|| {
                    BackupError::NoSuchBackup(format!("was created at or before {}", crate::rfc3339(*ms)))
                })
            }
        }
    }

    /// Deletes what interrupted backups left under `backups/` (never a complete backup) when
    /// older than `grace`; their uploaded objects stay for reuse until garbage-collected.
    /// Returns the ids cleaned.
    pub async fn clean_incomplete(&self, grace: Duration, dry_run: bool) -> Result<Vec<String>, BackupError> {
        let all = self.list().await?;
        self.remove_incomplete(&all, grace, dry_run).await
    }

    /// [`Backups::clean_incomplete`] over an existing listing.
    pub(crate) async fn remove_incomplete(
        &self,
        all: &[BackupInfo],
        grace: Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, BackupError> {
        let now = SystemTime::now();
        let mut cleaned = Vec::new();
        for b in all {
            let old = now.duration_since(b.modified).map(|age| age >= grace).unwrap_or(false);
            if b.is_complete() || !old {
                continue;
            }
            if !dry_run {
                for key in &b.keys {
                    self.dest.delete(key).await?;
                }
                info!(backup = %b.id, "removed interrupted backup");
            }
            cleaned.push(b.id.clone());
        }
        Ok(cleaned)
    }
}
