//! Key and value codecs.
//!
//! Keys use an order-preserving encoding: comparing encoded keys byte by byte gives the same
//! order as comparing the keys themselves. Integers are big-endian (signed integers with the
//! sign bit flipped), hashes are fixed-width byte arrays and composite keys are tuples whose
//! components, all but the last, have a fixed width. A [`KeyPrefix`] of a composite key selects
//! a contiguous key range, which is how prefix scans work.
//!
//! Values carry a leading format-version byte so their encoding can evolve. Most values use
//! postcard behind that byte ([`PostcardValue`]); opaque byte strings use [`Blob`].

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A value had no bytes at all, so not even a format-version byte.
    #[error("empty value: the format-version byte is missing")]
    Empty,
    /// A value was written with a format version this build cannot read.
    #[error("unknown value format version {found} (this build reads versions up to {supported})")]
    UnknownVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build understands.
        supported: u8,
    },
    /// A fixed-width key or value had the wrong length.
    #[error("wrong length: expected {expected} bytes, found {found}")]
    Length {
        /// The width the type requires.
        expected: usize,
        /// The number of bytes present.
        found: usize,
    },
    /// Bytes were left over after decoding a complete value.
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    /// The bytes are not a valid encoding of the type.
    #[error("corrupt encoding: {0}")]
    Corrupt(String),
}

/// An order-preserving key encoding.
///
/// Implementations must guarantee that for keys `a` and `b` of one type,
/// `a.cmp(&b) == encode(a).cmp(&encode(b))`, and that decoding an encoding gives the key back.
pub trait KeyCodec: Sized {
    /// Appends the encoded key to `out`.
    fn encode_key(&self, out: &mut Vec<u8>);
    /// Decodes a key from exactly `bytes`.
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError>;

    /// Encodes the key into a new buffer.
    fn to_key_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_key(&mut out);
        out
    }
}

/// A key whose encoding always has the same width, so it can stand before other components in
/// a composite key.
pub trait FixedWidthKey: KeyCodec {
    /// The encoded width in bytes.
    const WIDTH: usize;
}

/// A prefix of a composite key `K`: every key that starts with this prefix encodes to bytes
/// that start with the prefix's encoding, so the keys form one contiguous range.
pub trait KeyPrefix<K: KeyCodec> {
    /// Appends the encoded prefix to `out`.
    fn encode_prefix(&self, out: &mut Vec<u8>);
}

fn exact<const N: usize>(bytes: &[u8]) -> Result<[u8; N], CodecError> {
    bytes.try_into().map_err(|_| CodecError::Length { expected: N, found: bytes.len() })
}

macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl KeyCodec for $t {
            #[inline]
            fn encode_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
                Ok(<$t>::from_be_bytes(exact(bytes)?))
            }
        }
        impl FixedWidthKey for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
        }
    )*};
}
unsigned_key!(u8, u16, u32, u64, u128);

macro_rules! signed_key {
    ($($t:ty => $u:ty),*) => {$(
        impl KeyCodec for $t {
            #[inline]
            fn encode_key(&self, out: &mut Vec<u8>) {
                // Flipping the sign bit maps i::MIN..=i::MAX onto 0..=u::MAX in order.
                let flipped = (*self as $u) ^ (1 << (<$u>::BITS - 1));
                out.extend_from_slice(&flipped.to_be_bytes());
            }
            #[inline]
            fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
                let flipped = <$u>::from_be_bytes(exact(bytes)?);
                Ok((flipped ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
        impl FixedWidthKey for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
        }
    )*};
}
signed_key!(i32 => u32, i64 => u64);

impl<const N: usize> KeyCodec for [u8; N] {
    #[inline]
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    #[inline]
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        exact(bytes)
    }
}
impl<const N: usize> FixedWidthKey for [u8; N] {
    const WIDTH: usize = N;
}

/// The unit key, for tables holding a single record.
impl KeyCodec for () {
    fn encode_key(&self, _out: &mut Vec<u8>) {}
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.is_empty() { Ok(()) } else { Err(CodecError::Trailing(bytes.len())) }
    }
}
impl FixedWidthKey for () {
    const WIDTH: usize = 0;
}

