//! The bulk import: same tables as block-by-block inserts, spilled runs, an interrupted range
//! rolled back, bad blocks refused. On every backend with the ingest capability.

mod common;

use chain_store::schema::{
    Bodies, ChainMeta, State, StateChanges, StateRoots, Transactions, TrieLeaves, TrieNodes, TrieRoots, TxIndex,
};
use chain_store::synthetic::Synthetic;
use chain_store::{BulkOptions, ChainError, ChainStore, SECTION_SIZE, chain_schema};
use common::{Fx, build, fixture, generator};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::{Direction, Ingest, KvIngest, KvStore, RawRange, Table};

/// Every entry of every table but the meta table (whose pointers differ: a bulk import moves
/// safe and finalized with the head) and the per-block state roots (a bulk import computes the
/// root once per range, so it records only each range's last block), then the head's state root.
fn dump<S: KvStore>(chain: &ChainStore<S, Synthetic>) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let store = chain.store();
    let mut out = Vec::new();
    for t in store.schema().physical_tables() {
        if t == ChainMeta::<Synthetic>::NAME
            || t == StateRoots::<Synthetic>::NAME
            || t == storage_api::table::META_TABLE
        {
            continue;
        }
        let mut c = store.cursor(t, RawRange::all(), Direction::Forward).unwrap();
        while let Some(e) = storage_api::iter::RawCursor::next_entry(&mut c) {
            let (k, v) = e.unwrap();
            out.push((t, k.to_vec(), v.to_vec()));
        }
    }
    out.push(("head state root", Vec::new(), chain.state_root().unwrap().to_vec()));
    out
}

fn options(fx_dir: &std::path::Path, range_blocks: u64, budget: usize) -> BulkOptions {
    BulkOptions { range_blocks, memory_budget: budget, ..BulkOptions::new(fx_dir.join("scratch")) }
}

/// Bulk-imported blocks leave exactly the tables block-by-block inserts leave, across range
/// and bloom-section boundaries and with runs spilled to disk; the integrity check is clean.
fn same_tables_as_inserts<S: KvIngest>(fx: Fx<S>) {
    let n = SECTION_SIZE as usize + 200;
    let reference = common::memory();
    let blocks = build(&reference, &mut generator(2, 7), n);
    fx.init(&blocks[0]).unwrap();
    let mut import = fx.bulk_import(options(fx.dir.path(), 1_000, 1 << 16)).unwrap();
    for b in &blocks[1..] {
        import.push(b).unwrap();
    }
    let report = import.finish().unwrap();
    assert_eq!(report.blocks, n as u64);
    assert_eq!(report.ranges, n.div_ceil(1_000) as u64);
    assert!(report.spilled_runs > 0, "a 64 KiB budget spills: {report:?}");
    assert_eq!(fx.head(), reference.head());
    assert_eq!(fx.finalized(), reference.head(), "imported history is final");
    assert_eq!(fx.pointers().bloom_sections, 1);
    let (got, want) = (dump(&fx.chain), dump(&reference.chain));
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "first difference in table {}", w.0);
    }
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(std::fs::read_dir(fx.dir.path().join("scratch")).unwrap().count(), 0, "scratch files removed");
    // Live inserts continue on top.
    let mut g = generator(2, 7);
    g.next_blocks();
    let more = g.generate(n + 5);
    fx.insert_blocks(&more[n..]).unwrap();
    assert_eq!(fx.head().unwrap().number, n as u64 + 5);
}

