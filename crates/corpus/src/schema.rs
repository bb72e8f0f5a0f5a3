//! How a line (or a Parquet row, read as a line of JSON) becomes a record.
//!
//! - [`PyTorrent`]: the PyTorrent / CodeSearchNet record, every known field type-checked.
//! - [`TextField`]: any JSON object with one string field holding the text (`text`,
//!   `content`, as Hugging Face hub code datasets and datatrove write), and optionally a
//!   `partition` or `split` field; nothing else is checked.
//! - [`TextLines`]: one text a line: a JSON string, an object with a `text` string, or the
//!   line itself (what `fill-mask` and `embed` read without `--field`).
//! - [`Any`]: one of these, as the stage was asked (`--field`, `--text-field`, or neither).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::ProblemKind;
use crate::record::{Partition, RecordRef, TextView};

/// What a line failed with: the kind and a message for people.
pub type Refusal = (ProblemKind, String);

/// A way to read one line of a corpus.
pub trait Schema: Sync {
    type Record<'a>;
    /// Parses one non-blank, valid UTF-8 line.
    fn parse<'a>(&self, text: &'a str) -> Result<Self::Record<'a>, Refusal>;
    /// The top-level fields (Parquet columns) the records need; `None` for all of them.
    fn columns(&self) -> Option<Vec<String>> {
        None
    }
    /// Fields the records must have that the caller does not read. A Parquet file proves them
    /// present and complete once, from its schema and statistics, instead of row by row (see
    /// [`crate::parquet_in::read_as_json_lines`]); JSONL lines are checked in full anyway.
    fn stand_ins(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The PyTorrent / CodeSearchNet schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct PyTorrent;

impl Schema for PyTorrent {
    type Record<'a> = RecordRef<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<RecordRef<'a>, Refusal> {
        let first = text.trim_start().as_bytes()[0];
        if first == b'[' || first == b'"' || first.is_ascii_digit() || first == b'-' {
            return Err((
                ProblemKind::NotAnObject,
                "not a JSON object: each line must hold one record object".into(),
            ));
        }
        serde_json::from_str::<RecordRef<'_>>(text)
            .map_err(|e| crate::read::describe_record_error(text, e))
    }
}

/// The PyTorrent schema for a caller that reads only `fields` (and the partition and
/// scenario): every line is still parsed and checked as a PyTorrent record, but of a Parquet
/// file only those columns are read, the other required ones being checked from the file's
/// schema and statistics.
#[derive(Debug, Clone, Copy)]
pub struct PyTorrentFields(pub &'static [&'static str]);

impl PyTorrentFields {
    fn columns(self) -> Vec<String> {
        self.0
            .iter()
            .chain(&["partition", "scenario"])
            .map(|f| f.to_string())
            .collect()
    }

    fn stand_ins(self) -> Vec<String> {
        crate::record::REQUIRED_FIELDS
            .iter()
            .filter(|f| !self.0.contains(f))
            .map(|f| f.to_string())
            .collect()
    }
}

impl Schema for PyTorrentFields {
    type Record<'a> = RecordRef<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<RecordRef<'a>, Refusal> {
        PyTorrent.parse(text)
    }

    fn columns(&self) -> Option<Vec<String>> {
        Some(PyTorrentFields::columns(*self))
    }

    fn stand_ins(&self) -> Vec<String> {
        PyTorrentFields::stand_ins(*self)
    }
}

/// A record of a corpus with one text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextRecord<'a> {
    pub text: Cow<'a, str>,
    /// From a `partition` or `split` field (train, valid/validation/dev, test), when present.
    pub partition: Option<Partition>,
}

/// Records whose text is the string field `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextField {
    pub name: String,
}

