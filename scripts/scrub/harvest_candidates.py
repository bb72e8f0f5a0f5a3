#!/usr/bin/env python3
"""Candidates for the scrubber's labelled set: every line of the packages' .py files that
could hold a secret or an address, found with a wider net than the scrubber's own rules
(so its misses are among them too), then a seeded sample of them.

    python3 scripts/scrub/harvest_candidates.py PACKAGES_DIR OUT.jsonl [PER_KIND=150] [SEED=7]

Kinds: `email` (anything shaped like name@domain.tld), `url_credential` (scheme://user:x@),
`token` (the prefixes of cloud keys and API tokens, PEM private-key markers, and
password/secret/token/api_key assignments of a quoted literal). Each line becomes one item
{"package", "path", "line", "kind", "text"}; labelling is done by hand (label_set.py)."""
import json, random, re, sys, tarfile, zipfile
from pathlib import Path

NETS = {
    "email": re.compile(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+"),
    "url_credential": re.compile(r"[a-zA-Z][\w+.\-]*://[^\s/@'\"]*:[^\s/@'\"]*@"),
    "token": re.compile(
        r"AKIA|ASIA|ghp_|gho_|github_pat_|xox[abposr]-|AIza|sk_live_|rk_live_|sk-|PRIVATE KEY"
        r"|(?i:(?:password|passwd|secret|token|api_?key)\s*[:=]\s*['\"][^'\"]{6,}['\"])"
    ),
}


def members(path):
    name = path.name.lower()
    try:
        if name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tar")):
            with tarfile.open(path) as t:
                for m in t:
                    if m.isfile() and m.name.endswith(".py") and m.size < 4 << 20:
                        f = t.extractfile(m)
                        if f:
                            yield m.name, f.read()
        elif name.endswith((".zip", ".whl")):
            with zipfile.ZipFile(path) as z:
                for n in z.namelist():
                    if n.endswith(".py"):
                        yield n, z.read(n)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError):
        return


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    per_kind = int(sys.argv[3]) if len(sys.argv) > 3 else 150
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 7)
    found = {k: [] for k in NETS}
    for archive in sorted(src.iterdir()):
        package = archive.name
        for path, data in members(archive):
            text = data.decode("utf-8", "replace")
            for no, line in enumerate(text.splitlines(), 1):
                if len(line) > 400:
                    continue
                for kind, net in NETS.items():
                    if net.search(line):
                        found[kind].append(
                            {"package": package, "path": path, "line": no, "kind": kind,
                             "text": line.strip()})
                        break
    with out.open("w") as f:
        for kind, items in found.items():
            # One line per distinct text: a header repeated in every file counts once.
            seen, uniq = set(), []
            for it in items:
                if it["text"] not in seen:
                    seen.add(it["text"])
                    uniq.append(it)
            pick = rng.sample(uniq, min(per_kind, len(uniq)))
            print(f"{kind}: {len(items)} lines, {len(uniq)} distinct, {len(pick)} sampled",
                  file=sys.stderr)
            for it in sorted(pick, key=lambda i: (i["package"], i["path"], i["line"])):
                f.write(json.dumps(it, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
