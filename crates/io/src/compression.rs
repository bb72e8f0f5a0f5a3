//! Compression by magic bytes: gzip (including multi-member streams, as `cat a.gz b.gz`
//! produces) and zstd. Readers check what the extension promises against what the bytes
//! are; writers are atomic (see [`crate::AtomicFile`]) and deterministic (gzip header with
//! mtime 0 and no name, single-threaded zstd).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{AtomicFile, Error, Result};

crate::word_enum! {
    "compression";
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub enum Compression {
        None = "none" | "plain",
        Gzip = "gzip" | "gz",
        Zstd = "zstd" | "zst",
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// What the file name promises (`.gz`, `.gzip`, `.zst`, `.zstd`).
    pub fn from_extension(path: &Path) -> Compression {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
        {
            Some(e) if e == "gz" || e == "gzip" => Compression::Gzip,
            Some(e) if e == "zst" || e == "zstd" => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// What the first bytes say.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The file-name suffix for this compression (empty for none).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

/// Counts raw (compressed) bytes read, for progress reporting.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened input: decompressed bytes plus what was detected.
pub struct Input {
    pub reader: Box<dyn BufRead + Send>,
    pub compression: Compression,
}

fn describe_head(head: &[u8]) -> String {
    if head.is_empty() {
        return "the file is empty".into();
    }
    let hex: Vec<String> = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let guess = if head.starts_with(b"BZh") {
        " (bzip2?)"
    } else if head.starts_with(b"PK") {
        " (zip?)"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        " (xz?)"
    } else if head.first().is_some_and(|b| *b == b'{' || *b == b'[') {
        " (plain JSON?)"
    } else {
        ""
    };
    format!("it starts with bytes {}{guess}", hex.join(" "))
}

/// Opens `path` (or standard input for `-`) and decompresses by magic bytes.
///
/// `raw_bytes`, when given, is advanced by the number of bytes read from the file itself.
pub fn open_input(path: &Path, raw_bytes: Option<Arc<AtomicU64>>) -> Result<Input> {
    let count = raw_bytes.unwrap_or_default();
    let raw: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(Counting {
            inner: io::stdin(),
            count,
        })
    } else {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        Box::new(Counting { inner: f, count })
    };
    let mut buffered = BufReader::with_capacity(1 << 16, raw);
    let head = buffered
        .fill_buf()
        .map_err(|e| Error::io(path, e))?
        .to_vec();
    let sniffed = Compression::sniff(&head);
    let promised = Compression::from_extension(path);
    if promised != Compression::None && sniffed != promised {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: format!("not a {} stream: {}", promised.name(), describe_head(&head)),
        });
    }
    let reader: Box<dyn BufRead + Send> = match sniffed {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            GzipMembers::new(buffered),
        )),
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::with_buffer(buffered)
                .map_err(|e| Error::io(path, e))?;
            Box::new(BufReader::with_capacity(1 << 16, d))
        }
    };
    Ok(Input {
        reader,
        compression: sniffed,
    })
}

/// Gzip members one after another, as `gzip -d` and Python's `gzip` read them: NUL bytes
/// between or after members (block padding of tapes and some writers) are skipped rather
/// than taken for a corrupt member, which would lose every line after them.
pub struct GzipMembers<R: BufRead> {
    current: Option<flate2::bufread::GzDecoder<R>>,
}

impl<R: BufRead> GzipMembers<R> {
    pub fn new(inner: R) -> GzipMembers<R> {
        GzipMembers {
            current: Some(flate2::bufread::GzDecoder::new(inner)),
        }
    }
}

impl<R: BufRead> Read for GzipMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(member) = self.current.as_mut() else {
                return Ok(0);
            };
            let n = member.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // The member ended: its reader stands right after the trailer.
            let mut inner = self.current.take().expect("a member").into_inner();
            loop {
                let avail = inner.fill_buf()?;
                if avail.is_empty() {
                    return Ok(0);
                }
                let zeros = avail.iter().take_while(|b| **b == 0).count();
                if zeros == 0 {
                    break;
                }
                inner.consume(zeros);
            }
            self.current = Some(flate2::bufread::GzDecoder::new(inner));
        }
    }
}

