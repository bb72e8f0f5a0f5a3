//! Sizes written the way people write them: `512M`, `2G`, `64KiB`, or plain bytes.

use std::fmt;

/// A number of bytes, parsed from `512M` (binary multiples: K = 1024) or a plain integer, and
/// written back as a plain integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        let s = s.trim();
        let (num, mult) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
            Some((i, _)) => {
                let unit = s[i..].to_ascii_uppercase();
                let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                    "" => 1,
                    "K" => 1 << 10,
                    "M" => 1 << 20,
                    "G" => 1 << 30,
                    "T" => 1 << 40,
                    _ => return Err(format!("unknown size unit in '{s}' (K, M, G, T)")),
                };
                (&s[..i], mult)
            }
            None => (s, 1),
        };
        let n: u64 = num
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a size (e.g. 512M)"))?;
        match n.checked_mul(mult) {
            Some(v) if v > 0 => Ok(ByteSize(v)),
            _ => Err(format!("'{s}' is not a usable size")),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(u64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(0) => Err(serde::de::Error::custom("a size must be above 0")),
            Either::N(n) => Ok(ByteSize(n)),
            Either::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_refusals() {
        for (s, v) in [
            ("8K", 8192),
            ("512M", 512 << 20),
            ("2GiB", 2 << 30),
            ("100", 100),
        ] {
            assert_eq!(s.parse::<ByteSize>().unwrap().0, v, "{s}");
        }
        for s in ["0", "12Q", "M", "-1"] {
            assert!(s.parse::<ByteSize>().is_err(), "{s}");
        }
    }
}
