//! Texts of one view of a corpus as a pull iterator, for consumers that want to pull
//! (a tokenizer trainer, an encoder): the streaming reader runs on a thread of its own and
//! hands over batches through a bounded channel, so memory stays at a few batches.
//!
//! The reader parses on a rayon pool of its own: consumers such as the `tokenizers` trainer
//! pull from the iterator inside jobs of the global pool (`par_bridge`), and a reader that
//! needed those same threads would wait on them forever.

use std::sync::mpsc;

use pytorrent_io::Reporter;

use crate::error::Result;
use crate::read::{read_records, Item, ReadOptions, ReadSummary};
use crate::schema::TextSource;
use crate::select::{Excluded, PartitionRule, Partitions};
use crate::source::InputFile;

/// Where one text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOrigin {
    pub path: String,
    pub line: u64,
}

/// Counts of a text stream beyond the reader's own.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TextCounts {
    pub texts: u64,
    /// Records left out because of their partition.
    pub other_partition: u64,
    /// Records that lack the field the view needs (e.g. no `summary`).
    pub missing_view: u64,
    /// Records left out because nothing says their partition (no field, no folder, no rule).
    pub no_partition: u64,
}

impl TextCounts {
    /// Counts a record its partition left out.
    pub fn exclude(&mut self, why: Excluded) {
        match why {
            Excluded::OtherPartition => self.other_partition += 1,
            Excluded::NoPartition => self.no_partition += 1,
        }
    }

    /// Why a run found no text, and what to do about it.
    pub fn why_none(&self, source: &TextSource, partitions: &Partitions) -> String {
        let mut why = format!("no {} texts in partition(s) {partitions}", source.name());
        if self.no_partition > 0 {
            why.push_str(&format!(
                "; {} no partition (no field, no partition folder or file name): give \
                 --default-partition train or --validation-split-percentage N, or \
                 --partition all",
                pytorrent_io::reporter::plural(self.no_partition, "record has", "records have")
            ));
        }
        if self.other_partition > 0 {
            why.push_str(&format!(
                "; {} of other partitions (--partition all takes every one)",
                pytorrent_io::reporter::plural(self.other_partition, "record is", "records are")
            ));
        }
        if self.missing_view > 0 {
            why.push_str(&format!(
                "; {} the {} (another --field, or --text-field NAME for records with a plain \
                 text field)",
                pytorrent_io::reporter::plural(self.missing_view, "record lacks", "records lack"),
                source.name()
            ));
        }
        why
    }
}

type Batch = Vec<(TextOrigin, String)>;

/// The texts, in input order, as the reader hands them over.
pub struct Texts {
    rx: mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<(TextOrigin, String)>,
}

impl Iterator for Texts {
    type Item = (TextOrigin, String);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(x);
            }
            self.current = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// Reads the texts `source` names of `files` (records of the chosen partitions, a record's
/// partition as `rule` resolves it) and hands them to `consume` as an iterator; returns what
/// `consume` returned and the reader's counts, or the first error the reader met. A consumer
/// that stops early stops the reader.
pub fn with_texts<R>(
    files: &[InputFile],
    opts: &ReadOptions,
    source: &TextSource,
    partitions: &Partitions,
    rule: &PartitionRule,
    progress: &dyn Reporter,
    consume: impl FnOnce(&mut Texts) -> R,
) -> Result<(R, ReadSummary, TextCounts)> {
    let (tx, rx) = mpsc::sync_channel::<Batch>(4);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("corpus-reader-{i}"))
                .build()
                .expect("a thread pool of the default size can be built");
            pool.install(|| read_texts(files, opts, source, partitions, rule, progress, tx))
        });
        let mut texts = Texts {
            rx,
            current: Vec::new().into_iter(),
        };
        let out = consume(&mut texts);
        drop(texts); // a reader still sending stops at its next batch
        let (summary, counts) = reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
        Ok((out, summary, counts))
    })
}

/// Why a record gave no text.
enum Skip {
    Partition(Excluded),
    MissingView,
}

fn read_texts(
    files: &[InputFile],
    opts: &ReadOptions,
    source: &TextSource,
    partitions: &Partitions,
    rule: &PartitionRule,
    progress: &dyn Reporter,
    tx: mpsc::SyncSender<Batch>,
) -> Result<(ReadSummary, TextCounts)> {
    let mut counts = TextCounts::default();
    let mut batch: Batch = Vec::new();
    let mut batch_bytes = 0usize;
    let mut closed = false;
    let summary = read_records(
        files,
        opts,
        &source.schema(),
        progress,
        |file, line, rec| {
            partitions
                .admit(rule.resolve(&rec, file))
                .map_err(Skip::Partition)?;
            match rec.text(source) {
                Some(t) => Ok((
                    TextOrigin {
                        path: file.display(),
                        line: line.line_no,
                    },
                    t.into_owned(),
                )),
                None => Err(Skip::MissingView),
            }
        },
        |item| {
            if let Item::Record { value, .. } = item {
                match value {
                    Ok(pair) => {
                        counts.texts += 1;
                        batch_bytes += pair.1.len();
                        batch.push(pair);
                        if (batch.len() >= 4096 || batch_bytes >= 4 << 20) && !closed {
                            closed = tx.send(std::mem::take(&mut batch)).is_err();
                            batch_bytes = 0;
                        }
                    }
                    Err(Skip::Partition(why)) => counts.exclude(why),
                    Err(Skip::MissingView) => counts.missing_view += 1,
                }
            }
            Ok::<(), crate::Error>(())
        },
    )?;
    if !batch.is_empty() && !closed {
        let _ = tx.send(batch);
    }
    Ok((summary, counts))
}
