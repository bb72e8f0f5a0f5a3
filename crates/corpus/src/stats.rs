//! Corpus statistics, computed while streaming: counts are exact; length percentiles come
//! from HDR histograms (exact below 16384, 4 significant digits above; about 1 MB each); exact duplicates are found by
//! a 128-bit hash of the whitespace-normalised code (16 bytes per distinct function).

use std::collections::{BTreeMap, HashMap, HashSet};

use hdrhistogram::Histogram;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_128;

use crate::license::LicenseClass;
use crate::metadata::{normalize_name, MetadataIndex};
use crate::read::{effective_partition, ReadSummary};
use crate::record::RecordRef;
use crate::source::InputFile;

/// What statistics need from one record; computed in parallel, folded in order.
#[derive(Debug, Clone)]
pub struct RecordFacts {
    pub repo: String,
    pub partition: Option<&'static str>,
    /// The record's scenario: its own field, else its input folder's.
    pub scenario: Option<String>,
    pub code_chars: u64,
    pub code_tokens: u64,
    pub doc_chars: u64,
    pub doc_tokens: u64,
    pub has_summary: bool,
    pub code_hash: u128,
}

/// Whitespace-token count and the hash of the code with every whitespace run made one space
/// (so re-indented or re-wrapped copies count as duplicates), in one pass.
fn ws_tokens_and_hash(s: &str) -> (u64, u128) {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let mut n = 0u64;
        if s.is_ascii() {
            // ASCII fast path: `split_whitespace` decodes UTF-8 char by char.
            for tok in s
                .as_bytes()
                .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
            {
                if tok.is_empty() {
                    continue;
                }
                if n > 0 {
                    buf.push(b' ');
                }
                buf.extend_from_slice(tok);
                n += 1;
            }
        } else {
            for tok in s.split_whitespace() {
                if n > 0 {
                    buf.push(b' ');
                }
                buf.extend_from_slice(tok.as_bytes());
                n += 1;
            }
        }
        (n, xxh3_128(&buf))
    })
}

fn ws_token_count(s: &str) -> u64 {
    if s.is_ascii() {
        let mut n = 0u64;
        let mut in_token = false;
        for &b in s.as_bytes() {
            let ws = b.is_ascii_whitespace() || b == 0x0b;
            n += (!ws && !in_token) as u64;
            in_token = !ws;
        }
        n
    } else {
        s.split_whitespace().count() as u64
    }
}

fn char_count(s: &str) -> u64 {
    if s.is_ascii() {
        s.len() as u64
    } else {
        s.chars().count() as u64
    }
}

