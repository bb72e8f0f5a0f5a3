//! Byte-level BPE tokenizers for code, built on the `tokenizers` crate so every file written
//! here loads unchanged in Python's `tokenizers` and `transformers`.
//!
//! - [`train`]: RoBERTa-layout BPE from corpus records (one record = one training sequence).
//! - [`save`]: `tokenizer.json`, `vocab.json` + `merges.txt`, `tokenizer_config.json`,
//!   `special_tokens_map.json`.
//! - [`load`]: a `tokenizer.json`, a folder (also one with only `vocab.json` + `merges.txt`),
//!   or a model id in the local Hugging Face cache.
//! - [`Encoder`]: batch encoding with order preserved; [`encoder`] picks the exact fast path
//!   of [`fast`] where it applies, `tokenizers` itself elsewhere.
//!
//! The stage's commands each have a typed config and a `run`: [`train_corpus`] (train),
//! [`encode`], [`decode`], [`inspect`] and [`eval`].

pub use pytorrent_hf::hub;

pub mod decode;
pub mod encode;
pub mod eval;
pub mod fast;
pub mod inspect;
pub mod pretok;
pub mod train_corpus;

pub use train_corpus::{train_from_corpus, TrainConfig, TrainCounts, TrainReport};

use std::path::{Path, PathBuf};

use serde_json::json;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{
    AddedToken, DecoderWrapper, Model, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
};
use tokenizers::{Tokenizer, TokenizerBuilder, TokenizerImpl};

/// RoBERTa's special tokens, in id order: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3, `<mask>`=4.
pub const SPECIAL_TOKENS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },
    /// Not found as a path nor in the local Hugging Face cache (usage), or a file there that
    /// cannot be read.
    #[error(transparent)]
    Hub(#[from] pytorrent_hf::Error),
    #[error("tokenizer: {0}")]
    Tokenizers(String),
    #[error(transparent)]
    Io(#[from] pytorrent_io::Error),
    #[error(transparent)]
    Corpus(Box<pytorrent_corpus::Error>),
    /// The request is wrong: no inputs, conflicting options (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The inputs hold no text of the field and partitions asked for (exit code 2); a
    /// pipeline measuring every partition passes over an empty one.
    #[error("{0}")]
    NoTexts(String),
}

impl From<pytorrent_corpus::Error> for Error {
    fn from(e: pytorrent_corpus::Error) -> Self {
        Error::Corpus(Box::new(e))
    }
}

impl pytorrent_io::Classify for Error {
    fn kind(&self) -> pytorrent_io::ErrorKind {
        use pytorrent_io::ErrorKind;
        match self {
            // A tokenizer that cannot be found is a bad argument; one that cannot be read is
            // bad data.
            Error::Usage(_) | Error::NoTexts(_) => ErrorKind::Usage,
            Error::Hub(e) => e.kind(),
            Error::Load { path, .. } if !path.exists() => ErrorKind::Usage,
            Error::Corpus(c) => c.kind(),
            Error::Io(e) => e.kind(),
            Error::Load { .. } | Error::Tokenizers(_) => ErrorKind::Data,
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizers(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub vocab_size: usize,
    pub min_frequency: u64,
    /// Written to `tokenizer_config.json`; without it `transformers` assumes 1e30 and
    /// overflows the model's position table on long inputs.
    pub model_max_length: usize,
}

/// The largest vocabulary accepted: ids must fit the signed 32-bit ids that shards of
/// vocabularies above 65,536 store (and models embed).
pub const MAX_VOCAB_SIZE: usize = 1 << 31;

/// Vocabularies up to this size are always trained as asked (smaller when the texts hold
/// fewer merges); a larger one must be within what the texts can give.
pub const ALWAYS_ACCEPTED_VOCAB: usize = 1 << 16;

/// The most entries BPE can learn from these words: 5 special tokens, 256 bytes, and one merge
/// at most per pair of adjacent symbols of each distinct word (every merge joins two).
pub fn vocab_bound<'a>(words: impl Iterator<Item = &'a str>) -> usize {
    261 + words
        .map(|w| w.chars().count().saturating_sub(1))
        .sum::<usize>()
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            vocab_size: 50265,
            min_frequency: 2,
            model_max_length: 512,
        }
    }
}

type Bpe = TokenizerImpl<
    BPE,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

fn special_tokens() -> Vec<AddedToken> {
    SPECIAL_TOKENS
        .iter()
        // RoBERTa's <mask> swallows the space before it ("a <mask>" → "a" + <mask>).
        .map(|t| AddedToken::from(*t, true).lstrip(*t == "<mask>"))
        .collect()
}

/// The pipeline RoBERTa uses: ByteLevel pre-tokenizer and decoder without a prefix space,
/// `<s> … </s>` (pairs `<s> A </s></s> B </s>`) post-processing.
pub(crate) fn roberta_pipeline(model: BPE) -> Result<Bpe> {
    let byte_level = ByteLevel::new(false, true, true);
    let processor = RobertaProcessing::new(("</s>".into(), 2), ("<s>".into(), 0))
        .trim_offsets(true)
        .add_prefix_space(false);
    TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(None)
        .with_pre_tokenizer(Some(PreTokenizerWrapper::ByteLevel(byte_level)))
        .with_post_processor(Some(PostProcessorWrapper::Roberta(processor)))
        .with_decoder(Some(DecoderWrapper::ByteLevel(byte_level)))
        .build()
        .map_err(Error::from)
}

/// Converted in memory, not through JSON: `tokenizers` serialises a vocabulary by walking
/// every id up to the largest, so a vocab.json with one id of 2^31 took 8 GB to load.
pub(crate) fn into_tokenizer(t: Bpe) -> Result<Tokenizer> {
    Ok(Tokenizer::from(t))
}

/// Trains a RoBERTa-layout byte-level BPE on `texts`, each one training sequence.
///
/// Deterministic: the same texts give the same vocabulary and merges whatever the thread
/// count (the trainer counts words in parallel, but ids and merge order follow counts and
/// sorted ties only).
pub fn train<I, S>(texts: I, opts: &TrainOptions) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let mut trainer = bpe_trainer(opts);
    let mut tok = roberta_pipeline(BPE::default())?;
    tok.train(&mut trainer, texts)?;
    into_tokenizer(tok)
}

