//! Which release and which file of it: a pinned version, the newest by `--as-of`, else the
//! latest; the sdist before a pure-Python wheel before one for this platform.

use crate::pypi::{fail, FailReason, Outcome};

/// The files of the release to fetch: the pinned version, else with `as_of` the newest
/// release uploaded by then (none: `Ok(None)`), else the latest. Yanked releases are passed
/// over unless pinned, as pip does.
pub(crate) fn select_release(
    doc: &serde_json::Value,
    pinned: Option<&str>,
    as_of: Option<&str>,
) -> Result<Option<Vec<serde_json::Value>>, Outcome> {
    if let Some(v) = pinned {
        return match doc["releases"].get(v).and_then(|x| x.as_array()) {
            Some(f) => Ok(Some(f.clone())),
            None => Err(fail(FailReason::NoSuchVersion, format!("no release {v}"))),
        };
    }
    let Some(cutoff) = as_of else {
        let version = doc["info"]["version"].as_str();
        let files = version
            .and_then(|v| doc["releases"].get(v))
            .and_then(|x| x.as_array())
            .cloned()
            .or_else(|| doc["urls"].as_array().cloned());
        return match (version, files) {
            (_, Some(f)) => Ok(Some(f)),
            (None, None) => Err(fail(FailReason::BadMetadata, "no info.version")),
            (Some(v), None) => Err(fail(FailReason::NoSuchVersion, format!("no release {v}"))),
        };
    };
    // A release's time is its first file's upload; the newest release by then wins.
    let mut best: Option<(String, &Vec<serde_json::Value>)> = None;
    if let Some(releases) = doc["releases"].as_object() {
        for files in releases.values().filter_map(|f| f.as_array()) {
            let live: Vec<&serde_json::Value> = files
                .iter()
                .filter(|f| !f["yanked"].as_bool().unwrap_or(false))
                .collect();
            let Some(first) = live.iter().filter_map(|f| upload_time(f)).min() else {
                continue;
            };
            if first.as_str() <= cutoff && best.as_ref().is_none_or(|(t, _)| first > *t) {
                best = Some((first, files));
            }
        }
    }
    Ok(best.map(|(_, f)| f.clone()))
}

/// A file's upload time as `YYYY-MM-DDTHH:MM:SS` (UTC), from `upload_time_iso_8601` or
/// `upload_time`.
fn upload_time(f: &serde_json::Value) -> Option<String> {
    let t = f["upload_time_iso_8601"]
        .as_str()
        .or_else(|| f["upload_time"].as_str())?;
    (t.len() >= 19).then(|| t[..19].replace(' ', "T"))
}

/// `--as-of`: `YYYY-MM-DD` (the end of that day, UTC) or `YYYY-MM-DDTHH:MM:SS`, as the
/// cutoff compared with upload times.
pub fn parse_as_of(s: &str) -> Result<String, String> {
    let s = s.trim();
    let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
    let date_ok = |d: &str| {
        let p: Vec<&str> = d.split('-').collect();
        p.len() == 3
            && p[0].len() == 4
            && p[1].len() == 2
            && p[2].len() == 2
            && p.iter().all(|x| digits(x))
    };
    match s.len() {
        10 if date_ok(s) => Ok(format!("{s}T23:59:59")),
        19.. if date_ok(&s[..10]) && s.as_bytes()[10] == b'T' => Ok(s[..19].to_string()),
        _ => Err(format!(
            "--as-of {s:?}: give a date, YYYY-MM-DD, or a time, YYYY-MM-DDTHH:MM:SS (UTC)"
        )),
    }
}

/// The platform wheels are chosen for: this machine's.
pub(crate) struct Platform {
    os: &'static str,
    arch: &'static str,
}

impl Platform {
    pub(crate) fn running() -> Platform {
        Platform {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    /// Whether a wheel's platform tag (`manylinux_2_17_x86_64.manylinux2014_x86_64`,
    /// `macosx_11_0_arm64`, `win_amd64`) is one this machine runs.
    fn runs(&self, tag: &str) -> bool {
        tag.split('.').any(|t| match self.os {
            "linux" => t.contains("linux") && t.ends_with(self.arch),
            "macos" => {
                let arch = if self.arch == "aarch64" {
                    "arm64"
                } else {
                    self.arch
                };
                t.starts_with("macosx") && (t.ends_with(arch) || t.ends_with("universal2"))
            }
            "windows" => {
                let arch = if self.arch == "aarch64" {
                    "arm64"
                } else {
                    "amd64"
                };
                t == format!("win_{arch}")
            }
            _ => false,
        })
    }
}

/// Which file of a release to take, lowest first: the sdist (the package's source as its
/// authors wrote it); else a pure-Python wheel; else a wheel for this platform; else one for
/// another platform (its Python files are still source); 4: not an archive we read.
pub(crate) fn rank(f: &serde_json::Value, platform: &Platform) -> u8 {
    let kind = f["packagetype"].as_str().unwrap_or("");
    let file = f["filename"].as_str().unwrap_or("");
    match kind {
        "sdist" => 0,
        "bdist_wheel" => {
            let tag = file
                .strip_suffix(".whl")
                .and_then(|stem| stem.rsplit('-').next())
                .unwrap_or("");
            if tag == "any" {
                1
            } else if platform.runs(tag) {
                2
            } else {
                3
            }
        }
        _ => 4,
    }
}

/// A package as pip names it on a command line: `name`, or `name==version` (an exact pin).
/// Other specifiers (`>=`, `~=`, `!=`, extras, markers, URLs) are refused: fetch gets one
/// release, the newest or a given one.
pub fn parse_requirement(spec: &str) -> Result<(String, Option<String>), String> {
    let spec = spec.trim();
    let (name, version) = match spec.split_once("==") {
        Some((n, v)) if !v.starts_with('=') => (n.trim(), Some(v.trim())),
        _ => (spec, None),
    };
    let plain = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '!'))
    };
    // The name passes the check every name from an index or channel passes too.
    if pytorrent_io::project_name_problem(name).is_some()
        || version.is_some_and(|v| !plain(v) || v.contains('*'))
    {
        return Err(format!(
            "{spec}: give a package name, or name==version for one exact release \
             (other version specifiers, extras and markers are not understood)"
        ));
    }
    Ok((name.to_string(), version.map(str::to_string)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn requirements_are_names_or_exact_pins() {
        assert_eq!(
            super::parse_requirement("six").unwrap(),
            ("six".into(), None)
        );
        assert_eq!(
            super::parse_requirement("six==1.16.0").unwrap(),
            ("six".into(), Some("1.16.0".into()))
        );
        for bad in [
            "six>=1.0",
            "six~=1.0",
            "six[extra]",
            "six==1.*",
            "six===1.0",
            "six; python_version>'3'",
            "",
        ] {
            let e = super::parse_requirement(bad).unwrap_err();
            assert!(e.contains("name==version"), "{bad}: {e}");
        }
    }
}
