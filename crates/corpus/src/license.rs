//! License normalisation: PyPI's free-text `license` field, the `License ::` trove
//! classifiers and Anaconda's license strings → SPDX identifiers → a coarse class.
//!
//! The table of free-text spellings and classifiers is our own: it is where PyPI metadata
//! differs from SPDX, and no crate covers it. Exact SPDX ids and the copyleft property come
//! from the `spdx` crate. What cannot be recognised stays unknown: a guess would let
//! copyleft code into a "permissive" corpus.

use serde::Serialize;

pytorrent_io::word_enum! {
    "license class";
    /// The classes `corpus filter --license` selects on.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum LicenseClass {
        Permissive = "permissive",
        Copyleft = "copyleft",
        /// Metadata exists but names no license we recognise.
        Unknown = "unknown",
        /// No metadata document for the package at all (never the class of a license;
        /// what statistics and filters call records of such packages).
        NoMetadata = "no_metadata",
    }
}

impl LicenseClass {
    pub fn as_str(self) -> &'static str {
        self.name()
    }
    pub fn parse(s: &str) -> Option<LicenseClass> {
        s.parse().ok()
    }
}

/// Whether the license id `have` is what a user asking for `want` means: the same id (any
/// case), the family id of a bare family name (`BSD` → `LicenseRef-BSD`), or a versioned
/// member of a family (`BSD` → `BSD-3-Clause`, `GPL` → `GPL-3.0-only`).
pub fn id_matches(want: &str, have: &str) -> bool {
    let (want, have) = (want.to_ascii_lowercase(), have.to_ascii_lowercase());
    want == have
        || have == format!("licenseref-{want}")
        || have
            .strip_prefix(&want)
            .is_some_and(|rest| rest.starts_with('-'))
}

/// Ids outside the SPDX list for license families that metadata names without a version or
/// clause count ("BSD", "GPL"): the class is certain, the exact license is not.
const FAMILY_BSD: &str = "LicenseRef-BSD";
const FAMILY_GPL: &str = "LicenseRef-GPL";
const FAMILY_LGPL: &str = "LicenseRef-LGPL";
const FAMILY_AGPL: &str = "LicenseRef-AGPL";
const FAMILY_PUBLIC_DOMAIN: &str = "LicenseRef-Public-Domain";

/// `License ::` trove classifiers (the part after `License :: `), lower-cased.
const CLASSIFIERS: &[(&str, &str)] = &[
    ("osi approved :: mit license", "MIT"),
    (
        "osi approved :: mit no attribution license (mit-0)",
        "MIT-0",
    ),
    ("osi approved :: bsd license", FAMILY_BSD),
    ("osi approved :: apache software license", "Apache-2.0"),
    (
        "osi approved :: python software foundation license",
        "PSF-2.0",
    ),
    ("osi approved :: isc license (iscl)", "ISC"),
    ("osi approved :: zlib/libpng license", "Zlib"),
    ("osi approved :: the unlicense (unlicense)", "Unlicense"),
    (
        "osi approved :: boost software license 1.0 (bsl-1.0)",
        "BSL-1.0",
    ),
    ("osi approved :: academic free license (afl)", "AFL-3.0"),
    ("osi approved :: artistic license", "Artistic-2.0"),
    ("osi approved :: zope public license", "ZPL-2.1"),
    (
        "osi approved :: historical permission notice and disclaimer (hpnd)",
        "HPND",
    ),
    (
        "osi approved :: universal permissive license (upl)",
        "UPL-1.0",
    ),
    (
        "osi approved :: mozilla public license 1.1 (mpl 1.1)",
        "MPL-1.1",
    ),
    (
        "osi approved :: mozilla public license 2.0 (mpl 2.0)",
        "MPL-2.0",
    ),
    (
        "osi approved :: eclipse public license 1.0 (epl-1.0)",
        "EPL-1.0",
    ),
    (
        "osi approved :: eclipse public license 2.0 (epl-2.0)",
        "EPL-2.0",
    ),
    (
        "osi approved :: european union public licence 1.2 (eupl 1.2)",
        "EUPL-1.2",
    ),
    (
        "osi approved :: gnu general public license (gpl)",
        FAMILY_GPL,
    ),
    (
        "osi approved :: gnu general public license v2 (gplv2)",
        "GPL-2.0-only",
    ),
    (
        "osi approved :: gnu general public license v2 or later (gplv2+)",
        "GPL-2.0-or-later",
    ),
    (
        "osi approved :: gnu general public license v3 (gplv3)",
        "GPL-3.0-only",
    ),
    (
        "osi approved :: gnu general public license v3 or later (gplv3+)",
        "GPL-3.0-or-later",
    ),
    (
        "osi approved :: gnu lesser general public license v2 (lgplv2)",
        "LGPL-2.0-only",
    ),
    (
        "osi approved :: gnu lesser general public license v2 or later (lgplv2+)",
        "LGPL-2.0-or-later",
    ),
    (
        "osi approved :: gnu lesser general public license v3 (lgplv3)",
        "LGPL-3.0-only",
    ),
    (
        "osi approved :: gnu lesser general public license v3 or later (lgplv3+)",
        "LGPL-3.0-or-later",
    ),
    (
        "osi approved :: gnu library or lesser general public license (lgpl)",
        FAMILY_LGPL,
    ),
    (
        "osi approved :: gnu affero general public license v3",
        "AGPL-3.0-only",
    ),
    (
        "osi approved :: gnu affero general public license v3 or later (agplv3+)",
        "AGPL-3.0-or-later",
    ),
    (
        "cc0 1.0 universal (cc0 1.0) public domain dedication",
        "CC0-1.0",
    ),
    ("public domain", FAMILY_PUBLIC_DOMAIN),
    ("gnu free documentation license (fdl)", "GFDL-1.3-or-later"),
];

