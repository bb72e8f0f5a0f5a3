//! The training log (`log.csv`, one row per optimiser step, validation columns filled at
//! evaluation steps) and its loss curve as SVG.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

pub const HEADER: &str =
    "step,epoch,lr,loss,grad_norm,tokens,elapsed_s,tokens_per_s,valid_loss,valid_ppl,valid_acc";

/// One line of `log.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogRow {
    pub step: u64,
    pub epoch: f64,
    pub lr: f64,
    pub loss: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    pub elapsed_s: f64,
    pub tokens_per_s: f64,
    pub valid: Option<Valid>,
}

/// A validation result.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Valid {
    pub loss: f64,
    pub ppl: f64,
    pub acc: f64,
}

impl LogRow {
    pub fn csv(&self) -> String {
        // Losses with every digit an f32 has: a resumed run's log is compared with an
        // uninterrupted one's.
        let mut s = format!(
            "{},{:.6},{:e},{:.9},{:.6},{},{:.3},{:.1}",
            self.step,
            self.epoch,
            self.lr,
            self.loss,
            self.grad_norm,
            self.tokens,
            self.elapsed_s,
            self.tokens_per_s
        );
        match &self.valid {
            Some(v) => s += &format!(",{:.9},{:.6},{:.6}", v.loss, v.ppl, v.acc),
            None => s += ",,,",
        }
        s
    }
}

/// `out/log.csv` opened for appending: a fresh log with `header`, or, resuming after step
/// `keep_until`, the rows of the earlier log up to it (rows past the checkpoint are redone).
/// Written whole under a temporary name first.
pub fn open_log(out: &Path, header: &str, keep_until: Option<u64>) -> Result<std::fs::File> {
    let path = out.join("log.csv");
    let mut text = format!("{header}\n");
    if let Some(step) = keep_until {
        if let Ok(old) = std::fs::read_to_string(&path) {
            for line in old.lines().skip(1) {
                match line.split(',').next().and_then(|s| s.parse::<u64>().ok()) {
                    Some(s) if s <= step => text += &format!("{line}\n"),
                    _ => {}
                }
            }
        }
    }
    pytorrent_io::atomic::write_atomic(&path, text.as_bytes())?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| pytorrent_io::Error::io(&path, e).into())
}

/// A named series of (step, value) points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Points,
}

/// (step, value) points.
pub type Points = Vec<(f64, f64)>;

/// Reads the (step, loss) and (step, valid_loss) series of a `log.csv`.
pub fn read_log(path: &Path) -> Result<(Points, Points)> {
    let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
    let (mut train, mut valid) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok());
        let (Some(step), Some(loss)) = (num(0), num(3)) else {
            return Err(Error::data(path, format!("line {}: not a log row", i + 1)));
        };
        train.push((step, loss));
        if let Some(v) = num(8) {
            valid.push((step, v));
        }
    }
    Ok((train, valid))
}

/// The last validation result a `log.csv` holds.
pub fn last_valid(path: &Path) -> Option<Valid> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let f: Vec<&str> = line.split(',').collect();
        let num = |k: usize| f.get(k).and_then(|v| v.parse::<f64>().ok());
        Some(Valid {
            loss: num(8)?,
            ppl: num(9)?,
            acc: num(10)?,
        })
    })
}

/// Draws loss curves into an SVG file.
pub fn plot(path: &Path, title: &str, series: &[Series]) -> Result<()> {
    plot_labelled(path, title, "loss", series)
}

/// Curves of another measure (`y` names it) into an SVG file.
pub fn plot_labelled(path: &Path, title: &str, y: &str, series: &[Series]) -> Result<()> {
    let mut svg = String::new();
    draw(&mut svg, title, y, series).map_err(|e| Error::data(path, format!("plot: {e}")))?;
    pytorrent_io::atomic::write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// Loss curves as an SVG document (for pages that inline it).
pub fn svg(title: &str, series: &[Series]) -> std::result::Result<String, String> {
    svg_labelled(title, "loss", series)
}

/// Curves of another measure (`y` names it) as an SVG document.
pub fn svg_labelled(
    title: &str,
    y: &str,
    series: &[Series],
) -> std::result::Result<String, String> {
    let mut svg = String::new();
    draw(&mut svg, title, y, series)?;
    Ok(svg)
}

fn draw(
    svg: &mut String,
    title: &str,
    y: &str,
    series: &[Series],
) -> std::result::Result<(), String> {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x1, mut y0, mut y1) = (1f64, f64::MAX, f64::MIN);
    for (x, y) in all {
        if y.is_finite() {
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
    }
    if y0 > y1 {
        (y0, y1) = (0.0, 1.0);
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let root = SVGBackend::with_string(svg, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y)
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(|e| e.to_string())?;
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (i, s) in series.iter().enumerate() {
        let c = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied().filter(|p| p.1.is_finite()),
                c.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