/// A range interrupted while committing (some tables ingested, the pending record written)
/// refuses writes, and the next import rolls it back to exactly the last committed range.
fn interrupted_range_rolls_back<S: KvIngest>(fx: Fx<S>) {
    let full = common::memory();
    let blocks = build(&full, &mut generator(3, 11), 300);

    fx.init(&blocks[0]).unwrap();
    let mut import = fx.bulk_import(options(fx.dir.path(), 200, 1 << 20)).unwrap();
    for b in &blocks[1..=200] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    let before = dump(&fx.chain);
    // The crash: the pending record for 201..=300, then part of what the range ingests (its
    // height-keyed tables, half its transaction index, all of its state).
    let store = fx.chain.store();
    let pending =
        chain_store::schema::Stored(chain_store::schema::MetaValue::<chain_store::synthetic::B256>::Range(201, 300));
    let mut batch = store.batch();
    batch.put::<ChainMeta<Synthetic>>(&(chain_store::schema::MetaKey::BulkPending as u8), &pending).unwrap();
    store.write(batch, storage_api::Durability::Synced).unwrap();
    let mut ing = store.ingest().unwrap();
    for (t, k, v) in dump(&full.chain) {
        let height = u64::from_be_bytes(k[..8.min(k.len())].try_into().unwrap_or([0; 8]));
        let height_keyed =
            [Bodies::<Synthetic>::NAME, Transactions::<Synthetic>::NAME, StateChanges::<Synthetic>::NAME].contains(&t);
        if (height_keyed && (201..=300).contains(&height))
            || (t == TxIndex::<Synthetic>::NAME && k[0] < 0x80)
            || t == "state"
        {
            ing.put(t, &k, &v).unwrap();
        }
    }
    ing.commit().unwrap();
    let chain = ChainStore::<S, Synthetic>::new(fx.chain.into_inner()).unwrap();
    assert_eq!(chain.pending_import(), Some((201, 300)));
    let report = chain.check().unwrap();
    assert!(report.examples.iter().any(|p| p.what.contains("201..=300 was interrupted")), "{report}");
    let err = chain.insert_blocks(&blocks[201..=202]).unwrap_err();
    assert!(matches!(err, ChainError::ImportPending { from: 201, to: 300 }), "{err}");
    // Resuming rolls the range back first.
    let mut import = chain.bulk_import(options(fx.dir.path(), 200, 1 << 20)).unwrap();
    assert_eq!(chain.pending_import(), None);
    let after: Vec<_> = dump(&chain);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "rolled back to the committed range (table {})", b.0);
    }
    for b in &blocks[201..] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    let (got, want) = (dump(&chain), dump(&full.chain));
    assert_eq!(got, want);
    assert!(chain.check().unwrap().is_ok());
}

/// A block that does not extend the head, or whose body does not match its header, is
/// refused; nothing of the refused block's range is committed.
fn bad_blocks_are_refused<S: KvIngest>(fx: Fx<S>) {
    let reference = common::memory();
    let blocks = build(&reference, &mut generator(2, 5), 20);
    fx.init(&blocks[0]).unwrap();
    let mut import = fx.bulk_import(options(fx.dir.path(), 100, 1 << 20)).unwrap();
    let err = import.push(&blocks[2]).unwrap_err();
    assert!(matches!(err, ChainError::NotExtendingHead { number: 2, .. }), "{err}");
    import.push(&blocks[1]).unwrap();
    let mut tampered = blocks[2].clone();
    tampered.block.transactions[0].value += 1;
    let err = import.push(&tampered).unwrap_err();
    assert!(matches!(err, ChainError::BodyMismatch { .. }), "{err}");
    drop(import);
    assert_eq!(fx.head().unwrap().number, 0, "an unfinished range is not committed");
    assert_eq!(fx.block_by_number(1).unwrap(), None);
    assert_eq!(fx.pending_import(), None, "a dropped import removes its pending record");
    fx.insert_blocks(&blocks[1..]).unwrap();
}

