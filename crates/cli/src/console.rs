//! How the CLI talks to people and machines: a [`Console`] reporter draws progress bars on
//! stderr (hidden with `--quiet` or when stderr is not a terminal) and prints logs and
//! warnings there; reports go to stdout as JSON with `--json`.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pytorrent_io::stage::Stage;
use pytorrent_io::{Reporter, Unit};

use crate::error::CliError;

/// Flags every subcommand shares for output.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Machine-readable result on stdout (logs stay on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress bar and no summary on stderr (errors and warnings are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

/// The reporter of the command line.
pub struct Console {
    out: OutputArgs,
    bar: Mutex<Option<ProgressBar>>,
}

impl Console {
    pub fn new(out: &OutputArgs) -> Console {
        Console {
            out: out.clone(),
            bar: Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().expect("not poisoned").as_ref() {
            f(b);
        }
    }

    /// Prints on stderr without tearing a bar that is being drawn.
    fn eprint(&self, line: &str) {
        let bar = self.bar.lock().expect("not poisoned");
        match bar.as_ref() {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// A command's report: its summary on stderr (unless quiet), and JSON on stdout with
    /// `--json`. Returns the exit code for a report that is a success.
    pub fn summary<R: serde::Serialize + std::fmt::Display>(
        &self,
        report: &R,
    ) -> Result<ExitCode, CliError> {
        if !self.out.quiet {
            eprint!("{report}");
        }
        if self.out.json {
            print_json(report)?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// [`Console::summary`] of a stage's report, then its exit code: a data error when the
    /// stage says its report is a failure ([`Stage::gate_failure`], the one place that decides).
    pub fn summary_of<S: Stage>(&self, report: &S::Report) -> Result<ExitCode, CliError>
    where
        S::Report: std::fmt::Display,
    {
        self.summary(report)?;
        Ok(gate::<S>(report))
    }

    /// [`Console::result`] of a stage's report, then its exit code as for
    /// [`Console::summary_of`].
    pub fn result_of<S: Stage>(&self, report: &S::Report) -> Result<ExitCode, CliError>
    where
        S::Report: std::fmt::Display,
    {
        self.result(report)?;
        Ok(gate::<S>(report))
    }

    /// A command whose report is its result: JSON with `--json`, else the text, on stdout.
    pub fn result<R: serde::Serialize + std::fmt::Display>(
        &self,
        report: &R,
    ) -> Result<ExitCode, CliError> {
        if self.out.json {
            print_json(report)?;
        } else {
            write_stdout(&report.to_string())?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The exit code of a stage whose report is out: success, or a data error with the stage's
/// reason on standard error.
pub fn gate<S: Stage>(report: &S::Report) -> ExitCode {
    match S::gate_failure(report) {
        Some(why) => {
            eprintln!("error: {why}");
            ExitCode::from(pytorrent_io::ErrorKind::Data.exit_code())
        }
        None => ExitCode::SUCCESS,
    }
}

impl Reporter for Console {
    fn begin(&self, what: &str, unit: Unit, total: Option<u64>) {
        if self.out.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = match unit {
            Unit::Bytes => "{prefix} {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}".to_string(),
            Unit::Items(noun) => format!("{{prefix}} {{bar:30}} {{pos}}/{{len}} {noun} {{per_sec}} eta {{eta}}"),
        };
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().expect("not poisoned") = Some(bar);
    }
    fn set_total(&self, total: u64) {
        self.with_bar(|b| b.set_length(total));
    }
    fn set_position(&self, done: u64) {
        self.with_bar(|b| b.set_position(done));
    }
    fn advance(&self, n: u64) {
        self.with_bar(|b| b.inc(n));
    }
    fn end(&self) {
        if let Some(b) = self.bar.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
    fn log(&self, line: &str) {
        if !self.out.quiet {
            self.eprint(line);
        }
    }
    fn warn(&self, line: &str) {
        self.eprint(&format!("warning: {line}"));
    }
    fn problem(&self, line: &str) {
        self.eprint(line);
    }
}

/// Writes text on stdout.
pub fn write_stdout(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::stdout)
}

/// Writes `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).expect("reports serialise");
    text.push('\n');
    write_stdout(&text)
}
