//! How a stage tells its caller what it is doing: progress (in bytes or items), log lines and
//! warnings. Stage crates call a [`Reporter`]; the command line draws bars and prints, a
//! pipeline may record, a test may stay [`Silent`]. No stage depends on a terminal library.

/// What a phase of work is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes of input read (compressed size on disk where the input is compressed).
    Bytes,
    /// Things with a name: `packages`, `texts`, `rows`.
    Items(&'static str),
}

/// Receives progress, log lines and warnings from a running stage. Every method has a
/// do-nothing default, so an implementation takes only what it shows.
pub trait Reporter: Sync {
    /// A phase of work begins (`what` names it), with its total when known.
    fn begin(&self, _what: &str, _unit: Unit, _total: Option<u64>) {}
    /// The total of the current phase became known or changed.
    fn set_total(&self, _total: u64) {}
    /// How much of the current phase is done.
    fn set_position(&self, _done: u64) {}
    /// `n` more units of the current phase are done.
    fn advance(&self, _n: u64) {}
    /// The current phase is over.
    fn end(&self) {}
    /// A line for people: what was done, where the output went.
    fn log(&self, _line: &str) {}
    /// Something the user should know although the stage goes on (an input truncated, a
    /// vocabulary smaller than asked).
    fn warn(&self, _line: &str) {}
    /// A bad input found or skipped, as `file:line: what`.
    fn problem(&self, _line: &str) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// A reporter that keeps log lines and warnings (for tests and for callers that print later).
#[derive(Debug, Default)]
pub struct Recorder {
    lines: std::sync::Mutex<Vec<(Channel, String)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Log,
    Warning,
    Problem,
}

impl Recorder {
    /// Log lines, in order.
    pub fn logs(&self) -> Vec<String> {
        self.take(Channel::Log)
    }

    /// Warnings, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.take(Channel::Warning)
    }

    /// Problems, in order.
    pub fn problems(&self) -> Vec<String> {
        self.take(Channel::Problem)
    }

    fn take(&self, channel: Channel) -> Vec<String> {
        self.lines
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn put(&self, channel: Channel, line: &str) {
        self.lines
            .lock()
            .expect("not poisoned")
            .push((channel, line.to_string()));
    }
}

impl Reporter for Recorder {
    fn log(&self, line: &str) {
        self.put(Channel::Log, line);
    }
    fn warn(&self, line: &str) {
        self.put(Channel::Warning, line);
    }
    fn problem(&self, line: &str) {
        self.put(Channel::Problem, line);
    }
}

/// `n` and the noun, in the singular for one: `1 shard`, `2 shards`.
pub fn plural(n: impl Into<u64>, singular: &str, plural: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { singular } else { plural })
}
