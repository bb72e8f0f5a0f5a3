//! Splitting a byte stream into lines with bounded memory.
//!
//! Hand-written rather than `BufRead::read_until` because a corpus line can be arbitrarily
//! long: past `max` bytes the rest of the line is counted and discarded instead of buffered,
//! so one giant line costs at most `max` bytes of memory and becomes a reported problem.

use std::io::{self, BufRead};

/// One line: its 1-based number and its bytes without `\n`, `\r\n` or a leading UTF-8 BOM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub line_no: u64,
    pub bytes: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    Line(RawLine),
    /// A line longer than the limit; its bytes were not kept.
    TooLong {
        line_no: u64,
        len: u64,
    },
}

pub struct LineReader<R> {
    inner: R,
    line_no: u64,
    max: usize,
    done: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> Self {
        LineReader {
            inner,
            line_no: 0,
            max: max_line_bytes,
            done: false,
        }
    }

    /// Number of the last line returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    pub fn next_line(&mut self) -> io::Result<Option<LineEvent>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = Vec::new();
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            };
            if avail.is_empty() {
                self.done = true;
                if len == 0 {
                    return Ok(None);
                }
                break;
            }
            let (piece, consumed, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            len += piece.len() as u64;
            if !too_long {
                if buf.len() + piece.len() > self.max {
                    too_long = true;
                    buf = Vec::new();
                } else {
                    buf.extend_from_slice(piece);
                }
            }
            self.inner.consume(consumed);
            if end {
                break;
            }
        }
        self.line_no += 1;
        if too_long {
            return Ok(Some(LineEvent::TooLong {
                line_no: self.line_no,
                len,
            }));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        if self.line_no == 1 && buf.starts_with(BOM) {
            buf.drain(..BOM.len());
        }
        Ok(Some(LineEvent::Line(RawLine {
            line_no: self.line_no,
            bytes: buf,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> Vec<LineEvent> {
        // A tiny buffer exercises lines that span many refills.
        let mut r = LineReader::new(io::BufReader::with_capacity(3, input), max);
        let mut v = Vec::new();
        while let Some(e) = r.next_line().unwrap() {
            v.push(e);
        }
        v
    }

    fn line(n: u64, b: &[u8]) -> LineEvent {
        LineEvent::Line(RawLine {
            line_no: n,
            bytes: b.to_vec(),
        })
    }

    #[test]
    fn crlf_bom_and_missing_final_newline() {
        let got = all(b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"b\":2}", 100);
        assert_eq!(
            got,
            vec![line(1, b"{\"a\":1}"), line(2, b""), line(3, b"{\"b\":2}")]
        );
    }

    #[test]
    fn long_line_is_reported_not_buffered() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend(b"\nafter\n");
        let got = all(&input, 64);
        assert_eq!(
            got,
            vec![
                line(1, b"short"),
                LineEvent::TooLong {
                    line_no: 2,
                    len: 1000
                },
                line(3, b"after")
            ]
        );
    }
}
