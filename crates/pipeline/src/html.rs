//! `report.html`: one self-contained page (inline SVG, no scripts, no external files) about
//! everything a pipeline run made, built from the stages' stamped reports, so a stage that was
//! up to date still appears with the results of the run that made its output.

use std::fmt::Write as _;
use std::path::Path;

use plotters::style::RGBColor;
use pytorrent_corpus::report::{bars, class_colour, coloured_bars, escape, value_bars};
use pytorrent_corpus::stats::{CorpusStats, LicenseStats};
use pytorrent_eval::fill_mask::FillMaskEvalReport;
use pytorrent_eval::overlap::{OverlapReport, Share};
use pytorrent_eval::retrieval::{RetrievalReport, Scores};
use pytorrent_extract::ExtractReport;
use pytorrent_finetune::FinetuneReport;
use pytorrent_pack::PackReport;
use pytorrent_pretrain::PretrainReport;
use serde::de::DeserializeOwned;

use crate::config::PipelineFile;
use crate::plan::{Job, Task};
use crate::reports::{ClozeStageReport, Compression, TokenizerReport};
use crate::runner::{RunOptions, RunReport};
use crate::stage::Stage;
use crate::state::{self, Stamp};
use crate::Result;

/// The sections of the page, in order, with their ids (the render check looks for them).
pub const SECTIONS: [(&str, &str); 12] = [
    ("pipeline", "Pipeline"),
    ("corpus", "Corpus"),
    ("licenses", "Licenses"),
    ("tokenizer", "Tokenizer"),
    ("shards", "Shards"),
    ("training", "Loss curves"),
    ("finetune", "Fine-tuning for code search"),
    ("fill-mask", "Fill-mask"),
    ("cloze", "Cloze test"),
    ("retrieval", "Code retrieval"),
    ("overlap", "Train/test overlap"),
    ("about", "About this report"),
];

const MODEL: RGBColor = RGBColor(70, 110, 170);
const BM25: RGBColor = RGBColor(230, 150, 40);
const RANDOM: RGBColor = RGBColor(160, 160, 160);
const OTHER_MODEL: RGBColor = RGBColor(150, 180, 220);

