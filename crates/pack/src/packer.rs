//! From per-record token ids to blocks of exactly `seq_len` tokens.

pytorrent_io::word_enum! {
    "mode";
    /// How records become rows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Mode {
        /// Records (each `<s> … </s>`) concatenated in order and cut into blocks of `seq_len`.
        #[default]
        Concat = "concat",
        /// One record per row: `<s> … </s>` truncated to `seq_len`, padded with `<pad>`.
        Record = "record",
    }
}

pytorrent_io::word_enum! {
    "remainder";
    /// What happens to the tokens left after the last full block (concat mode).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Remainder {
        #[default]
        Drop = "drop",
        Pad = "pad",
    }
}

#[derive(Debug, Clone)]
pub struct PackOptions {
    pub seq_len: usize,
    pub mode: Mode,
    pub remainder: Remainder,
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
}

/// One row: ids, the attention mask (1 for real tokens), and — when whole-word masking asked
/// for them — which ids begin a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub ids: Vec<u32>,
    pub attention: Vec<u8>,
    pub word_starts: Vec<bool>,
}

impl Block {
    /// Tokens that are not padding.
    pub fn real_len(&self) -> usize {
        self.attention.iter().filter(|a| **a == 1).count()
    }
}

/// A state machine over a stream of records.
pub struct Packer {
    opts: PackOptions,
    pending: Vec<u32>,
    /// Parallel to `pending` when words are tracked.
    starts: Option<Vec<bool>>,
}

impl Packer {
    pub fn new(opts: PackOptions) -> Self {
        Self::with_words(opts, false)
    }

    /// A packer that also carries word starts (for whole-word masking).
    pub fn with_words(opts: PackOptions, words: bool) -> Self {
        assert!(opts.seq_len >= 2, "a block holds at least <s> and </s>");
        Packer {
            opts,
            pending: Vec::new(),
            starts: words.then(Vec::new),
        }
    }

    /// Adds one record's ids (without special tokens); emits the rows that are complete.
    /// `starts` (same length as `ids`) is used only by a packer built `with_words`.
    pub fn push(&mut self, ids: &[u32], starts: &[bool], emit: &mut impl FnMut(Block)) {
        let n = self.opts.seq_len;
        match self.opts.mode {
            Mode::Concat => {
                self.pending.push(self.opts.bos);
                self.pending.extend_from_slice(ids);
                self.pending.push(self.opts.eos);
                if let Some(s) = self.starts.as_mut() {
                    s.push(true);
                    s.extend(padded(starts, ids.len()));
                    s.push(true);
                }
                let full = self.pending.len() / n * n;
                for (i, chunk) in self.pending[..full].chunks_exact(n).enumerate() {
                    emit(Block {
                        ids: chunk.to_vec(),
                        attention: vec![1; n],
                        word_starts: self
                            .starts
                            .as_ref()
                            .map(|s| s[i * n..(i + 1) * n].to_vec())
                            .unwrap_or_default(),
                    });
                }
                self.pending.drain(..full);
                if let Some(s) = self.starts.as_mut() {
                    s.drain(..full);
                }
            }
            Mode::Record => {
                let keep = ids.len().min(n - 2);
                let mut row = Vec::with_capacity(n);
                row.push(self.opts.bos);
                row.extend_from_slice(&ids[..keep]);
                row.push(self.opts.eos);
                let real = row.len();
                row.resize(n, self.opts.pad);
                let mut attention = vec![1u8; real];
                attention.resize(n, 0);
                let word_starts = if self.starts.is_some() {
                    let mut w = vec![true];
                    w.extend(padded(starts, ids.len()).take(keep));
                    w.resize(n, true);
                    w
                } else {
                    Vec::new()
                };
                emit(Block {
                    ids: row,
                    attention,
                    word_starts,
                });
            }
        }
    }

    /// Emits the last partial block (concat mode, `Remainder::Pad`) or drops it; returns
    /// the number of tokens dropped.
    pub fn finish(mut self, emit: &mut impl FnMut(Block)) -> usize {
        let left = self.pending.len();
        if left > 0 && self.opts.remainder == Remainder::Pad {
            let n = self.opts.seq_len;
            let mut attention = vec![1u8; left];
            attention.resize(n, 0);
            self.pending.resize(n, self.opts.pad);
            let word_starts = match self.starts.take() {
                Some(mut s) => {
                    s.resize(n, true);
                    s
                }
                None => Vec::new(),
            };
            emit(Block {
                ids: std::mem::take(&mut self.pending),
                attention,
                word_starts,
            });
            return 0;
        }
        left
    }
}

/// `starts` stretched (or cut) to `len` entries; missing entries count as word starts.
fn padded(starts: &[bool], len: usize) -> impl Iterator<Item = bool> + '_ {
    starts
        .iter()
        .copied()
        .chain(std::iter::repeat(true))
        .take(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(mode: Mode, remainder: Remainder) -> PackOptions {
        PackOptions {
            seq_len: 4,
            mode,
            remainder,
            bos: 0,
            eos: 2,
            pad: 1,
        }
    }

    fn run(o: PackOptions, records: &[&[u32]]) -> (Vec<Block>, usize) {
        let mut p = Packer::new(o);
        let mut out = Vec::new();
        for r in records {
            p.push(r, &[], &mut |b| out.push(b));
        }
        let dropped = p.finish(&mut |b| out.push(b));
        (out, dropped)
    }

    #[test]
    fn concat_is_group_texts() {
        // <s> 10 11 </s> | <s> 12 </s> | <s> 13 14 15 </s> | <s> 16 </s>: 15 tokens.
        let records: &[&[u32]] = &[&[10, 11], &[12], &[13, 14, 15], &[16]];
        let (blocks, dropped) = run(opts(Mode::Concat, Remainder::Drop), records);
        let ids: Vec<Vec<u32>> = blocks.iter().map(|b| b.ids.clone()).collect();
        assert_eq!(
            ids,
            [vec![0, 10, 11, 2], vec![0, 12, 2, 0], vec![13, 14, 15, 2]]
        );
        assert_eq!(dropped, 3);
        let (blocks, dropped) = run(opts(Mode::Concat, Remainder::Pad), records);
        assert_eq!(dropped, 0);
        assert_eq!(
            blocks[3],
            Block {
                ids: vec![0, 16, 2, 1],
                attention: vec![1, 1, 1, 0],
                word_starts: vec![]
            }
        );
    }

    #[test]
    fn record_mode_truncates_and_pads() {
        let (blocks, _) = run(
            opts(Mode::Record, Remainder::Drop),
            &[&[10], &[10, 11, 12, 13]],
        );
        assert_eq!(
            blocks[0],
            Block {
                ids: vec![0, 10, 2, 1],
                attention: vec![1, 1, 1, 0],
                word_starts: vec![]
            }
        );
        assert_eq!(
            blocks[1],
            Block {
                ids: vec![0, 10, 11, 2],
                attention: vec![1, 1, 1, 1],
                word_starts: vec![]
            }
        );
    }

    #[test]
    fn word_starts_follow_their_tokens_across_blocks() {
        let mut p = Packer::with_words(opts(Mode::Concat, Remainder::Pad), true);
        let mut out = Vec::new();
        p.push(&[10, 11, 12], &[true, false, true], &mut |b| out.push(b));
        p.finish(&mut |b| out.push(b));
        // <s> 10 11 12 </s> → [<s> 10 11 12] [</s> pad pad pad]
        assert_eq!(out[0].word_starts, [true, true, false, true]);
        assert_eq!(out[1].ids, [2, 1, 1, 1]);
        assert_eq!(out[1].word_starts.len(), 4);
    }
}
