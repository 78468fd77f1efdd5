#!/usr/bin/env python3
"""The table `make demo` ends with: CPU per endpoint, read from the joined
cpu.pprof files spanprof's `file` exporter wrote, next to the service's
designed weights and its own ground truth; the join hit ratio, both as
measured on the files and as spanprof reports it on /metrics.

The profiles are read with `go tool pprof -raw` (an independent pprof
reader, not spanprof's own decoder).

usage: demo_report.py --data DIR --truth FILE [--metrics FILE] [--go GO]
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

SAMPLE_RE = re.compile(r"^\s*(\d+(?:\s+\d+)*):\s")
LABEL_RE = re.compile(r"(\S[^\[\]]*?):\[([^\]]*)\]")


def read_raw(go, path):
    """Returns (cpu sample index, [(cpu_ns, {label: value})]) of one profile,
    or None when it is not a CPU profile."""
    env = dict(os.environ, PPROF_TMPDIR=os.path.dirname(path))
    out = subprocess.run([go, "tool", "pprof", "-symbolize=none", "-raw", path],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"go tool pprof -raw {path}: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    try:
        start = lines.index("Samples:")
    except ValueError:
        return None
    types = lines[start + 1].split()
    if "cpu/nanoseconds" not in types:
        return None
    col = types.index("cpu/nanoseconds")
    samples = []
    for line in lines[start + 2:]:
        if not line.startswith(" "):
            break  # "Locations" and what follows
        m = SAMPLE_RE.match(line)
        if m:
            samples.append([int(m.group(1).split()[col]), {}])
        elif samples:
            for key, val in LABEL_RE.findall(line):
                samples[-1][1].setdefault(key.strip(), val)
    return samples


def metric_lines(path):
    """Prometheus text -> [(name, labels, value)] of the spanprof_*join* series."""
    out = []
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if line.startswith("#") or "join" not in line:
                continue
            m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m:
                try:
                    out.append((m.group(1), m.group(2) or "", float(m.group(3))))
                except ValueError:
                    pass
    return out


def pct(a, b):
    return 100.0 * a / b if b else 0.0


def status_page(url, copy):
    """The status page's URL and, from the copy of /status.json taken before
    spanprof stopped, the shares it was showing (the same labelled samples)."""
    if not url:
        return
    print(f"status page: {url} (live while spanprof ran)")
    try:
        with open(copy) as f:
            doc = json.load(f)
    except (OSError, ValueError, TypeError):
        print()
        return
    for j in doc.get("join", []):
        for svc in j.get("services", []):
            eps = ", ".join(f"{e['endpoint']} {100 * e['share']:.1f} %" for e in svc.get("endpoints", []))
            hr = j.get("hit_ratio", {}).get("ratio")
            hit = f"{100 * hr:.1f} %" if hr is not None else "n/a"
            print(f"             it showed {svc['service']}: {eps}; hit ratio {hit} ({copy})")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--status-url", help="spanprof's status page, printed next to the table")
    ap.add_argument("--status-json", help="a copy of /status.json taken before spanprof stopped")
    ap.add_argument("--go", default="go")
    a = ap.parse_args()

    with open(a.truth) as f:
        truth = json.load(f)
    files = sorted(glob.glob(os.path.join(a.data, "profiles", "**", "*.pprof"), recursive=True))
    total = in_span = labelled = right = 0
    by_endpoint = {}
    cpu_files = []
    for path in files:
        samples = read_raw(a.go, path)
        if samples is None:
            continue
        cpu_files.append(path)
        for ns, labels in samples:
            total += ns
            sid = labels.get("span_id")
            ep = labels.get("trace endpoint")
            if sid:
                in_span += ns
                if ep:
                    labelled += ns
                    want = truth["spans"].get(sid, {}).get("endpoint")
                    right += ns if want == ep else 0
            if ep:
                by_endpoint[ep] = by_endpoint.get(ep, 0) + ns

    print()
    if not cpu_files:
        print(f"spanprof demo: no CPU profile under {a.data}/profiles: the scrape or the "
              "export did not work; see the spanprof log above", file=sys.stderr)
        return 1
    ep_total = sum(by_endpoint.values())
    print(f"CPU per endpoint, read from the {len(cpu_files)} joined CPU profile(s) spanprof exported")
    print(f"({total / 1e9:.2f} s of CPU sampled, {pct(in_span, total):.1f} % of it inside spans; "
          "the rest is the HTTP server, the span exporter and the Go runtime)")
    print()
    print(f"  {'endpoint':<22} {'CPU share':>9}   {'designed':>8}   {'service ground truth':>20}")
    names = sorted(set(by_endpoint) | set(truth["endpoints"]),
                   key=lambda n: -by_endpoint.get(n, 0))
    for name in names:
        t = truth["endpoints"].get(name, {})
        designed = f"{100 * t['designed_share']:.0f} %" if "designed_share" in t else "-"
        measured = f"{100 * t['share']:.1f} %" if "share" in t else "-"
        print(f"  {name:<22} {pct(by_endpoint.get(name, 0), ep_total):7.1f} %   {designed:>8}   {measured:>20}")
    print()
    status_page(a.status_url, a.status_json)

    hit = pct(labelled, in_span)
    print(f"join hit ratio: {hit:.1f} % of the span-labelled CPU samples got a `trace endpoint` label;")
    print(f"                {pct(right, labelled):.1f} % of those name the endpoint the service's ground "
          "truth gives for their span")
    series = metric_lines(a.metrics)
    ratio = [s for s in series if "ratio" in s[0]]
    outcome = [s for s in series if s[0].endswith("join_samples_total") and "outcome=" in s[1]]
    if ratio:
        for name, labels, value in ratio:
            print(f"                spanprof reports {name}{labels} = {value:.4f}")
    if outcome:
        parts = []
        for _, labels, value in outcome:
            m = re.search(r'outcome="([^"]*)"', labels)
            parts.append(f"{m.group(1) if m else labels} {value:.0f}")
        parts = ", ".join(parts)
        print(f"                samples by outcome (/metrics): {parts}")
    if not series and a.metrics:
        print("                (no spanprof_*join* series on /metrics)")
    print()

    traces = os.path.join(a.data, "traces.jsonl")
    if os.path.exists(traces):
        with open(traces) as f:
            n = sum(1 for line in f if line.strip())
        print(f"spans:    {n} line(s) in {traces} (the Datadog spans spanprof would send)")
    print(f"profiles: {len(cpu_files)} CPU profile(s) under {os.path.join(a.data, 'profiles')}/")
    print(f"truth:    {a.truth}")
    print(f"try:      go tool pprof -tags {os.path.join(a.data, 'profiles', '*', os.path.basename(cpu_files[0]))}")
    if labelled == 0:
        print("spanprof demo: no sample carries a `trace endpoint` label: the join did not "
              "label anything", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
