//! `report.html`: one self-contained page (inline SVG, no scripts, no external files) about
//! everything a pipeline run made, built from the stages' stamped reports, so a stage that was
//! up to date still appears with the results of the run that made its output.

use std::fmt::Write as _;
use std::path::Path;

use plotters::style::RGBColor;
use pytorrent_corpus::report::{bars, class_colour, coloured_bars, escape, value_bars};
use serde_json::Value;

use crate::config::PipelineFile;
use crate::plan::{Job, Task};
use crate::runner::{RunOptions, RunReport};
use crate::stage::Stage;
use crate::state::{self, Stamp};
use crate::Result;

/// The sections of the page, in order, with their ids (the render check looks for them).
pub const SECTIONS: [(&str, &str); 11] = [
    ("pipeline", "Pipeline"),
    ("corpus", "Corpus"),
    ("licenses", "Licenses"),
    ("tokenizer", "Tokenizer"),
    ("shards", "Shards"),
    ("training", "Loss curves"),
    ("fill-mask", "Fill-mask"),
    ("cloze", "Cloze test"),
    ("retrieval", "Code retrieval"),
    ("overlap", "Train/test overlap"),
    ("about", "About this report"),
];

const MODEL: RGBColor = RGBColor(70, 110, 170);
const BM25: RGBColor = RGBColor(230, 150, 40);
const RANDOM: RGBColor = RGBColor(160, 160, 160);

pub fn render(
    file: &PipelineFile,
    opts: &RunOptions,
    jobs: &[Job],
    run: &RunReport,
) -> Result<String> {
    let stamps: Vec<(Stage, Stamp)> = jobs
        .iter()
        .filter_map(|j| state::read_stamp(&file.out, j.stage).map(|s| (j.stage, s)))
        .collect();
    let report_of = |stage: Stage| -> Option<&Value> {
        stamps
            .iter()
            .find(|(s, _)| *s == stage)
            .map(|(_, st)| &st.report)
    };
    let present = |stage: Stage| jobs.iter().any(|j| j.stage == stage);
    let mut page = Page::default();
    let _ = write!(
        page.body,
        "<h1>{}</h1><p class=\"note\">pytorrent pipeline report · {} · {}</p>",
        escape(&file.title),
        escape(&opts.tool),
        escape(&pytorrent_corpus::report::now_utc())
    );
    page.toc();

    page.section("pipeline");
    pipeline_table(&mut page, run, &stamps);

    page.section("corpus");
    let stats = report_of(Stage::Stats);
    match (report_of(Stage::Extract), stats) {
        (None, None) => page.absent(present(Stage::Extract) || present(Stage::Stats)),
        (extract, stats) => {
            if let Some(e) = extract {
                extract_summary(&mut page, e);
            }
            if let Some(s) = stats {
                corpus_stats(&mut page, s).map_err(chart_error)?;
            }
        }
    }

    page.section("licenses");
    match stats.and_then(|s| s.get("licenses")) {
        Some(l) => licenses(&mut page, l).map_err(chart_error)?,
        None if stats.is_some() => page.note(
            "The statistics had no package metadata: give [stats] metadata (a \
             Package_Metadata folder) to see licenses.",
        ),
        None => page.absent(present(Stage::Stats)),
    }

    page.section("tokenizer");
    match report_of(Stage::Tokenizer) {
        Some(t) => tokenizer(&mut page, t).map_err(chart_error)?,
        None => page.absent(present(Stage::Tokenizer)),
    }

    page.section("shards");
    match report_of(Stage::Pack) {
        Some(p) => shards(&mut page, p),
        None => page.absent(present(Stage::Pack)),
    }

    page.section("training");
    training(&mut page, jobs, report_of(Stage::Pretrain))?;

    page.section("fill-mask");
    match report_of(Stage::FillMask) {
        Some(f) => fill_mask(&mut page, f).map_err(chart_error)?,
        None => page.absent(present(Stage::FillMask)),
    }

    page.section("cloze");
    match report_of(Stage::Cloze) {
        Some(c) => cloze(&mut page, c),
        None => page.absent(present(Stage::Cloze)),
    }

    page.section("retrieval");
    match report_of(Stage::Retrieval) {
        Some(r) => retrieval(&mut page, r).map_err(chart_error)?,
        None => page.absent(present(Stage::Retrieval)),
    }

    page.section("overlap");
    match report_of(Stage::Overlap) {
        Some(o) => overlap(&mut page, o),
        None => page.absent(present(Stage::Overlap)),
    }

    page.section("about");
    page.table(&[
        ("tool", opts.tool.clone()),
        ("made", pytorrent_corpus::report::now_utc()),
        ("command", opts.command.clone()),
        ("pipeline file", file.path.display().to_string()),
        ("run folder", file.out.display().to_string()),
    ]);
    page.note(
        "Each stage's fingerprint is the sha256 of the tool version, the stage's settings, \
         the content of the inputs it names and the fingerprints of the stages it reads; a \
         stage whose fingerprint matches its last run is not run again. Stamps: \
         stages/<stage>.json in the run folder.",
    );
    Ok(page.finish(&file.title))
}

