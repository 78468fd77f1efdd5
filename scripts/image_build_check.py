#!/usr/bin/env python3
"""Runs deploy/Dockerfile's build stage on this machine, with node, Go and
clang hidden from PATH, to prove the image builds (Docker itself is not
needed, nor available in CI).

    image_build_check.py [--result FILE]

The build stage's instructions are read from the Dockerfile and replayed in
order in a temporary directory: COPY copies from the repository (its
tracked and untracked-but-not-ignored files, what the build context keeps),
WORKDIR is that copy, and every RUN runs with bash under a PATH that holds
links to every program on the current PATH except node, nodejs, npm, npx,
corepack, go, gofmt and clang*. Two things are adapted to a host that is
not a throw-away container: `/out` becomes a directory under the temporary
one, and `rm -rf /var/lib/apt/lists/*` (image size only) is not run. The
build must leave an executable /out/spanprof that answers --version.

--result FILE appends one line in meson's testlog.json format (name,
result OK/FAIL, duration), so scripts/test_summary.py counts it with the
other tests. Exit status 0 when the build passed."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
DOCKERFILE = os.path.join(SRC, 'deploy', 'Dockerfile')
NAME = 'image_build'
HIDDEN = {'node', 'nodejs', 'npm', 'npx', 'corepack', 'go', 'gofmt'}


def hidden(name, target):
    for n in (name, os.path.basename(target)):
        if n in HIDDEN or n.startswith('clang'):
            return True
    return False


def make_path(bindir):
    """A directory of links to every program on PATH except the hidden ones."""
    os.makedirs(bindir)
    left_out = set()
    for d in os.environ.get('PATH', '').split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                continue
            if hidden(name, os.path.realpath(path)):
                left_out.add(name)
                continue
            link = os.path.join(bindir, name)
            if not os.path.lexists(link):
                os.symlink(path, link)
    return sorted(left_out)


def build_stage(text):
    """The instructions of the first stage, continuation lines joined."""
    lines, cur = [], ''
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith('#')):
            continue
        if cur and s.startswith('#'):
            continue  # a comment inside a continued instruction
        if s.endswith('\\'):
            cur += s[:-1] + ' '
            continue
        lines.append(cur + s)
        cur = ''
    out, seen_from = [], 0
    for ln in lines:
        op, _, args = ln.partition(' ')
        op = op.upper()
        if op == 'FROM':
            seen_from += 1
            if seen_from > 1:
                break
            continue
        out.append((op, args.strip()))
    return out


def repo_files():
    try:
        r = subprocess.run(['git', '-C', SRC, 'ls-files', '-z', '--cached', '--others',
                            '--exclude-standard'], capture_output=True, check=True)
        return [f for f in r.stdout.decode().split('\0') if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for root, dirs, names in os.walk(SRC):
            rel = os.path.relpath(root, SRC)
            dirs[:] = [d for d in dirs if d not in ('.git', 'node_modules')
                       and not (rel == '.' and d.startswith('build'))]
            files += [os.path.normpath(os.path.join(rel, n)) for n in names]
        return files


def copy(srcs, dest, workdir, files):
    dest = dest if os.path.isabs(dest) else os.path.join(workdir, dest)
    for s in srcs:
        s = os.path.normpath(s)
        picked = [f for f in files if s == '.' or f == s or f.startswith(s + '/')]
        if not picked:
            raise RuntimeError(f'COPY {s}: not in the repository')
        for f in picked:
            if not os.path.isfile(os.path.join(SRC, f)):
                continue
            if s == '.':
                to = os.path.join(dest, f)
            elif len(srcs) == 1 and not dest.endswith('/') and f == s:
                to = dest
            else:
                to = os.path.join(dest, os.path.relpath(f, os.path.dirname(s) or '.'))
            os.makedirs(os.path.dirname(to), exist_ok=True)
            shutil.copy2(os.path.join(SRC, f), to)


def adapt(cmd, out):
    parts = [p.strip() for p in cmd.split('&&')]
    parts = [p for p in parts if not re.fullmatch(r'rm -rf /var/lib/apt/lists/\*', p)]
    return re.sub(r'(?<![\w./-])/out(?=/|\s|$)', out, ' && '.join(parts))


def run(tmp):
    bindir = os.path.join(tmp, 'bin')
    left_out = make_path(bindir)
    env = dict(os.environ, PATH=bindir, HOME=os.path.join(tmp, 'home'))
    for v in ('CC', 'CXX'):
        env.pop(v, None)
    os.makedirs(env['HOME'])
    for prog in ('node', 'go', 'clang'):
        if shutil.which(prog, path=bindir):
            raise RuntimeError(f'{prog} is still on the hidden PATH')
    print(f'image_build: hidden from PATH: {", ".join(left_out) or "(none were installed)"}')
    out = os.path.join(tmp, 'out')
    root = os.path.join(tmp, 'root')  # the image's filesystem: WORKDIR and COPY land here
    workdir = root
    files = repo_files()
    stage = build_stage(open(DOCKERFILE, encoding='utf-8').read())
    if not any(op == 'RUN' for op, _ in stage):
        raise RuntimeError('no RUN in the Dockerfile build stage')
    for op, args in stage:
        if op == 'WORKDIR':
            workdir = os.path.join(root, args.lstrip('/'))
            os.makedirs(workdir, exist_ok=True)
        elif op == 'COPY':
            words = [w for w in shlex.split(args) if not w.startswith('--')]
            copy(words[:-1], words[-1] if not os.path.isabs(words[-1])
                 else os.path.join(root, words[-1].lstrip('/')), workdir, files)
        elif op == 'RUN':
            cmd = adapt(args, out)
            print(f'image_build: RUN {cmd}', flush=True)
            r = subprocess.run(['bash', '-c', cmd], cwd=workdir, env=env)
            if r.returncode != 0:
                raise RuntimeError(f'RUN exited {r.returncode}: {cmd}')
        elif op in ('ENV', 'ARG', 'LABEL', 'SHELL', 'USER', 'EXPOSE'):
            raise RuntimeError(f'{op} in the build stage: teach scripts/image_build_check.py about it')
    binary = os.path.join(out, 'spanprof')
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f'the build stage left no executable /out/spanprof')
    ver = subprocess.run([binary, '--version'], capture_output=True, text=True, env=env)
    if ver.returncode != 0:
        raise RuntimeError(f'/out/spanprof --version exited {ver.returncode}: {ver.stderr}')
    print(f'image_build: /out/spanprof built without node, go or clang: {ver.stdout.strip()}')


def main():
    result = None
    if len(sys.argv) == 3 and sys.argv[1] == '--result':
        result = sys.argv[2]
    elif len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.time()
    tmp = tempfile.mkdtemp(prefix='spanprof-image-build-')
    ok = True
    try:
        run(tmp)
    except (RuntimeError, OSError) as e:
        ok = False
        print(f'image_build: FAILED: {e}', file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if result:
        with open(result, 'a') as f:
            f.write(json.dumps({'name': NAME, 'result': 'OK' if ok else 'FAIL',
                                'duration': round(time.time() - t0, 2)}) + '\n')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
