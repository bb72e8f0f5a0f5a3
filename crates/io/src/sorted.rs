//! Sorted files of fixed-width rows (`[u64; N]`, little-endian, no header), written by an
//! external sort in bounded memory and read back in order, from a key on, or merged.
//!
//! Hand-written: the rows are a few machine words compared as tuples, and what the staged
//! de-duplication needs from them (sort in a memory budget, seek to a key range by binary
//! search on the file, k-way merge of many sorted files, drop repeats) is a hundred lines;
//! the general external-sort crates serialise arbitrary values and do none of the seeking.

use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{AtomicFile, Error, Result};

/// A row of `N` words; rows compare as tuples.
pub type Row<const N: usize> = [u64; N];

const fn row_bytes<const N: usize>() -> usize {
    8 * N
}

fn encode<const N: usize>(row: &Row<N>, out: &mut impl Write) -> std::io::Result<()> {
    for w in row {
        out.write_all(&w.to_le_bytes())?;
    }
    Ok(())
}

fn decode<const N: usize>(bytes: &[u8]) -> Row<N> {
    std::array::from_fn(|i| u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().unwrap()))
}

/// Rows pushed in any order, written sorted to one file by [`Sorter::finish`]. At most
/// `budget_rows` are held: more are sorted into runs on disk (hidden temporary files beside
/// the output) and merged at the end.
pub struct Sorter<const N: usize> {
    dest: PathBuf,
    budget_rows: usize,
    unique: bool,
    held: Vec<Row<N>>,
    runs: Vec<tempfile::TempPath>,
}

impl<const N: usize> Sorter<N> {
    /// A sorter for `dest` holding at most `budget_bytes` of rows in memory; `unique` drops
    /// repeated rows.
    pub fn new(dest: impl Into<PathBuf>, budget_bytes: usize, unique: bool) -> Self {
        Sorter {
            dest: dest.into(),
            budget_rows: (budget_bytes / row_bytes::<N>()).max(1024),
            unique,
            held: Vec::new(),
            runs: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row<N>) -> Result<()> {
        self.held.push(row);
        if self.held.len() >= self.budget_rows {
            self.spill()?;
        }
        Ok(())
    }

    fn sort_held(&mut self) {
        self.held.sort_unstable();
        if self.unique {
            self.held.dedup();
        }
    }

    fn spill(&mut self) -> Result<()> {
        self.sort_held();
        let dir = folder_of(&self.dest);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".sort-run.")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        let (file, path) = tmp.into_parts();
        let mut w = BufWriter::with_capacity(1 << 20, file);
        for row in self.held.drain(..) {
            encode(&row, &mut w).map_err(|e| Error::io(&path, e))?;
        }
        w.flush().map_err(|e| Error::io(&path, e))?;
        self.runs.push(path);
        Ok(())
    }

    /// Writes the sorted rows to the destination (atomically) and returns how many it holds.
    pub fn finish(mut self) -> Result<u64> {
        if !self.runs.is_empty() && !self.held.is_empty() {
            self.spill()?;
        }
        let mut out = BufWriter::with_capacity(1 << 20, AtomicFile::create(&self.dest)?);
        let dest = self.dest.clone();
        let unique = self.unique;
        let mut count = 0u64;
        let mut last: Option<Row<N>> = None;
        let mut put = |row: Row<N>, out: &mut BufWriter<AtomicFile>| -> Result<()> {
            if unique && last == Some(row) {
                return Ok(());
            }
            last = Some(row);
            count += 1;
            encode(&row, out).map_err(|e| Error::io(&dest, e))
        };
        if self.runs.is_empty() {
            self.sort_held();
            for row in std::mem::take(&mut self.held) {
                put(row, &mut out)?;
            }
        } else {
            let readers = self
                .runs
                .iter()
                .map(|p| SortedReader::<N>::open(p))
                .collect::<Result<Vec<_>>>()?;
            for row in merge(readers) {
                put(row?, &mut out)?;
            }
        }
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.dest, e.into_error()))?;
        file.commit()?;
        Ok(count)
    }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Rows of a sorted file, in order. Iterates `Result<Row<N>>`.
