//! The bloom-bit index over completed sections, across reorgs, and damaged values in every
//! table (found by the integrity check, reported as decode errors on read).

mod common;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::schema::{
    AddressIndex, BloomBitsTable, Bodies, Canonical, ChainMeta, Fixed, Headers, LogBloom, Receipts, State,
    StateChanges, Stored, Transactions, TxIndex,
};
use chain_store::synthetic::{Address, B256, Synthetic};
use chain_store::{AddressQuery, ChainError, ChainStore, Inserted, LogFilter, NewBlock, SECTION_SIZE, TxLocation};
use common::{Fx, fixture};
use storage_api::error::Part;
use storage_api::iter::RawCursor;
use storage_api::{Direction, KeyCodec, KvStore, RawBatch, RawRange, ReadError, Table};

fn tiny() -> ChainGenerator {
    ChainGenerator::new(GenConfig {
        txs_per_block: 1,
        accounts: 40,
        contracts: 30,
        logs_per_tx: 1.0,
        input_bytes: 0,
        marker_every: 700,
        seed: 11,
        ..GenConfig::default()
    })
}

fn build<S: KvStore>(chain: &ChainStore<S, Synthetic>, g: &mut ChainGenerator, n: usize) -> Vec<NewBlock<Synthetic>> {
    let genesis = g.next_blocks().remove(0);
    chain.init(&genesis).unwrap();
    let blocks = g.generate(n);
    for chunk in blocks.chunks(500) {
        chain.insert_blocks(chunk).unwrap();
    }
    std::iter::once(genesis).chain(blocks).collect()
}

fn brute(blocks: &[NewBlock<Synthetic>], f: &LogFilter<Address, B256>) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    for b in blocks.iter().filter(|b| (f.from..=f.to).contains(&b.block.header.number)) {
        let mut log_index = 0;
        for r in &b.receipts {
            for log in &r.logs {
                let ok = (f.addresses.is_empty() || f.addresses.contains(&log.address))
                    && f.topics
                        .iter()
                        .enumerate()
                        .all(|(p, a)| a.is_empty() || log.topics.get(p).is_some_and(|t| a.contains(t)));
                if ok {
                    out.push((b.block.header.number, log_index));
                }
                log_index += 1;
            }
        }
    }
    out
}

fn matches<S: KvStore>(chain: &ChainStore<S, Synthetic>, f: &LogFilter<Address, B256>) -> Vec<(u64, u32)> {
    chain.logs(f, usize::MAX).unwrap().iter().map(|m| (m.block_number, m.log_index)).collect()
}

fn filters() -> Vec<LogFilter<Address, B256>> {
    let top = 2 * SECTION_SIZE + 300;
    vec![
        LogFilter::range(0, top).addresses([ChainGenerator::marker_contract()]),
        LogFilter::range(100, top - 50).addresses([ChainGenerator::contract(29), ChainGenerator::contract(28)]),
        LogFilter::range(SECTION_SIZE - 200, SECTION_SIZE + 200).topic(0, [ChainGenerator::event_signature(3)]),
        LogFilter::range(0, top)
            .addresses([ChainGenerator::contract(0)])
            .topic(1, [chain_store::generator::word(ChainGenerator::account(5))]),
    ]
}

fn sections_answer_like_blooms<S: KvStore>(fx: Fx<S>) {
    let mut g = tiny();
    let mut blocks = build(&fx, &mut g, (2 * SECTION_SIZE + 300) as usize);
    assert_eq!(fx.pointers().bloom_sections, 2);
    for f in filters() {
        let expected = brute(&blocks, &f);
        assert!(!expected.is_empty(), "{f:?}");
        assert_eq!(matches(&fx, &f), expected, "{f:?}");
    }
    // Reorg out the end of section 1: the section is invalidated, then rebuilt as the new
    // branch passes its end.
    let fork_at = (2 * SECTION_SIZE - 20) as usize;
    let mut side = Vec::new();
    let mut parent = blocks[fork_at].block.header.clone();
    for _ in 0..400 {
        let b = g.child(Some(&parent));
        parent = b.block.header.clone();
        side.push(b);
    }
    assert!(fx.insert_blocks(&side).unwrap().iter().all(|i| *i == Inserted::Side));
    fx.set_canonical_head(&parent.hash).unwrap();
    assert_eq!(fx.pointers().bloom_sections, 2, "section 1 rebuilt from the new branch");
    blocks.truncate(fork_at + 1);
    blocks.extend(side);
    for f in filters() {
        assert_eq!(matches(&fx, &f), brute(&blocks, &f), "{f:?}");
    }
    // Rewind into section 1: it is no longer complete.
    fx.set_canonical_head(&blocks[(2 * SECTION_SIZE - 100) as usize].block.hash()).unwrap();
    assert_eq!(fx.pointers().bloom_sections, 1);
    blocks.truncate((2 * SECTION_SIZE - 99) as usize);
    for f in filters() {
        assert_eq!(matches(&fx, &f), brute(&blocks, &f), "{f:?}");
    }
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{report}");
}

