//! Secrets and personal data out of code and docstrings: high-confidence secrets become
//! `<SECRET>`, e-mail addresses `<EMAIL>`, each counted by kind.
//!
//! "High confidence" means formats with a fixed shape (PEM private-key blocks, cloud access
//! key ids, well-known API token prefixes) and passwords written into URLs. Look-alikes stay:
//! hex digests, UUIDs, keys documented as examples (`AKIA…EXAMPLE`), test-mode keys
//! (`sk_test_…`), placeholder passwords (`user:password@`, `user:${PASS}@`), and addresses at
//! the domains reserved for documentation (`example.com`, `example.org`, `example.net`, and
//! `*.example`, `*.invalid`, `*.test`, `*.localhost`), SSH algorithm names
//! (`…@openssh.com`), `user@host:path` remotes, names whose last label is a file extension,
//! documented demo passwords (`scott:tiger@`, `[username]:[password]@`) and PEM markers named in
//! prose (a key needs a base64 body). Code that holds no secret is never rewritten: SSH
//! user-at-host forms (`git@github.com`, `hg@bitbucket.org`), URL credentials written as
//! patterns (`mysql://\w+:\w+@`, `%(user)s:%(pw)s@`) or for a placeholder user
//! (`user:…@`, `username:…@`), names whose last label is no top-level domain
//! (`<stamp.pid.random@host.dom.ain>`) and ids named as ids (`addon_id = "x@y.org"`).
//! Precision and recall on a labelled set from real packages: `docs/extract.md`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

struct Rule {
    kind: &'static str,
    re: Regex,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let r = |kind, pattern: &str| Rule {
        kind,
        re: Regex::new(pattern).expect("valid pattern"),
    };
    vec![
        r(
            "private_key",
            // The body must be a key's: optional `Name: value` header lines, then base64. A
            // docstring that names the markers keeps its words.
            r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----[ \t]*\r?\n(?:[ \t]*[A-Za-z][A-Za-z0-9-]*:[^\n]*\r?\n)*(?:[ \t]*\r?\n)?(?:[ \t]*[A-Za-z0-9+/=]+[ \t]*\r?\n)+[ \t]*-----END (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----",
        ),
        r(
            "aws_access_key",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
        ),
        r(
            "github_token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82})\b",
        ),
        r("slack_token", r"\bxox[abposr]-[0-9A-Za-z-]{10,}\b"),
        r("google_api_key", r"\bAIza[0-9A-Za-z_\-]{35}\b"),
        r("stripe_key", r"\b[sr]k_live_[0-9A-Za-z]{24,}\b"),
        r("openai_key", r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{40,}\b"),
    ]
});

static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\x22]+:)([^\s@/'\x22]+)@").expect("valid")
});

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Za-z0-9._%+\-]+@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})\b")
        .expect("valid")
});

/// Domains that name things other than mailboxes before an `@`: SSH algorithm and extension
/// names (`hmac-sha2-256-etm@openssh.com`, RFC 4250's private namespace).
const NAMESPACE_DOMAINS: &[&str] = &["openssh.com", "libssh.org"];

/// Last labels that are file extensions rather than top-level domains (`genvslite@exe.vcxproj`).
const FILE_EXTENSIONS: &[&str] = &[
    "vcxproj", "csproj", "vbproj", "sln", "exe", "dll", "so", "dylib", "txt", "json", "yaml",
    "yml", "toml", "cfg", "ini", "xml", "html", "htm", "js", "ts", "css", "md", "rst", "png",
    "jpg", "jpeg", "gif", "svg", "zip", "gz", "tgz", "tar", "whl", "lock", "log", "tmp", "bak",
    "bin", "dat", "pyc", "pyi", "pyx", "ipynb", "cpp", "hpp", "h", "c", "cc", "java", "rs",
];

/// Generic top-level domains in use (every two-letter label passes as a country code). A
/// name ending in anything else (`host.dom.ain`, `obj.attr`) is not an address.
const GENERIC_TLDS: &[&str] = &[
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "mil",
    "int",
    "info",
    "biz",
    "name",
    "pro",
    "aero",
    "coop",
    "museum",
    "mobi",
    "asia",
    "tel",
    "travel",
    "jobs",
    "cat",
    "post",
    "xxx",
    "io",
    "dev",
    "app",
    "ai",
    "xyz",
    "tech",
    "online",
    "site",
    "store",
    "cloud",
    "email",
    "page",
    "blog",
    "team",
    "tools",
    "software",
    "systems",
    "solutions",
    "services",
    "network",
    "company",
    "group",
    "design",
    "digital",
    "media",
    "studio",
    "science",
    "academy",
    "institute",
    "university",
    "school",
    "engineering",
    "consulting",
    "agency",
    "works",
    "world",
    "life",
    "live",
    "space",
    "today",
    "news",
    "zone",
    "one",
    "top",
    "club",
    "art",
    "codes",
    "computer",
    "technology",
    "center",
    "global",
    "international",
    "systems",
    "berlin",
    "london",
    "paris",
    "nyc",
    "tokyo",
    "amsterdam",
    "wien",
    "swiss",
    "bayern",
    "google",
    "microsoft",
    "amazon",
    "apple",
    "ibm",
    "intel",
    "nvidia",
    "sap",
    "moe",
    "fun",
    "rocks",
    "ninja",
    "guru",
    "expert",
    "wiki",
    "link",
    "host",
    "website",
    "press",
    "eu",
];

