//! Opt-out lists: PyTorrent promises to remove packages or files on request. One entry a line:
//! a package name (any spelling; compared after PEP 503 normalisation), or `package:glob` for
//! files inside a package (`requests:docs/**`, `foo:*/secret_*.py`); `#` starts a comment.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};
use crate::metadata::normalize_name;

#[derive(Debug, Default)]
pub struct OptOut {
    packages: HashSet<String>,
    files: HashMap<String, GlobSet>,
}

impl OptOut {
    pub fn parse(text: &str, origin: &str) -> Result<OptOut> {
        let mut packages = HashSet::new();
        let mut globs: HashMap<String, GlobSetBuilder> = HashMap::new();
        for entry in pytorrent_io::lists::parse_list(text) {
            let line = entry.line;
            match entry.text.split_once(':') {
                None => {
                    packages.insert(normalize_name(&entry.text));
                }
                Some((pkg, pattern)) => {
                    let (pkg, pattern) = (pkg.trim(), pattern.trim());
                    if pkg.is_empty() || pattern.is_empty() {
                        return Err(Error::Usage(format!(
                            "{origin}:{line}: expected `package` or `package:glob`"
                        )));
                    }
                    let glob = Glob::new(pattern).map_err(|e| {
                        Error::Usage(format!("{origin}:{line}: bad glob '{pattern}': {e}"))
                    })?;
                    globs
                        .entry(normalize_name(pkg))
                        .or_insert_with(GlobSetBuilder::new)
                        .add(glob);
                }
            }
        }
        let mut files = HashMap::new();
        for (pkg, builder) in globs {
            let set = builder
                .build()
                .map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
            files.insert(pkg, set);
        }
        Ok(OptOut { packages, files })
    }

    pub fn load(path: &Path) -> Result<OptOut> {
        let text = std::fs::read_to_string(path).map_err(|e| pytorrent_io::Error::io(path, e))?;
        OptOut::parse(&text, &path.display().to_string())
    }

    /// The whole package is opted out.
    pub fn package(&self, name: &str) -> bool {
        self.packages.contains(&normalize_name(name))
    }

    /// The package, or this file of it, is opted out.
    pub fn file(&self, package: &str, path: &str) -> bool {
        let name = normalize_name(package);
        self.packages.contains(&name) || self.files.get(&name).is_some_and(|set| set.is_match(path))
    }

    pub fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_and_file_globs() {
        let o = OptOut::parse(
            "# removals\nSome_Package\nsix:six.py  # one file\ntoolz:toolz/curried/**\n",
            "opt-out.txt",
        )
        .unwrap();
        assert!(o.package("some-package") && o.package("SOME.package"));
        assert!(!o.package("six"));
        assert!(o.file("six", "six.py") && !o.file("six", "other.py"));
        assert!(
            o.file("toolz", "toolz/curried/operator.py") && !o.file("toolz", "toolz/itertoolz.py")
        );
        assert!(o.file("some_package", "anything.py"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = OptOut::parse("ok\n:nopkg\n", "list.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("list.txt:2:"), "{e}");
        let e = OptOut::parse("pkg:[unclosed\n", "list.txt")
            .unwrap_err()
            .to_string();
        assert!(e.contains("list.txt:1: bad glob"), "{e}");
    }
}