fn chart_error(e: Box<dyn std::error::Error>) -> crate::Error {
    crate::Error::Usage(format!("drawing the report: {e}"))
}

#[derive(Default)]
struct Page {
    body: String,
}

impl Page {
    fn toc(&mut self) {
        self.body.push_str("<nav><ol>");
        for (id, title) in SECTIONS {
            let _ = write!(self.body, "<li><a href=\"#{id}\">{title}</a></li>");
        }
        self.body.push_str("</ol></nav>");
    }

    fn section(&mut self, id: &str) {
        let title = SECTIONS
            .iter()
            .find(|(i, _)| *i == id)
            .map_or(id, |(_, t)| t);
        if !self.body.ends_with("</nav>") {
            self.body.push_str("</section>");
        }
        let _ = write!(self.body, "<section id=\"{id}\"><h2>{title}</h2>");
    }

    fn absent(&mut self, in_pipeline: bool) {
        self.note(if in_pipeline {
            "This stage has not run yet."
        } else {
            "This stage is not part of the pipeline."
        });
    }

    fn note(&mut self, text: &str) {
        let _ = write!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    fn h3(&mut self, text: &str) {
        let _ = write!(self.body, "<h3>{}</h3>", escape(text));
    }

    /// Two-column key/value table.
    fn table(&mut self, rows: &[(&str, String)]) {
        self.body.push_str("<table>");
        for (k, v) in rows {
            let _ = write!(
                self.body,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(k),
                escape(v)
            );
        }
        self.body.push_str("</table>");
    }

    /// A table with a header row.
    fn grid(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.body.push_str("<table><tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr>");
        for row in rows {
            self.body.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                let tag = if i == 0 { "th" } else { "td" };
                let _ = write!(self.body, "<{tag}>{}</{tag}>", escape(cell));
            }
            self.body.push_str("</tr>");
        }
        self.body.push_str("</table>");
    }

    fn svg(&mut self, svg: &str) {
        // plotters writes an XML prolog-free <svg> element: it inlines as is.
        self.body.push_str("<figure>");
        self.body.push_str(svg);
        self.body.push_str("</figure>");
    }

