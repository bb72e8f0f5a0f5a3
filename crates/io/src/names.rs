//! Settings that are one word on the command line (`--mode concat`, `--pooling mean`) are the
//! same word in a TOML config and in a manifest: [`serde_by_name!`] derives serde from the
//! type's `FromStr` and its name function, so the three spellings cannot drift apart.

/// Declares an enum of settings spelt as one word: `NAMES`, `name()`, `FromStr` (the word
/// or its aliases; anything else is refused with a message listing the words) and serde by
/// name. `what` names the setting in that message.
///
/// ```
/// pytorrent_io::word_enum! {
///     "mode";
///     #[derive(Debug, Clone, Copy, PartialEq, Eq)]
///     pub enum Mode { Concat = "concat", Record = "record" | "records" }
/// }
/// assert_eq!("records".parse::<Mode>(), Ok(Mode::Record));
/// assert_eq!(Mode::Concat.name(), "concat");
/// assert!("x".parse::<Mode>().unwrap_err().contains("expected concat or record"));
/// ```
#[macro_export]
macro_rules! word_enum {
    (
        $what:literal;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value's word, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word $(| $alias)* => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} '{other}' (expected {})",
                        $what,
                        $crate::names::one_of(Self::NAMES)
                    )),
                }
            }
        }

        $crate::serde_by_name!($name, name);
    };
}

/// `a, b or c`.
pub fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// Implements `Serialize` (the name `$t::$name(self)` returns) and `Deserialize` (through
/// `FromStr`, whose error becomes the message) for `$t`.
#[macro_export]
macro_rules! serde_by_name {
    ($t:ty, $name:ident) => {
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.$name())
            }
        }
        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// Deserialises a list written either as one comma-separated string (`"docstrings,both"`, as
/// on the command line) or as a list (`["docstrings", "both"]`, as TOML has it), each item
/// through `FromStr`. Use with `#[serde(deserialize_with = "pytorrent_io::names::list")]`.
pub fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    use serde::Deserialize;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    let items = match Form::deserialize(d)? {
        Form::One(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Form::Many(v) => v,
    };
    items
        .into_iter()
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().map_err(serde::de::Error::custom))
        .collect()
}

/// [`list`] for an optional list (`None` when the key is absent).
pub fn opt_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    list(d).map(Some)
}
