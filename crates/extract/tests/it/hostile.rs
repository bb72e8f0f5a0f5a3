//! Hostile and broken archives, built here: each is refused or skipped with a reason naming
//! the member, never a crash, and members read before a failure are kept.

use std::io::Write;
use std::path::Path;

use pytorrent_extract::archive::{read, strip_top_folder, ArchiveError, Limits, Refusal};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A tar entry with a raw name (tar's own `set_path` refuses `..` and absolute paths, as it
/// should: hostile archives are made by other tools).
fn entry(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    data: &[u8],
    link: Option<&str>,
) {
    let mut h = tar::Header::new_gnu();
    let raw = &mut h.as_old_mut().name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    builder.append(&h, data).unwrap();
}

fn tar_gz(
    dir: &Path,
    name: &str,
    build: impl FnOnce(&mut tar::Builder<Vec<u8>>),
) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    let bytes = b.into_inner().unwrap();
    let p = dir.join(name);
    std::fs::write(&p, gz(&bytes)).unwrap();
    p
}

const GOOD: &[u8] = b"def f():\n    \"\"\"Doc.\"\"\"\n    return 1\n";

#[test]
fn traversal_absolute_links_devices_and_nul_bytes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = tar_gz(dir.path(), "evil-1.0.tar.gz", |b| {
        entry(b, "evil-1.0/ok.py", tar::EntryType::Regular, GOOD, None);
        entry(
            b,
            "evil-1.0/../../escape.py",
            tar::EntryType::Regular,
            GOOD,
            None,
        );
        entry(b, "/etc/abs.py", tar::EntryType::Regular, GOOD, None);
        entry(
            b,
            "evil-1.0/link.py",
            tar::EntryType::Symlink,
            b"",
            Some("/etc/passwd"),
        );
        entry(
            b,
            "evil-1.0/hard.py",
            tar::EntryType::Link,
            b"",
            Some("evil-1.0/ok.py"),
        );
        entry(
            b,
            "evil-1.0/docs/style.css",
            tar::EntryType::Symlink,
            b"",
            Some("../theme/style.css"),
        );
        entry(b, "evil-1.0/dev.py", tar::EntryType::Char, b"", None);
        entry(b, "evil-1.0/fifo", tar::EntryType::Fifo, b"", None);
        entry(
            b,
            "evil-1.0/nul.py",
            tar::EntryType::Regular,
            b"x = 1\0\n",
            None,
        );
        entry(b, "evil-1.0/after.py", tar::EntryType::Regular, GOOD, None);
    });
    let c = read(&p, &Limits::default());
    assert!(c.error.is_none(), "{:?}", c.error);
    let read_paths: Vec<&str> = c.members.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(read_paths, ["evil-1.0/ok.py", "evil-1.0/after.py"]);
    let refused: Vec<(&str, Refusal)> = c
        .refused
        .iter()
        .map(|(p, r)| (p.as_str(), r.clone()))
        .collect();
    assert_eq!(
        refused,
        [
            ("evil-1.0/../../escape.py", Refusal::PathTraversal),
            ("/etc/abs.py", Refusal::AbsolutePath),
            ("evil-1.0/link.py", Refusal::Link),
            ("evil-1.0/hard.py", Refusal::Link),
            ("evil-1.0/dev.py", Refusal::SpecialFile),
            ("evil-1.0/fifo", Refusal::SpecialFile),
            ("evil-1.0/nul.py", Refusal::NulBytes),
        ]
    );
    let mut members = c.members;
    strip_top_folder(&mut members);
    assert_eq!(members[0].path, "ok.py");
}

#[test]
fn decompression_bombs_stop_at_the_ratio_or_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 24 << 20];
    let p = tar_gz(dir.path(), "bomb-1.0.tar.gz", |b| {
        entry(b, "bomb-1.0/a.py", tar::EntryType::Regular, GOOD, None);
        entry(
            b,
            "bomb-1.0/zeros.bin",
            tar::EntryType::Regular,
            &zeros,
            None,
        );
        entry(b, "bomb-1.0/b.py", tar::EntryType::Regular, GOOD, None);
    });
    let limits = Limits {
        ratio_floor_bytes: 1 << 20,
        max_ratio: 100,
        ..Limits::default()
    };
    let c = read(&p, &limits);
    assert!(
        matches!(c.error, Some(ArchiveError::Ratio { .. })),
        "{:?}",
        c.error
    );
    assert_eq!(c.error.as_ref().unwrap().name(), "bomb");
    assert_eq!(c.members.len(), 1, "what came before the bomb is kept");
    let limits = Limits {
        max_total_bytes: 8 << 20,
        max_ratio: u64::MAX,
        ..Limits::default()
    };
    let c = read(&p, &limits);
    assert!(
        matches!(c.error, Some(ArchiveError::TotalTooLarge { .. })),
        "{:?}",
        c.error
    );
}

