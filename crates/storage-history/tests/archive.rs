//! Both archives on real servers: the Bigtable emulator, a local directory and the s3s-fs S3
//! server, all on loopback. Uploads in units, reads of every kind, refusals, tampering,
//! outages.

use storage_history::testkit::{Emulator, Proxy};
use storage_history::{
    Archive, BitSection, ChainItem, DagItem, HistoryConfig, HistoryError, HistoryTier, Kind, SECTION_BITS,
    SECTION_VECTOR_BYTES, TierKind,
};

fn hash(tag: &[u8], n: u64, i: u64) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(tag);
    h.update(&n.to_le_bytes());
    h.update(&i.to_le_bytes());
    h.finalize().as_bytes().to_vec()
}

fn block(n: u64) -> ChainItem {
    let record = format!("block {n} ").repeat(10 + (n % 7) as usize).into_bytes();
    let mut bloom = vec![0u8; 256];
    bloom[(n % 256) as usize] = 0x80 | (n as u8 & 0x7f);
    ChainItem {
        number: n,
        hash: hash(b"b", n, 0),
        record,
        bloom,
        tx_hashes: (0..3).map(|i| hash(b"t", n, i)).collect(),
    }
}

fn vertex(s: u64) -> DagItem {
    DagItem { sequence: s, hash: hash(b"v", s, 0), record: format!("vertex {s}").repeat(5).into_bytes() }
}

/// The section's vectors as the facade derives them from the blocks' blooms.
fn section(items: &[ChainItem], s: u64) -> BitSection {
    let mut vectors = vec![vec![0u8; SECTION_VECTOR_BYTES]; SECTION_BITS];
    for item in items.iter().filter(|i| i.number / 4096 == s) {
        let j = (item.number % 4096) as usize;
        for (byte, b) in item.bloom.iter().enumerate() {
            for k in 0..8 {
                if b & (0x80 >> k) != 0 {
                    vectors[byte * 8 + k][j / 8] |= 0x80 >> (j % 8);
                }
            }
        }
    }
    BitSection { section: s, vectors }
}

/// Uploads blocks `first..end` and vertices `0..vertices` unit by unit, as the node does.
fn upload_all(tier: &Archive, first: u64, end: u64, vertices: u64) {
    let blocks: Vec<ChainItem> = (first..end).map(block).collect();
    let mut next = first;
    while let Some(unit) = tier.next_unit(Kind::Chain, next, end - 1) {
        let items: Vec<ChainItem> = blocks[(*unit.start() - first) as usize..=(*unit.end() - first) as usize].to_vec();
        let sections: Vec<BitSection> = items
            .iter()
            .filter(|i| (i.number + 1).is_multiple_of(4096))
            .map(|i| section(&blocks, i.number / 4096))
            .collect();
        let up = tier.upload_chain(&items, &sections).unwrap();
        assert_eq!(up.mark.next, unit.end() + 1);
        assert!(up.bytes > 0);
        next = up.mark.next;
    }
    let mut next = 0;
    while let Some(unit) = tier.next_unit(Kind::Dag, next, vertices - 1) {
        let items: Vec<DagItem> = unit.map(vertex).collect();
        next = tier.upload_dag(&items).unwrap().mark.next;
    }
}

