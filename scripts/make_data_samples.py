#!/usr/bin/env python3
"""Rebuilds data-samples/ from a few small, permissively licensed packages.

- data-samples/packages/: the sdists (as pip downloads them), their license files, and
  their JSON-API metadata documents (Package_Metadata/pypi_packages/<name>.json, with the
  index and file-host names replaced by index.invalid).
- data-samples/corpus/: the reference extractor's records in PyTorrent's layout
  (docstrings/{train,valid,test}/<p>_scenario_docstrings_chk_0.jsonl.gz).

The index comes from pip's own configuration (PIP_INDEX_URL, pip.conf), else pip's default;
the JSON API is the index URL with a trailing /simple replaced by /pypi. Needs network access
to the package index; the result is committed, so tests never do.
"""
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "reference"))
import ast_extract  # noqa: E402

# name, version: chosen so every partition of the name-hash split has a package.
PACKAGES = [
    ("six", "1.17.0"), ("idna", "3.10"), ("tomli", "2.2.1"), ("more-itertools", "10.7.0"),
    ("itsdangerous", "2.2.0"), ("toolz", "1.0.0"), ("parse", "1.20.2"), ("jsonpatch", "1.33"),
    ("jsonpointer", "3.0.0"), ("webencodings", "0.5.1"),
]


def index_url():
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                           capture_output=True, text=True)
        url = r.stdout.strip() if r.returncode == 0 else ""
    if not url:
        from pip._internal.models.index import PyPI
        url = PyPI.simple_url
    return url.rstrip("/")


def json_api(index):
    return re.sub(r"/simple$", "/pypi", index)


def scrub(text, hosts):
    """Replaces the index's own host names by index.invalid: the hosts it serves files and
    docs from (any subdomain of them), and any host named after the index's own label."""
    domains = {".".join(h.split(":")[0].split(".")[-2:]) for h in hosts if h}
    labels = {d.split(".")[0] for d in domains}
    host = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"

    def repl(m):
        h = m.group(0).lower()
        if any(h == d or h.endswith("." + d) for d in domains) or any(l in h.split(".") for l in labels):
            return "index.invalid"
        return m.group(0)

    return re.sub(host, repl, text)


def license_files(archive):
    pat = re.compile(r"^[^/]+/(LICEN[CS]E|COPYING)[^/]*$", re.I)
    if archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                if pat.match(n):
                    yield n.split("/", 1)[1], z.read(n)
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile() and pat.match(m.name):
                    yield m.name.split("/", 1)[1], t.extractfile(m).read()


def main():
    pkgs_dir = os.path.join(ROOT, "data-samples", "packages")
    meta_dir = os.path.join(pkgs_dir, "Package_Metadata", "pypi_packages")
    corpus_dir = os.path.join(ROOT, "data-samples", "corpus", "docstrings")
    os.makedirs(meta_dir, exist_ok=True)
    index = index_url()
    api = json_api(index)
    records = {"train": [], "valid": [], "test": []}
    hosts = {urllib.parse.urlparse(index).netloc, urllib.parse.urlparse(api).netloc}
    docs = {}
    for name, version in PACKAGES:
        with urllib.request.urlopen(f"{api}/{name}/json") as r:
            doc = json.load(r)
        # The sdist is fetched by the URL and digest the metadata gives (pip download would
        # build it to learn its metadata, which runs the package's setup code).
        (sdist,) = [u for u in doc["releases"][version] if u["packagetype"] == "sdist"]
        # Mirrors may give file URLs relative to the JSON document.
        with urllib.request.urlopen(urllib.parse.urljoin(f"{api}/{name}/json", sdist["url"])) as r:
            data = r.read()
        if hashlib.sha256(data).hexdigest() != sdist["digests"]["sha256"]:
            sys.exit(f"{name}: sha256 mismatch for {sdist['filename']}")
        archive = os.path.join(pkgs_dir, sdist["filename"])
        with open(archive, "wb") as f:
            f.write(data)
        for u in doc["releases"][version]:
            hosts.add(urllib.parse.urlparse(u["url"]).netloc)
        hosts.add(urllib.parse.urlparse(doc["info"].get("docs_url") or "").netloc)
        # Only the pinned release's files are kept: full release histories run to megabytes.
        doc["releases"] = {version: doc["releases"][version]}
        docs[name] = doc
        lic_dir = os.path.join(pkgs_dir, "licenses", name)
        os.makedirs(lic_dir, exist_ok=True)
        for lname, data in license_files(archive):
            with open(os.path.join(lic_dir, os.path.basename(lname)), "wb") as f:
                f.write(data)
        sha = hashlib.sha256(open(archive, "rb").read()).hexdigest()
        for rec in ast_extract.extract(archive, name, sha):
            records[rec["partition"]].append(rec)
    for name, doc in docs.items():
        # PyTorrent's layout: one json.dumps line per package, no trailing newline.
        with open(os.path.join(meta_dir, f"{name}.json"), "w") as f:
            f.write(scrub(json.dumps(doc), hosts))
    for part, recs in records.items():
        d = os.path.join(corpus_dir, part)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{part}_scenario_docstrings_chk_0.jsonl.gz")
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
            for r in recs:
                gz.write((json.dumps(r, ensure_ascii=False) + "\n").encode())
        print(f"{path}: {len(recs)} records")


if __name__ == "__main__":
    main()
