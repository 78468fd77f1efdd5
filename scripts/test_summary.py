#!/usr/bin/env python3
"""Prints `N passed, N failed` (and skipped) over meson testlog.json files."""
import json
import sys

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        res = r.get('result')
        if res in ('OK', 'EXPECTEDFAIL'):
            passed += 1
        elif res == 'SKIP':
            skipped += 1
        else:
            failed += 1
            print('FAILED: %s (%s) in %s' % (r.get('name'), res, path.split('/')[0]))
print('%d passed, %d failed, %d skipped' % (passed, failed, skipped))