fn not_a_mailbox(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let last = d.rsplit('.').next().unwrap_or("");
    NAMESPACE_DOMAINS
        .iter()
        .any(|n| d == *n || d.ends_with(&format!(".{n}")))
        || FILE_EXTENSIONS.contains(&last)
        || !(last.len() == 2 || GENERIC_TLDS.contains(&last))
}

/// Users at SSH hosts rather than mailboxes: forges' `git@`, Mercurial's `hg@`.
const SSH_USERS: &[&str] = &["git", "hg", "svn"];

/// Whether the text before an address names it as an id (`addon_id = "…`, `"id": "…`):
/// browser add-ons and app ids take the form of an address without being one.
fn named_as_id(before: &str) -> bool {
    let line = before.rsplit('\n').next().unwrap_or("");
    let quotes = |c: char| c == '"' || c == '\'' || c.is_whitespace();
    let t = line.trim_end_matches(quotes);
    let Some(t) = t.strip_suffix('=').or_else(|| t.strip_suffix(':')) else {
        return false;
    };
    let t = t.trim_end_matches(quotes);
    let start = t
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(t.len(), |(i, _)| i);
    // Ids of add-ons, extensions and apps: a bare `id=` may well hold a person's address.
    let word = t[start..].to_ascii_lowercase().replace('_', "");
    [
        "addonid",
        "extensionid",
        "appid",
        "applicationid",
        "geckoid",
        "pluginid",
        "bundleid",
    ]
    .contains(&word.as_str())
}

/// Domains and mailbox names that documentation and tests use for made-up addresses.
const PLACEHOLDER_DOMAINS: &[&str] = &[
    "company.com",
    "domain.com",
    "email.com",
    "test.com",
    "foo.com",
    "bar.com",
    "acme.com",
    "evil.com",
    "something.com",
    "yourdomain.com",
    "mydomain.com",
    "yourcompany.com",
    "mycompany.com",
    "website.com",
    "foo.bar",
];
const PLACEHOLDER_MAILBOXES: &[&str] = &[
    "user",
    "username",
    "you",
    "someone",
    "somebody",
    "nobody",
    "test",
    "testing",
    "foo",
    "bar",
    "example",
    "mailbox",
    "email",
    "john.doe",
    "jane.doe",
    "john.smith",
    "jane.smith",
    "jdoe",
];

/// A made-up address: a placeholder domain, a domain of one letter (`x.nl`), a placeholder
/// mailbox name (`someone.else@`, `your.name@`).
fn placeholder_address(local: &str, domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    let l = local.to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    PLACEHOLDER_DOMAINS.contains(&d.as_str())
        || (labels.len() == 2 && labels[0].len() == 1)
        || PLACEHOLDER_MAILBOXES.contains(&l.as_str())
        || l.starts_with("your")
        || l.split(['.', '_', '-', '+'])
            .next()
            .is_some_and(|first| ["someone", "somebody", "nobody", "placeholder"].contains(&first))
}

/// Users that documentation writes in URLs (`https://user:pa%40ss@host`).
const PLACEHOLDER_USERS: &[&str] = &[
    "user",
    "username",
    "usr",
    "login",
    "name",
    "me",
    "foo",
    "someone",
    "somebody",
    "myuser",
    "youruser",
    "your_user",
    "yourname",
    "your_username",
    "your-username",
    "test",
    "demo",
    "guest",
    "anonymous",
    "anon",
    "dbuser",
    "db_user",
];

/// A credential written as a pattern or a template rather than a value.
fn pattern_or_template(s: &str) -> bool {
    s.contains(['\\', '(', ')', '[', ']', '{', '}', '|', '^', '?', '*', '+'])
}

fn documented_example(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    // Keys written as the alphabet or a run of digits are examples too.
    lower.contains("example") || lower.contains("1234567890") || lower.contains("abcdefghij")
}

