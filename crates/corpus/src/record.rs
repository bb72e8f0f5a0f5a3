//! The PyTorrent record: CodeSearchNet's fields plus PyTorrent's additions.
//!
//! Two shapes of the same schema:
//! - [`Record`] owns its data and keeps unknown fields (in their original order) for lossless
//!   re-serialisation; stages that *make* records (extraction) build these.
//! - [`RecordRef`] borrows from the input line and is what the streaming reader hands out:
//!   it checks the type of every known field but copies only what a consumer may read, and
//!   token lists are type-checked and counted without allocating. Records that pass through
//!   a command unchanged are written back from the raw line, byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// The dataset split a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    Train,
    Valid,
    Test,
}

impl Partition {
    pub const ALL: [Partition; 3] = [Partition::Train, Partition::Valid, Partition::Test];

    /// Accepts the names used by CodeSearchNet and PyTorrent and common aliases.
    pub fn parse(s: &str) -> Option<Partition> {
        match s {
            "train" | "training" => Some(Partition::Train),
            "valid" | "validation" | "val" | "dev" => Some(Partition::Valid),
            "test" | "testing" => Some(Partition::Test),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Train => "train",
            Partition::Valid => "valid",
            Partition::Test => "test",
        }
    }
}

impl std::str::FromStr for Partition {
    type Err = String;
    fn from_str(s: &str) -> Result<Partition, String> {
        Partition::parse(s)
            .ok_or_else(|| format!("unknown partition '{s}' (expected train, valid or test)"))
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields a record must have (CodeSearchNet's core, less `sha` and `partition`: PyTorrent
/// records have no git sha, and the partition may come from the folder).
pub const REQUIRED_FIELDS: &[&str] = &[
    "repo",
    "path",
    "func_name",
    "original_string",
    "language",
    "code",
    "code_tokens",
    "docstring",
    "docstring_tokens",
    "url",
];

/// An owned record. Unknown fields live in `extra`, in input order, and are written after the
/// known ones. Optional fields are doubly optional so that an absent field and an explicit
/// `null` both survive a round trip: `None` = absent, `Some(None)` = `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub repo: String,
    pub path: String,
    pub func_name: String,
    pub original_string: String,
    pub language: String,
    pub code: String,
    pub code_tokens: Vec<String>,
    pub docstring: String,
    pub docstring_tokens: Vec<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub sha: Option<Option<String>>,
    pub url: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub partition: Option<Option<Partition>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_tokens_ast: Option<Option<Vec<String>>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_with_docstrings: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub summary: Option<Option<String>>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A type-checked, counted list of strings (e.g. `code_tokens`); nothing is copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenList {
    pub len: usize,
}

/// A JSON string whose content is not needed: checked to be a string, not copied.
struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for TokenList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TokenList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TokenList, A::Error> {
                let mut len = 0;
                while seq.next_element::<AnyStr>()?.is_some() {
                    len += 1;
                }
                Ok(TokenList { len })
            }
        }
        d.deserialize_seq(V)
    }
}

/// A JSON string left undecoded: parsing skips over it (checking that it is a string) and
/// [`RawStr::decode`] unescapes it only when a consumer asks. Used for the long fields most
/// commands never read (`original_string`, `code_with_docstrings`).
#[derive(Debug, Clone, Copy)]
pub struct RawStr<'a>(&'a serde_json::value::RawValue);

impl<'a> RawStr<'a> {
    pub fn decode(&self) -> Cow<'a, str> {
        // The value was checked to be a JSON string when the record was parsed.
        let raw: &'a str = self.0.get();
        if !raw[1..raw.len() - 1].contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        Cow::Owned(serde_json::from_str::<String>(raw).expect("a checked JSON string"))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'a serde_json::value::RawValue = Deserialize::deserialize(d)?;
        if raw.get().starts_with('"') {
            Ok(RawStr(raw))
        } else {
            Err(de::Error::invalid_type(
                unexpected_of(raw.get()),
                &"a string",
            ))
        }
    }
}

fn unexpected_of(raw: &str) -> de::Unexpected<'static> {
    match raw.as_bytes().first() {
        Some(b'{') => de::Unexpected::Map,
        Some(b'[') => de::Unexpected::Seq,
        Some(b't') => de::Unexpected::Bool(true),
        Some(b'f') => de::Unexpected::Bool(false),
        Some(b'n') => de::Unexpected::Unit,
        _ => de::Unexpected::Other("a number"),
    }
}