/// `push_all` (blocks checked on worker threads) stores exactly what `push` stores, and stops
/// at a bad block with the blocks before it kept in the open range.
fn pipelined_pushes_match_pushes<S: KvIngest>(fx: Fx<S>) {
    let reference = common::memory();
    let blocks = build(&reference, &mut generator(3, 17), 450);
    fx.init(&blocks[0]).unwrap();
    let mut import = fx.bulk_import(BulkOptions { threads: 3, ..options(fx.dir.path(), 100, 1 << 18) }).unwrap();
    let mut seen = Vec::new();
    let mut tampered = blocks[301].clone();
    tampered.block.transactions[1].value += 1;
    let input = blocks[1..301].iter().cloned().chain(std::iter::once(tampered));
    let err = import.push_all(input, Ok::<_, ChainError>, &mut |b| seen.push(b.block.number())).unwrap_err();
    assert!(matches!(err, ChainError::BodyMismatch { .. }), "{err}");
    assert_eq!(seen, (1..=300).collect::<Vec<u64>>(), "every block before the bad one, in order");
    assert_eq!(import.head().number, 300);
    let pushed = import.push_all(blocks[301..].iter().cloned(), Ok::<_, ChainError>, &mut |_| {}).unwrap();
    assert_eq!(pushed, 150);
    import.finish().unwrap();
    assert_eq!(dump(&fx.chain), dump(&reference.chain));
    assert!(fx.check().unwrap().is_ok());
}

/// Side blocks above the head — stored on another branch, or reverted by
/// `set_canonical_head` — are not the import's: a discarded import leaves every table as it
/// found them (their state writes are not "restored" into the canonical state, their
/// transactions keep their index entries), and an import that re-imports one of them as
/// canonical and is discarded leaves it a readable side block again.
fn rollback_touches_only_the_imports_blocks<S: KvIngest>(fx: Fx<S>) {
    let mut g = generator(3, 29);
    let genesis = g.next_blocks().remove(0);
    let a1 = g.child(Some(&genesis.block.header));
    let a2 = g.child(Some(&a1.block.header));
    let b1 = g.child(Some(&genesis.block.header));
    let b2 = g.child(Some(&b1.block.header));
    let b3 = g.child(Some(&b2.block.header));
    let b4 = g.child(Some(&b3.block.header));
    fx.init(&genesis).unwrap();
    fx.insert_blocks(&[a1.clone(), a2.clone(), b1.clone()]).unwrap();
    fx.set_canonical_head(&b1.block.hash()).unwrap();
    let before = dump(&fx.chain);
    assert!(fx.check().unwrap().is_ok());

    // Discarded: nothing of the store changes.
    let mut import = fx.bulk_import(options(fx.dir.path(), 100, 1 << 20)).unwrap();
    import.push(&b2).unwrap();
    import.discard().unwrap();
    drop(import);
    assert_eq!(dump(&fx.chain), before, "a discarded import changes nothing");
    assert_eq!(fx.block(&a2.block.hash()).unwrap().map(|b| b.hash()), Some(a2.block.hash()));
    assert!(fx.check().unwrap().is_ok());

    // B2 stored, then reverted: a side block above the head that the import brings again.
    fx.insert_blocks(std::slice::from_ref(&b2)).unwrap();
    fx.set_canonical_head(&b1.block.hash()).unwrap();
    let before = dump(&fx.chain);
    let mut import = fx.bulk_import(options(fx.dir.path(), 100, 1 << 20)).unwrap();
    import.push(&b2).unwrap();
    import.push(&b3).unwrap();
    drop(import);
    assert_eq!(dump(&fx.chain), before, "a dropped import changes nothing");
    assert_eq!(fx.block(&b2.block.hash()).unwrap().map(|b| b.hash()), Some(b2.block.hash()), "B2 still stored");
    assert!(fx.check().unwrap().is_ok());

    // Committed, it extends the head over B2; the other branch stays readable.
    let mut import = fx.bulk_import(options(fx.dir.path(), 100, 1 << 20)).unwrap();
    for b in [&b2, &b3, &b4] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    assert_eq!(fx.head().unwrap().hash, b4.block.hash());
    assert_eq!(fx.block(&a2.block.hash()).unwrap().map(|b| b.hash()), Some(a2.block.hash()));
    let reference = common::memory();
    reference.init(&genesis).unwrap();
    reference.insert_blocks(&[a1.clone(), a2.clone(), b1.clone()]).unwrap();
    reference.insert_blocks(std::slice::from_ref(&b2)).unwrap();
    reference.set_canonical_head(&b1.block.hash()).unwrap();
    reference.insert_blocks(&[b3.clone(), b4.clone()]).unwrap();
    reference.set_canonical_head(&b4.block.hash()).unwrap();
    assert_eq!(dump(&fx.chain), dump(&reference.chain), "the same tables as inserts");
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{report}");
}

