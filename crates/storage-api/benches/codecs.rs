//! Criterion micro-benchmarks of the key and value codecs and of the typed-table layer (typed
//! batch building and typed point reads over the in-memory backend, against the same raw
//! operations). `cargo bench -p storage-api --bench codecs`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use storage_api::mem::MemStore;
use storage_api::{Blob, Durability, KeyCodec, KvRead, KvWrite, RawBatch, ReadExt, Schema, ValueCodec, table};

table! {
    /// Benchmark table.
    struct Txs("txs"): [u8; 32] => Blob;
    /// Benchmark table with a composite key.
    struct ByAddress("by_address"): ([u8; 20], u64, u32) => [u8; 32];
}

fn codecs(c: &mut Criterion) {
    let key = ([7u8; 20], 123_456_789u64, 42u32);
    c.bench_function("key/encode composite (address, height, index)", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(&key).encode_key(&mut out);
            black_box(&out);
        })
    });
    let bytes = key.to_key_bytes();
    c.bench_function("key/decode composite", |b| {
        b.iter(|| <([u8; 20], u64, u32)>::decode_key(black_box(&bytes)).unwrap())
    });
    let blob = Blob(vec![0xab; 200]);
    c.bench_function("value/encode blob 200 B", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            black_box(&blob).encode_value(&mut out).unwrap();
        })
    });
    let mut encoded = Vec::new();
    blob.encode_value(&mut encoded).unwrap();
    c.bench_function("value/decode blob 200 B", |b| b.iter(|| Blob::decode_value(black_box(&encoded)).unwrap()));
    let record = (123_456u64, "a postcard value with a string".to_owned());
    c.bench_function("value/encode postcard (u64, String)", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter(|| {
            out.clear();
            black_box(&record).encode_value(&mut out).unwrap();
        })
    });
    let mut pc = Vec::new();
    record.encode_value(&mut pc).unwrap();
    c.bench_function("value/decode postcard (u64, String)", |b| {
        b.iter(|| <(u64, String)>::decode_value(black_box(&pc)).unwrap())
    });
}

fn typed_layer(c: &mut Criterion) {
    let store = MemStore::new(Schema::new("bench", 1).with::<Txs>().with::<ByAddress>());
    let hashes: Vec<[u8; 32]> = (0..1000u32)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..4].copy_from_slice(&i.to_be_bytes());
            h
        })
        .collect();
    let value = Blob(vec![1; 200]);
    let mut batch = store.batch();
    for h in &hashes {
        batch.put::<Txs>(h, &value).unwrap();
    }
    store.write(batch, Durability::Buffered).unwrap();

    c.bench_function("batch/typed put x100", |b| {
        b.iter(|| {
            let mut batch = store.batch();
            for h in &hashes[..100] {
                batch.put::<Txs>(h, &value).unwrap();
            }
            black_box(batch.len())
        })
    });
    let mut raw_value = vec![Blob::FORMAT_VERSION];
    raw_value.extend_from_slice(&value.0);
    c.bench_function("batch/raw put x100", |b| {
        b.iter(|| {
            let mut batch = store.raw_batch();
            for h in &hashes[..100] {
                batch.put_raw("txs", h, &raw_value).unwrap();
            }
            black_box(batch.len())
        })
    });
    c.bench_function("read/typed get", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hashes.len();
            store.get::<Txs>(&hashes[i]).unwrap()
        })
    });
    c.bench_function("read/raw get", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hashes.len();
            store.get_raw_with("txs", &hashes[i], <[u8]>::to_vec).unwrap()
        })
    });
}

criterion_group!(benches, codecs, typed_layer);
criterion_main!(benches);
