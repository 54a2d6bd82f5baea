//! Chain-store behaviour on every backend: inserts, reads, reorgs, state, history, logs,
//! pruning, and bad input.

mod common;

use std::collections::BTreeMap;

use chain_store::generator::ChainGenerator;
use chain_store::synthetic::{Address, B256, Synthetic, SyntheticHeader};
use chain_store::{
    AddressQuery, BlockRef, ChainError, ChainStore, Inserted, LogFilter, NewBlock, Receipt, Transaction,
};
use common::{Fx, build, fixture, generator};
use storage_api::{Direction, KvStore};

/// The state after applying `blocks` in order.
fn replay(blocks: &[&NewBlock<Synthetic>]) -> BTreeMap<(Address, B256), Option<B256>> {
    let mut state = BTreeMap::new();
    for b in blocks {
        for (k, v) in &b.state {
            state.insert(*k, *v);
        }
    }
    state
}

fn header(b: &NewBlock<Synthetic>) -> &SyntheticHeader {
    &b.block.header
}

fn linear_chain_reads<S: KvStore>(fx: Fx<S>) {
    let mut g = generator(5, 1);
    let blocks = build(&fx, &mut g, 40);
    let head = blocks.last().unwrap();
    assert_eq!(fx.head(), Some(head.block.block_ref()));
    for b in &blocks {
        let n = b.block.number();
        assert_eq!(fx.block_by_number(n).unwrap().as_ref(), Some(&b.block));
        assert_eq!(fx.block(&b.block.hash()).unwrap().as_ref(), Some(&b.block));
        assert_eq!(fx.receipts(&b.block.hash()).unwrap().as_ref(), Some(&b.receipts));
        assert_eq!(fx.receipts_by_number(n).unwrap().as_ref(), Some(&b.receipts));
        for (i, tx) in b.block.transactions.iter().enumerate() {
            let (found, loc) = fx.transaction(&tx.hash).unwrap().unwrap();
            assert_eq!((&found, loc.number, loc.block, loc.index), (tx, n, b.block.hash(), i as u32));
            assert_eq!(fx.receipt(&tx.hash).unwrap().unwrap().0, b.receipts[i]);
        }
    }
    assert_eq!(fx.block_by_number(41).unwrap(), None);
    assert_eq!(fx.block(&B256([9; 32])).unwrap(), None);
    let fwd: Vec<u64> = fx.headers(10..20, Direction::Forward).unwrap().map(|h| h.unwrap().number).collect();
    assert_eq!(fwd, (10..20).collect::<Vec<_>>());
    let rev: Vec<u64> = fx.blocks(..=5, Direction::Reverse).unwrap().map(|b| b.unwrap().header.number).collect();
    assert_eq!(rev, vec![5, 4, 3, 2, 1, 0]);
    // State at the head and at every older height.
    let refs: Vec<&NewBlock<Synthetic>> = blocks.iter().collect();
    let keys: Vec<(Address, B256)> = replay(&refs).keys().copied().collect();
    for h in [0u64, 1, 17, 39, 40] {
        let expected = replay(&refs[..=h as usize]);
        let got = fx.state_at(&keys, h).unwrap();
        for (k, v) in keys.iter().zip(got) {
            assert_eq!(v, expected.get(k).copied().flatten(), "key {k:?} at height {h}");
        }
    }
    let at_head = fx.state_many(&keys).unwrap();
    assert_eq!(at_head, keys.iter().map(|k| replay(&refs)[k]).collect::<Vec<_>>());
    assert!(matches!(fx.state_at(&keys, 41), Err(ChainError::AboveHead { .. })));
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.blocks_checked, 41);
}

