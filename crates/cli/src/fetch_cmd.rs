//! `pytorrent fetch`: package names → metadata documents and release archives from the index
//! pip is configured with.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use pytorrent_fetch::FetchConfig;
use pytorrent_io::size::ByteSize;

use crate::console::{Console, OutputArgs};
use crate::error::CliError;

fn defaults() -> FetchConfig {
    FetchConfig::new(Vec::new(), PathBuf::new())
}

#[derive(Args)]
pub struct FetchArgs {
    /// Package names.
    names: Vec<String>,
    /// A file of package names, one a line (# comments).
    #[arg(long)]
    from_file: Option<PathBuf>,
    /// Output folder: Package_Metadata/pypi_packages/<name>.json (anaconda_packages/ from
    /// conda channels) and packages/<archive>.
    #[arg(long)]
    out: PathBuf,
    /// Release to fetch (default: the latest).
    #[arg(long)]
    version: Option<String>,
    /// Simple-index URL (default: PYTORRENT_INDEX_URL, PIP_INDEX_URL, pip.conf, else pip's own
    /// default).
    #[arg(long)]
    index_url: Option<String>,
    /// JSON API base (default: the index URL with a trailing /simple made /pypi).
    #[arg(long)]
    json_api_url: Option<String>,
    /// Downloads at once.
    #[arg(long, default_value_t = defaults().jobs)]
    jobs: usize,
    /// Retries of a failed request (network errors, 429, 5xx), with doubling back-off.
    #[arg(long, default_value_t = defaults().retries)]
    retries: u32,
    /// Seconds before a request is given up.
    #[arg(long, default_value_t = defaults().timeout)]
    timeout: u64,
    /// Opt-out list: these packages are not fetched.
    #[arg(long)]
    opt_out: Option<PathBuf>,
    /// Every project the index lists, instead of names.
    #[arg(long)]
    all: bool,
    /// The newest release uploaded on or before this date (YYYY-MM-DD or
    /// YYYY-MM-DDTHH:MM:SS, UTC): the index as it was then.
    #[arg(long)]
    as_of: Option<String>,
    /// Download metadata documents again even when an earlier run kept them.
    #[arg(long)]
    refresh_metadata: bool,
    /// Requests per second at most, over all downloads.
    #[arg(long)]
    rate: Option<f64>,
    /// Split the packages among N tasks by a hash of the name (default:
    /// SLURM_ARRAY_TASK_COUNT).
    #[arg(long)]
    num_tasks: Option<usize>,
    /// This task's index, 0-based (default: Slurm's or a Kubernetes Indexed Job's).
    #[arg(long)]
    task_index: Option<usize>,
    /// Fetch from this conda channel (a URL, or a name .condarc's channel_alias or
    /// custom_channels resolve) instead of the package index; repeat for more, first wins.
    #[arg(long = "channel", value_name = "URL")]
    channels: Vec<String>,
    /// Fetch from conda channels; without --channel, those .condarc lists.
    #[arg(long)]
    conda: bool,
    /// Conda subdir to read (default: noarch and this machine's, e.g. linux-64); repeat for
    /// more.
    #[arg(long = "subdir", value_name = "SUBDIR")]
    subdirs: Vec<String>,
    /// Largest metadata document or project listing accepted (e.g. 64M): a server that sends
    /// more is refused.
    #[arg(long, default_value_t = defaults().max_metadata_bytes)]
    max_metadata_bytes: ByteSize,
    /// Largest archive accepted when its metadata gives no size (e.g. 2G); one larger than the
    /// size its metadata gives is refused whatever this says.
    #[arg(long, default_value_t = defaults().max_archive_bytes)]
    max_archive_bytes: ByteSize,
    /// Largest conda repodata.json or channeldata.json accepted.
    #[arg(long, default_value_t = defaults().max_repodata_bytes)]
    max_repodata_bytes: ByteSize,
    #[command(flatten)]
    output: OutputArgs,
}

impl From<&FetchArgs> for FetchConfig {
    fn from(a: &FetchArgs) -> Self {
        FetchConfig {
            names: a.names.clone(),
            from_file: a.from_file.clone(),
            out: a.out.clone(),
            version: a.version.clone(),
            index_url: a.index_url.clone(),
            json_api_url: a.json_api_url.clone(),
            jobs: a.jobs,
            retries: a.retries,
            timeout: a.timeout,
            opt_out: a.opt_out.clone(),
            all: a.all,
            as_of: a.as_of.clone(),
            refresh_metadata: a.refresh_metadata,
            rate: a.rate,
            num_tasks: a.num_tasks,
            task_index: a.task_index,
            channels: a.channels.clone(),
            conda: a.conda,
            subdirs: a.subdirs.clone(),
            max_metadata_bytes: a.max_metadata_bytes,
            max_archive_bytes: a.max_archive_bytes,
            max_repodata_bytes: a.max_repodata_bytes,
        }
    }
}

pub fn run(a: FetchArgs) -> Result<ExitCode, CliError> {
    let console = Console::new(&a.output);
    let report = pytorrent_fetch::run(&(&a).into(), &console)?;
    console.summary_of::<pytorrent_fetch::Fetch>(&report)
}