pub(crate) fn bpe_trainer(opts: &TrainOptions) -> tokenizers::models::bpe::BpeTrainer {
    BpeTrainerBuilder::new()
        .vocab_size(opts.vocab_size)
        .min_frequency(opts.min_frequency)
        .special_tokens(special_tokens())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .show_progress(false)
        .build()
}

/// Files [`save`] writes.
pub const OUTPUT_FILES: [&str; 5] = [
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Writes the tokenizer folder, each file atomically.
pub fn save(tok: &Tokenizer, dir: &Path, model_max_length: usize) -> Result<Vec<PathBuf>> {
    pytorrent_io::atomic::mark_incomplete(dir)?;
    let write = |name: &str, bytes: &[u8]| -> Result<PathBuf> {
        let p = dir.join(name);
        pytorrent_io::atomic::write_atomic(&p, bytes)?;
        Ok(p)
    };
    // tokenizer.json, what loaders look for first, is written last: a run that fails (disk
    // full) leaves no folder that loads as a complete tokenizer.
    let json = tok.to_string(false)?;
    // An earlier tokenizer.json must not pass for this run's while the others are replaced.
    let previous = dir.join("tokenizer.json");
    if previous.is_file() {
        std::fs::remove_file(&previous).map_err(|e| pytorrent_io::Error::io(&previous, e))?;
    }
    let mut out = Vec::new();
    // vocab.json + merges.txt, as the model's own serialisation writes them; staged in a
    // temporary folder so they too appear only when complete.
    let stage = tempfile_dir(dir)?;
    let files = tok
        .get_model()
        .save(stage.path(), None)
        .map_err(|e| pytorrent_io::Error::io(stage.path(), std::io::Error::other(e.to_string())))?;
    for f in files {
        let name = f.file_name().expect("model files have names").to_owned();
        let bytes = std::fs::read(&f).map_err(|e| pytorrent_io::Error::io(&f, e))?;
        out.push(write(&name.to_string_lossy(), &bytes)?);
    }
    let mask = json!({"content": "<mask>", "lstrip": true, "normalized": false, "rstrip": false, "single_word": false, "special": true});
    let special_map = json!({
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": mask,
    });
    let config = json!({
        "tokenizer_class": "RobertaTokenizer",
        "model_max_length": model_max_length,
        "add_prefix_space": false,
        "trim_offsets": true,
        "errors": "replace",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
        "pad_token": "<pad>", "cls_token": "<s>", "mask_token": "<mask>",
    });
    let pretty =
        |v: &serde_json::Value| serde_json::to_vec_pretty(v).expect("JSON values serialise");
    out.push(write("special_tokens_map.json", &pretty(&special_map))?);
    out.push(write("tokenizer_config.json", &pretty(&config))?);
    out.insert(0, write("tokenizer.json", json.as_bytes())?);
    pytorrent_io::atomic::mark_complete(dir)?;
    Ok(out)
}

fn tempfile_dir(inside: &Path) -> Result<TempDir> {
    let path = inside.join(format!(".stage-{}", std::process::id()));
    std::fs::create_dir_all(&path).map_err(|e| pytorrent_io::Error::io(&path, e))?;
    Ok(TempDir(path))
}

/// A staging folder removed when dropped.
struct TempDir(PathBuf);
impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a loaded tokenizer came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    TokenizerJson(PathBuf),
    VocabMerges { vocab: PathBuf, merges: PathBuf },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::TokenizerJson(p) => write!(f, "{}", p.display()),
            Source::VocabMerges { vocab, merges } => {
                write!(f, "{} + {}", vocab.display(), merges.display())
            }
        }
    }
}

