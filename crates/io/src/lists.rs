//! Files of names, one a line, `#` starting a comment (package lists, opt-out lists).

use std::path::Path;

use crate::{Error, Result};

/// One entry of a list file, with its line number (from 1) for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub text: String,
}

/// The entries of `text`: each line up to a `#`, trimmed, blank lines left out.
pub fn parse_list(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let entry = l.split('#').next().unwrap_or("").trim();
            (!entry.is_empty()).then(|| Entry {
                line: i + 1,
                text: entry.to_string(),
            })
        })
        .collect()
}

/// The entries of the list file at `path`.
pub fn read_list(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    Ok(parse_list(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_left_out() {
        let got = parse_list("six\n\n# a comment\n  idna  # why\nfoo:docs/**\n");
        let texts: Vec<(usize, &str)> = got.iter().map(|e| (e.line, e.text.as_str())).collect();
        assert_eq!(texts, [(1, "six"), (4, "idna"), (5, "foo:docs/**")]);
    }
}
