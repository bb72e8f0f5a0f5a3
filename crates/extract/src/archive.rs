//! Reading package archives in memory, safely: sdists (`.tar.gz`, `.tgz`, `.tar.bz2`,
//! `.zip`), wheels (`.whl`) and plain folders. Nothing is unpacked to disk and nothing is
//! executed; only `.py` members are read.
//!
//! Hostile or broken archives are normal at index scale, so every member that is not read
//! gets a typed [`Refusal`], and whole-archive problems a typed [`ArchiveError`]: path
//! traversal and absolute paths, links, device files, members or totals over [`Limits`],
//! decompression bombs (expansion ratio), NUL bytes, truncated or corrupt data.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Component, Path};

/// Caps on what one archive may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest `.py` member read.
    pub max_member_bytes: u64,
    /// Most bytes decompressed from one archive (all members, read or skipped).
    pub max_total_bytes: u64,
    /// Largest decompressed / compressed ratio, checked once past `ratio_floor_bytes`.
    pub max_ratio: u64,
    pub ratio_floor_bytes: u64,
    pub max_members: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member_bytes: 8 << 20,
            max_total_bytes: 1 << 30,
            max_ratio: 200,
            ratio_floor_bytes: 16 << 20,
            max_members: 200_000,
        }
    }
}

/// Why a member was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    PathTraversal,
    AbsolutePath,
    Link,
    SpecialFile,
    TooLarge {
        bytes: u64,
    },
    NulBytes,
    /// A control character (`\r`, `\n`, …) in the member's name.
    ControlCharacters,
    /// A zip member whose local header names another file than the central directory.
    NameMismatch,
}

impl Refusal {
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::PathTraversal => "path_traversal",
            Refusal::AbsolutePath => "absolute_path",
            Refusal::Link => "link",
            Refusal::SpecialFile => "special_file",
            Refusal::TooLarge { .. } => "member_too_large",
            Refusal::NulBytes => "nul_bytes",
            Refusal::ControlCharacters => "control_characters",
            Refusal::NameMismatch => "name_mismatch",
        }
    }
}

/// Why a whole archive was given up (members read before it are kept by the caller).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: cannot read: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "{path}: unsupported archive (expected .tar.gz, .tgz, .tar.bz2, .zip, .whl or a folder)"
    )]
    Unsupported { path: String },
    #[error("{path}: corrupt or truncated archive: {message}")]
    Corrupt { path: String, message: String },
    #[error("{path}: decompressed size passed {limit} bytes (decompression bomb?)")]
    TotalTooLarge { path: String, limit: u64 },
    #[error("{path}: expands more than {ratio}x (decompression bomb?)")]
    Ratio { path: String, ratio: u64 },
    #[error("{path}: more than {limit} members")]
    TooManyMembers { path: String, limit: usize },
}

fn corrupt(path: &str, message: impl ToString) -> ArchiveError {
    ArchiveError::Corrupt {
        path: path.into(),
        message: message.to_string(),
    }
}

impl ArchiveError {
    pub fn name(&self) -> &'static str {
        match self {
            ArchiveError::Io { .. } => "io",
            ArchiveError::Unsupported { .. } => "unsupported",
            ArchiveError::Corrupt { .. } => "corrupt",
            ArchiveError::TotalTooLarge { .. } | ArchiveError::Ratio { .. } => "bomb",
            ArchiveError::TooManyMembers { .. } => "too_many_members",
        }
    }
}

/// A `.py` member: its path inside the archive (as stored) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What reading an archive gave.
#[derive(Debug, Default)]
pub struct Contents {
    pub members: Vec<Member>,
    pub refused: Vec<(String, Refusal)>,
    /// Paths of `pyvenv.cfg` files: the folders holding them are virtualenvs (see
    /// [`crate::vendored`]).
    pub venv_markers: Vec<String>,
    /// Set when reading stopped early; `members` holds what was read before.
    pub error: Option<ArchiveError>,
}

