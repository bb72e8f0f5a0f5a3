//! Rows of a `pytorrent pack` partition in a seeded order, turned into masked batches.
//!
//! The order of an epoch is a permutation of the shards, then of the rows inside each shard,
//! both seeded by the run seed and the epoch: memory holds one shard's permutation, not the
//! whole corpus's (the packer has already shuffled records across shards). Row `k` of the
//! run's stream — the batch of any step — is a function of the seed alone, which is what lets
//! `--resume` carry on exactly.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pytorrent_io::npy::{decode, Dtype};
use pytorrent_pack::manifest::Manifest;
use pytorrent_pack::mask::{mask_row, row_rng, MaskSpec, IGNORE};
use pytorrent_pack::megatron::Index;
use pytorrent_pack::shards::Format;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::model::Batch;
use crate::nn::seed_of;
use crate::{Error, Result};

/// One row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention: Vec<u8>,
    /// Static labels (-100 where nothing is predicted), when the shards carry them.
    pub labels: Option<Vec<i32>>,
}

/// A 2-D npy file read row by row.
struct NpyFile {
    file: File,
    path: PathBuf,
    dtype: Dtype,
    cols: usize,
    rows: usize,
    start: u64,
}

impl NpyFile {
    fn open(path: PathBuf) -> Result<NpyFile> {
        let file = File::open(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?;
        // A shard cut short (or grown) is refused before training starts, not when an epoch
        // first reaches its missing rows.
        let header = pytorrent_io::npy::read_checked_header(&file, &path)?;
        let descr = &header.descr;
        let dtype = Dtype::from_descr(descr)
            .ok_or_else(|| Error::data(&path, format!("unexpected dtype {descr}")))?;
        let (rows, cols) = header.two_d().map_err(|m| Error::data(&path, m))?;
        let start = header.start;
        Ok(NpyFile {
            file,
            path,
            dtype,
            cols,
            rows,
            start,
        })
    }

    fn row(&self, r: usize) -> Result<Vec<i64>> {
        let width = self.dtype.size();
        let mut buf = vec![0u8; self.cols * width];
        self.file
            .read_exact_at(&mut buf, self.start + (r * self.cols * width) as u64)
            .map_err(|e| pytorrent_io::Error::io(&self.path, e))?;
        Ok(decode(self.dtype, &buf))
    }
}

enum Shard {
    Npy {
        ids: NpyFile,
        mask: Option<NpyFile>,
        labels: Option<NpyFile>,
    },
    Megatron {
        bin: File,
        path: PathBuf,
        idx: PathBuf,
        /// Parsed on first use and dropped when another shard is read (bounded memory).
        index: Option<Index>,
    },
}

/// A partition folder of `pytorrent pack` output.
pub struct Partition {
    pub dir: PathBuf,
    pub manifest: Manifest,
    shards: Vec<Shard>,
    sizes: Vec<usize>,
    pub rows: u64,
}

impl Partition {
    pub fn open(dir: &Path) -> Result<Partition> {
        let mpath = dir.join("manifest.json");
        if !mpath.is_file() {
            let tasks = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .any(|e| e.file_name().to_string_lossy().starts_with("task-"))
                })
                .unwrap_or(false);
            return Err(Error::Usage(if tasks {
                format!(
                    "{}: the output of a split pack run; join its tasks with `pytorrent shards merge` first",
                    dir.display()
                )
            } else {
                format!(
                    "{}: no manifest.json (not a pack partition folder)",
                    dir.display()
                )
            }));
        }
        let manifest = Manifest::read(&mpath)?;
        let format = manifest.settings.format;
        let mut shards = Vec::new();
        let mut sizes = Vec::new();
        for s in &manifest.shards {
            let path = dir.join(&s.file);
            let shard = match format {
                Format::Npy => {
                    let ids = NpyFile::open(path.clone())?;
                    let sibling = |f: &Option<pytorrent_pack::shards::FileRef>| {
                        f.as_ref()
                            .map(|f| NpyFile::open(dir.join(&f.file)))
                            .transpose()
                    };
                    let (mask, labels) = (sibling(&s.attention_mask)?, sibling(&s.labels)?);
                    for f in [Some(&ids), mask.as_ref(), labels.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        if f.rows != s.rows {
                            return Err(Error::data(
                                &f.path,
                                format!("{} rows, the manifest says {}", f.rows, s.rows),
                            ));
                        }
                    }
                    Shard::Npy { ids, mask, labels }
                }
                Format::Megatron => {
                    let idx = s.index.as_ref().ok_or_else(|| {
                        Error::data(
                            &mpath,
                            format!("{}: a Megatron shard without its .idx", s.file),
                        )
                    })?;
                    Shard::Megatron {
                        bin: File::open(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?,
                        path,
                        idx: dir.join(&idx.file),
                        index: None,
                    }
                }
                Format::Parquet => {
                    return Err(Error::Usage(format!(
                        "{}: Parquet shards are for other trainers; pack with --format npy or \
                         megatron for `pytorrent pretrain`",
                        dir.display()
                    )))
                }
            };
            shards.push(shard);
            sizes.push(s.rows);
        }
        let rows = sizes.iter().map(|s| *s as u64).sum();
        Ok(Partition {
            dir: dir.to_path_buf(),
            manifest,
            shards,
            sizes,
            rows,
        })
    }