/// Free-text spellings seen in PyPI's `license` field and Anaconda's license string, keyed
/// by a squashed form (lower case, no spaces, dashes, dots, underscores or commas).
const SPELLINGS: &[(&str, &str)] = &[
    ("mit", "MIT"),
    ("mitlicense", "MIT"),
    ("mitlicence", "MIT"),
    ("themitlicense", "MIT"),
    ("expat", "MIT"),
    ("bsd", FAMILY_BSD),
    ("bsdlicense", FAMILY_BSD),
    ("newbsd", "BSD-3-Clause"),
    ("newbsdlicense", "BSD-3-Clause"),
    ("modifiedbsd", "BSD-3-Clause"),
    ("bsd3", "BSD-3-Clause"),
    ("bsd3clause", "BSD-3-Clause"),
    ("3clausebsd", "BSD-3-Clause"),
    ("bsd2", "BSD-2-Clause"),
    ("bsd2clause", "BSD-2-Clause"),
    ("simplifiedbsd", "BSD-2-Clause"),
    ("freebsd", "BSD-2-Clause"),
    ("apache", "Apache-2.0"),
    ("apache2", "Apache-2.0"),
    ("apache20", "Apache-2.0"),
    ("apachev2", "Apache-2.0"),
    ("apachev20", "Apache-2.0"),
    ("apachelicense", "Apache-2.0"),
    ("apachelicense2", "Apache-2.0"),
    ("apachelicense20", "Apache-2.0"),
    ("apachelicensev2", "Apache-2.0"),
    ("apachelicenseversion20", "Apache-2.0"),
    ("apachesoftwarelicense", "Apache-2.0"),
    ("asl2", "Apache-2.0"),
    ("asl20", "Apache-2.0"),
    ("psf", "PSF-2.0"),
    ("psfl", "PSF-2.0"),
    ("psflicense", "PSF-2.0"),
    ("pythonsoftwarefoundationlicense", "PSF-2.0"),
    ("isc", "ISC"),
    ("isclicense", "ISC"),
    ("zlib", "Zlib"),
    ("unlicense", "Unlicense"),
    ("theunlicense", "Unlicense"),
    ("publicdomain", FAMILY_PUBLIC_DOMAIN),
    ("cc0", "CC0-1.0"),
    ("wtfpl", "WTFPL"),
    ("mpl", "MPL-2.0"),
    ("mpl2", "MPL-2.0"),
    ("mpl20", "MPL-2.0"),
    ("mozillapubliclicense20", "MPL-2.0"),
    ("gpl", FAMILY_GPL),
    ("gnugpl", FAMILY_GPL),
    ("gplv2", "GPL-2.0-only"),
    ("gpl2", "GPL-2.0-only"),
    ("gplv2+", "GPL-2.0-or-later"),
    ("gplv2orlater", "GPL-2.0-or-later"),
    ("gplv3", "GPL-3.0-only"),
    ("gpl3", "GPL-3.0-only"),
    ("gplv3+", "GPL-3.0-or-later"),
    ("gplv3orlater", "GPL-3.0-or-later"),
    ("gnugplv3", "GPL-3.0-only"),
    ("gnugeneralpubliclicense", FAMILY_GPL),
    ("gnugeneralpubliclicensev3", "GPL-3.0-only"),
    ("gnugeneralpubliclicensev2", "GPL-2.0-only"),
    ("lgpl", FAMILY_LGPL),
    ("lgplv2", "LGPL-2.0-only"),
    ("lgplv21", "LGPL-2.1-only"),
    ("lgplv2+", "LGPL-2.0-or-later"),
    ("lgplv3", "LGPL-3.0-only"),
    ("lgplv3+", "LGPL-3.0-or-later"),
    ("agpl", FAMILY_AGPL),
    ("agplv3", "AGPL-3.0-only"),
    ("agplv3+", "AGPL-3.0-or-later"),
];

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '_' | ',' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Class of one normalised id (SPDX or one of our `LicenseRef-` families).
pub fn class_of(id: &str) -> LicenseClass {
    match id {
        FAMILY_BSD | FAMILY_PUBLIC_DOMAIN => LicenseClass::Permissive,
        FAMILY_GPL | FAMILY_LGPL | FAMILY_AGPL => LicenseClass::Copyleft,
        _ => match spdx::license_id(id) {
            Some(l) if l.is_copyleft() => LicenseClass::Copyleft,
            Some(l)
                if l.is_osi_approved()
                    || l.is_fsf_free_libre()
                    || id == "CC0-1.0"
                    || id == "WTFPL" =>
            {
                LicenseClass::Permissive
            }
            _ => LicenseClass::Unknown,
        },
    }
}

