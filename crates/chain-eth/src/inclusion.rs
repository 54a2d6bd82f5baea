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
use alloy_trie::proof::{ProofRetainer, verify_proof};
use alloy_trie::root::adjust_index_for_rlp;
use alloy_trie::{EMPTY_ROOT_HASH, HashBuilder, Nibbles};

use crate::{EthHeader, EthReceipt, EthTx};

/// Which trie of a block an item is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The root of the ordered trie over `values` and the proof nodes of item `target` (root
/// first).
fn root_and_proof(values: &[Vec<u8>], target: usize) -> (B256, Vec<Bytes>) {
    if values.is_empty() {
        return (EMPTY_ROOT_HASH, Vec::new());
    }
    let target = key(target as u64);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![target]));
    for i in 0..values.len() {
        let index = adjust_index_for_rlp(i, values.len());
        hb.add_leaf(key(index as u64), &values[index]);
    }
    let root = hb.root();
    let nodes = hb.take_proof_nodes().into_nodes_sorted().into_iter().map(|(_, node)| node).collect();
    (root, nodes)
}

fn prove(item: Item, header: &EthHeader, values: Vec<Vec<u8>>, index: u64) -> Result<InclusionProof, InclusionError> {
    let number = header.header.number;
    let at = usize::try_from(index).ok().filter(|i| *i < values.len()).ok_or(InclusionError::NoSuchItem {
        number,
        item,
        index,
        count: values.len(),
    })?;
    let (root, nodes) = root_and_proof(&values, at);
    let claimed = item.root_in(header);
    if root != claimed {
        return Err(InclusionError::RootMismatch { number, item, claimed, computed: root });
    }
    let value = Bytes::from(values.into_iter().nth(at).expect("index checked"));
    Ok(InclusionProof { item, header: header.clone(), block_hash: header.hash, index, value, nodes })
}

/// The proof of transaction `index` of the block with `header` and `transactions` (checked to
/// hash to the header's transactions root).
pub fn transaction_proof(
    header: &EthHeader,
    transactions: &[EthTx],
    index: u64,
) -> Result<InclusionProof, InclusionError> {
    prove(Item::Transaction, header, transactions.iter().map(|t| t.0.encoded_2718()).collect(), index)
}

/// The proof of receipt `index` of the block with `header` and `receipts` (checked to hash to
/// the header's receipts root).
pub fn receipt_proof(
    header: &EthHeader,
    receipts: &[EthReceipt],
    index: u64,
) -> Result<InclusionProof, InclusionError> {
    prove(Item::Receipt, header, receipts.iter().map(|r| r.to_envelope().encoded_2718()).collect(), index)
}

/// The proof of a canonical transaction's `item` (the transaction or its receipt) from the
/// blocks `chain` holds; `Ok(None)` for a transaction the chain does not hold. (The facade's
/// reader also proves blocks read through the history archive.)
pub fn prove_in<S: storage_api::KvReader>(
    chain: &chain_store::ChainStore<S, crate::Eth>,
    tx_hash: &B256,
    item: Item,
) -> Result<Option<InclusionProof>, ProveError> {
    let Some(at) = chain.tx_location(tx_hash)? else { return Ok(None) };
    let missing = || chain_store::ChainError::BadRecord {
        number: at.number,
        reason: format!("indexes transaction {tx_hash} but the block is missing"),
    };
    let block = chain.block(&at.block)?.ok_or_else(missing)?;
    let proof = match item {
        Item::Transaction => transaction_proof(&block.header, &block.transactions, at.index.into())?,
        Item::Receipt => {
            let receipts = chain.receipts(&at.block)?.ok_or_else(missing)?;
            receipt_proof(&block.header, &receipts, at.index.into())?
        }
    };
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

    /// The transaction the proof is of (`None` for a receipt's proof, or a value that does not
    /// decode).
    pub fn transaction(&self) -> Option<EthTx> {
        (self.item == Item::Transaction).then(|| EthTx::decode(&self.value).ok()).flatten()
    }
}