impl Schema for TextField {
    type Record<'a> = TextRecord<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<TextRecord<'a>, Refusal> {
        let mut de = serde_json::Deserializer::from_str(text);
        let found = (&mut de)
            .deserialize_map(FieldsVisitor {
                names: [self.name.as_str()],
            })
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| json_refusal(&e))?;
        match found {
            ([Some(Found::Text(t))], partition) => Ok(TextRecord { text: t, partition }),
            ([Some(Found::NotText(what))], _) => Err((
                ProblemKind::WrongType,
                format!("field `{}` is {what}, not a string", self.name),
            )),
            ([None], _) => Err((
                ProblemKind::MissingField,
                format!("no field `{}` (the text field this run reads)", self.name),
            )),
        }
    }

    fn columns(&self) -> Option<Vec<String>> {
        Some(vec![self.name.clone(), "partition".into(), "split".into()])
    }
}

/// Records with two string fields read as a pair (`eval retrieval --query-field docstring
/// --code-field code`), and optionally a `partition` or `split` field; nothing else is
/// checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPair {
    pub first: String,
    pub second: String,
}

/// A record of [`FieldPair`].
#[derive(Debug, Clone, PartialEq)]
pub struct PairRecord<'a> {
    pub first: Cow<'a, str>,
    pub second: Cow<'a, str>,
    pub partition: Option<Partition>,
}

impl Schema for FieldPair {
    type Record<'a> = PairRecord<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<PairRecord<'a>, Refusal> {
        let mut de = serde_json::Deserializer::from_str(text);
        let (found, partition) = (&mut de)
            .deserialize_map(FieldsVisitor {
                names: [self.first.as_str(), self.second.as_str()],
            })
            .and_then(|r| de.end().map(|()| r))
            .map_err(|e| json_refusal(&e))?;
        let [first, second] = found;
        let take = |f: Option<Found<'a>>, name: &str| match f {
            Some(Found::Text(t)) => Ok(t),
            Some(Found::NotText(what)) => Err((
                ProblemKind::WrongType,
                format!("field `{name}` is {what}, not a string"),
            )),
            None => Err((
                ProblemKind::MissingField,
                format!("no field `{name}` (a field this run reads)"),
            )),
        };
        Ok(PairRecord {
            first: take(first, &self.first)?,
            second: take(second, &self.second)?,
            partition,
        })
    }

    fn columns(&self) -> Option<Vec<String>> {
        Some(vec![
            self.first.clone(),
            self.second.clone(),
            "partition".into(),
            "split".into(),
        ])
    }
}

/// One text a line: a JSON string, an object with a `text` string (any other fields are
/// ignored), or else the line as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLines;

impl Schema for TextLines {
    type Record<'a> = TextRecord<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<TextRecord<'a>, Refusal> {
        match text.trim_start().as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<Cow<'a, str>>(text) {
                Ok(t) => Ok(TextRecord {
                    text: t,
                    partition: None,
                }),
                Err(_) => Ok(TextRecord {
                    text: Cow::Borrowed(text),
                    partition: None,
                }),
            },
            Some(b'{') => TextField {
                name: "text".into(),
            }
            .parse(text)
            .map_err(|(kind, message)| {
                (
                    kind,
                    format!(
                        "{message}: a line that is a JSON object must carry its text in \
                         `text` (for corpus records give --field code|docstring|…, or \
                         --text-field NAME)"
                    ),
                )
            }),
            _ => Ok(TextRecord {
                text: Cow::Borrowed(text),
                partition: None,
            }),
        }
    }
}

fn json_refusal(e: &serde_json::Error) -> Refusal {
    let msg = e.to_string();
    let what = msg.split(" at line ").next().unwrap_or(&msg);
    match e.classify() {
        serde_json::error::Category::Data => (ProblemKind::NotAnObject, what.to_string()),
        _ => (
            ProblemKind::InvalidJson,
            format!("invalid JSON at column {}: {what}", e.column()),
        ),
    }
}