impl Contents {
    /// Reads a member if it is a `.py` file at a safe path, and records why not otherwise.
    fn take(&mut self, path: String, r: &mut impl Read, limits: &Limits) -> io::Result<()> {
        if let Some(reason) = check_path(&path) {
            self.refused.push((path, reason));
        } else if path == "pyvenv.cfg" || path.ends_with("/pyvenv.cfg") {
            self.venv_markers.push(path);
        } else if is_python(&path) {
            match read_member(r, limits)? {
                Ok(bytes) => self.members.push(Member { path, bytes }),
                Err(reason) => self.refused.push((path, reason)),
            }
        }
        Ok(())
    }
}

/// Checks a stored member path: no `..`, not absolute, no control characters.
fn check_path(p: &str) -> Option<Refusal> {
    if p.chars().any(char::is_control) {
        return Some(Refusal::ControlCharacters);
    }
    if p.starts_with('/') || p.starts_with('\\') || p.get(1..2) == Some(":") {
        return Some(Refusal::AbsolutePath);
    }
    for c in Path::new(p).components() {
        match c {
            Component::ParentDir => return Some(Refusal::PathTraversal),
            Component::RootDir | Component::Prefix(_) => return Some(Refusal::AbsolutePath),
            _ => {}
        }
    }
    if p.split(['/', '\\']).any(|part| part == "..") {
        return Some(Refusal::PathTraversal);
    }
    None
}

fn is_python(p: &str) -> bool {
    p.ends_with(".py")
}

/// Reads `.py` members of the archive or folder at `path`.
pub fn read(path: &Path, limits: &Limits) -> Contents {
    let name = path.display().to_string();
    if path.is_dir() {
        return read_dir(path, limits);
    }
    let lower = name.to_ascii_lowercase();
    let mut out = Contents::default();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(source) => {
            out.error = Some(ArchiveError::Io { path: name, source });
            return out;
        }
    };
    let compressed = file.metadata().map(|m| m.len()).unwrap_or(0);
    if compressed == 0 {
        out.error = Some(corrupt(&name, "empty file (0 bytes)"));
        return out;
    }
    if lower.ends_with(".conda") {
        read_conda(file, &name, limits, &mut out);
    } else if lower.ends_with(".zip") || lower.ends_with(".whl") {
        read_zip(file, &name, compressed, limits, &mut out);
    } else if lower.ends_with(".tar.gz")
        || lower.ends_with(".tgz")
        || lower.ends_with(".tar.bz2")
        || lower.ends_with(".tar")
    {
        let mut buffered = BufReader::new(file);
        let head = match buffered.fill_buf() {
            Ok(h) => h.to_vec(),
            Err(source) => {
                out.error = Some(ArchiveError::Io { path: name, source });
                return out;
            }
        };
        // By magic bytes, whatever the name says.
        let inner: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
        } else if head.starts_with(b"BZh") {
            Box::new(bzip2::bufread::MultiBzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        read_tar(inner, &name, compressed, limits, &mut out);
    } else {
        out.error = Some(ArchiveError::Unsupported { path: name });
    }
    out
}

/// Counts decompressed bytes and stops the stream at the total and ratio limits.
struct Budget<R> {
    inner: R,
    read: u64,
    compressed: u64,
    limits: Limits,
    /// Which limit stopped the stream: `Some(true)` the ratio, `Some(false)` the total.
    tripped: std::rc::Rc<std::cell::Cell<Option<bool>>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limits.max_total_bytes {
            self.tripped.set(Some(false));
            return Err(io::Error::other("decompressed size limit"));
        }
        if self.read > self.limits.ratio_floor_bytes
            && self.read > self.compressed.saturating_mul(self.limits.max_ratio)
        {
            self.tripped.set(Some(true));
            return Err(io::Error::other("expansion ratio limit"));
        }
        Ok(n)
    }
}

