#!/usr/bin/env python3
"""Checks that every #include in the source folders follows the layer table
in ARCHITECTURE.md (between the `layers:begin` and `layers:end` markers), so
the picture there and the code cannot drift apart.

Meson already enforces most of it (each folder compiles with only its own
include directories and those of the layers below), but a relative path
("../../config/x.h") or a header copied between folders would slip past the
compiler; this reads the includes themselves.

Usage: check_layers.py [SOURCE_ROOT]   (exit 1 and one line per violation)
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), '..'))

# Headers generated into the build tree, and the layer they belong to.
GENERATED = {'sp_version.h': 'core'}
GENERATED_SUFFIX = {'.pb-c.h': 'proto'}


def read_table():
    """{layer: (folder globs, allowed layers)} from ARCHITECTURE.md."""
    text = open(os.path.join(ROOT, 'ARCHITECTURE.md'), encoding='utf-8').read()
    m = re.search(r'<!-- layers:begin -->(.*?)<!-- layers:end -->', text, re.S)
    if not m:
        sys.exit('check_layers: ARCHITECTURE.md has no <!-- layers:begin --> table')
    table = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 3 or cells[0] in ('layer', '') or set(cells[0]) <= {'-', ' '}:
            continue
        layer = cells[0]
        folders = re.findall(r'`([^`]+)`', cells[1])
        allowed = {a.strip() for a in cells[2].split(',')}
        table[layer] = ([f.rstrip('/') for f in folders], allowed)
    if not table:
        sys.exit('check_layers: the layer table in ARCHITECTURE.md is empty')
    return table


def folder_of(rel, table):
    """(layer, unit) of a path relative to ROOT: unit is the folder a
    component may include from besides the layers (its own)."""
    for layer, (folders, _) in table.items():
        for f in folders:
            if f.endswith('/*'):
                base = f[:-2]
                if rel.startswith(base + '/'):
                    parts = rel.split('/')
                    return layer, '/'.join(parts[:2])
            elif rel == f or rel.startswith(f + '/'):
                return layer, f
    return None, None


def main():
    table = read_table()
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = os.path.relpath(dirpath, ROOT)
        if rel_dir.startswith(('.', 'build', 'tests', 'bench', 'examples', 'node_modules')) \
                and rel_dir != '.':
            dirnames[:] = []
            continue
        for name in filenames:
            if name.endswith(('.c', '.h')):
                files.append(os.path.normpath(os.path.join(rel_dir, name)))
    headers = {}
    for f in files:
        if f.endswith('.h'):
            headers.setdefault(os.path.basename(f), []).append(f)

    bad = []
    checked = 0
    for f in files:
        layer, unit = folder_of(f, table)
        if layer is None:
            continue
        allowed = table[layer][1]
        src = open(os.path.join(ROOT, f), encoding='utf-8', errors='replace').read()
        for lineno, line in enumerate(src.splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            checked += 1
            target = None
            relpath = os.path.normpath(os.path.join(os.path.dirname(f), inc))
            if os.path.exists(os.path.join(ROOT, relpath)):
                target = relpath
            elif os.path.basename(inc) in GENERATED:
                target_layer, target_unit = GENERATED[os.path.basename(inc)], None
            elif any(inc.endswith(s) for s in GENERATED_SUFFIX):
                target_layer = next(v for s, v in GENERATED_SUFFIX.items() if inc.endswith(s))
                target_unit = None
            else:
                cands = headers.get(os.path.basename(inc), [])
                own = [c for c in cands if os.path.dirname(c) == os.path.dirname(f)]
                target = (own or cands or [None])[0]
                if target is None:
                    bad.append(f'{f}:{lineno}: "{inc}" is no header of the source tree')
                    continue
            if target is not None:
                target_layer, target_unit = folder_of(target, table)
            if 'everything' in allowed:
                continue
            if target_layer == layer:
                ok = target_unit == unit if 'its own folder' in allowed else layer in allowed
            else:
                ok = target_layer in allowed
            if not ok:
                where = target or inc
                bad.append(f'{f}:{lineno}: {layer} includes "{inc}" ({where}, '
                           f'layer {target_layer}); ARCHITECTURE.md allows {", ".join(sorted(allowed))}')
    for b in bad:
        print(b)
    print(f'check_layers: {checked} includes in {len(files)} files, {len(bad)} against the '
          f'layer table')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
