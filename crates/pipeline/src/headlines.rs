//! Each stage's headline figures, for the terminal and `run --json`: what a user reads first
//! (records written, compression, loss, accuracy, MRR beside BM25), from the same stamped
//! reports the HTML page draws.

use std::collections::BTreeMap;

use pytorrent_corpus::stats::CorpusStats;
use pytorrent_eval::fill_mask::FillMaskEvalReport;
use pytorrent_eval::overlap::OverlapReport;
use pytorrent_eval::retrieval::RetrievalReport;
use pytorrent_extract::ExtractReport;
use pytorrent_finetune::FinetuneReport;
use pytorrent_pack::PackReport;
use pytorrent_pretrain::PretrainReport;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::reports::{ClozeStageReport, Compression, TokenizerReport};
use crate::stage::Stage;
use crate::state::Stamp;

/// One stage's figures: a line for people, the numbers for machines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Headline {
    pub stage: String,
    pub text: String,
    pub figures: BTreeMap<String, Value>,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn typed<T: serde::de::DeserializeOwned>(stamp: &Stamp) -> Option<T> {
    T::deserialize(&stamp.report).ok()
}

/// The headline of each stamped stage, in running order (stages whose report does not read
/// as their type have none: the HTML page reports that).
pub fn of(stamps: &[(Stage, Stamp)]) -> Vec<Headline> {
    stamps
        .iter()
        .filter_map(|(stage, st)| {
            let (text, figures) = headline(*stage, st)?;
            Some(Headline {
                stage: stage.name().to_string(),
                text,
                figures,
            })
        })
        .collect()
}