/// Variable-length byte keys, compared lexicographically. Only valid as the whole key or the
/// last component of a composite key.
impl KeyCodec for Vec<u8> {
    #[inline]
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    #[inline]
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.to_vec())
    }
}

/// UTF-8 string keys, compared bytewise. Only valid as the whole key or the last component.
impl KeyCodec for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| CodecError::Corrupt(e.to_string()))
    }
}

fn split_fixed<A: FixedWidthKey>(bytes: &[u8]) -> Result<(A, &[u8]), CodecError> {
    if bytes.len() < A::WIDTH {
        return Err(CodecError::Length { expected: A::WIDTH, found: bytes.len() });
    }
    let (head, rest) = bytes.split_at(A::WIDTH);
    Ok((A::decode_key(head)?, rest))
}

impl<A: FixedWidthKey, B: KeyCodec> KeyCodec for (A, B) {
    #[inline]
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        let (a, rest) = split_fixed::<A>(bytes)?;
        Ok((a, B::decode_key(rest)?))
    }
}
impl<A: FixedWidthKey, B: FixedWidthKey> FixedWidthKey for (A, B) {
    const WIDTH: usize = A::WIDTH + B::WIDTH;
}

impl<A: FixedWidthKey, B: FixedWidthKey, C: KeyCodec> KeyCodec for (A, B, C) {
    #[inline]
    fn encode_key(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
        self.2.encode_key(out);
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        let (a, rest) = split_fixed::<A>(bytes)?;
        let (b, rest) = split_fixed::<B>(rest)?;
        Ok((a, b, C::decode_key(rest)?))
    }
}
impl<A: FixedWidthKey, B: FixedWidthKey, C: FixedWidthKey> FixedWidthKey for (A, B, C) {
    const WIDTH: usize = A::WIDTH + B::WIDTH + C::WIDTH;
}

impl<A: FixedWidthKey, B: KeyCodec> KeyPrefix<(A, B)> for A {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        self.encode_key(out);
    }
}
impl<A: FixedWidthKey, B: FixedWidthKey, C: KeyCodec> KeyPrefix<(A, B, C)> for A {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        self.encode_key(out);
    }
}
impl<A: FixedWidthKey, B: FixedWidthKey, C: KeyCodec> KeyPrefix<(A, B, C)> for (A, B) {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        self.0.encode_key(out);
        self.1.encode_key(out);
    }
}

/// Implements [`KeyCodec`] and [`FixedWidthKey`] for a tuple-struct newtype around a fixed-width
/// key, for example `pub struct BlockHash(pub [u8; 32]);`.
#[macro_export]
macro_rules! newtype_key {
    ($ty:ty, $inner:ty) => {
        impl $crate::codec::KeyCodec for $ty {
            #[inline]
            fn encode_key(&self, out: &mut ::std::vec::Vec<u8>) {
                <$inner as $crate::codec::KeyCodec>::encode_key(&self.0, out)
            }
            #[inline]
            fn decode_key(bytes: &[u8]) -> ::std::result::Result<Self, $crate::codec::CodecError> {
                <$inner as $crate::codec::KeyCodec>::decode_key(bytes).map(Self)
            }
        }
        impl $crate::codec::FixedWidthKey for $ty {
            const WIDTH: usize = <$inner as $crate::codec::FixedWidthKey>::WIDTH;
        }
    };
}

/// A value encoding with a leading format-version byte.
pub trait ValueCodec: Sized {
    /// Appends the encoded value to `out`.
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError>;
    /// Decodes a value from exactly `bytes`.
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError>;
}