/// A loaded tokenizer and what it was loaded from.
pub struct Loaded {
    pub tokenizer: Tokenizer,
    pub source: Source,
}

/// What a manifest records of the tokenizer that made its ids: its files with their sha256,
/// and the vocabulary size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum TokenizerInfo {
    TokenizerJson {
        file: String,
        sha256: String,
        vocab_size: usize,
    },
    VocabMerges {
        vocab: String,
        vocab_sha256: String,
        merges: String,
        merges_sha256: String,
        vocab_size: usize,
    },
}

impl TokenizerInfo {
    /// What [`load`] takes to load this tokenizer again: the `tokenizer.json`, or the folder
    /// of `vocab.json` + `merges.txt`.
    pub fn spec(&self) -> String {
        match self {
            TokenizerInfo::TokenizerJson { file, .. } => file.clone(),
            TokenizerInfo::VocabMerges { vocab, .. } => Path::new(vocab)
                .parent()
                .map_or_else(|| ".".into(), |p| p.display().to_string()),
        }
    }

    pub fn vocab_size(&self) -> usize {
        match self {
            TokenizerInfo::TokenizerJson { vocab_size, .. }
            | TokenizerInfo::VocabMerges { vocab_size, .. } => *vocab_size,
        }
    }
}

impl Loaded {
    /// One more than the largest id the tokenizer can emit, added tokens included: what ids
    /// must fit in and what an embedding matrix needs. It is the number of entries when ids
    /// run from 0 without gaps, and more when they skip (a token at id 70,000 in a
    /// vocabulary of 1,200 needs 70,001 rows and more than 16 bits).
    pub fn id_bound(&self) -> usize {
        let entries = self.tokenizer.get_vocab_size(true);
        let max = self
            .tokenizer
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .map_or(0, |m| m as usize + 1);
        entries.max(max)
    }

