//! Segment files from a hostile archive: a segment (`.seg`) and its hash table (`.keys`) with
//! any contents, behind a manifest and watermark that match their sizes and hashes (so the
//! reader gets past them), read through the public archive API — point reads, batched reads,
//! lookups by hash, blooms and a whole verification. Nothing may panic or allocate without
//! bound; every answer is either an error or records the files really hold. The input is the
//! segment, then a 0xFF 0x00 0xFF separator, then the hash table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_history::{HistoryConfig, HistoryTier, Kind, TierKind};

const PER_SEGMENT: u64 = 16;

fuzz_target!(|data: &[u8]| {
    let (segment, keys) = match data.windows(3).position(|w| w == [0xff, 0x00, 0xff]) {
        Some(i) => (&data[..i], &data[i + 3..]),
        None => (data, &data[..0]),
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let chain = dir.path().join("chain");
    std::fs::create_dir_all(&chain).expect("the archive's directory");
    std::fs::write(chain.join("000000000000.seg"), segment).expect("the segment");
    std::fs::write(chain.join("000000000000.keys"), keys).expect("the hash table");
    let manifest = serde_json::json!({
        "format": 1, "kind": "chain", "segment": 0, "first": 0, "count": PER_SEGMENT,
        "size": segment.len(), "blake3": blake3::hash(segment).to_hex().to_string(),
        "keys_size": keys.len(), "keys_blake3": blake3::hash(keys).to_hex().to_string(),
    });
    std::fs::write(chain.join("000000000000.json"), manifest.to_string()).expect("the manifest");
    let mark = serde_json::json!({
        "format": 1, "kind": "chain", "per_segment": PER_SEGMENT,
        "mark": { "first": 0, "next": PER_SEGMENT, "last_hash": "00" },
    });
    std::fs::write(chain.join("watermark.json"), mark.to_string()).expect("the watermark");
    let mut config = HistoryConfig { kind: Some(TierKind::Segments), ..HistoryConfig::default() };
    config.segments.destination = dir.path().display().to_string();
    config.segments.blocks_per_segment = PER_SEGMENT;
    config.timeout_ms = 5_000;
    let Ok(Some(tier)) = storage_history::Archive::open(&config) else { return };
    for n in [0, 1, PER_SEGMENT - 1, PER_SEGMENT] {
        let _ = tier.chain_record(n);
    }
    let _ = tier.chain_records(&[0, 3, 7, PER_SEGMENT - 1, PER_SEGMENT + 5]);
    let probe: Vec<u8> = keys.iter().copied().chain(std::iter::repeat(0)).take(32).collect();
    let _ = tier.tx(&probe);
    let _ = tier.blooms(0, PER_SEGMENT - 1);
    let _ = tier.section_bits(0, &[0, 1, 2047]);
    let mut seen = 0u64;
    if let Ok(report) = tier.verify(&(), &mut |kind, _, _| {
        assert_eq!(kind, Kind::Chain);
        seen += 1;
        Ok(())
    }) {
        assert!(report.items <= PER_SEGMENT && seen == report.items);
    }
});