/// Values stored as postcard behind a format-version byte.
///
/// Implement this marker for a serde type to make it a table value. When the encoding of a
/// type changes, raise [`PostcardValue::FORMAT_VERSION`] and decode the older versions in
/// [`PostcardValue::decode_older`], so existing databases stay readable.
pub trait PostcardValue: Serialize + DeserializeOwned {
    /// The format version written by this build. Never 0.
    const FORMAT_VERSION: u8 = 1;

    /// Decodes a value written with an older format version (`version < FORMAT_VERSION`).
    /// The default supports none.
    fn decode_older(version: u8, _payload: &[u8]) -> Result<Self, CodecError> {
        Err(CodecError::UnknownVersion { found: version, supported: Self::FORMAT_VERSION })
    }
}

/// Decodes a whole postcard payload, rejecting trailing bytes.
pub fn postcard_decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(payload).map_err(|e| CodecError::Corrupt(e.to_string()))?;
    if rest.is_empty() { Ok(value) } else { Err(CodecError::Trailing(rest.len())) }
}

/// Splits a value into its format-version byte and payload.
pub fn split_version(bytes: &[u8]) -> Result<(u8, &[u8]), CodecError> {
    bytes.split_first().map(|(v, rest)| (*v, rest)).ok_or(CodecError::Empty)
}

/// A postcard output that appends to a `Vec` with `push` (postcard's own `to_extend` goes
/// through `Extend` one byte at a time, which profiles showed at a tenth of a bulk import).
struct VecFlavor<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for VecFlavor<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

impl<T: PostcardValue> ValueCodec for T {
    #[inline]
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.push(T::FORMAT_VERSION);
        postcard::serialize_with_flavor(self, VecFlavor(out)).map_err(|e| CodecError::Corrupt(e.to_string()))
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        let (version, payload) = split_version(bytes)?;
        match version {
            v if v == T::FORMAT_VERSION => postcard_decode(payload),
            v if v != 0 && v < T::FORMAT_VERSION => T::decode_older(v, payload),
            v => Err(CodecError::UnknownVersion { found: v, supported: T::FORMAT_VERSION }),
        }
    }
}

macro_rules! postcard_values {
    ($($t:ty),*) => {$( impl PostcardValue for $t {} )*};
}
postcard_values!(bool, u8, u16, u32, u64, u128, i32, i64, String);
impl<const N: usize> PostcardValue for [u8; N] where [u8; N]: Serialize + DeserializeOwned {}
impl<A: PostcardValue, B: PostcardValue> PostcardValue for (A, B) {}
impl<T: PostcardValue> PostcardValue for Option<T> {}

/// The empty value, for index tables whose information is all in the key. Encodes to no bytes.
impl ValueCodec for () {
    fn encode_value(&self, _out: &mut Vec<u8>) -> Result<(), CodecError> {
        Ok(())
    }
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.is_empty() { Ok(()) } else { Err(CodecError::Trailing(bytes.len())) }
    }
}

/// An opaque byte string stored as-is behind a format-version byte (no postcard framing), for
/// values the caller encodes itself, such as raw transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    /// The format version of a blob.
    pub const FORMAT_VERSION: u8 = 1;
}