    /// The manifest's record of this tokenizer (hashes its files).
    pub fn info(&self) -> Result<TokenizerInfo> {
        let vocab_size = self.id_bound();
        Ok(match &self.source {
            Source::TokenizerJson(p) => TokenizerInfo::TokenizerJson {
                file: p.display().to_string(),
                sha256: pytorrent_io::sha256_file(p)?,
                vocab_size,
            },
            Source::VocabMerges { vocab, merges } => TokenizerInfo::VocabMerges {
                vocab: vocab.display().to_string(),
                vocab_sha256: pytorrent_io::sha256_file(vocab)?,
                merges: merges.display().to_string(),
                merges_sha256: pytorrent_io::sha256_file(merges)?,
                vocab_size,
            },
        })
    }
}

/// The special tokens of a tokenizer, as packing and masking need them, read from what the
/// tokenizer does rather than from RoBERTa's names: its post-processor says how a text is
/// wrapped (`<s> … </s>`, `[CLS] … [SEP]`) and how a pair is joined (`</s></s>`, `[SEP]`);
/// its vocabulary has the padding and mask tokens (`<pad>`/`[PAD]`, `<mask>`/`[MASK]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialIds {
    /// The token before a text (`<s>`, `[CLS]`).
    pub bos: u32,
    /// The token after a text (`</s>`, `[SEP]`).
    pub eos: u32,
    /// Between the two texts of a pair, after the first one's own end (`</s>` for RoBERTa's
    /// `</s></s>`; nothing for BERT's single `[SEP]`).
    pub pair_middle: Vec<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    /// Every special token (never masked).
    pub all: Vec<u32>,
}

/// The names the padding and mask tokens go by.
const PAD_NAMES: [&str; 3] = ["<pad>", "[PAD]", "<|pad|>"];
const MASK_NAMES: [&str; 2] = ["<mask>", "[MASK]"];

impl SpecialIds {
    pub fn of(tok: &Tokenizer) -> Result<SpecialIds> {
        let probe = tok.encode("a", false)?;
        let n = probe.get_ids().len();
        let single = tok.post_process(probe.clone(), None, true)?;
        let ids = single.get_ids();
        let start = ids
            .windows(n.max(1))
            .position(|w| w == probe.get_ids())
            .unwrap_or(0);
        let (prefix, suffix) = (&ids[..start], &ids[start + n..]);
        let (&[bos], &[eos]) = (prefix, suffix) else {
            return Err(Error::Usage(format!(
                "the tokenizer wraps a text in {} start and {} end tokens (its post-processor); \
                 packing needs one of each (as <s> … </s> or [CLS] … [SEP]) to delimit records",
                prefix.len(),
                suffix.len()
            )));
        };
        let pair = tok.post_process(probe.clone(), Some(probe.clone()), true)?;
        let p = pair.get_ids();
        // [bos] a [eos] middle… a [eos]
        let middle = p
            .get(1 + n + 1..p.len().saturating_sub(n + 1))
            .unwrap_or_default()
            .to_vec();
        let added = tok.get_added_tokens_decoder();
        let find = |names: &[&str]| names.iter().find_map(|t| tok.token_to_id(t));
        let mut all: Vec<u32> = added
            .iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| *id)
            .chain([bos, eos])
            .collect();
        all.sort_unstable();
        all.dedup();
        Ok(SpecialIds {
            bos,
            eos,
            pair_middle: middle,
            pad: find(&PAD_NAMES),
            mask: find(&MASK_NAMES),
            all,
        })
    }

    /// The padding id, or an error saying why it is needed.
    pub fn require_pad(&self, why: &str) -> Result<u32> {
        self.pad.ok_or_else(|| {
            Error::Usage(format!(
                "the tokenizer has no padding token ({}), which {why} needs",
                PAD_NAMES.join(", ")
            ))
        })
    }

    /// The mask id, or an error saying that masking needs one.
    pub fn require_mask(&self) -> Result<u32> {
        self.mask.ok_or_else(|| {
            Error::Usage(format!(
                "the tokenizer has no mask token ({}), which static masking needs",
                MASK_NAMES.join(", ")
            ))
        })
    }
}

