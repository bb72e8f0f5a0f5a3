//! Atomic output: write to a hidden temporary name in the destination folder, fsync, rename.
//!
//! A reader never sees a half-written file under the final name; a crash or an error leaves
//! only a `.<name>.tmp*` file that the next run ignores (and `Drop` removes when it can).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub struct AtomicFile {
    final_path: PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl AtomicFile {
    /// Creates the destination folder if needed and opens a temporary file beside `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let final_path = path.as_ref().to_path_buf();
        let dir = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Outputs get the usual permissions (0666 less the umask), not a temp file's 0600.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let tmp = builder.tempfile_in(&dir).map_err(|e| Error::io(&dir, e))?;
        Ok(AtomicFile { final_path, tmp })
    }

    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Flushes, syncs to disk and renames to the final name.
    pub fn commit(mut self) -> Result<PathBuf> {
        let path = self.final_path.clone();
        self.tmp.flush().map_err(|e| Error::io(&path, e))?;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io(&path, e))?;
        self.tmp
            .persist(&path)
            .map_err(|e| Error::io(&path, e.error))?;
        Ok(path)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.tmp.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Removes what a killed writer left in `dir` (not below it): the hidden `.NAME.XXXXXX.tmp`
/// files and folders of [`AtomicFile`] and temporary folders, and hidden entries starting with
/// one of `prefixes`. With `min_age`, only those untouched for that long (another task may be
/// writing the younger ones). A resumed run calls it, so that its output ends as an
/// uninterrupted run's does. Returns how many entries went.
pub fn remove_leftovers(
    dir: &Path,
    prefixes: &[&str],
    min_age: Option<std::time::Duration>,
) -> Result<u64> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut removed = 0;
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let leftover = name.starts_with('.')
            && (name.ends_with(".tmp") || prefixes.iter().any(|p| name.starts_with(p)));
        if !leftover || name == INCOMPLETE_MARKER {
            continue;
        }
        let path = e.path();
        let meta = e.metadata().map_err(|e| Error::io(&path, e))?;
        let old_enough = min_age.is_none_or(|age| {
            meta.modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|el| el >= age)
        });
        if !old_enough {
            continue;
        }
        let gone = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        gone.map_err(|e| Error::io(&path, e))?;
        removed += 1;
    }
    Ok(removed)
}

/// The temporary name a streamed output is written under beside `path` (`.NAME.PID.tmp`),
/// for writers that cannot hold an [`AtomicFile`] (they rewrite a header in place, or hand
/// the file to a library that wants a path); [`remove_leftovers`] knows the pattern.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path.as_ref())?;
    f.write_all(bytes)
        .map_err(|e| Error::io(path.as_ref(), e))?;
    f.commit()?;
    Ok(())
}

/// A folder of many files is complete only when its writer says so: it holds this marker
/// from the start of a run until every file is in place, so an output whose run failed or was
/// killed (disk full, SIGKILL) never passes for a finished one. Readers refuse a folder that
/// holds it.
pub const INCOMPLETE_MARKER: &str = ".pytorrent-incomplete";

/// Marks `dir` as being written (creating it).
pub fn mark_incomplete(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let marker = dir.join(INCOMPLETE_MARKER);
    std::fs::write(
        &marker,
        b"pytorrent is writing this folder, or its run stopped before the end\n",
    )
    .map_err(|e| Error::io(&marker, e))
}

/// Marks `dir` complete: its files are all in place.
pub fn mark_complete(dir: &Path) -> Result<()> {
    let marker = dir.join(INCOMPLETE_MARKER);
    match std::fs::remove_file(&marker) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&marker, e)),
    }
}

/// The incomplete output `path` is in, if any: `path` itself or one of its `levels` parents
/// holding the marker.
pub fn incomplete_output(path: &Path, levels: usize) -> Option<PathBuf> {
    path.ancestors()
        .take(levels + 1)
        .find(|d| d.join(INCOMPLETE_MARKER).is_file())
        .map(Path::to_path_buf)
}

/// An error for reading from an incomplete output.
pub fn incomplete_error(dir: &Path) -> Error {
    Error::format(
        dir,
        format!(
            "an incomplete output: its run failed or was stopped before the end ({} is still \
             there); run it again to complete it",
            INCOMPLETE_MARKER
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/out.txt");
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"hello").unwrap();
        assert!(!target.exists(), "final name must not exist before commit");
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
        let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary file must be gone after commit"
        );
    }

    #[cfg(unix)]
    #[test]
    fn committed_file_is_not_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        AtomicFile::create(&target).unwrap().commit().unwrap();
        let mode = fs::metadata(&target).unwrap().permissions().mode();
        assert_ne!(mode & 0o044, 0, "group/other can read: {mode:o}");
    }

    #[test]
    fn leftovers_of_a_killed_writer_go_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // What a SIGKILL leaves: an AtomicFile's temporary (forgotten, as a kill forgets
        // it), a temporary folder, a prefixed one.
        let f = AtomicFile::create(d.join("log.csv")).unwrap();
        std::mem::forget(f);
        fs::create_dir_all(d.join(".checkpoint-4.Ab12.tmp/x")).unwrap();
        fs::create_dir_all(d.join(".final.Zz9")).unwrap();
        for keep in ["log.csv", ".hidden", "checkpoint-2.tmp", INCOMPLETE_MARKER] {
            fs::write(d.join(keep), b"k").unwrap();
        }
        // Too young for a minimum age of an hour: all kept.
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(remove_leftovers(d, &[".final."], Some(hour)).unwrap(), 0);
        assert_eq!(remove_leftovers(d, &[".final."], None).unwrap(), 3);
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".hidden", INCOMPLETE_MARKER, "checkpoint-2.tmp", "log.csv"]
        );
        assert_eq!(remove_leftovers(&d.join("absent"), &[], None).unwrap(), 0);
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
