//! Streaming `.npy` writer: rows are appended as they come and the shape is written into the
//! header at the end.
//!
//! Hand-written because the number of rows is unknown until a shard closes: the header is
//! reserved at a fixed size (a multiple of 64 bytes, as the format asks) and rewritten in
//! place, so a shard never has to be held in memory. The file appears under its final name
//! only when complete.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pytorrent_io::Error;

/// Element type of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    Uint16,
    Int32,
    Float32,
}

impl Dtype {
    /// The smallest id type that holds every id below `vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Dtype {
        if vocab_size <= u16::MAX as usize + 1 {
            Dtype::Uint16
        } else {
            Dtype::Int32
        }
    }

    pub fn descr(self) -> &'static str {
        match self {
            Dtype::Uint8 => "|u1",
            Dtype::Uint16 => "<u2",
            Dtype::Int32 => "<i4",
            Dtype::Float32 => "<f4",
        }
    }

    pub fn from_descr(d: &str) -> Option<Dtype> {
        [Dtype::Uint8, Dtype::Uint16, Dtype::Int32, Dtype::Float32]
            .into_iter()
            .find(|t| t.descr() == d)
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Uint8 => 1,
            Dtype::Uint16 => 2,
            Dtype::Int32 | Dtype::Float32 => 4,
        }
    }
}

/// Little-endian bytes of `values` in `dtype` (signed values travel as their two's-complement
/// `u32`, so labels of -100 round-trip through `Int32`).
pub fn encode(dtype: Dtype, values: &[u32]) -> Vec<u8> {
    match dtype {
        Dtype::Uint8 => values.iter().map(|v| *v as u8).collect(),
        Dtype::Uint16 => values
            .iter()
            .flat_map(|v| (*v as u16).to_le_bytes())
            .collect(),
        Dtype::Int32 => values
            .iter()
            .flat_map(|v| (*v as i32).to_le_bytes())
            .collect(),
        // Values travel as their bit patterns.
        Dtype::Float32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// Values back from little-endian bytes (inverse of [`encode`], `Int32` sign-extended).
pub fn decode(dtype: Dtype, bytes: &[u8]) -> Vec<i64> {
    match dtype {
        Dtype::Uint8 => bytes.iter().map(|v| *v as i64).collect(),
        Dtype::Uint16 => bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
            .collect(),
        Dtype::Int32 | Dtype::Float32 => bytes
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
    }
}

pub const HEADER_LEN: usize = 128;

fn header(dtype: Dtype, rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({rows}, {cols}), }}",
        dtype.descr()
    );
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    let body_len = HEADER_LEN - 10;
    h.extend_from_slice(&(body_len as u16).to_le_bytes());
    let mut body = dict.into_bytes();
    assert!(body.len() < body_len, "shape fits the reserved header");
    body.resize(body_len - 1, b' ');
    body.push(b'\n');
    h.extend_from_slice(&body);
    h
}

/// A 2-D array file being written row by row.
pub struct NpyWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: Dtype,
    cols: usize,
    rows: usize,
}

impl NpyWriter {
    pub fn create(path: &Path, dtype: Dtype, cols: usize) -> Result<NpyWriter, Error> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header(dtype, 0, cols))
            .map_err(|e| Error::io(&tmp, e))?;
        Ok(NpyWriter {
            tmp,
            path: path.to_path_buf(),
            out: Some(out),
            dtype,
            cols,
            rows: 0,
        })
    }

    /// Appends one row of `cols` values (each must fit the dtype; the caller checks ids
    /// against the vocabulary).
    pub fn push_row(&mut self, row: &[u32]) -> Result<(), Error> {
        assert_eq!(row.len(), self.cols);
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(&encode(self.dtype, row))
            .map_err(|e| Error::io(&self.tmp, e))?;
        self.rows += 1;
        Ok(())
    }

    /// Appends one row of `f32` values (a `Float32` file).
    pub fn push_row_f32(&mut self, row: &[f32]) -> Result<(), Error> {
        assert_eq!(row.len(), self.cols);
        assert_eq!(self.dtype, Dtype::Float32);
        let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(&bytes).map_err(|e| Error::io(&self.tmp, e))?;
        self.rows += 1;
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes written after the header.
    pub fn data_bytes(&self) -> u64 {
        (self.rows * self.cols * self.dtype.size()) as u64
    }

    /// Writes the final shape, syncs, and renames to the final name.
    pub fn finish(mut self) -> Result<PathBuf, Error> {
        let tmp = self.tmp.clone();
        let io = |e| Error::io(&tmp, e);
        let mut out = self.out.take().expect("finished once");
        out.flush().map_err(io)?;
        let mut file = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&header(self.dtype, self.rows, self.cols))
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.path.clone())
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        // A shard not finished leaves no temporary file behind.
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_64_aligned_and_parseable() {
        let h = header(Dtype::Uint16, 12345, 512);
        assert_eq!(h.len() % 64, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (12345, 512)"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn rows_and_final_shape() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shard-00000.npy");
        let mut w = NpyWriter::create(&p, Dtype::Uint16, 3).unwrap();
        w.push_row(&[1, 2, 65535]).unwrap();
        w.push_row(&[4, 5, 6]).unwrap();
        assert!(!p.exists(), "final name only when finished");
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * 3 * 2);
        assert!(String::from_utf8_lossy(&bytes[..HEADER_LEN]).contains("(2, 3)"));
        assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + 6], &[1, 0, 2, 0, 255, 255]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
