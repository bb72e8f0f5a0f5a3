//! Splitting a byte stream into lines with bounded memory.
//!
//! Hand-written rather than `BufRead::read_until` because a corpus line can be arbitrarily
//! long: past `max` bytes the rest of the line is counted and discarded instead of buffered,
//! so one giant line costs at most `max` bytes of memory and becomes a reported problem.

use std::io::{self, BufRead};

/// One line: its 1-based number and its bytes without `\n`, `\r\n` or a leading UTF-8 BOM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLine<'a> {
    pub line_no: u64,
    pub bytes: &'a [u8],
}

/// Where [`LineReader::next_line_into`] put a line in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSpan {
    Line {
        line_no: u64,
        start: usize,
        end: usize,
    },
    /// A line longer than the limit; its bytes were not kept.
    TooLong { line_no: u64, len: u64 },
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

    /// Appends the next line to `buf` (many lines share one buffer: no allocation per line).
    pub fn next_line_into(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<LineSpan>> {
        if self.done {
            return Ok(None);
        }
        let start = buf.len();
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let avail = match self.inner.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.done = true;
                    buf.truncate(start);
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
                if buf.len() - start + piece.len() > self.max {
                    too_long = true;
                    buf.truncate(start);
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
            return Ok(Some(LineSpan::TooLong {
                line_no: self.line_no,
                len,
            }));
        }
        if buf.last() == Some(&b'\r') && buf.len() > start {
            buf.pop();
        }
        let mut first = start;
        if self.line_no == 1 && buf[start..].starts_with(BOM) {
            first += BOM.len();
        }
        Ok(Some(LineSpan::Line {
            line_no: self.line_no,
            start: first,
            end: buf.len(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum Got {
        Line(u64, Vec<u8>),
        TooLong { line_no: u64, len: u64 },
    }

    fn all(input: &[u8], max: usize) -> Vec<Got> {
        // A tiny buffer exercises lines that span many refills; the shared output buffer
        // starts non-empty, as it does in the reader.
        let mut r = LineReader::new(io::BufReader::with_capacity(3, input), max);
        let mut buf = b"previous".to_vec();
        let mut v = Vec::new();
        while let Some(span) = r.next_line_into(&mut buf).unwrap() {
            v.push(match span {
                LineSpan::Line {
                    line_no,
                    start,
                    end,
                } => Got::Line(line_no, buf[start..end].to_vec()),
                LineSpan::TooLong { line_no, len } => Got::TooLong { line_no, len },
            });
        }
        v
    }

    fn line(n: u64, b: &[u8]) -> Got {
        Got::Line(n, b.to_vec())
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
                Got::TooLong {
                    line_no: 2,
                    len: 1000
                },
                line(3, b"after")
            ]
        );
    }
}
