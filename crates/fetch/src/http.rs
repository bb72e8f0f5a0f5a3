//! HTTP GET with retries (network errors, 429, 5xx, `Retry-After`), a shared rate limit and
//! a size limit on every body.

use std::io::Read;
use std::time::Duration;

use crate::pypi::FetchOptions;

/// Spaces requests evenly: at most `rate` a second over every thread that shares it.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: std::sync::Mutex<std::time::Instant>,
}

impl RateLimiter {
    pub fn new(rate: f64) -> RateLimiter {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    fn wait(&self) {
        let at = {
            let mut next = self.next.lock().expect("not poisoned");
            let now = std::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        let now = std::time::Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
    }
}

pub fn agent(timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .tls_config(tls)
        // Statuses come back as responses, so a 429/503's Retry-After can be read.
        .http_status_as_error(false)
        .build()
        .into()
}

/// Longest wait a server's Retry-After may ask for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(crate) enum GetError {
    Status(u16),
    Network(String),
    /// The sink failed on this side (a full disk): not worth retrying.
    Local(String),
    /// The body is (or says it is) larger than the limit: not worth retrying either.
    TooLarge(String),
}

impl GetError {
    /// The error in words, after the URL it concerns.
    pub(crate) fn describe(&self) -> String {
        match self {
            GetError::Status(c) => format!("HTTP {c}"),
            GetError::Network(m) | GetError::Local(m) | GetError::TooLarge(m) => m.clone(),
        }
    }
}

/// A response body that remembers whether reading it failed, so that a body cut short is
/// told apart from the sink's own errors, and that stops at `limit` bytes: a server that
/// sends without end costs at most that much memory or disk.
struct BodyReader<R> {
    inner: R,
    failed: bool,
    read: u64,
    limit: u64,
    too_large: bool,
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the limit is asked for, so that a body of exactly `limit` passes.
        let room = (self.limit + 1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let r = self.inner.read(&mut buf[..want]);
        match r {
            Ok(n) => {
                self.read += n as u64;
                if self.read > self.limit {
                    self.too_large = true;
                    return Err(std::io::Error::other(format!(
                        "more than {} bytes",
                        self.limit
                    )));
                }
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

/// Takes a response body and its content type; called again from the start when a retry
/// follows a body cut short.
pub(crate) type Sink<'a> = dyn FnMut(&mut dyn Read, Option<&str>) -> std::io::Result<()> + 'a;

/// GET with retries on network errors, 429 and 5xx; a `Retry-After` (in seconds) of a 429
/// or 503 is waited out instead of the back-off. A body over `limit` bytes (announced by its
/// `Content-Length`, or counted as it arrives) is refused before the sink sees more of it.
pub(crate) fn get(
    agent: &ureq::Agent,
    url: &str,
    opts: &FetchOptions,
    accept: Option<&str>,
    limit: u64,
    sink: &mut Sink<'_>,
) -> Result<(), GetError> {
    let mut delay = opts.backoff;
    let mut attempt = 0;
    loop {
        if let Some(l) = &opts.limiter {
            l.wait();
        }
        let mut req = agent.get(url);
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let mut wait = delay;
        let retryable = match req.call() {
            Ok(mut resp) => {
                let code = resp.status().as_u16();
                if (200..300).contains(&code) {
                    let header = |name: &str| {
                        resp.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let ctype = header("content-type");
                    if let Some(n) = header("content-length")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .filter(|n| *n > limit)
                    {
                        return Err(GetError::TooLarge(format!(
                            "the server announces {n} bytes, more than the {limit} allowed"
                        )));
                    }
                    let mut body = BodyReader {
                        inner: resp.body_mut().with_config().limit(u64::MAX).reader(),
                        failed: false,
                        read: 0,
                        limit,
                        too_large: false,
                    };
                    match sink(&mut body, ctype.as_deref()) {
                        Ok(()) => return Ok(()),
                        Err(_) if body.too_large => {
                            return Err(GetError::TooLarge(format!(
                                "the server sent more than the {limit} bytes allowed"
                            )))
                        }
                        // A body cut short (a dropped connection, fewer bytes than its
                        // length) is tried again; the sink starts afresh each time.
                        Err(e) if body.failed => GetError::Network(format!("body cut short: {e}")),
                        Err(e) => return Err(GetError::Local(e.to_string())),
                    }
                } else {
                    retry_status(&resp, code, &mut wait)?
                }
            }
            Err(e) => GetError::Network(e.to_string()),
        };
        if attempt >= opts.retries {
            return Err(retryable);
        }
        attempt += 1;
        std::thread::sleep(wait);
        delay *= 2;
    }
}

/// A status other than success: 429 and 5xx are worth another try (after `Retry-After`, in
/// seconds, when the server names one); any other is final.
fn retry_status<B>(
    resp: &ureq::http::Response<B>,
    code: u16,
    wait: &mut Duration,
) -> Result<GetError, GetError> {
    if code != 429 && code < 500 {
        return Err(GetError::Status(code));
    }
    if let Some(secs) = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        *wait = Duration::from_secs(secs).min(MAX_RETRY_AFTER);
    }
    Ok(GetError::Status(code))
}
