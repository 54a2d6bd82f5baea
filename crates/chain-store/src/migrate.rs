//! The chain schema's migration steps, applied by `storage-migrate`.
//!
//! | from | to | table | change |
//! |------|----|-------|--------|
//! | 1 | 2 | `bodies` | a block's transactions move from one value per block to one per transaction (`transactions`, keyed height ‖ hash ‖ index); `bodies` keeps a [`BodyRecord`] (value format 2) |
//! | 2 | 3 | `receipts` | a block's receipts move from one value per block (key height ‖ hash) to one per transaction (key height ‖ hash ‖ index) |
//!
//! Version 1 databases were written by models whose transactions carry their senders (the
//! synthetic [`crate::evm::Evm`] model); a transaction that does not is refused by step 1 → 2.
//! [`fixture`] writes version-1 databases for tests and rehearsals.

use std::marker::PhantomData;

use storage_api::codec::split_version;
use storage_api::migration::{EntryError, MigrationStep};
use storage_api::{KeyCodec, PostcardValue, RawBatch, Table, ValueCodec};

use crate::model::{ChainModel, Transaction};
use crate::schema::{BlockKey, Bodies, BodyRecord, Fixed, Receipts, Stored, Transactions, TxKey};

/// Every chain migration step for model `M`, oldest first.
pub fn steps<M: ChainModel>() -> Vec<Box<dyn MigrationStep>> {
    vec![Box::new(TransactionsPerRow::<M>(PhantomData)), Box::new(ReceiptsPerRow::<M>(PhantomData))]
}

fn entry_error(e: impl std::fmt::Display) -> EntryError {
    EntryError::new(e.to_string())
}

/// Decodes a postcard value behind the format-version byte `version`, whole.
fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8], version: u8, what: &str) -> Result<T, EntryError> {
    match split_version(bytes).map_err(entry_error)? {
        (v, payload) if v == version => match postcard::take_from_bytes::<T>(payload) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(EntryError::new(format!("{} trailing bytes after {what}", rest.len()))),
            Err(e) => Err(EntryError::new(format!("{what} does not decode: {e}"))),
        },
        (v, _) => Err(EntryError::new(format!("{what}: value format {v}, expected {version}"))),
    }
}

fn encode<V: ValueCodec>(value: &V) -> Result<Vec<u8>, EntryError> {
    let mut out = Vec::new();
    value.encode_value(&mut out).map_err(entry_error)?;
    Ok(out)
}

/// The value format of version-1 per-block values (`Stored<Vec<…>>`).
const V1_FORMAT: u8 = 1;

/// Chain 1 → 2: every block's transactions become one row each; `bodies` keeps the count.
pub struct TransactionsPerRow<M>(PhantomData<fn() -> M>);

impl<M: ChainModel> MigrationStep for TransactionsPerRow<M> {
    fn source_version(&self) -> u32 {
        1
    }

    fn description(&self) -> &'static str {
        "bodies: one row per transaction in `transactions`; `bodies` keeps the count (value format 2)"
    }

    fn table(&self) -> &'static str {
        Bodies::<M>::NAME
    }

    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
        let (number, hash) = BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        let (version, _) = split_version(value).map_err(entry_error)?;
        if version == <BodyRecord<M> as PostcardValue>::FORMAT_VERSION {
            return Ok(false); // done by an earlier, interrupted run
        }
        let txs: Vec<M::Tx> = decode_exact(value, V1_FORMAT, "a version-1 body")?;
        for (i, tx) in txs.iter().enumerate() {
            if tx.sender().is_none() {
                return Err(EntryError::new(format!(
                    "transaction {i} does not carry its sender; version-1 databases of such models cannot be migrated"
                )));
            }
            let k: TxKey<M> = (number, hash, i as u32);
            out.put_raw(Transactions::<M>::NAME, &k.to_key_bytes(), &encode(&Stored(tx.clone()))?)
                .map_err(entry_error)?;
        }
        // Version 1 kept a change set for every block.
        let record = BodyRecord::<M> { tx_count: txs.len() as u32, has_changes: true, extra: Default::default() };
        out.put_raw(Bodies::<M>::NAME, key, &encode(&record)?).map_err(entry_error)?;
        Ok(true)
    }

    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
        BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        BodyRecord::<M>::decode_value(value).map(|_| ()).map_err(entry_error)
    }
}

/// Chain 2 → 3: every block's receipts become one row each, keyed like its transactions.
pub struct ReceiptsPerRow<M>(PhantomData<fn() -> M>);

impl<M: ChainModel> MigrationStep for ReceiptsPerRow<M> {
    fn source_version(&self) -> u32 {
        2
    }

