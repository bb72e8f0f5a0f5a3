//! `corpus convert`: layout and compression changes (one big JSONL ⇄ PyTorrent's or
//! CodeSearchNet's chunked layouts), and Parquet in the Hugging Face dataset layout.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pytorrent_io::{Compression, Reporter, Unit};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Problem, ProblemKind, Result};
use crate::input::InputConfig;
use crate::parquet_out::{Card, ParquetCorpusWriter, DEFAULT_FILE_BYTES};
use crate::read::{effective_partition, read_corpus, Item, ReadSummary};
use crate::record::Partition;
use crate::select::Partitions;
use crate::source::InputFile;
use crate::writer::{
    with_field, with_partition, without_last_field, CorpusWriter, Layout, Target, WriterOptions,
    WrittenFile,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ConvertConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: InputConfig,
    /// Output file (flat layout; `-` for standard output) or folder (chunked layouts).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: PathBuf,
    /// flat (one file), pytorrent (`<scenario>/<partition>/…_chk_N.jsonl.gz`) or
    /// codesearchnet (`python/final/jsonl/<partition>/python_<partition>_N.jsonl.gz`).
    #[serde(default = "default_layout")]
    #[cfg_attr(feature = "cli", arg(long, default_value = "flat"))]
    pub layout: Layout,
    /// none, gzip or zstd (default: from the output name; gzip for chunked layouts).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub compression: Option<Compression>,
    /// Records per chunk file (chunked layouts; default 30000 unless --chunk-bytes is given).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub chunk_records: Option<u64>,
    /// Uncompressed bytes per chunk file (chunked layouts).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub chunk_bytes: Option<u64>,
    /// Scenario folder name for the pytorrent layout (default: the input's, else docstrings).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub scenario: Option<String>,
    /// Partition for records that have none, in a folder that names none.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub default_partition: Option<Partition>,
    /// Partitions to keep: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: Partitions,
    /// jsonl, or parquet: data/{train,validation,test}-NNNNN-of-MMMMM.parquet (a folder per
    /// scenario when there are several) and a dataset card that datasets.load_dataset(OUT)
    /// reads with its splits.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "jsonl"))]
    pub format: CorpusFormat,
    /// Package metadata for the license summary of a Parquet dataset card.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub metadata: Vec<PathBuf>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

pytorrent_io::word_enum! {
    "format";
    /// How a corpus is written.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum CorpusFormat {
        #[default]
        Jsonl = "jsonl",
        Parquet = "parquet",
    }
}

fn default_layout() -> Layout {
    Layout::Flat
}