/// Normalises one free-text license string; `None` when it names nothing recognisable
/// (empty, "UNKNOWN", a whole license text that we do not guess at, …).
pub fn normalize_text(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || t.len() > 200 {
        return None;
    }
    if let Some(l) = spdx::license_id(t) {
        return Some(l.name.to_string());
    }
    let key = squash(t);
    if let Some((_, id)) = SPELLINGS.iter().find(|(k, _)| *k == key) {
        return Some((*id).to_string());
    }
    // A trailing "license"/"licence" word is noise: "Apache 2.0 License".
    for suffix in ["license", "licence"] {
        if let Some(stem) = key.strip_suffix(suffix) {
            if let Some((_, id)) = SPELLINGS.iter().find(|(k, _)| *k == stem) {
                return Some((*id).to_string());
            }
        }
    }
    // Case-insensitive exact SPDX id ("apache-2.0", "bsd-3-clause").
    spdx::identifiers::LICENSES
        .iter()
        .find(|(name, _, _)| name.eq_ignore_ascii_case(t))
        .map(|(name, _, _)| (*name).to_string())
}

/// Normalises a trove classifier such as `License :: OSI Approved :: MIT License`.
pub fn normalize_classifier(c: &str) -> Option<String> {
    let rest = c
        .trim()
        .strip_prefix("License ::")?
        .trim()
        .to_ascii_lowercase();
    CLASSIFIERS
        .iter()
        .find(|(k, _)| *k == rest)
        .map(|(_, id)| (*id).to_string())
}

/// Where a license statement came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LicenseSource {
    LicenseField,
    Classifier,
    Anaconda,
}