/// A block that writes no state gets no change set (and reorgs over it still revert the rest).
fn blocks_without_state_have_no_change_set<S: KvStore>(fx: Fx<S>) {
    use chain_store::schema::StateChanges;
    use storage_api::ReadExt;
    let mut g = generator(3, 4);
    let genesis = g.next_blocks().remove(0);
    fx.init(&genesis).unwrap();
    let mut quiet = g.next_blocks().remove(0);
    quiet.state.clear();
    let loud = g.child(Some(header(&quiet)));
    fx.insert_blocks(&[quiet.clone(), loud.clone()]).unwrap();
    let changes = |b: &NewBlock<Synthetic>| {
        fx.store()
            .get::<StateChanges<Synthetic>>(&(b.block.number(), chain_store::schema::Fixed(b.block.hash())))
            .unwrap()
    };
    assert!(changes(&quiet).is_none());
    assert!(changes(&loud).is_some());
    // Back to genesis and forward again: the state follows.
    fx.set_canonical_head(&genesis.block.hash()).unwrap();
    for (k, _) in &loud.state {
        assert_eq!(fx.state(k).unwrap(), genesis.state.iter().find(|(g, _)| g == k).and_then(|(_, v)| *v));
    }
    fx.set_canonical_head(&loud.block.hash()).unwrap();
    let expected = replay(&[&genesis, &quiet, &loud]);
    for (k, v) in &expected {
        assert_eq!(fx.state(k).unwrap(), *v);
    }
    assert!(fx.check().unwrap().is_ok());
}

fn insert_is_idempotent_and_validated<S: KvStore>(fx: Fx<S>) {
    let mut g = generator(3, 2);
    let genesis = g.next_blocks().remove(0);
    let b1 = g.next_blocks().remove(0);
    assert!(matches!(fx.insert_block(&b1), Err(ChainError::NotInitialized)));
    fx.init(&genesis).unwrap();
    fx.init(&genesis).unwrap();
    let other = generator(3, 99).next_blocks().remove(0);
    assert!(matches!(fx.init(&other), Err(ChainError::AlreadyInitialized { number: 0, .. })));
    assert_eq!(fx.insert_block(&b1).unwrap(), Inserted::Canonical);
    assert_eq!(fx.insert_block(&b1).unwrap(), Inserted::AlreadyStored);
    assert_eq!(fx.insert_blocks(&[b1.clone(), b1.clone()]).unwrap(), vec![Inserted::AlreadyStored; 2]);
    // A stored block is recognised by its hash before anything is checked or recomputed: a copy
    // with a body that no longer matches is not re-validated (and not written).
    let mut copy = b1.clone();
    copy.block.transactions[0].value += 1;
    copy.receipts.clear();
    assert_eq!(fx.insert_block(&copy).unwrap(), Inserted::AlreadyStored);
    assert_eq!(fx.block(&b1.block.hash()).unwrap().as_ref(), Some(&b1.block));
    // Unknown parent.
    let orphan = g.child(Some(&SyntheticHeader { hash: B256([7; 32]), number: 1, ..header(&b1).clone() }));
    let err = fx.insert_block(&orphan).unwrap_err();
    assert!(matches!(err, ChainError::UnknownParent { number: 2, .. }), "{err}");
    assert!(err.to_string().contains("0x0707"), "{err}");
    // A parent later in the same call is unknown too.
    let b2 = g.next_blocks().remove(0);
    let b3 = g.next_blocks().remove(0);
    assert!(matches!(fx.insert_blocks(&[b3.clone(), b2.clone()]), Err(ChainError::UnknownParent { .. })));
    // Tampered header, tampered transaction, receipts missing, wrong height.
    let mut bad = b2.clone();
    bad.block.header.timestamp += 1;
    let mismatch = |r: Result<Vec<Inserted>, ChainError>, what: &str| matches!(&r, Err(ChainError::BodyMismatch { mismatch, .. }) if mismatch.what == what);
    assert!(mismatch(fx.insert_blocks(&[bad]), "the block hash"));
    let mut bad = b2.clone();
    bad.block.transactions[0].value += 1;
    assert!(mismatch(fx.insert_blocks(&[bad]), "transaction 0's hash"));
    let mut bad = b2.clone();
    bad.block.transactions.swap(0, 1);
    assert!(mismatch(fx.insert_blocks(&[bad]), "the block hash"));
    let mut bad = b2.clone();
    bad.receipts.pop();
    assert!(matches!(fx.insert_blocks(&[bad]), Err(ChainError::ReceiptCount { transactions: 3, receipts: 2, .. })));
    let mut wrong_height = g.child(Some(header(&b1)));
    wrong_height.block.header.number = 5;
    wrong_height.block.header.hash = wrong_height.block.header.compute_hash();
    assert!(matches!(fx.insert_blocks(&[wrong_height]), Err(ChainError::BadNumber { number: 5, .. })));
    // None of the failures wrote anything.
    assert_eq!(fx.head().unwrap().number, 1);
    assert_eq!(fx.header(&b2.block.hash()).unwrap(), None);
    assert_eq!(fx.insert_blocks(&[b2, b3]).unwrap(), vec![Inserted::Canonical; 2]);
    assert!(fx.check().unwrap().is_ok());
}

