//! `corpus stats --report out.html`: one self-contained HTML page (no scripts, no external
//! files) with inline SVG plots drawn by `plotters`.

use std::fmt::Write as _;

use plotters::prelude::*;

use crate::stats::{CorpusStats, Distribution};

const W: u32 = 640;

/// Text made safe inside HTML elements and attribute values. Bidirectional controls
/// (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C), which would display the text around them
/// reversed, and control characters other than newline and tab are shown as `<U+202E>`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}' => {
                let _ = write!(out, "&lt;U+{:04X}&gt;", c as u32);
            }
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "&lt;U+{:04X}&gt;", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const BAR: RGBColor = RGBColor(70, 110, 170);

/// The colour of a license class: permissive green, copyleft red, unknown grey, no metadata
/// light grey.
pub fn class_colour(class: &str) -> RGBColor {
    match class {
        "permissive" => RGBColor(60, 150, 80),
        "copyleft" => RGBColor(200, 60, 50),
        "unknown" => RGBColor(140, 140, 140),
        _ => RGBColor(200, 200, 200),
    }
}

/// A bar chart of (label, count) pairs in one colour.
pub fn bars(title: &str, items: &[(String, u64)]) -> Result<String, Box<dyn std::error::Error>> {
    let coloured: Vec<(String, u64, RGBColor)> =
        items.iter().map(|(l, v)| (l.clone(), *v, BAR)).collect();
    coloured_bars(title, &coloured)
}

/// A bar chart of (label, count, colour).
pub fn coloured_bars(
    title: &str,
    items: &[(String, u64, RGBColor)],
) -> Result<String, Box<dyn std::error::Error>> {
    let items: Vec<(String, f64, RGBColor)> = items
        .iter()
        .map(|(l, v, c)| (l.clone(), *v as f64, *c))
        .collect();
    value_bars(title, &items, &|v| format!("{}", v.round() as u64))
}

