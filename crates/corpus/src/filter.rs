//! Record selection for `corpus filter`: license class or SPDX ids (via package metadata),
//! partition, package names, code length. Every dropped record is counted by reason.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::license::LicenseClass;
use crate::metadata::{normalize_name, MetadataIndex};
use crate::read::effective_partition;
use crate::record::{Partition, RecordRef};
use crate::source::InputFile;

#[derive(Debug, Clone, Default)]
pub struct FilterSpec {
    /// Keep packages whose license class is one of these.
    pub license_classes: Option<Vec<LicenseClass>>,
    /// Keep packages with at least one of these normalised license ids (e.g. `MIT`).
    pub license_ids: Option<Vec<String>>,
    pub partitions: Option<Vec<Partition>>,
    /// Keep only these packages (any spelling; compared after PEP 503 normalisation).
    pub packages: Option<HashSet<String>>,
    /// Drop these packages.
    pub exclude_packages: HashSet<String>,
    /// Packages and files removed on request.
    pub opt_out: Option<std::sync::Arc<crate::optout::OptOut>>,
    /// Bounds on the length of `code`, in characters.
    pub min_code_chars: Option<u64>,
    pub max_code_chars: Option<u64>,
}

pytorrent_io::word_enum! {
    "drop reason";
    /// Why a record was dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum DropReason {
        OptOut = "opt_out",
        License = "license",
        NoMetadata = "no_metadata",
        Partition = "partition",
        Package = "package",
        CodeTooShort = "code_too_short",
        CodeTooLong = "code_too_long",
    }
}

impl FilterSpec {
    pub fn needs_metadata(&self) -> bool {
        self.license_classes.is_some() || self.license_ids.is_some()
    }

    /// Checks the spec against the metadata it was given.
    pub fn check(&self, metadata: Option<&MetadataIndex>) -> Result<()> {
        if self.needs_metadata() && metadata.is_none() {
            return Err(Error::Usage(
                "filtering by license needs package metadata (--metadata Package_Metadata/)".into(),
            ));
        }
        Ok(())
    }

    /// `Ok(())` to keep the record, `Err(reason)` to drop it.
    pub fn decide(
        &self,
        rec: &RecordRef<'_>,
        file: &InputFile,
        metadata: Option<&MetadataIndex>,
    ) -> std::result::Result<(), DropReason> {
        if self
            .opt_out
            .as_ref()
            .is_some_and(|o| o.file(&rec.repo, &rec.path))
        {
            return Err(DropReason::OptOut);
        }
        if let Some(parts) = &self.partitions {
            match effective_partition(rec, file) {
                Some(p) if parts.contains(&p) => {}
                _ => return Err(DropReason::Partition),
            }
        }
        if self.packages.is_some() || !self.exclude_packages.is_empty() {
            let name = normalize_name(&rec.repo);
            if self
                .packages
                .as_ref()
                .is_some_and(|keep| !keep.contains(&name))
                || self.exclude_packages.contains(&name)
            {
                return Err(DropReason::Package);
            }
        }
        if self.min_code_chars.is_some() || self.max_code_chars.is_some() {
            let n = rec.code.chars().count() as u64;
            if self.min_code_chars.is_some_and(|m| n < m) {
                return Err(DropReason::CodeTooShort);
            }
            if self.max_code_chars.is_some_and(|m| n > m) {
                return Err(DropReason::CodeTooLong);
            }
        }
        if self.needs_metadata() {
            let Some(meta) = metadata.and_then(|m| m.get(&rec.repo)) else {
                // A package we know nothing about passes only a filter asking for that.
                return if self
                    .license_classes
                    .as_ref()
                    .is_some_and(|c| c.contains(&LicenseClass::NoMetadata))
                {
                    Ok(())
                } else {
                    Err(DropReason::NoMetadata)
                };
            };
            if let Some(classes) = &self.license_classes {
                if !classes.contains(&meta.license.class) {
                    return Err(DropReason::License);
                }
            }
            if let Some(ids) = &self.license_ids {
                if !meta
                    .license
                    .ids
                    .iter()
                    .any(|id| ids.iter().any(|w| crate::license::id_matches(w, id)))
                {
                    return Err(DropReason::License);
                }
            }
        }
        Ok(())
    }
}

/// Counts of a filter run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct FilterCounts {
    pub kept: u64,
    pub dropped: BTreeMap<DropReason, u64>,
}

impl FilterCounts {
    pub fn add(&mut self, d: std::result::Result<(), DropReason>) {
        match d {
            Ok(()) => self.kept += 1,
            Err(r) => *self.dropped.entry(r).or_default() += 1,
        }
    }
}