/// Main chain 0..=10; a side branch forking after block 5 with 7 blocks (heights 6..=12).
fn forked<S: KvStore>(fx: &Fx<S>) -> (Vec<NewBlock<Synthetic>>, Vec<NewBlock<Synthetic>>) {
    let mut g = generator(4, 3);
    let main = build(fx, &mut g, 10);
    let mut side = Vec::new();
    let mut parent = header(&main[5]).clone();
    for _ in 0..7 {
        let b = g.child(Some(&parent));
        parent = header(&b).clone();
        side.push(b);
    }
    assert_eq!(fx.insert_blocks(&side).unwrap(), vec![Inserted::Side; 7]);
    (main, side)
}

fn reorg_switches_everything<S: KvStore>(fx: Fx<S>) {
    let (main, side) = forked(&fx);
    let before = fx.check().unwrap();
    assert!(before.is_ok(), "{before}");
    let tip = side.last().unwrap().block.hash();
    let reorg = fx.set_canonical_head(&tip).unwrap();
    assert_eq!(reorg.fork_point, main[5].block.block_ref());
    assert_eq!(reorg.removed, (6..=10).rev().map(|i| main[i].block.block_ref()).collect::<Vec<_>>());
    assert_eq!(reorg.added, side.iter().map(|b| b.block.block_ref()).collect::<Vec<_>>());
    assert_eq!(fx.head().unwrap().number, 12);
    // Canonical index, tx index, address index, state: all follow the new branch.
    let new_chain: Vec<&NewBlock<Synthetic>> = main[..=5].iter().chain(&side).collect();
    for b in &new_chain {
        assert_eq!(fx.canonical_hash(b.block.number()).unwrap(), Some(b.block.hash()));
        for tx in &b.block.transactions {
            assert_eq!(fx.tx_location(&tx.hash).unwrap().unwrap().block, b.block.hash());
        }
    }
    for b in &main[6..] {
        assert!(!fx.is_canonical(&b.block.hash()).unwrap());
        for tx in &b.block.transactions {
            assert_eq!(fx.transaction(&tx.hash).unwrap(), None, "tx of a reorged-out block");
        }
        // Still stored, by hash.
        assert_eq!(fx.block(&b.block.hash()).unwrap().as_ref(), Some(&b.block));
    }
    let state = replay(&new_chain);
    let keys: Vec<_> = replay(&main.iter().collect::<Vec<_>>()).keys().chain(state.keys()).copied().collect();
    let expected: Vec<Option<B256>> = keys.iter().map(|k| state.get(k).copied().flatten()).collect();
    assert_eq!(fx.state_many(&keys).unwrap(), expected);
    let sender = side[0].block.transactions[0].from;
    let history = fx.address_transactions(&sender, &AddressQuery::oldest_first(1000)).unwrap();
    let mut brute = Vec::new();
    for b in &new_chain {
        for (i, tx) in b.block.transactions.iter().enumerate() {
            if tx.from == sender || tx.to == Some(sender) {
                brute.push((b.block.number(), i as u32, tx.hash));
            }
        }
    }
    assert_eq!(history.items.iter().map(|t| (t.number, t.index, t.tx_hash)).collect::<Vec<_>>(), brute);
    let after = fx.check().unwrap();
    assert!(after.is_ok(), "{after}");
    // And back again: the old chain's state and indexes return.
    let back = fx.set_canonical_head(&main[10].block.hash()).unwrap();
    assert_eq!(back.removed.len(), 7);
    assert_eq!(back.added.len(), 5);
    let old_state = replay(&main.iter().collect::<Vec<_>>());
    let expected: Vec<Option<B256>> = keys.iter().map(|k| old_state.get(k).copied().flatten()).collect();
    assert_eq!(fx.state_many(&keys).unwrap(), expected);
    // Rewind to an ancestor, then forward along the same chain.
    let rewind = fx.set_canonical_head(&main[3].block.hash()).unwrap();
    assert_eq!((rewind.removed.len(), rewind.added.len()), (7, 0));
    assert_eq!(fx.block_by_number(4).unwrap(), None);
    fx.set_canonical_head(&main[10].block.hash()).unwrap();
    assert!(fx.check().unwrap().is_ok());
    assert!(matches!(fx.set_canonical_head(&B256([1; 32])), Err(ChainError::UnknownBlock(_))));
}