/// A bar chart of (label, value, colour), horizontal so long names stay readable, the first
/// item at the top, each bar labelled with its value as `fmt` writes it.
pub fn value_bars(
    title: &str,
    items: &[(String, f64, RGBColor)],
    fmt: &dyn Fn(f64) -> String,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    let height = (70 + 24 * items.len() as u32).max(160);
    {
        let root = SVGBackend::with_string(&mut svg, (W, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = items.iter().map(|(_, v, _)| *v).fold(0.0f64, f64::max);
        let max = if max > 0.0 { max } else { 1.0 };
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
                .map(|(l, _, _)| l.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(items.len().max(1) * 2 + 1)
            .y_label_formatter(&label_of)
            // The axis shows as many decimals as its ticks need (an all-zero chart spans 0 to 1:
            // whole numbers would read 0 0 0 1 1 1); `fmt` writes the bars' own values.
            .x_label_formatter(&|x: &f64| axis_label(*x, max * 1.1))
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v, c))| {
            let row = n - 1.0 - i as f64;
            Rectangle::new([(0.0, row - 0.38), (*v, row + 0.38)], c.filled())
        }))?;
        chart.draw_series(items.iter().enumerate().map(|(i, (_, v, _))| {
            let row = n - 1.0 - i as f64;
            Text::new(
                fmt(*v),
                (*v + max * 0.01, row + 0.15),
                ("sans-serif", 11).into_font(),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

/// A tick label of an axis from 0 to `span` with about five ticks.
fn axis_label(x: f64, span: f64) -> String {
    let step = span / 5.0;
    let decimals = if step >= 1.0 {
        0
    } else if step >= 0.1 {
        1
    } else if step >= 0.01 {
        2
    } else {
        3
    };
    format!("{x:.decimals$}")
}

/// A histogram over log2 buckets of a length distribution.
pub fn length_histogram(
    title: &str,
    d: &Distribution,
) -> Result<String, Box<dyn std::error::Error>> {
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

/// Where a report came from, shown at its top.
pub struct ReportInfo {
    pub title: String,
    /// `pytorrent X.Y.Z`.
    pub tool: String,
    /// When it was made (UTC).
    pub date: String,
    /// The command that made it.
    pub command: String,
    /// The package metadata the licenses come from (or why there are none).
    pub metadata: String,
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (`SOURCE_DATE_EPOCH` when set, so a
/// report can be made reproducibly).
pub fn now_utc() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d, hour, minute, _) = pytorrent_io::civil_utc(secs);
    format!("{y:04}-{m:02}-{d:02} {hour:02}:{minute:02} UTC")
}

/// Renders the page.
pub fn html_report(stats: &CorpusStats, info: &ReportInfo) -> Result<String, String> {
    let title = info.title.as_str();
    let render = || -> Result<String, Box<dyn std::error::Error>> {
        let mut body = String::new();
        let _ = write!(body, "<h1>{}</h1>", escape(title));
        body.push_str(&table(&[
            ("made by", info.tool.clone()),
            ("on", info.date.clone()),
            ("command", info.command.clone()),
            ("metadata", info.metadata.clone()),
        ]));
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
        body.push_str("<h2>Partitions and scenarios</h2>");
        let parts: Vec<(String, u64)> = stats
            .records_per_partition
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        body.push_str(&bars("Records per partition", &parts)?);
        body.push_str(
            "<table><tr><th>scenario</th><th>records</th><th>duplicates in it</th>\
             <th>train</th><th>valid</th><th>test</th><th>none</th></tr>",
        );
        for (name, sc) in &stats.scenarios {
            let part = |p: &str| sc.records_per_partition.get(p).copied().unwrap_or(0);
            let _ = write!(
                body,
                "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(name),
                sc.records,
                sc.exact_duplicates,
                part("train"),
                part("valid"),
                part("test"),
                part("none")
            );
        }
        body.push_str("</table>");
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
            let classes: Vec<(String, u64, RGBColor)> = l
                .records_by_class
                .iter()
                .map(|(k, v)| (k.clone(), *v, class_colour(k)))
                .collect();
            body.push_str(&coloured_bars("Records per license class", &classes)?);
            let mut ids: Vec<(String, u64)> = l
                .records_by_license
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ids.truncate(20);
            body.push_str(&bars("Records per license (top 20)", &ids)?);
            if !l.multi_licensed_packages.is_empty() {
                let _ = write!(
                    body,
                    "<p class=\"note\">{} several licenses; their records count under \
                     each, so the counts per license add up to more than the records: {}.</p>",
                    pytorrent_io::reporter::plural(
                        l.multi_licensed_packages.len() as u64,
                        "package names",
                        "packages name"
                    ),
                    escape(&l.multi_licensed_packages.join(", "))
                );
            }
            for (class, names) in &l.packages {
                let _ = write!(
                    body,
                    "<h3>{} packages ({})</h3><p>{}</p>",
                    escape(class),
                    names.len(),
                    escape(&names.join(", "))
                );
            }
        }
        Ok(format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
             <style>body{{font-family:sans-serif;max-width:760px;margin:2em auto}}\
             table{{border-collapse:collapse;margin:1em 0}}th,td{{padding:2px 10px;text-align:right}}\
             th{{text-align:left}}svg{{display:block;margin:1em 0}}.note{{color:#555}}</style></head><body>{body}</body></html>\n",
            escape(title)
        ))
    };
    render().map_err(|e| format!("drawing the report failed: {e}"))
}

#[cfg(test)]
mod escape_tests {
    #[test]
    fn bidi_and_control_characters_are_shown_not_obeyed() {
        assert_eq!(
            super::escape("a\u{202E}b <c> & \"d\"\u{2066}\r\n\t"),
            "a&lt;U+202E&gt;b &lt;c&gt; &amp; &quot;d&quot;&lt;U+2066&gt;&lt;U+000D&gt;\n\t"
        );
    }
}