/// Overwrites the first value of table `T` with garbage.
fn corrupt_first<S: KvStore, T: Table>(store: &S) -> Vec<u8> {
    let key = {
        let mut c = store.cursor(T::NAME, RawRange::all(), Direction::Forward).unwrap();
        c.next_entry().unwrap().unwrap().0.to_vec()
    };
    let mut batch = store.raw_batch();
    batch.put_raw(T::NAME, &key, &[0x7f, 0xde, 0xad]).unwrap();
    store.write_raw(batch, storage_api::Durability::Synced).unwrap();
    key
}

fn is_decode(e: &ChainError, table: &str) -> bool {
    matches!(e, ChainError::Read(ReadError::Decode { table: t, part: Part::Value, .. }) if *t == table)
}

fn damaged_values_are_found<S: KvStore>(fx: Fx<S>) {
    let mut g = tiny();
    let blocks = build(&fx, &mut g, SECTION_SIZE as usize + 10);
    let chain = fx.chain;
    let store = chain.store();
    // Each case: damage one entry, check that the integrity check names its table and a read
    // of it fails with a decode error for that table; then restore the original bytes.
    type Read<'a, S> = Box<dyn Fn(&ChainStore<S, Synthetic>) -> Result<(), ChainError> + 'a>;
    let (b1, tx) = (blocks[1].block.hash(), blocks[1].block.transactions[0].clone());
    let tail = SECTION_SIZE + 5;
    let probe = Address([1; 20]);
    let bit = chain_store::bloom::bit_positions(&probe.0)[0];
    // A block with a log: a filter for its emitter makes the block a candidate, and damaged
    // receipts must fail the filter even where their bytes no longer hold the emitter.
    let (ln, lh, emitter) = blocks
        .iter()
        .skip(1)
        .find_map(|b| {
            b.receipts.iter().flat_map(|r| &r.logs).next().map(|l| (b.block.number(), b.block.hash(), l.address))
        })
        .expect("the tiny chain has logs");
    let cases: Vec<(&'static str, Vec<u8>, Read<'_, S>)> = vec![
        (Headers::<Synthetic>::NAME, b1.to_key_bytes(), Box::new(move |c| c.header(&b1).map(drop))),
        (Bodies::<Synthetic>::NAME, (1u64, b1).to_key_bytes(), Box::new(move |c| c.block(&b1).map(drop))),
        (Transactions::<Synthetic>::NAME, (1u64, b1).to_key_bytes(), Box::new(move |c| c.block(&b1).map(drop))),
        (Receipts::<Synthetic>::NAME, (1u64, b1).to_key_bytes(), Box::new(|c| c.receipts_by_number(1).map(drop))),
        (
            Receipts::<Synthetic>::NAME,
            (ln, lh).to_key_bytes(),
            Box::new(move |c| c.logs(&LogFilter::range(ln, ln).addresses([emitter]), 10).map(drop)),
        ),
        (Canonical::<Synthetic>::NAME, 1u64.to_key_bytes(), Box::new(|c| c.canonical_hash(1).map(drop))),
        (TxIndex::<Synthetic>::NAME, tx.hash.to_key_bytes(), Box::new(move |c| c.tx_location(&tx.hash).map(drop))),
        (
            AddressIndex::<Synthetic>::NAME,
            (tx.from, 1u64, 0u32).to_key_bytes(),
            Box::new(move |c| c.address_transactions(&tx.from, &AddressQuery::oldest_first(10)).map(drop)),
        ),
        (
            LogBloom::<Synthetic>::NAME,
            tail.to_key_bytes(),
            Box::new(move |c| c.logs(&LogFilter::range(tail, tail).addresses([probe]), 10).map(drop)),
        ),
        (
            BloomBitsTable::<Synthetic>::NAME,
            (0u64, bit).to_key_bytes(),
            Box::new(move |c| c.logs(&LogFilter::range(0, 100).addresses([probe]), 10).map(drop)),
        ),
        (
            State::<Synthetic>::NAME,
            ChainGenerator::balance_key(tx.from).to_key_bytes(),
            Box::new(move |c| c.state(&ChainGenerator::balance_key(tx.from)).map(drop)),
        ),
        (
            StateChanges::<Synthetic>::NAME,
            (1u64, b1).to_key_bytes(),
            Box::new(move |c| c.state_at(&[ChainGenerator::balance_key(tx.from)], 0).map(drop)),
        ),
    ];
    for (table, key, read) in &cases {
        let original = store.get_raw_with(table, key, |v| v.to_vec()).unwrap().expect(table);
        corrupt(store, table, key);
        let report = chain.check().unwrap();
        assert!(report.by_table.contains_key(table), "{table}: {report}");
        assert!(report.examples.iter().any(|p| p.table == *table && p.what.contains("decode")), "{table}: {report}");
        let err = read(&chain).expect_err(table);
        assert!(is_decode(&err, table), "{table}: {err}");
        let mut batch = store.raw_batch();
        batch.put_raw(table, key, &original).unwrap();
        store.write_raw(batch, storage_api::Durability::Synced).unwrap();
        let report = chain.check().unwrap();
        assert!(report.is_ok(), "{table} restored: {report}");
    }
    // A damaged pointer record: reopening says which table.
    corrupt_first::<S, ChainMeta<Synthetic>>(store);
    let Err(err) = ChainStore::<S, Synthetic>::new(chain.into_inner()) else {
        panic!("a damaged meta record must fail")
    };
    assert!(is_decode(&err, ChainMeta::<Synthetic>::NAME), "{err}");
}

