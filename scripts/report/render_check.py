#!/usr/bin/env python3
"""Renders a pipeline report (report.html of `pytorrent run`) in headless Chromium and
checks that it needs no JavaScript (no script, no event handler, nothing outside the page),
that every section is there with its heading and some content, and that each inline figure
is a drawn SVG with a size; optionally saves a screenshot of the top of the page.

    scripts/report/render_check.py target/sample-run/report.html [--screenshot out.png]

Chromium comes from $CHROMIUM, else `chromium`, `chromium-browser` or `google-chrome` on the
PATH. Exit 0 when every check passes, 1 with the failures listed otherwise, 2 without a
browser. Standard library only.
"""

import argparse
import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The sections `pytorrent run` writes (crates/pipeline/src/html.rs, SECTIONS), in order.
SECTIONS = [
    ("pipeline", "Pipeline"),
    ("corpus", "Corpus"),
    ("licenses", "Licenses"),
    ("tokenizer", "Tokenizer"),
    ("shards", "Shards"),
    ("training", "Loss curves"),
    ("finetune", "Fine-tuning for code search"),
    ("fill-mask", "Fill-mask"),
    ("cloze", "Cloze test"),
    ("retrieval", "Code retrieval"),
    ("overlap", "Train/test overlap"),
    ("about", "About this report"),
]


def chromium():
    for name in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Dom(html.parser.HTMLParser):
    """Sections with their first h2 text, svg elements and their sizes, scripts."""

    def __init__(self):
        super().__init__()
        self.sections = {}
        self.current = None
        self.in_h2 = False
        self.svgs = []
        self.scripts = 0
        self.handlers = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.current = a.get("id")
            self.sections[self.current] = {"h2": "", "svgs": 0, "text": 0}
        elif tag == "h2":
            self.in_h2 = True
        elif tag == "svg":
            self.svgs.append((a.get("width"), a.get("height")))
            if self.current:
                self.sections[self.current]["svgs"] += 1
        elif tag == "script":
            self.scripts += 1
        self.handlers += sum(1 for k, _ in attrs if k.startswith("on"))
        for key in ("src", "href"):
            v = a.get(key, "")
            if v and not v.startswith("#"):
                self.external.append(v)

    def handle_endtag(self, tag):
        if tag == "h2":
            self.in_h2 = False
        elif tag == "section":
            self.current = None

    def handle_data(self, data):
        if self.current and self.in_h2:
            self.sections[self.current]["h2"] += data
        elif self.current:
            self.sections[self.current]["text"] += len(data.strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--screenshot", type=Path, help="save a PNG of the page here")
    ap.add_argument("--width", type=int, default=1000)
    ap.add_argument("--height", type=int, default=1800)
    args = ap.parse_args()
    browser = chromium()
    if browser is None:
        print("no Chromium found: set CHROMIUM or install chromium", file=sys.stderr)
        return 2
    url = args.report.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
        ]
        # Chromium's --dump-dom and --screenshot run scripts of their own, so they cannot run
        # with JavaScript off; the page is checked instead to have no script and no event
        # handler, so what is rendered here is what a browser without JavaScript shows.
        dom = subprocess.run(
            common + ["--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if dom.returncode != 0:
            print(dom.stderr, file=sys.stderr)
            return 1
        if args.screenshot:
            shot = subprocess.run(
                common
                + [
                    f"--window-size={args.width},{args.height}",
                    f"--screenshot={args.screenshot.resolve()}",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if shot.returncode != 0 or not args.screenshot.is_file():
                print(shot.stderr, file=sys.stderr)
                return 1
    parsed = Dom()
    parsed.feed(dom.stdout)
    failures = []
    for sid, title in SECTIONS:
        s = parsed.sections.get(sid)
        if s is None:
            failures.append(f"section #{sid} is missing")
        elif s["h2"].strip() != title:
            failures.append(f"section #{sid}: heading {s['h2']!r}, expected {title!r}")
        elif s["text"] == 0:
            failures.append(f"section #{sid} is empty")
    order = [sid for sid in parsed.sections if sid in dict(SECTIONS)]
    if order != [sid for sid, _ in SECTIONS if sid in parsed.sections]:
        failures.append(f"sections out of order: {order}")
    for w, h in parsed.svgs:
        if not w or not h or float(w) <= 0 or float(h) <= 0:
            failures.append(f"an svg without a size ({w} x {h})")
    if parsed.scripts:
        failures.append(f"{parsed.scripts} script elements (the page must need none)")
    if parsed.handlers:
        failures.append(f"{parsed.handlers} event handler attributes")
    if parsed.external:
        failures.append(f"references outside the page: {parsed.external[:5]}")
    for f in failures:
        print(f"FAIL {f}")
    svgs = {sid: s["svgs"] for sid, s in parsed.sections.items()}
    print(
        f"{len(parsed.sections)} sections, {len(parsed.svgs)} figures "
        f"({', '.join(f'{k}: {v}' for k, v in svgs.items() if v)})"
        + (f"; screenshot {args.screenshot}" if args.screenshot else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