fn load_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Load {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Loads a `tokenizer.json` file, a folder holding one (or only `vocab.json` + `merges.txt`,
/// as some published RoBERTa models ship, e.g. PyTorrent's own), or a model id resolved in
/// the local Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`).
pub fn load(spec: &str) -> Result<Loaded> {
    // `tokenizers` panics on some malformed files (a decoder's JSON, a merge longer than its
    // buffer): that is a load error naming the file, not a crash.
    pytorrent_io::guard_decoder(|| load_unguarded(spec))
        .unwrap_or_else(|m| Err(load_err(Path::new(spec), m)))
}

fn load_unguarded(spec: &str) -> Result<Loaded> {
    let path = Path::new(spec);
    if path.is_file() {
        let tokenizer = from_file(path)?;
        return Ok(Loaded {
            tokenizer,
            source: Source::TokenizerJson(path.to_path_buf()),
        });
    }
    if path.is_dir() {
        return load_folder(path);
    }
    if spec.starts_with('.') || spec.starts_with('/') || spec.matches('/').count() > 1 {
        return Err(load_err(path, "no such file or folder"));
    }
    let folder = hub::snapshot_folder(spec, &["tokenizer.json", "vocab.json"])?;
    load_folder(&folder)
}

/// A `tokenizer.json` without the padding and truncation it may carry: a record is encoded
/// whole and unpadded (transformers' fast tokenizers likewise set both per call; a
/// sentence-transformers file pads every input to 128 otherwise).
fn from_file(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| load_err(path, e.to_string()))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(None)
        .map_err(|e| load_err(path, e.to_string()))?;
    Ok(tokenizer)
}

fn load_folder(dir: &Path) -> Result<Loaded> {
    if dir.join(pytorrent_io::atomic::INCOMPLETE_MARKER).is_file() {
        return Err(load_err(
            dir,
            "an incomplete tokenizer folder: the run that wrote it failed or was stopped; \
             train it again",
        ));
    }
    let tj = dir.join("tokenizer.json");
    if tj.is_file() {
        let tokenizer = from_file(&tj)?;
        return Ok(Loaded {
            tokenizer,
            source: Source::TokenizerJson(tj),
        });
    }
    let (vocab, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if !vocab.is_file() || !merges.is_file() {
        return Err(load_err(
            dir,
            "no tokenizer.json, and no vocab.json + merges.txt pair",
        ));
    }
    let bpe = BPE::from_file(&vocab.to_string_lossy(), &merges.to_string_lossy())
        .build()
        .map_err(|e| load_err(&vocab, e.to_string()))?;
    // Special tokens keep the ids the vocabulary gives them.
    let id = |t: &str| bpe.token_to_id(t);
    let (Some(cls), Some(sep)) = (id("<s>"), id("</s>")) else {
        return Err(load_err(
            &vocab,
            "vocabulary has no <s> and </s>: not a RoBERTa-style BPE",
        ));
    };
    let mut tok = roberta_pipeline(bpe)?;
    tok.with_post_processor(Some(PostProcessorWrapper::Roberta(
        RobertaProcessing::new(("</s>".into(), sep), ("<s>".into(), cls)).add_prefix_space(false),
    )));
    let present: Vec<AddedToken> = special_tokens()
        .into_iter()
        .filter(|t| tok.get_model().token_to_id(&t.content).is_some())
        .collect();
    tok.add_special_tokens(present)?;
    Ok(Loaded {
        tokenizer: into_tokenizer(tok)?,
        source: Source::VocabMerges { vocab, merges },
    })
}

/// The encoder for `tok`: the exact fast path of [`fast::FastEncoder`] for plain byte-level
/// BPE, `tokenizers` itself for anything else. Both give the same ids.
pub fn encoder(tok: &Tokenizer) -> Box<dyn Encoder + '_> {
    match fast::FastEncoder::new(tok) {
        Some(f) => Box::new(f),
        None => Box::new(tok),
    }
}

/// Batch encoding with the input order preserved.
pub trait Encoder: Sync {
    fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>>;

    /// Ids without special tokens and, per id, whether it begins a pre-token (a "word" for
    /// whole-word masking).
    fn encode_batch_words(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<bool>)>>;
}

impl Encoder for &Tokenizer {
    fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        <Tokenizer as Encoder>::encode_batch(self, texts, add_special_tokens)
    }

    fn encode_batch_words(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
        <Tokenizer as Encoder>::encode_batch_words(self, texts)
    }
}

