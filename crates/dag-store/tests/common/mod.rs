//! Fixtures: a fresh DAG store on any engine (opened by `engine-test`).

use std::ops::Deref;

use dag_store::{DagStore, dag_schema};
use engine_test::TestEngine;
use storage_api::Durability;
use tempfile::TempDir;

/// A DAG store and the directory it lives in.
pub(crate) struct Fx<S> {
    pub(crate) dag: DagStore<S>,
    pub(crate) _dir: TempDir,
}

impl<S> Deref for Fx<S> {
    type Target = DagStore<S>;
    fn deref(&self) -> &DagStore<S> {
        &self.dag
    }
}

fn dir() -> TempDir {
    tempfile::Builder::new().prefix("dag-test-").tempdir().unwrap()
}

/// A fresh DAG store on engine `E` (test-sized settings, buffered inserts).
pub(crate) fn fixture<E: TestEngine>() -> Fx<E::Store> {
    let d = dir();
    let dag = DagStore::new(E::open(d.path(), dag_schema()).unwrap()).unwrap();
    Fx { dag: dag.with_insert_durability(Durability::Buffered), _dir: d }
}
