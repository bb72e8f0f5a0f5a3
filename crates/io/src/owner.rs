//! Which output folders a command may write into, and which files in them it may replace.
//!
//! A command that writes a folder claims it first: a new or empty folder becomes its own,
//! marked by [`OWNER_FILE`], which names the command and then lists, one a line, every file
//! the command created there (appended before the file is created, so a killed run's files are
//! listed too). A later run of the same command removes exactly the files listed (so no stale
//! chunk of a larger earlier run survives) and nothing else. A folder that holds anything and
//! is not the command's own (another command's output, another task's, a user's files) is
//! refused unless the user asks for `--force`, which writes into it while still removing only
//! what the list names.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use crate::{Error, Result};

/// The owner file of a claimed folder.
pub const OWNER_FILE: &str = ".pytorrent-output";

const HEADER: &str = "pytorrent ";

/// A folder this command owns; files it creates there are recorded with [`Owner::record`].
#[derive(Debug)]
pub struct Owner {
    dir: PathBuf,
    list: fs::File,
    listed: HashSet<PathBuf>,
}

/// What a claim does with the files an earlier run of the command listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Previous {
    /// Remove them (a fresh run: whatever it does not write again must not linger).
    Remove,
    /// Keep them and the list (a resumed run rewrites them in the same order).
    Keep,
}

impl Owner {
    /// Claims `dir` (creating it) for `command`, e.g. `"corpus convert"`.
    pub fn claim(dir: &Path, command: &str, force: bool, previous: Previous) -> Result<Owner> {
        let path = dir.join(OWNER_FILE);
        let header = format!("{HEADER}{command}");
        let (owner, listed) = read_list(&path)?;
        let ours = owner.as_deref() == Some(header.as_str());
        if !ours && !force {
            let held = names(dir);
            if !held.is_empty() {
                let whose = match owner {
                    Some(o) => format!("it is the output of `{o}`"),
                    None => "no pytorrent command made it".to_string(),
                };
                return Err(Error::Usage(format!(
                    "{} is not empty and {whose} (it holds {}): give a new or empty folder, or \
                     --force to write into it (replacing files of the same names)",
                    dir.display(),
                    listing(&held)
                )));
            }
        }
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let keep = ours && previous == Previous::Keep;
        let mut kept = HashSet::new();
        if keep {
            kept = listed.into_iter().collect();
        } else {
            // Only a list this command wrote names files it may remove.
            for rel in listed.iter().filter(|_| ours) {
                let p = dir.join(rel);
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&p, e)),
                }
                remove_empty_parents(dir, &p);
            }
            crate::atomic::write_atomic(&path, format!("{header}\n").as_bytes())?;
        }
        let list = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Owner {
            dir: dir.to_path_buf(),
            list,
            listed: kept,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records that the command is about to create `path` (inside the folder); call it before
    /// the file exists.
    pub fn record(&mut self, path: &Path) -> Result<()> {
        let rel = path.strip_prefix(&self.dir).unwrap_or(path).to_path_buf();
        if self.listed.contains(&rel) {
            return Ok(());
        }
        let line = format!("{}\n", rel.display());
        self.list
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(self.dir.join(OWNER_FILE), e))?;
        self.listed.insert(rel);
        Ok(())
    }
}

/// The owner file's command line and the files it lists; only plain relative paths inside
/// the folder are taken (the list is read back from disk, where anyone could have edited it).
fn read_list(path: &Path) -> Result<(Option<String>, Vec<PathBuf>)> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, Vec::new())),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Ok((Some("an unreadable owner file".into()), Vec::new()))
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut lines = text.lines();
    let owner = lines.next().map(str::to_string);
    let files = lines
        .map(PathBuf::from)
        .filter(|p| {
            !p.as_os_str().is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
        })
        .collect();
    Ok((owner, files))
}

fn remove_empty_parents(dir: &Path, file: &Path) {
    let mut at = file.parent();
    while let Some(p) = at {
        if p == dir || !p.starts_with(dir) || fs::remove_dir(p).is_err() {
            break;
        }
        at = p.parent();
    }
}

/// The names in `dir`, sorted (none when it does not exist).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A few names, quoted, and how many more.
pub fn listing(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("{n:?}")).collect();
    match names.len().saturating_sub(5) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(dir: &Path, cmd: &str, force: bool) -> Result<Owner> {
        Owner::claim(dir, cmd, force, Previous::Remove)
    }

    #[test]
    fn a_folder_is_claimed_when_new_empty_or_its_own() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        let mut o = claim(&d, "corpus convert", false).unwrap();
        o.record(&d.join("a/x.jsonl.gz")).unwrap();
        fs::create_dir_all(d.join("a")).unwrap();
        fs::write(d.join("a/x.jsonl.gz"), b"1").unwrap();
        o.record(&d.join("a/x.jsonl.gz")).unwrap();
        drop(o);
        assert_eq!(
            fs::read_to_string(d.join(OWNER_FILE)).unwrap(),
            "pytorrent corpus convert\na/x.jsonl.gz\n",
            "each file listed once"
        );
        // A user's file beside ours survives a re-run; ours goes, with its emptied folder.
        fs::write(d.join("notes.txt"), b"mine").unwrap();
        let _o = claim(&d, "corpus convert", false).unwrap();
        assert_eq!(names(&d), [OWNER_FILE, "notes.txt"]);

        // Another command's folder, or a user's: refused, unless forced.
        let e = claim(&d, "extract", false).unwrap_err().to_string();
        assert!(e.contains("output of `pytorrent corpus convert`"), "{e}");
        let user = t.path().join("user");
        fs::create_dir_all(&user).unwrap();
        fs::write(user.join("thesis.txt"), b"x").unwrap();
        let e = claim(&user, "extract", false).unwrap_err().to_string();
        assert!(e.contains("\"thesis.txt\"") && e.contains("--force"), "{e}");
        claim(&user, "extract", true).unwrap();
        assert!(user.join("thesis.txt").is_file(), "forcing removes nothing");
        // An empty folder is anyone's.
        let empty = t.path().join("empty");
        fs::create_dir_all(&empty).unwrap();
        claim(&empty, "extract", false).unwrap();
    }

    #[test]
    fn a_list_edited_to_point_outside_removes_nothing_there() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        fs::create_dir_all(&d).unwrap();
        fs::write(t.path().join("victim"), b"x").unwrap();
        fs::write(
            d.join(OWNER_FILE),
            format!(
                "pytorrent extract\n../victim\n{}\n",
                t.path().join("victim").display()
            ),
        )
        .unwrap();
        claim(&d, "extract", false).unwrap();
        assert!(t.path().join("victim").is_file());
    }

    #[test]
    fn a_resumed_run_keeps_the_list_and_the_files() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("out");
        let mut o = claim(&d, "extract", false).unwrap();
        o.record(&d.join("a")).unwrap();
        fs::write(d.join("a"), b"1").unwrap();
        drop(o);
        let mut o = Owner::claim(&d, "extract", false, Previous::Keep).unwrap();
        o.record(&d.join("a")).unwrap();
        o.record(&d.join("b")).unwrap();
        assert!(d.join("a").is_file());
        assert_eq!(
            fs::read_to_string(d.join(OWNER_FILE)).unwrap(),
            "pytorrent extract\na\nb\n"
        );
    }
}