/// `corpus filter`: keeps matching records; the output keeps the input layout, file for file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct FilterConfig {
    #[serde(flatten)]
    #[cfg_attr(feature = "cli", command(flatten))]
    pub input: crate::input::InputConfig,
    /// Output file (one input file; - for stdout), a folder to put that file in, or a folder
    /// mirroring a folder or several inputs.
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: std::path::PathBuf,
    /// Package metadata (a Package_Metadata folder, or PyPI / Anaconda JSON files), needed by
    /// the license filters.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub metadata: Vec<std::path::PathBuf>,
    /// Keep packages of these license classes: permissive, copyleft, unknown (comma-separated).
    #[serde(default, deserialize_with = "pytorrent_io::names::opt_list")]
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub license: Option<Vec<LicenseClass>>,
    /// Keep packages with one of these license ids, e.g. MIT,Apache-2.0,BSD-3-Clause.
    #[serde(default, deserialize_with = "pytorrent_io::names::opt_list")]
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub spdx: Option<Vec<String>>,
    /// Keep these partitions: train, valid, test (comma-separated) or all.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, default_value = "all"))]
    pub partition: crate::select::Partitions,
    /// Keep only these packages (comma-separated).
    #[serde(default, deserialize_with = "pytorrent_io::names::opt_list")]
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub packages: Option<Vec<String>>,
    /// Keep only the packages listed in this file (one name per line, # comments).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub packages_file: Option<std::path::PathBuf>,
    /// Drop these packages (comma-separated).
    #[serde(default, deserialize_with = "pytorrent_io::names::list")]
    #[cfg_attr(feature = "cli", arg(long, value_delimiter = ','))]
    pub exclude_packages: Vec<String>,
    /// Opt-out list: package names, or `package:glob` for files (one a line, # comments).
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub opt_out: Option<std::path::PathBuf>,
    /// Keep records whose code has at least this many characters.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub min_code_chars: Option<u64>,
    /// Keep records whose code has at most this many characters.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub max_code_chars: Option<u64>,
    /// Write into an output folder that another command (or someone) made; only files of the
    /// names this run writes are replaced.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
}