pub struct SortedReader<const N: usize> {
    path: PathBuf,
    file: BufReader<File>,
    left: u64,
    /// Stop before the first row at or above this one.
    end: Option<Row<N>>,
}

impl<const N: usize> SortedReader<N> {
    /// The whole file. Its length must be a whole number of rows.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let width = row_bytes::<N>() as u64;
        if len % width != 0 {
            return Err(Error::format(
                path,
                format!("{len} bytes is not a whole number of {width}-byte rows (cut short?)"),
            ));
        }
        Ok(SortedReader {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(1 << 18, file),
            left: len / width,
            end: None,
        })
    }

    /// The rows from `start` (inclusive) to `end` (exclusive; `None`: to the end), found by
    /// binary search on the file.
    pub fn range(path: &Path, start: Row<N>, end: Option<Row<N>>) -> Result<Self> {
        let mut r = Self::open(path)?;
        let width = row_bytes::<N>() as u64;
        let (mut lo, mut hi) = (0u64, r.left);
        let mut buf = vec![0u8; row_bytes::<N>()];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            r.file
                .seek(SeekFrom::Start(mid * width))
                .and_then(|_| r.file.read_exact(&mut buf))
                .map_err(|e| Error::io(path, e))?;
            if decode::<N>(&buf) < start {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        r.file
            .seek(SeekFrom::Start(lo * width))
            .map_err(|e| Error::io(path, e))?;
        r.left -= lo;
        r.end = end;
        Ok(r)
    }

    /// Rows left in the file (before any `end`).
    pub fn rows_left(&self) -> u64 {
        self.left
    }
}

impl<const N: usize> Iterator for SortedReader<N> {
    type Item = Result<Row<N>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let mut buf = [0u8; 64];
        let buf = &mut buf[..row_bytes::<N>()];
        if let Err(e) = self.file.read_exact(buf) {
            self.left = 0;
            return Some(Err(Error::io(&self.path, e)));
        }
        self.left -= 1;
        let row = decode::<N>(buf);
        if self.end.is_some_and(|end| row >= end) {
            self.left = 0;
            return None;
        }
        Some(Ok(row))
    }
}

/// The rows of several sorted sources in one order (ties: the earlier source first).
pub fn merge<const N: usize, I>(sources: Vec<I>) -> Merge<N, I>
where
    I: Iterator<Item = Result<Row<N>>>,
{
    Merge {
        sources,
        heap: BinaryHeap::new(),
        started: false,
        failed: None,
    }
}

pub struct Merge<const N: usize, I> {
    sources: Vec<I>,
    heap: BinaryHeap<std::cmp::Reverse<(Row<N>, usize)>>,
    started: bool,
    failed: Option<Error>,
}

impl<const N: usize, I: Iterator<Item = Result<Row<N>>>> Merge<N, I> {
    fn pull(&mut self, k: usize) {
        match self.sources[k].next() {
            Some(Ok(row)) => self.heap.push(std::cmp::Reverse((row, k))),
            Some(Err(e)) => self.failed = Some(e),
            None => {}
        }
    }
}

impl<const N: usize, I: Iterator<Item = Result<Row<N>>>> Iterator for Merge<N, I> {
    type Item = Result<Row<N>>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for k in 0..self.sources.len() {
                self.pull(k);
            }
        }
        if let Some(e) = self.failed.take() {
            self.heap.clear();
            return Some(Err(e));
        }
        let std::cmp::Reverse((row, k)) = self.heap.pop()?;
        self.pull(k);
        Some(Ok(row))
    }
}