    fn description(&self) -> &'static str {
        "receipts: one row per transaction (key height, hash, index) instead of one per block"
    }

    fn table(&self) -> &'static str {
        Receipts::<M>::NAME
    }

    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
        if TxKey::<M>::decode_key(key).is_ok() {
            return Ok(false); // already one row per transaction
        }
        let (number, hash): (u64, Fixed<M::Hash>) = BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        let receipts: Vec<M::Receipt> = decode_exact(value, V1_FORMAT, "a version-1 receipts value")?;
        for (i, receipt) in receipts.into_iter().enumerate() {
            let k: TxKey<M> = (number, hash, i as u32);
            out.put_raw(Receipts::<M>::NAME, &k.to_key_bytes(), &encode(&Stored(receipt))?).map_err(entry_error)?;
        }
        out.delete_raw(Receipts::<M>::NAME, key).map_err(entry_error)?;
        Ok(true)
    }

    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
        TxKey::<M>::decode_key(key).map_err(|_| EntryError::new("a receipt still keyed by block"))?;
        Stored::<M::Receipt>::decode_value(value).map(|_| ()).map_err(entry_error)
    }
}

/// Databases as older versions of this crate wrote them, for tests and migration rehearsals.
pub mod fixture {
    use storage_api::error::Part;
    use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaRecord};
    use storage_api::table::META_TABLE;
    use storage_api::{Direction, Durability, KeyCodec, KvStore, RawBatch, ReadExt, Table, ValueCodec, WriteError};

    use crate::error::ChainError;
    use crate::model::{BlockRef, ChainModel};
    use crate::schema::{Bodies, ChangeSet, Receipts, Senders, StateChanges, Stored, Transactions, block_key};
    use crate::{ChainStore, Pointers};

    /// Rewrites a current chain database as chain schema 1 wrote it: one value per block in
    /// `bodies` and `receipts`, a change set for every block, no per-transaction rows, and the
    /// schema record at version 1 (with version 1's tables). Reopen the store afterwards.
    /// Returns the blocks rewritten.
    pub fn downgrade_to_v1<S: KvStore, M: ChainModel>(store: ChainStore<S, M>) -> Result<(S, u64), ChainError> {
        let ptrs: Pointers<M::Hash> = store.pointers();
        let blocks: Vec<BlockRef<M::Hash>> = store
            .store()
            .iter_all::<Bodies<M>>(Direction::Forward)?
            .keys()
            .map(|k| k.map(|(number, hash)| BlockRef { number, hash: hash.0 }))
            .collect::<Result<_, _>>()?;
        for chunk in blocks.chunks(200) {
            let mut batch = store.store().raw_batch();
            for at in chunk {
                let key = block_key::<M>(at).to_key_bytes();
                let block = store.block(&at.hash)?.ok_or_else(|| store.missing::<Bodies<M>>(at.number, &at.hash))?;
                let receipts = store.block_receipts(at)?;
                let enc = |v: &dyn Fn(&mut Vec<u8>) -> Result<(), storage_api::codec::CodecError>, table| {
                    let mut out = Vec::new();
                    v(&mut out).map_err(|source| WriteError::Encode { table, part: Part::Value, source })?;
                    Ok::<_, WriteError>(out)
                };
                let body = enc(&|o| Stored(block.transactions.clone()).encode_value(o), Bodies::<M>::NAME)?;
                batch.put_raw(Bodies::<M>::NAME, &key, &body)?;
                let rs = enc(&|o| Stored(receipts.clone()).encode_value(o), Receipts::<M>::NAME)?;
                batch.put_raw(Receipts::<M>::NAME, &key, &rs)?;
                for table in [Transactions::<M>::NAME, Receipts::<M>::NAME, Senders::<M>::NAME] {
                    let (mut lo, mut hi) = (key.clone(), key.clone());
                    lo.extend_from_slice(&0u32.to_be_bytes());
                    hi.extend_from_slice(&u32::MAX.to_be_bytes());
                    hi.push(0);
                    batch.delete_range_raw(table, &storage_api::RawRange { lower: Some(lo), upper: Some(hi) })?;
                }
                if store.change_set(at)?.is_none() && at.number >= ptrs.pruned_below {
                    let empty = ChangeSet::<M> { writes: Vec::new(), previous: Some(Vec::new()) };
                    let cs = enc(&|o| Stored(empty.clone()).encode_value(o), StateChanges::<M>::NAME)?;
                    batch.put_raw(StateChanges::<M>::NAME, &key, &cs)?;
                }
            }
            store.store().write_raw(batch, Durability::Synced)?;
        }
        let inner = store.into_inner();
        if inner.schema().name() != M::SCHEMA_NAME {
            return Err(ChainError::WrongSchema(inner.schema().name().to_owned()));
        }
        let mut record = SchemaRecord::for_schema(inner.schema());
        record.version = 1;
        record.tables.retain(|t| t != Transactions::<M>::NAME && t != Senders::<M>::NAME);
        let bytes =
            record.encode().map_err(|source| WriteError::Encode { table: META_TABLE, part: Part::Value, source })?;
        let mut batch = inner.raw_batch();
        batch.put_raw(META_TABLE, SCHEMA_RECORD_KEY, &bytes)?;
        inner.write_raw(batch, Durability::Synced)?;
        Ok((inner, blocks.len() as u64))
    }
}