fn borrowed_str<'de: 'a, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, str>, D::Error> {
    // `Cow<str>`'s own impl always copies; this one borrows when the JSON has no escapes.
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }
    d.deserialize_str(V)
}

fn opt_borrowed_str<'de: 'a, 'a, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct Wrap<'a>(Cow<'a, str>);
    impl<'de: 'a, 'a> Deserialize<'de> for Wrap<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            borrowed_str(d).map(Wrap)
        }
    }
    Ok(Option::<Wrap<'a>>::deserialize(d)?.map(|w| w.0))
}

fn opt_partition<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Partition>, D::Error> {
    let s: Option<Cow<'de, str>> = opt_borrowed_str(d)?;
    match s {
        None => Ok(None),
        Some(s) => Partition::parse(&s).map(Some).ok_or_else(|| {
            de::Error::invalid_value(de::Unexpected::Str(&s), &"train, valid or test")
        }),
    }
}

/// A record borrowed from its input line. Every known field is type-checked; unknown fields
/// are skipped here (they survive in the raw line).
#[derive(Debug, Deserialize)]
pub struct RecordRef<'a> {
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub repo: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub path: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub func_name: Cow<'a, str>,
    #[serde(borrow)]
    pub original_string: RawStr<'a>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub language: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub code: Cow<'a, str>,
    pub code_tokens: TokenList,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub docstring: Cow<'a, str>,
    pub docstring_tokens: TokenList,
    #[serde(default, borrow, deserialize_with = "opt_borrowed_str")]
    pub sha: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "borrowed_str")]
    pub url: Cow<'a, str>,
    #[serde(default, deserialize_with = "opt_partition")]
    pub partition: Option<Partition>,
    #[serde(default)]
    pub code_tokens_ast: Option<TokenList>,
    #[serde(default, borrow)]
    pub code_with_docstrings: Option<RawStr<'a>>,
    #[serde(default, borrow, deserialize_with = "opt_borrowed_str")]
    pub summary: Option<Cow<'a, str>>,
    /// The scenario a flattened multi-scenario corpus records (see `corpus convert`).
    #[serde(default, borrow, deserialize_with = "opt_borrowed_str")]
    pub scenario: Option<Cow<'a, str>>,
}

/// A text view of a record: what a downstream stage (tokenizer, packer, embedder) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextView {
    Code,
    Docstring,
    Summary,
    CodeWithDocstrings,
    OriginalString,
    /// The natural-language part and the code, joined by a blank line; stages that know the
    /// model's separator tokens (the packer) build their own pair instead.
    NlPlusCode,
}

impl TextView {
    pub const NAMES: &'static [&'static str] = &[
        "code",
        "docstring",
        "summary",
        "code_with_docstrings",
        "original_string",
        "nl+code",
    ];

    pub fn parse(s: &str) -> Option<TextView> {
        Some(match s {
            "code" => TextView::Code,
            "docstring" => TextView::Docstring,
            "summary" => TextView::Summary,
            "code_with_docstrings" => TextView::CodeWithDocstrings,
            "original_string" => TextView::OriginalString,
            "nl+code" => TextView::NlPlusCode,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TextView::Code => "code",
            TextView::Docstring => "docstring",
            TextView::Summary => "summary",
            TextView::CodeWithDocstrings => "code_with_docstrings",
            TextView::OriginalString => "original_string",
            TextView::NlPlusCode => "nl+code",
        }
    }

    /// The view's text; `None` when the record lacks the field the view needs.
    /// The fields a reader of this view needs: its text's, and what names a record (its
    /// package, file and function; the partition and scenario are always read).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            TextView::Code => &["repo", "path", "func_name", "code"],
            TextView::Docstring => &["repo", "path", "func_name", "docstring"],
            TextView::Summary => &["repo", "path", "func_name", "summary"],
            TextView::CodeWithDocstrings => &["repo", "path", "func_name", "code_with_docstrings"],
            TextView::OriginalString => &["repo", "path", "func_name", "original_string"],
            TextView::NlPlusCode => &["repo", "path", "func_name", "docstring", "code"],
        }
    }

    pub fn text<'r>(self, r: &'r RecordRef<'_>) -> Option<Cow<'r, str>> {
        let borrowed = |c: &'r Cow<'_, str>| Cow::Borrowed(c.as_ref());
        match self {
            TextView::Code => Some(borrowed(&r.code)),
            TextView::Docstring => Some(borrowed(&r.docstring)),
            TextView::OriginalString => Some(r.original_string.decode()),
            TextView::Summary => r.summary.as_ref().map(borrowed),
            TextView::CodeWithDocstrings => r.code_with_docstrings.map(|s| s.decode()),
            TextView::NlPlusCode => {
                if r.docstring.is_empty() {
                    Some(borrowed(&r.code))
                } else {
                    Some(Cow::Owned(format!("{}\n\n{}", r.docstring, r.code)))
                }
            }
        }
    }
}

