//! Texts of one view of a corpus as a pull iterator, for consumers that want to pull
//! (a tokenizer trainer, an encoder): the streaming reader runs on its own thread and hands
//! over batches through a bounded channel, so memory stays at a few batches.
//!
//! The reader parses on a rayon pool of its own: consumers such as the `tokenizers` trainer
//! pull from the iterator inside jobs of the global pool (`par_bridge`), and a reader that
//! needed those same threads would wait on them forever.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::Result;
use crate::read::{
    effective_partition, read_corpus, Item, NoProgress, Progress, ReadOptions, ReadSummary,
};
use crate::record::{Partition, TextView};
use crate::source::InputFile;

/// Where one text came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextOrigin {
    pub path: String,
    pub line: u64,
}

/// Counts of a text stream beyond the reader's own.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TextCounts {
    pub texts: u64,
    /// Records left out because of their partition.
    pub other_partition: u64,
    /// Records that lack the field the view needs (e.g. no `summary`).
    pub missing_view: u64,
}

type Batch = Vec<(TextOrigin, String)>;

pub struct TextStream {
    rx: Option<mpsc::Receiver<Batch>>,
    current: std::vec::IntoIter<(TextOrigin, String)>,
    handle: Option<JoinHandle<Result<(ReadSummary, TextCounts)>>>,
}

impl TextStream {
    /// Starts reading `files`; `partitions: None` keeps every partition.
    pub fn start(
        files: Vec<InputFile>,
        opts: ReadOptions,
        view: TextView,
        partitions: Option<Vec<Partition>>,
        progress: Option<Box<dyn Progress + Send>>,
    ) -> TextStream {
        let (tx, rx) = mpsc::sync_channel::<Batch>(4);
        let handle = std::thread::spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(rayon::current_num_threads())
                .thread_name(|i| format!("corpus-reader-{i}"))
                .build()
                .expect("a thread pool of the default size can be built");
            pool.install(move || Self::read(files, opts, view, partitions, progress, tx))
        });
        TextStream {
            rx: Some(rx),
            current: Vec::new().into_iter(),
            handle: Some(handle),
        }
    }

    fn read(
        files: Vec<InputFile>,
        opts: ReadOptions,
        view: TextView,
        partitions: Option<Vec<Partition>>,
        progress: Option<Box<dyn Progress + Send>>,
        tx: mpsc::SyncSender<Batch>,
    ) -> Result<(ReadSummary, TextCounts)> {
        {
            let progress: Box<dyn Progress + Send> =
                progress.unwrap_or_else(|| Box::new(NoProgress));
            let mut counts = TextCounts::default();
            let mut batch: Batch = Vec::new();
            let mut batch_bytes = 0usize;
            let mut closed = false;
            let summary = read_corpus(
                &files,
                &opts,
                progress.as_ref(),
                |file, line, rec| {
                    if partitions.as_ref().is_some_and(|ps| {
                        !effective_partition(&rec, file).is_some_and(|p| ps.contains(&p))
                    }) {
                        return Err(false);
                    }
                    match view.text(&rec) {
                        Some(t) => Ok((
                            TextOrigin {
                                path: file.display(),
                                line: line.line_no,
                            },
                            t.into_owned(),
                        )),
                        None => Err(true),
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
                            Err(false) => counts.other_partition += 1,
                            Err(true) => counts.missing_view += 1,
                        }
                    }
                    Ok(())
                },
            )?;
            if !batch.is_empty() && !closed {
                let _ = tx.send(batch);
            }
            Ok((summary, counts))
        }
    }

    /// Waits for the reader and returns its counts, or the first error it met.
    pub fn finish(mut self) -> Result<(ReadSummary, TextCounts)> {
        self.rx = None; // a reader still sending stops at its next batch
        self.handle
            .take()
            .expect("finish is called once")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    /// Turns this into a plain text iterator (origins dropped).
    pub fn texts(&mut self) -> impl Iterator<Item = String> + Send + '_ {
        self.map(|(_, t)| t)
    }
}

impl Iterator for TextStream {
    type Item = (TextOrigin, String);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(x) = self.current.next() {
                return Some(x);
            }
            let batch = self.rx.as_ref()?.recv().ok()?;
            self.current = batch.into_iter();
        }
    }
}
