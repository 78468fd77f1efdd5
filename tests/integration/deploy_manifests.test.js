// deploy/ checked without a cluster or a Docker daemon:
//  1. every Kubernetes manifest under deploy/kubernetes (multi-document YAML)
//     validates against the Kubernetes OpenAPI schema with the npm
//     kubernetes-models validators, plus a strict pass that rejects fields
//     the schema does not know (the OpenAPI schema alone lets a misspelt
//     `restartpolicy` through, and the API server would drop it silently);
//  2. the Deployment is wired as documented: spanprof as a native sidecar
//     with probes on its health check, DD_API_KEY from the Secret, the app's
//     OTLP and agent URLs, resources, the ConfigMap mounted where --config
//     points;
//  3. the ConfigMap's pipeline passes `spanprof validate` (and a broken copy
//     does not), listening on loopback only, health where the probes look;
//  4. deploy/Dockerfile, statically: the build stage runs the repository's
//     own scripts (which exist), the runtime packages exist in apt and cover
//     every shared library the built binary needs, non-root user, exec-form
//     ENTRYPOINT and HEALTHCHECK on `spanprof healthcheck`.
'use strict';

const assert = require('node:assert');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const yaml = require('js-yaml');

const SRC = process.env.SPANPROF_SRC || path.resolve(__dirname, '../..');
const BIN = process.env.SPANPROF_BIN || path.join(SRC, 'build/spanprof');
const K8S = path.join(SRC, 'deploy/kubernetes');
const DOCKERFILE = path.join(SRC, 'deploy/Dockerfile');
const DUMMY_KEY = '0123456789abcdef0123456789abcdef';

const MODELS = {
  'apps/v1/Deployment': () => require('kubernetes-models/apps/v1/Deployment').Deployment,
  'v1/ConfigMap': () => require('kubernetes-models/v1/ConfigMap').ConfigMap,
  'v1/Secret': () => require('kubernetes-models/v1/Secret').Secret,
  'v1/ServiceAccount': () => require('kubernetes-models/v1/ServiceAccount').ServiceAccount,
  'v1/Service': () => require('kubernetes-models/v1/Service').Service,
};

let passed = 0;
let failed = 0;
function test(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}\n${e.stack}`);
  }
}

function modelFor(doc) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  assert.ok(MODELS[key], `no validator for ${key} (add it to MODELS)`);
  return MODELS[key]();
}

// Schema validation, then the strict pass: the validator is run on proxies
// that record which properties it looks up; an object property it never
// looked up is not in the schema. Objects the validator enumerates (maps
// such as labels or ConfigMap data) accept any key.
function validateStrict(doc) {
  const Model = modelFor(doc);
  new Model(doc).validate(); // throws with the schema errors
  const plain = JSON.parse(JSON.stringify(doc));
  const seen = new WeakMap();
  const proxies = new WeakMap();
  const wrap = (v) => {
    if (v === null || typeof v !== 'object') return v;
    if (proxies.has(v)) return proxies.get(v);
    const rec = { keys: new Set(), enumerated: false };
    seen.set(v, rec);
    const p = new Proxy(v, {
      get(t, k, r) {
        if (typeof k === 'string') rec.keys.add(k);
        return wrap(Reflect.get(t, k, r));
      },
      has(t, k) {
        if (typeof k === 'string') rec.keys.add(k);
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        rec.enumerated = true;
        return Reflect.ownKeys(t);
      },
    });
    proxies.set(v, p);
    return p;
  };
  Model.prototype.validate.call(wrap(plain));
  const unknown = [];
  const walk = (v, at) => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${at}[${i}]`));
      return;
    }
    const rec = seen.get(v);
    for (const k of Object.keys(v)) {
      if (rec && !rec.enumerated && !rec.keys.has(k)) unknown.push(`${at}.${k}`);
      else walk(v[k], `${at}.${k}`);
    }
  };
  walk(plain, '');
  return unknown;
}

function loadManifests() {
  const files = [];
  const scan = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) scan(p);
      else if (/\.ya?ml$/.test(e.name)) files.push(p);
    }
  };
  scan(K8S);
  const docs = [];
  for (const f of files.sort()) {
    yaml.loadAll(fs.readFileSync(f, 'utf8'), (d) => {
      if (d) docs.push({ file: path.relative(SRC, f), doc: d });
    });
  }
  return docs;
}