/// A package's license as far as its metadata tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct License {
    /// Distinct normalised ids, in the order found.
    pub ids: Vec<String>,
    /// Statements that could not be normalised, kept for reports.
    pub unrecognised: Vec<String>,
    pub class: LicenseClass,
}

impl License {
    /// Combines statements. When they disagree, copyleft wins over permissive: a package whose
    /// license field says AGPL but whose classifier says MIT is treated as copyleft, so a
    /// permissive-only corpus never includes it by mistake.
    pub fn from_statements(statements: &[(LicenseSource, &str)]) -> License {
        let mut ids: Vec<String> = Vec::new();
        let mut unrecognised = Vec::new();
        for (source, text) in statements {
            let id = match source {
                LicenseSource::Classifier => normalize_classifier(text),
                _ => normalize_text(text),
            };
            match id {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => {
                    let t = text.trim();
                    let noise = t.is_empty()
                        || t.eq_ignore_ascii_case("unknown")
                        || t.eq_ignore_ascii_case("none")
                        || (*source == LicenseSource::Classifier
                            && t.eq_ignore_ascii_case("License :: OSI Approved"));
                    if !noise {
                        unrecognised.push(t.chars().take(200).collect());
                    }
                }
            }
        }
        let classes: Vec<LicenseClass> = ids.iter().map(|i| class_of(i)).collect();
        let class = if classes.contains(&LicenseClass::Copyleft) {
            LicenseClass::Copyleft
        } else if !classes.is_empty() && classes.iter().all(|c| *c == LicenseClass::Permissive) {
            LicenseClass::Permissive
        } else {
            LicenseClass::Unknown
        };
        License {
            ids,
            unrecognised,
            class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_spellings() {
        for (s, id) in [
            ("MIT", "MIT"),
            ("MIT License", "MIT"),
            ("Apache 2.0", "Apache-2.0"),
            ("Apache License, Version 2.0", "Apache-2.0"),
            ("apache-2.0", "Apache-2.0"),
            ("BSD", FAMILY_BSD),
            ("BSD-3-Clause", "BSD-3-Clause"),
            ("AGPLv3+", "AGPL-3.0-or-later"),
            ("GPLv3", "GPL-3.0-only"),
            ("PSF", "PSF-2.0"),
        ] {
            assert_eq!(normalize_text(s).as_deref(), Some(id), "{s}");
        }
        for s in ["", "UNKNOWN", "Proprietary", "see LICENSE file"] {
            assert_eq!(normalize_text(s), None, "{s}");
        }
    }

    #[test]
    fn classifiers() {
        assert_eq!(
            normalize_classifier("License :: OSI Approved :: MIT License").as_deref(),
            Some("MIT")
        );
        assert_eq!(
            normalize_classifier(
                "License :: OSI Approved :: GNU General Public License v3 (GPLv3)"
            )
            .as_deref(),
            Some("GPL-3.0-only")
        );
        assert_eq!(normalize_classifier("Programming Language :: Python"), None);
    }

    #[test]
    fn classes_and_conflicts() {
        let l = License::from_statements(&[(LicenseSource::LicenseField, "MIT")]);
        assert_eq!(l.class, LicenseClass::Permissive);
        let l = License::from_statements(&[
            (LicenseSource::LicenseField, "AGPLv3+"),
            (
                LicenseSource::Classifier,
                "License :: OSI Approved :: MIT License",
            ),
        ]);
        assert_eq!(l.ids, ["AGPL-3.0-or-later", "MIT"]);
        assert_eq!(l.class, LicenseClass::Copyleft);
        let l = License::from_statements(&[(LicenseSource::LicenseField, "Proprietary")]);
        assert_eq!(l.class, LicenseClass::Unknown);
        assert_eq!(l.unrecognised, ["Proprietary"]);
        let l = License::from_statements(&[(LicenseSource::LicenseField, "LGPL-2.1-or-later")]);
        assert_eq!(l.class, LicenseClass::Copyleft);
        let l = License::from_statements(&[(LicenseSource::LicenseField, "")]);
        assert_eq!(l.class, LicenseClass::Unknown);
        assert!(l.unrecognised.is_empty());
    }
}