    pub fn has_labels(&self) -> bool {
        self.manifest.settings.static_mask
    }

    /// Rows per shard, in stored order.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    pub fn seq_len(&self) -> usize {
        self.manifest.settings.seq_len
    }

    /// Row `r` of shard `s`, its ids checked against the vocabulary the manifest records
    /// (an id beyond it would index past the embedding table).
    pub fn row(&mut self, s: usize, r: usize) -> Result<Row> {
        let row = self.read_row(s, r)?;
        let vocab = self.manifest.tokenizer.vocab_size();
        let bad_id = row.ids.iter().find(|id| **id as usize >= vocab);
        let bad_label = row
            .labels
            .iter()
            .flatten()
            .find(|l| **l != IGNORE && (**l < 0 || **l as usize >= vocab));
        if bad_id.is_some() || bad_label.is_some() {
            let file = &self.manifest.shards[s].file;
            return Err(Error::data(
                self.dir.join(file),
                format!(
                    "row {r}: {} {} is not below the vocabulary size {vocab} of the manifest's tokenizer",
                    if bad_id.is_some() { "id" } else { "label" },
                    bad_id.map(|i| *i as i64).or(bad_label.map(|l| *l as i64)).unwrap_or_default()
                ),
            ));
        }
        Ok(row)
    }

    fn read_row(&mut self, s: usize, r: usize) -> Result<Row> {
        // Only one Megatron index is held at a time.
        for (k, sh) in self.shards.iter_mut().enumerate() {
            if k != s {
                if let Shard::Megatron { index, .. } = sh {
                    *index = None;
                }
            }
        }
        match &mut self.shards[s] {
            Shard::Npy { ids, mask, labels } => {
                let v = ids.row(r)?;
                let ids_row: Vec<u32> = v.iter().map(|x| *x as u32).collect();
                let attention = match mask {
                    Some(m) => m.row(r)?.into_iter().map(|x| x as u8).collect(),
                    None => vec![1; ids_row.len()],
                };
                let labels = labels
                    .as_ref()
                    .map(|l| l.row(r).map(|v| v.into_iter().map(|x| x as i32).collect()))
                    .transpose()?;
                Ok(Row {
                    ids: ids_row,
                    attention,
                    labels,
                })
            }
            Shard::Megatron {
                bin,
                path,
                idx,
                index,
            } => {
                if index.is_none() {
                    let bytes =
                        std::fs::read(&*idx).map_err(|e| pytorrent_io::Error::io(&*idx, e))?;
                    *index = Some(Index::parse(&bytes).map_err(|e| Error::data(&*idx, e))?);
                }
                let ix = index.as_ref().expect("just parsed");
                let dtype = self.manifest.dtype;
                let (len, at) = (ix.lengths[r] as usize, ix.pointers[r] as u64);
                let mut buf = vec![0u8; len * dtype.size()];
                bin.read_exact_at(&mut buf, at)
                    .map_err(|e| pytorrent_io::Error::io(&*path, e))?;
                let ids: Vec<u32> = decode(dtype, &buf).into_iter().map(|x| x as u32).collect();
                Ok(Row {
                    attention: vec![1; ids.len()],
                    ids,
                    labels: None,
                })
            }
        }
    }
}

