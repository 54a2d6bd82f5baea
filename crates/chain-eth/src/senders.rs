//! Sender recovery: the secp256k1 public key from each transaction's signature, hashed into
//! its address. It dominates an import's CPU time, so a block's transactions are recovered in
//! parallel across the cores, and the chain store keeps the result.
//!
//! Two maintained implementations are available: libsecp256k1 (Bitcoin Core's C library,
//! through the `secp256k1` crate) and RustCrypto's pure-Rust `k256`. `docs/BENCHMARKS.md` has
//! both measured on this machine; [`Recovery::default`] is the faster.

use alloy_primitives::{Address, B256, Signature, keccak256};

use crate::EthTx;

/// The secp256k1 implementation used for recovery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Recovery {
    /// libsecp256k1 (C), through the `secp256k1` crate. The faster here (see BENCHMARKS).
    #[default]
    Libsecp256k1,
    /// RustCrypto's `k256` (pure Rust).
    K256,
}

/// A transaction whose signature does not recover a sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transaction {index} ({hash}): no sender can be recovered from its signature: {reason}")]
pub struct RecoveryError {
    /// Its position in the block.
    pub index: usize,
    /// Its hash.
    pub hash: B256,
    /// Why.
    pub reason: String,
}

/// The sender of `tx`, with `recovery`. Signatures with a high `s` (not allowed since
/// Homestead, EIP-2) are refused.
pub fn recover(tx: &EthTx, recovery: Recovery) -> Result<Address, String> {
    let signature = tx.0.signature();
    let prehash = tx.0.signature_hash();
    if signature.s() > alloy_consensus::crypto::SECP256K1N_HALF {
        return Err("the signature's s value is above secp256k1n / 2 (EIP-2)".into());
    }
    match recovery {
        Recovery::K256 => signature.recover_address_from_prehash(&prehash).map_err(|e| e.to_string()),
        Recovery::Libsecp256k1 => recover_libsecp256k1(signature, &prehash),
    }
}

fn recover_libsecp256k1(signature: &Signature, prehash: &B256) -> Result<Address, String> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&signature.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&signature.s().to_be_bytes::<32>());
    let id = RecoveryId::try_from(i32::from(signature.v())).map_err(|e| e.to_string())?;
    let sig = RecoverableSignature::from_compact(&compact, id).map_err(|e| e.to_string())?;
    let key = secp256k1::SECP256K1
        .recover_ecdsa(&secp256k1::Message::from_digest(prehash.0), &sig)
        .map_err(|e| e.to_string())?;
    Ok(Address::from_slice(&keccak256(&key.serialize_uncompressed()[1..])[12..]))
}

/// The senders of `txs`, in order, recovered on up to `threads` threads (0: one per core).
/// Small blocks stay on the calling thread, where spawning would cost more than it saves.
pub fn recover_all(txs: &[EthTx], recovery: Recovery, threads: usize) -> Result<Vec<Address>, RecoveryError> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let one = |(index, tx): (usize, &EthTx)| {
        recover(tx, recovery).map_err(|reason| RecoveryError { index, hash: tx.hash(), reason })
    };
    if threads <= 1 || txs.len() < 16 {
        return txs.iter().enumerate().map(one).collect();
    }
    let chunk = txs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                scope.spawn(move || {
                    part.iter().enumerate().map(|(i, tx)| one((c * chunk + i, tx))).collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(txs.len());
        for h in handles {
            out.extend(h.join().expect("a recovery thread panicked")?);
        }
        Ok(out)
    })
}