fn read_member(r: &mut impl Read, limits: &Limits) -> io::Result<Result<Vec<u8>, Refusal>> {
    let mut bytes = Vec::new();
    r.take(limits.max_member_bytes + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limits.max_member_bytes {
        // Drain the rest so the stream stays in step (counted against the budget).
        let rest = io::copy(r, &mut io::sink())?;
        return Ok(Err(Refusal::TooLarge {
            bytes: bytes.len() as u64 + rest,
        }));
    }
    if bytes.contains(&0) {
        return Ok(Err(Refusal::NulBytes));
    }
    Ok(Ok(bytes))
}

/// Opens a zip archive, recording why not in `out`.
fn open_zip(file: File, name: &str, out: &mut Contents) -> Option<zip::ZipArchive<File>> {
    match zip::ZipArchive::new(file) {
        Ok(z) => Some(z),
        Err(e) => {
            out.error = Some(corrupt(name, e));
            None
        }
    }
}

/// A `.conda` package: a zip holding `info-*.tar.zst` and `pkg-*.tar.zst`; the code is in the
/// second, a zstd-compressed tar read like any other.
fn read_conda(file: File, name: &str, limits: &Limits, out: &mut Contents) {
    let Some(mut zip) = open_zip(file, name, out) else {
        return;
    };
    let inner = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.starts_with("pkg-") && n.ends_with(".tar.zst"));
    let Some(inner) = inner else {
        out.error = Some(corrupt(name, "no pkg-*.tar.zst inside"));
        return;
    };
    let entry = match zip.by_name(&inner) {
        Ok(e) => e,
        Err(e) => {
            out.error = Some(corrupt(name, format!("{inner}: {e}")));
            return;
        }
    };
    let compressed = entry.compressed_size();
    let decoder = zstd::stream::read::Decoder::new(entry);
    match decoder {
        Ok(d) => read_tar(Box::new(d), name, compressed, limits, out),
        Err(e) => out.error = Some(corrupt(name, format!("{inner}: {e}"))),
    };
}

fn read_tar<'a>(
    inner: Box<dyn Read + 'a>,
    name: &str,
    compressed: u64,
    limits: &Limits,
    out: &mut Contents,
) {
    let tripped = std::rc::Rc::new(std::cell::Cell::new(None));
    let budget = Budget {
        inner,
        read: 0,
        compressed: compressed.max(1),
        limits: limits.clone(),
        tripped: tripped.clone(),
    };
    let mut archive = tar::Archive::new(budget);
    let fail = |e: io::Error| -> ArchiveError {
        match tripped.get() {
            Some(true) => ArchiveError::Ratio {
                path: name.into(),
                ratio: limits.max_ratio,
            },
            Some(false) => ArchiveError::TotalTooLarge {
                path: name.into(),
                limit: limits.max_total_bytes,
            },
            None => corrupt(name, e),
        }
    };
    let entries = match archive.entries() {
        Ok(e) => e,
        Err(e) => {
            out.error = Some(corrupt(name, e));
            return;
        }
    };
    let mut count = 0usize;
    let mut error = None;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        count += 1;
        if count > limits.max_members {
            out.error = Some(ArchiveError::TooManyMembers {
                path: name.into(),
                limit: limits.max_members,
            });
            return;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir()
            || kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            // Only a link in place of a file we would have read is worth a report.
            if is_python(&path) {
                out.refused.push((path, Refusal::Link));
            }
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            out.refused.push((path, Refusal::SpecialFile));
            continue;
        }
        if let Err(e) = out.take(path, &mut entry, limits) {
            error = Some(e);
            break;
        }
    }
    if let Some(e) = error {
        out.error = Some(fail(e));
    } else if count == 0 {
        out.error = Some(corrupt(name, "no members (an empty or truncated archive)"));
    }
}

