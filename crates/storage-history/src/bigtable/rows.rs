//! Building, sending and reading rows: mutation batches (sent in bounded requests, every
//! entry's status checked), point reads by key and range scans, and the read-back comparison.

use std::collections::BTreeMap;

use bigtable_rs::bigtable::BigTable;
use bigtable_rs::google::bigtable::v2::mutation::{self, SetCell};
use bigtable_rs::google::bigtable::v2::row_filter::{Chain, Filter};
use bigtable_rs::google::bigtable::v2::row_range::{EndKey, StartKey};
use bigtable_rs::google::bigtable::v2::{
    MutateRowsRequest, Mutation, ReadRowsRequest, RowFilter, RowRange, RowSet, mutate_rows_request,
};
use futures::StreamExt;

use super::keys::{FAMILY, TIMESTAMP};
use crate::error::HistoryError;

/// Entries per MutateRows request (the service takes up to 100,000 mutations).
const ENTRIES_PER_REQUEST: usize = 2_000;
/// Cell bytes per MutateRows request (gRPC servers refuse messages over 4 MiB by default).
const BYTES_PER_REQUEST: u64 = 3 << 20;

/// A row's cells by qualifier (the newest version only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cells(BTreeMap<Vec<u8>, Vec<u8>>);

impl Cells {
    pub(crate) fn get(&self, qualifier: &[u8]) -> Option<&[u8]> {
        self.0.get(qualifier).map(Vec::as_slice)
    }

    /// Bytes of the values.
    pub(crate) fn bytes(&self) -> u64 {
        self.0.values().map(|v| v.len() as u64).sum()
    }
}

/// Rows to write: key → cells, in key order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Mutations {
    rows: BTreeMap<Vec<u8>, Cells>,
}

/// One row being built.
pub(crate) struct RowBuilder<'a>(&'a mut Cells);

impl RowBuilder<'_> {
    pub(crate) fn set(self, qualifier: &[u8], value: Vec<u8>) -> Self {
        self.0.0.insert(qualifier.to_vec(), value);
        self
    }
}

impl Mutations {
    pub(crate) fn row(&mut self, key: Vec<u8>) -> RowBuilder<'_> {
        RowBuilder(self.rows.entry(key).or_default())
    }

    pub(crate) fn row_keys(&self) -> Vec<Vec<u8>> {
        self.rows.keys().cloned().collect()
    }

    /// Bytes of keys and values.
    pub(crate) fn bytes(&self) -> u64 {
        self.rows.iter().map(|(k, c)| k.len() as u64 + c.bytes()).sum()
    }

    /// Writes every row in bounded MutateRows requests; any entry the service did not apply
    /// fails the whole send (a retry rewrites the same cells).
    pub(crate) async fn send(&self, client: &mut BigTable, shown: &str, table: &str) -> Result<(), HistoryError> {
        let mut entries = Vec::new();
        let mut bytes = 0u64;
        for (key, cells) in &self.rows {
            let mutations = cells
                .0
                .iter()
                .map(|(q, v)| Mutation {
                    mutation: Some(mutation::Mutation::SetCell(SetCell {
                        family_name: FAMILY.to_owned(),
                        column_qualifier: q.clone(),
                        timestamp_micros: TIMESTAMP,
                        value: v.clone(),
                    })),
                })
                .collect();
            bytes += key.len() as u64 + cells.bytes();
            entries.push(mutate_rows_request::Entry { row_key: key.clone(), mutations, idempotency: None });
            if entries.len() >= ENTRIES_PER_REQUEST || bytes >= BYTES_PER_REQUEST {
                send_entries(client, shown, table, std::mem::take(&mut entries)).await?;
                bytes = 0;
            }
        }
        if !entries.is_empty() {
            send_entries(client, shown, table, entries).await?;
        }
        Ok(())
    }

    /// Whether `found` holds every row and cell of these mutations with the same bytes.
    pub(crate) fn compare(&self, found: &[(Vec<u8>, Cells)]) -> Result<(), String> {
        let found: BTreeMap<&[u8], &Cells> = found.iter().map(|(k, c)| (k.as_slice(), c)).collect();
        for (key, cells) in &self.rows {
            let shown = || String::from_utf8_lossy(key).into_owned();
            let Some(stored) = found.get(key.as_slice()) else {
                return Err(format!("row {} is missing", shown()));
            };
            for (q, v) in &cells.0 {
                if stored.get(q) != Some(v.as_slice()) {
                    return Err(format!(
                        "row {} cell {} differs from what was written",
                        shown(),
                        String::from_utf8_lossy(q)
                    ));
                }
            }
        }
        Ok(())
    }
}