/// A commit that fails (here: its spilled runs are gone) rolls the range back and says so
/// until the caller discards: a retried `commit` or `finish` never reports success for blocks
/// it did not commit.
fn a_failed_commit_is_not_retried_into_success<S: KvIngest>(fx: Fx<S>) {
    let reference = common::memory();
    let blocks = build(&reference, &mut generator(20, 31), 500);
    fx.init(&blocks[0]).unwrap();
    let scratch = fx.dir.path().join("scratch");
    let mut import = fx.bulk_import(options(fx.dir.path(), 1_000, 1 << 10)).unwrap();
    for b in &blocks[1..=400] {
        import.push(b).unwrap();
    }
    assert!(std::fs::read_dir(&scratch).unwrap().count() > 0, "runs were spilled");
    std::fs::remove_dir_all(&scratch).unwrap();
    let err = import.commit().unwrap_err();
    assert!(!matches!(err, ChainError::RangeLost { .. }), "the first error is the cause: {err}");
    for _ in 0..2 {
        let again = import.commit().unwrap_err();
        assert!(matches!(again, ChainError::RangeLost { from: 1, .. }), "{again}");
    }
    let err = import.push(&blocks[401]).unwrap_err();
    assert!(matches!(err, ChainError::RangeLost { .. }), "{err}");
    assert_eq!(fx.head().unwrap().number, 0);
    assert_eq!(fx.pending_import(), None);
    assert!(fx.check().unwrap().is_ok());
    // Acknowledged: the import goes on from the committed head.
    import.discard().unwrap();
    std::fs::create_dir_all(&scratch).unwrap();
    for b in &blocks[1..] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    assert_eq!(fx.head(), reference.head());
    assert_eq!(dump(&fx.chain), dump(&reference.chain));
}