impl Encoder for Tokenizer {
    fn encode_batch(&self, texts: &[&str], add_special_tokens: bool) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<tokenizers::EncodeInput> = texts.iter().map(|t| (*t).into()).collect();
        // Offsets are not needed: the fast path skips the char-offset map.
        let encodings = self.encode_batch_fast(inputs, add_special_tokens)?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    fn encode_batch_words(&self, texts: &[&str]) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
        let inputs: Vec<tokenizers::EncodeInput> = texts.iter().map(|t| (*t).into()).collect();
        // The fast path leaves word ids out, so this one pays for offsets.
        let encodings = std::ops::Deref::deref(self).encode_batch(inputs, false)?;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let mut prev = None;
                let starts = e
                    .get_word_ids()
                    .iter()
                    .map(|w| {
                        let start = w.is_none() || *w != prev;
                        prev = *w;
                        start
                    })
                    .collect();
                (e.get_ids().to_vec(), starts)
            })
            .collect())
    }
}

/// Number of merges of a BPE tokenizer (0 for other models).
/// The number of merges the tokenizer's files hold, read from the files: serialising the
/// loaded tokenizer instead walks every id up to the largest, so one entry at id 2^31 would
/// take gigabytes.
pub fn merges_in_source(source: &Source) -> usize {
    match source {
        Source::TokenizerJson(p) => std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["model"]["merges"].as_array().map(Vec::len))
            .unwrap_or(0),
        Source::VocabMerges { merges, .. } => std::fs::read_to_string(merges)
            .map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with("#version"))
                    .count()
            })
            .unwrap_or(0),
    }
}

