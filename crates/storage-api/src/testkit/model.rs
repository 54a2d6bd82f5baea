//! The proptest model test: random sequences of batches (puts, deletes, range deletes), point
//! and multi reads, scans in both directions, snapshots and reopens, applied to the backend
//! and to the in-memory oracle, whose answers must agree at every step.
//!
//! `NODE_STORAGE_PROPTEST_CASES` sets the number of cases (default 1,000).

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{Harness, Items, Pairs, suite_schema, tempdir};
use crate::batch::{Durability, KvWrite};
use crate::codec::{Blob, KeyCodec};
use crate::error::ReadError;
use crate::iter::{Direction, RawCursor, RawRange};
use crate::mem::MemStore;
use crate::read::KvRead;
use crate::schema::VersionPolicy;
use crate::store::{KvSnapshots, KvStore};
use crate::table::Table;

/// The raw contents of the model's tables (`items`, then `pairs`), each in key order.
pub type Dump = Vec<Entries>;

/// Owned raw entries in scan order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A multi-get, given the visitor to call.
type MultiGet<'a> = &'a dyn Fn(&mut dyn FnMut(usize, Option<&[u8]>)) -> Result<(), ReadError>;

/// Takes a snapshot of `store`, runs `during` (which writes to the store) and returns what the
/// snapshot shows afterwards. Passed to [`run`] by backends that have snapshots.
pub type SnapshotProbe<S> = fn(&S, &mut dyn FnMut(&S)) -> Result<Dump, ReadError>;

/// The [`SnapshotProbe`] of a backend with snapshots.
pub fn snapshot_probe<S: KvStore + KvSnapshots>(store: &S, during: &mut dyn FnMut(&S)) -> Result<Dump, ReadError> {
    let snap = store.snapshot();
    during(store);
    dump(&snap)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tbl {
    Items,
    Pairs,
}

impl Tbl {
    fn name(self) -> &'static str {
        match self {
            Tbl::Items => Items::NAME,
            Tbl::Pairs => Pairs::NAME,
        }
    }

    fn key(self, k: u16) -> Vec<u8> {
        match self {
            Tbl::Items => u32::from(k).to_key_bytes(),
            Tbl::Pairs => (k / 12, k % 12).to_key_bytes(),
        }
    }
}

#[derive(Debug, Clone)]
enum BatchOp {
    Put(Tbl, u16, Vec<u8>),
    Delete(Tbl, u16),
    DeleteRange(Tbl, u16, u16),
}

#[derive(Debug, Clone)]
enum ModelOp {
    Write(Vec<BatchOp>, Durability),
    Get(Tbl, u16),
    MultiGet(Tbl, Vec<u16>),
    Scan(Tbl, Option<u16>, Option<u16>, Direction),
    Snapshot(Vec<(Vec<BatchOp>, Durability)>),
    Reopen,
}

fn table() -> impl Strategy<Value = Tbl> {
    prop_oneof![Just(Tbl::Items), Just(Tbl::Pairs)]
}

fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        4 => (table(), 0u16..48, vec(any::<u8>(), 0..12)).prop_map(|(t, k, v)| BatchOp::Put(t, k, v)),
        2 => (table(), 0u16..48).prop_map(|(t, k)| BatchOp::Delete(t, k)),
        1 => (table(), 0u16..48, 0u16..48).prop_map(|(t, a, b)| BatchOp::DeleteRange(t, a.min(b), a.max(b))),
    ]
}

fn write() -> impl Strategy<Value = (Vec<BatchOp>, Durability)> {
    (vec(batch_op(), 1..8), prop_oneof![4 => Just(Durability::Buffered), 1 => Just(Durability::Synced)])
}

fn model_op(snapshots: bool, persistent: bool) -> impl Strategy<Value = ModelOp> {
    let dir = prop_oneof![Just(Direction::Forward), Just(Direction::Reverse)];
    let mut arms: Vec<(u32, BoxedStrategy<ModelOp>)> = vec![
        (6, write().prop_map(|(ops, d)| ModelOp::Write(ops, d)).boxed()),
        (2, (table(), 0u16..50).prop_map(|(t, k)| ModelOp::Get(t, k)).boxed()),
        (1, (table(), vec(0u16..50, 0..6)).prop_map(|(t, ks)| ModelOp::MultiGet(t, ks)).boxed()),
        (
            3,
            (table(), proptest::option::of(0u16..50), proptest::option::of(0u16..50), dir)
                .prop_map(|(t, a, b, d)| ModelOp::Scan(t, a, b, d))
                .boxed(),
        ),
    ];
    if snapshots {
        arms.push((1, vec(write(), 1..4).prop_map(ModelOp::Snapshot).boxed()));
    }
    if persistent {
        arms.push((1, Just(ModelOp::Reopen).boxed()));
    }
    Union::new_weighted(arms)
}

fn apply<S: KvWrite>(store: &S, ops: &[BatchOp], durability: Durability) -> Result<(), TestCaseError> {
    let mut batch = store.batch();
    for op in ops {
        let raw = batch.raw_mut();
        let result = match op {
            BatchOp::Put(t, k, v) => {
                let mut value = vec![Blob::FORMAT_VERSION];
                value.extend_from_slice(v);
                crate::batch::RawBatch::put_raw(raw, t.name(), &t.key(*k), &value)
            }
            BatchOp::Delete(t, k) => crate::batch::RawBatch::delete_raw(raw, t.name(), &t.key(*k)),
            BatchOp::DeleteRange(t, a, b) => {
                let range = RawRange { lower: Some(t.key(*a)), upper: Some(t.key(*b)) };
                if range.is_empty() { Ok(()) } else { crate::batch::RawBatch::delete_range_raw(raw, t.name(), &range) }
            }
        };
        result.map_err(|e| TestCaseError::fail(format!("batch op {op:?}: {e}")))?;
    }
    store.write(batch, durability).map_err(|e| TestCaseError::fail(format!("write: {e}")))
}

