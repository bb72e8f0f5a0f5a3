//! Every pipeline file in `configs/` plans: each table is a stage the planner knows, with
//! keys its config has, and every path a later stage reads is filled in.

use std::path::Path;

use pytorrent_pipeline::plan::{plan, Task};
use pytorrent_pipeline::{PipelineFile, Stage};

fn load(name: &str) -> PipelineFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(name);
    PipelineFile::load(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn the_sample_pipeline_plans_every_stage_from_the_samples() {
    let file = load("sample.toml");
    let jobs = plan(&file).unwrap();
    let stages: Vec<Stage> = jobs.iter().map(|j| j.stage).collect();
    assert_eq!(
        stages,
        [
            Stage::Extract,
            Stage::Stats,
            Stage::Tokenizer,
            Stage::Pack,
            Stage::Pretrain,
            Stage::Finetune,
            Stage::FillMask,
            Stage::Cloze,
            Stage::Retrieval,
            Stage::Overlap
        ]
    );
    // Offline: every input is in the repository.
    for job in &jobs {
        for input in &job.inputs {
            assert!(input.exists(), "{}: {}", job.stage, input.display());
        }
    }
    let out = &file.out;
    for job in &jobs {
        match &job.task {
            Task::Pack(c) => {
                assert_eq!(c.input.inputs, [out.join("corpus/both")]);
                assert_eq!(Path::new(&c.tokenizer), out.join("tokenizer"));
            }
            Task::Pretrain(c) => assert_eq!(c.shards, out.join("shards")),
            // Fine-tuning starts from the pretrained model, on the scenario's pairs; the
            // retrieval check scores its output beside that starting model.
            Task::Finetune(c) => {
                assert_eq!(Path::new(&c.init), out.join("model"));
                assert_eq!(c.input.inputs, [out.join("corpus/both")]);
                assert_eq!(c.out, out.join("retrieval-model"));
            }
            Task::Retrieval(c) => {
                assert_eq!(
                    c.model.as_deref().map(Path::new),
                    Some(out.join("retrieval-model").as_path())
                );
                assert_eq!(c.baseline_models, [out.join("model").display().to_string()]);
            }
            Task::Stats(c) => {
                assert_eq!(c.input.inputs, [out.join("corpus")]);
                assert!(c.metadata[0].ends_with("data-samples/packages/Package_Metadata"));
            }
            _ => {}
        }
    }
}

#[test]
fn the_full_pytorrent_pipeline_plans_with_the_published_shape() {
    let file = load("pytorrent.toml");
    let jobs = plan(&file).unwrap();
    assert_eq!(jobs.len(), 10);
    for job in &jobs {
        match &job.task {
            Task::Extract(c) => {
                assert_eq!(c.inputs, [file.out.join("fetch/packages")]);
                assert_eq!(c.scenario.len(), 3);
            }
            Task::Tokenizer { train, .. } => assert_eq!(train.vocab_size, 50265),
            Task::Pack(c) => assert_eq!(c.settings.seq_len, 512),
            Task::FillMask(c) => assert_eq!(
                Path::new(&c.model.model),
                file.out.join("model"),
                "the checks read the trained model"
            ),
            _ => {}
        }
    }
}
