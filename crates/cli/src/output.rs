//! How the CLI talks to people and machines: progress bars on stderr (hidden with `--quiet`
//! or when stderr is not a terminal), logs on stderr, `--json` documents on stdout.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Flags every subcommand shares for output.
#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {
    /// Machine-readable result on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

impl OutputArgs {
    /// Prints a line for people on stderr unless quiet.
    pub fn log(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    pub fn progress(&self, what: &str) -> BarProgress {
        let show = !self.quiet && std::io::stderr().is_terminal();
        let bar = if show {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        BarProgress { bar }
    }
}

impl OutputArgs {
    /// A bar counting items (packages, files) rather than bytes.
    pub fn count_progress(&self, what: &str, total: u64, unit: &str) -> ProgressBar {
        let show = !self.quiet && std::io::stderr().is_terminal();
        let bar = if show {
            ProgressBar::new(total)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{prefix}} {{bar:30}} {{pos}}/{{len}} {unit} eta {{eta}}"
            ))
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar
    }
}

/// indicatif behind the corpus crate's progress hook.
pub struct BarProgress {
    bar: ProgressBar,
}

impl pytorrent_corpus::Progress for BarProgress {
    fn set_total(&self, bytes: Option<u64>) {
        if let Some(b) = bytes {
            self.bar.set_length(b);
        }
    }
    fn set_position(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Writes `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
