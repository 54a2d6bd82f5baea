//! Inclusion proofs of a block's transactions and receipts: the Merkle-Patricia proof of item
//! `i` in the block's transactions trie or receipts trie (keys `rlp(i)`, values the items'
//! EIP-2718 encodings), built with alloy-trie's proof retainer, and a verifier that needs
//! nothing but the proof: the header's hash is recomputed from its RLP, the root taken from
//! the header, and the value's path walked from that root.
//!
//! What a verified proof proves: the header with this hash commits to this item at this
//! position. It does not prove that the header is part of mainnet's chain; for a pre-merge
//! block, [`crate::accumulator`] checks a header against the published accumulator (given the
//! header's Portal proof); post-merge headers need the beacon chain's historical summaries.

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bytes};
use alloy_rlp::Decodable;
use alloy_trie::nodes::{LeafNode, TrieNode};
use alloy_trie::proof::{ProofNodes, ProofRetainer, verify_proof};
use alloy_trie::root::adjust_index_for_rlp;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles};

use crate::{EthHeader, EthReceipt, EthTx};

/// Which trie of a block an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Item {
    /// The transactions trie (`transactionsRoot`).
    Transaction,
    /// The receipts trie (`receiptsRoot`).
    Receipt,
}

impl Item {
    /// The root of this trie in `header`.
    pub fn root_in(self, header: &EthHeader) -> B256 {
        match self {
            Item::Transaction => header.header.transactions_root,
            Item::Receipt => header.header.receipts_root,
        }
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Item::Transaction => "transaction",
            Item::Receipt => "receipt",
        })
    }
}

/// A proof that does not verify, or that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InclusionError {
    /// The block has no item at this index.
    #[error("block {number} has {count} {item}s, no {item} {index}")]
    NoSuchItem {
        /// The block.
        number: u64,
        /// Which trie.
        item: Item,
        /// The index asked for.
        index: u64,
        /// Items in the block.
        count: usize,
    },
    /// The items' root is not the header's (the block's data is damaged).
    #[error("block {number}: the {item}s' root {computed} is not the header's {claimed}")]
    RootMismatch {
        /// The block.
        number: u64,
        /// Which trie.
        item: Item,
        /// In the header.
        claimed: B256,
        /// From the items.
        computed: B256,
    },
    /// The header's RLP does not hash to the block hash the proof names.
    #[error("the header hashes to {computed}, not to the proof's block hash {claimed}")]
    HeaderHash {
        /// The proof's block hash.
        claimed: B256,
        /// Keccak-256 of the header's RLP.
        computed: B256,
    },
    /// The path from the root does not lead to the value.
    #[error("{item} {index} of block {number}: {reason}")]
    Path {
        /// The block.
        number: u64,
        /// Which trie.
        item: Item,
        /// The index.
        index: u64,
        /// alloy-trie's verdict.
        reason: String,
    },
}

/// Item `index` of a block with the proof of its place in the block's trie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Which trie.
    pub item: Item,
    /// The block's header (its RLP is what the hash commits to).
    pub header: EthHeader,
    /// The block hash the proof is for.
    pub block_hash: B256,
    /// The item's position in the block.
    pub index: u64,
    /// The item's EIP-2718 encoding (the trie's value).
    pub value: Bytes,
    /// The trie nodes from the root down to the value's leaf.
    pub nodes: Vec<Bytes>,
}

/// The key of item `index` in an ordered trie, as nibbles.
fn key(index: u64) -> Nibbles {
    Nibbles::unpack(alloy_rlp::encode_fixed_size(&index))
}

/// The inner nodes (branches and extensions) of one block's transactions or receipts trie,
/// with its root: what proving any of its items needs besides the item itself. Building it
/// hashes every item (the cost of a proof); proving from it hashes nothing.
#[derive(Debug, Clone)]
pub struct BlockTrie {
    root: B256,
    count: usize,
    inner: ProofNodes,
    bytes: usize,
}

