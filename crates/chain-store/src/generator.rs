//! A deterministic synthetic chain in the [`Synthetic`] model, for tests, benchmarks and the CLI.
//!
//! Transactions move value between accounts drawn from a pool; each writes the balance slot
//! of its sender and recipient. Logs come from contracts drawn with a skew (a few hot, many
//! rare), with an event-signature topic from a small set and account topics. A marker contract
//! logs exactly once every `marker_every` blocks, so a filter on it has a known answer.

use crate::model::{Block, NewBlock};
use crate::synthetic::{
    Address, B256, Synthetic, SyntheticHeader, SyntheticLog, SyntheticReceipt, SyntheticTx, tx_root,
};

/// Event signatures the synthetic contracts emit (topic 0).
pub const EVENT_SIGNATURES: u64 = 16;

/// The shape of a synthetic chain.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Transactions per block.
    pub txs_per_block: usize,
    /// Accounts in the pool.
    pub accounts: u64,
    /// Contracts that emit logs.
    pub contracts: u64,
    /// Mean logs per transaction.
    pub logs_per_tx: f64,
    /// Call-data bytes per transaction.
    pub input_bytes: usize,
    /// Chance that a block gets a competing sibling (stored as a side block).
    pub fork_probability: f64,
    /// The marker contract logs in every block whose height is a multiple of this (0: never).
    pub marker_every: u64,
    /// The seed: the same seed and config give the same chain.
    pub seed: u64,
}

impl Default for GenConfig {
    /// 100 transactions per block, 10,000 accounts, 500 contracts, 0.5 logs per transaction,
    /// 32 bytes of call data, no forks, a marker log every 1,000 blocks.
    fn default() -> Self {
        GenConfig {
            txs_per_block: 100,
            accounts: 10_000,
            contracts: 500,
            logs_per_tx: 0.5,
            input_bytes: 32,
            fork_probability: 0.0,
            marker_every: 1_000,
            seed: 1,
        }
    }
}

/// Generates a chain block by block.
#[derive(Debug, Clone)]
pub struct ChainGenerator {
    config: GenConfig,
    rng: SplitMix,
    head: Option<SyntheticHeader>,
    nonce: u64,
}

impl ChainGenerator {
    /// A generator with `config`.
    pub fn new(config: GenConfig) -> Self {
        ChainGenerator { rng: SplitMix::new(config.seed), config, head: None, nonce: 0 }
    }

    /// The configuration.
    pub fn config(&self) -> &GenConfig {
        &self.config
    }

    /// The `i`-th account.
    pub fn account(i: u64) -> Address {
        derived_address(b"account", i)
    }

    /// The `i`-th contract.
    pub fn contract(i: u64) -> Address {
        derived_address(b"contract", i)
    }

    /// The contract that logs once every `marker_every` blocks.
    pub fn marker_contract() -> Address {
        derived_address(b"marker", 0)
    }

    /// The `i`-th event signature (topic 0).
    pub fn event_signature(i: u64) -> B256 {
        B256(*blake3::hash(&[b"event".as_slice(), &i.to_be_bytes()].concat()).as_bytes())
    }

    /// The state key of an account's balance.
    pub fn balance_key(account: Address) -> (Address, B256) {
        (account, B256::default())
    }

    /// The next block(s) of the main chain: the block extending the chain and, with the fork
    /// probability, a competing sibling after it (which the store keeps as a side block).
    /// The first call returns genesis.
    pub fn next_blocks(&mut self) -> Vec<NewBlock<Synthetic>> {
        let parent = self.head.clone();
        let main = self.child(parent.as_ref());
        let mut out = vec![main.clone()];
        if let Some(p) = &parent
            && self.chance(self.config.fork_probability)
        {
            out.push(self.child(Some(p)));
        }
        self.head = Some(main.block.header);
        out
    }