/// Entries of table `name`.
fn entries<S: KvStore>(store: &S, name: &'static str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut c = store.cursor(name, RawRange::all(), Direction::Forward).unwrap();
    let mut out = Vec::new();
    while let Some(e) = storage_api::iter::RawCursor::next_entry(&mut c) {
        let (k, v) = e.unwrap();
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

/// Entries of the trie's tables and of the per-block state roots.
fn trie_entries<S: KvStore>(store: &S) -> usize {
    [TrieLeaves::<Synthetic>::NAME, TrieNodes::<Synthetic>::NAME, TrieRoots::<Synthetic>::NAME]
        .into_iter()
        .map(|t| entries(store, t).len())
        .sum()
}

/// A store kept without the state trie (`with_state_trie(false)`): neither inserts, a bulk
/// import nor a reorg writes a trie entry or a state root, and the flat state is the one a
/// store with the trie holds. A rebuild then gives the same root as the store that kept it all
/// along, inserts keep it from there, and dropping it leaves the trie tables empty again.
fn a_store_without_the_trie_writes_none<S: KvIngest>(fx: Fx<S>) {
    let Fx { chain, dir } = fx;
    let chain = chain.with_state_trie(false);
    let reference = common::memory();
    let blocks = build(&reference, &mut generator(3, 21), 600);
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..200]).unwrap();
    let mut import = chain.bulk_import(options(dir.path(), 150, 1 << 16)).unwrap();
    for b in &blocks[200..500] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    chain.insert_blocks(&blocks[500..]).unwrap();
    assert_eq!(chain.head(), reference.head());
    assert!(!chain.pointers().state_trie);
    assert!(!chain.has_state_trie().unwrap());
    assert_eq!(trie_entries(chain.store()), 0, "no trie entries");
    assert!(entries(chain.store(), StateRoots::<Synthetic>::NAME).is_empty(), "no state roots");
    assert!(matches!(chain.state_root(), Err(ChainError::NoStateTrie)));
    assert_eq!(entries(chain.store(), State::<Synthetic>::NAME), entries(reference.store(), State::<Synthetic>::NAME));
    let report = chain.check().unwrap();
    assert!(report.is_ok(), "{report}");

    // Switched on later: built from the flat state, then kept by every insert.
    let built = chain.rebuild_state_trie(false, &|_| {}).unwrap();
    assert_eq!(built.stored_root, None);
    assert_eq!(chain.state_root().unwrap(), reference.state_root().unwrap());
    let mut g = generator(3, 21);
    g.next_blocks();
    let more = g.generate(610);
    reference.insert_blocks(&more[600..]).unwrap();
    chain.insert_blocks(&more[600..]).unwrap();
    assert_eq!(chain.state_root().unwrap(), reference.state_root().unwrap(), "kept after the rebuild");
    assert!(chain.check_state_trie(&|_| {}).unwrap().matches());

    // Switched off again: the tables go, and inserts leave them empty.
    assert!(chain.drop_state_trie().unwrap());
    assert!(!chain.drop_state_trie().unwrap(), "nothing left to drop");
    assert_eq!(trie_entries(chain.store()), 0);
    let more = g.generate(5);
    chain.insert_blocks(&more).unwrap();
    assert_eq!(trie_entries(chain.store()), 0, "inserts after the drop keep no trie");
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [same_tables_as_inserts, a_store_without_the_trie_writes_none, interrupted_range_rolls_back, bad_blocks_are_refused, pipelined_pushes_match_pushes, rollback_touches_only_the_imports_blocks, a_failed_commit_is_not_retried_into_success]);

/// Blocks of the SIGKILL test: a deterministic chain, genesis first.
fn kill_chain() -> Vec<chain_store::NewBlock<Synthetic>> {
    let mut g = generator(4, 23);
    let mut all = vec![g.next_blocks().remove(0)];
    all.extend(g.generate(KILL_BLOCKS));
    all
}

const KILL_BLOCKS: usize = 600;
const KILL_RANGE: u64 = 40;

fn open_chain<E: TestEngine>(dir: &std::path::Path) -> ChainStore<E::Store, Synthetic> {
    ChainStore::new(E::open(dir, chain_schema::<Synthetic>()).unwrap()).unwrap()
}

/// The child half of `bulk_import_survives_sigkill_*`: imports [`kill_chain`] into the store
/// at `NODE_STORAGE_KILL_DIR` on engine `NODE_STORAGE_KILL_ENGINE`, resuming after whatever
/// is committed, printing `COMMITTED <head>` after each range.
#[test]
#[ignore = "run by bulk_import_survives_sigkill_* as a child process"]
fn bulk_kill_child() {
    let Ok(dir) = std::env::var("NODE_STORAGE_KILL_DIR") else { return };
    match std::env::var("NODE_STORAGE_KILL_ENGINE").as_deref() {
        Ok("redb") => import_until_killed::<Redb>(dir.as_ref()),
        _ => import_until_killed::<Rocks>(dir.as_ref()),
    }
}

fn import_until_killed<E: TestEngine>(dir: &std::path::Path)
where
    E::Store: KvIngest,
{
    let blocks = kill_chain();
    let chain = open_chain::<E>(dir);
    if chain.head().is_none() {
        chain.init(&blocks[0]).unwrap();
    }
    let mut import = chain.bulk_import(options(dir, KILL_RANGE, 1 << 16)).unwrap();
    let start = import.head().number as usize + 1;
    println!("START {}", start - 1);
    for b in &blocks[start..] {
        let before = import.committed_head();
        import.push(b).unwrap();
        if import.committed_head() != before {
            println!("COMMITTED {}", import.committed_head().unwrap().number);
        }
    }
    import.finish().unwrap();
    println!("DONE");
}

