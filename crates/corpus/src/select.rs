//! `--partition train|valid|test|all` (comma-separated for several): which partitions a stage
//! works on. In a TOML config: the same string, or a list of names.

use std::fmt;

use crate::record::Partition;

/// A choice of partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Partitions {
    #[default]
    All,
    Only(Vec<Partition>),
}

impl Partitions {
    pub fn only(p: Partition) -> Partitions {
        Partitions::Only(vec![p])
    }

    /// Whether a record of partition `p` (or of none, for `None`) is chosen: `all` takes
    /// records without a partition too, a list takes only its own.
    pub fn contains(&self, p: Option<Partition>) -> bool {
        match self {
            Partitions::All => true,
            Partitions::Only(list) => p.is_some_and(|p| list.contains(&p)),
        }
    }

    /// Whether a record of partition `p` (`None`: nothing says) is taken, and if not, why.
    pub fn admit(&self, p: Option<Partition>) -> Result<(), Excluded> {
        match (self.contains(p), p) {
            (true, _) => Ok(()),
            (false, None) => Err(Excluded::NoPartition),
            (false, Some(_)) => Err(Excluded::OtherPartition),
        }
    }

    /// The list, or `None` for all.
    pub fn as_slice(&self) -> Option<&[Partition]> {
        match self {
            Partitions::All => None,
            Partitions::Only(list) => Some(list),
        }
    }

    /// The partitions chosen, `all` being the three.
    pub fn list(&self) -> Vec<Partition> {
        self.as_slice()
            .map_or_else(|| Partition::ALL.to_vec(), <[Partition]>::to_vec)
    }
}

impl std::str::FromStr for Partitions {
    type Err = String;
    fn from_str(s: &str) -> Result<Partitions, String> {
        if s.trim() == "all" {
            return Ok(Partitions::All);
        }
        let mut list = Vec::new();
        for p in s.split(',').map(str::trim) {
            let p = Partition::parse(p).ok_or_else(|| {
                format!("unknown partition '{p}' (expected train, valid, test or all)")
            })?;
            if !list.contains(&p) {
                list.push(p);
            }
        }
        Ok(Partitions::Only(list))
    }
}

impl fmt::Display for Partitions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partitions::All => f.write_str("all"),
            Partitions::Only(list) => {
                let names: Vec<&str> = list.iter().map(|p| p.as_str()).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

impl serde::Serialize for Partitions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Partitions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Partitions, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        let text = match Form::deserialize(d)? {
            Form::One(s) => s,
            Form::Many(v) => v.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_and_refusals() {
        assert_eq!("all".parse::<Partitions>().unwrap(), Partitions::All);
        let p: Partitions = "train, validation,train".parse().unwrap();
        assert_eq!(
            p,
            Partitions::Only(vec![Partition::Train, Partition::Valid])
        );
        assert_eq!(p.to_string(), "train,valid");
        assert!(p.contains(Some(Partition::Valid)) && !p.contains(None));
        assert!(Partitions::All.contains(None));
        assert!("trian".parse::<Partitions>().unwrap_err().contains("trian"));
    }
}

/// Why [`Partitions::admit`] left a record out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excluded {
    /// Its partition is not one of those asked for.
    OtherPartition,
    /// Nothing says its partition (no field, no folder or file name, no rule).
    NoPartition,
}

/// What partition a record without one gets (`default_partition`, or a deterministic split
/// by `validation_split_percentage`), for stages that must put every record somewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct PartitionRule {
    /// Partition of records that have none and whose file or folder names none.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long))]
    pub default_partition: Option<Partition>,
    /// Percent of such records put in valid, the rest in train: by a hash of the package
    /// name (a package never spans two partitions) or, for records with only a text field,
    /// of the text.
    #[serde(default)]
    #[cfg_attr(feature = "cli", arg(long, value_name = "N"))]
    pub validation_split_percentage: Option<u8>,
}

impl PartitionRule {
    pub fn validate(&self) -> Result<(), String> {
        match self.validation_split_percentage {
            Some(p) if p > 100 => Err(format!("--validation-split-percentage {p} is above 100")),
            Some(_) if self.default_partition.is_some() => {
                Err("give --default-partition or --validation-split-percentage, not both".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether the rule gives a partition to records that have none.
    pub fn is_set(&self) -> bool {
        self.default_partition.is_some() || self.validation_split_percentage.is_some()
    }

    /// The partition of a record: its own, else its file's, else the rule's; `None` when
    /// nothing says.
    pub fn resolve(
        &self,
        rec: &crate::schema::AnyRecord<'_>,
        file: &crate::source::InputFile,
    ) -> Option<Partition> {
        self.resolve_with(rec.partition().or(file.partition), || rec.split_hash())
    }

    /// The partition of a record whose own (or its file's) is `own`: that, else the rule's,
    /// with `split_hash` deciding valid or train for `validation_split_percentage`.
    pub fn resolve_with(
        &self,
        own: Option<Partition>,
        split_hash: impl FnOnce() -> u64,
    ) -> Option<Partition> {
        own.or(self.default_partition).or_else(|| {
            self.validation_split_percentage.map(|pct| {
                if split_hash() % 100 < pct as u64 {
                    Partition::Valid
                } else {
                    Partition::Train
                }
            })
        })
    }
}
