//! `configs/README.md` is the schema of every stage's config. These tests hold it to the code:
//! each example section deserialises into its stage's config with no key left unread, each
//! documented key is a key of the config and the other way round, and every flag of the
//! subcommand is a key.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The stage sections and how to read one: deserialise, then serialise again (keys in).
type Reader = fn(toml::Value) -> Result<BTreeSet<String>, String>;

fn read<T: DeserializeOwned + Serialize>(v: toml::Value) -> Result<BTreeSet<String>, String> {
    let config: T = v.try_into().map_err(|e: toml::de::Error| e.to_string())?;
    let json = serde_json::to_value(&config).map_err(|e| e.to_string())?;
    Ok(json
        .as_object()
        .ok_or("a config serialises to a table")?
        .keys()
        .cloned()
        .collect())
}

fn stages() -> Vec<(&'static str, Reader)> {
    use pytorrent_corpus as corpus;
    use pytorrent_tokenizer as tok;
    vec![
        ("corpus.validate", read::<corpus::validate::ValidateConfig>),
        ("corpus.stats", read::<corpus::stats::StatsConfig>),
        ("corpus.filter", read::<corpus::filter::FilterConfig>),
        ("corpus.convert", read::<corpus::convert::ConvertConfig>),
        (
            "corpus.dedup",
            read::<pytorrent_extract::staged::MergeConfig>,
        ),
        ("fetch", read::<pytorrent_fetch::FetchConfig>),
        ("extract", read::<pytorrent_extract::ExtractConfig>),
        ("tokenizer.train", read::<tok::TrainConfig>),
        ("tokenizer.encode", read::<tok::encode::EncodeConfig>),
        ("tokenizer.decode", read::<tok::decode::DecodeConfig>),
        ("tokenizer.inspect", read::<tok::inspect::InspectConfig>),
        ("tokenizer.eval", read::<tok::eval::EvalConfig>),
        ("pack", read::<pytorrent_pack::PackConfig>),
        (
            "shards.verify",
            read::<pytorrent_pack::verify::VerifyConfig>,
        ),
        (
            "shards.inspect",
            read::<pytorrent_pack::inspect::InspectConfig>,
        ),
        ("shards.merge", read::<pytorrent_pack::merge::MergeConfig>),
        ("pretrain", read::<pytorrent_pretrain::PretrainConfig>),
        ("finetune", read::<pytorrent_finetune::FinetuneConfig>),
        (
            "fill_mask",
            read::<pytorrent_model::fill_mask::FillMaskConfig>,
        ),
        ("embed", read::<pytorrent_model::embed::EmbedConfig>),
        (
            "eval.fill_mask",
            read::<pytorrent_eval::fill_mask::FillMaskEvalConfig>,
        ),
        (
            "eval.overlap",
            read::<pytorrent_eval::overlap::OverlapConfig>,
        ),
        (
            "eval.retrieval",
            read::<pytorrent_eval::retrieval::RetrievalConfig>,
        ),
    ]
}

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/README.md");
    std::fs::read_to_string(path).expect("configs/README.md")
}

/// Every ```toml block of the page, merged into one table of sections.
fn examples(text: &str) -> toml::Table {
    let mut all = toml::Table::new();
    for block in text.split("```toml\n").skip(1) {
        let body = block.split("```").next().expect("a closed block");
        let table: toml::Table = body.parse().unwrap_or_else(|e| panic!("{e}\n{body}"));
        for (k, v) in table {
            match (all.get_mut(&k), v) {
                (Some(toml::Value::Table(have)), toml::Value::Table(more)) => have.extend(more),
                (_, v) => {
                    all.insert(k, v);
                }
            }
        }
    }
    all
}

/// The section of a dotted name (`corpus.stats` → `examples["corpus"]["stats"]`), without the
/// sections of stages below it (`[eval.cloze.make]` is not a key of `[eval.cloze]`).
fn section(all: &toml::Table, name: &str) -> Option<toml::Value> {
    let mut parts = name.split('.');
    let mut v = all.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    let mut v = v.clone();
    if let Some(t) = v.as_table_mut() {
        let nested: Vec<String> = stages()
            .iter()
            .filter_map(|(s, _)| s.strip_prefix(&format!("{name}.")).map(str::to_string))
            .collect();
        t.retain(|k, _| !nested.iter().any(|n| n == k));
    }
    Some(v)
}

