//! Draws the loss curves of several runs into one SVG (for the pretraining benchmark).
//!
//!     plot_curves OUT.svg TITLE NAME=LOG.csv [NAME=LOG.csv …]
//!
//! Each CSV has a header, the step in its first column and the loss in the column named
//! `loss` (`pytorrent pretrain`'s log.csv, or `step,loss`).

use std::path::Path;

use pytorrent_pretrain::curve::{plot, Series};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: plot_curves OUT.svg TITLE NAME=LOG.csv [NAME=LOG.csv …]");
        std::process::exit(2);
    }
    let mut series = Vec::new();
    for spec in &args[2..] {
        let (name, path) = spec.split_once('=').expect("NAME=LOG.csv");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = header
            .iter()
            .position(|h| *h == "loss")
            .expect("a loss column");
        let points = lines
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                Some((f.first()?.parse().ok()?, f.get(col)?.parse().ok()?))
            })
            .collect();
        series.push(Series { name, points });
    }
    plot(Path::new(&args[0]), &args[1], &series).expect("plot");
}