    fn finish(mut self, title: &str) -> String {
        self.body.push_str("</section>");
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
             <style>body{{font-family:sans-serif;max-width:860px;margin:2em auto;padding:0 1em;color:#222}}\
             table{{border-collapse:collapse;margin:.8em 0}}th,td{{padding:2px 10px;text-align:right;\
             border-bottom:1px solid #eee}}th{{text-align:left}}figure{{margin:1em 0}}\
             svg{{display:block;max-width:100%;height:auto}}.note{{color:#555}}\
             .ran{{color:#1a7f37}}.cached{{color:#555}}nav ol{{columns:2}}\
             code{{font-size:90%}}</style></head><body>{}</body></html>\n",
            escape(title),
            self.body
        )
    }
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

fn int(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn pipeline_table(page: &mut Page, run: &RunReport, stamps: &[(Stage, Stamp)]) {
    page.body.push_str(
        "<table><tr><th>stage</th><th>this run</th><th>seconds</th><th>last ran</th>\
         <th>fingerprint</th></tr>",
    );
    for s in &run.stages {
        let stamp = stamps.iter().find(|(st, _)| *st == s.stage).map(|(_, x)| x);
        let class = match s.status {
            crate::runner::Status::Ran | crate::runner::Status::Resumed => "ran",
            _ => "cached",
        };
        let seconds = match (s.seconds, s.last_run_seconds) {
            (x, _) if x > 0.0 => format!("{x:.1}"),
            (_, Some(last)) => format!("({last:.1})"),
            _ => "-".into(),
        };
        let _ = write!(
            page.body,
            "<tr><th>{}</th><td class=\"{class}\">{}{}</td><td>{seconds}</td><td>{}</td>\
             <td><code title=\"{}\">{}</code></td></tr>",
            s.stage.name(),
            s.status.label(),
            if s.stale { " (stale)" } else { "" },
            escape(&stamp.map_or("never".into(), |st| st.finished.clone())),
            escape(s.fingerprint.as_deref().unwrap_or("")),
            escape(s.fingerprint.as_deref().map_or("-", |f| &f[..16])),
        );
    }
    page.body.push_str("</table>");
    page.note(&format!(
        "This run took {:.1} s of stage time; seconds in brackets are those of the run that \
         made an up-to-date output.",
        run.stages.iter().map(|s| s.seconds).sum::<f64>()
    ));
}

fn extract_summary(page: &mut Page, e: &Value) {
    page.h3("Extraction");
    let filtered: Vec<String> = e
        .get("filtered")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}: {v}")).collect())
        .unwrap_or_default();
    let failed = e
        .get("failed_packages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    page.table(&[
        ("packages", int(e, "packages").to_string()),
        ("Python files", int(e, "python_files").to_string()),
        (
            "files with syntax errors",
            int(e, "files_with_syntax_errors").to_string(),
        ),
        ("functions", int(e, "functions").to_string()),
        ("left out", filtered.join(", ")),
        ("packages that failed", failed.to_string()),
    ]);
}

fn corpus_stats(page: &mut Page, s: &Value) -> std::result::Result<(), Box<dyn std::error::Error>> {
    page.h3("Records per scenario and partition");
    let mut rows = Vec::new();
    if let Some(sc) = s.get("scenarios").and_then(Value::as_object) {
        for (name, v) in sc {
            let part = |p: &str| {
                v.get("records_per_partition")
                    .and_then(|m| m.get(p))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .to_string()
            };
            rows.push(vec![
                name.clone(),
                int(v, "records").to_string(),
                part("train"),
                part("valid"),
                part("test"),
                int(v, "exact_duplicates").to_string(),
            ]);
        }
    }
    page.grid(
        &[
            "scenario",
            "records",
            "train",
            "valid",
            "test",
            "exact duplicates",
        ],
        &rows,
    );
    let share = |k: &str| s.get(k).map_or(0.0, |x| num(x, "share"));
    page.table(&[
        ("records", int(s, "records").to_string()),
        ("distinct packages", int(s, "distinct_packages").to_string()),
        ("with docstring", pct(share("with_docstring"))),
        ("with summary", pct(share("with_summary"))),
        ("exact duplicates", pct(share("exact_duplicates"))),
    ]);
    let mut rows = Vec::new();
    for (label, key) in [
        ("code characters", "code_chars"),
        ("code tokens (whitespace)", "code_whitespace_tokens"),
        ("docstring characters", "docstring_chars"),
    ] {
        if let Some(d) = s.get(key) {
            rows.push(vec![
                label.to_string(),
                int(d, "p10").to_string(),
                int(d, "p50").to_string(),
                int(d, "p90").to_string(),
                int(d, "p99").to_string(),
                int(d, "max").to_string(),
            ]);
        }
    }
    page.h3("Lengths");
    page.grid(&["", "p10", "p50", "p90", "p99", "max"], &rows);
    let top: Vec<(String, u64)> = s
        .get("top_packages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|p| (text(p, "name"), int(p, "records")))
                .collect()
        })
        .unwrap_or_default();
    if !top.is_empty() {
        page.svg(&bars("Records per package (most first)", &top)?);
    }
    Ok(())
}

fn licenses(page: &mut Page, l: &Value) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let classes: Vec<(String, u64, RGBColor)> = l
        .get("records_by_class")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0), class_colour(k)))
                .collect()
        })
        .unwrap_or_default();
    page.svg(&coloured_bars("Records per license class", &classes)?);
    let mut rows = Vec::new();
    let by_license = l.get("packages_by_license").and_then(Value::as_object);
    if let Some(m) = l.get("records_by_license").and_then(Value::as_object) {
        let mut ids: Vec<(&String, u64)> = m
            .iter()
            .map(|(k, v)| (k, v.as_u64().unwrap_or(0)))
            .collect();
        ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        for (id, records) in ids {
            let names: Vec<String> = by_license
                .and_then(|b| b.get(id))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|n| n.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            rows.push(vec![
                id.clone(),
                records.to_string(),
                names.len().to_string(),
                listed(&names, 60),
            ]);
        }
    }
    page.body.push_str("<div class=\"licenses\">");
    page.grid(&["license", "records", "packages", "the packages"], &rows);
    page.body.push_str("</div>");
    if let Some(multi) = l.get("multi_licensed_packages").and_then(Value::as_array) {
        if !multi.is_empty() {
            let names: Vec<String> = multi
                .iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect();
            page.note(&format!(
                "Packages naming several licenses count under each: {}.",
                names.join(", ")
            ));
        }
    }
    Ok(())
}

