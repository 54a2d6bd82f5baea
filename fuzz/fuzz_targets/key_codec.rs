//! Key decoding never panics; whatever decodes re-encodes to the same bytes; and the encoding
//! preserves order between any two keys that decode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_api::KeyCodec;

fn check<K: KeyCodec + Ord + std::fmt::Debug>(a: &[u8], b: &[u8]) {
    let (Ok(ka), Ok(kb)) = (K::decode_key(a), K::decode_key(b)) else { return };
    assert_eq!(ka.to_key_bytes(), a, "{ka:?} does not re-encode to its bytes");
    assert_eq!(ka.cmp(&kb), a.cmp(b), "order of {ka:?} and {kb:?} differs from their bytes");
}

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    check::<u64>(a, b);
    check::<i64>(a, b);
    check::<i32>(a, b);
    check::<[u8; 32]>(a, b);
    check::<(u32, u16)>(a, b);
    check::<(u64, [u8; 4], Vec<u8>)>(a, b);
    check::<([u8; 20], u64, u32)>(a, b);
    let _ = String::decode_key(data);
});