enum Found<'a> {
    Text(Cow<'a, str>),
    NotText(&'static str),
}

/// The string fields `names` of a JSON object (each a text, or what it was instead), and
/// its `partition` or `split` field; every other field is skipped unread.
struct FieldsVisitor<'n, const N: usize> {
    names: [&'n str; N],
}

impl<'de, const N: usize> Visitor<'de> for FieldsVisitor<'_, N> {
    type Value = ([Option<Found<'de>>; N], Option<Partition>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one record a line)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found: [Option<Found<'de>>; N] = std::array::from_fn(|_| None);
        let mut partition = None;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if let Some(i) = self.names.iter().position(|n| *n == key) {
                found[i] = Some(map.next_value_seed(TextSeed)?);
            } else if (key == "partition" || key == "split") && partition.is_none() {
                let v: Option<Cow<'de, str>> = map.next_value_seed(OptStrSeed)?;
                partition = v.as_deref().and_then(Partition::parse);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok((found, partition))
    }
}

/// A string (borrowed when it has no escapes), or what it was instead.
struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Found<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Found<'de>, D::Error> {
        d.deserialize_any(TextSeedVisitor)
    }
}

struct TextSeedVisitor;

impl<'de> Visitor<'de> for TextSeedVisitor {
    type Value = Found<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Found<'de>, E> {
        Ok(Found::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Found<'de>, E> {
        Ok(Found::Text(Cow::Owned(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Found<'de>, E> {
        Ok(Found::Text(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Found<'de>, E> {
        Ok(Found::NotText("null"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Found<'de>, E> {
        Ok(Found::NotText("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Found<'de>, E> {
        Ok(Found::NotText("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Found<'de>, E> {
        Ok(Found::NotText("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Found<'de>, E> {
        Ok(Found::NotText("a number"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Found<'de>, A::Error> {
        while s.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Found::NotText("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Found<'de>, A::Error> {
        while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Found::NotText("an object"))
    }
}

/// An optional string; anything else is read over and taken as absent.
struct OptStrSeed;

impl<'de> DeserializeSeed<'de> for OptStrSeed {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(match TextSeed.deserialize(d)? {
            Found::Text(t) => Some(t),
            Found::NotText(_) => None,
        })
    }
}

/// Which text of each record a stage reads: a view of PyTorrent records (`--field`), or one
/// string field of records of any shape (`--text-field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSource {
    View(TextView),
    Field(String),
    /// Each line is a text (see [`TextLines`]).
    Lines,
}

impl TextSource {
    /// `--text-field NAME` when given, else the `--field` view.
    pub fn new(field: TextView, text_field: Option<&str>) -> TextSource {
        match text_field {
            Some(name) => TextSource::Field(name.to_string()),
            None => TextSource::View(field),
        }
    }

    pub fn name(&self) -> String {
        match self {
            TextSource::View(v) => v.name().to_string(),
            TextSource::Field(f) => format!("`{f}` field"),
            TextSource::Lines => "text line".into(),
        }
    }

    pub fn schema(&self) -> Any {
        match self {
            TextSource::View(v) => Any::PyTorrent(Some(PyTorrentFields(v.fields()))),
            TextSource::Field(f) => Any::TextField(TextField { name: f.clone() }),
            TextSource::Lines => Any::Lines,
        }
    }
}

/// A record of either schema. Records live for one line each, on the stack: boxing the
/// larger variant would cost an allocation per line.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AnyRecord<'a> {
    PyTorrent(RecordRef<'a>),
    Text(TextRecord<'a>),
}

impl<'a> AnyRecord<'a> {
    /// The record's own partition field.
    pub fn partition(&self) -> Option<Partition> {
        match self {
            AnyRecord::PyTorrent(r) => r.partition,
            AnyRecord::Text(t) => t.partition,
        }
    }

    /// The text a source reads: the view of a PyTorrent record, the field of a text record.
    pub fn text<'r>(&'r self, source: &TextSource) -> Option<Cow<'r, str>> {
        match (self, source) {
            (AnyRecord::PyTorrent(r), TextSource::View(v)) => v.text(r),
            (AnyRecord::Text(t), _) => Some(Cow::Borrowed(t.text.as_ref())),
            (AnyRecord::PyTorrent(_), _) => None,
        }
    }

    /// What a split by hash keys on: `xxh3_64` of the PEP 503 name of a PyTorrent record's
    /// package (so a package never spans two partitions), of the text of any other.
    pub fn split_hash(&self) -> u64 {
        use xxhash_rust::xxh3::xxh3_64;
        match self {
            AnyRecord::PyTorrent(r) => xxh3_64(crate::metadata::normalize_name(&r.repo).as_bytes()),
            AnyRecord::Text(t) => text_split_hash(&t.text),
        }
    }
}

/// What places a record with only text in a partition by `validation_split_percentage`: a
/// hash of its text.
pub fn text_split_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// PyTorrent records (all fields read, or some), records with a named text field, or text
/// lines.
#[derive(Debug, Clone)]
pub enum Any {
    PyTorrent(Option<PyTorrentFields>),
    TextField(TextField),
    Lines,
}

impl Default for Any {
    fn default() -> Any {
        Any::PyTorrent(None)
    }
}

impl Schema for Any {
    type Record<'a> = AnyRecord<'a>;

    fn parse<'a>(&self, text: &'a str) -> Result<AnyRecord<'a>, Refusal> {
        match self {
            Any::PyTorrent(_) => PyTorrent.parse(text).map(AnyRecord::PyTorrent),
            Any::TextField(f) => f.parse(text).map(AnyRecord::Text),
            Any::Lines => TextLines.parse(text).map(AnyRecord::Text),
        }
    }

    fn columns(&self) -> Option<Vec<String>> {
        match self {
            Any::TextField(f) => f.columns(),
            Any::Lines => Some(vec!["text".into()]),
            Any::PyTorrent(fields) => fields.map(PyTorrentFields::columns),
        }
    }

    fn stand_ins(&self) -> Vec<String> {
        match self {
            Any::PyTorrent(Some(fields)) => fields.stand_ins(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_field_of_any_record() {
        let s = TextField {
            name: "content".into(),
        };
        let r = s
            .parse(r#"{"id": 3, "content": "def f():\n    pass", "meta": {"a": [1]}, "split": "validation"}"#)
            .unwrap();
        assert_eq!(r.text, "def f():\n    pass");
        assert_eq!(r.partition, Some(Partition::Valid));
        assert!(matches!(
            s.parse(r#"{"content": "x"}"#).unwrap().text,
            Cow::Borrowed(_)
        ));
        let e = s.parse(r#"{"text": "x"}"#).unwrap_err();
        assert_eq!(e.0, ProblemKind::MissingField);
        assert!(e.1.contains("`content`"), "{e:?}");
        let e = s.parse(r#"{"content": 42}"#).unwrap_err();
        assert_eq!(
            (e.0, e.1.as_str()),
            (
                ProblemKind::WrongType,
                "field `content` is a number, not a string"
            )
        );
        assert_eq!(
            s.parse(r#"{"content": "x""#).unwrap_err().0,
            ProblemKind::InvalidJson
        );
        assert_eq!(
            s.parse(r#"["content"]"#).unwrap_err().0,
            ProblemKind::NotAnObject
        );
    }

    #[test]
    fn text_lines_are_strings_objects_or_raw() {
        let t = |s| TextLines.parse(s).map(|r| r.text.into_owned());
        assert_eq!(t(r#""a <mask>\nb""#).unwrap(), "a <mask>\nb");
        assert_eq!(t(r#"{"text": "x", "id": 1}"#).unwrap(), "x");
        assert_eq!(t("return a <mask> b").unwrap(), "return a <mask> b");
        let e = TextLines
            .parse(r#"{"repo": "six", "code": "def f(): pass"}"#)
            .unwrap_err();
        assert!(e.1.contains("--field"), "{e:?}");
    }
}
