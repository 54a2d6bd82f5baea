//! The chain schema's migration steps, applied by `storage-migrate`.
//!
//! | from | to | table | change |
//! |------|----|-------|--------|
//! | 1 | 2 | `bodies` | a block's transactions move to `transactions`, packed (each decodable alone); `bodies` keeps a [`BodyRecord`] (value format 2) |
//! | 2 | 3 | `receipts` | a block's receipts are packed (value format 2: each decodable alone) instead of one postcard list |
//!
//! Version 1 databases were written by models whose transactions carry their senders (the
//! synthetic [`crate::synthetic::Synthetic`] model); a transaction that does not is refused by step 1 → 2.
//! [`fixture`] writes version-1 databases for tests and rehearsals.

use std::marker::PhantomData;

use storage_api::codec::split_version;
use storage_api::migration::{EntryError, MigrationStep};
use storage_api::{KeyCodec, PostcardValue, RawBatch, Table, ValueCodec};

use crate::model::{ChainModel, Transaction};
use crate::packed::{PACKED_FORMAT, Packed};
use crate::schema::{BlockKey, Bodies, BodyRecord, Receipts, Transactions};

/// Every chain migration step for model `M`, oldest first.
pub fn steps<M: ChainModel>() -> Vec<Box<dyn MigrationStep>> {
    vec![Box::new(PackTransactions::<M>(PhantomData)), Box::new(PackReceipts::<M>(PhantomData))]
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

/// Chain 1 → 2: every block's transactions move to `transactions`, packed; `bodies` keeps the
/// count.
pub struct PackTransactions<M>(PhantomData<fn() -> M>);

impl<M: ChainModel> MigrationStep for PackTransactions<M> {
    fn source_version(&self) -> u32 {
        1
    }

    fn description(&self) -> &'static str {
        "bodies: transactions moved to `transactions`, packed one by one; `bodies` keeps the count (value format 2)"
    }

    fn table(&self) -> &'static str {
        Bodies::<M>::NAME
    }

    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
        BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        let (version, _) = split_version(value).map_err(entry_error)?;
        if version == <BodyRecord<M> as PostcardValue>::FORMAT_VERSION {
            return Ok(false); // done by an earlier, interrupted run
        }
        let txs: Vec<M::Tx> = match split_version(value).map_err(entry_error)? {
            (V1_FORMAT, payload) => M::decode_v1_transactions(payload)
                .map_err(|e| EntryError::new(format!("a version-1 body does not decode: {e}")))?,
            (v, _) => return Err(EntryError::new(format!("a version-1 body: value format {v}, expected {V1_FORMAT}"))),
        };
        if let Some(i) = txs.iter().position(|tx| tx.sender().is_none()) {
            return Err(EntryError::new(format!(
                "transaction {i} does not carry its sender; version-1 databases of such models cannot be migrated"
            )));
        }
        let packed = Packed::pack(txs.iter()).map_err(entry_error)?;
        out.put_raw(Transactions::<M>::NAME, key, &encode(&packed)?).map_err(entry_error)?;
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

/// Chain 2 → 3: every block's receipts are packed, each decodable alone.
pub struct PackReceipts<M>(PhantomData<fn() -> M>);

impl<M: ChainModel> MigrationStep for PackReceipts<M> {
    fn source_version(&self) -> u32 {
        2
    }

    fn description(&self) -> &'static str {
        "receipts: packed one by one (value format 2) instead of one postcard list per block"
    }

    fn table(&self) -> &'static str {
        Receipts::<M>::NAME
    }

    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
        BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        if split_version(value).map_err(entry_error)?.0 == PACKED_FORMAT {
            return Ok(false); // done by an earlier, interrupted run
        }
        let receipts: Vec<M::Receipt> = decode_exact(value, V1_FORMAT, "a version-1 receipts value")?;
        let packed = Packed::pack(receipts.iter()).map_err(entry_error)?;
        out.put_raw(Receipts::<M>::NAME, key, &encode(&packed)?).map_err(entry_error)?;
        Ok(true)
    }

    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
        BlockKey::<M>::decode_key(key).map_err(entry_error)?;
        Packed::<M::Receipt>::decode_value(value).and_then(|p| p.unpack()).map(drop).map_err(entry_error)
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
    use crate::synthetic::{EvmTxV1, Synthetic};
    use crate::{ChainStore, Pointers};

    /// Rewrites a current chain database of the synthetic model as chain schema 1 wrote it (the
    /// only model that had version-1 databases): one postcard list per block in `bodies` and
    /// `receipts` (transactions in their version-1 form), a change set for every block, nothing
    /// in `transactions` or `senders`, and the schema record at version 1 (with version 1's
    /// tables). Reopen the store afterwards. Returns the blocks rewritten.
    pub fn downgrade_to_v1<S: KvStore>(store: ChainStore<S, Synthetic>) -> Result<(S, u64), ChainError> {
        type M = Synthetic;
        let ptrs: Pointers<crate::synthetic::B256> = store.pointers();
        let blocks: Vec<BlockRef<crate::synthetic::B256>> = store
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
                let v1: Vec<EvmTxV1> = block.transactions.iter().cloned().map(EvmTxV1::from).collect();
                let body = enc(&|o| Stored(v1.clone()).encode_value(o), Bodies::<M>::NAME)?;
                batch.put_raw(Bodies::<M>::NAME, &key, &body)?;
                let rs = enc(&|o| Stored(receipts.clone()).encode_value(o), Receipts::<M>::NAME)?;
                batch.put_raw(Receipts::<M>::NAME, &key, &rs)?;
                batch.delete_raw(Transactions::<M>::NAME, &key)?;
                batch.delete_raw(Senders::<M>::NAME, &key)?;
                if store.change_set(at)?.is_none() && at.number >= ptrs.pruned_below {
                    let empty = ChangeSet::<M> { writes: Vec::new(), previous: Some(Vec::new()) };
                    let cs = enc(&|o| Stored(empty.clone()).encode_value(o), StateChanges::<M>::NAME)?;
                    batch.put_raw(StateChanges::<M>::NAME, &key, &cs)?;
                }
            }
            store.store().write_raw(batch, Durability::Synced)?;
        }
        let inner = store.into_inner();
        if inner.schema().name() != <M as ChainModel>::SCHEMA_NAME {
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