/// The page of a run, from its stage stamps (the stamped stages of `jobs`, read once by the
/// runner).
pub fn render(
    file: &PipelineFile,
    opts: &RunOptions,
    jobs: &[Job],
    stamps: &[(Stage, Stamp)],
    run: &RunReport,
) -> Result<String> {
    // Each stamped report is read back as its stage's report type: a report that does not
    // have the fields the page shows is an error naming the stamp, never a page of zeros.
    fn report_of<T: DeserializeOwned>(
        file: &PipelineFile,
        stamps: &[(Stage, Stamp)],
        stage: Stage,
    ) -> Result<Option<T>> {
        let Some((_, st)) = stamps.iter().find(|(s, _)| *s == stage) else {
            return Ok(None);
        };
        T::deserialize(&st.report).map(Some).map_err(|e| {
            pytorrent_io::Error::format(
                state::stages_dir(&file.out).join(format!("{stage}.json")),
                format!("its report is not a {stage} report of this version: {e}"),
            )
            .into()
        })
    }
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
    pipeline_table(&mut page, run, stamps);

    page.section("corpus");
    let stats: Option<CorpusStats> = report_of(file, stamps, Stage::Stats)?;
    let extract: Option<ExtractReport> = report_of(file, stamps, Stage::Extract)?;
    match (&extract, &stats) {
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
    match stats.as_ref().and_then(|s| s.licenses.as_ref()) {
        Some(l) => licenses(&mut page, l).map_err(chart_error)?,
        None if stats.is_some() => page.note(
            "The statistics had no package metadata: give [stats] metadata (a \
             Package_Metadata folder) to see licenses.",
        ),
        None => page.absent(present(Stage::Stats)),
    }

    page.section("tokenizer");
    match report_of::<TokenizerReport>(file, stamps, Stage::Tokenizer)? {
        Some(t) => tokenizer(&mut page, &t).map_err(chart_error)?,
        None => page.absent(present(Stage::Tokenizer)),
    }

    page.section("shards");
    match report_of::<PackReport>(file, stamps, Stage::Pack)? {
        Some(p) => shards(&mut page, &p),
        None => page.absent(present(Stage::Pack)),
    }

    page.section("training");
    let pretrain: Option<PretrainReport> = report_of(file, stamps, Stage::Pretrain)?;
    training(&mut page, jobs, pretrain.as_ref())?;

    page.section("finetune");
    match report_of::<FinetuneReport>(file, stamps, Stage::Finetune)? {
        Some(f) => finetune(&mut page, &f)?,
        None => page.absent(present(Stage::Finetune)),
    }

    page.section("fill-mask");
    match report_of::<FillMaskEvalReport>(file, stamps, Stage::FillMask)? {
        Some(f) => fill_mask(&mut page, &f).map_err(chart_error)?,
        None => page.absent(present(Stage::FillMask)),
    }

    page.section("cloze");
    match report_of::<ClozeStageReport>(file, stamps, Stage::Cloze)? {
        Some(c) => cloze(&mut page, &c),
        None => page.absent(present(Stage::Cloze)),
    }

    page.section("retrieval");
    match report_of::<RetrievalReport>(file, stamps, Stage::Retrieval)? {
        Some(r) => retrieval(&mut page, &r).map_err(chart_error)?,
        None => page.absent(present(Stage::Retrieval)),
    }

    page.section("overlap");
    match report_of::<OverlapReport>(file, stamps, Stage::Overlap)? {
        Some(o) => overlap(&mut page, &o),
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
             code{{font-size:90%}}pre{{text-align:left;white-space:pre;overflow:auto;\
             max-height:18em;background:#f6f8fa;padding:6px;margin:0 0 .6em}}\
             .leaks td,.leaks th{{text-align:left;vertical-align:top;word-break:break-all}}\
             .ws{{color:#b0b0b0}}</style></head><body>{}</body></html>\n",
            escape(title),
            self.body
        )
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

fn extract_summary(page: &mut Page, e: &ExtractReport) {
    page.h3("Extraction");
    let filtered: Vec<String> = e
        .filtered
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    page.table(&[
        ("packages", e.packages.to_string()),
        ("Python files", e.python_files.to_string()),
        (
            "files with syntax errors",
            e.files_with_syntax_errors.to_string(),
        ),
        ("functions", e.functions.to_string()),
        ("left out", filtered.join(", ")),
        ("packages that failed", e.failed_packages.len().to_string()),
    ]);
}

fn corpus_stats(
    page: &mut Page,
    s: &CorpusStats,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    page.h3("Records per scenario and partition");
    let mut rows = Vec::new();
    for (name, v) in &s.scenarios {
        let part = |p: &str| {
            v.records_per_partition
                .get(p)
                .copied()
                .unwrap_or(0)
                .to_string()
        };
        rows.push(vec![
            name.clone(),
            v.records.to_string(),
            part("train"),
            part("valid"),
            part("test"),
            v.exact_duplicates.to_string(),
        ]);
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
    // Every record of a PyTorrent extract has natural language (each scenario stores its
    // own in `docstring`): a share that is always 100 % says nothing, what varies does.
    let nl = if s.with_docstring.count == s.records {
        "every record (each scenario keeps its own in docstring)".to_string()
    } else {
        pct(s.with_docstring.share)
    };
    page.table(&[
        ("records", s.records.to_string()),
        ("distinct packages", s.distinct_packages.to_string()),
        ("with natural language", nl),
        (
            "with a summary (a non-empty first paragraph)",
            pct(s.with_summary.share),
        ),
        (
            "exact duplicates (see below)",
            pct(s.exact_duplicates.share),
        ),
    ]);
    page.note(
        "Exact duplicates here: records of one scenario whose code equals an earlier one's once \
         every whitespace run is one space (any corpus can be checked this way). Extraction \
         has already dropped, within each scenario, records whose code tokens equal an \
         earlier record's and near duplicates (MinHash); what this finds in its output differs \
         in tokens only inside string literals.",
    );
    let mut rows = Vec::new();
    for (label, d) in [
        ("code characters", &s.code_chars),
        ("code tokens (whitespace)", &s.code_whitespace_tokens),
        ("docstring characters", &s.docstring_chars),
    ] {
        rows.push(vec![
            label.to_string(),
            d.p10.to_string(),
            d.p50.to_string(),
            d.p90.to_string(),
            d.p99.to_string(),
            d.max.to_string(),
        ]);
    }
    page.h3("Lengths");
    page.grid(&["", "p10", "p50", "p90", "p99", "max"], &rows);
    let top: Vec<(String, u64)> = s
        .top_packages
        .iter()
        .map(|p| (p.name.clone(), p.records))
        .collect();
    if !top.is_empty() {
        page.svg(&bars("Records per package (most first)", &top)?);
    }
    Ok(())
}

fn licenses(
    page: &mut Page,
    l: &LicenseStats,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let classes: Vec<(String, u64, RGBColor)> = l
        .records_by_class
        .iter()
        .map(|(k, v)| (k.clone(), *v, class_colour(k)))
        .collect();
    page.svg(&coloured_bars("Records per license class", &classes)?);
    let mut ids: Vec<(&String, u64)> = l.records_by_license.iter().map(|(k, v)| (k, *v)).collect();
    ids.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let rows: Vec<Vec<String>> = ids
        .into_iter()
        .map(|(id, records)| {
            let names = l.packages_by_license.get(id).map_or(&[][..], Vec::as_slice);
            vec![
                id.clone(),
                records.to_string(),
                names.len().to_string(),
                listed(names, 60),
            ]
        })
        .collect();
    page.body.push_str("<div class=\"licenses\">");
    page.grid(&["license", "records", "packages", "the packages"], &rows);
    page.body.push_str("</div>");
    if !l.multi_licensed_packages.is_empty() {
        page.note(&format!(
            "Packages naming several licenses count under each: {}.",
            l.multi_licensed_packages.join(", ")
        ));
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

fn tokenizer(
    page: &mut Page,
    t: &TokenizerReport,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let train = &t.train;
    page.table(&[
        ("vocabulary", train.vocab_size.to_string()),
        ("merges", train.merges.to_string()),
        ("trained on", format!("{} texts", train.texts)),
        (
            "bytes per token on its training texts",
            format!("{:.3}", train.bytes_per_token),
        ),
    ]);
    let mut rows = Vec::new();
    let mut chart = Vec::new();
    for (partition, r) in t.compression.iter() {
        match r {
            Compression::Skipped { .. } => {
                let dash = "—".to_string();
                rows.push(vec![
                    partition.to_string(),
                    "0 (empty)".into(),
                    dash.clone(),
                    dash.clone(),
                    dash,
                ]);
            }
            Compression::Measured(m) => {
                let Some(res) = m.results.first() else {
                    continue;
                };
                rows.push(vec![
                    partition.to_string(),
                    res.texts.to_string(),
                    res.tokens.to_string(),
                    format!("{:.3}", res.bytes_per_token),
                    format!("{:.1}", res.tokens_per_record),
                ]);
                if res.texts > 0 {
                    chart.push((partition.to_string(), res.bytes_per_token, MODEL));
                }
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

fn shards(page: &mut Page, p: &PackReport) {
    page.table(&[
        ("sequence length", p.seq_len.to_string()),
        ("output", p.out.display().to_string()),
    ]);
    let rows: Vec<Vec<String>> = p
        .partitions
        .iter()
        .map(|x| {
            vec![
                x.partition.clone(),
                x.records.to_string(),
                x.rows.to_string(),
                x.tokens.to_string(),
                x.shards.to_string(),
                x.dropped_tokens.to_string(),
            ]
        })
        .collect();
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

fn training(page: &mut Page, jobs: &[Job], pretrain: Option<&PretrainReport>) -> Result<()> {
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
            ("parameters", r.parameters.to_string()),
            ("steps", format!("{} of {}", r.steps, r.max_steps)),
            ("tokens", r.tokens.to_string()),
            (
                &format!("train loss (mean of the last {} steps)", r.train_loss_steps),
                r.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
            ),
            (
                "train loss of the last step",
                r.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
            ),
            (
                "valid loss / accuracy",
                r.valid
                    .as_ref()
                    .map_or("-".into(), |v| format!("{:.4} / {}", v.loss, pct(v.acc))),
            ),
            (
                "uniform guess (ln vocabulary)",
                format!("{:.4}", r.uniform_loss),
            ),
            ("tokens per second", format!("{:.0}", r.tokens_per_s)),
            ("device", r.device.clone()),
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

fn finetune(page: &mut Page, r: &FinetuneReport) -> Result<()> {
    let mrr = |m: Option<f64>| m.map_or("-".into(), |m| format!("{m:.3}"));
    page.table(&[
        ("started from", r.init.clone()),
        (
            "training pairs",
            format!(
                "{} ({} batches an epoch)",
                r.train_pairs, r.batches_per_epoch
            ),
        ),
        (
            "kept apart (repeated texts)",
            format!(
                "{} pairs put off to a later batch, {} left out",
                r.deferred, r.left_out
            ),
        ),
        ("hard negatives a pair", r.hard_negatives.to_string()),
        (
            "steps",
            format!("{} of {} ({:.2} epochs)", r.steps, r.max_steps, r.epochs),
        ),
        (
            &format!("train loss (mean of the last {} steps)", r.train_loss_steps),
            r.train_loss.map_or("-".into(), |l| format!("{l:.4}")),
        ),
        (
            &format!("valid MRR before → after (pool of {} pairs)", r.valid_pairs),
            format!("{} → {}", mrr(r.valid_mrr_init), mrr(r.valid_mrr)),
        ),
        ("pairs per second", format!("{:.1}", r.pairs_per_s)),
        ("device", r.device.clone()),
    ]);
    let log = r.out.join("log.csv");
    let (loss, valid) = pytorrent_finetune::train::read_log(&log)
        .map_err(|e| crate::Error::stage(Stage::Finetune, &e))?;
    if valid.len() > 1 {
        let svg = pytorrent_pretrain::curve::svg_labelled(
            "Validation MRR by step (pool protocol)",
            "MRR",
            &[pytorrent_pretrain::curve::Series {
                name: "valid MRR",
                points: valid,
            }],
        )
        .map_err(|e| crate::Error::Usage(format!("drawing the MRR curve: {e}")))?;
        page.svg(&svg);
    }
    if loss.len() > 1 {
        let svg = pytorrent_pretrain::curve::svg(
            "Contrastive loss by step",
            &[pytorrent_pretrain::curve::Series {
                name: "train loss",
                points: loss,
            }],
        )
        .map_err(|e| crate::Error::Usage(format!("drawing the loss curve: {e}")))?;
        page.svg(&svg);
    }
    Ok(())
}

fn fill_mask(
    page: &mut Page,
    f: &FillMaskEvalReport,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    page.table(&[
        ("model", f.model.clone()),
        ("prompts", f.prompts.to_string()),
        ("top-1", pct(f.overall.top1)),
        ("top-5", pct(f.overall.top5)),
        ("MRR", format!("{:.3}", f.overall.mrr)),
    ]);
    let mut rows = Vec::new();
    let mut chart = Vec::new();
    for (name, a) in &f.categories {
        rows.push(vec![
            name.clone(),
            a.masks.to_string(),
            pct(a.top1),
            pct(a.top5),
            format!("{:.3}", a.mrr),
        ]);
        chart.push((name.clone(), a.top5 * 100.0, MODEL));
    }
    page.grid(&["category", "masks", "top-1", "top-5", "MRR"], &rows);
    page.svg(&value_bars(
        "Top-5 accuracy by category (%)",
        &chart,
        &|v| format!("{v:.0}"),
    )?);
    if let Some(fail) = &f.failed {
        let _ = write!(
            page.body,
            "<p><strong>Gate failed:</strong> {}</p>",
            escape(fail)
        );
    }
    if !f.worst.is_empty() {
        page.h3("Worst prompts");
        page.note("Spaces show as ·, newlines as ⏎, tabs as →.");
        page.body.push_str(
            "<table class=\"leaks\"><tr><th>category</th><th>answer</th><th>predicted</th>\
             <th>rank</th></tr>",
        );
        for w in f.worst.iter().take(5) {
            let _ = write!(
                page.body,
                "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>\
                 <tr><td colspan=\"4\"><pre>{}</pre></td></tr>",
                escape(&w.category),
                visible_whitespace(&w.answer),
                visible_whitespace(&w.predicted),
                w.rank,
                escape(&w.text)
            );
        }
        page.body.push_str("</table>");
    }
    Ok(())
}

/// A token with its whitespace drawn (`"\n    "` reads `⏎····`), escaped for HTML: a
/// predicted newline or indent is otherwise a blank cell.
fn visible_whitespace(token: &str) -> String {
    if token.is_empty() {
        return "<span class=\"ws\">(empty)</span>".into();
    }
    let mut out = String::new();
    for c in token.chars() {
        match c {
            ' ' => out.push_str("<span class=\"ws\">·</span>"),
            '\n' => out.push_str("<span class=\"ws\">⏎</span>"),
            '\t' => out.push_str("<span class=\"ws\">→</span>"),
            c => out.push_str(&escape(&c.to_string())),
        }
    }
    out
}

fn cloze(page: &mut Page, c: &ClozeStageReport) {
    let s = &c.score;
    page.table(&[
        ("items", s.items.to_string()),
        ("candidate words", s.words.to_string()),
        (
            "accuracy",
            s.accuracy.map_or("no answers given".into(), |a| {
                format!("{} ({} correct)", pct(a), s.correct.unwrap_or(0))
            }),
        ),
        (
            "masks past the model's length",
            s.masks_cut.len().to_string(),
        ),
        (
            "test set",
            c.make.as_ref().map_or("given".into(), |m| {
                format!("made from {} test records ({})", m.records, m.out.display())
            }),
        ),
    ]);
    let mut rows: Vec<(String, usize, usize)> = s
        .per_word
        .iter()
        .map(|(w, (hit, all))| (w.clone(), *all, *hit))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    rows.truncate(20);
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(w, all, hit)| vec![w, all.to_string(), hit.to_string()])
        .collect();
    if !rows.is_empty() {
        page.grid(&["answer", "items", "correct"], &rows);
    }
}

fn retrieval(
    page: &mut Page,
    r: &RetrievalReport,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let p = &r.pytorrent;
    page.table(&[
        ("system", p.system.clone()),
        ("protocol", p.protocol.to_string()),
        ("direction", p.direction.to_string()),
        ("queries", p.queries.to_string()),
        ("candidates per query", p.candidates_per_query.to_string()),
    ]);
    // The random baseline is an expectation: it has an MRR and nothing per rank.
    let row = |name: &str, s: &Scores| {
        vec![
            name.to_string(),
            format!("{:.3}", s.mrr.unwrap_or(0.0)),
            s.ir.ndcg.get(&10).map_or("-".into(), |x| format!("{x:.3}")),
            s.ir.accuracy.get(&1).map_or("-".into(), |x| pct(*x)),
        ]
    };
    let mut rows = vec![row(&p.system, &p.scores)];
    let mut chart = vec![(
        "this system".to_string(),
        p.scores.mrr.unwrap_or(0.0),
        MODEL,
    )];
    for (name, v) in &p.baselines {
        rows.push(row(name, v));
        let colour = match name.as_str() {
            "bm25" => BM25,
            "random" => RANDOM,
            // Another model (the checkpoint a fine-tuned one started from).
            _ => OTHER_MODEL,
        };
        chart.push((name.clone(), v.mrr.unwrap_or(0.0), colour));
    }
    page.grid(&["system", "MRR", "NDCG@10", "accuracy@1"], &rows);
    let title = if p.baselines.keys().any(|n| n.starts_with("model:")) {
        "MRR beside the starting model, BM25 and random"
    } else {
        "MRR beside BM25 and random"
    };
    page.svg(&value_bars(title, &chart, &|v| format!("{v:.3}"))?);
    Ok(())
}

fn overlap(page: &mut Page, o: &OverlapReport) {
    let share = |x: &Share| format!("{} ({})", x.count, pct(x.share));
    page.table(&[
        ("view", o.field.clone()),
        ("training records", o.train_records.to_string()),
        ("evaluation records", o.eval_records.to_string()),
        ("exact copies", share(&o.exact)),
        (
            &format!("near copies (Jaccard ≥ {})", o.threshold),
            share(&o.near),
        ),
        ("leaked (either)", share(&o.leaked)),
    ]);
    if o.examples.is_empty() {
        return;
    }
    page.h3("Examples");
    page.body.push_str(
        "<table class=\"leaks\"><tr><th>kind</th><th>evaluation record</th>\
         <th>first training record holding it</th></tr>",
    );
    for e in o.examples.iter().take(10) {
        let _ = write!(
            page.body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.kind),
            record_cell(&e.eval),
            record_cell(&e.train)
        );
        if !e.text.is_empty() {
            let _ = write!(
                page.body,
                "<tr><td colspan=\"3\"><pre>{}</pre></td></tr>",
                escape(&e.text)
            );
        }
    }
    page.body.push_str("</table>");
}

/// `package/path:function` as three lines (package, path, function) that wrap rather than
/// widen the page; other names as they are.
fn record_cell(name: &str) -> String {
    let parts = name
        .split_once('/')
        .and_then(|(package, rest)| rest.rsplit_once(':').map(|(p, f)| (package, p, f)));
    match parts {
        Some((package, path, function)) => format!(
            "<strong>{}</strong><br><code>{}</code><br><code>{}</code>",
            escape(package),
            escape(path),
            escape(function)
        ),
        None => format!("<code>{}</code>", escape(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_examples_are_a_table_of_both_sides_with_the_code_in_a_block() {
        let leak = |kind: &str, text: &str| pytorrent_eval::overlap::Leak {
            eval: "pkg-a/src/a/very/long/path/module.py:Klass.method".into(),
            train: "pkg-b/lib/b.py:function".into(),
            kind: kind.into(),
            text: text.into(),
        };
        let o = OverlapReport {
            field: "code".into(),
            eval_records: 10,
            train_records: 90,
            exact: Share {
                count: 1,
                share: 0.1,
            },
            near: Share {
                count: 1,
                share: 0.1,
            },
            leaked: Share {
                count: 2,
                share: 0.2,
            },
            threshold: 0.85,
            shingle: 3,
            examples: vec![
                leak("exact", "def method(self):\n    return <x>"),
                leak("near", ""),
            ],
            read_eval: Default::default(),
            read_train: Default::default(),
        };
        let mut page = Page {
            body: String::new(),
        };
        overlap(&mut page, &o);
        let b = &page.body;
        assert!(b.contains("<th>kind</th><th>evaluation record</th>"), "{b}");
        assert!(b.contains(
            "<strong>pkg-a</strong><br><code>src/a/very/long/path/module.py</code><br><code>Klass.method</code>"
        ));
        assert!(
            b.contains("<strong>pkg-b</strong><br><code>lib/b.py</code><br><code>function</code>")
        );
        assert!(b.contains("<pre>def method(self):\n    return &lt;x&gt;</pre>"));
        assert_eq!(b.matches("<pre>").count(), 1, "no empty code block");
        assert!(!b.contains("{\""), "no raw JSON");
    }

    #[test]
    fn whitespace_predictions_are_drawn() {
        assert_eq!(
            visible_whitespace("\n  x"),
            "<span class=\"ws\">⏎</span><span class=\"ws\">·</span><span class=\"ws\">·</span>x"
        );
        assert_eq!(visible_whitespace("<"), "&lt;");
        assert!(visible_whitespace("").contains("(empty)"));
    }
}