/// A development default rather than a secret: the password is the user's name
/// (`root:root@`, `postgres:postgres@`), or the database is on this machine.
fn development_default(user: &str, password: &str, after: &str) -> bool {
    let host = after
        .split(|c: char| {
            c == ':' || c == '/' || c == '?' || c.is_whitespace() || c == '\'' || c == '"'
        })
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    user == password || matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

fn placeholder_password(p: &str) -> bool {
    let l = p.to_ascii_lowercase();
    matches!(
        l.as_str(),
        "password"
            | "passwd"
            | "pass"
            | "pwd"
            | "secret"
            | "changeme"
            | "xxx"
            | "xxxx"
            | "****"
            | "***"
            // Oracle's documented demo account, scott/tiger.
            | "tiger"
    ) || p.starts_with('$')
        || p.starts_with('{')
        || p.starts_with('<')
        || p.starts_with('%')
        || p.starts_with('[')
        || p.ends_with(']')
        || p.chars().all(|c| c == '*' || c == 'x' || c == 'X')
}

fn reserved_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    ["example.com", "example.org", "example.net"]
        .iter()
        .any(|r| d == *r || d.ends_with(&format!(".{r}")))
        || [".example", ".invalid", ".test", ".localhost", ".local"]
            .iter()
            .any(|t| d.ends_with(t))
}

/// Replacements made, by kind.
pub type Counts = BTreeMap<String, u64>;