impl BlockTrie {
    /// The trie over `values` (the items' EIP-2718 encodings, in block order).
    pub fn build(values: &[Vec<u8>]) -> BlockTrie {
        if values.is_empty() {
            return BlockTrie { root: EMPTY_ROOT_HASH, count: 0, inner: ProofNodes::default(), bytes: 0 };
        }
        let keys = (0..values.len() as u64).map(key).collect();
        let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(keys));
        for i in 0..values.len() {
            let index = adjust_index_for_rlp(i, values.len());
            hb.add_leaf(key(index as u64), &values[index]);
        }
        let root = hb.root();
        let mut inner = ProofNodes::default();
        let mut bytes = 0;
        for (path, node) in hb.take_proof_nodes().into_inner() {
            if !matches!(TrieNode::decode(&mut node.as_ref()), Ok(TrieNode::Leaf(_))) {
                bytes += path.len() + node.len();
                inner.insert(path, node);
            }
        }
        BlockTrie { root, count: values.len(), inner, bytes }
    }

    /// The trie's root.
    pub fn root(&self) -> B256 {
        self.root
    }

    /// Items in the trie.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the trie holds no item.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes the inner nodes take (what a cache weighs).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The proof nodes of item `index` whose encoding is `value`, root first: the inner nodes
    /// on its path, then its leaf (encoded here, not hashed).
    fn path(&self, index: u64, value: &[u8]) -> Vec<Bytes> {
        let key = key(index);
        let inner = self.inner.matching_nodes_sorted(&key);
        // Every inner node on a path ends in a branch (an extension's child is one): the leaf
        // sits one nibble below the last.
        let depth = inner.last().map_or(0, |(path, _)| path.len() + 1);
        let leaf = LeafNode::new(key.slice(depth..), value.to_vec());
        let mut nodes: Vec<Bytes> = inner.into_iter().map(|(_, node)| node).collect();
        nodes.push(alloy_rlp::encode(&leaf).into());
        nodes
    }

    /// The proof of item `index` (`value` its encoding) of the block with `header`, whose
    /// `item` root must be this trie's.
    pub fn prove(
        &self,
        item: Item,
        header: &EthHeader,
        index: u64,
        value: Bytes,
    ) -> Result<InclusionProof, InclusionError> {
        let number = header.header.number;
        if index >= self.count as u64 {
            return Err(InclusionError::NoSuchItem { number, item, index, count: self.count });
        }
        let claimed = item.root_in(header);
        if self.root != claimed {
            return Err(InclusionError::RootMismatch { number, item, claimed, computed: self.root });
        }
        let nodes = self.path(index, &value);
        Ok(InclusionProof { item, header: header.clone(), block_hash: header.hash, index, value, nodes })
    }
}

/// Built [`BlockTrie`]s by (block hash, item), bounded by their bytes: a block's second proof
/// hashes nothing. The tries are content-addressed — a header's hash commits to its roots, and
/// a trie is kept only once its root matched the header's — so one cache serves every store
/// of a process and never needs invalidating (a pruned or reorged block's entry is merely
/// unused until evicted).
#[derive(Clone)]
pub struct TrieCache(moka::sync::Cache<(B256, Item), std::sync::Arc<BlockTrie>>);

impl std::fmt::Debug for TrieCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrieCache({} tries)", self.0.entry_count())
    }
}

/// The process-wide cache's bound, in bytes of the tries' inner nodes (a trie over n items
/// holds about n / 16 + 1 branch nodes of up to 532 bytes).
pub const SHARED_CACHE_BYTES: u64 = 32 << 20;

static SHARED: std::sync::LazyLock<TrieCache> = std::sync::LazyLock::new(|| TrieCache::new(SHARED_CACHE_BYTES));

