//! The one `.npy` writer of the project (shards, embeddings, token ids): rows are appended as
//! they come and the shape is written into the header at the end; and the header reader that
//! `shards verify`/`inspect` use.
//!
//! Hand-written because the number of rows is unknown until a file closes: the header is
//! reserved at a fixed size (a multiple of 64 bytes, as the format asks) and rewritten in
//! place, so an array never has to be held in memory (ndarray-npy writes whole arrays only).
//! The header text is what `numpy.save` writes. The file appears under its final name only
//! when complete.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// Element type of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    Uint16,
    Uint32,
    Int32,
    Int64,
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
            Dtype::Uint32 => "<u4",
            Dtype::Int32 => "<i4",
            Dtype::Int64 => "<i8",
            Dtype::Float32 => "<f4",
        }
    }

    pub fn from_descr(d: &str) -> Option<Dtype> {
        [
            Dtype::Uint8,
            Dtype::Uint16,
            Dtype::Uint32,
            Dtype::Int32,
            Dtype::Int64,
            Dtype::Float32,
        ]
        .into_iter()
        .find(|t| t.descr() == d)
    }

    pub fn size(self) -> usize {
        match self {
            Dtype::Uint8 => 1,
            Dtype::Uint16 => 2,
            Dtype::Uint32 | Dtype::Int32 | Dtype::Float32 => 4,
            Dtype::Int64 => 8,
        }
    }
}

/// Little-endian bytes of `values` in `dtype` (signed values travel as their two's-complement
/// `u32`, so labels of -100 round-trip through `Int32`; `Float32` values as their bit
/// patterns; `Int64` sign-extends).
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
        Dtype::Uint32 | Dtype::Float32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::Int64 => values
            .iter()
            .flat_map(|v| (*v as i32 as i64).to_le_bytes())
            .collect(),
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
        Dtype::Uint32 => bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
            .collect(),
        Dtype::Int64 => bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    }
}

/// What an `.npy` header says: dtype descriptor, shape, and where the data starts.
pub fn read_header(bytes: &[u8]) -> Result<(String, Vec<usize>, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not an .npy file (bad magic)".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes
        .get(start..start + len)
        .ok_or("truncated .npy header")?;
    let header = String::from_utf8_lossy(header);
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|r| r.split('\'').nth(1))
        .ok_or("no descr in header")?
        .to_string();
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|r| r.split('(').nth(1))
        .and_then(|r| r.split(')').next())
        .ok_or("no shape in header")?;
    let dims = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape '{shape}'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((descr, dims, start + len))
}

/// An `.npy` header checked against its file: the data its shape and dtype promise is
/// exactly what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedHeader {
    pub descr: String,
    pub shape: Vec<usize>,
    /// Where the data starts.
    pub start: u64,
    /// Bytes per element, from the descriptor (`<f4`: 4).
    pub item_size: u64,
}

impl CheckedHeader {
    /// `[rows, cols]`, or an error naming the shape.
    pub fn two_d(&self) -> Result<(usize, usize), String> {
        match self.shape[..] {
            [rows, cols] => Ok((rows, cols)),
            _ => Err(format!("not 2-D: shape {:?}", self.shape)),
        }
    }
}