/// Returns `text` with secrets and e-mail addresses replaced, and adds what it replaced to
/// `counts` (when given).
pub fn scrub(text: &str, mut counts: Option<&mut Counts>) -> String {
    let mut out = text.to_string();
    let count = |kind: &str, n: u64, counts: &mut Option<&mut Counts>| {
        if let Some(c) = counts.as_deref_mut() {
            if n > 0 {
                *c.entry(kind.to_string()).or_default() += n;
            }
        }
    };
    for rule in RULES.iter() {
        if !rule.re.is_match(&out) {
            continue;
        }
        let mut n = 0;
        out = rule
            .re
            .replace_all(&out, |c: &Captures| {
                if documented_example(&c[0]) {
                    c[0].to_string()
                } else {
                    n += 1;
                    "<SECRET>".to_string()
                }
            })
            .into_owned();
        count(rule.kind, n, &mut counts);
    }
    if URL_PASSWORD.is_match(&out) {
        let mut n = 0;
        let text = out.clone();
        out = URL_PASSWORD
            .replace_all(&text, |c: &Captures| {
                let user = c[1]
                    .split_once("://")
                    .map_or("", |(_, u)| u)
                    .trim_end_matches(':');
                let after = &text[c.get(0).expect("the match").end()..];
                if placeholder_password(&c[2])
                    || development_default(user, &c[2], after)
                    || pattern_or_template(&c[2])
                    || pattern_or_template(user)
                    || PLACEHOLDER_USERS.contains(&user.to_ascii_lowercase().as_str())
                {
                    c[0].to_string()
                } else {
                    n += 1;
                    format!("{}<SECRET>@", &c[1])
                }
            })
            .into_owned();
        count("url_password", n, &mut counts);
    }
    if out.contains('@') && EMAIL.is_match(&out) {
        let mut n = 0;
        let text = out.clone();
        out = EMAIL
            .replace_all(&text, |c: &Captures| {
                let m = c.get(0).expect("the match");
                // `git@github.com:org/repo.git`: an SSH remote, `user@host:path`.
                let remote = text[m.end()..].starts_with(':');
                let local = m.as_str().split('@').next().unwrap_or("");
                // `https://user:pa%40ss@host`, `https://user@host`: a URL's user part (its
                // password, when it is one, is the URL rule's to judge).
                let before = &text[..m.start()];
                let in_url = (before.ends_with(':') || before.ends_with("//"))
                    && before
                        .rsplit(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                        .next()
                        .is_some_and(|w| w.contains("://"));
                if in_url
                    || reserved_domain(&c[1])
                    || not_a_mailbox(&c[1])
                    || remote
                    || SSH_USERS.contains(&local)
                    || placeholder_address(local, &c[1])
                    || named_as_id(&text[..m.start()])
                {
                    c[0].to_string()
                } else {
                    n += 1;
                    "<EMAIL>".to_string()
                }
            })
            .into_owned();
        count("email", n, &mut counts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, Counts) {
        let mut c = Counts::new();
        let s = scrub(text, Some(&mut c));
        (s, c)
    }

    #[test]
    fn planted_secrets_are_replaced_and_counted() {
        let key =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7bq\n-----END RSA PRIVATE KEY-----";
        let cases = [
            (
                format!("KEY = '''{key}'''"),
                "private_key",
                "KEY = '''<SECRET>'''",
            ),
            (
                "aws_id = 'AKIAZ7QW3ERT5YUI9OPA'".to_string(),
                "aws_access_key",
                "aws_id = '<SECRET>'",
            ),
            (
                format!("token = 'ghp_{}'", "a1B2".repeat(9)),
                "github_token",
                "token = '<SECRET>'",
            ),
            (
                "SLACK = 'xoxb-284619370512-qWeRtYuIoPaS'".to_string(),
                "slack_token",
                "SLACK = '<SECRET>'",
            ),
            (
                format!("k = 'AIza{}'", "Sy0-_".repeat(7)),
                "google_api_key",
                "k = '<SECRET>'",
            ),
            (
                format!("stripe.api_key = 'sk_live_{}'", "4eC39HqLyjWDarjtT1zdp7dc"),
                "stripe_key",
                "stripe.api_key = '<SECRET>'",
            ),
            (
                "db = 'postgres://admin:s3cr3t-P4ss@db.internal:5432/app'".to_string(),
                "url_password",
                "db = 'postgres://admin:<SECRET>@db.internal:5432/app'",
            ),
            (
                "Contact marta.kowalczyk@gmail.com for help.".to_string(),
                "email",
                "Contact <EMAIL> for help.",
            ),
            (
                "url = 'postgres://admin:S3cr3tP4ssw0rd9@db.internal:5432/prod'".to_string(),
                "url_password",
                "url = 'postgres://admin:<SECRET>@db.internal:5432/prod'",
            ),
            (
                "__author__ = 'Jane Roe <jane.roe@uni-heidelberg.de>'".to_string(),
                "email",
                "__author__ = 'Jane Roe <<EMAIL>>'",
            ),
        ];
        for (text, kind, want) in cases {
            let (got, counts) = one(&text);
            assert_eq!(got, want, "{kind}");
            assert_eq!(counts.get(kind), Some(&1), "{kind}: {counts:?}");
        }
    }

    #[test]
    fn keys_with_header_lines_and_indentation_are_still_keys() {
        let text = "K = '''-----BEGIN RSA PRIVATE KEY-----\n    Proc-Type: 4,ENCRYPTED\n    DEK-Info: AES-128-CBC,3F17\n\n    MIIEpAIBAAKCAQEA7bq+/x=\n    AbCd\n    -----END RSA PRIVATE KEY-----'''";
        let (got, counts) = one(text);
        assert_eq!(got, "K = '''<SECRET>'''");
        assert_eq!(counts.get("private_key"), Some(&1));
    }

    #[test]
    fn look_alikes_stay_untouched() {
        for text in [
            "sha = 'da39a3ee5e6b4b0d3255bfef95601890afd80709'",
            "digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'",
            "id = uuid.UUID('123e4567-e89b-12d3-a456-426614174000')",
            "# AWS docs example: AKIAIOSFODNN7EXAMPLE",
            "stripe.api_key = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc'",
            "url = 'postgres://user:password@localhost/db'",
            "url = 'redis://:${REDIS_PASSWORD}@cache:6379'",
            "send to user@example.com or admin@mail.example.org",
            "@property\ndef x(self): return self._x",
            "pip install pkg@git+https://host/repo.git",
            "x = a@b",
            "ssh git@localhost",
            // Look-alikes found in real packages.
            "_preferred_macs = ('hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512')",
            "url = 'git@github.com:org/repo.git'",
            "files = ['genvslite@exe.vcxproj']",
            "\"\"\"Loads a PKCS#1 PEM-encoded private key file.\n\n    The contents of the file before the \"-----BEGIN RSA PRIVATE KEY-----\" and\n    after the \"-----END RSA PRIVATE KEY-----\" lines is ignored.\n    \"\"\"",
            "mongodb://[[username]:[password]]@host",
            "oracle://scott:tiger@127.0.0.1:1521/sidname",
            // Code without a secret, from the labelled set's false positives.
            "return \"git@github.com\"",
            "host = 'hg@bitbucket.org'",
            "pattern = re.compile(r\"mysql://\\w+:\\w+@\")",
            "url = 'mysql://%(user)s:%(password)s@%(host)s/db'",
            "e.g. https://user:not-re%40l@github.com/org/repo.git",
            "msgid = '<%s.%s.%s@host.dom.ain>' % (now, pid, rand)",
            "addon_id = \"rainbow@colors.org\"",
            "mysql://root:root@localhost:3306/bench",
            "postgresql://synapse:synapse_dev@localhost:5432/synapse",
            "result = redact(\"token: ghp_1234567890abcdefghijklmnopqrstuvwxyz12\")",
            "sender = 'bob@company.com'",
            "author_email='youremail@email.com'",
            "uid = 'someone.else@lmu.de'",
            "return self.obj@other.matrix",
        ] {
            let (got, counts) = one(text);
            assert_eq!(got, text, "{counts:?}");
            assert!(counts.is_empty());
        }
    }
}