/// What every archive must answer after `upload_all(tier, first, 4096 + tail, …)`.
fn reads_back(tier: &Archive, first: u64, archived_end: u64, vertices_end: u64) {
    let mark = tier.mark(Kind::Chain).unwrap().unwrap();
    assert_eq!((mark.first, mark.next), (first, archived_end));
    assert_eq!(mark.last_hash, block(archived_end - 1).hash);
    for n in [first, first + 1, 1000, 4095, archived_end - 1] {
        assert_eq!(tier.chain_record(n).unwrap(), Some(block(n).record), "block {n}");
        let tx = tier.tx(&hash(b"t", n, 2)).unwrap().unwrap();
        assert_eq!((tx.number, tx.index), (n, 2));
    }
    assert_eq!(tier.chain_record(archived_end).unwrap(), None, "above the watermark");
    if first > 0 {
        assert_eq!(tier.chain_record(first - 1).unwrap(), None, "below the first block");
    }
    assert_eq!(tier.tx(&hash(b"t", archived_end + 5, 0)).unwrap(), None);
    let blooms = tier.blooms(3990, 4100).unwrap();
    assert_eq!(blooms.len() as u64, 4100.min(archived_end - 1) - 3990 + 1, "clipped at the watermark");
    for (n, b) in &blooms {
        assert_eq!(b, &block(*n).bloom);
    }
    let all: Vec<ChainItem> = (first..archived_end).map(block).collect();
    let expected = section(&all, 0);
    let got = tier.section_bits(0, &[0, 7, 2047]).unwrap().expect("section 0 archived");
    assert_eq!(got, vec![expected.vectors[0].clone(), expected.vectors[7].clone(), expected.vectors[2047].clone()]);
    assert_eq!(tier.section_bits(1, &[0]).unwrap(), None, "section 1 is incomplete");
    for s in [0, 17, vertices_end - 1] {
        assert_eq!(tier.vertex(s).unwrap(), Some((vertex(s).hash, vertex(s).record)));
        assert_eq!(tier.vertex_sequence(&vertex(s).hash).unwrap(), Some(s));
    }
    assert_eq!(tier.vertex(vertices_end).unwrap(), None);
    // Uploads continue the watermark or are refused.
    assert!(matches!(tier.upload_chain(&[block(first + 3)], &[]), Err(HistoryError::NotNext { .. })));
    assert!(matches!(tier.upload_dag(&[vertex(0)]), Err(HistoryError::NotNext { .. })));
    let mut seen = (0u64, 0u64);
    let report = tier
        .verify(&(), &mut |kind, n, record| {
            let want = match kind {
                Kind::Chain => block(n).record,
                Kind::Dag => vertex(n).record,
            };
            match kind {
                Kind::Chain => seen.0 += 1,
                Kind::Dag => seen.1 += 1,
            }
            if record == want { Ok(()) } else { Err("record differs".into()) }
        })
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(seen, (archived_end - first, vertices_end));
}

#[test]
fn bigtable_round_trip() {
    let Some(emulator) = Emulator::start_or_skip("bigtable_round_trip") else { return };
    let mut config = emulator.config("rt-");
    config.bigtable_batch_blocks = 700;
    let tier = Archive::open(&config).unwrap().unwrap();
    assert!(tier.mark(Kind::Chain).unwrap().is_none());
    upload_all(&tier, 5, 4_400, 300);
    reads_back(&tier, 5, 4_400, 300);
    // A second opener (a reader on another machine) sees the same archive.
    let reader = Archive::open(&config).unwrap().unwrap();
    assert_eq!(reader.chain_record(4_000).unwrap(), Some(block(4_000).record));
}

fn segment_config(destination: String) -> HistoryConfig {
    let mut c = HistoryConfig { kind: Some(TierKind::Segments), ..HistoryConfig::default() };
    c.segments.destination = destination;
    c.segments.blocks_per_segment = 512;
    c.segments.vertices_per_segment = 100;
    c
}