impl FilterConfig {
    pub fn new(input: crate::input::InputConfig, out: std::path::PathBuf) -> FilterConfig {
        FilterConfig {
            input,
            out,
            metadata: Vec::new(),
            license: None,
            spdx: None,
            partition: Default::default(),
            packages: None,
            packages_file: None,
            exclude_packages: Vec::new(),
            opt_out: None,
            min_code_chars: None,
            max_code_chars: None,
            force: false,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if (self.license.is_some() || self.spdx.is_some()) && self.metadata.is_empty() {
            return Err(Error::Usage(
                "filtering by license needs package metadata (--metadata Package_Metadata/)".into(),
            ));
        }
        if let (Some(lo), Some(hi)) = (self.min_code_chars, self.max_code_chars) {
            if lo > hi {
                return Err(Error::Usage(format!(
                    "--min-code-chars {lo} is above --max-code-chars {hi}"
                )));
            }
        }
        Ok(())
    }

    /// The selection this config describes (reads the package and opt-out files).
    pub fn spec(&self) -> Result<FilterSpec> {
        let mut keep: Option<HashSet<String>> = None;
        if let Some(p) = &self.packages {
            keep.get_or_insert_default()
                .extend(p.iter().map(|n| normalize_name(n)));
        }
        if let Some(f) = &self.packages_file {
            keep.get_or_insert_default().extend(
                pytorrent_io::lists::read_list(f)?
                    .iter()
                    .map(|e| normalize_name(&e.text)),
            );
        }
        Ok(FilterSpec {
            license_classes: self.license.clone(),
            license_ids: self.spdx.clone(),
            partitions: self.partition.as_slice().map(<[Partition]>::to_vec),
            packages: keep,
            exclude_packages: self
                .exclude_packages
                .iter()
                .map(|n| normalize_name(n))
                .collect(),
            opt_out: self
                .opt_out
                .as_deref()
                .map(crate::optout::OptOut::load)
                .transpose()?
                .map(std::sync::Arc::new),
            min_code_chars: self.min_code_chars,
            max_code_chars: self.max_code_chars,
        })
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct FilterReport {
    pub read: crate::read::ReadSummary,
    pub filter: FilterCounts,
    pub written: Vec<crate::writer::WrittenFile>,
    #[serde(skip)]
    pub out: std::path::PathBuf,
}

/// Says which `--spdx` ids match no package of the metadata (a typo, or a family spelt
/// otherwise), with the ids the metadata does have.
fn warn_unmatched_ids(
    wanted: &[String],
    index: &MetadataIndex,
    reporter: &dyn pytorrent_io::Reporter,
) {
    let present: std::collections::BTreeSet<&str> = index
        .iter()
        .flat_map(|m| m.license.ids.iter().map(String::as_str))
        .collect();
    for w in wanted {
        if !present.iter().any(|id| crate::license::id_matches(w, id)) {
            let shown: Vec<&str> = present.iter().take(20).copied().collect();
            reporter.warn(&format!(
                "--spdx {w} matches no package's license in the metadata (ids there: {})",
                shown.join(", ")
            ));
        }
    }
}

/// Reads the inputs and writes the records the config keeps, in the input's layout.
pub fn run(cfg: &FilterConfig, reporter: &dyn pytorrent_io::Reporter) -> Result<FilterReport> {
    use crate::writer::{CorpusWriter, Layout, Target, WriterOptions};
    cfg.validate()?;
    let files = cfg.input.discover()?;
    let spec = cfg.spec()?;
    let metadata = crate::metadata::MetadataIndex::load_logged(&cfg.metadata, reporter)?;
    spec.check(metadata.as_ref())?;
    if let (Some(wanted), Some(index)) = (&cfg.spdx, &metadata) {
        warn_unmatched_ids(wanted, index, reporter);
    }
    // One input file → one output file (or a file of its name in an existing folder); a
    // folder or several inputs → a folder mirroring them.
    let single_file = cfg.input.inputs.len() == 1 && !cfg.input.inputs[0].is_dir();
    let into_folder = !single_file || cfg.out.is_dir();
    let options = |layout| WriterOptions {
        layout,
        compression: None,
        chunk_records: None,
        chunk_bytes: None,
    };
    let single_name = single_file
        .then(|| cfg.input.inputs[0].file_name().map(PathBuf::from))
        .flatten()
        .filter(|_| cfg.input.inputs[0] != Path::new("-"));
    let mut writer = if into_folder {
        if single_file && single_name.is_none() {
            return Err(Error::Usage(format!(
                "--out {} is a folder: give a file name for what standard input holds",
                cfg.out.display()
            )));
        }
        if !cfg.out.is_dir() {
            crate::writer::check_folder_out(&cfg.out, "filter of a folder or several inputs")?;
        }
        crate::writer::check_apart(&cfg.out, &cfg.input.inputs)?;
        use pytorrent_io::owner::{Owner, Previous};
        let owner = Owner::claim(&cfg.out, "corpus filter", cfg.force, Previous::Remove)?;
        CorpusWriter::owned(owner, options(Layout::Mirror))?
    } else {
        CorpusWriter::new(&cfg.out, options(Layout::Flat))?
    };
    let mut counts = FilterCounts::default();
    reporter.begin("filter", pytorrent_io::Unit::Bytes, None);
    let read = crate::read::read_corpus(
        &files,
        &cfg.input.options(Some(&cfg.out)),
        reporter,
        |file, _, rec| spec.decide(&rec, file, metadata.as_ref()),
        |item| {
            if let crate::read::Item::Record { file, line, value } = item {
                // Only files that keep a record are written: a filtered-out partition leaves
                // no empty chunk files behind.
                if value.is_ok() {
                    let target = match (&single_name, into_folder) {
                        (_, false) => Target::Flat,
                        (Some(name), true) => Target::Mirror { rel: name.clone() },
                        (None, true) => Target::Mirror {
                            rel: file.rel.clone(),
                        },
                    };
                    writer.write(&target, line.bytes)?;
                }
                counts.add(value);
            }
            Ok::<(), Error>(())
        },
    );
    reporter.end();
    let read = read?;
    Ok(FilterReport {
        read,
        filter: counts,
        written: writer.finish()?,
        out: cfg.out.clone(),
    })
}

impl std::fmt::Display for FilterReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dropped: u64 = self.filter.dropped.values().sum();
        write!(f, "{}", crate::read::skipped_lines(&self.read))?;
        writeln!(
            f,
            "kept {} of {} into {} under {}",
            self.filter.kept,
            pytorrent_io::reporter::plural(self.filter.kept + dropped, "record", "records"),
            pytorrent_io::reporter::plural(self.written.len() as u64, "file", "files"),
            self.out.display()
        )?;
        for (reason, n) in &self.filter.dropped {
            writeln!(f, "  dropped ({}): {n}", reason.name())?;
        }
        Ok(())
    }
}
