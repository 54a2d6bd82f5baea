//! Errors of the history tier. Remote failures are classified by kind in one place per archive
//! (`bigtable::failed`, `segments::failed`); nothing is recognised by its text.

use thiserror::Error;

use crate::Kind;

/// A history-tier operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The configuration is invalid.
    #[error("history archive configuration: {0}")]
    Config(String),
    /// The archive could not be reached (network, server down, timeout): nothing is known about
    /// what it holds. Reads of pruned data fail with this rather than "not found".
    #[error("history archive {archive} is unavailable while {action}: {reason}")]
    Unavailable {
        /// The archive, as shown to operators.
        archive: String,
        /// What was being done.
        action: String,
        /// Why.
        reason: String,
    },
    /// The archive refused the credentials.
    #[error("history archive {archive} refused the credentials while {action} (check {hint}): {reason}")]
    Denied {
        /// The archive.
        archive: String,
        /// What was being done.
        action: String,
        /// Where credentials come from.
        hint: &'static str,
        /// The archive's answer.
        reason: String,
    },
    /// The archive's tables do not exist (and were not to be created).
    #[error(
        "history archive {archive}: table `{table}` does not exist; set history.bigtable.create_tables = true or create it (docs/OPERATIONS.md, \"History archive\")"
    )]
    NoTable {
        /// The archive.
        archive: String,
        /// The missing table.
        table: String,
    },
    /// The archive answered with an error that is neither an outage nor a refusal.
    #[error("history archive {archive}: {action} failed: {reason}")]
    Remote {
        /// The archive.
        archive: String,
        /// What was being done.
        action: String,
        /// The archive's answer.
        reason: String,
    },
    /// Stored data does not match what was written or what its index says: it is not used.
    #[error("history archive {archive}: {what} is corrupt: {reason}")]
    Corrupt {
        /// The archive.
        archive: String,
        /// The object or row.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A watermark moved while an upload ran (another uploader on the same archive): the
    /// upload's watermark was not written, so the archive never goes backwards. What it
    /// uploaded is left in place (the same bytes, or covered already); the next round starts
    /// from the new watermark.
    #[error(
        "history archive {archive}: {what} changed while this upload ran (another uploader on the same archive?); its watermark was left as the other wrote it"
    )]
    Conflict {
        /// The archive.
        archive: String,
        /// The watermark (object or row).
        what: String,
    },
    /// An upload does not start where the archive ends (it would leave a gap or rewrite).
    #[error("{kind} upload must start at {next} (the archive's watermark), not {found}")]
    NotNext {
        /// Which history.
        kind: Kind,
        /// The next item the archive expects.
        next: u64,
        /// What the upload started with.
        found: u64,
    },
    /// An upload with nothing in it.
    #[error("empty {0} upload")]
    Empty(Kind),
    /// An upload unit that is not whole (segments are uploaded whole).
    #[error(
        "{kind} upload of {first}..={last} is not a whole unit of this archive (expected {expected_first}..={expected_last})"
    )]
    NotAUnit {
        /// Which history.
        kind: Kind,
        /// First item given.
        first: u64,
        /// Last item given.
        last: u64,
        /// The unit's first item.
        expected_first: u64,
        /// The unit's last item.
        expected_last: u64,
    },
    /// The archive's format is newer than this build reads.
    #[error("history archive {archive}: {what} has format {found}; this build reads {supported} (upgrade nodestore)")]
    NewerFormat {
        /// The archive.
        archive: String,
        /// The object.
        what: String,
        /// Its format.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The archive's layout settings differ from the configuration.
    #[error("history archive {archive}: {what}")]
    Layout {
        /// The archive.
        archive: String,
        /// What differs.
        what: String,
    },
}

impl HistoryError {
    /// Whether the archive could not be reached (as opposed to refusing or holding bad data):
    /// the failures an upload retries and a read reports as unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, HistoryError::Unavailable { .. })
    }
}
