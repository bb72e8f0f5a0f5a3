//! The Megatron-LM / NeMo indexed dataset: `<prefix>.bin` holds the ids of every sequence back
//! to back, `<prefix>.idx` says where each one starts.
//!
//! `.idx` layout (all little-endian): the magic `MMIDIDX\0\0`, version `u64 = 1`, a dtype
//! code (`u8`: 1 uint8, 4 int32, 8 uint16, …), the sequence count (`u64`), the document-index
//! count (`u64`), then the sequence lengths (`i32` each), the byte offsets of the sequences in
//! `.bin` (`i64` each) and the document index (`i64` each: 0, then the sequence index where
//! each document ends).
//!
//! Hand-written: no Rust crate writes this format, and it is small. The `.bin` is streamed;
//! only the lengths (4 bytes a sequence) stay in memory until the shard closes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use pytorrent_io::Error;

use pytorrent_io::npy::Dtype;

pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// Megatron's code for a dtype (`None` for uint32, which it has no code for).
pub fn dtype_code(d: Dtype) -> Option<u8> {
    match d {
        Dtype::Uint8 => Some(1),
        Dtype::Int32 => Some(4),
        Dtype::Int64 => Some(5),
        Dtype::Float32 => Some(7),
        Dtype::Uint16 => Some(8),
        Dtype::Uint32 => None,
    }
}

/// One `.bin`/`.idx` pair being written, one sequence per row.
pub struct MegatronWriter {
    bin_tmp: PathBuf,
    prefix: PathBuf,
    out: Option<BufWriter<File>>,
    dtype: Dtype,
    code: u8,
    lengths: Vec<i32>,
    bytes: u64,
}

impl MegatronWriter {
    /// `prefix` is the path without `.bin`/`.idx`.
    pub fn create(prefix: &Path, dtype: Dtype) -> Result<MegatronWriter, Error> {
        let code = dtype_code(dtype)
            .ok_or_else(|| Error::Usage(format!("Megatron files have no code for {dtype:?}")))?;
        let dir = prefix.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bin = prefix.with_extension("bin");
        let bin_tmp = pytorrent_io::atomic::temp_name(&bin);
        let file = File::create(&bin_tmp).map_err(|e| Error::io(&bin_tmp, e))?;
        Ok(MegatronWriter {
            bin_tmp,
            prefix: prefix.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            dtype,
            code,
            lengths: Vec::new(),
            bytes: 0,
        })
    }

    pub fn push(&mut self, ids: &[u32]) -> Result<(), Error> {
        let out = self.out.as_mut().expect("open until finished");
        let bytes = pytorrent_io::npy::encode(self.dtype, ids);
        out.write_all(&bytes)
            .map_err(|e| Error::io(&self.bin_tmp, e))?;
        self.bytes += bytes.len() as u64;
        self.lengths.push(ids.len() as i32);
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Closes the `.bin`, writes the `.idx` (each sequence its own document) and renames both;
    /// returns their final paths.
    pub fn finish(mut self) -> Result<(PathBuf, PathBuf), Error> {
        let out = self.out.take().expect("finished once");
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.bin_tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.bin_tmp, e))?;
        let bin = self.prefix.with_extension("bin");
        std::fs::rename(&self.bin_tmp, &bin).map_err(|e| Error::io(&bin, e))?;
        let idx = self.prefix.with_extension("idx");
        let docs: Vec<i64> = (0..=self.lengths.len() as i64).collect();
        pytorrent_io::atomic::write_atomic(
            &idx,
            &index_bytes(self.dtype, self.code, &self.lengths, &docs),
        )?;
        Ok((bin, idx))
    }
}

impl Drop for MegatronWriter {
    fn drop(&mut self) {
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.bin_tmp);
        }
    }
}

/// The `.idx` file for sequences of `lengths` stored back to back (`code`: the dtype's).
fn index_bytes(dtype: Dtype, code: u8, lengths: &[i32], documents: &[i64]) -> Vec<u8> {
    let mut b = Vec::with_capacity(34 + lengths.len() * 12 + documents.len() * 8);
    b.extend_from_slice(MAGIC);
    b.extend_from_slice(&1u64.to_le_bytes());
    b.push(code);
    b.extend_from_slice(&(lengths.len() as u64).to_le_bytes());
    b.extend_from_slice(&(documents.len() as u64).to_le_bytes());
    for l in lengths {
        b.extend_from_slice(&l.to_le_bytes());
    }
    let mut offset = 0i64;
    for l in lengths {
        b.extend_from_slice(&offset.to_le_bytes());
        offset += *l as i64 * dtype.size() as i64;
    }
    for d in documents {
        b.extend_from_slice(&d.to_le_bytes());
    }
    b
}

/// What an `.idx` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub dtype_code: u8,
    pub lengths: Vec<i32>,
    pub pointers: Vec<i64>,
    pub documents: Vec<i64>,
}

impl Index {
    pub fn parse(b: &[u8]) -> Result<Index, String> {
        if b.len() < 34 || &b[..9] != MAGIC {
            return Err("not a Megatron index (bad magic)".into());
        }
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let version = u64_at(9);
        if version != 1 {
            return Err(format!("unsupported index version {version}"));
        }
        let code = b[17];
        let (n, docs) = (u64_at(18) as usize, u64_at(26) as usize);
        let need = 34usize
            .checked_add(n.checked_mul(12).ok_or("sequence count overflows")?)
            .and_then(|x| x.checked_add(docs.checked_mul(8)?))
            .ok_or("document count overflows")?;
        if b.len() != need {
            return Err(format!(
                "index is {} bytes, {n} sequences and {docs} document entries need {need}",
                b.len()
            ));
        }
        let mut o = 34;
        let lengths = (0..n)
            .map(|i| i32::from_le_bytes(b[o + 4 * i..o + 4 * i + 4].try_into().expect("4")))
            .collect();
        o += 4 * n;
        let pointers = (0..n)
            .map(|i| i64::from_le_bytes(b[o + 8 * i..o + 8 * i + 8].try_into().expect("8")))
            .collect();
        o += 8 * n;
        let documents = (0..docs)
            .map(|i| i64::from_le_bytes(b[o + 8 * i..o + 8 * i + 8].try_into().expect("8")))
            .collect();
        Ok(Index {
            dtype_code: code,
            lengths,
            pointers,
            documents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trips_and_pointers_are_byte_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("shard-00000");
        let mut w = MegatronWriter::create(&prefix, Dtype::Uint16).unwrap();
        w.push(&[0, 5, 2]).unwrap();
        w.push(&[0, 7, 8, 9, 2]).unwrap();
        let (bin, idx) = w.finish().unwrap();
        assert_eq!(std::fs::read(&bin).unwrap().len(), 16);
        let i = Index::parse(&std::fs::read(&idx).unwrap()).unwrap();
        assert_eq!(i.dtype_code, 8);
        assert_eq!(i.lengths, [3, 5]);
        assert_eq!(i.pointers, [0, 6]);
        assert_eq!(i.documents, [0, 1, 2]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
