//! era1 files from a hostile source: reading one block by block and checking its index and
//! accumulator never panics, never allocates beyond the reader's bounds, and whatever it
//! accepts is internally consistent (the summary matches the blocks read). The input is the
//! file, written to a temporary path.
#![no_main]

use chain_eth::era1::{Era1Reader, MAX_BLOCKS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("input.era1");
    std::fs::write(&path, data).expect("the input written");
    let Ok(mut reader) = Era1Reader::open(&path) else { return };
    let mut numbers = Vec::new();
    loop {
        match reader.next_block() {
            Ok(Some(block)) => numbers.push(block.number()),
            Ok(None) => break,
            Err(_) => return,
        }
        assert!(numbers.len() <= MAX_BLOCKS, "more blocks than an era1 file holds");
    }
    if let Ok(summary) = reader.finish() {
        assert_eq!(summary.count as usize, numbers.len());
        assert_eq!(Some(&summary.start), numbers.first());
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "blocks in order");
    }
});
