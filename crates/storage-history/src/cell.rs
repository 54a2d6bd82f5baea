//! How archived records are compressed: a codec byte, then the payload. zstd frames carry
//! their content size and checksum, so a damaged cell or frame is an error, and the size is
//! capped before anything is allocated.

/// Stored as is (blooms, small values).
pub(crate) const RAW: u8 = 0;
/// zstd with content size and checksum.
pub(crate) const ZSTD: u8 = 1;
/// Largest record this build decompresses (a block with its receipts is far smaller).
pub(crate) const MAX_RECORD: usize = 256 << 20;

/// `bytes` compressed at `level` (kept raw when that is not smaller).
pub(crate) fn pack(bytes: &[u8], level: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() / 2 + 16);
    out.push(ZSTD);
    let compressed = {
        let mut encoder = match zstd::bulk::Compressor::new(level) {
            Ok(e) => e,
            Err(_) => return raw(bytes),
        };
        let _ = encoder.include_checksum(true);
        let _ = encoder.include_contentsize(true);
        encoder.compress(bytes)
    };
    match compressed {
        Ok(c) if c.len() < bytes.len() => {
            out.extend_from_slice(&c);
            out
        }
        _ => raw(bytes),
    }
}

fn raw(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 1);
    out.push(RAW);
    out.extend_from_slice(bytes);
    out
}

/// The payload of a packed cell or frame; an error names what is wrong.
pub(crate) fn unpack(cell: &[u8]) -> Result<Vec<u8>, String> {
    let (&codec, payload) = cell.split_first().ok_or("empty record")?;
    match codec {
        RAW => Ok(payload.to_vec()),
        ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(payload)
                .map_err(|_| "not a zstd frame".to_owned())?
                .ok_or("zstd frame without its content size")?;
            if size > MAX_RECORD as u64 {
                return Err(format!("record of {size} bytes is over the {MAX_RECORD}-byte limit"));
            }
            let out = zstd::bulk::decompress(payload, size as usize).map_err(|e| format!("zstd: {e}"))?;
            if out.len() as u64 != size {
                return Err(format!("decompressed {} bytes, frame says {size}", out.len()));
            }
            Ok(out)
        }
        other => Err(format!("unknown record codec {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_damage_is_an_error() {
        let text = b"history history history history history history history".repeat(20);
        let packed = pack(&text, 3);
        assert_eq!(packed[0], ZSTD);
        assert!(packed.len() < text.len());
        assert_eq!(unpack(&packed).unwrap(), text);
        let noise: Vec<u8> = (0..64u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let packed = pack(&noise, 3);
        assert_eq!(packed[0], RAW, "incompressible bytes stay raw");
        assert_eq!(unpack(&packed).unwrap(), noise);
        let good = pack(&text, 3);
        for i in 1..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x55;
            if let Ok(out) = unpack(&bad) {
                assert_eq!(out, text, "a flipped byte that still decodes must decode to the original");
            }
        }
        for cut in 0..good.len() {
            assert!(unpack(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(unpack(&[9, 1, 2]).is_err());
    }
}