/// How the child is stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGKILL: the kernel keeps every write.
    Kill,
    /// A power cut on the fault-injecting file system: unsynced writes are lost too.
    PowerCut,
}

/// A bulk import stopped again and again, at moments spread over its ranges (during pushes
/// and during commits), reopens with every committed range, rolls back the one in progress,
/// and resumes to exactly the tables block-by-block inserts leave, checking clean.
fn bulk_import_survives<E: TestEngine>(stop: Stop)
where
    E::Store: KvIngest,
{
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = match stop {
        Stop::Kill => None,
        Stop::PowerCut => match fault_fs::mount_or_skip(&format!("power cuts during a bulk import on {}", E::NAME)) {
            Some(fs) => Some(fs),
            None => return,
        },
    };
    let dir = fs.as_ref().map_or_else(|| tmp.path().to_owned(), |fs| fs.path().join("chain"));
    let env = [("NODE_STORAGE_KILL_DIR", dir.as_os_str()), ("NODE_STORAGE_KILL_ENGINE", E::NAME.as_ref())];
    let mut committed = 0u64;
    for cycle in 0..6u64 {
        let killed = match fs.as_mut() {
            None => engine_test::child::run_and_kill(
                "bulk_kill_child",
                &env,
                std::time::Duration::from_millis(cycle * 7 % 23),
                |line| line.starts_with("COMMITTED"),
            ),
            Some(fs) => {
                let wait = std::time::Duration::from_millis(cycle * 17 % 45);
                let killed = engine_test::child::run_and_cut("bulk_kill_child", &env, "START", wait, || fs.power_off());
                fs.power_on(fault_fs::Cut { tear: cycle % 2 == 1, seed: cycle }).unwrap();
                killed
            }
        };
        let start: u64 =
            killed.lines.iter().find_map(|l| l.strip_prefix("START ")?.parse().ok()).expect("the child started");
        assert!(start >= committed, "{}: cycle {cycle}: resumed at {start}, below the committed {committed}", E::NAME);
        if let Some(last) = killed.lines.iter().rev().find_map(|l| l.strip_prefix("COMMITTED ")?.parse::<u64>().ok()) {
            committed = last;
        }
        let chain = open_chain::<E>(&dir);
        let head = chain.head().map_or(0, |h| h.number);
        assert!(head >= committed, "{}: cycle {cycle}: head {head} after the stop, {committed} was committed", E::NAME);
        if !killed.was_running || killed.lines.iter().any(|l| l == "DONE") {
            break;
        }
    }
    let blocks = kill_chain();
    let chain = open_chain::<E>(&dir);
    let mut import = chain.bulk_import(options(&dir, KILL_RANGE, 1 << 16)).unwrap();
    let start = import.head().number as usize + 1;
    for b in &blocks[start..] {
        import.push(b).unwrap();
    }
    import.finish().unwrap();
    let reference = common::memory();
    build(&reference, &mut generator(4, 23), KILL_BLOCKS);
    assert_eq!(dump(&chain), dump(&reference.chain), "{}", E::NAME);
    let report = chain.check().unwrap();
    assert!(report.is_ok(), "{}: {report}", E::NAME);
}

#[test]
fn bulk_import_survives_sigkill_rocksdb() {
    bulk_import_survives::<Rocks>(Stop::Kill);
}

#[test]
fn bulk_import_survives_sigkill_redb() {
    bulk_import_survives::<Redb>(Stop::Kill);
}

#[test]
fn bulk_import_survives_power_cuts_rocksdb() {
    bulk_import_survives::<Rocks>(Stop::PowerCut);
}

#[test]
fn bulk_import_survives_power_cuts_redb() {
    bulk_import_survives::<Redb>(Stop::PowerCut);
}
