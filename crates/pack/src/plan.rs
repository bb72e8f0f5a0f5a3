//! Which records go where, in which order: the shuffle, the segments and the task split.
//!
//! The scheme, exactly:
//! 1. **File order.** Input files are taken in discovery order (sorted paths); with shuffling
//!    on, they are reordered by `xxh3_64(seed ‖ relative path)`, a seeded permutation that
//!    does not depend on where the corpus lives.
//! 2. **Segments.** Each file is cut into segments of `segment_lines` consecutive lines
//!    (segment `k` holds lines `k·S+1 ..= (k+1)·S`). A segment is the unit of everything
//!    below, and it is packed on its own: concat blocks never span two segments, and each
//!    segment's last partial block is dropped or padded (like `run_mlm.py`, which does this
//!    per 1,000 records, but with far larger segments).
//! 3. **Shuffle.** Within a segment, each partition's records are permuted with Fisher–Yates
//!    driven by ChaCha8 seeded from `xxh3_64(seed, partition, relative path, k)`. Memory is
//!    bounded by one segment.
//! 4. **Tasks.** With `N` tasks, segment `k` of the file at position `f` of the sorted file
//!    list belongs to task `(f + k) mod N`. Each task reads every file but parses and encodes
//!    only its own segments.
//!
//! Because a segment's rows depend only on the segment, the seed and the settings, the rows
//! are the same whatever the thread count, the task split or an interruption; only the order
//! of segments in the output differs between one task and several (task-major after merge).

use xxhash_rust::xxh3::xxh3_64_with_seed;

pub use pytorrent_io::Tasks;

/// Whether segment `k` of the file at sorted position `file_pos` is this task's.
pub fn owns(tasks: Tasks, file_pos: usize, segment: u64) -> bool {
    tasks.owns_unit(file_pos as u64 + segment)
}

/// The processing order of `rels` (relative paths in sorted order): indices into it.
pub fn file_order(rels: &[String], seed: u64, shuffle: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rels.len()).collect();
    if shuffle {
        order.sort_by_key(|&i| (xxh3_64_with_seed(rels[i].as_bytes(), seed), i));
    }
    order
}

/// The segment a line belongs to (`line_no` counts from 1).
pub fn segment_of(line_no: u64, segment_lines: u64) -> u64 {
    line_no
        .saturating_sub(1)
        .checked_div(segment_lines)
        .unwrap_or(0)
}

/// A 64-bit seed for something identified by `parts`, derived from the run seed.
pub fn derive(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut buf = Vec::with_capacity(64);
    for p in parts {
        buf.extend_from_slice(&(p.len() as u64).to_le_bytes());
        buf.extend_from_slice(p);
    }
    xxh3_64_with_seed(&buf, seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_cover_every_segment_once() {
        for count in 1..5 {
            for f in 0..4 {
                for k in 0..10 {
                    let owners = (0..count)
                        .filter(|&index| owns(Tasks { count, index }, f, k))
                        .count();
                    assert_eq!(owners, 1);
                }
            }
        }
    }

    #[test]
    fn file_order_is_a_seeded_permutation() {
        let rels: Vec<String> = (0..20).map(|i| format!("train/chk_{i}.jsonl.gz")).collect();
        let a = file_order(&rels, 1, true);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_eq!(a, file_order(&rels, 1, true));
        assert_ne!(a, file_order(&rels, 2, true));
        assert_eq!(file_order(&rels, 1, false), (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn segments_count_lines_from_one() {
        assert_eq!(segment_of(1, 100), 0);
        assert_eq!(segment_of(100, 100), 0);
        assert_eq!(segment_of(101, 100), 1);
        assert_eq!(segment_of(5_000, 0), 0);
    }
}