fn finalized_blocks_cannot_be_reorged<S: KvStore>(fx: Fx<S>) {
    let (main, side) = forked(&fx);
    fx.set_safe(&main[9].block.hash()).unwrap();
    fx.set_finalized(&main[7].block.hash()).unwrap();
    assert!(matches!(fx.set_finalized(&main[6].block.hash()), Err(ChainError::FinalizedBackwards { .. })));
    assert!(matches!(fx.set_finalized(&side[0].block.hash()), Err(ChainError::NotCanonical(_))));
    let err = fx.set_canonical_head(&side.last().unwrap().block.hash()).unwrap_err();
    assert!(matches!(err, ChainError::ReorgPastFinalized { fork_number: 5, finalized_number: 7, .. }), "{err}");
    assert!(err.to_string().contains("finalized"), "{err}");
    assert!(matches!(fx.set_canonical_head(&main[6].block.hash()), Err(ChainError::ReorgPastFinalized { .. })));
    assert_eq!(fx.head(), Some(main[10].block.block_ref()), "nothing changed");
    // A new block at or below the finalized height can never be canonical.
    let mut g = generator(4, 77);
    let stale = g.child(Some(header(&main[6])));
    assert!(matches!(fx.insert_blocks(&[stale]), Err(ChainError::ConflictsWithFinalized { number: 7, .. })));
    // Reorgs above the finalized block still work; a safe block left behind is cleared.
    let mut g = generator(4, 78);
    let fork = g.child(Some(header(&main[8])));
    assert_eq!(fx.insert_blocks(std::slice::from_ref(&fork)).unwrap(), vec![Inserted::Side]);
    fx.set_canonical_head(&fork.block.hash()).unwrap();
    assert_eq!(fx.safe(), None);
    assert_eq!(fx.finalized(), Some(main[7].block.block_ref()));
    // Pointers survive a reopen.
    let pointers = fx.pointers();
    let reopened = ChainStore::<_, Synthetic>::new(fx.chain.into_inner()).unwrap();
    assert_eq!(reopened.pointers(), pointers);
}