impl ValueCodec for Blob {
    #[inline]
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.reserve(1 + self.0.len());
        out.push(Self::FORMAT_VERSION);
        out.extend_from_slice(&self.0);
        Ok(())
    }
    #[inline]
    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        match split_version(bytes)? {
            (Self::FORMAT_VERSION, payload) => Ok(Blob(payload.to_vec())),
            (v, _) => Err(CodecError::UnknownVersion { found: v, supported: Self::FORMAT_VERSION }),
        }
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Blob(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc<K: KeyCodec>(k: &K) -> Vec<u8> {
        k.to_key_bytes()
    }

    proptest! {
        #[test]
        fn u64_order_and_roundtrip(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
            prop_assert_eq!(u64::decode_key(&enc(&a)).unwrap(), a);
        }

        #[test]
        fn i64_order_and_roundtrip(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
            prop_assert_eq!(i64::decode_key(&enc(&a)).unwrap(), a);
        }

        #[test]
        fn i32_order(a: i32, b: i32) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
        }

        #[test]
        fn composite_order_and_roundtrip(a: ([u8; 4], u64, Vec<u8>), b: ([u8; 4], u64, Vec<u8>)) {
            prop_assert_eq!(a.cmp(&b), enc(&a).cmp(&enc(&b)));
            prop_assert_eq!(<([u8; 4], u64, Vec<u8>)>::decode_key(&enc(&a)).unwrap(), a);
        }

        #[test]
        fn prefix_is_byte_prefix(a: (u32, u16, u8)) {
            let mut p = Vec::new();
            KeyPrefix::<(u32, u16, u8)>::encode_prefix(&(a.0, a.1), &mut p);
            prop_assert!(enc(&a).starts_with(&p));
            let mut p1 = Vec::new();
            KeyPrefix::<(u32, u16, u8)>::encode_prefix(&a.0, &mut p1);
            prop_assert!(p.starts_with(&p1));
        }

        #[test]
        fn key_decode_never_panics(bytes: Vec<u8>) {
            let _ = u64::decode_key(&bytes);
            let _ = <(u64, [u8; 3], String)>::decode_key(&bytes);
            let _ = <(i32, u8)>::decode_key(&bytes);
        }

        #[test]
        fn value_decode_never_panics(bytes: Vec<u8>) {
            let _ = <(u64, String)>::decode_value(&bytes);
            let _ = Blob::decode_value(&bytes);
            let _ = <Option<[u8; 32]>>::decode_value(&bytes);
        }

        #[test]
        fn postcard_value_roundtrip(v: (u64, String)) {
            let mut out = Vec::new();
            v.encode_value(&mut out).unwrap();
            prop_assert_eq!(out[0], 1);
            prop_assert_eq!(<(u64, String)>::decode_value(&out).unwrap(), v);
        }
    }

    #[test]
    fn value_version_errors() {
        assert_eq!(u64::decode_value(&[]), Err(CodecError::Empty));
        assert_eq!(u64::decode_value(&[9, 1]), Err(CodecError::UnknownVersion { found: 9, supported: 1 }));
        assert_eq!(u64::decode_value(&[0, 1]), Err(CodecError::UnknownVersion { found: 0, supported: 1 }));
        assert!(matches!(u64::decode_value(&[1, 1, 7]), Err(CodecError::Trailing(1))));
        assert!(matches!(u64::decode_value(&[1, 0xff]), Err(CodecError::Corrupt(_))));
        assert_eq!(Blob::decode_value(&[2]), Err(CodecError::UnknownVersion { found: 2, supported: 1 }));
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct V2 {
        a: u32,
        b: String,
    }
    impl PostcardValue for V2 {
        const FORMAT_VERSION: u8 = 2;
        fn decode_older(version: u8, payload: &[u8]) -> Result<Self, CodecError> {
            match version {
                1 => Ok(V2 { a: postcard_decode(payload)?, b: String::new() }),
                v => Err(CodecError::UnknownVersion { found: v, supported: 2 }),
            }
        }
    }

    #[test]
    fn older_versions_decode_through_hook() {
        let mut v1 = vec![1];
        v1.extend(postcard::to_allocvec(&7u32).unwrap());
        assert_eq!(V2::decode_value(&v1).unwrap(), V2 { a: 7, b: String::new() });
        assert!(matches!(V2::decode_value(&[3]), Err(CodecError::UnknownVersion { found: 3, .. })));
    }

    #[test]
    fn key_length_errors() {
        assert_eq!(u64::decode_key(&[1, 2]), Err(CodecError::Length { expected: 8, found: 2 }));
        assert!(<(u64, u8)>::decode_key(&[0; 3]).is_err());
        assert!(<()>::decode_key(&[1]).is_err());
    }
}
