//! From per-record token ids to blocks of exactly `seq_len` tokens.

/// How records become rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Records (each `<s> … </s>`) concatenated in order and cut into blocks of `seq_len`.
    Concat,
    /// One record per row: `<s> … </s>` truncated to `seq_len`, padded with `<pad>`.
    Record,
}

/// What happens to the tokens left after the last full block (concat mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remainder {
    Drop,
    Pad,
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

/// One row: ids, and the attention mask (1 for real tokens) when padding is involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub ids: Vec<u32>,
    pub attention: Vec<u8>,
}

/// A state machine over a stream of records.
pub struct Packer {
    opts: PackOptions,
    pending: Vec<u32>,
}

impl Packer {
    pub fn new(opts: PackOptions) -> Self {
        assert!(opts.seq_len >= 2, "a block holds at least <s> and </s>");
        Packer {
            opts,
            pending: Vec::new(),
        }
    }

    /// Adds one record's ids (without special tokens); emits the rows that are complete.
    pub fn push(&mut self, ids: &[u32], emit: &mut impl FnMut(Block)) {
        let n = self.opts.seq_len;
        match self.opts.mode {
            Mode::Concat => {
                self.pending.push(self.opts.bos);
                self.pending.extend_from_slice(ids);
                self.pending.push(self.opts.eos);
                let full = self.pending.len() / n * n;
                for chunk in self.pending[..full].chunks_exact(n) {
                    emit(Block {
                        ids: chunk.to_vec(),
                        attention: vec![1; n],
                    });
                }
                self.pending.drain(..full);
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
                emit(Block {
                    ids: row,
                    attention,
                });
            }
        }
    }

    /// Emits the last partial block (concat mode, `Remainder::Pad`) or drops it.
    pub fn finish(mut self, emit: &mut impl FnMut(Block)) -> usize {
        let left = self.pending.len();
        if left > 0 && self.opts.remainder == Remainder::Pad {
            let n = self.opts.seq_len;
            let mut attention = vec![1u8; left];
            attention.resize(n, 0);
            self.pending.resize(n, self.opts.pad);
            emit(Block {
                ids: std::mem::take(&mut self.pending),
                attention,
            });
            return 0;
        }
        left
    }
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
            p.push(r, &mut |b| out.push(b));
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
                attention: vec![1, 1, 1, 0]
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
                attention: vec![1, 1, 1, 0]
            }
        );
        assert_eq!(
            blocks[1],
            Block {
                ids: vec![0, 10, 11, 2],
                attention: vec![1, 1, 1, 1]
            }
        );
    }
}
