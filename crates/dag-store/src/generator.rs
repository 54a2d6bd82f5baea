//! A deterministic synthetic DAG for tests, benchmarks and the CLI.
//!
//! Signatures are 64 bytes derived from the vertex hash — placeholders of the right size, not
//! real signatures (the store keeps signatures but does not verify them).

use crate::model::{Vertex, VertexBuilder, VertexHash};

/// Generates vertices in a valid insertion order (parents first).
#[derive(Debug, Clone)]
pub struct DagGenerator {
    /// Number of agents (creators); the first `agents` vertices are genesis vertices.
    pub agents: usize,
    /// Fewest parents of a non-genesis vertex.
    pub min_parents: usize,
    /// Most parents of a non-genesis vertex.
    pub max_parents: usize,
    /// Payload bytes per vertex.
    pub payload_bytes: usize,
    /// Parents are drawn from this many most recent vertices.
    pub window: usize,
    state: u64,
    made: u64,
    timestamp_ms: u64,
    recent: Vec<VertexHash>,
    /// Recent vertices nothing references yet (the current tips within the window).
    unreferenced: Vec<VertexHash>,
}

impl DagGenerator {
    /// Defaults: 8 agents, 2–4 parents from the last 32 vertices, 300-byte payloads.
    pub fn new(seed: u64) -> Self {
        DagGenerator {
            agents: 8,
            min_parents: 2,
            max_parents: 4,
            payload_bytes: 300,
            window: 32,
            state: seed,
            made: 0,
            timestamp_ms: 1_700_000_000_000,
            recent: Vec::new(),
            unreferenced: Vec::new(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The next vertex and its (placeholder) signature.
    pub fn next_vertex(&mut self) -> (Vertex, Vec<u8>) {
        let i = self.made;
        self.made += 1;
        self.timestamp_ms += self.next_u64() % 5;
        let mut parents = Vec::new();
        if i >= self.agents as u64 && !self.recent.is_empty() {
            let span = (self.max_parents - self.min_parents + 1) as u64;
            let want = (self.min_parents + (self.next_u64() % span) as usize).min(self.recent.len());
            // Build on the current tips first, as consensus does, so the tip set stays small;
            // then on random recent vertices.
            while parents.len() < want && !self.unreferenced.is_empty() {
                let pick = (self.next_u64() % self.unreferenced.len() as u64) as usize;
                parents.push(self.unreferenced.swap_remove(pick));
            }
            while parents.len() < want {
                let pick = (self.next_u64() % self.recent.len() as u64) as usize;
                let p = self.recent[pick];
                if !parents.contains(&p) {
                    parents.push(p);
                }
            }
            self.unreferenced.retain(|h| !parents.contains(h));
        }
        let mut payload = vec![0u8; self.payload_bytes];
        for chunk in payload.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        let vertex = VertexBuilder::new(format!("agent-{}", i % self.agents.max(1) as u64))
            .id(format!("v{i}"))
            .parents(parents)
            .payload(payload)
            .timestamp(self.timestamp_ms)
            .build();
        self.recent.push(vertex.hash);
        self.unreferenced.push(vertex.hash);
        if self.recent.len() > self.window {
            let old = self.recent.remove(0);
            self.unreferenced.retain(|h| *h != old);
        }
        let sig = blake3::hash(&vertex.hash.0);
        let signature = [sig.as_bytes().as_slice(), sig.as_bytes().as_slice()].concat();
        (vertex, signature)
    }

    /// The next `n` vertices.
    pub fn generate(&mut self, n: usize) -> Vec<(Vertex, Vec<u8>)> {
        (0..n).map(|_| self.next_vertex()).collect()
    }
}
