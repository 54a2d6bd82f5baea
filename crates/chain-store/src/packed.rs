//! [`Packed`]: one value holding a block's transactions (or receipts, or senders), each
//! encoded on its own behind an offset table, so one of them is decoded without decoding the
//! others and a whole block is one read.
//!
//! Layout: format byte ([`PACKED_FORMAT`]), item count (u32 LE), the end offset of each item
//! (u32 LE, relative to the items area), then the items, each a postcard encoding of `T`.
//! Decoding checks the table (monotonic ends within the value) before any item is touched.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use storage_api::ValueCodec;
use storage_api::codec::{CodecError, postcard_decode};

/// The format byte of packed values (format 1 of these tables held `postcard(Vec<T>)`).
pub const PACKED_FORMAT: u8 = 2;

/// The items of one block, packed; decoded lazily.
#[derive(Clone, PartialEq, Eq)]
pub struct Packed<T> {
    bytes: Vec<u8>,
    _item: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Packed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items = table(&self.bytes).map_or(0, |(count, _, _)| count);
        write!(f, "Packed({items} items, {} bytes)", self.bytes.len())
    }
}

/// The offset table of a packed value: (count, ends, items area). Checked.
fn table(bytes: &[u8]) -> Result<(usize, &[u8], &[u8]), CodecError> {
    let corrupt = |why: &str| CodecError::Corrupt(format!("packed value: {why}"));
    let (&format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if format != PACKED_FORMAT {
        return Err(CodecError::UnknownVersion { found: format, supported: PACKED_FORMAT });
    }
    let count = u32::from_le_bytes(rest.get(..4).ok_or_else(|| corrupt("no count"))?.try_into().unwrap_or_default());
    let count = count as usize;
    let ends_len = count.checked_mul(4).ok_or_else(|| corrupt("count overflows"))?;
    let ends = rest.get(4..4 + ends_len).ok_or_else(|| corrupt("offset table cut short"))?;
    let items = &rest[4 + ends_len..];
    let mut last = 0usize;
    for c in ends.chunks_exact(4) {
        let end = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize;
        if end < last || end > items.len() {
            return Err(corrupt("offsets out of order or out of bounds"));
        }
        last = end;
    }
    if last != items.len() {
        return Err(corrupt("trailing bytes after the last item"));
    }
    Ok((count, ends, items))
}

fn end_at(ends: &[u8], i: usize) -> usize {
    u32::from_le_bytes([ends[4 * i], ends[4 * i + 1], ends[4 * i + 2], ends[4 * i + 3]]) as usize
}

impl<T: Serialize + DeserializeOwned> Packed<T> {
    /// Packs `items`.
    pub fn pack<'a>(items: impl ExactSizeIterator<Item = &'a T>) -> Result<Self, CodecError>
    where
        T: 'a,
    {
        let count = items.len();
        let mut encoded = Vec::new();
        let mut ends = Vec::with_capacity(count);
        for item in items {
            encoded = postcard::to_extend(item, encoded).map_err(|e| CodecError::Corrupt(e.to_string()))?;
            ends.push(u32::try_from(encoded.len()).map_err(|_| CodecError::Corrupt("packed value over 4 GiB".into()))?);
        }
        let mut bytes = Vec::with_capacity(5 + 4 * count + encoded.len());
        bytes.push(PACKED_FORMAT);
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
        for e in ends {
            bytes.extend_from_slice(&e.to_le_bytes());
        }
        bytes.extend_from_slice(&encoded);
        Ok(Packed { bytes, _item: PhantomData })
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        table(&self.bytes).map_or(0, |(count, _, _)| count)
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every item, decoded.
    pub fn unpack(&self) -> Result<Vec<T>, CodecError> {
        unpack_bytes(&self.bytes)
    }

    /// Item `i`, decoded (`None` past the end).
    pub fn get(&self, i: usize) -> Result<Option<T>, CodecError> {
        item_from_bytes(&self.bytes, i)
    }
}

/// Every item of the packed value `bytes`.
pub fn unpack_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<T>, CodecError> {
    let (count, ends, items) = table(bytes)?;
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    for i in 0..count {
        let end = end_at(ends, i);
        out.push(postcard_decode(&items[start..end])?);
        start = end;
    }
    Ok(out)
}

/// Checks the offset table of the packed value `bytes`, as every decode does first (for a
/// caller that looks at the bytes without decoding them).
pub fn check_table(bytes: &[u8]) -> Result<(), CodecError> {
    table(bytes).map(|_| ())
}

/// Item `i` of the packed value `bytes` (the others are not decoded); `None` past the end.
pub fn item_from_bytes<T: DeserializeOwned>(bytes: &[u8], i: usize) -> Result<Option<T>, CodecError> {
    let (count, ends, items) = table(bytes)?;
    if i >= count {
        return Ok(None);
    }
    let start = if i == 0 { 0 } else { end_at(ends, i - 1) };
    postcard_decode(&items[start..end_at(ends, i)]).map(Some)
}

impl<T: Serialize + DeserializeOwned> ValueCodec for Packed<T> {
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(&self.bytes);
        Ok(())
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        table(bytes)?;
        Ok(Packed { bytes: bytes.to_vec(), _item: PhantomData })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_one_and_all() {
        let items: Vec<(u64, String)> = (0..50).map(|i| (i, "x".repeat(i as usize))).collect();
        let p = Packed::pack(items.iter()).unwrap();
        assert_eq!(p.len(), 50);
        assert_eq!(p.unpack().unwrap(), items);
        assert_eq!(p.get(17).unwrap(), Some(items[17].clone()));
        assert_eq!(p.get(50).unwrap(), None);
        let mut enc = Vec::new();
        p.encode_value(&mut enc).unwrap();
        assert_eq!(Packed::<(u64, String)>::decode_value(&enc).unwrap(), p);
        let empty = Packed::<u8>::pack([].iter()).unwrap();
        assert!(empty.is_empty() && empty.unpack().unwrap().is_empty());
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let items: Vec<u32> = (0..10).collect();
        let mut enc = Vec::new();
        Packed::pack(items.iter()).unwrap().encode_value(&mut enc).unwrap();
        for cut in 0..enc.len() {
            let _ = Packed::<u32>::decode_value(&enc[..cut]);
            let _ = item_from_bytes::<u32>(&enc[..cut], 3);
        }
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0xff;
            let _ = unpack_bytes::<u32>(&bad);
            let _ = item_from_bytes::<u32>(&bad, 9);
        }
        assert!(Packed::<u32>::decode_value(&[1, 0, 0, 0, 0]).is_err(), "format 1 is not packed");
        let mut huge = vec![PACKED_FORMAT];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Packed::<u32>::decode_value(&huge).is_err());
    }
}