/// Index entries that decode but are wrong — missing, pointing elsewhere, stale, extra — are
/// each named by the integrity check (the sums differ, then the entries are checked one by
/// one), and a restored index checks clean again.
fn damaged_indexes_are_named<S: KvStore>(fx: Fx<S>) {
    let mut g = tiny();
    let blocks = build(&fx, &mut g, 60);
    let chain = fx.chain;
    let store = chain.store();
    assert!(chain.check().unwrap().is_ok());
    let (b5, b9) = (&blocks[5].block, &blocks[9].block);
    let tx = b5.transactions[0].clone();
    let location = chain.tx_location(&tx.hash).unwrap().expect("indexed");
    let elsewhere = TxLocation { number: 9, block: b9.hash(), index: 0 };
    let stale = TxLocation { number: 9, block: B256([0xab; 32]), index: 0 };
    let stray = (Fixed(Address([0xcd; 20])), 7u64, 0u32);
    type Damage<'a, S> = Box<dyn Fn(&mut storage_api::WriteBatch<<S as storage_api::KvWrite>::Batch<'a>>) + 'a>;
    let cases: Vec<(&str, &str, Damage<'_, S>, Damage<'_, S>)> = vec![
        (
            TxIndex::<Synthetic>::NAME,
            "does not point to",
            Box::new(move |b| {
                b.delete::<TxIndex<Synthetic>>(&Fixed(tx.hash)).unwrap();
            }),
            Box::new(move |b| {
                b.put::<TxIndex<Synthetic>>(&Fixed(tx.hash), &Stored(location)).unwrap();
            }),
        ),
        (
            TxIndex::<Synthetic>::NAME,
            "does not point to",
            Box::new(move |b| {
                b.put::<TxIndex<Synthetic>>(&Fixed(tx.hash), &Stored(elsewhere)).unwrap();
            }),
            Box::new(move |b| {
                b.put::<TxIndex<Synthetic>>(&Fixed(tx.hash), &Stored(location)).unwrap();
            }),
        ),
        (
            TxIndex::<Synthetic>::NAME,
            "not canonical",
            Box::new(move |b| {
                b.put::<TxIndex<Synthetic>>(&Fixed(B256([0xef; 32])), &Stored(stale)).unwrap();
            }),
            Box::new(move |b| {
                b.delete::<TxIndex<Synthetic>>(&Fixed(B256([0xef; 32]))).unwrap();
            }),
        ),
        (
            AddressIndex::<Synthetic>::NAME,
            "not at this canonical position",
            Box::new(move |b| {
                b.put::<AddressIndex<Synthetic>>(&stray, &Stored(tx.hash)).unwrap();
            }),
            Box::new(move |b| {
                b.delete::<AddressIndex<Synthetic>>(&stray).unwrap();
            }),
        ),
        (
            AddressIndex::<Synthetic>::NAME,
            "missing or wrong",
            Box::new(move |b| {
                b.delete::<AddressIndex<Synthetic>>(&(Fixed(tx.from), 5, 0)).unwrap();
            }),
            Box::new(move |b| {
                b.put::<AddressIndex<Synthetic>>(&(Fixed(tx.from), 5, 0), &Stored(tx.hash)).unwrap();
            }),
        ),
    ];
    for (table, what, damage, repair) in &cases {
        let mut batch = store.batch();
        damage(&mut batch);
        store.write(batch, storage_api::Durability::Synced).unwrap();
        let report = chain.check().unwrap();
        assert!(!report.is_ok(), "{table} ({what}): {report}");
        assert!(
            report.examples.iter().any(|p| p.table == *table && p.what.contains(what)),
            "{table} ({what}): {report}"
        );
        let mut batch = store.batch();
        repair(&mut batch);
        store.write(batch, storage_api::Durability::Synced).unwrap();
        let report = chain.check().unwrap();
        assert!(report.is_ok(), "{table} ({what}) repaired: {report}");
    }
}

fn corrupt<S: KvStore>(store: &S, table: &str, key: &[u8]) {
    let mut batch = store.raw_batch();
    batch.put_raw(table, key, &[0x7f, 0xde, 0xad]).unwrap();
    store.write_raw(batch, storage_api::Durability::Synced).unwrap();
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [sections_answer_like_blooms, damaged_values_are_found, damaged_indexes_are_named]);