/// Names, the first `max` of them, then how many more.
fn listed(names: &[String], max: usize) -> String {
    if names.len() <= max {
        names.join(", ")
    } else {
        format!(
            "{}, … and {} more",
            names[..max].join(", "),
            names.len() - max
        )
    }
}

fn tokenizer(page: &mut Page, t: &Value) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let train = &t["train"];
    page.table(&[
        ("vocabulary", int(train, "vocab_size").to_string()),
        ("merges", int(train, "merges").to_string()),
        ("trained on", format!("{} texts", int(train, "texts"))),
        (
            "bytes per token on its training texts",
            format!("{:.3}", num(train, "bytes_per_token")),
        ),
    ]);
    let mut rows = Vec::new();
    let mut chart = Vec::new();
    if let Some(c) = t.get("compression").and_then(Value::as_object) {
        for (partition, r) in c {
            let Some(res) = r
                .get("results")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            else {
                if r.get("skipped").is_some() {
                    let dash = "—".to_string();
                    rows.push(vec![
                        partition.clone(),
                        "0 (empty)".into(),
                        dash.clone(),
                        dash.clone(),
                        dash,
                    ]);
                }
                continue;
            };
            rows.push(vec![
                partition.clone(),
                int(res, "texts").to_string(),
                int(res, "tokens").to_string(),
                format!("{:.3}", num(res, "bytes_per_token")),
                format!("{:.1}", num(res, "tokens_per_record")),
            ]);
            if int(res, "texts") > 0 {
                chart.push((partition.clone(), num(res, "bytes_per_token"), MODEL));
            }
        }
    }
    page.h3("Compression per partition");
    page.grid(
        &[
            "partition",
            "texts",
            "tokens",
            "bytes per token",
            "tokens per record",
        ],
        &rows,
    );
    if !chart.is_empty() {
        page.svg(&value_bars(
            "Bytes per token (higher: fewer tokens for the same code)",
            &chart,
            &|v| format!("{v:.2}"),
        )?);
    }
    Ok(())
}