enum Sink {
    Plain(io::BufWriter<AtomicFile>),
    Gzip(flate2::write::GzEncoder<io::BufWriter<AtomicFile>>),
    Zstd(zstd::stream::write::Encoder<'static, io::BufWriter<AtomicFile>>),
}

/// An atomic, optionally compressed output file. Nothing appears under the final name until
/// [`CompressedWriter::finish`] succeeds.
pub struct CompressedWriter {
    sink: Sink,
    path: PathBuf,
    written: u64,
}

impl CompressedWriter {
    pub fn create(path: impl AsRef<Path>, compression: Compression) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = io::BufWriter::with_capacity(1 << 16, AtomicFile::create(&path)?);
        let sink = match compression {
            Compression::None => Sink::Plain(file),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::new(6),
            )),
            Compression::Zstd => Sink::Zstd(
                zstd::stream::write::Encoder::new(file, 3).map_err(|e| Error::io(&path, e))?,
            ),
        };
        Ok(CompressedWriter {
            sink,
            path,
            written: 0,
        })
    }

    /// Uncompressed bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Completes the stream and moves the file to its final name.
    pub fn finish(self) -> Result<PathBuf> {
        let path = self.path;
        let buffered = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| Error::io(&path, e))?,
            Sink::Zstd(w) => w.finish().map_err(|e| Error::io(&path, e))?,
        };
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.commit()
    }
}

impl Write for CompressedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Plain(w) => w.write(buf)?,
            Sink::Gzip(w) => w.write(buf)?,
            Sink::Zstd(w) => w.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
            Sink::Zstd(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> Result<Vec<u8>> {
        let mut input = open_input(path, None)?;
        let mut out = Vec::new();
        input
            .reader
            .read_to_end(&mut out)
            .map_err(|e| Error::io(path, e))?;
        Ok(out)
    }

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn nul_padding_between_and_after_gzip_members_is_read_through() {
        // As Python's gzip reads it: members, NUL padding, members, NUL padding at the end.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("padded.jsonl.gz");
        let mut bytes = gz("{\"a\": 1}\n{\"a\": 2}\n");
        bytes.extend(std::iter::repeat_n(0u8, 700));
        bytes.extend(gz("{\"a\": 3}\n"));
        bytes.extend(gz("{\"a\": 4}\n"));
        bytes.extend(std::iter::repeat_n(0u8, 512));
        std::fs::write(&p, &bytes).unwrap();
        let text = String::from_utf8(read_all(&p).unwrap()).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        // Garbage that is not padding is still an error.
        let mut bad = gz("{\"a\": 1}\n");
        bad.extend(b"\x00\x00junk that is not gzip");
        std::fs::write(&p, &bad).unwrap();
        assert!(read_all(&p).is_err());
    }

    #[test]
    fn round_trip_every_compression() {
        let dir = tempfile::tempdir().unwrap();
        for (c, name) in [
            (Compression::None, "a.jsonl"),
            (Compression::Gzip, "a.jsonl.gz"),
            (Compression::Zstd, "a.jsonl.zst"),
        ] {
            let p = dir.path().join(name);
            let mut w = CompressedWriter::create(&p, c).unwrap();
            w.write_all(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
            assert_eq!(w.written(), 16);
            w.finish().unwrap();
            let input = open_input(&p, None).unwrap();
            assert_eq!(input.compression, c);
            assert_eq!(read_all(&p).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        }
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for part in [&b"one\n"[..], b"two\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            bytes.extend(e.finish().unwrap());
        }
        let p = dir.path().join("m.gz");
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read_all(&p).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn mislabelled_file_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.jsonl.gz");
        std::fs::write(&p, b"BZh91AY&SY").unwrap();
        let err = open_input(&p, None).err().unwrap().to_string();
        assert!(err.contains("not a gzip stream"), "{err}");
        assert!(err.contains("bzip2"), "{err}");
        assert!(err.contains("x.jsonl.gz"), "{err}");
    }

    #[test]
    fn gzip_without_extension_is_still_decompressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"hi\n").unwrap();
        let p = dir.path().join("noext");
        std::fs::write(&p, e.finish().unwrap()).unwrap();
        assert_eq!(read_all(&p).unwrap(), b"hi\n");
    }

    #[test]
    fn truncated_streams_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let payload: Vec<u8> = (0..20000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            let p = dir.path().join(format!("t.jsonl{}", c.suffix()));
            let mut w = CompressedWriter::create(&p, c).unwrap();
            w.write_all(&payload).unwrap();
            w.finish().unwrap();
            let full = std::fs::read(&p).unwrap();
            std::fs::write(&p, &full[..full.len() / 2]).unwrap();
            let mut input = open_input(&p, None).unwrap();
            let mut out = Vec::new();
            let r = input.reader.read_to_end(&mut out);
            assert!(
                r.is_err(),
                "{c:?}: truncated stream must fail, read {} bytes",
                out.len()
            );
        }
    }
}