impl TrieCache {
    /// A cache of at most about `max_bytes` of inner nodes.
    pub fn new(max_bytes: u64) -> Self {
        TrieCache(
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, t: &std::sync::Arc<BlockTrie>| u32::try_from(t.bytes() + 64).unwrap_or(u32::MAX))
                .build(),
        )
    }

    /// The process-wide cache ([`SHARED_CACHE_BYTES`]) that [`prove_in`] and the facade use.
    pub fn shared() -> &'static TrieCache {
        &SHARED
    }

    /// The `item` trie of the block with `header`, built from `values` (called only when the
    /// cache lacks it; the items' encodings) and kept if its root is the header's.
    pub fn get_or_build<E>(
        &self,
        item: Item,
        header: &EthHeader,
        values: impl FnOnce() -> Result<Vec<Vec<u8>>, E>,
    ) -> Result<std::sync::Arc<BlockTrie>, E>
    where
        E: From<InclusionError>,
    {
        let key = (header.hash, item);
        if let Some(trie) = self.0.get(&key) {
            return Ok(trie);
        }
        let trie = std::sync::Arc::new(BlockTrie::build(&values()?));
        let claimed = item.root_in(header);
        if trie.root != claimed {
            let number = header.header.number;
            return Err(InclusionError::RootMismatch { number, item, claimed, computed: trie.root }.into());
        }
        self.0.insert(key, trie.clone());
        Ok(trie)
    }
}

fn prove(item: Item, header: &EthHeader, values: Vec<Vec<u8>>, index: u64) -> Result<InclusionProof, InclusionError> {
    let number = header.header.number;
    let value = usize::try_from(index).ok().and_then(|i| values.get(i)).cloned().ok_or(InclusionError::NoSuchItem {
        number,
        item,
        index,
        count: values.len(),
    })?;
    BlockTrie::build(&values).prove(item, header, index, value.into())
}

/// The proof of transaction `index` of the block with `header` and `transactions`: every
/// transaction hashed, their root checked against the header's (no cache; see [`prove_in`]
/// and [`TrieCache`] for proofs that reuse a block's trie).
pub fn transaction_proof(
    header: &EthHeader,
    transactions: &[EthTx],
    index: u64,
) -> Result<InclusionProof, InclusionError> {
    prove(Item::Transaction, header, tx_values(transactions), index)
}

/// The proof of receipt `index` of the block with `header` and `receipts`: every receipt
/// hashed, their root checked against the header's (no cache).
pub fn receipt_proof(
    header: &EthHeader,
    receipts: &[EthReceipt],
    index: u64,
) -> Result<InclusionProof, InclusionError> {
    prove(Item::Receipt, header, receipt_values(receipts), index)
}

/// The transactions' encodings (the transactions trie's values).
pub fn tx_values(transactions: &[EthTx]) -> Vec<Vec<u8>> {
    transactions.iter().map(|t| t.0.encoded_2718()).collect()
}

/// The receipts' encodings (the receipts trie's values).
pub fn receipt_values(receipts: &[EthReceipt]) -> Vec<Vec<u8>> {
    receipts.iter().map(|r| r.to_envelope().encoded_2718()).collect()
}

