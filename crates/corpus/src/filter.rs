//! Record selection for `corpus filter`: license class or SPDX ids (via package metadata),
//! partition, package names, code length. Every dropped record is counted by reason.

use std::collections::{BTreeMap, HashSet};

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

/// Why a record was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    OptOut,
    License,
    NoMetadata,
    Partition,
    Package,
    CodeTooShort,
    CodeTooLong,
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
                // A package we know nothing about can only pass a filter asking for unknowns.
                return if self
                    .license_classes
                    .as_ref()
                    .is_some_and(|c| c.contains(&LicenseClass::Unknown))
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
                    .any(|id| ids.iter().any(|w| w.eq_ignore_ascii_case(id)))
                {
                    return Err(DropReason::License);
                }
            }
        }
        Ok(())
    }
}

/// Counts of a filter run.
#[derive(Debug, Clone, Default, Serialize)]
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