async fn send_entries(
    client: &mut BigTable,
    shown: &str,
    table: &str,
    entries: Vec<mutate_rows_request::Entry>,
) -> Result<(), HistoryError> {
    let count = entries.len();
    let request = MutateRowsRequest { table_name: table.to_owned(), entries, ..MutateRowsRequest::default() };
    let mut stream = client.mutate_rows(request).await.map_err(|e| super::failed(shown, "writing rows", table, e))?;
    let mut acknowledged = 0usize;
    while let Some(response) = stream.next().await {
        let response =
            response.map_err(|s| super::status_error(shown.to_owned(), "writing rows".to_owned(), table, s))?;
        for entry in response.entries {
            acknowledged += 1;
            if let Some(status) = entry.status.filter(|s| s.code != 0) {
                let status = tonic::Status::new(tonic::Code::from_i32(status.code), status.message);
                return Err(super::status_error(shown.to_owned(), "writing rows".to_owned(), table, status));
            }
        }
    }
    if acknowledged != count {
        return Err(HistoryError::Unavailable {
            archive: shown.to_owned(),
            action: "writing rows".to_owned(),
            reason: format!("the service answered for {acknowledged} of {count} rows"),
        });
    }
    Ok(())
}

/// Sets cell `qualifier` of row `key` to `value` only if the cell holds exactly `expected`
/// now (absent when `expected` is `None`), in one `CheckAndMutateRow` (atomic per row); `false`
/// when it did not.
pub(crate) async fn set_if(
    client: &mut BigTable,
    shown: &str,
    table: &str,
    key: Vec<u8>,
    qualifier: &'static [u8],
    expected: Option<Vec<u8>>,
    value: Vec<u8>,
) -> Result<bool, HistoryError> {
    use bigtable_rs::google::bigtable::v2::value_range::{EndValue, StartValue};
    use bigtable_rs::google::bigtable::v2::{CheckAndMutateRowRequest, ValueRange};
    let set = vec![Mutation {
        mutation: Some(mutation::Mutation::SetCell(SetCell {
            family_name: FAMILY.to_owned(),
            column_qualifier: qualifier.to_vec(),
            timestamp_micros: TIMESTAMP,
            value,
        })),
    }];
    let column = RowFilter { filter: Some(Filter::ColumnQualifierRegexFilter(regex_literal(qualifier))) };
    let newest = RowFilter { filter: Some(Filter::CellsPerColumnLimitFilter(1)) };
    // Matches when the cell holds `expected` (then the write applies), or when it exists at all
    // (for an expected absence: then nothing is written).
    let mut predicate = vec![column, newest];
    if let Some(old) = &expected {
        predicate.push(RowFilter {
            filter: Some(Filter::ValueRangeFilter(ValueRange {
                start_value: Some(StartValue::StartValueClosed(old.clone())),
                end_value: Some(EndValue::EndValueClosed(old.clone())),
            })),
        });
    }
    let (true_mutations, false_mutations) = if expected.is_some() { (set, Vec::new()) } else { (Vec::new(), set) };
    let request = CheckAndMutateRowRequest {
        table_name: table.to_owned(),
        row_key: key,
        predicate_filter: Some(RowFilter { filter: Some(Filter::Chain(Chain { filters: predicate })) }),
        true_mutations,
        false_mutations,
        ..CheckAndMutateRowRequest::default()
    };
    let response = client
        .check_and_mutate_row(request)
        .await
        .map_err(|e| super::failed(shown, "writing the watermark", table, e))?;
    Ok(response.predicate_matched == expected.is_some())
}

