//! A fast, exact byte-level pre-tokenizer for ASCII text, used by training's word counts and
//! by the fast encoder ([`crate::fast`]).
//!
//! Hand-written because pre-tokenization is where BPE training and encoding spend their
//! time: `tokenizers` runs the GPT-2 split pattern through a backtracking regex engine and
//! tracks alignments for every byte, to about 6 MB/s per thread on code. Source code is
//! almost all ASCII, where the pattern
//!
//! ```text
//! 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//! ```
//!
//! reduces to a few byte classes. Texts with any non-ASCII byte go through `tokenizers`
//! itself, so results are identical by construction there; for ASCII, a test compares the
//! two on the sample corpus and on random strings of the tricky characters.

/// GPT-2's byte → printable character table (`bytes_to_unicode`).
pub fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable =
            (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        table[b as usize] = if printable {
            b as char
        } else {
            let c = char::from_u32(256 + n).expect("valid code point");
            n += 1;
            c
        };
    }
    table
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Number,
        // Unicode White_Space within ASCII: \t \n \v \f \r and space.
        b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => Class::Space,
        _ => Class::Other,
    }
}

/// Splits an ASCII `text` into the pattern's pieces, in order, as byte ranges.
pub fn split_ascii(text: &[u8], mut piece: impl FnMut(&[u8])) {
    debug_assert!(text.is_ascii());
    let n = text.len();
    let mut i = 0;
    let run = |mut j: usize, c: Class| {
        while j < n && class(text[j]) == c {
            j += 1;
        }
        j
    };
    while i < n {
        let b = text[i];
        // 's 't 're 've 'm 'll 'd
        if b == b'\'' && i + 1 < n {
            let rest = &text[i + 1..];
            let len =
                if rest.starts_with(b"re") || rest.starts_with(b"ve") || rest.starts_with(b"ll") {
                    3
                } else if matches!(rest[0], b's' | b't' | b'm' | b'd') {
                    2
                } else {
                    0
                };
            if len > 0 {
                piece(&text[i..i + len]);
                i += len;
                continue;
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional single space, then a run.
        let start = i;
        let body = if b == b' ' && i + 1 < n && class(text[i + 1]) != Class::Space {
            i + 1
        } else {
            i
        };
        let c = class(text[body]);
        if c != Class::Space {
            let end = run(body, c);
            piece(&text[start..end]);
            i = end;
            continue;
        }
        // `\s+(?!\S)`: the whitespace run, less its last character when a non-space follows
        // (that character then starts the next piece); a single whitespace character before
        // a non-space falls to `\s+`.
        let end = run(i, Class::Space);
        let end = if end < n && end - i > 1 { end - 1 } else { end };
        piece(&text[i..end]);
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn reference(text: &str) -> Vec<String> {
        let mut pts = PreTokenizedString::from(text);
        ByteLevel::new(false, true, true)
            .pre_tokenize(&mut pts)
            .unwrap();
        pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(s, _, _)| s.to_owned())
            .collect()
    }

    fn ours(text: &str) -> Vec<String> {
        let table = byte_to_char();
        let mut v = Vec::new();
        split_ascii(text.as_bytes(), |p| {
            v.push(p.iter().map(|b| table[*b as usize]).collect())
        });
        v
    }

    #[test]
    fn byte_table_matches_gpt2() {
        let t = byte_to_char();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'\t' as usize], 'ĉ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xAD], 'Ń');
    }

    #[test]
    fn equals_the_tokenizers_pre_tokenizer_on_tricky_cases() {
        for text in [
            "def f(x):\n    return x  # it's\n\n\tpass",
            "a  b   c \n\n  d\n",
            "I'm we'll they've 'll 're' ''s x's",
            "   leading and trailing   ",
            " \n",
            "\n x",
            "x\r\n\r\n    y\x0b\x0cz",
            "123abc 456 7.5e-3 !!= ==\t\t==",
            "'",
            " ",
            "",
            "\x00\x01\x1f\x7f ctrl",
        ] {
            assert_eq!(ours(text), reference(text), "{text:?}");
        }
    }

    #[test]
    fn equals_the_tokenizers_pre_tokenizer_on_random_strings() {
        // A fixed-seed xorshift: reproducible, and no test dependency for randomness.
        let alphabet: Vec<char> = " \t\n\r\x0b\x0c'sStTreRvmld0123_:.(\"#\x1c\x00az"
            .chars()
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let len = (state % 24) as usize;
            let mut s = String::new();
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            assert_eq!(ours(&s), reference(&s), "{s:?}");
        }
    }
}