fn shards(page: &mut Page, p: &Value) {
    page.table(&[
        ("sequence length", int(p, "seq_len").to_string()),
        ("output", text(p, "out")),
    ]);
    let rows: Vec<Vec<String>> = p
        .get("partitions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    vec![
                        text(x, "partition"),
                        int(x, "records").to_string(),
                        int(x, "rows").to_string(),
                        int(x, "tokens").to_string(),
                        int(x, "shards").to_string(),
                        int(x, "dropped_tokens").to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    page.grid(
        &[
            "partition",
            "records",
            "rows",
            "tokens",
            "shards",
            "tokens dropped",
        ],
        &rows,
    );
}

fn training(page: &mut Page, jobs: &[Job], pretrain: Option<&Value>) -> Result<()> {
    let trained = jobs.iter().find_map(|j| match &j.task {
        Task::Pretrain(c) => Some(c.out.clone()),
        _ => None,
    });
    // With no pretrain stage, the evaluated model's own training log, when it ships one.
    let (log_dir, heading) = match (&trained, pretrain) {
        (Some(dir), Some(_)) => (Some(dir.clone()), "this run's pretraining".to_string()),
        (Some(_), None) => {
            page.absent(true);
            return Ok(());
        }
        (None, _) => {
            let model = jobs.iter().find_map(|j| match &j.task {
                Task::FillMask(c) => Some(c.model.model.clone()),
                Task::Cloze { score, .. } => Some(score.model.model.clone()),
                _ => None,
            });
            match model.map(std::path::PathBuf::from) {
                Some(m) if m.join("log.csv").is_file() => {
                    let h = format!("the evaluated model's own training log ({})", m.display());
                    (Some(m), h)
                }
                _ => (None, String::new()),
            }
        }
    };
    let Some(dir) = log_dir else {
        page.note("No pretraining in this pipeline, and the evaluated model has no log.csv.");
        return Ok(());
    };
    page.note(&format!("Loss curves of {heading}."));
    if let Some(r) = pretrain {
        page.table(&[
            ("parameters", int(r, "parameters").to_string()),
            (
                "steps",
                format!("{} of {}", int(r, "steps"), int(r, "max_steps")),
            ),
            ("tokens", int(r, "tokens").to_string()),
            (
                "train loss (mean of the last 50 steps)",
                format!("{:.4}", num(r, "train_loss")),
            ),
            (
                "valid loss / accuracy",
                r.get("valid")
                    .filter(|v| !v.is_null())
                    .map_or("-".into(), |v| {
                        format!("{:.4} / {}", num(v, "loss"), pct(num(v, "acc")))
                    }),
            ),
            (
                "uniform guess (ln vocabulary)",
                format!("{:.4}", num(r, "uniform_loss")),
            ),
            (
                "tokens per second",
                format!("{:.0}", num(r, "tokens_per_s")),
            ),
            ("device", text(r, "device")),
        ]);
    }
    curves(page, &dir.join("log.csv"))
}

fn curves(page: &mut Page, log: &Path) -> Result<()> {
    let (train, valid) = pytorrent_pretrain::curve::read_log(log)
        .map_err(|e| crate::Error::stage(Stage::Pretrain, &e))?;
    let series = [
        pytorrent_pretrain::curve::Series {
            name: "train loss",
            points: train,
        },
        pytorrent_pretrain::curve::Series {
            name: "valid loss",
            points: valid,
        },
    ];
    let svg = pytorrent_pretrain::curve::svg("MLM loss by step", &series)
        .map_err(|e| crate::Error::Usage(format!("drawing the loss curves: {e}")))?;
    page.svg(&svg);
    Ok(())
}

fn fill_mask(page: &mut Page, f: &Value) -> std::result::Result<(), Box<dyn std::error::Error>> {
    page.table(&[
        ("model", text(f, "model")),
        ("prompts", int(f, "prompts").to_string()),
        ("top-1", pct(num(f, "top1"))),
        ("top-5", pct(num(f, "top5"))),
        ("MRR", format!("{:.3}", num(f, "mrr"))),
    ]);
    let mut rows = Vec::new();
    let mut chart = Vec::new();
    if let Some(c) = f.get("categories").and_then(Value::as_object) {
        for (name, a) in c {
            rows.push(vec![
                name.clone(),
                int(a, "masks").to_string(),
                pct(num(a, "top1")),
                pct(num(a, "top5")),
                format!("{:.3}", num(a, "mrr")),
            ]);
            chart.push((name.clone(), num(a, "top5") * 100.0, MODEL));
        }
    }
    page.grid(&["category", "masks", "top-1", "top-5", "MRR"], &rows);
    page.svg(&value_bars(
        "Top-5 accuracy by category (%)",
        &chart,
        &|v| format!("{v:.0}"),
    )?);
    if let Some(fail) = f.get("failed").and_then(Value::as_str) {
        let _ = write!(
            page.body,
            "<p><strong>Gate failed:</strong> {}</p>",
            escape(fail)
        );
    }
    let worst: Vec<Vec<String>> = f
        .get("worst")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .take(5)
                .map(|w| {
                    vec![
                        text(w, "category"),
                        text(w, "text"),
                        text(w, "answer"),
                        text(w, "predicted"),
                        int(w, "rank").to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    if !worst.is_empty() {
        page.h3("Worst prompts");
        page.grid(
            &["category", "prompt", "answer", "predicted", "rank"],
            &worst,
        );
    }
    Ok(())
}

fn cloze(page: &mut Page, c: &Value) {
    let s = &c["score"];
    let made = c.get("make").filter(|m| !m.is_null());
    let accuracy = s.get("accuracy").and_then(Value::as_f64);
    page.table(&[
        ("items", int(s, "items").to_string()),
        ("candidate words", int(s, "words").to_string()),
        (
            "accuracy",
            accuracy.map_or("no answers given".into(), |a| {
                format!("{} ({} correct)", pct(a), int(s, "correct"))
            }),
        ),
        (
            "masks past the model's length",
            s.get("masks_cut")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                .to_string(),
        ),
        (
            "test set",
            made.map_or("given".into(), |m| {
                format!(
                    "made from {} test records ({})",
                    int(m, "records"),
                    text(m, "out")
                )
            }),
        ),
    ]);
    let mut rows: Vec<Vec<String>> = s
        .get("per_word")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(w, v)| {
                    let hit = v.get(0).and_then(Value::as_u64).unwrap_or(0);
                    let all = v.get(1).and_then(Value::as_u64).unwrap_or(0);
                    vec![w.clone(), all.to_string(), hit.to_string()]
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by_key(|r| std::cmp::Reverse(r[1].parse::<u64>().unwrap_or(0)));
    rows.truncate(20);
    if !rows.is_empty() {
        page.grid(&["answer", "items", "correct"], &rows);
    }
}

fn retrieval(page: &mut Page, r: &Value) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let p = &r["pytorrent"];
    let scores = r
        .pointer("/scores")
        .and_then(Value::as_object)
        .and_then(|m| m.values().next())
        .and_then(Value::as_array)
        .and_then(|a| a.first());
    page.table(&[
        ("system", text(p, "system")),
        ("protocol", text(p, "protocol")),
        ("direction", text(p, "direction")),
        ("queries", int(p, "queries").to_string()),
        (
            "candidates per query",
            int(p, "candidates_per_query").to_string(),
        ),
    ]);
    let mut rows = Vec::new();
    let mut chart = Vec::new();
    if let Some(s) = scores {
        let name = text(p, "system");
        rows.push(vec![
            name.clone(),
            format!("{:.3}", num(s, "protocol_mrr")),
            format!("{:.3}", num(s, "ndcg_at_10")),
            pct(num(s, "accuracy_at_1")),
        ]);
        chart.push(("this system".to_string(), num(s, "protocol_mrr"), MODEL));
    }
    if let Some(b) = p.get("baselines").and_then(Value::as_object) {
        for (name, v) in b {
            let ir = &v["ir"];
            // The random baseline is an expectation: it has an MRR and nothing per rank.
            let at = |k: &str, n: &str| ir.get(k).and_then(|m| m.get(n)).and_then(Value::as_f64);
            rows.push(vec![
                name.clone(),
                format!("{:.3}", num(v, "mrr")),
                at("ndcg", "10").map_or("-".into(), |x| format!("{x:.3}")),
                at("accuracy", "1").map_or("-".into(), pct),
            ]);
            let colour = if name == "bm25" { BM25 } else { RANDOM };
            chart.push((name.clone(), num(v, "mrr"), colour));
        }
    }
    page.grid(&["system", "MRR", "NDCG@10", "accuracy@1"], &rows);
    if !chart.is_empty() {
        page.svg(&value_bars("MRR beside BM25 and random", &chart, &|v| {
            format!("{v:.3}")
        })?);
    }
    Ok(())
}

fn overlap(page: &mut Page, o: &Value) {
    let share = |k: &str| {
        o.get(k).map_or("-".into(), |x| {
            format!("{} ({})", int(x, "count"), pct(num(x, "share")))
        })
    };
    page.table(&[
        ("view", text(o, "field")),
        ("training records", int(o, "train_records").to_string()),
        ("evaluation records", int(o, "eval_records").to_string()),
        ("exact copies", share("exact")),
        (
            &format!("near copies (Jaccard ≥ {})", num(o, "threshold")),
            share("near"),
        ),
        ("leaked (either)", share("leaked")),
    ]);
    let examples: Vec<Vec<String>> = o
        .get("examples")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .take(10)
                .map(|e| {
                    let s = e.to_string();
                    vec![s.chars().take(160).collect()]
                })
                .collect()
        })
        .unwrap_or_default();
    if !examples.is_empty() {
        page.grid(&["examples"], &examples);
    }
}