/// The newest version of each cell, optionally of one column only.
fn filter(only: Option<&'static [u8]>) -> RowFilter {
    let newest = RowFilter { filter: Some(Filter::CellsPerColumnLimitFilter(1)) };
    match only {
        None => newest,
        Some(q) => RowFilter {
            filter: Some(Filter::Chain(Chain {
                filters: vec![RowFilter { filter: Some(Filter::ColumnQualifierRegexFilter(regex_literal(q))) }, newest],
            })),
        },
    }
}

/// `q` as an RE2 pattern matching exactly it.
fn regex_literal(q: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(q.len() * 2);
    for &b in q {
        if !b.is_ascii_alphanumeric() {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

async fn read(
    client: &mut BigTable,
    shown: &str,
    table: &str,
    rows: RowSet,
    only: Option<&'static [u8]>,
) -> Result<Vec<(Vec<u8>, Cells)>, HistoryError> {
    let request = ReadRowsRequest {
        table_name: table.to_owned(),
        rows: Some(rows),
        filter: Some(filter(only)),
        ..ReadRowsRequest::default()
    };
    let rows = client.read_rows(request).await.map_err(|e| super::failed(shown, "reading rows", table, e))?;
    Ok(rows
        .into_iter()
        .map(|(key, cells)| (key, Cells(cells.into_iter().map(|c| (c.qualifier, c.value)).collect())))
        .collect())
}

/// The rows with these keys (absent ones are left out), in key order.
pub(crate) async fn read_keys(
    client: &mut BigTable,
    shown: &str,
    table: &str,
    keys: Vec<Vec<u8>>,
    only: Option<&'static [u8]>,
    per_request: usize,
) -> Result<Vec<(Vec<u8>, Cells)>, HistoryError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(per_request) {
        let set = RowSet { row_keys: chunk.to_vec(), row_ranges: Vec::new() };
        out.extend(read(client, shown, table, set, only).await?);
    }
    Ok(out)
}

/// The rows with keys `from..=to`, in key order.
pub(crate) async fn read_range(
    client: &mut BigTable,
    shown: &str,
    table: &str,
    from: Vec<u8>,
    to: Vec<u8>,
    only: Option<&'static [u8]>,
) -> Result<Vec<(Vec<u8>, Cells)>, HistoryError> {
    let range = RowRange { start_key: Some(StartKey::StartKeyClosed(from)), end_key: Some(EndKey::EndKeyClosed(to)) };
    read(client, shown, table, RowSet { row_keys: Vec::new(), row_ranges: vec![range] }, only).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_finds_missing_rows_and_changed_cells() {
        let mut m = Mutations::default();
        m.row(b"a".to_vec()).set(b"r", vec![1, 2]).set(b"h", vec![3]);
        m.row(b"b".to_vec()).set(b"r", vec![4]);
        let cells = |pairs: &[(&[u8], &[u8])]| Cells(pairs.iter().map(|(q, v)| (q.to_vec(), v.to_vec())).collect());
        let good =
            vec![(b"a".to_vec(), cells(&[(b"r", &[1, 2]), (b"h", &[3])])), (b"b".to_vec(), cells(&[(b"r", &[4])]))];
        m.compare(&good).unwrap();
        assert!(m.compare(&good[..1]).unwrap_err().contains("row b is missing"));
        let mut changed = good.clone();
        changed[0].1 = cells(&[(b"r", &[1, 9]), (b"h", &[3])]);
        assert!(m.compare(&changed).unwrap_err().contains("cell r differs"));
        assert_eq!(m.bytes(), 1 + 3 + 1 + 1);
        assert_eq!(regex_literal(b"a.b"), b"a\\.b".to_vec());
    }
}
