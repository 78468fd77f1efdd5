#!/usr/bin/env python3
"""The repository stands on its own: nothing in it reads, includes or cites a
directory beside the clone.

    standalone_check.py [SRC]

Scans the repository's files (git's tracked and untracked-but-not-ignored
files when SRC is a git work tree; otherwise every file outside .git, build*
and node_modules) and exits 1, naming file:line, when one of them
  - mentions the parent directory's `shared` folder (a path that climbs out
    of the clone into a sibling `shared`, or that folder's spec, fixtures or
    design files),
  - reads the old SPANPROF_<...> environment variable that pointed there,
or when a file in tests/data/fixtures is not described in that folder's
README.md (every fixture says which real client made it)."""
import os
import re
import subprocess
import sys

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
# Built from pieces so that this file does not match itself.
PATTERNS = [re.compile(re.escape('..') + r'/+' + 'shared'),
            re.compile(r'\bshared/+(spec|fixtures|design)\b'),
            re.compile('SPANPROF_' + 'SHARED')]


def repo_files():
    try:
        out = subprocess.run(['git', '-C', SRC, 'ls-files', '-z', '--cached', '--others',
                              '--exclude-standard'], capture_output=True, check=True).stdout
        return sorted({f for f in out.decode().split('\0') if f})
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(SRC):
            rel = os.path.relpath(root, SRC)
            dirs[:] = [d for d in dirs if d != '.git' and d != 'node_modules'
                       and not (rel == '.' and d.startswith('build'))]
            files += [os.path.normpath(os.path.join(rel, n)) for n in names]
        return sorted(files)


def main():
    bad = []
    files = repo_files()
    for f in files:
        path = os.path.join(SRC, f)
        if not os.path.isfile(path):
            continue  # deleted in the work tree, not yet committed
        with open(path, 'rb') as fh:
            data = fh.read()
        if b'\0' in data[:8192]:
            continue  # binary (fixtures, corpora)
        for n, line in enumerate(data.decode('utf-8', 'replace').splitlines(), 1):
            if any(p.search(line) for p in PATTERNS):
                bad.append(f'{f}:{n}: {line.strip()[:120]}')
    if len(files) < 50:
        bad.append(f'only {len(files)} files found under {SRC}: not the repository?')

    fixtures = os.path.join(SRC, 'tests', 'data', 'fixtures')
    readme = os.path.join(fixtures, 'README.md')
    if not os.path.isfile(readme):
        bad.append('tests/data/fixtures/README.md is missing')
    else:
        text = open(readme, encoding='utf-8').read()
        for name in sorted(os.listdir(fixtures)):
            if os.path.isfile(os.path.join(fixtures, name)) and name != 'README.md' \
                    and f'`{name}`' not in text:
                bad.append(f'tests/data/fixtures/{name}: not described in its README.md')

    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print(f'standalone: {len(bad)} problem(s): the repository must not depend on '
              'anything beside it', file=sys.stderr)
        return 1
    print(f'standalone: {len(files)} files checked, nothing points outside the repository')
    return 0


if __name__ == '__main__':
    sys.exit(main())
