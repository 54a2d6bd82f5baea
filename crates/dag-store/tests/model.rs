//! Proptest: random DAGs inserted in random orders and batch groupings, on every backend,
//! checked against a model computed from the vertices (tips, children, height index, time
//! ranges) and by the integrity check. `NODE_STORAGE_DAG_CASES` sets the cases per backend
//! (default 128).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Fx;
use dag_store::generator::DagGenerator;
use dag_store::{DagError, Vertex, VertexHash};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use storage_api::{Direction, KvStore};

#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    vertices: usize,
    agents: usize,
    max_parents: usize,
    order_seed: u64,
    groups: Vec<usize>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (any::<u64>(), 1usize..60, 1usize..4, 1usize..4, any::<u64>(), proptest::collection::vec(1usize..10, 1..8))
        .prop_map(|(seed, vertices, agents, max_parents, order_seed, groups)| Plan {
            seed,
            vertices,
            agents,
            max_parents,
            order_seed,
            groups,
        })
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

fn run_case<S: KvStore>(fx: &Fx<S>, plan: &Plan) -> Result<(), TestCaseError> {
    let mut generator = DagGenerator::new(plan.seed);
    generator.agents = plan.agents;
    generator.min_parents = 1;
    generator.max_parents = plan.max_parents;
    generator.window = 6;
    generator.payload_bytes = 8;
    let vertices = generator.generate(plan.vertices);
    let mut order = vertices.clone();
    shuffle(&mut order, plan.order_seed);
    let mut groups: Vec<Vec<(Vertex, Vec<u8>)>> = Vec::new();
    let mut sizes = plan.groups.iter().cycle();
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).min(rest.len());
        groups.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    // Insert groups; a group whose parents are not stored yet must fail whole and leave the
    // store as it was, and is retried later. With no progress left, the rest goes as one batch.
    while !groups.is_empty() {
        let mut deferred = Vec::new();
        let before = groups.len();
        for group in groups {
            let stored_before = fx.tips().unwrap();
            match fx.insert_batch(&group) {
                Ok(_) => {}
                Err(DagError::MissingParents { .. }) => {
                    prop_assert_eq!(fx.tips().unwrap(), stored_before, "a failed batch changed the tips");
                    deferred.push(group);
                }
                Err(e) => return Err(TestCaseError::fail(format!("insert: {e}"))),
            }
        }
        if deferred.len() == before {
            deferred = vec![deferred.concat()];
        }
        groups = deferred;
    }
    // The model.
    let mut heights: BTreeMap<VertexHash, u64> = BTreeMap::new();
    let mut children: BTreeMap<VertexHash, BTreeSet<VertexHash>> = BTreeMap::new();
    let mut tips: BTreeSet<VertexHash> = BTreeSet::new();
    for (v, _) in &vertices {
        heights.insert(v.hash, v.parents.iter().map(|p| heights[p] + 1).max().unwrap_or(0));
        tips.insert(v.hash);
        for p in &v.parents {
            children.entry(*p).or_default().insert(v.hash);
            tips.remove(p);
        }
    }
    prop_assert_eq!(fx.tips().unwrap().into_iter().collect::<BTreeSet<_>>(), tips);
    for (v, _) in &vertices {
        let got: BTreeSet<VertexHash> = fx.children(&v.hash).unwrap().into_iter().collect();
        prop_assert_eq!(got, children.get(&v.hash).cloned().unwrap_or_default());
    }
    for h in 0..=heights.values().copied().max().unwrap_or(0) {
        let want: BTreeSet<VertexHash> = heights.iter().filter(|(_, x)| **x == h).map(|(k, _)| *k).collect();
        prop_assert_eq!(fx.at_height(h).unwrap().into_iter().collect::<BTreeSet<_>>(), want);
    }
    let t0 = vertices[vertices.len() / 3].0.timestamp_ms;
    let t1 = vertices[vertices.len() * 2 / 3].0.timestamp_ms;
    let mut want: Vec<(u64, VertexHash)> =
        vertices.iter().map(|(v, _)| (v.timestamp_ms, v.hash)).filter(|(t, _)| (t0..t1).contains(t)).collect();
    want.sort();
    let got: Vec<_> = fx.time_range(t0..t1, Direction::Forward).unwrap().map(|e| e.unwrap()).collect();
    prop_assert_eq!(&got, &want);
    let mut rev: Vec<_> = fx.time_range(t0..t1, Direction::Reverse).unwrap().map(|e| e.unwrap()).collect();
    rev.reverse();
    prop_assert_eq!(rev, want);
    let report = fx.check().unwrap();
    prop_assert!(report.is_ok(), "{:?}", report.problems);
    Ok(())
}

fn run<S: KvStore>(open: fn() -> Fx<S>) {
    let cases = std::env::var("NODE_STORAGE_DAG_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    runner.run(&plan(), |p| run_case(&open(), &p)).unwrap();
}

#[test]
fn model_memory() {
    run(common::fixture::<engine_test::Memory>);
}

#[test]
fn model_rocksdb() {
    run(common::fixture::<engine_test::Rocks>);
}

#[test]
fn model_redb() {
    run(common::fixture::<engine_test::Redb>);
}
