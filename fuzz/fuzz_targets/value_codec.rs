//! Value decoding never panics, and whatever decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_api::schema::SchemaRecord;
use storage_api::{Blob, ValueCodec};

fn check<V: ValueCodec + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = V::decode_value(data) {
        let mut out = Vec::new();
        v.encode_value(&mut out).expect("a decoded value encodes");
        assert_eq!(V::decode_value(&out).as_ref(), Ok(&v));
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Blob>(data);
    check::<(u64, String)>(data);
    check::<Option<[u8; 32]>>(data);
    check::<SchemaRecord>(data);
    check::<()>(data);
});