/// The number of merges of a tokenizer made here (ids without gaps).
pub fn merges_count(tok: &Tokenizer) -> usize {
    let v: serde_json::Value =
        serde_json::from_str(&tok.to_string(false).unwrap_or_default()).unwrap_or_default();
    v["model"]["merges"].as_array().map_or(0, Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<String> {
        let mut v = Vec::new();
        for i in 0..200 {
            v.push(format!(
                "def function_{i}(self, value):\n    \"\"\"Return value plus {i}.\"\"\"\n    if value is None:\n        return {i}\n    return value + {i}\n"
            ));
        }
        v
    }

    #[test]
    fn roberta_layout_special_ids_and_newline_indent_tokens() {
        let tok = train(
            corpus().into_iter(),
            &TrainOptions {
                vocab_size: 400,
                min_frequency: 2,
                model_max_length: 512,
            },
        )
        .unwrap();
        for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
            assert_eq!(tok.token_to_id(t), Some(i as u32), "{t}");
        }
        // Records, not lines, are training sequences: newline + indentation merges form.
        assert!(tok.token_to_id("ĊĠĠĠ").is_some() || tok.token_to_id("ĊĠĠĠĠ").is_some());
        let ids = tok.encode_batch(&["return value"], true).unwrap();
        assert_eq!(ids[0].first(), Some(&0));
        assert_eq!(ids[0].last(), Some(&2));
        let text = tok.decode(&ids[0], true).unwrap();
        assert_eq!(text, "return value");
    }

    #[test]
    fn save_then_load_both_ways_gives_the_same_ids() {
        let dir = tempfile::tempdir().unwrap();
        let tok = train(
            corpus().into_iter(),
            &TrainOptions {
                vocab_size: 400,
                min_frequency: 2,
                model_max_length: 128,
            },
        )
        .unwrap();
        save(&tok, dir.path(), 128).unwrap();
        for f in OUTPUT_FILES {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
        let cfg: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.path().join("tokenizer_config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["model_max_length"], 128);
        let text = ["def function_7(self, value):\n    return value + <mask> 7"];
        let want = tok.encode_batch(&text, true).unwrap();
        let from_json = load(dir.path().to_str().unwrap()).unwrap();
        assert!(matches!(from_json.source, Source::TokenizerJson(_)));
        assert_eq!(from_json.tokenizer.encode_batch(&text, true).unwrap(), want);
        std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
        let from_pair = load(dir.path().to_str().unwrap()).unwrap();
        assert!(matches!(from_pair.source, Source::VocabMerges { .. }));
        assert_eq!(from_pair.tokenizer.encode_batch(&text, true).unwrap(), want);
        assert!(want[0].contains(&4), "<mask> is one token");
    }

    #[test]
    fn padding_and_truncation_in_a_tokenizer_file_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let tok = train(
            corpus().into_iter(),
            &TrainOptions {
                vocab_size: 400,
                min_frequency: 2,
                model_max_length: 128,
            },
        )
        .unwrap();
        save(&tok, dir.path(), 128).unwrap();
        // As sentence-transformers ships them: pad every input to 16, cut at 8.
        let path = dir.path().join("tokenizer.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["padding"] = serde_json::json!({"strategy": {"Fixed": 16}, "direction": "Right",
            "pad_to_multiple_of": null, "pad_id": 1, "pad_type_id": 0, "pad_token": "<pad>"});
        v["truncation"] = serde_json::json!({"max_length": 8, "strategy": "LongestFirst",
            "stride": 0, "direction": "Right"});
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let loaded = load(path.to_str().unwrap()).unwrap().tokenizer;
        let text = [
            "return value",
            "def function_7(self, value):\n    if value is None:\n        return 7\n    return value + 7",
        ];
        let ids = loaded.encode_batch(&text, true).unwrap();
        assert_eq!(ids, tok.encode_batch(&text, true).unwrap());
        assert!(ids[0].len() < 8 && ids[1].len() > 16, "{ids:?}");
    }

    #[test]
    fn corpus_training_equals_the_trainers_own_feed() {
        let root =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data-samples/corpus");
        let files = pytorrent_corpus::discover(&[root]).unwrap();
        let read = pytorrent_corpus::ReadOptions {
            chunk_bytes: 8192,
            ..Default::default()
        };
        for (view, vocab) in [
            (pytorrent_corpus::TextView::Code, 1200),
            (pytorrent_corpus::TextView::NlPlusCode, 900),
        ] {
            let opts = TrainOptions {
                vocab_size: vocab,
                min_frequency: 2,
                model_max_length: 512,
            };
            let train_only = pytorrent_corpus::Partitions::only(pytorrent_corpus::Partition::Train);
            let sel = train_corpus::Selection {
                source: Some(pytorrent_corpus::TextSource::View(view)),
                partitions: train_only.clone(),
                rule: Default::default(),
            };
            let (ours, _, counts) =
                train_from_corpus(&files, &read, &pytorrent_io::Silent, &sel, &opts).unwrap();
            let (reference, _, text_counts) = pytorrent_corpus::texts::with_texts(
                &files,
                &read,
                &pytorrent_corpus::TextSource::View(view),
                &train_only,
                &Default::default(),
                &pytorrent_io::Silent,
                |texts| train(texts.map(|(_, t)| t), &opts).unwrap(),
            )
            .unwrap();
            assert_eq!(counts.texts.texts, text_counts.texts);
            assert_eq!(
                ours.to_string(false).unwrap(),
                reference.to_string(false).unwrap(),
                "{view:?}: same tokenizer.json byte for byte"
            );
        }
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = load(dir.path().to_str().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no tokenizer.json"), "{e}");
        let e = load("./does/not/exist").err().unwrap().to_string();
        assert!(e.contains("no such file"), "{e}");
    }
}
