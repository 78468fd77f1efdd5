#!/usr/bin/env python3
"""Keeps README.md's configuration and metrics references true to the code.

    readme_docs.py BIN check    exit 1 (naming what differs) when README.md is stale
    readme_docs.py BIN update   rewrite the two generated sections in place

The configuration reference is `spanprof reference`; the metrics reference is
every series a running spanprof with every component exposes on /metrics
(name, type, help), so neither can drift from the component tables."""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(SRC, 'README.md')


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reference(binary):
    out = subprocess.run([binary, 'reference'], check=True, capture_output=True, text=True).stdout
    # README has its own heading and intro for the section.
    lines = out.splitlines()
    if lines and lines[0].startswith('# '):
        lines = lines[1:]
    return '\n'.join(lines).strip() + '\n'


def metrics(binary):
    p = {k: free_port() for k in ('grpc', 'http', 'pprof', 'health', 'metrics')}
    tmp = tempfile.mkdtemp(prefix='spanprof-readme-')
    cfg = os.path.join(tmp, 'all.yaml')
    with open(cfg, 'w') as f:
        f.write(f"""
receivers:
  otlp:
    protocols:
      grpc: {{ endpoint: 127.0.0.1:{p['grpc']} }}
      http: {{ endpoint: 127.0.0.1:{p['http']} }}
  pprof:
    endpoint: 127.0.0.1:{p['pprof']}
    scrape: [{{ targets: ["127.0.0.1:9"], service: docs, profiles: [cpu], interval: 1h }}]
processors:
  join: {{}}
exporters:
  datadog: {{ api: {{ key: readme-docs-key }}, traces: {{ endpoint: "http://127.0.0.1:9" }}, profiles: {{ endpoint: "http://127.0.0.1:9" }} }}
  file: {{ path: {tmp}/data }}
  debug: {{ path: {tmp}/debug.jsonl }}
  otlphttp: {{ endpoint: "http://127.0.0.1:9" }}
extensions:
  health_check: {{ endpoint: 127.0.0.1:{p['health']} }}
service:
  extensions: [health_check]
  pipelines:
    traces: {{ receivers: [otlp], processors: [join], exporters: [datadog, file, debug] }}
    profiles: {{ receivers: [pprof], processors: [join], exporters: [datadog, file, debug] }}
    metrics: {{ receivers: [otlp], exporters: [otlphttp] }}
    logs: {{ receivers: [otlp], exporters: [otlphttp] }}
  telemetry:
    metrics: {{ address: 127.0.0.1:{p['metrics']} }}
""")
    proc = subprocess.Popen([binary, '--config', cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    text = None
    try:
        for _ in range(100):
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{p['metrics']}/metrics", timeout=1).read().decode()
                break
            except OSError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    if text is None:
        sys.exit('spanprof did not serve /metrics:\n' + proc.stderr.read().decode())
    help_, type_ = {}, {}
    for line in text.splitlines():
        m = re.match(r'# (HELP|TYPE) (\S+) (.*)', line)
        if m:
            (help_ if m.group(1) == 'HELP' else type_)[m.group(2)] = m.group(3)
    rows = ['| metric | type | meaning |', '|--------|------|---------|']
    for name in help_:
        rows.append(f'| `{name}` | {type_.get(name, "")} | {help_[name]} |')
    return '\n'.join(rows) + '\n'


def section(text, name):
    m = re.search(rf'<!-- {name}:begin -->\n(.*?)<!-- {name}:end -->', text, re.S)
    return m.group(1) if m else None


def replace(text, name, body):
    return re.sub(rf'(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)',
                  lambda m: m.group(1) + body + m.group(2), text, flags=re.S)


def main():
    binary, mode = sys.argv[1], sys.argv[2]
    text = open(README).read()
    want = {'reference': reference(binary), 'metrics': metrics(binary)}
    if mode == 'update':
        for name, body in want.items():
            text = replace(text, name, body)
        open(README, 'w').write(text)
        return 0
    stale = [name for name, body in want.items() if section(text, name) != body]
    for name in stale:
        got = (section(text, name) or '').splitlines()
        exp = want[name].splitlines()
        diff = [l for l in exp if l not in got][:5] + ['(README only) ' + l for l in got if l not in exp][:5]
        print(f'README.md section "{name}" is stale; run scripts/readme_docs.py build/spanprof update', file=sys.stderr)
        print('\n'.join(diff), file=sys.stderr)
    return 1 if stale else 0


if __name__ == '__main__':
    sys.exit(main())
