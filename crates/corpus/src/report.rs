//! `corpus stats --report out.html`: one self-contained HTML page (no scripts, no external
//! files) with inline SVG plots drawn by `plotters`.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::stats::{CorpusStats, Distribution};

const W: u32 = 640;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart of (label, value) pairs, horizontal so long package names stay readable; the
/// first item is drawn at the top.
fn bars(title: &str, items: &[(String, u64)]) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    let height = (70 + 24 * items.len() as u32).max(160);
    {
        let root = SVGBackend::with_string(&mut svg, (W, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = items.iter().map(|(_, v)| *v).max().unwrap_or(1).max(1) as f64;
        let n = items.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..max * 1.1, -0.5f64..n - 0.5)?;
        let label_of = |y: &f64| -> String {
            let i = y.round();
            if (y - i).abs() > 1e-6 || i < 0.0 || i >= n {
                return String::new();
            }
            // Row 0 is at the bottom of the plot: count from the top instead.
            items
                .get((n - 1.0 - i) as usize)
                .map(|(l, _)| l.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(items.len().max(1) * 2 + 1)
            .y_label_formatter(&label_of)
            .x_label_formatter(&|x: &f64| format!("{}", x.round() as u64))
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v))| {
            let row = n - 1.0 - i as f64;
            Rectangle::new(
                [(0.0, row - 0.38), (*v as f64, row + 0.38)],
                RGBColor(70, 110, 170).filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

/// A histogram over log2 buckets of a length distribution.
fn length_histogram(title: &str, d: &Distribution) -> Result<String, Box<dyn std::error::Error>> {
    // Shortest lengths at the top, empty buckets at either end left out.
    let first = d.buckets.iter().position(|(_, c)| *c > 0).unwrap_or(0);
    let last = d
        .buckets
        .iter()
        .rposition(|(_, c)| *c > 0)
        .map_or(0, |i| i + 1);
    let items: Vec<(String, u64)> = d.buckets[first..last.max(first)]
        .iter()
        .map(|(hi, c)| (format!("≤ {hi}"), *c))
        .collect();
    bars(title, &items)
}

fn table(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    s.push_str("</table>");
    s
}

/// Renders the page.
pub fn html_report(stats: &CorpusStats, title: &str) -> Result<String, String> {
    let render = || -> Result<String, Box<dyn std::error::Error>> {
        let mut body = String::new();
        let _ = write!(body, "<h1>{}</h1>", escape(title));
        let pct = |c: u64, s: f64| format!("{c} ({:.1}%)", s * 100.0);
        let mut rows = vec![
            ("records", stats.records.to_string()),
            ("files", stats.read.files.to_string()),
            ("distinct packages", stats.distinct_packages.to_string()),
            (
                "with docstring",
                pct(stats.with_docstring.count, stats.with_docstring.share),
            ),
            (
                "with summary",
                pct(stats.with_summary.count, stats.with_summary.share),
            ),
            (
                "exact duplicates",
                pct(stats.exact_duplicates.count, stats.exact_duplicates.share),
            ),
            ("rejected lines", stats.read.rejected_total().to_string()),
        ];
        let parts: Vec<String> = stats
            .records_per_partition
            .iter()
            .map(|(p, n)| format!("{p}: {n}"))
            .collect();
        rows.push(("partitions", parts.join(", ")));
        body.push_str(&table(&rows));
        body.push_str("<h2>Lengths</h2><table><tr><th></th><th>min</th><th>p25</th><th>p50</th><th>p75</th><th>p90</th><th>p99</th><th>max</th></tr>");
        for (name, d) in [
            ("code chars", &stats.code_chars),
            ("code whitespace tokens", &stats.code_whitespace_tokens),
            ("docstring chars", &stats.docstring_chars),
            (
                "docstring whitespace tokens",
                &stats.docstring_whitespace_tokens,
            ),
        ] {
            let _ = write!(
                body,
                "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.min, d.p25, d.p50, d.p75, d.p90, d.p99, d.max
            );
        }
        body.push_str("</table>");
        body.push_str(&length_histogram(
            "Code length (characters, log2 buckets)",
            &stats.code_chars,
        )?);
        body.push_str(&length_histogram(
            "Docstring length (characters, log2 buckets)",
            &stats.docstring_chars,
        )?);
        let top: Vec<(String, u64)> = stats
            .top_packages
            .iter()
            .take(25)
            .map(|p| (p.name.clone(), p.records))
            .collect();
        body.push_str("<h2>Packages</h2>");
        body.push_str(&bars("Records per package (top 25)", &top)?);
        if let Some(l) = &stats.licenses {
            body.push_str("<h2>Licenses</h2>");
            let classes: Vec<(String, u64)> = l
                .records_by_class
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            body.push_str(&bars("Records per license class", &classes)?);
            let mut ids: Vec<(String, u64)> = l
                .records_by_license
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ids.truncate(20);
            body.push_str(&bars("Records per license (top 20)", &ids)?);
        }
        Ok(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}\
             table{{border-collapse:collapse;margin:1em 0}}th,td{{padding:2px 10px;text-align:right}}\
             th{{text-align:left}}svg{{display:block;margin:1em 0}}</style></head><body>{body}</body></html>\n",
            escape(title)
        ))
    };
    render().map_err(|e| format!("drawing the report failed: {e}"))
}
