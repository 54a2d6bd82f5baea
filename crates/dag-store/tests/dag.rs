//! dag-store behaviour on every backend: inserts, reads, finalization, pruning, bad input and
//! the integrity check.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Fx, fixture};
use dag_store::generator::DagGenerator;
use dag_store::schema::{Children, Tips, Vertices};
use dag_store::{DagError, Inserted, Problem, Vertex, VertexBuilder, VertexHash, VertexRecord, Walk};
use storage_api::{Direction, Durability, KvStore, RawBatch, ReadExt};

fn count<S: KvStore>(fx: &Fx<S>) -> usize {
    fx.store().iter_all::<Vertices>(Direction::Forward).unwrap().count()
}

/// Children, tips, height index computed from a list of vertices.
struct Model {
    children: BTreeMap<VertexHash, BTreeSet<VertexHash>>,
    heights: BTreeMap<VertexHash, u64>,
    tips: BTreeSet<VertexHash>,
}

impl Model {
    fn of(vertices: &[(Vertex, Vec<u8>)]) -> Model {
        let mut m = Model { children: BTreeMap::new(), heights: BTreeMap::new(), tips: BTreeSet::new() };
        for (v, _) in vertices {
            let h = v.parents.iter().map(|p| m.heights[p] + 1).max().unwrap_or(0);
            m.heights.insert(v.hash, h);
            m.tips.insert(v.hash);
            for p in &v.parents {
                m.children.entry(*p).or_default().insert(v.hash);
                m.tips.remove(p);
            }
        }
        m
    }
}

fn insert_and_read<S: KvStore>(fx: Fx<S>) {
    let vertices = DagGenerator::new(1).generate(200);
    for (v, sig) in &vertices {
        assert!(matches!(fx.insert_vertex(v, sig).unwrap(), Inserted::New { .. }));
    }
    let model = Model::of(&vertices);
    for (v, sig) in &vertices {
        let stored = fx.vertex(&v.hash).unwrap().unwrap();
        assert_eq!(&stored.vertex, v);
        assert_eq!(&stored.signature, sig);
        assert_eq!(stored.height, model.heights[&v.hash]);
        assert_eq!(fx.parents(&v.hash).unwrap(), v.parents);
        let children: BTreeSet<VertexHash> = fx.children(&v.hash).unwrap().into_iter().collect();
        assert_eq!(children, model.children.get(&v.hash).cloned().unwrap_or_default());
    }
    assert_eq!(fx.tips().unwrap().into_iter().collect::<BTreeSet<_>>(), model.tips);
    let max_height = *model.heights.values().max().unwrap();
    for h in 0..=max_height {
        let want: BTreeSet<VertexHash> = model.heights.iter().filter(|(_, x)| **x == h).map(|(k, _)| *k).collect();
        assert_eq!(fx.at_height(h).unwrap().into_iter().collect::<BTreeSet<_>>(), want);
    }
    // Time ranges, both directions, against a filter over the generated vertices.
    let (t0, t1) = (vertices[40].0.timestamp_ms, vertices[120].0.timestamp_ms);
    let mut want: Vec<(u64, VertexHash)> =
        vertices.iter().map(|(v, _)| (v.timestamp_ms, v.hash)).filter(|(t, _)| (t0..=t1).contains(t)).collect();
    want.sort();
    let got: Vec<_> = fx.time_range(t0..=t1, Direction::Forward).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(got, want);
    let mut rev: Vec<_> = fx.time_range(t0..=t1, Direction::Reverse).unwrap().map(|e| e.unwrap()).collect();
    rev.reverse();
    assert_eq!(rev, want);
    assert_eq!(
        fx.time_range(..t0, Direction::Forward).unwrap().count(),
        vertices.iter().filter(|(v, _)| v.timestamp_ms < t0).count()
    );
    assert_eq!(
        fx.time_range((std::ops::Bound::Excluded(u64::MAX), std::ops::Bound::Unbounded), Direction::Forward)
            .unwrap()
            .count(),
        0
    );
    // Re-inserting is idempotent.
    assert_eq!(fx.insert_vertex(&vertices[5].0, &vertices[5].1).unwrap(), Inserted::AlreadyStored);
    assert_eq!(count(&fx), 200);
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.vertices, 200);
}