pytorrent_io::serde_by_name!(TextView, name);

impl std::str::FromStr for TextView {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TextView::parse(s).ok_or_else(|| {
            format!(
                "unknown field view '{s}' (expected one of {})",
                Self::NAMES.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"repo":"six","path":"six.py","func_name":"add_move","original_string":"def add_move(move):\n    \"\"\"Add an item to six.moves.\"\"\"\n    setattr(_MovedItems, move.name, move)","language":"python","code":"def add_move(move):\n    setattr(_MovedItems, move.name, move)","code_tokens":["def","add_move","(","move",")",":","setattr","(","_MovedItems",",","move",".","name",",","move",")"],"docstring":"Add an item to six.moves.","docstring_tokens":["Add","an","item","to","six",".","moves","."],"sha":null,"url":"six.py#L490-L492","partition":"train","x_extra":{"b":[1,2.5,null],"a":"z"},"summary":"Add an item to six.moves."}"#;

    #[test]
    fn borrowed_view_reads_every_known_field() {
        let r: RecordRef = serde_json::from_str(LINE).unwrap();
        assert_eq!(r.repo, "six");
        assert!(
            matches!(r.repo, Cow::Borrowed(_)),
            "unescaped strings are borrowed"
        );
        assert!(r.code.contains('\n'));
        assert_eq!(r.code_tokens.len, 16);
        assert_eq!(r.docstring_tokens.len, 8);
        assert_eq!(r.partition, Some(Partition::Train));
        assert_eq!(r.sha, None);
        assert_eq!(r.summary.as_deref(), Some("Add an item to six.moves."));
        assert!(r.code_with_docstrings.is_none());
        let orig = r.original_string.decode();
        assert!(
            orig.starts_with("def add_move(move):\n    \"\"\"Add"),
            "{orig}"
        );
        let line = LINE.replace(
            r#""language":"python""#,
            r#""language":"python","code_with_docstrings":"x = 1""#,
        );
        let plain: RecordRef = serde_json::from_str(&line).unwrap();
        assert!(matches!(
            plain.code_with_docstrings.unwrap().decode(),
            Cow::Borrowed("x = 1")
        ));
    }

    #[test]
    fn owned_record_round_trips_unknown_fields() {
        let r: Record = serde_json::from_str(LINE).unwrap();
        assert_eq!(r.extra.len(), 1);
        let out = serde_json::to_string(&r).unwrap();
        let a: serde_json::Value = serde_json::from_str(LINE).unwrap();
        let b: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(a, b);
        // Nested key order of unknown fields is kept as written.
        assert!(
            out.contains(r#""x_extra":{"b":[1,2.5,null],"a":"z"}"#),
            "{out}"
        );
    }

    #[test]
    fn wrong_types_are_rejected() {
        let bad = LINE.replace(r#""code_tokens":["def""#, r#""code_tokens":[1"#);
        assert!(serde_json::from_str::<RecordRef>(&bad).is_err());
        let bad = LINE.replace(r#""partition":"train""#, r#""partition":"dev-set""#);
        assert!(serde_json::from_str::<RecordRef>(&bad).is_err());
        let bad = LINE.replace(
            r#""original_string":"def"#,
            r#""original_string":["def"],"x":"#,
        );
        let err = serde_json::from_str::<RecordRef>(&bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a string"), "{err}");
    }

    #[test]
    fn nl_plus_code_joins_docstring_and_code() {
        let r: RecordRef = serde_json::from_str(LINE).unwrap();
        let t = TextView::NlPlusCode.text(&r).unwrap();
        assert!(t.starts_with("Add an item to six.moves.\n\ndef add_move"));
        assert_eq!(
            TextView::Summary.text(&r).unwrap(),
            "Add an item to six.moves."
        );
        assert!(TextView::CodeWithDocstrings.text(&r).is_none());
    }
}