    /// The next `n` main-chain blocks and their side blocks, in insertion order.
    pub fn generate(&mut self, n: usize) -> Vec<NewBlock<Synthetic>> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.extend(self.next_blocks());
        }
        out
    }

    /// A new block on `parent` (genesis if `None`), with random transactions, receipts and
    /// state writes. Each call gives a different block.
    pub fn child(&mut self, parent: Option<&SyntheticHeader>) -> NewBlock<Synthetic> {
        let number = parent.map_or(0, |p| p.number + 1);
        let mut transactions = Vec::with_capacity(self.config.txs_per_block);
        let mut receipts = Vec::with_capacity(self.config.txs_per_block);
        let mut state = Vec::with_capacity(2 * self.config.txs_per_block);
        let txs = if parent.is_none() { 0 } else { self.config.txs_per_block };
        for i in 0..txs {
            let from = Self::account(self.rng.below(self.config.accounts));
            let to = Self::account(self.rng.below(self.config.accounts));
            let mut input = vec![0u8; self.config.input_bytes];
            self.rng.fill(&mut input);
            self.nonce += 1;
            let mut tx = SyntheticTx {
                hash: B256::default(),
                from,
                to: Some(to),
                nonce: self.nonce,
                value: u128::from(self.rng.next_u64() % 1_000_000),
                gas_limit: 21_000 + self.rng.below(100_000),
                input,
            };
            tx.hash = tx.compute_hash();
            let mut logs = Vec::new();
            let whole = self.config.logs_per_tx.floor() as usize;
            let extra = usize::from(self.chance(self.config.logs_per_tx.fract()));
            for _ in 0..whole + extra {
                let u = self.rng.unit();
                let contract = Self::contract((u * u * u * self.config.contracts as f64) as u64);
                logs.push(self.log(contract, from, to));
            }
            if i == 0 && self.config.marker_every > 0 && number.is_multiple_of(self.config.marker_every) {
                logs.push(self.log(Self::marker_contract(), from, to));
            }
            receipts.push(SyntheticReceipt {
                success: self.rng.below(50) != 0,
                gas_used: 21_000 + self.rng.below(50_000),
                logs,
            });
            state.push((Self::balance_key(from), Some(B256::from_u64(self.rng.next_u64()))));
            state.push((Self::balance_key(to), Some(B256::from_u64(self.rng.next_u64()))));
            transactions.push(tx);
        }
        let mut extra = vec![0u8; 8];
        self.rng.fill(&mut extra);
        let mut header = SyntheticHeader {
            hash: B256::default(),
            parent_hash: parent.map_or(B256::default(), |p| p.hash),
            number,
            timestamp: 1_700_000_000 + number * 12,
            beneficiary: Self::account(self.rng.below(self.config.accounts)),
            gas_used: receipts.iter().map(|r| r.gas_used).sum(),
            gas_limit: 30_000_000,
            tx_root: tx_root(&transactions),
            state_root: B256::from_u64(self.rng.next_u64()),
            extra,
        };
        header.hash = header.compute_hash();
        NewBlock::new(Block::new(header, transactions), receipts, state)
    }

    fn log(&mut self, contract: Address, from: Address, to: Address) -> SyntheticLog {
        let mut data = vec![0u8; 32];
        self.rng.fill(&mut data);
        let topics = vec![Self::event_signature(self.rng.below(EVENT_SIGNATURES)), word(from), word(to)];
        SyntheticLog { address: contract, topics, data }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.unit() < p
    }
}

/// SplitMix64: the deterministic random source of the synthetic generators (this one and
/// chain-eth's).
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` for `n = 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn derived_address(kind: &[u8], i: u64) -> Address {
    let h = blake3::hash(&[kind, &i.to_be_bytes()].concat());
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.as_bytes()[..20]);
    Address(a)
}

/// An address as a 32-byte topic, left-padded.
pub fn word(a: Address) -> B256 {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(&a.0);
    B256(w)
}