#[test]
fn oversized_members_and_member_counts() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'#'; 3 << 20];
    let p = tar_gz(dir.path(), "big-1.0.tar.gz", |b| {
        entry(b, "big-1.0/big.py", tar::EntryType::Regular, &big, None);
        entry(b, "big-1.0/ok.py", tar::EntryType::Regular, GOOD, None);
    });
    let c = read(
        &p,
        &Limits {
            max_member_bytes: 1 << 20,
            ..Limits::default()
        },
    );
    assert_eq!(
        c.refused,
        [(
            "big-1.0/big.py".to_string(),
            Refusal::TooLarge { bytes: 3 << 20 }
        )]
    );
    assert_eq!(
        c.members.len(),
        1,
        "the stream stays in step after a skipped member"
    );
    let c = read(
        &p,
        &Limits {
            max_members: 1,
            ..Limits::default()
        },
    );
    assert!(matches!(c.error, Some(ArchiveError::TooManyMembers { .. })));
}

#[test]
fn truncated_and_corrupt_archives_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let filler: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("x{i} = {i}\n").into_bytes())
        .collect();
    let p = tar_gz(dir.path(), "cut-1.0.tar.gz", |b| {
        entry(b, "cut-1.0/first.py", tar::EntryType::Regular, GOOD, None);
        entry(
            b,
            "cut-1.0/filler.py",
            tar::EntryType::Regular,
            &filler,
            None,
        );
    });
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let c = read(&p, &Limits::default());
    assert!(
        matches!(c.error, Some(ArchiveError::Corrupt { .. })),
        "{:?}",
        c.error
    );
    assert_eq!(c.members.len(), 1);
    assert!(c.error.unwrap().to_string().contains("cut-1.0.tar.gz"));

    let junk = dir.path().join("junk-1.0.zip");
    std::fs::write(&junk, b"PK\x03\x04 this is not a zip").unwrap();
    let c = read(&junk, &Limits::default());
    assert!(matches!(c.error, Some(ArchiveError::Corrupt { .. })));
    let c = read(&dir.path().join("thing.rar"), &Limits::default());
    assert!(c.error.is_some());
}

#[test]
fn zip_and_wheel_members_are_checked_the_same_way() {
    use zip::write::SimpleFileOptions;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pkg-1.0-py3-none-any.whl");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("pkg/__init__.py", opts).unwrap();
    z.write_all(GOOD).unwrap();
    z.start_file("../escape.py", opts).unwrap();
    z.write_all(GOOD).unwrap();
    z.add_symlink("pkg/link.py", "/etc/passwd", opts).unwrap();
    z.add_symlink("pkg/README.rst", "../README.rst", opts)
        .unwrap();
    z.start_file("pkg-1.0.dist-info/METADATA", opts).unwrap();
    z.write_all(b"Name: pkg\n").unwrap();
    z.finish().unwrap();
    let c = read(&p, &Limits::default());
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(
        c.members
            .iter()
            .map(|m| m.path.as_str())
            .collect::<Vec<_>>(),
        ["pkg/__init__.py"]
    );
    assert_eq!(
        c.refused,
        [
            ("../escape.py".to_string(), Refusal::PathTraversal),
            ("pkg/link.py".to_string(), Refusal::Link)
        ]
    );
}

#[cfg(unix)]
#[test]
fn folders_refuse_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(pkg.join("sub")).unwrap();
    std::fs::write(pkg.join("a.py"), GOOD).unwrap();
    std::fs::write(pkg.join("sub/b.py"), GOOD).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", pkg.join("sub/link.py")).unwrap();
    // Links to files that would not be read anyway are not reported.
    std::fs::write(pkg.join("README.rst"), "readme").unwrap();
    std::os::unix::fs::symlink("../README.rst", pkg.join("sub/README.rst")).unwrap();
    std::os::unix::fs::symlink("../README.rst", pkg.join("CLAUDE.md")).unwrap();
    let c = read(&pkg, &Limits::default());
    assert_eq!(
        c.members
            .iter()
            .map(|m| m.path.as_str())
            .collect::<Vec<_>>(),
        ["a.py", "sub/b.py"]
    );
    assert_eq!(c.refused, [("sub/link.py".to_string(), Refusal::Link)]);
}

