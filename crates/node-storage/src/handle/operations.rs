//! Operator operations on the running node: checks, figures, pruning, the archive, the state
//! trie, dead letters — and [`StorageHandle::execute`], which runs an [`Operation`] (the admin
//! endpoint's way in).

use super::*;
use crate::backend::caps;
use crate::check::{ChainCheckOn, CheckSummary, DagCheckOn, NodeStats, PruneSummary};
use crate::history::{ArchiveReport, ArchiveStatus, UploadRound};
use crate::ops::{MAX_DEAD_LETTERS_PER_PAGE, Operation, Outcome};
use storage_api::ReadExt;
use storage_backup::Progress;

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Runs `op` on the running node; a backup reports its progress to `progress`.
    pub async fn execute<P: Progress + 'static>(
        &self,
        op: Operation,
        progress: Arc<P>,
    ) -> Result<Outcome, StorageError> {
        Ok(match op {
            Operation::Stats => Outcome::Stats(self.node_stats().await?),
            Operation::Check { state } => Outcome::Check(self.integrity_check(state).await?),
            Operation::Compact => Outcome::Compacted(self.compact().await?),
            Operation::Prune { chain_keep, dag_below } => Outcome::Pruned(self.prune(chain_keep, dag_below).await?),
            Operation::DeadLetters { after, limit } => Outcome::DeadLetters(
                self.dead_letter_page(after, (limit as usize).min(MAX_DEAD_LETTERS_PER_PAGE)).await?,
            ),
            Operation::ReplayDeadLetters { ids } => Outcome::Replayed(self.replay_dead_letters(ids).await?),
            Operation::Backup { kind } => Outcome::BackedUp(self.backup(kind, progress).await?),
            Operation::ScheduleStatus => Outcome::Schedule(Some(self.schedule_status())),
        })
    }

    /// Integrity checks of the chain and DAG stores (read-only, full scans), each on a
    /// snapshot of its store, side by side. An engine without snapshots (sled) answers
    /// [`StorageError::NoSnapshots`]: check its stopped node instead ([`crate::NodeReader`]).
    pub async fn check(&self) -> Result<(ChainReport, DagReport), StorageError> {
        let (chain, dag, _) = self.check_reports(false).await?;
        Ok((chain, dag))
    }

    /// The integrity checks as printed (`state`: also recompute the state root and compare it
    /// with the stored trie, a full scan of the state).
    pub async fn integrity_check(&self, state: bool) -> Result<CheckSummary, StorageError> {
        let (chain, dag, trie) = self.check_reports(state).await?;
        Ok(CheckSummary::new(&chain, &dag, trie.as_ref()))
    }

    async fn check_reports(
        &self,
        state: bool,
    ) -> Result<(ChainReport, DagReport, Option<chain_store::TrieBuildReport>), StorageError> {
        const WHAT: &str = "an integrity check";
        <B::Views as caps::Views<B>>::require(WHAT)?;
        let chain = self.read("check_chain", move |s| {
            let visitor = ChainCheckOn::<M> { state, model: std::marker::PhantomData };
            <B::Views as caps::Views<B>>::with_view(s.stores.chain.store(), visitor, WHAT)?
        });
        let dag = self
            .read("check_dag", |s| <B::Views as caps::Views<B>>::with_view(s.stores.dag.store(), DagCheckOn, WHAT)?);
        let (chain, dag) = tokio::join!(chain, dag);
        let (chain, trie) = chain?;
        Ok((chain, dag?, trie))
    }

    /// Disk and per-table figures of every store.
    pub async fn stats(&self) -> Result<Vec<StoreStats>, StorageError> {
        self.read("stats", |s| {
            let dir = &s.config.data_dir;
            s.stores
                .engines()
                .into_iter()
                .map(|(id, store)| crate::reader::store_stats::<B, _>(dir, id, store))
                .collect()
        })
        .await
    }

    /// The node's figures as printed: engine, stores, head, finalized and pruning heights.
    pub async fn node_stats(&self) -> Result<NodeStats, StorageError> {
        let stores = self.stats().await?;
        let p = self.shared.stores.chain.pointers();
        Ok(NodeStats {
            backend: B::KIND.to_string(),
            stores,
            chain_head: p.head.map(|h| h.number),
            finalized: p.finalized.map(|h| h.number),
            pruned_below: p.pruned_below,
        })
    }

    /// Prunes the chain (`chain_keep`: keep the last N blocks' bodies, receipts and change
    /// sets) and/or the DAG (`dag_below`: vertices below this height), as asked.
    pub async fn prune(&self, chain_keep: Option<u64>, dag_below: Option<u64>) -> Result<PruneSummary, StorageError> {
        let mut out = PruneSummary::default();
        if let Some(keep) = chain_keep {
            out.chain = Some(self.prune_chain(keep).await?);
        }
        if let Some(below) = dag_below {
            out.dag = Some(self.prune_dag(below).await?);
        }
        Ok(out)
    }

    /// The history archive against this node: both watermarks (read from the archive now),
    /// the local final heights and pruning boundaries, and the uploader's figures.
    pub async fn archive_status(&self) -> Result<ArchiveStatus, StorageError> {
        self.read("archive_status", |s| s.history()?.status(&s.stores.chain, &s.stores.dag)).await
    }

    /// Uploads every final unit the archive does not hold yet, now (the background uploader
    /// does the same on its own); returns what each round uploaded.
    pub async fn archive_upload(&self) -> Result<Vec<UploadRound>, StorageError> {
        self.read("archive_upload", |s| {
            let h = s.history()?;
            let mut rounds = Vec::new();
            loop {
                let round = crate::history::upload_round(h, &s.stores.chain, &s.stores.dag)?;
                if !round.progressed() {
                    return Ok(rounds);
                }
                rounds.push(round);
            }
        })
        .await
    }

    /// Reads the whole archive back and checks it (see [`ArchiveReport`]).
    pub async fn verify_archive(&self) -> Result<ArchiveReport, StorageError> {
        self.read("verify_archive", |s| {
            crate::history::verify_archive(s.history()?, &s.stores.chain, &s.stores.dag, &())
        })
        .await
    }

    /// Recomputes the state root from the flat state and compares it with the stored trie
    /// (read-only, a full scan of the state).
    pub async fn check_state_trie(&self) -> Result<chain_store::TrieBuildReport, StorageError> {
        self.read("check_state_trie", |s| Ok(s.stores.chain.check_state_trie(&|_| {})?)).await
    }

    /// Rebuilds the state trie from the flat state (`dry_run`: compute and compare only);
    /// block writes wait meanwhile. Refused while `[state] trie = "off"` (the trie built would
    /// be dropped at the next open, and kept by every write until then).
    pub async fn repair_state_trie(&self, dry_run: bool) -> Result<chain_store::TrieBuildReport, StorageError> {
        if !dry_run && !self.shared.config.state.trie.is_on() {
            return Err(crate::ConfigError::Invalid {
                key: "state.trie".into(),
                reason: "is \"off\": switch it on to build the state trie".into(),
            }
            .into());
        }
        self.read("repair_state_trie", move |s| Ok(s.stores.chain.rebuild_state_trie(dry_run, &|_| {})?)).await
    }

    /// Cache figures: (name, stats).
    pub fn cache_stats(&self) -> Vec<(&'static str, storage_cache::CacheStats)> {
        self.shared.caches.stats().to_vec()
    }

    /// The dead letters, oldest first, with their payloads (every one in memory: for a
    /// listing, [`StorageHandle::dead_letter_page`]).
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StorageError> {
        self.read("dead_letters", |s| crate::reader::dead_letters(&s.stores.node)).await
    }

    /// Up to `limit` dead letters with ids above `after`, oldest first, without payloads.
    pub async fn dead_letter_page(&self, after: Option<u64>, limit: usize) -> Result<DeadLetterPage, StorageError> {
        self.read("dead_letters", move |s| deadletter::page(&s.stores.node, after, limit)).await
    }

    /// Replays dead letters (`None`: all), oldest first: each is resubmitted; a success
    /// removes it, a failure keeps it with the new reason. One replay at a time; the letters
    /// are read one by one.
    pub async fn replay_dead_letters(&self, ids: Option<Vec<u64>>) -> Result<Vec<Replayed>, StorageError> {
        let _one = self.shared.dead_letters.replay_turn().await;
        let wanted: Vec<u64> = match &ids {
            Some(ids) => ids.clone(),
            None => {
                let mut all = Vec::new();
                let mut after = None;
                loop {
                    let page = self.dead_letter_page(after, MAX_DEAD_LETTERS_PER_PAGE).await?;
                    all.extend(page.letters.iter().map(|l| l.id));
                    match page.next_after {
                        Some(a) => after = Some(a),
                        None => break all,
                    }
                }
            }
        };
        let mut out = Vec::new();
        let mut missing = None;
        for id in wanted {
            let letter = self
                .read("dead_letter", move |s| {
                    s.stores.node.get::<DeadLetters>(&id)?.map(|blob| deadletter::decode(id, &blob)).transpose()
                })
                .await?;
            let Some(letter) = letter else {
                missing = missing.or(Some(id));
                continue;
            };
            let mut op: Op<M> = postcard::from_bytes(&letter.payload)
                .map_err(|e| StorageError::CorruptDeadLetter { id: letter.id, reason: e.to_string() })?;
            let rx = op.reply_mut().watch();
            let result = match self.enqueue(op, letter.attempts, Some(letter.id)).await {
                Ok(sent) => self.answer(sent, rx).await,
                Err(e) => Err(e),
            };
            let error = result.err().map(|e| e.to_string());
            let update = match &error {
                // Done: the entry goes.
                None => None,
                // Still failing: the entry stays, with the new reason.
                Some(reason) => {
                    Some(DeadLetter { reason: reason.clone(), attempts: letter.attempts + 1, ..letter.clone() })
                }
            };
            self.read("dead_letter_update", move |s| {
                let existed = s.stores.node.get::<DeadLetters>(&id)?.is_some();
                let mut batch = s.stores.node.batch();
                match &update {
                    None => {
                        batch.delete::<DeadLetters>(&id)?;
                    }
                    Some(l) => {
                        batch.put::<DeadLetters>(&id, &deadletter::encode(l))?;
                    }
                }
                s.stores.node.write(batch, storage_api::Durability::Synced)?;
                if update.is_none() && existed {
                    s.dead_letters.removed();
                }
                Ok(())
            })
            .await?;
            out.push(Replayed { id, op: letter.op, error });
        }
        match missing {
            Some(id) => Err(StorageError::NoSuchDeadLetter(id)),
            None => Ok(out),
        }
    }
}