#[test]
fn local_segments_round_trip_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let config = segment_config(dir.path().display().to_string());
    let tier = Archive::open(&config).unwrap().unwrap();
    // Units are whole segments: heights 5..512, then 512-block segments.
    assert_eq!(tier.next_unit(Kind::Chain, 5, 600), Some(5..=511));
    assert_eq!(tier.next_unit(Kind::Chain, 512, 1000), None, "segment 1 is not final yet");
    assert!(matches!(tier.upload_chain(&[block(5), block(6)], &[]), Err(HistoryError::NotAUnit { .. })));
    upload_all(&tier, 5, 4_700, 300);
    // 4,700 is not a segment boundary: the archive ends at the last whole segment.
    reads_back(&tier, 5, 4_608, 300);
    // Another layout is refused, not misread.
    let mut other = config.clone();
    other.segments.blocks_per_segment = 1024;
    let err = Archive::open(&other).unwrap().unwrap().mark(Kind::Chain).unwrap_err();
    assert!(matches!(err, HistoryError::Layout { .. }), "{err}");

    // A damaged frame is an error naming the object, never a wrong record.
    let seg = dir.path().join("chain/000000000002.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[3] ^= 0xff; // inside the first frame of segment 2 (height 1024)
    std::fs::write(&seg, &bytes).unwrap();
    let fresh = Archive::open(&config).unwrap().unwrap();
    let err = fresh.chain_record(1024).unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("000000000002.seg"), "{err}");
    assert_eq!(fresh.chain_record(1100).unwrap(), Some(block(1100).record), "other frames still read");
    let report = fresh.verify(&(), &mut |_, _, _| Ok(())).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("000000000002.seg"), "{:?}", report.problems);

    // A damaged bloom-bit vector is caught by its check.
    let bits = dir.path().join("chain/bits/000000000000.bits");
    let mut bytes = std::fs::read(&bits).unwrap();
    let at = SECTION_BITS * 16 + 7 * SECTION_VECTOR_BYTES + 3;
    bytes[at] ^= 0x10;
    std::fs::write(&bits, &bytes).unwrap();
    assert!(matches!(fresh.section_bits(0, &[7]), Err(HistoryError::Corrupt { .. })));
    assert!(fresh.section_bits(0, &[8]).unwrap().is_some());
}

#[test]
fn s3_segments_round_trip_and_outage() {
    let mut server = storage_backup::testkit::S3Server::start();
    let s3 = server.config("history");
    let mut config = segment_config(s3.destination.clone());
    config.segments.endpoint = s3.endpoint.clone();
    config.segments.region = s3.region.clone();
    config.segments.allow_http = true;
    config.segments.credentials = s3.credentials.clone();
    config.segments.max_retries = 1;
    config.timeout_ms = 5_000;
    let tier = Archive::open(&config).unwrap().unwrap();
    upload_all(&tier, 0, 4_096, 200);
    reads_back(&tier, 0, 4_096, 200);
    server.stop();
    let fresh = Archive::open(&config).unwrap().unwrap();
    let err = fresh.chain_record(10).unwrap_err();
    assert!(err.is_unavailable(), "an archive that is down is unavailable, not empty: {err}");
    let err = tier.upload_chain(&(4_096..4_608).map(block).collect::<Vec<_>>(), &[]).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    server.restart();
    assert_eq!(fresh.chain_record(10).unwrap(), Some(block(10).record));
    let up = tier.upload_chain(&(4_096..4_608).map(block).collect::<Vec<_>>(), &[]).unwrap();
    assert_eq!(up.mark.next, 4_608);
}

#[test]
fn bigtable_outage_is_unavailable_and_uploads_resume() {
    let Some(emulator) = Emulator::start_or_skip("bigtable_outage_is_unavailable_and_uploads_resume") else {
        return;
    };
    let proxy = Proxy::start(emulator.addr());
    let mut config = storage_history::testkit::config_at(&proxy.addr().to_string(), "out-");
    config.timeout_ms = 3_000;
    let tier = Archive::open(&config).unwrap().unwrap();
    tier.upload_chain(&(0..100).map(block).collect::<Vec<_>>(), &[]).unwrap();
    proxy.cut();
    let err = tier.chain_record(5).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    let err = tier.upload_chain(&(100..200).map(block).collect::<Vec<_>>(), &[]).unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    proxy.restore();
    // The same range again: idempotent rows, then the watermark.
    let mut tries = 0;
    let up = loop {
        match tier.upload_chain(&(100..200).map(block).collect::<Vec<_>>(), &[]) {
            Ok(up) => break up,
            Err(e) if e.is_unavailable() && tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(up.mark.next, 200);
    assert_eq!(tier.chain_record(150).unwrap(), Some(block(150).record));
}

#[test]
fn missing_tables_are_named_when_not_created() {
    let Some(emulator) = Emulator::start_or_skip("missing_tables_are_named_when_not_created") else { return };
    let mut config = emulator.config("none-");
    config.bigtable.create_tables = false;
    let tier = Archive::open(&config).unwrap().unwrap();
    let err = tier.mark(Kind::Chain).unwrap_err();
    assert!(matches!(err, HistoryError::NoTable { .. }), "{err}");
    assert!(err.to_string().contains("none-meta"), "{err}");
}