fn batch_in_any_order<S: KvStore>(fx: Fx<S>) {
    let vertices = DagGenerator::new(2).generate(300);
    let mut shuffled = vertices.clone();
    shuffled.reverse();
    shuffled.swap(3, 200);
    shuffled.push(vertices[10].clone()); // a duplicate inside the batch
    let outcome = fx.insert_batch(&shuffled).unwrap();
    assert_eq!(outcome.iter().filter(|o| matches!(o, Inserted::New { .. })).count(), 300);
    assert_eq!(outcome[300], Inserted::AlreadyStored);
    let model = Model::of(&vertices);
    assert_eq!(fx.tips().unwrap().into_iter().collect::<BTreeSet<_>>(), model.tips);
    for (v, _) in &vertices {
        assert_eq!(fx.vertex(&v.hash).unwrap().unwrap().height, model.heights[&v.hash]);
    }
    assert!(fx.insert_batch(&vertices).unwrap().iter().all(|o| *o == Inserted::AlreadyStored));
    assert!(fx.check().unwrap().is_ok());
}

fn wrong_hash_is_refused<S: KvStore>(fx: Fx<S>) {
    let mut v = VertexBuilder::new("a").id("x").payload(vec![1; 10]).build();
    v.payload[0] = 2;
    let err = fx.insert_vertex(&v, b"sig").unwrap_err();
    assert!(matches!(err, DagError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert_eq!(count(&fx), 0);
    // A different vertex under an existing hash cannot get in: its hash would not match.
    let genuine = VertexBuilder::new("a").id("g").payload(vec![7; 10]).build();
    fx.insert_vertex(&genuine, b"sig").unwrap();
    let mut impostor = genuine.clone();
    impostor.payload = vec![8; 10];
    assert!(matches!(fx.insert_vertex(&impostor, b"sig"), Err(DagError::HashMismatch { .. })));
    assert!(matches!(fx.insert_batch(&[(impostor, vec![])]), Err(DagError::HashMismatch { .. })));
    assert_eq!(fx.vertex(&genuine.hash).unwrap().unwrap().vertex, genuine);
    assert_eq!(count(&fx), 1);
}

fn missing_parents_are_listed<S: KvStore>(fx: Fx<S>) {
    let g = VertexBuilder::new("a").id("g").build();
    fx.insert_vertex(&g, b"").unwrap();
    let ghost1 = VertexHash([1; 32]);
    let ghost2 = VertexHash([2; 32]);
    let v = VertexBuilder::new("a").id("v").parents(vec![g.hash, ghost1, ghost2]).build();
    match fx.insert_vertex(&v, b"").unwrap_err() {
        DagError::MissingParents { vertex, missing } => {
            assert_eq!(vertex, v.hash);
            assert_eq!(missing, vec![ghost1, ghost2]);
        }
        e => panic!("unexpected {e}"),
    }
    // A batch with one bad vertex writes nothing at all.
    let ok = VertexBuilder::new("a").id("ok").parents(vec![g.hash]).build();
    assert!(matches!(fx.insert_batch(&[(ok.clone(), vec![]), (v, vec![])]), Err(DagError::MissingParents { .. })));
    assert!(!fx.contains(&ok.hash).unwrap());
    assert_eq!(fx.tips().unwrap(), vec![g.hash]);
    assert_eq!(count(&fx), 1);
}

/// Inserts a chain-like DAG and returns it in insertion (topological) order.
fn populated<S: KvStore>(fx: &Fx<S>, n: usize, seed: u64) -> Vec<(Vertex, Vec<u8>)> {
    let vertices = DagGenerator::new(seed).generate(n);
    fx.insert_batch(&vertices).unwrap();
    vertices
}

fn finalization_rules<S: KvStore>(fx: Fx<S>) {
    let vertices = populated(&fx, 60, 3);
    assert_eq!(fx.next_sequence().unwrap(), 0);
    assert!(matches!(
        fx.mark_finalized(&vertices[0].0.hash, 1),
        Err(DagError::SequenceOutOfOrder { expected: 0, got: 1 })
    ));
    // A vertex whose parents are not finalized is refused, naming them.
    let late = &vertices[40].0;
    match fx.mark_finalized(&late.hash, 0).unwrap_err() {
        DagError::UnfinalizedParents { vertex, parents } => {
            assert_eq!(vertex, late.hash);
            assert_eq!(parents, late.parents);
        }
        e => panic!("unexpected {e}"),
    }
    for (seq, (v, _)) in vertices.iter().enumerate() {
        fx.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    assert!(matches!(fx.mark_finalized(&vertices[3].0.hash, 60), Err(DagError::AlreadyFinalized { seq: 3, .. })));
    // A sequence number used before is refused, naming the one expected.
    let extra = VertexBuilder::new("a").id("extra").parents(vec![vertices[59].0.hash]).build();
    fx.insert_vertex(&extra, b"").unwrap();
    let err = fx.mark_finalized(&extra.hash, 59).unwrap_err();
    assert!(matches!(err, DagError::SequenceOutOfOrder { expected: 60, got: 59 }), "{err}");
    assert!(err.to_string().contains("expected 60"), "{err}");
    fx.mark_finalized(&extra.hash, 60).unwrap();
    assert!(matches!(fx.mark_finalized(&VertexHash([9; 32]), 61), Err(DagError::NotFound(_))));
    assert_eq!(fx.finalized_at(7).unwrap(), Some(vertices[7].0.hash));
    assert_eq!(fx.finalization_of(&vertices[7].0.hash).unwrap(), Some(7));
    assert_eq!(fx.last_finalized().unwrap(), Some((60, extra.hash)));
    let range = fx.finalized_range(10..13).unwrap();
    assert_eq!(range, (10..13).map(|i| (i, vertices[i as usize].0.hash)).collect::<Vec<_>>());
    assert!(fx.check().unwrap().is_ok());
}

fn pruning<S: KvStore>(fx: Fx<S>) {
    let vertices = populated(&fx, 120, 4);
    let heights: BTreeMap<VertexHash, u64> =
        vertices.iter().map(|(v, _)| (v.hash, fx.vertex(&v.hash).unwrap().unwrap().height)).collect();
    let boundary = 6;
    // Not everything below the boundary is finalized yet.
    assert!(matches!(fx.prune_below(boundary), Err(DagError::PruneNotFinalized { .. })));
    // Finalize, in insertion order, every vertex below the boundary.
    let mut seq = 0;
    for (v, _) in &vertices {
        if heights[&v.hash] < boundary {
            fx.mark_finalized(&v.hash, seq).unwrap();
            seq += 1;
        }
    }
    let report = fx.prune_below(boundary).unwrap();
    assert_eq!(report.vertices, heights.values().filter(|h| **h < boundary).count() as u64);
    assert_eq!(fx.pruned_below().unwrap(), boundary);
    for (v, _) in &vertices {
        if heights[&v.hash] < boundary {
            let err = fx.vertex(&v.hash).unwrap_err();
            assert!(matches!(err, DagError::Pruned(h) if h == v.hash), "{err}");
            assert!(err.to_string().contains("pruned"));
            assert!(fx.finalization_of(&v.hash).unwrap().is_some());
        } else {
            assert!(fx.vertex(&v.hash).unwrap().is_some());
        }
    }
    assert_eq!(fx.finalized_range(..).unwrap().len() as u64, seq);
    assert!(fx.at_height(0).unwrap().is_empty());
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    // A vertex naming a pruned parent cannot be placed.
    let pruned_parent = vertices.iter().find(|(v, _)| heights[&v.hash] == 0).unwrap().0.hash;
    let late = VertexBuilder::new("z").id("late").parents(vec![pruned_parent]).build();
    assert!(matches!(fx.insert_vertex(&late, b""), Err(DagError::ParentPruned { .. })));
    // Pruning again below the same height is a no-op.
    assert_eq!(fx.prune_below(boundary).unwrap().vertices, 0);
}

fn walks<S: KvStore>(fx: Fx<S>) {
    let vertices = populated(&fx, 400, 5);
    let last = vertices.last().unwrap().0.hash;
    let all = fx.ancestors(&last, Walk::count(usize::MAX)).unwrap();
    assert!(all.len() > 100, "{}", all.len());
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len(), "duplicates in the walk");
    assert_eq!(fx.ancestors(&last, Walk::count(50)).unwrap(), all[..50].to_vec());
    let direct = fx.ancestors(&last, Walk::depth(1)).unwrap();
    assert_eq!(direct, vertices.last().unwrap().0.parents);
    let first = vertices[0].0.hash;
    let desc = fx.descendants(&first, Walk::depth(2)).unwrap();
    let children = fx.children(&first).unwrap();
    assert!(children.iter().all(|c| desc.contains(c)));
    assert!(matches!(fx.ancestors(&VertexHash([3; 32]), Walk::count(5)), Err(DagError::NotFound(_))));
}

fn corruption_is_detected<S: KvStore>(fx: Fx<S>) {
    let vertices = populated(&fx, 30, 6);
    let (victim, _) = &vertices[10];
    // A decodable but altered vertex: caught by the hash on read and by the check.
    let mut stored: VertexRecord = fx.store().get::<Vertices>(&victim.hash).unwrap().unwrap();
    stored.payload[0] ^= 1;
    fx.store().put::<Vertices>(&victim.hash, &stored, Durability::Synced).unwrap();
    assert!(matches!(fx.vertex(&victim.hash), Err(DagError::CorruptVertex(h)) if h == victim.hash));
    // Bytes that do not decode at all.
    let garbage_key = vertices[20].0.hash;
    let mut batch = fx.store().batch();
    batch.raw_mut().put_raw("vertices", &garbage_key.0, &[1, 0xff, 0xff]).unwrap();
    fx.store().write(batch, Durability::Synced).unwrap();
    let err = fx.vertex(&garbage_key).unwrap_err();
    assert!(err.to_string().contains("vertices"), "{err}");
    // Index damage.
    let tip = fx.tips().unwrap()[0];
    let mut batch = fx.store().batch();
    batch.delete::<Tips>(&tip).unwrap();
    batch.put::<Children>(&(0, vertices[0].0.hash, VertexHash([5; 32])), &()).unwrap();
    fx.store().write(batch, Durability::Synced).unwrap();
    let report = fx.check().unwrap();
    let p = &report.problems;
    assert!(p.contains(&Problem::HashMismatch(victim.hash)), "{p:?}");
    assert!(p.iter().any(|x| matches!(x, Problem::UndecodableVertex { .. })), "{p:?}");
    assert!(p.contains(&Problem::MissingTip(tip)), "{p:?}");
    assert!(p.contains(&Problem::StaleEdge { parent: vertices[0].0.hash, child: VertexHash([5; 32]) }), "{p:?}");
    // The check changed nothing.
    assert_eq!(fx.check().unwrap().problems, report.problems);
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [insert_and_read, batch_in_any_order, wrong_hash_is_refused, missing_parents_are_listed, finalization_rules, pruning, walks, corruption_is_detected]);

#[test]
fn rocksdb_prune_releases_space() {
    use storage_api::{KvFlush, KvStats};
    let fx = common::fixture::<engine_test::Rocks>();
    let vertices = DagGenerator::new(9).generate(3000);
    fx.insert_batch(&vertices).unwrap();
    for (seq, (v, _)) in vertices.iter().enumerate() {
        fx.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    fx.store().flush().unwrap();
    fx.compact_pruned().unwrap();
    let before = fx.store().table_stats::<Vertices>().unwrap().approx_bytes;
    let top = fx.vertex(&vertices.last().unwrap().0.hash).unwrap().unwrap().height;
    fx.prune_below(top).unwrap();
    fx.store().flush().unwrap();
    fx.compact_pruned().unwrap();
    let after = fx.store().table_stats::<Vertices>().unwrap().approx_bytes;
    assert!(after * 10 < before, "vertices table {before} -> {after} bytes after pruning");
    assert!(fx.check().unwrap().is_ok());
}

#[test]
fn rocksdb_state_survives_reopen() {
    use dag_store::{DagStore, dag_schema};
    use engine_test::{Rocks, TestEngine};
    let dir = tempfile::tempdir().unwrap();
    let vertices = DagGenerator::new(12).generate(500);
    let (tips, last) = {
        let dag = DagStore::new(Rocks::open(dir.path(), dag_schema()).unwrap()).unwrap();
        dag.insert_batch(&vertices[..300]).unwrap();
        for (v, sig) in &vertices[300..] {
            dag.insert_vertex(v, sig).unwrap();
        }
        for (seq, (v, _)) in vertices[..10].iter().enumerate() {
            dag.mark_finalized(&v.hash, seq as u64).unwrap();
        }
        (dag.tips().unwrap(), dag.last_finalized().unwrap())
    };
    assert!(tips.len() < 40, "the generator keeps the tip set small: {}", tips.len());
    let dag = DagStore::new(Rocks::open(dir.path(), dag_schema()).unwrap()).unwrap();
    assert_eq!(dag.tips().unwrap(), tips);
    assert_eq!(dag.last_finalized().unwrap(), last);
    assert_eq!(dag.next_sequence().unwrap(), 10);
    assert!(dag.check().unwrap().is_ok());
}

#[test]
fn wrong_schema_is_refused() {
    let store = storage_api::mem::MemStore::new(storage_api::Schema::new("chain", 1));
    assert!(matches!(dag_store::DagStore::new(store), Err(DagError::WrongSchema(s)) if s == "chain"));
}