fn headline(stage: Stage, st: &Stamp) -> Option<(String, BTreeMap<String, Value>)> {
    let mut f = BTreeMap::new();
    let text = match stage {
        Stage::Extract => {
            let r: ExtractReport = typed(st)?;
            let records: u64 = r.records.values().flat_map(|p| p.values()).sum();
            let dups: u64 = r.duplicates.values().flat_map(|p| p.values()).sum();
            let vendored: u64 = r.vendored.values().sum();
            f.insert("packages".into(), json!(r.packages));
            f.insert("records".into(), json!(records));
            f.insert("duplicates".into(), json!(dups));
            f.insert("vendored_files".into(), json!(vendored));
            f.insert("failed_packages".into(), json!(r.failed_packages.len()));
            format!(
                "{records} records from {} packages ({dups} duplicates and {vendored} vendored \
                 files left out, {} packages failed)",
                r.packages,
                r.failed_packages.len()
            )
        }
        Stage::Stats => {
            let r: CorpusStats = typed(st)?;
            f.insert("records".into(), json!(r.records));
            f.insert("distinct_packages".into(), json!(r.distinct_packages));
            format!("{} records of {} packages", r.records, r.distinct_packages)
        }
        Stage::Tokenizer => {
            let r: TokenizerReport = typed(st)?;
            f.insert("vocab_size".into(), json!(r.train.vocab_size));
            let mut parts = Vec::new();
            for (name, c) in r.compression.iter() {
                if let Compression::Measured(e) = c {
                    if let Some(res) = e.results.first() {
                        f.insert(
                            format!("bytes_per_token_{name}"),
                            json!(res.bytes_per_token),
                        );
                        parts.push(format!("{name} {:.2}", res.bytes_per_token));
                    }
                }
            }
            format!(
                "vocabulary {}; bytes per token: {}",
                r.train.vocab_size,
                if parts.is_empty() {
                    "no partition measured".to_string()
                } else {
                    parts.join(", ")
                }
            )
        }
        Stage::Pack => {
            let r: PackReport = typed(st)?;
            let parts: Vec<String> = r
                .partitions
                .iter()
                .map(|p| {
                    f.insert(format!("rows_{}", p.partition), json!(p.rows));
                    f.insert(format!("tokens_{}", p.partition), json!(p.tokens));
                    format!("{} {} rows", p.partition, p.rows)
                })
                .collect();
            format!("{}-token rows: {}", r.seq_len, parts.join(", "))
        }
        Stage::Pretrain => {
            let r: PretrainReport = typed(st)?;
            f.insert("steps".into(), json!(r.steps));
            f.insert("train_loss".into(), json!(r.train_loss));
            f.insert("last_loss".into(), json!(r.last_loss));
            let valid = r.valid.as_ref().map_or(String::new(), |v| {
                f.insert("valid_loss".into(), json!(v.loss));
                f.insert("valid_accuracy".into(), json!(v.acc));
                format!(
                    "; valid loss {:.3}, masked-token accuracy {}",
                    v.loss,
                    pct(v.acc)
                )
            });
            format!(
                "{} steps; train loss {} (mean of the last {} steps){valid}",
                r.steps,
                r.train_loss.map_or("-".into(), |l| format!("{l:.3}")),
                r.train_loss_steps
            )
        }
        Stage::Finetune => {
            let r: FinetuneReport = typed(st)?;
            f.insert("steps".into(), json!(r.steps));
            f.insert("train_loss".into(), json!(r.train_loss));
            f.insert("valid_mrr_init".into(), json!(r.valid_mrr_init));
            f.insert("valid_mrr".into(), json!(r.valid_mrr));
            let mrr = match (r.valid_mrr_init, r.valid_mrr) {
                (Some(a), Some(b)) => format!(
                    "; valid MRR {b:.3} from {a:.3} before (pool of {} pairs)",
                    r.valid_pairs
                ),
                _ => String::new(),
            };
            format!(
                "{} steps on {} pairs; train loss {}{mrr}",
                r.steps,
                r.train_pairs,
                r.train_loss.map_or("-".into(), |l| format!("{l:.3}"))
            )
        }
        Stage::FillMask => {
            let r: FillMaskEvalReport = typed(st)?;
            f.insert("top1".into(), json!(r.overall.top1));
            f.insert("top5".into(), json!(r.overall.top5));
            f.insert("prompts".into(), json!(r.prompts));
            format!(
                "top-1 {}, top-5 {} on {} prompts{}",
                pct(r.overall.top1),
                pct(r.overall.top5),
                r.prompts,
                r.failed
                    .as_ref()
                    .map_or(String::new(), |w| format!(" (gate failed: {w})"))
            )
        }
        Stage::Cloze => {
            let r: ClozeStageReport = typed(st)?;
            f.insert("items".into(), json!(r.score.items));
            f.insert("accuracy".into(), json!(r.score.accuracy));
            format!(
                "accuracy {} on {} items",
                r.score.accuracy.map_or("-".into(), pct),
                r.score.items
            )
        }
        Stage::Retrieval => {
            let r: RetrievalReport = typed(st)?;
            let p = &r.pytorrent;
            let mrr = |s: &pytorrent_eval::retrieval::Scores| s.mrr.unwrap_or(0.0);
            f.insert("system".into(), json!(p.system));
            f.insert("mrr".into(), json!(p.scores.mrr));
            let mut others = Vec::new();
            for (name, s) in &p.baselines {
                f.insert(format!("mrr_{name}"), json!(s.mrr));
                others.push(format!("{name} {:.3}", mrr(s)));
            }
            format!(
                "MRR {:.3} ({}, {} queries){}",
                mrr(&p.scores),
                p.system,
                p.queries,
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" beside {}", others.join(", "))
                }
            )
        }
        Stage::Overlap => {
            let r: OverlapReport = typed(st)?;
            f.insert("leaked".into(), json!(r.leaked.count));
            f.insert("leaked_share".into(), json!(r.leaked.share));
            format!(
                "{} of {} evaluation records ({}) have a copy in training ({} exact, {} near)",
                r.leaked.count,
                r.eval_records,
                pct(r.leaked.share),
                r.exact.count,
                r.near.count
            )
        }
        _ => return None,
    };
    Some((text, f))
}
