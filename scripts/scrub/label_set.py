#!/usr/bin/env python3
"""Turns harvested candidates (harvest_candidates.py) and hand labels into the labelled set
the scrubber is measured on (tests/fixtures/scrub/labelled.jsonl):

    python3 scripts/scrub/label_set.py CANDIDATES.jsonl LABELS.json OUT.jsonl

LABELS.json: {"redact": [indices of candidates that hold a real secret or a plausible
person's or organisation's mailbox]}; every other candidate is labelled "keep". The policy:
an address is personal data unless it is an obvious placeholder (reserved documentation
domains, `user@`/`test@`-style names at generic domains such as company.com or domain.com);
SSH remotes, URL user parts, package@version specs and ids are not addresses; a credential
is a secret unless it is a placeholder, a template, a pattern, or a well-known development
default (guest:guest, root:root on localhost).

What is kept in the fixture is pseudonymised: in addresses to redact, every letter and digit
of the mailbox name and of the domain's labels below the public suffix is replaced (a seeded
substitution of the same kind of character), large mail providers' domains stay; keys keep
their prefix and length. The scrubber's verdict depends on the shape, which this keeps."""
import json, random, re, sys

PROVIDERS = {"gmail.com", "163.com", "qq.com", "outlook.com", "yandex.ru", "free.fr",
             "zohomail.in", "hotmail.com", "yahoo.com"}
EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+)@([A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})")
rng = random.Random(11)
LOWER, UPPER, DIGITS = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
SUB = {}
for alphabet in (LOWER, UPPER, DIGITS):
    shuffled = list(alphabet)
    rng.shuffle(shuffled)
    SUB.update(zip(alphabet, shuffled))


def scramble(s):
    return "".join(SUB.get(c, c) for c in s)


def pseudonymise_email(m):
    local, domain = m.group(1), m.group(2)
    if domain.lower() not in PROVIDERS:
        labels = domain.split(".")
        # Keep the public suffix: the last label, or the last two for co.uk-like ones.
        keep = 2 if len(labels) > 2 and len(labels[-2]) <= 3 else 1
        domain = ".".join([scramble(l) for l in labels[:-keep]] + labels[-keep:])
    return f"{scramble(local)}@{domain}"


def main():
    cands = [json.loads(l) for l in open(sys.argv[1])]
    redact = set(json.load(open(sys.argv[2]))["redact"])
    with open(sys.argv[3], "w") as out:
        for i, c in enumerate(cands):
            text = c["text"]
            if i in redact:
                text = EMAIL.sub(pseudonymise_email, text)
                text = re.sub(r"AIza[0-9A-Za-z_\-]{35}", lambda m: "AIza" + scramble(m.group(0)[4:]), text)
            out.write(json.dumps({
                "expect": "redact" if i in redact else "keep",
                "kind": c["kind"],
                "source": f'{c["package"]}:{c["path"]}:{c["line"]}',
                "text": text,
            }, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