fn address_history_pages<S: KvStore>(fx: Fx<S>) {
    let mut g = generator(6, 4);
    let blocks = build(&fx, &mut g, 60);
    let who = ChainGenerator::account(7);
    let mut all = Vec::new();
    for b in &blocks {
        for (i, tx) in b.block.transactions.iter().enumerate() {
            if tx.sender() == Some(who) || tx.to() == Some(who) {
                all.push((b.block.number(), i as u32, tx.hash));
            }
        }
    }
    assert!(all.len() > 10, "the account should be busy: {}", all.len());
    for (query, expected) in [
        (AddressQuery::oldest_first(3), all.clone()),
        (AddressQuery::newest_first(4), all.iter().rev().copied().collect()),
        (
            AddressQuery::oldest_first(2).heights(10, 30),
            all.iter().filter(|t| (10..=30).contains(&t.0)).copied().collect(),
        ),
        (
            AddressQuery::newest_first(5).heights(20, 50),
            all.iter().rev().filter(|t| (20..=50).contains(&t.0)).copied().collect::<Vec<_>>(),
        ),
    ] {
        let mut got = Vec::new();
        let mut q = query;
        loop {
            let page = fx.address_transactions(&who, &q).unwrap();
            assert!(page.items.len() <= q.limit);
            got.extend(page.items.iter().map(|t| (t.number, t.index, t.tx_hash)));
            match page.next {
                Some(c) => q = q.after(c),
                None => break,
            }
        }
        assert_eq!(got, expected, "{query:?}");
    }
    let nobody = fx.address_transactions(&Address([0xee; 20]), &AddressQuery::newest_first(10)).unwrap();
    assert!(nobody.items.is_empty() && nobody.next.is_none());
}

fn pruning_keeps_headers_and_says_pruned<S: KvStore>(fx: Fx<S>) {
    let mut g = generator(3, 5);
    let blocks = build(&fx, &mut g, 30);
    // Nothing can be pruned before anything is finalized.
    let r = fx.prune(5).unwrap();
    assert_eq!((r.pruned_below, r.limited_by_finalized), (0, true));
    fx.set_finalized(&blocks[20].block.hash()).unwrap();
    let r = fx.prune(5).unwrap();
    assert_eq!((r.previous, r.pruned_below, r.limited_by_finalized), (0, 21, true));
    let r = fx.prune(15).unwrap();
    assert_eq!((r.pruned_below, r.limited_by_finalized), (21, false), "never moves back");
    let old = &blocks[10];
    assert_eq!(fx.header(&old.block.hash()).unwrap().as_ref(), Some(header(old)));
    assert_eq!(fx.header_by_number(10).unwrap().as_ref(), Some(header(old)));
    let pruned = |e: ChainError| matches!(e, ChainError::Pruned { number: 10, pruned_below: 21, .. });
    assert!(pruned(fx.block(&old.block.hash()).unwrap_err()));
    assert!(pruned(fx.block_by_number(10).unwrap_err()));
    assert!(pruned(fx.receipts(&old.block.hash()).unwrap_err()));
    assert!(pruned(fx.transaction(&old.block.transactions[0].hash).unwrap_err()));
    let msg = fx.block(&old.block.hash()).unwrap_err().to_string();
    assert!(msg.contains("pruned"), "{msg}");
    let keys = [ChainGenerator::balance_key(ChainGenerator::account(1))];
    assert!(matches!(fx.state_at(&keys, 10), Err(ChainError::Pruned { .. })));
    fx.state_at(&keys, 20).unwrap();
    assert!(matches!(fx.logs(&LogFilter::range(5, 30), 1000), Err(ChainError::Pruned { .. })));
    assert!(fx.logs(&LogFilter::range(21, 30), 1000).is_ok());
    assert_eq!(fx.block_by_number(21).unwrap().as_ref(), Some(&blocks[21].block));
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{report}");
}

