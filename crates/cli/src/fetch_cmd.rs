//! `pytorrent fetch`: package names → metadata documents and release archives from the index
//! pip is configured with.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pytorrent_extract::fetch::{
    agent, fetch, json_api_from_index, resolve_index, FetchOptions, Outcome,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::output::{print_json, OutputArgs};
use crate::UsageError;

#[derive(Args)]
pub struct FetchArgs {
    /// Package names.
    names: Vec<String>,
    /// A file of package names, one a line (# comments).
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Output folder: Package_Metadata/pypi_packages/<name>.json and packages/<archive>.
    #[arg(long)]
    out: PathBuf,
    /// Release to fetch (default: the latest).
    #[arg(long)]
    version: Option<String>,
    /// Simple-index URL (default: PYTORRENT_INDEX_URL, PIP_INDEX_URL, pip.conf, else pip's own
    /// default).
    #[arg(long)]
    index_url: Option<String>,
    /// JSON API base (default: the index URL with a trailing /simple made /pypi).
    #[arg(long)]
    json_api_url: Option<String>,
    /// Downloads at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Retries of a failed request (network errors, 429, 5xx), with doubling back-off.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Seconds before a request is given up.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Opt-out list: these packages are not fetched.
    #[arg(long)]
    opt_out: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Serialize)]
struct Summary {
    index_url: String,
    index_source: String,
    json_api: String,
    downloaded: u64,
    already_present: u64,
    opted_out: Vec<String>,
    failed: BTreeMap<String, Vec<String>>,
    packages: Vec<(String, Outcome)>,
}

pub fn run(a: FetchArgs) -> Result<ExitCode> {
    let mut names = a.names.clone();
    if let Some(f) = &a.from_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        names.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                .filter(|l| !l.is_empty()),
        );
    }
    if names.is_empty() {
        return Err(UsageError("no package names (give names, or --from-file)".into()).into());
    }
    let (index_url, source, json_api) = match (&a.json_api_url, resolve_index(a.index_url.as_deref())) {
        (Some(api), choice) => {
            let (u, s) = choice.map(|c| (c.index_url, c.source)).unwrap_or_default();
            (u, s, api.clone())
        }
        (None, Some(c)) => {
            let api = json_api_from_index(&c.index_url);
            (c.index_url, c.source, api)
        }
        (None, None) => {
            return Err(UsageError(
                "no package index configured: give --index-url, set PYTORRENT_INDEX_URL or PIP_INDEX_URL, or configure pip".into(),
            )
            .into())
        }
    };
    let opt_out = a
        .opt_out
        .as_deref()
        .map(pytorrent_corpus::optout::OptOut::load)
        .transpose()?;
    let opts = FetchOptions {
        json_api: json_api.clone(),
        out: a.out.clone(),
        version: a.version.clone(),
        retries: a.retries,
        backoff: Duration::from_millis(500),
        timeout: Duration::from_secs(a.timeout),
    };
    let http = agent(opts.timeout);
    let out = &a.output;
    out.log(format!(
        "index {index_url} (from {source}); JSON API {json_api}"
    ));
    let bar = out.count_progress("fetch", names.len() as u64, "packages");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.max(1))
        .build()?;
    let results: Vec<(String, Outcome)> = pool.install(|| {
        names
            .par_iter()
            .map(|n| {
                let outcome = if opt_out.as_ref().is_some_and(|o| o.package(n)) {
                    Outcome::OptedOut
                } else {
                    fetch(&http, n, &opts)
                };
                bar.inc(1);
                (n.clone(), outcome)
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut summary = Summary {
        index_url,
        index_source: source,
        json_api,
        downloaded: 0,
        already_present: 0,
        opted_out: Vec::new(),
        failed: BTreeMap::new(),
        packages: Vec::new(),
    };
    for (name, outcome) in &results {
        match outcome {
            Outcome::Downloaded { .. } => summary.downloaded += 1,
            Outcome::AlreadyPresent { .. } => summary.already_present += 1,
            Outcome::OptedOut => summary.opted_out.push(name.clone()),
            Outcome::Failed { reason, message } => {
                let key = serde_json::to_value(reason)?
                    .as_str()
                    .unwrap_or("?")
                    .to_string();
                summary
                    .failed
                    .entry(key)
                    .or_default()
                    .push(format!("{name}: {message}"));
            }
        }
    }
    summary.packages = results;
    out.log(format!(
        "fetched {} packages ({} already present, {} opted out, {} failed) into {}",
        summary.downloaded,
        summary.already_present,
        summary.opted_out.len(),
        summary.failed.values().map(Vec::len).sum::<usize>(),
        a.out.display()
    ));
    for (reason, list) in &summary.failed {
        out.log(format!("  failed ({reason}):"));
        for l in list {
            out.log(format!("    {l}"));
        }
    }
    let failed = !summary.failed.is_empty();
    if out.json {
        print_json(&summary)?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
