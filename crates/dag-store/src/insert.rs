//! Inserting vertices, singly or in batches.

use std::collections::HashMap;

use storage_api::{KvStore, ReadExt};

use crate::error::DagError;
use crate::model::{Status, Vertex, VertexHash, VertexMeta, VertexRecord};
use crate::schema::{ByHeight, ByTime, Children, Tips, VertexMetas, Vertices};
use crate::{DagStore, now_ms};

/// What an insert did with one vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now, at this height.
    New {
        /// The computed height.
        height: u64,
    },
    /// Already stored (or earlier in the same batch): nothing written.
    AlreadyStored,
}

impl<S: KvStore> DagStore<S> {
    /// Validates and stores one vertex with its creator's signature. Idempotent.
    pub fn insert_vertex(&self, vertex: &Vertex, signature: &[u8]) -> Result<Inserted, DagError> {
        Ok(self.insert_refs(&[(vertex, signature)])?[0])
    }

    /// Validates and stores many vertices in one atomic write. Parents may be in the same batch,
    /// in any order. On any error nothing is written.
    pub fn insert_batch(&self, vertices: &[(Vertex, Vec<u8>)]) -> Result<Vec<Inserted>, DagError> {
        let refs: Vec<(&Vertex, &[u8])> = vertices.iter().map(|(v, s)| (v, s.as_slice())).collect();
        self.insert_refs(&refs)
    }

    /// [`DagStore::insert_batch`] over borrowed vertices and signatures.
    pub fn insert_batch_refs(&self, items: &[(&Vertex, &[u8])]) -> Result<Vec<Inserted>, DagError> {
        self.insert_refs(items)
    }

