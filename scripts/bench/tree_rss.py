#!/usr/bin/env python3
"""Runs a command and reports the peak of the summed RSS of it and all its descendants,
sampled from /proc every 20 ms (Linux). `/usr/bin/time` reports only the largest single
process, which understates multi-process pipelines such as datasets' num_proc workers.

Usage: tree_rss.py LABEL CMD [ARG...]   → "LABEL: peak tree RSS N MB, wall S s" on stderr
"""
import os
import subprocess
import sys
import time


def tree_rss_kb(root):
    children = {}
    rss = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as f:
                kb = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except (OSError, StopIteration, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
        rss[int(pid)] = kb
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def main():
    label, cmd = sys.argv[1], sys.argv[2:]
    start = time.monotonic()
    proc = subprocess.Popen(cmd)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
    wall = time.monotonic() - start
    print(f"  {label}: peak tree RSS {peak / 1024:.0f} MB, wall {wall:.1f} s, exit {proc.returncode}", file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
