//! The comparison report: markdown tables for `docs/BENCHMARKS.md` and one SVG bar chart per
//! workload (plotters).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::measure::{Footprint, Row};
use crate::stats::micros;

/// File-name form of a workload name.
pub fn slug(name: &str) -> String {
    let mut s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_owned()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Draws one bar chart of throughput per backend.
pub fn chart(path: &Path, title: &str, unit: &str, bars: &[(&str, f64)]) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (560, 320)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d((0..bars.len()).into_segmented(), 0f64..max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => bars.get(*i).map(|b| b.0.to_owned()).unwrap_or_default(),
            _ => String::new(),
        })
        .y_desc(format!("{unit} / s"))
        .draw()?;
    let colors = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44)];
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        let mut bar = Rectangle::new(
            [(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)],
            colors[i % colors.len()].filled(),
        );
        bar.set_margin(0, 0, 20, 20);
        bar
    }))?;
    root.present()?;
    Ok(())
}

/// The markdown section, with charts written into `charts_dir` (linked as `bench/<slug>.svg`).
pub fn markdown(
    rows: &[Row],
    footprints: &[Footprint],
    charts_dir: &Path,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut out = String::new();
    let mut workloads: Vec<&'static str> = Vec::new();
    for r in rows {
        if !workloads.contains(&r.workload) {
            workloads.push(r.workload);
        }
    }
    for w in workloads {
        let of: Vec<&Row> = rows.iter().filter(|r| r.workload == w).collect();
        let base = of.iter().find(|r| r.backend == "rocksdb").map(|r| r.throughput);
        writeln!(out, "### {w}\n")?;
        writeln!(out, "| backend | {} / s | vs rocksdb | p50 | p99 | note |", of[0].unit)?;
        writeln!(out, "|---|---:|---:|---:|---:|---|")?;
        for r in &of {
            let ratio = base.map_or("–".into(), |b| format!("{:.2}×", r.throughput / b));
            let (p50, p99) = r.latency.map_or(("–".into(), "–".into()), |l| (micros(l.p50), micros(l.p99)));
            writeln!(out, "| {} | {:.0} | {ratio} | {p50} | {p99} | {} |", r.backend, r.throughput, r.note)?;
        }
        let file = format!("{}.svg", slug(w));
        let bars: Vec<(&str, f64)> = of.iter().map(|r| (r.backend, r.throughput)).collect();
        chart(&charts_dir.join(&file), w, of[0].unit, &bars)?;
        writeln!(out, "\n![{w}](bench/{file})\n")?;
    }
    writeln!(out, "### size on disk and reopen time\n")?;
    writeln!(out, "| backend | after ingest | after compaction | reopen after clean close | reopen includes |")?;
    writeln!(out, "|---|---:|---:|---:|---|")?;
    for f in footprints {
        let compacted = f.bytes_after_compaction.map_or("no manual compaction".into(), mib);
        writeln!(
            out,
            "| {} | {} | {compacted} | {:.1} ms | {} |",
            f.backend,
            mib(f.bytes_after_ingest),
            f.reopen.as_secs_f64() * 1e3,
            f.reopen_note
        )?;
    }
    Ok(out)
}

/// Replaces the text between `<!-- {marker}:start -->` and `<!-- {marker}:end -->` in `doc`
/// (appending the markers if absent).
pub fn splice(doc: &str, marker: &str, body: &str) -> String {
    let start = format!("<!-- {marker}:start -->");
    let end = format!("<!-- {marker}:end -->");
    match (doc.find(&start), doc.find(&end)) {
        (Some(s), Some(e)) if s < e => format!("{}{start}\n{body}{}", &doc[..s], &doc[e..]),
        _ => format!("{doc}\n{start}\n{body}{end}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_splices() {
        assert_eq!(slug("300 B values, batch of 1, buffered"), "300-b-values-batch-of-1-buffered");
        let doc = "a\n<!-- x:start -->\nold\n<!-- x:end -->\nb\n";
        assert_eq!(splice(doc, "x", "new\n"), "a\n<!-- x:start -->\nnew\n<!-- x:end -->\nb\n");
        assert!(splice("a\n", "y", "z\n").contains("<!-- y:start -->\nz\n<!-- y:end -->"));
    }

    #[test]
    fn chart_writes_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.svg");
        chart(&path, "t", "ops", &[("a", 1.0), ("b", 2.5)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{svg}");
    }
}