/// Keys in the first column of a table: `| `key` | …`.
fn table_keys(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// The keys the page documents for a section: its own table, and the shared groups it names.
fn documented(text: &str, name: &str) -> BTreeSet<String> {
    let heading = format!("## `[{name}]`");
    let start = text
        .find(&heading)
        .unwrap_or_else(|| panic!("no {heading}"));
    let body = &text[start..];
    let body = &body[..body[3..].find("\n## ").map_or(body.len(), |i| i + 3)];
    let mut keys = table_keys(body);
    let group = |title: &str| {
        let g = &text[text.find(title).expect("shared group")..];
        table_keys(
            &g[..g
                .find("\n\n**")
                .or_else(|| g.find("\n## "))
                .unwrap_or(g.len())],
        )
    };
    if body.contains("Corpus inputs") {
        keys.extend(group("**Corpus inputs**"));
    }
    if body.contains("Model keys") {
        keys.extend(group("**Model**"));
    }
    keys
}

#[test]
fn every_example_deserialises_and_every_key_is_documented() {
    let text = readme();
    let all = examples(&text);
    for (name, read) in stages() {
        let example = section(&all, name).unwrap_or_else(|| panic!("no example of [{name}]"));
        let given: BTreeSet<String> = example
            .as_table()
            .expect("a section is a table")
            .keys()
            .cloned()
            .collect();
        let keys = read(example.clone()).unwrap_or_else(|e| panic!("[{name}]: {e}"));
        let unread: Vec<_> = given.difference(&keys).collect();
        assert!(
            unread.is_empty(),
            "[{name}]: keys the config does not have: {unread:?}"
        );
        assert_eq!(documented(&text, name), keys, "[{name}]: documented keys");
    }
}

#[test]
fn every_flag_of_a_subcommand_is_a_key_of_its_config() {
    let text = readme();
    let all = examples(&text);
    let keys: BTreeMap<&str, BTreeSet<String>> = stages()
        .into_iter()
        .map(|(name, read)| {
            let example = section(&all, name).expect("checked above");
            (name, read(example).expect("checked above"))
        })
        .collect();
    let cli = crate::Cli::command();
    let mut checked = 0;
    let mut visit = vec![(String::new(), &cli)];
    while let Some((path, cmd)) = visit.pop() {
        for sub in cmd.get_subcommands() {
            let name = sub.get_name().replace('-', "_");
            let full = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            visit.push((full, sub));
        }
        let Some(config) = keys.get(path.as_str()) else {
            continue;
        };
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "json" | "quiet" | "help" | "version") {
                continue;
            }
            assert!(
                config.contains(id),
                "`{path}` flag {id} is not a key of its config"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, keys.len(), "every stage is a subcommand");
}

#[test]
fn every_flag_has_a_help_line() {
    let cli = crate::Cli::command();
    let mut visit = vec![(String::from("pytorrent"), &cli)];
    let mut missing = Vec::new();
    while let Some((path, cmd)) = visit.pop() {
        for sub in cmd.get_subcommands() {
            visit.push((format!("{path} {}", sub.get_name()), sub));
        }
        for arg in cmd.get_arguments() {
            let empty = arg
                .get_help()
                .is_none_or(|h| h.to_string().trim().is_empty());
            if empty && !matches!(arg.get_id().as_str(), "help" | "version") {
                missing.push(format!("{path} --{}", arg.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "flags without help: {missing:?}");
}

/// The config a command's flags give when only its required arguments are passed.
fn from_flags<T: clap::Args + clap::FromArgMatches>(args: &[&str]) -> T {
    let cmd = T::augment_args(clap::Command::new("pytorrent"));
    let matches = cmd
        .try_get_matches_from(std::iter::once("pytorrent").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Where a stage's flags are derived from its config, every default a flag leaves is the
/// default a pipeline file's missing key takes: one definition, checked both ways in.
#[test]
fn flag_defaults_are_the_config_defaults() {
    fn same<T>(args: &[&str], keys: &str)
    where
        T: clap::Args + clap::FromArgMatches + DeserializeOwned + Serialize,
    {
        let flags = serde_json::to_value(from_flags::<T>(args)).unwrap();
        let file: T = toml::from_str(keys).unwrap_or_else(|e| panic!("{keys}: {e}"));
        let file = serde_json::to_value(file).unwrap();
        assert_eq!(flags, file, "{}", std::any::type_name::<T>());
    }
    use pytorrent_corpus as corpus;
    let input = r#"inputs = ["in"]"#;
    same::<corpus::validate::ValidateConfig>(&["in"], input);
    same::<corpus::stats::StatsConfig>(&["in"], input);
    same::<corpus::filter::FilterConfig>(&["in", "--out", "o"], &format!("{input}\nout = \"o\""));
    same::<corpus::convert::ConvertConfig>(&["in", "--out", "o"], &format!("{input}\nout = \"o\""));
    same::<pytorrent_tokenizer::TrainConfig>(
        &["in", "--out", "o"],
        &format!("{input}\nout = \"o\""),
    );
    same::<pytorrent_tokenizer::eval::EvalConfig>(
        &["in", "--tokenizer", "t"],
        &format!("{input}\ntokenizer = \"t\""),
    );
    same::<pytorrent_pack::PackConfig>(
        &["in", "--tokenizer", "t", "--out", "o"],
        &format!("{input}\ntokenizer = \"t\"\nout = \"o\""),
    );
    same::<pytorrent_extract::ExtractConfig>(
        &["in", "--out", "o"],
        &format!("{input}\nout = \"o\""),
    );
    same::<pytorrent_fetch::FetchConfig>(&["six", "--out", "o"], "names = [\"six\"]\nout = \"o\"");
    same::<pytorrent_pretrain::PretrainConfig>(
        &["s", "--out", "o", "--model-config", "m"],
        "shards = \"s\"\nout = \"o\"\nmodel_config = \"m\"",
    );
    same::<pytorrent_finetune::FinetuneConfig>(
        &["in", "--init", "m", "--out", "o"],
        &format!("{input}\ninit = \"m\"\nout = \"o\""),
    );
    same::<pytorrent_tokenizer::encode::EncodeConfig>(&["--tokenizer", "t"], "tokenizer = \"t\"");
    same::<pytorrent_model::fill_mask::FillMaskConfig>(&["--model", "m"], "model = \"m\"");
    same::<pytorrent_model::embed::EmbedConfig>(
        &["--model", "m", "--out", "o.npy"],
        "model = \"m\"\nout = \"o.npy\"",
    );
    same::<pytorrent_eval::fill_mask::FillMaskEvalConfig>(&["--model", "m"], "model = \"m\"");
    same::<pytorrent_eval::cloze::ClozeMakeConfig>(
        &["in", "--kind", "all", "--out", "o"],
        &format!("{input}\nkind = \"all\"\nout = \"o\""),
    );
}

/// The keys a stage names as paths it reads or writes are keys of its config: a renamed key
/// would otherwise be neither resolved against the pipeline file nor hashed.
#[test]
fn every_path_key_of_a_stage_is_a_key_of_its_config() {
    use pytorrent_io::stage::Stage;
    fn keys<S: Stage>(name: &str) -> (String, Vec<&'static str>) {
        let mut k = S::READS.to_vec();
        k.extend(S::READS_OR_ID);
        k.extend(S::WRITES);
        (name.to_string(), k)
    }
    let text = readme();
    let all = examples(&text);
    let readers: BTreeMap<&str, Reader> = stages().into_iter().collect();
    for (name, path_keys) in [
        keys::<pytorrent_fetch::Fetch>("fetch"),
        keys::<pytorrent_extract::Extract>("extract"),
        keys::<pytorrent_corpus::stats::Stats>("corpus.stats"),
        keys::<pytorrent_corpus::validate::Validate>("corpus.validate"),
        keys::<pytorrent_tokenizer::train_corpus::Train>("tokenizer.train"),
        keys::<pytorrent_tokenizer::eval::Eval>("tokenizer.eval"),
        keys::<pytorrent_pack::Pack>("pack"),
        keys::<pytorrent_pack::verify::Verify>("shards.verify"),
        keys::<pytorrent_pretrain::Pretrain>("pretrain"),
        keys::<pytorrent_finetune::Finetune>("finetune"),
        keys::<pytorrent_eval::fill_mask::FillMaskEval>("eval.fill_mask"),
        keys::<pytorrent_eval::retrieval::Retrieval>("eval.retrieval"),
        keys::<pytorrent_eval::overlap::Overlap>("eval.overlap"),
    ] {
        let example = section(&all, &name).unwrap_or_else(|| panic!("no [{name}] example"));
        let config = readers[name.as_str()](example).unwrap();
        for k in path_keys {
            assert!(
                config.contains(k),
                "[{name}] `{k}` is not a key of its config"
            );
        }
    }
}