/// A block's items of one kind.
#[derive(Debug, Clone, Copy)]
pub enum Items<'a> {
    /// Its transactions.
    Transactions(&'a [EthTx]),
    /// Its receipts.
    Receipts(&'a [EthReceipt]),
}

/// The proof of item `index` of a block with `header`, given its items, through `cache`: the
/// block's trie is built (and checked against the header) on its first proof only; the proof is
/// verified before it is returned, which checks the proven item against the trie.
pub fn cached_proof(
    cache: &TrieCache,
    header: &EthHeader,
    items: Items<'_>,
    index: u64,
) -> Result<InclusionProof, InclusionError> {
    let at = usize::try_from(index).unwrap_or(usize::MAX);
    let (item, count, value) = match items {
        Items::Transactions(t) => (Item::Transaction, t.len(), t.get(at).map(|t| t.0.encoded_2718())),
        Items::Receipts(r) => (Item::Receipt, r.len(), r.get(at).map(|r| r.to_envelope().encoded_2718())),
    };
    let number = header.header.number;
    let value = value.ok_or(InclusionError::NoSuchItem { number, item, index, count })?;
    let trie = cache.get_or_build(item, header, || {
        Ok::<_, InclusionError>(match items {
            Items::Transactions(t) => tx_values(t),
            Items::Receipts(r) => receipt_values(r),
        })
    })?;
    let proof = trie.prove(item, header, index, value.into())?;
    proof.verify()?;
    Ok(proof)
}

/// The proof of a canonical transaction's `item` (the transaction or its receipt) from the
/// blocks `chain` holds, through the shared [`TrieCache`]; `Ok(None)` for a transaction the
/// chain does not hold. (The facade's reader also proves blocks read through the history
/// archive.)
pub fn prove_in<S: storage_api::KvReader>(
    chain: &chain_store::ChainStore<S, crate::Eth>,
    tx_hash: &B256,
    item: Item,
) -> Result<Option<InclusionProof>, ProveError> {
    prove_in_with(chain, TrieCache::shared(), tx_hash, item)
}

/// [`prove_in`] with the caller's cache. A block whose trie is cached costs the header, the one
/// item and no hashing of items; otherwise its items are read and hashed once. The proof is
/// verified before it is returned.
pub fn prove_in_with<S: storage_api::KvReader>(
    chain: &chain_store::ChainStore<S, crate::Eth>,
    cache: &TrieCache,
    tx_hash: &B256,
    item: Item,
) -> Result<Option<InclusionProof>, ProveError> {
    let Some(at) = chain.tx_location(tx_hash)? else { return Ok(None) };
    let missing = || chain_store::ChainError::BadRecord {
        number: at.number,
        reason: format!("indexes transaction {tx_hash} but the block is missing"),
    };
    let header = chain.header(&at.block)?.ok_or_else(missing)?;
    let (value, trie) = match item {
        Item::Transaction => {
            let (tx, _) = chain.transaction(tx_hash)?.ok_or_else(missing)?;
            let trie = cache.get_or_build(item, &header, || {
                let block = chain.block(&at.block)?.ok_or_else(missing)?;
                Ok::<_, ProveError>(tx_values(&block.transactions))
            })?;
            (tx.0.encoded_2718(), trie)
        }
        Item::Receipt => {
            let (receipt, _) = chain.receipt(tx_hash)?.ok_or_else(missing)?;
            let trie = cache.get_or_build(item, &header, || {
                let receipts = chain.receipts(&at.block)?.ok_or_else(missing)?;
                Ok::<_, ProveError>(receipt_values(&receipts))
            })?;
            (receipt.to_envelope().encoded_2718(), trie)
        }
    };
    let proof = trie.prove(item, &header, at.index.into(), value.into())?;
    // The item was read apart from the items the trie was built of: checked together.
    proof.verify()?;
    Ok(Some(proof))
}

/// A proof that cannot be built from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// The store's read failed.
    #[error(transparent)]
    Chain(#[from] chain_store::ChainError),
    /// The block's data does not prove.
    #[error(transparent)]
    Inclusion(#[from] InclusionError),
}

impl InclusionProof {
    /// Verifies the proof on its own: the header hashes to the block hash, and the nodes lead
    /// from the header's root to the value at the index's key.
    pub fn verify(&self) -> Result<(), InclusionError> {
        let computed = alloy_primitives::keccak256(self.header.rlp());
        if computed != self.block_hash {
            return Err(InclusionError::HeaderHash { claimed: self.block_hash, computed });
        }
        let path = |reason: String| InclusionError::Path {
            number: self.header.header.number,
            item: self.item,
            index: self.index,
            reason,
        };
        verify_proof(self.item.root_in(&self.header), key(self.index), Some(self.value.to_vec()), &self.nodes)
            .map_err(|e| path(e.to_string()))
    }

    /// Verifies the proof and chains it to mainnet's history: `header` must be the proof of
    /// this block's header, leading to `accumulator`'s root of its epoch (pre-merge blocks).
    /// Returns the epoch.
    pub fn verify_with_header(
        &self,
        header: &crate::header_proof::HeaderProof,
        accumulator: &crate::accumulator::Accumulator,
    ) -> Result<u64, InclusionError> {
        self.verify()?;
        let path = |reason: String| InclusionError::Path {
            number: self.header.header.number,
            item: self.item,
            index: self.index,
            reason,
        };
        if header.header.hash != self.block_hash {
            return Err(path(format!("the header proof is of block {}, not of this one", header.header.hash)));
        }
        header.verify(accumulator).map_err(|e| path(format!("its header: {e}")))
    }

    /// The transaction the proof is of (`None` for a receipt's proof, or a value that does not
    /// decode).
    pub fn transaction(&self) -> Option<EthTx> {
        (self.item == Item::Transaction).then(|| EthTx::decode(&self.value).ok()).flatten()
    }
}