/// The seeded order of a partition's rows, epoch after epoch.
pub struct Order {
    seed: u64,
    sizes: Vec<usize>,
    /// (epoch, shard order, cumulative starts in that order)
    epoch: Option<(u64, Vec<usize>, Vec<u64>)>,
    /// (epoch, shard, row permutation)
    rows: Option<(u64, usize, Vec<u32>)>,
}

impl Order {
    pub fn new(seed: u64, sizes: &[usize]) -> Order {
        Order {
            seed,
            sizes: sizes.to_vec(),
            epoch: None,
            rows: None,
        }
    }

    pub fn total(&self) -> u64 {
        self.sizes.iter().map(|s| *s as u64).sum()
    }

    /// The (shard, row) at place `k` of the endless stream.
    pub fn at(&mut self, k: u64) -> (usize, usize) {
        let n = self.total();
        let (epoch, i) = (k / n, k % n);
        if self.epoch.as_ref().map(|e| e.0) != Some(epoch) {
            let mut order: Vec<usize> = (0..self.sizes.len()).collect();
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed_of(&[
                self.seed, 0x0D, epoch,
            ])));
            let mut starts = Vec::with_capacity(order.len());
            let mut acc = 0;
            for s in &order {
                starts.push(acc);
                acc += self.sizes[*s] as u64;
            }
            self.epoch = Some((epoch, order, starts));
        }
        let (_, order, starts) = self.epoch.as_ref().expect("set above");
        let j = starts.partition_point(|s| *s <= i) - 1;
        let shard = order[j];
        let within = (i - starts[j]) as usize;
        if self.rows.as_ref().map(|r| (r.0, r.1)) != Some((epoch, shard)) {
            let mut perm: Vec<u32> = (0..self.sizes[shard] as u32).collect();
            perm.shuffle(&mut ChaCha8Rng::seed_from_u64(seed_of(&[
                self.seed,
                0x0E,
                epoch,
                shard as u64,
            ])));
            self.rows = Some((epoch, shard, perm));
        }
        (
            shard,
            self.rows.as_ref().expect("set above").2[within] as usize,
        )
    }
}

/// How rows without static labels are masked.
pub struct Masking {
    pub spec: MaskSpec,
    /// Ids never masked, sorted: the tokenizer's special tokens and padding.
    pub special: Vec<u32>,
}

/// Rows into one batch: padded to the longest, targets from static labels or masked here
/// with a generator seeded by `mask_seeds[i]`.
pub fn batch(rows: &[Row], pad: u32, masking: &Masking, mask_seeds: &[u64]) -> Batch {
    let s = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
    let mut out = Batch {
        b: rows.len(),
        s,
        ids: Vec::with_capacity(rows.len() * s),
        attention: Vec::with_capacity(rows.len() * s),
        targets: Vec::new(),
    };
    for (i, (row, seed)) in rows.iter().zip(mask_seeds).enumerate() {
        let (inputs, labels) = match &row.labels {
            Some(l) => (row.ids.clone(), l.clone()),
            // Padding holds the pad id, which is among the special ids: never masked.
            None => mask_row(
                &row.ids,
                &[],
                |id| masking.special.binary_search(&id).is_ok(),
                &masking.spec,
                &mut row_rng(*seed),
            ),
        };
        for (k, l) in labels.iter().enumerate() {
            if *l != IGNORE && *l >= 0 {
                out.targets.push(((i * s + k) as u32, *l as u32));
            }
        }
        out.ids.extend(&inputs);
        out.ids.extend(std::iter::repeat_n(pad, s - inputs.len()));
        out.attention.extend(&row.attention);
        out.attention
            .extend(std::iter::repeat_n(0, s - row.attention.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_visits_every_row_once_and_epochs_differ() {
        let sizes = [5, 3, 7];
        let mut o = Order::new(9, &sizes);
        let first: Vec<(usize, usize)> = (0..15).map(|k| o.at(k)).collect();
        let mut sorted = first.clone();
        sorted.sort();
        let want: Vec<(usize, usize)> = sizes
            .iter()
            .enumerate()
            .flat_map(|(s, n)| (0..*n).map(move |r| (s, r)))
            .collect();
        assert_eq!(sorted, want);
        let second: Vec<(usize, usize)> = (15..30).map(|k| o.at(k)).collect();
        assert_ne!(first, second);
        // Any place can be asked for first: the order depends on the seed only.
        let mut fresh = Order::new(9, &sizes);
        assert_eq!(fresh.at(22), second[7]);
        assert_eq!(fresh.at(3), first[3]);
    }
}