fn scan<S: KvRead>(s: &S, t: Tbl, range: RawRange, dir: Direction) -> Result<Entries, ReadError> {
    let mut cursor = s.cursor(t.name(), range, dir)?;
    let mut out = Vec::new();
    while let Some(entry) = cursor.next_entry() {
        let (k, v) = entry?;
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

/// Both model tables, forward; reverse scans are checked against the forward order.
fn dump<S: KvRead>(s: &S) -> Result<Dump, ReadError> {
    let mut out = Vec::new();
    for t in [Tbl::Items, Tbl::Pairs] {
        let fwd = scan(s, t, RawRange::all(), Direction::Forward)?;
        let mut rev = scan(s, t, RawRange::all(), Direction::Reverse)?;
        rev.reverse();
        assert_eq!(fwd, rev, "reverse scan of {} disagrees with forward scan", t.name());
        out.push(fwd);
    }
    Ok(out)
}

fn fail(what: &str, e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {e}"))
}

fn run_case<H: Harness>(ops: &[ModelOp], probe: Option<SnapshotProbe<H::Store>>) -> Result<(), TestCaseError> {
    let dir = tempdir();
    let open = || H::open(dir.path(), suite_schema(1), VersionPolicy::Exact).map_err(|e| fail("open", e));
    let oracle = MemStore::new(suite_schema(1));
    let mut store = Some(open()?);
    for (step, op) in ops.iter().enumerate() {
        let s = store.as_ref().expect("store open");
        match op {
            ModelOp::Write(batch, d) => {
                apply(&oracle, batch, *d)?;
                apply(s, batch, *d)?;
            }
            ModelOp::Get(t, k) => {
                let key = t.key(*k);
                let want = oracle.get_raw_with(t.name(), &key, <[u8]>::to_vec).map_err(|e| fail("oracle", e))?;
                let got = s.get_raw_with(t.name(), &key, <[u8]>::to_vec).map_err(|e| fail("get", e))?;
                prop_assert_eq!(got, want, "step {}: get", step);
            }
            ModelOp::MultiGet(t, ks) => {
                let keys: Vec<Vec<u8>> = ks.iter().map(|k| t.key(*k)).collect();
                let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
                let collect = |st: MultiGet<'_>| {
                    let mut out = Vec::new();
                    st(&mut |i, v| out.push((i, v.map(<[u8]>::to_vec)))).map(|_| out)
                };
                let want =
                    collect(&|f| oracle.multi_get_raw_with(t.name(), &refs, f)).map_err(|e| fail("oracle", e))?;
                let got = collect(&|f| s.multi_get_raw_with(t.name(), &refs, f)).map_err(|e| fail("multi_get", e))?;
                prop_assert_eq!(got, want, "step {}: multi_get", step);
            }
            ModelOp::Scan(t, a, b, d) => {
                let range = RawRange { lower: a.map(|k| t.key(k)), upper: b.map(|k| t.key(k)) };
                let want = scan(&oracle, *t, range.clone(), *d).map_err(|e| fail("oracle", e))?;
                let got = scan(s, *t, range, *d).map_err(|e| fail("scan", e))?;
                prop_assert_eq!(got, want, "step {}: scan {:?}", step, op);
            }
            ModelOp::Snapshot(writes) => {
                let oracle_snap = oracle.snapshot();
                let mut error = None;
                let mut during = |st: &H::Store| {
                    for (batch, d) in writes {
                        if let Err(e) = apply(&oracle, batch, *d).and_then(|_| apply(st, batch, *d)) {
                            error.get_or_insert(e);
                        }
                    }
                };
                let seen = match probe {
                    Some(probe) => Some(probe(s, &mut during).map_err(|e| fail("snapshot", e))?),
                    None => {
                        during(s);
                        None
                    }
                };
                if let Some(e) = error {
                    return Err(e);
                }
                if let Some(seen) = seen {
                    prop_assert_eq!(
                        seen,
                        dump(&oracle_snap).map_err(|e| fail("oracle", e))?,
                        "step {}: snapshot",
                        step
                    );
                }
            }
            ModelOp::Reopen => {
                drop(store.take());
                store = Some(open()?);
            }
        }
    }
    let s = store.as_ref().expect("store open");
    prop_assert_eq!(dump(s).map_err(|e| fail("dump", e))?, dump(&oracle).map_err(|e| fail("oracle", e))?);
    Ok(())
}

/// The number of cases per backend: `NODE_STORAGE_PROPTEST_CASES`, else 1,000.
pub fn cases() -> u32 {
    std::env::var("NODE_STORAGE_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(1000)
}

/// Runs the model test for backend `H`; `probe` enables snapshot operations.
pub fn run<H: Harness>(probe: Option<SnapshotProbe<H::Store>>) {
    let config = Config { cases: cases(), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let strategy = vec(model_op(probe.is_some(), H::PERSISTENT), 1..24);
    if let Err(e) = runner.run(&strategy, |ops| run_case::<H>(&ops, probe)) {
        panic!("{} backend disagrees with the in-memory oracle: {e}", <H::Store as crate::store::KvReader>::BACKEND);
    }
}