function envOf(container) {
  const out = {};
  for (const e of container.env || []) out[e.name] = e.value !== undefined ? e.value : e.valueFrom;
  return out;
}

// The pipeline embedded in the ConfigMap, written to a file for spanprof.
function pipelineFile(cm, key, mutate) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spanprof-deploy-'));
  const file = path.join(dir, key);
  fs.writeFileSync(file, mutate ? mutate(cm.data[key]) : cm.data[key]);
  return file;
}

function spanprofValidate(file, env) {
  return spawnSync(BIN, ['validate', '--config', file], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30000,
  });
}

// Dockerfile instructions with continuation lines joined, comments dropped.
function dockerInstructions(text) {
  const out = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!cur && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue;
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    const m = cur.match(/^(\S+)\s+([\s\S]*)$/);
    out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    cur = '';
  }
  return out;
}

function execForm(args, what) {
  let v;
  try {
    v = JSON.parse(args);
  } catch (e) {
    assert.fail(`${what} is not exec form (a JSON array): ${args}`);
  }
  assert.ok(Array.isArray(v) && v.every((x) => typeof x === 'string'), `${what}: ${args}`);
  return v;
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

// ---- 1. schema ----
const docs = loadManifests();
test('deploy/kubernetes holds a Deployment, a ConfigMap and a Secret', () => {
  const kinds = docs.map((d) => d.doc.kind).sort();
  for (const k of ['ConfigMap', 'Deployment', 'Secret']) assert.ok(kinds.includes(k), `${k} in ${kinds}`);
});
for (const { file, doc } of docs) {
  test(`${file}: ${doc.kind} ${doc.metadata && doc.metadata.name} validates against the Kubernetes schema, no unknown fields`, () => {
    const unknown = validateStrict(doc);
    assert.deepStrictEqual(unknown, [], `fields the schema does not define: ${unknown.join(', ')}`);
  });
}
const deployment = docs.find((d) => d.doc.kind === 'Deployment').doc;
test('the validators reject what they should (a wrong type, an unknown field)', () => {
  const wrongType = JSON.parse(JSON.stringify(deployment));
  wrongType.spec.replicas = 'two';
  assert.throws(() => validateStrict(wrongType), /replicas/);
  const typo = JSON.parse(JSON.stringify(deployment));
  typo.spec.template.spec.initContainers[0].restartpolicy = 'Always';
  assert.deepStrictEqual(validateStrict(typo), ['.spec.template.spec.initContainers[0].restartpolicy']);
});

// ---- 2. wiring ----
const pod = deployment.spec.template.spec;
const sidecar = (pod.initContainers || []).find((c) => c.name === 'spanprof');
const app = (pod.containers || [])[0];
const byName = (kind, name) => docs.map((d) => d.doc).find((d) => d.kind === kind && d.metadata.name === name);
test('spanprof is a native sidecar (an init container with restartPolicy: Always)', () => {
  assert.ok(sidecar, 'initContainers has spanprof');
  assert.strictEqual(sidecar.restartPolicy, 'Always');
  assert.ok(!pod.containers.some((c) => c.name === 'spanprof'), 'not also a regular container');
});
test('the sidecar has startup, readiness and liveness probes on `spanprof healthcheck`', () => {
  for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    assert.ok(sidecar[p], p);
    const cmd = sidecar[p].exec ? sidecar[p].exec.command : null;
    const port = sidecar[p].httpGet ? sidecar[p].httpGet.port : null;
    assert.ok((cmd && cmd[0].endsWith('/spanprof') && cmd[1] === 'healthcheck') || port === 13133, `${p}: ${JSON.stringify(sidecar[p])}`);
  }
});
test('the sidecar has resource requests and limits, runs as non-root', () => {
  for (const k of ['requests', 'limits']) {
    assert.ok(sidecar.resources[k].cpu && sidecar.resources[k].memory, `${k}: ${JSON.stringify(sidecar.resources)}`);
  }
  const runAsNonRoot = (sidecar.securityContext || {}).runAsNonRoot || (pod.securityContext || {}).runAsNonRoot;
  assert.strictEqual(runAsNonRoot, true);
  assert.notStrictEqual((sidecar.securityContext || {}).runAsUser, 0);
});
test('DD_API_KEY comes from a Secret that the manifests define, with that key', () => {
  const ref = envOf(sidecar).DD_API_KEY;
  assert.ok(ref && ref.secretKeyRef, `DD_API_KEY: ${JSON.stringify(ref)}`);
  const secret = byName('Secret', ref.secretKeyRef.name);
  assert.ok(secret, `Secret ${ref.secretKeyRef.name}`);
  assert.ok(Object.keys({ ...secret.stringData, ...secret.data }).includes(ref.secretKeyRef.key));
});
test('the app sends OTLP to 127.0.0.1:4317 and profiles to the agent URL 127.0.0.1:8126', () => {
  const env = envOf(app);
  // 127.0.0.1, not localhost: spanprof listens on IPv4 loopback, localhost may be ::1.
  assert.strictEqual(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://127.0.0.1:4317');
  assert.strictEqual(env.DD_TRACE_AGENT_URL, 'http://127.0.0.1:8126');
  assert.strictEqual(env.DD_SERVICE, env.OTEL_SERVICE_NAME, 'profiles and spans under one service name');
});
const args = sidecar.args || [];
const configPath = args[args.indexOf('--config') + 1];
const mount = (sidecar.volumeMounts || []).find((m) => configPath && configPath.startsWith(`${m.mountPath}/`));
const volume = mount && (pod.volumes || []).find((v) => v.name === mount.name);
const cm = volume && volume.configMap && byName('ConfigMap', volume.configMap.name);
const cmKey = configPath && path.basename(configPath);
test('--config names a file of the ConfigMap mounted in the sidecar', () => {
  assert.ok(args.includes('--config'), `args ${args}`);
  assert.ok(mount, `a volume mounted above ${configPath}`);
  assert.ok(cm, `ConfigMap volume for ${mount && mount.name}`);
  assert.ok(cm.data[cmKey], `key ${cmKey} in ConfigMap ${cm.metadata.name}`);
  assert.strictEqual(mount.readOnly, true);
});
test('terminationGracePeriodSeconds leaves room for spanprof shutdown_timeout', () => {
  const conf = yaml.load(cm.data[cmKey]);
  const m = /^(\d+)s$/.exec(conf.service.shutdown_timeout || '10s');
  assert.ok(m, conf.service.shutdown_timeout);
  assert.ok((pod.terminationGracePeriodSeconds || 30) > Number(m[1]));
});

// ---- 3. the pipeline ----
test('the ConfigMap pipeline listens on loopback only, health where the probes look', () => {
  const conf = yaml.load(cm.data[cmKey]);
  const endpoints = [];
  const collect = (v, at) => {
    if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) collect(x, `${at}.${k}`);
    else if (/\.(endpoint|address)$/.test(at) && !/^exporters/.test(at.slice(1))) endpoints.push([at, String(v)]);
  };
  collect(conf.receivers, 'receivers');
  collect(conf.extensions, 'extensions');
  collect(conf.service.telemetry, 'service.telemetry');
  assert.ok(endpoints.length >= 4, JSON.stringify(endpoints));
  for (const [at, v] of endpoints) assert.match(v, /^127\.0\.0\.1:\d+$/, at);
  const health = conf.extensions.health_check.endpoint;
  for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const cmd = sidecar[p].exec.command;
    assert.strictEqual(cmd[cmd.indexOf('--endpoint') + 1], health, p);
  }
  assert.strictEqual(conf.exporters.datadog.api.key, '${env:DD_API_KEY}', 'the key is read from the environment');
});
test('metrics and logs are forwarded to the node Agent: otlphttp to HOST_IP:4318, HOST_IP from the downward API', () => {
  const conf = yaml.load(cm.data[cmKey]);
  assert.strictEqual(conf.exporters.otlphttp.endpoint, 'http://${env:HOST_IP}:4318');
  for (const sig of ['metrics', 'logs']) {
    assert.deepStrictEqual(conf.service.pipelines[sig].receivers, ['otlp'], sig);
    assert.deepStrictEqual(conf.service.pipelines[sig].exporters, ['otlphttp'], sig);
  }
  const hostIp = envOf(sidecar).HOST_IP;
  assert.strictEqual(hostIp && hostIp.fieldRef && hostIp.fieldRef.fieldPath, 'status.hostIP', JSON.stringify(hostIp));
});
const haveBin = fs.existsSync(BIN);
test('the spanprof binary the checks below run is built', () => assert.ok(haveBin, `no binary at ${BIN}`));
if (haveBin) {
  test('`spanprof validate` accepts the ConfigMap pipeline (DD_API_KEY set)', () => {
    const r = spanprofValidate(pipelineFile(cm, cmKey), { DD_API_KEY: DUMMY_KEY, HOST_IP: '10.0.0.7' });
    assert.strictEqual(r.status, 0, `exit ${r.status}\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /configuration is valid/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(DUMMY_KEY), 'the key is never printed');
  });
  test('`spanprof validate` rejects the pipeline with a misspelt key, naming file:line:col', () => {
    const file = pipelineFile(cm, cmKey, (t) => t.replace('join_delay:', 'join_dealy:'));
    const r = spanprofValidate(file, { DD_API_KEY: DUMMY_KEY, HOST_IP: '10.0.0.7' });
    assert.strictEqual(r.status, 1, `exit ${r.status}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${path.basename(file)}:\\d+:\\d+: .*join_dealy`));
  });
  test('`spanprof validate` fails when the Secret is missing (DD_API_KEY unset)', () => {
    const r = spanprofValidate(pipelineFile(cm, cmKey), {});
    assert.strictEqual(r.status, 1, `exit ${r.status}\n${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /DD_API_KEY|api\.key/);
  });
}

// ---- 4. Dockerfile ----
const ins = dockerInstructions(fs.readFileSync(DOCKERFILE, 'utf8'));
const froms = ins.map((x, i) => [x, i]).filter(([x]) => x.op === 'FROM');
const finalStart = froms[froms.length - 1][1];
const buildStage = ins.slice(froms[0][1], finalStart);
const runtime = ins.slice(finalStart);
test('Dockerfile: multi-stage, Debian 12 build stage, Debian 12 slim runtime', () => {
  assert.ok(froms.length >= 2);
  assert.match(froms[0][0].args, /^debian:bookworm\S*\s+AS\s+build$/i);
  assert.match(froms[froms.length - 1][0].args, /^debian:bookworm-slim(\s|$)/);
});
test('Dockerfile: the build stage runs the repository\'s scripts, which exist', () => {
  const runs = buildStage.filter((x) => x.op === 'RUN').map((x) => x.args).join(' && ');
  assert.match(runs, /\bbash scripts\/deps\.sh build\b/);
  assert.match(runs, /\bmake build\b/);
  assert.ok(fs.existsSync(path.join(SRC, 'scripts/deps.sh')));
  const makefile = fs.readFileSync(path.join(SRC, 'Makefile'), 'utf8');
  const recipe = makefile.split(/^build:.*$/m)[1];
  assert.ok(recipe, 'a build target in the Makefile');
  assert.match(recipe.split(/^\S/m)[0], /meson setup build[\s\S]*ninja -C build/);
  for (const c of buildStage.filter((x) => x.op === 'COPY')) {
    const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) assert.ok(fs.existsSync(path.join(SRC, src)), `COPY source ${src}`);
  }
  const ignore = path.join(SRC, 'deploy/Dockerfile.dockerignore');
  assert.ok(fs.existsSync(ignore), 'the build context filter');
  assert.match(fs.readFileSync(ignore, 'utf8'), /^\/build$/m);
});
const runtimePkgs = (() => {
  const run = runtime.filter((x) => x.op === 'RUN').map((x) => x.args).find((a) => /apt-get install/.test(a));
  assert.ok(run, 'an apt-get install in the runtime stage');
  const after = run.split(/apt-get install/)[1].split('&&')[0];
  return after.split(/\s+/).filter((w) => w && !w.startsWith('-'));
})();
test('Dockerfile: the runtime packages exist in Debian 12 (apt-cache)', () => {
  assert.ok(runtimePkgs.length >= 10, runtimePkgs.join(' '));
  if (!have('apt-cache')) {
    console.log('  (no apt-cache here: package names not checked)');
    return;
  }
  // One call for all (apt-cache reads its whole cache each time).
  const r = spawnSync('apt-cache', ['show', '--no-all-versions', ...runtimePkgs], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const found = new Set([...r.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
  for (const p of runtimePkgs) assert.ok(found.has(p), `apt-cache show ${p}: ${r.stderr}`);
});
test('Dockerfile: the runtime packages provide every library the built spanprof needs', () => {
  assert.ok(haveBin && have('dpkg-query') && have('readelf') && have('ldd'), 'needs the binary, dpkg-query, readelf and ldd');
  const needed = execFileSync('readelf', ['-d', BIN], { encoding: 'utf8' })
    .split('\n').map((l) => /\(NEEDED\).*\[(.+)\]/.exec(l)).filter(Boolean).map((m) => m[1]);
  assert.ok(needed.length > 5, needed.join(' '));
  const ldd = execFileSync('ldd', [BIN], { encoding: 'utf8' });
  const base = new Set(['libc6', 'libgcc-s1']); // in every Debian image
  const linked = new Set();
  for (const lib of needed) {
    const m = new RegExp(`^\\s*${lib.replace(/[.+]/g, '\\$&')} => (\\S+)`, 'm').exec(ldd);
    assert.ok(m, `ldd resolves ${lib}`);
    const real = fs.realpathSync(m[1]);
    // usrmerge: dpkg may know the file under /usr/lib or /lib.
    const candidates = [m[1], real, real.replace(/^\/usr\//, '/'), real.replace(/^\/(lib|lib64)\//, '/usr/$1/'),
      m[1].replace(/^\/(lib|lib64)\//, '/usr/$1/'), m[1].replace(/^\/usr\//, '/')];
    let pkg = null;
    for (const c of candidates) {
      const r = spawnSync('dpkg-query', ['-S', c], { encoding: 'utf8' });
      if (r.status === 0) {
        pkg = r.stdout.split(':')[0].trim();
        break;
      }
    }
    assert.ok(pkg, `the Debian package of ${lib} (${m[1]})`);
    assert.ok(base.has(pkg) || runtimePkgs.includes(pkg), `${lib} comes from ${pkg}, which the runtime stage does not install`);
    linked.add(pkg);
  }
  // And nothing more: every runtime package provides a library spanprof
  // links (ca-certificates is data for libcurl's TLS).
  const extra = runtimePkgs.filter((p) => p !== 'ca-certificates' && !linked.has(p));
  assert.deepStrictEqual(extra, [], `runtime packages spanprof does not link: ${extra.join(' ')}`);
});
test('Dockerfile: non-root user, exec-form ENTRYPOINT and HEALTHCHECK on `spanprof healthcheck`', () => {
  const user = runtime.filter((x) => x.op === 'USER').pop();
  assert.ok(user, 'USER in the runtime stage');
  assert.ok(!/^(root|0)(:|$)/.test(user.args), user.args);
  const copy = runtime.find((x) => x.op === 'COPY' && /--from=build/.test(x.args));
  assert.ok(copy, 'the binary copied from the build stage');
  const dest = copy.args.split(/\s+/).pop();
  const entry = execForm(runtime.filter((x) => x.op === 'ENTRYPOINT').pop().args, 'ENTRYPOINT');
  assert.strictEqual(entry[0], dest);
  const hc = runtime.filter((x) => x.op === 'HEALTHCHECK').pop();
  assert.ok(hc, 'HEALTHCHECK');
  const cmd = execForm(hc.args.replace(/^(--\S+\s+)*CMD\s+/, ''), 'HEALTHCHECK CMD');
  assert.deepStrictEqual(cmd.slice(0, 2), [dest, 'healthcheck']);
  const built = buildStage.filter((x) => x.op === 'RUN').map((x) => x.args).join(' ');
  const src = copy.args.split(/\s+/).filter((p) => !p.startsWith('--'))[0];
  assert.ok(built.includes(src), `the build stage produces ${src}`);
  assert.ok(!runtime.some((x) => x.op === 'CMD' && !/^\[/.test(x.args)), 'no shell-form CMD');
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