/// Reads the header of the npy file `file` (at `path`) and checks it against the file's size
/// before anything is allocated by what it says: a header claiming `(2^31, 8)` over no data
/// is an error naming the file, not a 64 GiB allocation.
pub fn read_checked_header(file: &File, path: &Path) -> Result<CheckedHeader, Error> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    // Headers are a few hundred bytes; numpy writes at most 64 KiB of them.
    let mut head = vec![0u8; len.min(65_536 + 12) as usize];
    let mut got = 0;
    while got < head.len() {
        match file.read_at(&mut head[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    let (descr, shape, start) = read_header(&head[..got]).map_err(|m| Error::format(path, m))?;
    let item_size = descr
        .trim_start_matches(['<', '>', '|', '='])
        .get(1..)
        .and_then(|d| d.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::format(path, format!("unsupported dtype {descr:?}")))?;
    let want = shape
        .iter()
        .try_fold(item_size, |acc, d| acc.checked_mul(*d as u64))
        .and_then(|n| n.checked_add(start as u64));
    if want != Some(len) {
        return Err(Error::format(
            path,
            format!(
                "{len} bytes, but its header's shape {shape:?} of {descr} needs {} (truncated \
                 or damaged)",
                want.map_or("more than 2^64".into(), |w| w.to_string())
            ),
        ));
    }
    Ok(CheckedHeader {
        descr,
        shape,
        start: start as u64,
        item_size,
    })
}

pub const HEADER_LEN: usize = 128;

fn header(dtype: Dtype, rows: usize, cols: Option<usize>) -> Vec<u8> {
    let shape = match cols {
        Some(cols) => format!("({rows}, {cols})"),
        None => format!("({rows},)"),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
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

/// An array file being written row by row: 2-D (`[rows, cols]`) or 1-D (values appended).
pub struct NpyWriter {
    tmp: PathBuf,
    path: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: Dtype,
    /// `None` for a 1-D array.
    cols: Option<usize>,
    /// Rows of a 2-D array; values of a 1-D one.
    rows: usize,
}

impl NpyWriter {
    /// A 2-D array of `cols` columns.
    pub fn create(path: &Path, dtype: Dtype, cols: usize) -> Result<NpyWriter, Error> {
        Self::open(path, dtype, Some(cols))
    }

    /// A 1-D array.
    pub fn create_1d(path: &Path, dtype: Dtype) -> Result<NpyWriter, Error> {
        Self::open(path, dtype, None)
    }

    fn open(path: &Path, dtype: Dtype, cols: Option<usize>) -> Result<NpyWriter, Error> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = crate::atomic::temp_name(path);
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

    fn write(&mut self, bytes: &[u8], values: usize) -> Result<(), Error> {
        match self.cols {
            Some(cols) => {
                assert_eq!(values, cols, "a row of the array's width");
                self.rows += 1;
            }
            None => self.rows += values,
        }
        let out = self.out.as_mut().expect("open until finished");
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Appends one row of `cols` values, or values of a 1-D array (each must fit the dtype;
    /// the caller checks ids against the vocabulary).
    pub fn push_row(&mut self, row: &[u32]) -> Result<(), Error> {
        self.write(&encode(self.dtype, row), row.len())
    }

    /// Appends `f32` values (a `Float32` file).
    pub fn push_row_f32(&mut self, row: &[f32]) -> Result<(), Error> {
        assert_eq!(self.dtype, Dtype::Float32);
        let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(&bytes, row.len())
    }

    /// Appends `i64` values (an `Int64` file).
    pub fn push_i64(&mut self, values: &[i64]) -> Result<(), Error> {
        assert_eq!(self.dtype, Dtype::Int64);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write(&bytes, values.len())
    }

    /// Rows of a 2-D array, values of a 1-D one.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes written after the header.
    pub fn data_bytes(&self) -> u64 {
        (self.rows * self.cols.unwrap_or(1) * self.dtype.size()) as u64
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
        let h = header(Dtype::Uint16, 12345, Some(512));
        assert_eq!(h.len() % 64, 0);
        assert!(h.starts_with(b"\x93NUMPY\x01\x00"));
        let text = String::from_utf8_lossy(&h[10..]);
        assert!(text.contains("'shape': (12345, 512)"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn one_dimensional_arrays_as_numpy_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("offsets.npy");
        let mut w = NpyWriter::create_1d(&p, Dtype::Int64).unwrap();
        w.push_i64(&[0, 3]).unwrap();
        w.push_i64(&[1 << 40]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let (descr, shape, start) = read_header(&bytes).unwrap();
        assert_eq!((descr.as_str(), shape, start), ("<i8", vec![3], HEADER_LEN));
        assert!(String::from_utf8_lossy(&bytes[..HEADER_LEN])
            .contains("'fortran_order': False, 'shape': (3,), }"));
        assert_eq!(decode(Dtype::Int64, &bytes[start..]), [0, 3, 1 << 40]);
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