fn logs_match_a_brute_force_scan<S: KvStore>(fx: Fx<S>) {
    let mut g = generator(4, 6);
    let blocks = build(&fx, &mut g, 120);
    let brute = |f: &LogFilter<Address, B256>| {
        let mut out = Vec::new();
        for b in &blocks[f.from as usize..=f.to.min(120) as usize] {
            let mut log_index = 0u32;
            for (i, r) in b.receipts.iter().enumerate() {
                for log in r.logs() {
                    let ok = (f.addresses.is_empty() || f.addresses.contains(&log.address))
                        && f.topics
                            .iter()
                            .enumerate()
                            .all(|(p, alts)| alts.is_empty() || log.topics.get(p).is_some_and(|t| alts.contains(t)));
                    if ok {
                        out.push((b.block.number(), i as u32, log_index, b.block.transactions[i].hash));
                    }
                    log_index += 1;
                }
            }
        }
        out
    };
    let mut rng = 12345u64;
    let mut next = move |n: u64| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    let mut matched = 0;
    for round in 0..60 {
        let from = next(100);
        let to = from + next(40);
        let mut f = LogFilter::range(from, to);
        if next(3) > 0 {
            f = f.addresses((0..1 + next(2)).map(|_| ChainGenerator::contract(next(8))));
        }
        if next(2) == 0 {
            f = f.topic(0, (0..1 + next(3)).map(|_| ChainGenerator::event_signature(next(16))));
        }
        if next(3) == 0 {
            f = f.topic(2, [chain_store::generator::word(ChainGenerator::account(next(50)))]);
        }
        let got = fx.logs(&f, usize::MAX).unwrap();
        let got: Vec<_> = got.iter().map(|m| (m.block_number, m.tx_index, m.log_index, m.tx_hash)).collect();
        assert_eq!(got, brute(&f), "round {round}: {f:?}");
        matched += got.len();
    }
    assert!(matched > 100, "the filters should match something: {matched}");
    let marker = LogFilter::range(0, 1000).addresses([ChainGenerator::marker_contract()]);
    let hits = fx.logs(&marker, 100).unwrap();
    assert_eq!(hits.iter().map(|m| m.block_number).collect::<Vec<_>>(), (1..=12).map(|i| i * 10).collect::<Vec<_>>());
    let err = fx.logs(&LogFilter::range(0, 120), 10).unwrap_err();
    assert!(matches!(err, ChainError::TooManyLogs { cap: 10, .. }), "{err}");
    let five = LogFilter::range(0, 10).topic(4, [B256::default()]);
    assert!(matches!(fx.logs(&five, 10), Err(ChainError::TooManyTopics(5))));
    assert!(fx.logs(&LogFilter::range(200, 300), 10).unwrap().is_empty());
}

fn checkpoint_start_and_head_block_ref<S: KvStore>(fx: Fx<S>) {
    // A store starting from a trusted checkpoint block at height 5,000 (no parent stored).
    let mut g = generator(2, 8);
    let fake_parent = SyntheticHeader { number: 4_999, ..header(&g.next_blocks()[0]).clone() };
    let checkpoint = g.child(Some(&fake_parent));
    fx.init(&checkpoint).unwrap();
    let next = g.child(Some(header(&checkpoint)));
    assert_eq!(fx.insert_blocks(std::slice::from_ref(&next)).unwrap(), vec![Inserted::Canonical]);
    assert_eq!(fx.head(), Some(BlockRef { number: 5_001, hash: next.block.hash() }));
    assert!(matches!(fx.state_at(&[], 4_000), Err(ChainError::Pruned { .. })));
    assert_eq!(fx.logs(&LogFilter::range(0, 6_000), 100).unwrap().len(), brute_logs(&[&checkpoint, &next]));
    assert!(fx.check().unwrap().is_ok());
}

fn brute_logs(blocks: &[&NewBlock<Synthetic>]) -> usize {
    blocks.iter().flat_map(|b| &b.receipts).map(|r| r.logs.len()).sum()
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [linear_chain_reads, insert_is_idempotent_and_validated, blocks_without_state_have_no_change_set, reorg_switches_everything, finalized_blocks_cannot_be_reorged, address_history_pages, pruning_keeps_headers_and_says_pruned, logs_match_a_brute_force_scan, checkpoint_start_and_head_block_ref]);
