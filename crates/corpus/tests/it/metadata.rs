//! Package metadata on real PyTorrent files (tests/fixtures/pytorrent-metadata, from the
//! public PyTorrent repository) and on the sample packages' PyPI documents.

use std::path::PathBuf;

use pytorrent_corpus::license::LicenseClass;
use pytorrent_corpus::metadata::{MetaSource, MetadataIndex};

fn fixtures() -> PathBuf {
    pytorrent_testkit::fixtures("pytorrent-metadata")
}

#[test]
fn pypi_and_anaconda_documents_load_into_one_index() {
    let index = MetadataIndex::load(&[fixtures()]).unwrap();
    // Five PyPI documents, three Anaconda ones; the schema files are not packages.
    assert_eq!(index.len(), 8);
    let m = index.get("1pass").unwrap();
    assert_eq!(m.source, MetaSource::Pypi);
    assert_eq!(m.version.as_deref(), Some("0.2.1"));
    assert_eq!(m.license.ids, ["MIT"]);
    let a = index.get("addict").unwrap();
    assert_eq!(a.source, MetaSource::Anaconda);
    assert_eq!(a.version.as_deref(), Some("2.2.1"));
    assert!(a
        .summary
        .as_deref()
        .unwrap()
        .starts_with("Addict is a dictionary"));
}

#[test]
fn licenses_from_field_classifiers_and_anaconda_strings() {
    let index = MetadataIndex::load(&[fixtures()]).unwrap();
    let lic = |n: &str| index.get(n).unwrap().license.clone();
    // Empty license field, BSD classifier.
    assert_eq!(lic("12factor-vault").ids, ["LicenseRef-BSD"]);
    assert_eq!(lic("12factor-vault").class, LicenseClass::Permissive);
    assert_eq!(lic("0x-web3").ids, ["MIT"]);
    assert_eq!(lic("0x-json-schemas").ids, ["Apache-2.0"]);
    // A real conflict: "AGPLv3+" in the field, MIT in the classifier: copyleft wins.
    assert_eq!(lic("1a23-telemetry").ids, ["AGPL-3.0-or-later", "MIT"]);
    assert_eq!(lic("1a23-telemetry").class, LicenseClass::Copyleft);
    assert_eq!(lic("aiohttp").ids, ["Apache-2.0"]);
    assert_eq!(lic("absl-py").class, LicenseClass::Permissive);
}

#[test]
fn records_join_by_pep503_name() {
    let index = MetadataIndex::load(&[fixtures()]).unwrap();
    for spelling in ["0x-web3", "0x_Web3", "0X.WEB3", "0x__web3"] {
        assert_eq!(
            index.get(spelling).map(|m| m.name.as_str()),
            Some("0x-web3"),
            "{spelling}"
        );
    }
    assert!(index.get("0xweb3").is_none());
}

#[test]
fn sample_package_documents_are_all_permissive() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data-samples/packages/Package_Metadata");
    let index = MetadataIndex::load(&[dir]).unwrap();
    assert_eq!(index.len(), 10);
    for m in index.iter() {
        assert_eq!(
            m.license.class,
            LicenseClass::Permissive,
            "{}: {:?}",
            m.name,
            m.license
        );
    }
}