impl ConvertConfig {
    pub fn new(input: InputConfig, out: PathBuf) -> ConvertConfig {
        ConvertConfig {
            input,
            out,
            layout: default_layout(),
            compression: None,
            chunk_records: None,
            chunk_bytes: None,
            scenario: None,
            default_partition: None,
            partition: Partitions::All,
            format: CorpusFormat::Jsonl,
            metadata: Vec::new(),
            force: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.format == CorpusFormat::Parquet
            && (self.layout != Layout::Flat || self.compression.is_some())
        {
            return Err(Error::Usage(
                "--format parquet writes the Hugging Face layout with zstd; leave --layout and \
                 --compression out"
                    .into(),
            ));
        }
        if self.layout == Layout::Mirror {
            return Err(Error::Usage(
                "convert writes flat, pytorrent or codesearchnet layouts".into(),
            ));
        }
        Ok(())
    }

    fn chunked(&self) -> bool {
        self.layout != Layout::Flat || self.format == CorpusFormat::Parquet
    }

    fn writer_options(&self) -> WriterOptions {
        let chunk_records = match (self.chunked(), self.chunk_records, self.chunk_bytes) {
            (true, None, None) => Some(30_000),
            (_, r, _) => r,
        };
        WriterOptions {
            layout: self.layout,
            compression: self.compression,
            chunk_records,
            chunk_bytes: self.chunk_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ConvertReport {
    pub read: ReadSummary,
    pub records_per_partition: BTreeMap<String, u64>,
    /// Records of partitions not asked for.
    pub left_out: u64,
    pub written: Vec<WrittenFile>,
}

/// Where one record goes, decided in the parallel map.
struct Placement {
    /// The record carries its own `partition` field.
    has_partition: bool,
    partition: Option<Partition>,
    /// The record's own `scenario` field (a flattened multi-scenario corpus).
    scenario: Option<String>,
    package: String,
}

/// The scenario folder of a record in the pytorrent layout: the one asked for, else the
/// record's field, else its input folder's, else `docstrings`.
fn scenario_of(cfg: &ConvertConfig, file: &InputFile, p: &Placement) -> String {
    cfg.scenario
        .clone()
        .or_else(|| p.scenario.clone())
        .or_else(|| file.scenario.clone())
        .unwrap_or_else(|| "docstrings".into())
}

/// The bytes a record is written as. A flat file cannot say which folder a record came
/// from: the partition is written in, and the scenario when the inputs hold several. Back in
/// the pytorrent layout the folder says the scenario again, and a field added that way goes.
fn line_for(
    cfg: &ConvertConfig,
    multi: bool,
    file: &InputFile,
    p: &Placement,
    line: &[u8],
) -> Vec<u8> {
    if cfg.format == CorpusFormat::Parquet {
        // The split is in the file name; the partition column says it again.
        return match (p.has_partition, p.partition) {
            (false, Some(part)) => with_partition(line, part),
            _ => line.to_vec(),
        };
    }
    if cfg.chunked() {
        if let Some(s) = &p.scenario {
            if *s == scenario_of(cfg, file, p) {
                if let Some(bytes) = without_last_field(line, "scenario", s) {
                    return bytes;
                }
            }
        }
        return line.to_vec();
    }
    let mut bytes = match (p.has_partition, p.partition) {
        (false, Some(part)) => with_partition(line, part),
        _ => line.to_vec(),
    };
    if let (true, None, Some(s)) = (multi, &p.scenario, &file.scenario) {
        bytes = with_field(&bytes, "scenario", s);
    }
    bytes
}

/// Where records are written: a JSONL layout or Parquet.
enum Sink {
    Jsonl(CorpusWriter),
    Parquet(ParquetCorpusWriter),
}

impl Sink {
    fn write(&mut self, target: &Target, package: &str, line: &[u8]) -> Result<()> {
        match (self, target) {
            (Sink::Jsonl(w), t) => w.write(t, line),
            (
                Sink::Parquet(w),
                Target::Partitioned {
                    scenario,
                    partition,
                },
            ) => w.write(scenario, *partition, package, line),
            (Sink::Parquet(_), _) => unreachable!("Parquet output is partitioned"),
        }
    }
}

pub fn run(cfg: &ConvertConfig, reporter: &dyn Reporter) -> Result<ConvertReport> {
    cfg.validate()?;
    let files = cfg.input.discover()?;
    let scenarios: std::collections::BTreeSet<&str> =
        files.iter().filter_map(|f| f.scenario.as_deref()).collect();
    let multi = scenarios.len() > 1;
    let metadata = crate::metadata::MetadataIndex::load_logged(&cfg.metadata, reporter)?;
    let mut writer = if cfg.chunked() {
        crate::writer::check_folder_out(&cfg.out, "a chunked or Parquet layout")?;
        crate::writer::check_apart(&cfg.out, &cfg.input.inputs)?;
        use pytorrent_io::owner::{Owner, Previous};
        let owner = Owner::claim(&cfg.out, "corpus convert", cfg.force, Previous::Remove)?;
        match cfg.format {
            CorpusFormat::Jsonl => Sink::Jsonl(CorpusWriter::owned(owner, cfg.writer_options())?),
            CorpusFormat::Parquet => Sink::Parquet(ParquetCorpusWriter::owned(
                owner,
                cfg.chunk_bytes.unwrap_or(DEFAULT_FILE_BYTES),
            )?),
        }
    } else {
        crate::writer::check_file_out(&cfg.out, "the flat layout")?;
        Sink::Jsonl(CorpusWriter::new(&cfg.out, cfg.writer_options())?)
    };
    let mut per_partition: BTreeMap<String, u64> = BTreeMap::new();
    let mut left_out = 0u64;
    reporter.begin("convert", Unit::Bytes, None);
    let read = read_corpus(
        &files,
        &cfg.input.options(Some(&cfg.out)),
        reporter,
        |file, _, rec| Placement {
            has_partition: rec.partition.is_some(),
            partition: effective_partition(&rec, file).or(cfg.default_partition),
            scenario: rec.scenario.as_deref().map(str::to_string),
            package: rec.repo.to_string(),
        },
        |item| {
            let Item::Record { file, line, value } = item else {
                return Ok(());
            };
            if value.partition.is_some() && !cfg.partition.contains(value.partition) {
                left_out += 1;
                return Ok(());
            }
            let target = match (cfg.chunked(), value.partition) {
                (false, _) => Target::Flat,
                (true, Some(partition)) => Target::Partitioned {
                    scenario: scenario_of(cfg, file, &value),
                    partition,
                },
                (true, None) => {
                    return Err(Error::Data(Problem {
                        path: file.display(),
                        line: line.line_no,
                        kind: ProblemKind::MissingField,
                        message: "record has no partition and its folder names none (give \
                                  --default-partition)"
                            .into(),
                    }))
                }
            };
            *per_partition
                .entry(value.partition.map_or("none", |p| p.as_str()).into())
                .or_default() += 1;
            let bytes = line_for(cfg, multi, file, &value, line.bytes);
            writer.write(&target, &value.package, &bytes)
        },
    );
    reporter.end();
    let read = read?;
    let written = match writer {
        Sink::Jsonl(w) => w.finish()?,
        Sink::Parquet(w) => {
            let w = w.close()?;
            for (field, n) in &w.unknown_fields {
                reporter.warn(&format!(
                    "field `{field}` of {} has no Parquet column and was left out",
                    pytorrent_io::reporter::plural(*n, "record", "records")
                ));
            }
            let inputs: Vec<String> = files.iter().map(InputFile::display).collect();
            w.finish(&Card {
                title: format!("PyTorrent corpus from {}", inputs.join(", ")),
                tool: format!("pytorrent {} (corpus convert)", env!("CARGO_PKG_VERSION")),
                metadata: metadata.as_ref(),
            })?
        }
    };
    Ok(ConvertReport {
        read,
        records_per_partition: per_partition,
        left_out,
        written,
    })
}

impl std::fmt::Display for ConvertReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", crate::read::skipped_lines(&self.read))?;
        let total: u64 = self.records_per_partition.values().sum();
        writeln!(
            f,
            "wrote {} into {}",
            pytorrent_io::reporter::plural(total, "record", "records"),
            pytorrent_io::reporter::plural(self.written.len() as u64, "file", "files"),
        )?;
        if self.left_out > 0 {
            writeln!(f, "  left out (other partitions): {}", self.left_out)?;
        }
        Ok(())
    }
}
