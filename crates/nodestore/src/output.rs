//! Human output: aligned tables and hex; JSON for scripts.

/// Lowercase hex with a `0x` prefix.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Parses `0x`-prefixed (or bare) hex of exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(s: &str, what: &str) -> anyhow::Result<[u8; N]> {
    let t = s.strip_prefix("0x").unwrap_or(s);
    anyhow::ensure!(t.len() == N * 2, "{what} `{s}`: expected {} hex digits, got {}", N * 2, t.len());
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|_| anyhow::anyhow!("{what} `{s}`: not hex"))?;
    }
    Ok(out)
}

/// Parses `0x`-prefixed (or bare) hex into an `Id` of the model.
pub(crate) fn parse_id<T: node_storage::chain::Id>(s: &str, what: &str) -> anyhow::Result<T> {
    let t = s.strip_prefix("0x").unwrap_or(s);
    let width = T::default().as_ref().len();
    anyhow::ensure!(t.len() == 2 * width, "{what} `{s}`: expected {} hex digits, got {}", 2 * width, t.len());
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{what} `{s}`: not hex"))?;
    T::try_from(&bytes).map_err(|_| anyhow::anyhow!("{what} `{s}`: {} bytes is the wrong length", bytes.len()))
}

/// Prints rows as a table with aligned columns (numbers right-aligned).
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit() || matches!(ch, '.' | '%' | ',')) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Bytes in human units.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Prints `value` as pretty JSON.
pub(crate) fn json(value: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}