fn read_zip(file: File, name: &str, compressed: u64, limits: &Limits, out: &mut Contents) {
    let mut local = file.try_clone().ok();
    let Some(mut zip) = open_zip(file, name, out) else {
        return;
    };
    if zip.is_empty() {
        out.error = Some(corrupt(name, "no members (an empty or truncated archive)"));
        return;
    }
    if zip.len() > limits.max_members {
        out.error = Some(ArchiveError::TooManyMembers {
            path: name.into(),
            limit: limits.max_members,
        });
        return;
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                out.error = Some(corrupt(name, e));
                return;
            }
        };
        let path = match entry.name() {
            Ok(n) => n.to_string(),
            Err(e) => {
                out.error = Some(corrupt(name, format!("member {i}: {e}")));
                return;
            }
        };
        if entry.is_dir() {
            continue;
        }
        // Readers disagree on which name counts; one that differs between the two records
        // is an archive made to mislead (or damaged), and is not read.
        if let Some(f) = local.as_mut() {
            if local_name(f, entry.header_start()).is_some_and(|n| n != entry.name_raw()) {
                out.refused.push((path, Refusal::NameMismatch));
                continue;
            }
        }
        if entry.is_symlink() {
            if is_python(&path) {
                out.refused.push((path, Refusal::Link));
            }
            continue;
        }
        if check_path(&path).is_none() && !is_python(&path) {
            continue;
        }
        let declared = entry.size();
        if declared > limits.max_member_bytes && check_path(&path).is_none() {
            out.refused
                .push((path, Refusal::TooLarge { bytes: declared }));
            continue;
        }
        total += declared;
        if total > limits.max_total_bytes {
            out.error = Some(ArchiveError::TotalTooLarge {
                path: name.into(),
                limit: limits.max_total_bytes,
            });
            return;
        }
        if total > limits.ratio_floor_bytes
            && total > compressed.max(1).saturating_mul(limits.max_ratio)
        {
            out.error = Some(ArchiveError::Ratio {
                path: name.into(),
                ratio: limits.max_ratio,
            });
            return;
        }
        // The declared size can lie: the read is capped regardless.
        if let Err(e) = out.take(path.clone(), &mut entry, limits) {
            out.error = Some(corrupt(name, format!("{path}: {e}")));
            return;
        }
    }
}

/// The file name a zip member's local header gives (`None`: unreadable, left to the zip
/// reader to report).
fn local_name(f: &mut File, header_start: u64) -> Option<Vec<u8>> {
    use std::io::Seek;
    let mut fixed = [0u8; 30];
    f.seek(io::SeekFrom::Start(header_start)).ok()?;
    f.read_exact(&mut fixed).ok()?;
    if fixed[..4] != *b"PK\x03\x04" {
        return None;
    }
    let len = u16::from_le_bytes([fixed[26], fixed[27]]) as usize;
    let mut name = vec![0u8; len];
    f.read_exact(&mut name).ok()?;
    Some(name)
}

fn read_dir(root: &Path, limits: &Limits) -> Contents {
    let mut out = Contents::default();
    let mut stack = vec![root.to_path_buf()];
    let mut count = 0usize;
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).collect(),
            Err(source) => {
                out.error = Some(ArchiveError::Io {
                    path: dir.display().to_string(),
                    source,
                });
                return out;
            }
        };
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            count += 1;
            if count > limits.max_members {
                out.error = Some(ArchiveError::TooManyMembers {
                    path: root.display().to_string(),
                    limit: limits.max_members,
                });
                return out;
            }
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                // Links to READMEs, stylesheets and the like are not files we would read.
                if is_python(&rel) {
                    out.refused.push((rel, Refusal::Link));
                }
            } else if meta.is_dir() {
                stack.push(p);
            } else if !meta.is_file() {
                out.refused.push((rel, Refusal::SpecialFile));
            } else if rel == "pyvenv.cfg" || rel.ends_with("/pyvenv.cfg") {
                out.venv_markers.push(rel);
            } else if is_python(&rel) {
                if let Err(source) = File::open(&p).and_then(|mut f| out.take(rel, &mut f, limits))
                {
                    out.error = Some(ArchiveError::Io {
                        path: p.display().to_string(),
                        source,
                    });
                    return out;
                }
            }
        }
    }
    out.members.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Removes the `<name>-<version>/` folder sdists put everything under: the first path part,
/// when every member shares it and it looks like `<name>-<version>`. For sdists only: the
/// top folders of wheels and conda packages are their packages (`pkg/`, `lib/`, …).
pub fn strip_top_folder(members: &mut [Member]) -> Option<String> {
    let first = members
        .first()
        .and_then(|m| m.path.split_once('/').map(|(t, _)| t.to_string()))?;
    let versioned = first
        .char_indices()
        .any(|(i, c)| c == '-' && first[i + 1..].starts_with(|d: char| d.is_ascii_digit()));
    if !versioned {
        return None;
    }
    let prefix = format!("{first}/");
    if !members.iter().all(|m| m.path.starts_with(&prefix)) {
        return None;
    }
    for m in members.iter_mut() {
        m.path = m.path[prefix.len()..].to_string();
    }
    Some(prefix)
}