    fn insert_refs(&self, items: &[(&Vertex, &[u8])]) -> Result<Vec<Inserted>, DagError> {
        for (v, _) in items {
            let actual = v.content_hash();
            if actual != v.hash {
                return Err(DagError::HashMismatch { claimed: v.hash, actual });
            }
        }
        let _writer = self.write_lock()?;
        let hashes: Vec<VertexHash> = items.iter().map(|(v, _)| v.hash).collect();
        let stored = self.store.multi_get::<VertexMetas>(&hashes)?;
        let mut outcome = vec![Inserted::AlreadyStored; items.len()];
        // New vertices of this batch, by hash (first occurrence wins; later ones are duplicates).
        let mut fresh: HashMap<VertexHash, usize> = HashMap::new();
        for (i, meta) in stored.iter().enumerate() {
            if meta.is_none() {
                fresh.entry(hashes[i]).or_insert(i);
            }
        }
        if fresh.is_empty() {
            return Ok(outcome);
        }
        // Heights of parents outside the batch.
        let mut outside: Vec<VertexHash> = Vec::new();
        for &i in fresh.values() {
            for p in &items[i].0.parents {
                if !fresh.contains_key(p) && !outside.contains(p) {
                    outside.push(*p);
                }
            }
        }
        let outside_meta = self.store.multi_get::<VertexMetas>(&outside)?;
        let mut height: HashMap<VertexHash, u64> = HashMap::new();
        for (p, meta) in outside.iter().zip(&outside_meta) {
            match meta {
                Some(m) if m.status == Status::Pruned => {
                    let child = fresh.keys().find(|h| items[fresh[*h]].0.parents.contains(p)).copied().unwrap_or(*p);
                    return Err(DagError::ParentPruned { vertex: child, parent: *p });
                }
                Some(m) => {
                    height.insert(*p, m.height);
                }
                None => {}
            }
        }
        let mut order: Vec<usize> = fresh.values().copied().collect();
        order.sort_unstable();
        for &i in &order {
            let v = items[i].0;
            let missing: Vec<VertexHash> =
                v.parents.iter().filter(|p| !height.contains_key(*p) && !fresh.contains_key(*p)).copied().collect();
            if !missing.is_empty() {
                return Err(DagError::MissingParents { vertex: v.hash, missing });
            }
        }
        let topo = topological(&order, items, &fresh);
        let received_at_ms = now_ms();
        // Tip changes of the whole batch: new vertices no other new vertex builds on become
        // tips; stored parents stop being tips. Only real changes are written.
        let mut has_child_in_batch: std::collections::HashSet<VertexHash> = std::collections::HashSet::new();
        let mut no_longer_tips: Vec<VertexHash> = Vec::new();
        {
            let tips = self.tip_set();
            for &i in &order {
                for p in &items[i].0.parents {
                    if fresh.contains_key(p) {
                        has_child_in_batch.insert(*p);
                    } else if tips.contains(p) && !no_longer_tips.contains(p) {
                        no_longer_tips.push(*p);
                    }
                }
            }
        }
        let mut new_tips: Vec<VertexHash> = Vec::new();
        let mut batch = self.store.batch();
        for p in &no_longer_tips {
            batch.delete::<Tips>(p)?;
        }
        for &i in &topo {
            let v = items[i].0;
            let h = v.parents.iter().map(|p| height[p] + 1).max().unwrap_or(0);
            height.insert(v.hash, h);
            outcome[i] = Inserted::New { height: h };
        }
        // The hash-keyed tables get their entries in key order: an LSM memtable inserts a
        // sorted run much faster than keys at random positions.
        let mut by_hash = topo.clone();
        by_hash.sort_unstable_by_key(|&i| items[i].0.hash);
        for &i in &by_hash {
            let (v, signature) = items[i];
            let h = height[&v.hash];
            let record = VertexRecord {
                parents: v.parents.clone(),
                height: h,
                timestamp_ms: v.timestamp_ms,
                id: v.id.clone(),
                creator: v.creator.clone(),
                payload: v.payload.clone(),
                signature: signature.to_vec(),
            };
            batch.put::<Vertices>(&v.hash, &record)?;
        }
        for &i in &by_hash {
            let v = items[i].0;
            let meta =
                VertexMeta { status: Status::Pending, height: height[&v.hash], finalized_seq: None, received_at_ms };
            batch.put::<VertexMetas>(&v.hash, &meta)?;
        }
        // The index entries too, each table's in key order.
        let mut by_height: Vec<(u64, VertexHash)> = Vec::with_capacity(topo.len());
        let mut by_time: Vec<(u64, VertexHash)> = Vec::with_capacity(topo.len());
        let mut edges: Vec<(u64, VertexHash, VertexHash)> = Vec::with_capacity(topo.len() * 3);
        for &i in &topo {
            let v = items[i].0;
            by_height.push((height[&v.hash], v.hash));
            by_time.push((v.timestamp_ms, v.hash));
            edges.extend(v.parents.iter().map(|p| (height[p], *p, v.hash)));
            if !has_child_in_batch.contains(&v.hash) {
                new_tips.push(v.hash);
            }
        }
        by_height.sort_unstable();
        by_time.sort_unstable();
        edges.sort_unstable();
        new_tips.sort_unstable();
        for key in &by_height {
            batch.put::<ByHeight>(key, &())?;
        }
        for key in &by_time {
            batch.put::<ByTime>(key, &())?;
        }
        for key in &edges {
            batch.put::<Children>(key, &())?;
        }
        for tip in &new_tips {
            batch.put::<Tips>(tip, &())?;
        }
        self.store.write(batch, self.durability)?;
        let mut tips = self.tip_set_mut();
        for p in &no_longer_tips {
            tips.remove(p);
        }
        tips.extend(new_tips);
        Ok(outcome)
    }
}

/// The fresh vertices `order` sorted so every parent in the batch comes before its children
/// (depth-first, iterative). Hashes are checked, so the batch cannot contain a cycle.
fn topological(order: &[usize], items: &[(&Vertex, &[u8])], fresh: &HashMap<VertexHash, usize>) -> Vec<usize> {
    let mut done: HashMap<usize, bool> = HashMap::with_capacity(order.len());
    let mut out = Vec::with_capacity(order.len());
    for &start in order {
        if done.contains_key(&start) {
            continue;
        }
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                out.push(i);
                continue;
            }
            if done.contains_key(&i) {
                continue;
            }
            done.insert(i, true);
            stack.push((i, true));
            for p in &items[i].0.parents {
                if let Some(&j) = fresh.get(p)
                    && !done.contains_key(&j)
                {
                    stack.push((j, false));
                }
            }
        }
    }
    out
}