#[test]
fn conda_packages_are_read_from_their_inner_zstd_tar() {
    use zip::write::SimpleFileOptions;
    let dir = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    entry(
        &mut b,
        "lib/python3.11/site-packages/pkg/__init__.py",
        tar::EntryType::Regular,
        GOOD,
        None,
    );
    entry(
        &mut b,
        "lib/python3.11/site-packages/../../../evil.py",
        tar::EntryType::Regular,
        GOOD,
        None,
    );
    let inner = zstd::encode_all(&b.into_inner().unwrap()[..], 3).unwrap();
    let p = dir.path().join("pkg-1.0-py_0.conda");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    z.start_file("metadata.json", opts).unwrap();
    z.write_all(b"{\"conda_pkg_format_version\": 2}").unwrap();
    z.start_file("info-pkg-1.0-py_0.tar.zst", opts).unwrap();
    z.write_all(&zstd::encode_all(&b""[..], 3).unwrap())
        .unwrap();
    z.start_file("pkg-pkg-1.0-py_0.tar.zst", opts).unwrap();
    z.write_all(&inner).unwrap();
    z.finish().unwrap();
    let c = read(&p, &Limits::default());
    assert!(c.error.is_none(), "{:?}", c.error);
    let mut members = c.members;
    assert_eq!(
        members.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(),
        ["lib/python3.11/site-packages/pkg/__init__.py"]
    );
    assert_eq!(
        c.refused,
        [(
            "lib/python3.11/site-packages/../../../evil.py".to_string(),
            Refusal::PathTraversal
        )]
    );
    strip_top_folder(&mut members);
    assert!(
        members[0].path.starts_with("lib/"),
        "only `<name>-<version>/` folders are stripped"
    );
}

#[test]
fn empty_and_memberless_archives_are_errors_not_empty_packages() {
    let dir = tempfile::tempdir().unwrap();
    let empty_tar = tar::Builder::new(Vec::new()).into_inner().unwrap();
    let empty_zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero-1.0.tar.gz", Vec::new(), "empty file (0 bytes)"),
        ("zero-1.0.whl", Vec::new(), "empty file (0 bytes)"),
        ("gzempty-1.0.tar.gz", gz(b""), "no members"),
        ("tarempty-1.0.tar.gz", gz(&empty_tar), "no members"),
        (
            "zipempty-1.0.zip",
            empty_zip.finish().unwrap().into_inner(),
            "no members",
        ),
    ];
    for (name, bytes, says) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let c = read(&p, &Limits::default());
        match &c.error {
            Some(e @ ArchiveError::Corrupt { .. }) => {
                let m = e.to_string();
                assert!(m.contains(says) && m.contains(name), "{name}: {m}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn zip_names_that_disagree_or_hold_control_characters_are_refused() {
    use zip::write::SimpleFileOptions;
    let dir = tempfile::tempdir().unwrap();
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let o = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for name in ["pkg/ok.py", "pkg/evil.py", "pkg/e\rt_tests.py"] {
        z.start_file(name, o).unwrap();
        z.write_all(GOOD).unwrap();
    }
    let mut bytes = z.finish().unwrap().into_inner();
    // The local header of pkg/evil.py (its first mention: local headers come before the
    // central directory) is made to name pkg/exil.py.
    let at = bytes.windows(11).position(|w| w == b"pkg/evil.py").unwrap();
    bytes[at + 5] = b'x';
    let p = dir.path().join("pkg-1.0-py3-none-any.whl");
    std::fs::write(&p, &bytes).unwrap();
    let c = read(&p, &Limits::default());
    assert!(c.error.is_none(), "{:?}", c.error);
    assert_eq!(
        c.members
            .iter()
            .map(|m| m.path.as_str())
            .collect::<Vec<_>>(),
        ["pkg/ok.py"]
    );
    assert_eq!(
        c.refused,
        [
            ("pkg/evil.py".to_string(), Refusal::NameMismatch),
            ("pkg/e\rt_tests.py".to_string(), Refusal::ControlCharacters),
        ]
    );

    // In a tar too.
    let t = tar_gz(dir.path(), "ctl-1.0.tar.gz", |b| {
        entry(b, "ctl-1.0/a\nb.py", tar::EntryType::Regular, GOOD, None);
        entry(b, "ctl-1.0/ok.py", tar::EntryType::Regular, GOOD, None);
    });
    let c = read(&t, &Limits::default());
    assert_eq!(
        c.refused,
        [("ctl-1.0/a\nb.py".to_string(), Refusal::ControlCharacters)]
    );
    assert_eq!(c.members.len(), 1);
}