/// Writes rows already in order (checked) to a file, atomically.
pub struct SortedWriter<const N: usize> {
    out: BufWriter<AtomicFile>,
    path: PathBuf,
    last: Option<Row<N>>,
    count: u64,
}

impl<const N: usize> SortedWriter<N> {
    pub fn create(path: &Path) -> Result<Self> {
        Ok(SortedWriter {
            out: BufWriter::with_capacity(1 << 20, AtomicFile::create(path)?),
            path: path.to_path_buf(),
            last: None,
            count: 0,
        })
    }

    pub fn push(&mut self, row: Row<N>) -> Result<()> {
        if self.last.is_some_and(|l| l > row) {
            return Err(Error::format(
                &self.path,
                "rows written out of order (a defect)",
            ));
        }
        self.last = Some(row);
        self.count += 1;
        encode(&row, &mut self.out).map_err(|e| Error::io(&self.path, e))
    }

    pub fn finish(self) -> Result<u64> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        file.commit()?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u64, seed: u64) -> Vec<Row<2>> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                [x % 1000, i]
            })
            .collect()
    }

    fn read(path: &Path) -> Vec<Row<2>> {
        SortedReader::<2>::open(path)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap()
    }

    #[test]
    fn spilled_runs_merge_to_the_sorted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let input = rows(10_000, 7);
        let dest = dir.path().join("out.bin");
        // A budget of 1,024 rows: ten runs on disk.
        let mut s = Sorter::<2>::new(&dest, 0, false);
        for r in &input {
            s.push(*r).unwrap();
        }
        assert_eq!(s.finish().unwrap(), 10_000);
        let mut want = input.clone();
        want.sort();
        assert_eq!(read(&dest), want);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "the runs are removed");
    }

    #[test]
    fn unique_drops_repeats_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("u.bin");
        let mut s = Sorter::<2>::new(&dest, 0, true);
        for i in 0..5000u64 {
            s.push([i % 700, 0]).unwrap();
        }
        assert_eq!(s.finish().unwrap(), 700);
        assert_eq!(read(&dest), (0..700).map(|i| [i, 0]).collect::<Vec<_>>());
    }

    #[test]
    fn a_range_starts_at_its_first_row_and_stops_before_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.bin");
        let mut s = Sorter::<2>::new(&dest, 1 << 20, false);
        for i in 0..1000u64 {
            s.push([i / 3, i]).unwrap();
        }
        s.finish().unwrap();
        let got: Vec<Row<2>> = SortedReader::<2>::range(&dest, [100, 0], Some([102, 0]))
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(got, (300..306).map(|i| [i / 3, i]).collect::<Vec<_>>());
        let tail = SortedReader::<2>::range(&dest, [400, 0], None).unwrap();
        assert_eq!(tail.count(), 0);
    }

    #[test]
    fn merge_interleaves_sorted_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        let mut readers = Vec::new();
        for k in 0..4 {
            let p = dir.path().join(format!("{k}.bin"));
            let mut part = rows(500, k + 1);
            part.sort();
            let mut w = SortedWriter::<2>::create(&p).unwrap();
            for r in &part {
                w.push(*r).unwrap();
            }
            w.finish().unwrap();
            all.extend(part);
            readers.push(SortedReader::<2>::open(&p).unwrap());
        }
        all.sort();
        let merged: Vec<_> = merge(readers).collect::<Result<_>>().unwrap();
        assert_eq!(merged, all);
    }

    #[test]
    fn a_file_cut_mid_row_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cut.bin");
        std::fs::write(&p, [0u8; 20]).unwrap();
        let e = SortedReader::<2>::open(&p).err().unwrap().to_string();
        assert!(e.contains("cut.bin") && e.contains("16-byte rows"), "{e}");
    }

    #[test]
    fn rows_out_of_order_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SortedWriter::<1>::create(&dir.path().join("o.bin")).unwrap();
        w.push([2]).unwrap();
        assert!(w.push([1]).is_err());
    }
}