pub fn facts(rec: &RecordRef<'_>, file: &InputFile) -> RecordFacts {
    let (code_tokens, code_hash) = ws_tokens_and_hash(&rec.code);
    let doc = rec.docstring.trim();
    RecordFacts {
        repo: rec.repo.to_string(),
        partition: effective_partition(rec, file).map(|p| p.as_str()),
        scenario: rec
            .scenario
            .as_deref()
            .map(str::to_string)
            .or_else(|| file.scenario.clone()),
        code_chars: char_count(&rec.code),
        code_tokens,
        doc_chars: char_count(doc),
        doc_tokens: ws_token_count(doc),
        has_summary: rec.summary.as_deref().is_some_and(|s| !s.trim().is_empty()),
        code_hash,
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new(4).expect("4 significant digits is a valid precision")
}

pub struct StatsAccumulator {
    records: u64,
    partitions: BTreeMap<String, u64>,
    packages: HashMap<String, u64>,
    code_chars: Histogram<u64>,
    code_tokens: Histogram<u64>,
    doc_chars: Histogram<u64>,
    doc_tokens: Histogram<u64>,
    with_docstring: u64,
    with_summary: u64,
    /// Code hashes seen, per scenario: the same function is expected once in each scenario
    /// of a multi-scenario corpus, so only a repeat within one is a duplicate.
    seen_code: HashMap<Option<String>, HashSet<u128>>,
    scenarios: BTreeMap<String, ScenarioStats>,
    duplicates: u64,
}

impl Default for StatsAccumulator {
    fn default() -> Self {
        StatsAccumulator {
            records: 0,
            partitions: BTreeMap::new(),
            packages: HashMap::new(),
            code_chars: histogram(),
            code_tokens: histogram(),
            doc_chars: histogram(),
            doc_tokens: histogram(),
            with_docstring: 0,
            with_summary: 0,
            seen_code: HashMap::new(),
            scenarios: BTreeMap::new(),
            duplicates: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Distribution {
    pub count: u64,
    pub min: u64,
    pub p10: u64,
    pub p25: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: f64,
    /// Log-scale histogram buckets: (upper bound, count).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<(u64, u64)>,
}

fn distribution(h: &Histogram<u64>) -> Distribution {
    if h.is_empty() {
        return Distribution {
            count: 0,
            min: 0,
            p10: 0,
            p25: 0,
            p50: 0,
            p75: 0,
            p90: 0,
            p99: 0,
            max: 0,
            mean: 0.0,
            buckets: Vec::new(),
        };
    }
    let q = |p: f64| h.value_at_quantile(p);
    let buckets = h
        .iter_log(1, 2.0)
        .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
        .collect();
    Distribution {
        count: h.len(),
        min: h.min(),
        p10: q(0.10),
        p25: q(0.25),
        p50: q(0.50),
        p75: q(0.75),
        p90: q(0.90),
        p99: q(0.99),
        max: h.max(),
        mean: (h.mean() * 100.0).round() / 100.0,
        buckets,
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Share {
    pub count: u64,
    pub share: f64,
}

fn share(count: u64, of: u64) -> Share {
    let share = if of == 0 {
        0.0
    } else {
        (count as f64 / of as f64 * 10000.0).round() / 10000.0
    };
    Share { count, share }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PackageCount {
    pub name: String,
    pub records: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Default)]
pub struct LicenseStats {
    /// Records per class; `no_metadata` counts records whose package has no metadata.
    pub records_by_class: BTreeMap<String, u64>,
    /// Packages per class.
    pub packages_by_class: BTreeMap<String, u64>,
    /// The packages of every class but `permissive` (copyleft, unknown, no_metadata), by name.
    pub packages: BTreeMap<String, Vec<String>>,
    /// Records per normalised license id. A package with several licenses counts its records
    /// under each, so these add up to more than the records when there are such packages.
    pub records_by_license: BTreeMap<String, u64>,
    /// Packages whose metadata names more than one license.
    pub multi_licensed_packages: Vec<String>,
    /// The packages under each normalised license id (`unknown`: metadata names none we
    /// know; `no_metadata`: no metadata), by name: who the records are owed to.
    pub packages_by_license: BTreeMap<String, Vec<String>>,
}

/// The records of one scenario (`none` for records of no scenario folder).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Default)]
pub struct ScenarioStats {
    pub records: u64,
    pub records_per_partition: BTreeMap<String, u64>,
    /// Records whose code already appeared earlier in the same scenario.
    pub exact_duplicates: u64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct CorpusStats {
    pub records: u64,
    pub distinct_packages: u64,
    pub records_per_partition: BTreeMap<String, u64>,
    /// Packages with the most records, most first (ties by name).
    pub top_packages: Vec<PackageCount>,
    pub code_chars: Distribution,
    pub code_whitespace_tokens: Distribution,
    /// Over records with a non-empty docstring.
    pub docstring_chars: Distribution,
    pub docstring_whitespace_tokens: Distribution,
    pub with_docstring: Share,
    pub with_summary: Share,
    /// Records whose whitespace-normalised code already appeared earlier in the corpus, in
    /// the same scenario.
    pub exact_duplicates: Share,
    /// Records, partitions and duplicates of each scenario.
    pub scenarios: BTreeMap<String, ScenarioStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses: Option<LicenseStats>,
    pub read: ReadSummary,
}

impl StatsAccumulator {
    pub fn add(&mut self, f: RecordFacts) {
        self.records += 1;
        *self
            .partitions
            .entry(f.partition.unwrap_or("none").to_string())
            .or_default() += 1;
        *self.packages.entry(f.repo).or_default() += 1;
        // Histograms cover values up to their auto-resized max; record() only fails on
        // values beyond u64 range, which lengths never reach.
        let _ = self.code_chars.record(f.code_chars);
        let _ = self.code_tokens.record(f.code_tokens);
        if f.doc_chars > 0 {
            self.with_docstring += 1;
            let _ = self.doc_chars.record(f.doc_chars);
            let _ = self.doc_tokens.record(f.doc_tokens);
        }
        if f.has_summary {
            self.with_summary += 1;
        }
        let dup = !self
            .seen_code
            .entry(f.scenario.clone())
            .or_default()
            .insert(f.code_hash);
        self.duplicates += dup as u64;
        let s = self
            .scenarios
            .entry(f.scenario.unwrap_or_else(|| "none".into()))
            .or_default();
        s.records += 1;
        s.exact_duplicates += dup as u64;
        *s.records_per_partition
            .entry(f.partition.unwrap_or("none").into())
            .or_default() += 1;
    }

    pub fn finish(
        self,
        top: usize,
        metadata: Option<&MetadataIndex>,
        read: ReadSummary,
    ) -> CorpusStats {
        let mut packages: Vec<PackageCount> = self
            .packages
            .iter()
            .map(|(name, n)| PackageCount {
                name: name.clone(),
                records: *n,
            })
            .collect();
        packages.sort_by(|a, b| b.records.cmp(&a.records).then_with(|| a.name.cmp(&b.name)));
        let licenses = metadata.map(|index| {
            let mut l = LicenseStats::default();
            // Packages are counted once per normalised name.
            let mut seen: HashSet<String> = HashSet::new();
            for p in &packages {
                let norm = normalize_name(&p.name);
                let first = seen.insert(norm.clone());
                let (class, ids): (&str, Vec<String>) = match index.get(&norm) {
                    Some(m) => (m.license.class.as_str(), m.license.ids.clone()),
                    None => (LicenseClass::NoMetadata.as_str(), Vec::new()),
                };
                *l.records_by_class.entry(class.into()).or_default() += p.records;
                if first {
                    *l.packages_by_class.entry(class.into()).or_default() += 1;
                    if class != LicenseClass::Permissive.as_str() {
                        l.packages
                            .entry(class.into())
                            .or_default()
                            .push(norm.clone());
                    }
                    if ids.len() > 1 {
                        l.multi_licensed_packages.push(norm.clone());
                    }
                    let under: Vec<&str> = if ids.is_empty() {
                        vec![if class == LicenseClass::NoMetadata.as_str() {
                            class
                        } else {
                            LicenseClass::Unknown.as_str()
                        }]
                    } else {
                        ids.iter().map(String::as_str).collect()
                    };
                    for id in under {
                        l.packages_by_license
                            .entry(id.to_string())
                            .or_default()
                            .push(norm.clone());
                    }
                }
                if ids.is_empty() && class != LicenseClass::NoMetadata.as_str() {
                    *l.records_by_license
                        .entry(LicenseClass::Unknown.as_str().into())
                        .or_default() += p.records;
                }
                for id in ids {
                    *l.records_by_license.entry(id).or_default() += p.records;
                }
            }
            for names in l
                .packages
                .values_mut()
                .chain(l.packages_by_license.values_mut())
            {
                names.sort();
            }
            l.multi_licensed_packages.sort();
            l
        });
        packages.truncate(top);
        CorpusStats {
            records: self.records,
            distinct_packages: self.packages.len() as u64,
            records_per_partition: self.partitions,
            top_packages: packages,
            code_chars: distribution(&self.code_chars),
            code_whitespace_tokens: distribution(&self.code_tokens),
            docstring_chars: distribution(&self.doc_chars),
            docstring_whitespace_tokens: distribution(&self.doc_tokens),
            with_docstring: share(self.with_docstring, self.records),
            with_summary: share(self.with_summary, self.records),
            exact_duplicates: share(self.duplicates, self.records),
            scenarios: self.scenarios,
            licenses,
            read,
        }
    }
}

/// What [`facts`] reads (a Parquet corpus is read only in these columns).
const STATS_FIELDS: crate::schema::PyTorrentFields =
    crate::schema::PyTorrentFields(&["repo", "code", "docstring", "summary"]);

/// Reads `files` and computes their statistics (only the given partitions, when some are).
pub fn corpus_stats(
    files: &[InputFile],
    opts: &crate::read::ReadOptions,
    progress: &dyn pytorrent_io::Reporter,
    partitions: &crate::select::Partitions,
    top: usize,
    metadata: Option<&MetadataIndex>,
) -> crate::error::Result<CorpusStats> {
    let mut acc = StatsAccumulator::default();
    let summary = crate::read::read_records(
        files,
        opts,
        &STATS_FIELDS,
        progress,
        |file, _, rec| {
            partitions
                .contains(effective_partition(&rec, file))
                .then(|| facts(&rec, file))
        },
        |item| {
            if let crate::read::Item::Record { value: Some(f), .. } = item {
                acc.add(f);
            }
            Ok::<(), crate::Error>(())
        },
    )?;
    Ok(acc.finish(top, metadata, summary))
}

/// `corpus stats`: counts, length percentiles, docstring share, duplicates and licenses.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct StatsConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: crate::input::InputConfig,
    /// Package metadata (a Package_Metadata folder, or PyPI / Anaconda JSON files) for
    /// license statistics.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub metadata: Vec<std::path::PathBuf>,
    /// Partitions to count: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: crate::select::Partitions,
    /// How many packages to list, most records first.
    #[serde(default = "default_top")]
    #[cfg_attr(feature = "cli", arg(long, default_value_t = default_top()))]
    pub top: usize,
    /// Also write a self-contained HTML report with plots.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub report: Option<std::path::PathBuf>,
}

fn default_top() -> usize {
    20
}

impl StatsConfig {
    pub fn new(input: crate::input::InputConfig) -> StatsConfig {
        StatsConfig {
            input,
            metadata: Vec::new(),
            partition: Default::default(),
            top: default_top(),
            report: None,
        }
    }

    /// The command line that asks for this config.
    pub fn command_line(&self) -> String {
        let mut args = vec!["pytorrent corpus stats".to_string()];
        args.extend(self.input.inputs.iter().map(|p| p.display().to_string()));
        for m in &self.metadata {
            args.push(format!("--metadata {}", m.display()));
        }
        if self.partition != crate::select::Partitions::All {
            args.push(format!("--partition {}", self.partition));
        }
        if let Some(r) = &self.report {
            args.push(format!("--report {}", r.display()));
        }
        args.join(" ")
    }

    pub fn validate(&self) -> crate::error::Result<()> {
        if self.report.is_some() && !cfg!(feature = "report") {
            return Err(crate::Error::Usage(
                "this build has no HTML report (the `report` feature of pytorrent-corpus)".into(),
            ));
        }
        Ok(())
    }
}

/// The statistics stage (`corpus stats`).
pub struct Stats;

impl pytorrent_io::stage::Stage for Stats {
    type Config = StatsConfig;
    type Report = CorpusStats;
    type Error = crate::Error;
    const COMMAND: &'static str = "corpus stats";
    const READS: &'static [&'static str] = &["inputs", "metadata"];
    const WRITES: &'static [&'static str] = &["report", "quarantine"];

    fn run(
        config: &StatsConfig,
        reporter: &dyn pytorrent_io::Reporter,
    ) -> Result<CorpusStats, crate::Error> {
        run(config, reporter)
    }
}

/// Statistics of the inputs, and the HTML report when asked for.
pub fn run(
    cfg: &StatsConfig,
    reporter: &dyn pytorrent_io::Reporter,
) -> crate::error::Result<CorpusStats> {
    cfg.validate()?;
    let files = cfg.input.discover()?;
    let metadata = MetadataIndex::load_logged(&cfg.metadata, reporter)?;
    reporter.begin("stats", pytorrent_io::Unit::Bytes, None);
    let stats = corpus_stats(
        &files,
        &cfg.input.options(None),
        reporter,
        &cfg.partition,
        cfg.top,
        metadata.as_ref(),
    );
    reporter.end();
    let stats = stats?;
    #[cfg(feature = "report")]
    if let Some(path) = &cfg.report {
        let inputs: Vec<String> = cfg
            .input
            .inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let info = crate::report::ReportInfo {
            title: format!("pytorrent corpus stats: {}", inputs.join(", ")),
            tool: format!("pytorrent {}", env!("CARGO_PKG_VERSION")),
            date: crate::report::now_utc(),
            command: cfg.command_line(),
            metadata: if cfg.metadata.is_empty() {
                "none given (no license statistics)".into()
            } else {
                let m: Vec<String> = cfg
                    .metadata
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                format!(
                    "{} ({})",
                    m.join(", "),
                    pytorrent_io::reporter::plural(
                        metadata.as_ref().map_or(0, |i| i.len()) as u64,
                        "package",
                        "packages"
                    )
                )
            },
        };
        let html = crate::report::html_report(&stats, &info).map_err(|message| {
            pytorrent_io::Error::format(path, format!("drawing the report: {message}"))
        })?;
        pytorrent_io::atomic::write_atomic(path, html.as_bytes())?;
        reporter.log(&format!("report written to {}", path.display()));
    }
    Ok(stats)
}

impl std::fmt::Display for CorpusStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_table())
    }
}

impl CorpusStats {
    /// A plain-text table for people.
    pub fn to_table(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(s, "records             {}", self.records);
        let _ = writeln!(s, "files               {}", self.read.files);
        let _ = writeln!(s, "distinct packages   {}", self.distinct_packages);
        for (p, n) in &self.records_per_partition {
            let _ = writeln!(s, "  partition {p:<8} {n}");
        }
        let pct = |x: &Share| format!("{} ({:.1}%)", x.count, x.share * 100.0);
        let _ = writeln!(s, "with docstring      {}", pct(&self.with_docstring));
        let _ = writeln!(s, "with summary        {}", pct(&self.with_summary));
        let _ = writeln!(s, "exact duplicates    {}", pct(&self.exact_duplicates));
        if self.scenarios.len() > 1 {
            let _ = writeln!(s, "scenario            records  duplicates  partitions");
            for (name, sc) in &self.scenarios {
                let parts: Vec<String> = sc
                    .records_per_partition
                    .iter()
                    .map(|(p, n)| format!("{p} {n}"))
                    .collect();
                let _ = writeln!(
                    s,
                    "  {name:<16}{:>9}{:>12}  {}",
                    sc.records,
                    sc.exact_duplicates,
                    parts.join(", ")
                );
            }
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<26}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>10}",
            "length", "min", "p25", "p50", "p75", "p90", "p99", "max"
        );
        for (name, d) in [
            ("code chars", &self.code_chars),
            ("code whitespace tokens", &self.code_whitespace_tokens),
            ("docstring chars", &self.docstring_chars),
            ("docstring ws tokens", &self.docstring_whitespace_tokens),
        ] {
            let _ = writeln!(
                s,
                "{name:<26}{:>8}{:>8}{:>8}{:>8}{:>8}{:>8}{:>10}",
                d.min, d.p25, d.p50, d.p75, d.p90, d.p99, d.max
            );
        }
        if !self.top_packages.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(s, "top packages");
            for p in &self.top_packages {
                let _ = writeln!(s, "  {:<32} {}", p.name, p.records);
            }
        }
        if let Some(l) = &self.licenses {
            let _ = writeln!(s);
            let _ = writeln!(s, "license class       records  packages");
            for (class, n) in &l.records_by_class {
                let pk = l.packages_by_class.get(class).copied().unwrap_or(0);
                let _ = writeln!(s, "  {class:<16}{n:>9}{pk:>10}");
            }
            for (class, names) in &l.packages {
                let shown: Vec<&str> = names.iter().take(12).map(String::as_str).collect();
                let more = names.len().saturating_sub(shown.len());
                let _ = writeln!(
                    s,
                    "  {class} packages: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" … and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            let _ = writeln!(s, "license id                   records");
            for (id, n) in &l.records_by_license {
                let _ = writeln!(s, "  {id:<28} {n}");
            }
            if !l.multi_licensed_packages.is_empty() {
                let _ = writeln!(
                    s,
                    "  ({} several licenses: their records count under each: {})",
                    pytorrent_io::reporter::plural(
                        l.multi_licensed_packages.len() as u64,
                        "package names",
                        "packages name"
                    ),
                    l.multi_licensed_packages.join(", ")
                );
            }
        }
        if self.read.rejected_total() > 0 {
            let _ = writeln!(s);
            let _ = writeln!(s, "rejected lines      {}", self.read.rejected_total());
            for (k, n) in &self.read.rejected {
                let _ = writeln!(s, "  {:<18}{n}", k.name());
            }
            if let Some(q) = &self.read.quarantine {
                let _ = writeln!(s, "  written to {}", q.display());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_normalised_hash() {
        let (n1, h1) = ws_tokens_and_hash("def f(x):\n    return x");
        let (n2, h2) = ws_tokens_and_hash("def  f(x):\n\treturn   x\n");
        let (_, h3) = ws_tokens_and_hash("def f(x):\n    return y");
        assert_eq!((n1, h1), (n2, h2));
        assert_ne!(h1, h3);
        assert_eq!(n1, 4);
        // Unicode whitespace (no-break space, ideographic space) separates tokens too.
        let (n4, h4) = ws_tokens_and_hash("def\u{a0}f(x):\u{3000}return x");
        assert_eq!(n4, 4);
        assert_eq!(h4, h1, "Unicode whitespace runs normalise like ASCII ones");
        for s in ["a b\tc\n", " x\u{0b}y ", "é  ü", ""] {
            assert_eq!(
                ws_token_count(s),
                s.split_whitespace().count() as u64,
                "{s:?}"
            );
            assert_eq!(
                ws_tokens_and_hash(s).0,
                s.split_whitespace().count() as u64,
                "{s:?}"
            );
        }
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut h = histogram();
        for v in 1..=100u64 {
            h.record(v).unwrap();
        }
        let d = distribution(&h);
        assert_eq!((d.min, d.p50, d.p90, d.max), (1, 50, 90, 100));
        assert_eq!(d.mean, 50.5);
    }
}
