/**
 * The release tarball, built by the same script as `pnpm run release` (minus
 * the `pnpm build` in front of it, which `pnpm test` has just done), unpacked
 * into a temp folder and run from there with a clean environment.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request, startFlexilib, tempDir, type StartOptions, type TempDir } from '@flexilib/test-support';
import { closure, manifest } from './helpers/dependencies.js';
import { all, parseDockerfile } from './helpers/dockerfile.js';
import { ROOT, at } from './helpers/repo.js';
import { parseUnit, value } from './helpers/unit-file.js';

const version = manifest(at('packages', 'supervisor')).version;
const NAME = `flexilib-${version}`;
/** Only what finding `node` for the launcher's `#!/usr/bin/env node` needs. */
const CLEAN_ENV = { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin` };
/**
 * The unpacked launcher, one worker, nothing from this process's environment
 * (the harness adds only its loopback, port-0 and JSON-log settings).
 */
const run = (launcher: string, opts: StartOptions & { cwd: string }) => startFlexilib({ command: launcher, workers: 1, inheritEnv: false, env: CLEAN_ENV, ...opts });

let tmp: TempDir;
let tarball: string;
let release: string;

before(() => {
  tmp = tempDir('release-test');
  const res = spawnSync(process.execPath, ['--import', 'tsx', at('packages', 'release', 'src', 'release.ts'), '--out-dir', path.join(tmp.dir, 'out')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(res.status, 0, `release script failed (${res.status ?? res.signal}):\n${res.stderr}`);
  tarball = res.stdout.trim();
  mkdirSync(path.join(tmp.dir, 'unpacked'));
  const untar = spawnSync('tar', ['-xzf', tarball, '-C', path.join(tmp.dir, 'unpacked')], { encoding: 'utf8' });
  assert.equal(untar.status, 0, untar.stderr);
  release = path.join(tmp.dir, 'unpacked', NAME);
});
after(() => tmp?.cleanup());

describe('release tarball', () => {
  test('is named after the supervisor version and unpacks into one folder of that name', () => {
    assert.equal(path.basename(tarball), `${NAME}.tar.gz`);
    const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.trim().split('\n');
    assert.ok(list.length > 50, `only ${list.length} entries`);
    assert.deepEqual(list.filter((e) => !e.startsWith(`${NAME}/`)), []);
  });

  test('holds the launcher, compiled JS, example plugin, config, systemd unit and notes', () => {
    for (const rel of ['bin/flexilib', 'dist/cli.js', 'package.json', 'proxy.ini', 'plugins/libflexi_example.so', 'include/flexilib.h',
      'deploy/flexilib.service', 'deploy/env.example', 'README.md', 'THIRD-PARTY-NOTICES.txt', 'node_modules/@flexilib/worker/dist/worker-main.js',
      // FlexiLib's plugins are called through it (docs/plugins.md, Coming from FlexiLib).
      'node_modules/@flexilib/worker/dist/native/flexilib-adapter.so',
      // Threaded routes call their plugins through it (native/thread-ring.ts).
      'node_modules/@flexilib/worker/dist/native/thread-ring.so']) {
      assert.ok(existsSync(path.join(release, rel)), `${rel} missing`);
    }
    assert.ok(statSync(path.join(release, 'bin/flexilib')).mode & 0o111, 'bin/flexilib is not executable');
    assert.deepEqual([...readFileSync(path.join(release, 'plugins/libflexi_example.so')).subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'the plugin is not an ELF file');
    const pkg = JSON.parse(readFileSync(path.join(release, 'package.json'), 'utf8')) as { version: string; type: string };
    assert.equal(pkg.version, version);
    assert.equal(pkg.type, 'module');
    const notices = readFileSync(path.join(release, 'THIRD-PARTY-NOTICES.txt'), 'utf8');
    assert.match(notices, /^koffi@\S+\s+MIT$/m);
    assert.match(notices, /^pino@\S+\s+MIT$/m);
  });

  test('ships the repository systemd unit, whose ExecStart is the launcher under /opt/flexilib', () => {
    const shipped = readFileSync(path.join(release, 'deploy/flexilib.service'), 'utf8');
    assert.equal(shipped, readFileSync(at('deploy', 'flexilib.service'), 'utf8'));
    const execStart = value(parseUnit(shipped), 'Service', 'ExecStart')!.split(/\s+/)[0];
    assert.ok(execStart.startsWith('/opt/flexilib/'), execStart);
    assert.ok(existsSync(path.join(release, path.relative('/opt/flexilib', execStart))), `${execStart} is not in the tarball`);
  });

  test('node_modules holds exactly the production dependencies, koffi platform package included, and no devDependency', () => {
    const bundled = new Set(
      readdirSync(path.join(release, 'node_modules', '.pnpm'))
        .filter((id) => id !== 'node_modules')
        .map((id) => {
          const cut = id.indexOf('@', 1);
          return (cut < 0 ? id : id.slice(0, cut)).replace('+', '/');
        }),
    );
    const sup = manifest(at('packages', 'supervisor'));
    const prod = closure(Object.keys({ ...sup.dependencies, ...sup.optionalDependencies }), at('packages', 'supervisor'));
    prod.add(sup.name); // pnpm deploy keeps the deployed package itself in its store too
    assert.deepEqual([...bundled].filter((n) => !prod.has(n)).sort(), [], 'bundled but not a production dependency');
    assert.deepEqual([...prod].filter((n) => !bundled.has(n)).sort(), [], 'production dependency missing');
    assert.ok([...bundled].some((n) => n.startsWith('@koromix/koffi-')), 'koffi platform package missing');

    const dirs = [ROOT, ...['packages', 'examples', 'bench'].flatMap((top) =>
      existsSync(at(top)) && statSync(at(top)).isDirectory()
        ? (existsSync(at(top, 'package.json')) ? [at(top)] : readdirSync(at(top)).map((d) => at(top, d)).filter((d) => existsSync(path.join(d, 'package.json'))))
        : [])];
    const devOnly = new Set<string>();
    for (const dir of dirs) for (const n of closure(Object.keys(manifest(dir).devDependencies ?? {}), dir)) if (!prod.has(n)) devOnly.add(n);
    // (esbuild is a production dependency now: it bundles Cloudflare Workers at run time.)
    for (const tool of ['typescript', 'tsx']) assert.ok(devOnly.has(tool), `${tool} should count as dev-only`);
    assert.deepEqual([...devOnly].filter((n) => bundled.has(n)).sort(), [], 'devDependencies in the tarball');
  });

  test("no file records the build machine's paths", () => {
    const needles = [ROOT.replace(/\/$/, ''), 'flexilib-release-'];
    const hits: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const p = path.join(dir, name);
        const st = lstatSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isFile()) {
          const text = readFileSync(p, 'latin1');
          for (const n of needles) if (text.includes(n)) hits.push(`${path.relative(release, p)}: ${n}`);
        } else if (st.isSymbolicLink()) {
          assert.ok(existsSync(p), `dangling symlink ${path.relative(release, p)}`);
        }
      }
    };
    walk(release);
    assert.deepEqual(hits, []);
  });

  test('bin/flexilib serves the example from the unpacked folder with a clean environment', async () => {
    const fx = await run(path.join(release, 'bin/flexilib'), { cwd: release });
    try {
      assert.equal(fx.listening?.config, path.join(release, 'proxy.ini'));
      const echo = await request(fx.port, '/echo/x?y=1', { method: 'POST', body: 'ping' });
      assert.equal(echo.status, 200);
      assert.equal(echo.body, 'POST /echo/x?y=1\nping');
      assert.equal(echo.headers['x-custom-foo'], 'bar');
      const iam = await request(fx.port, '/', { headers: { Host: 'iam.example' } });
      assert.equal(iam.body, 'iam response');
      const status = await request(fx.port, '/', { headers: { 'x-status': '418' } });
      assert.equal(status.status, 418);
      const health = await request(fx.adminPort, '/healthz');
      assert.equal(health.status, 200);
      assert.equal((JSON.parse(health.body) as { status: string }).status, 'ok');
    } finally {
      assert.equal(await fx.stop('SIGTERM'), 0, fx.output());
    }
  });

  test("runs from another directory through a symlink, and that directory's proxy.ini does not count", async () => {
    const elsewhere = path.join(tmp.dir, 'elsewhere');
    mkdirSync(path.join(elsewhere, 'bin'), { recursive: true });
    writeFileSync(path.join(elsewhere, 'proxy.ini'), '/ = not-here.so\n');
    symlinkSync(path.join(release, 'bin/flexilib'), path.join(elsewhere, 'bin/flexilib'));
    const fx = await run(path.join(elsewhere, 'bin/flexilib'), { cwd: elsewhere });
    try {
      assert.equal(fx.listening?.config, path.join(release, 'proxy.ini'));
      const echo = await request(fx.port, '/echo', { method: 'PUT', body: 'x' });
      assert.equal(echo.body, 'PUT /echo\nx');
    } finally {
      assert.equal(await fx.stop('SIGTERM'), 0, fx.output());
    }
  });

  test('FLEXILIB_CONFIG replaces the bundled proxy.ini, and --config wins over both', async () => {
    const dir = path.join(tmp.dir, 'own-config');
    mkdirSync(dir);
    const own = path.join(dir, 'own.ini');
    writeFileSync(own, `/mine = ${path.join(release, 'plugins/libflexi_example.so')}\n`);
    const viaEnv = await run(path.join(release, 'bin/flexilib'), { cwd: dir, env: { ...CLEAN_ENV, FLEXILIB_CONFIG: own } });
    try {
      assert.equal(viaEnv.listening?.config, own);
      assert.equal((await request(viaEnv.port, '/mine')).status, 200);
      assert.equal((await request(viaEnv.port, '/')).status, 404);
    } finally {
      assert.equal(await viaEnv.stop('SIGTERM'), 0, viaEnv.output());
    }
    const viaFlag = await run(path.join(release, 'bin/flexilib'), {
      config: own,
      cwd: dir,
      env: { ...CLEAN_ENV, FLEXILIB_CONFIG: path.join(dir, 'absent.ini') },
    });
    try {
      assert.equal(viaFlag.listening?.config, own);
    } finally {
      assert.equal(await viaFlag.stop('SIGTERM'), 0, viaFlag.output());
    }
  });

  test("the Docker image's HEALTHCHECK command passes against the running release and fails once it stopped", async () => {
    const [final] = parseDockerfile(at('docker', 'Dockerfile')).stages.slice(-1);
    const [hc] = all(final, 'HEALTHCHECK');
    assert.ok(hc?.exec && hc.exec.length > 0, 'HEALTHCHECK has no exec-form command');
    const [cmd, ...args] = hc.exec;
    const fx = await run(path.join(release, 'bin/flexilib'), { cwd: release });
    const check = (): number | null =>
      spawnSync(cmd, args, { env: { ...CLEAN_ENV, ADMIN_PORT: String(fx.adminPort) }, timeout: 10_000 }).status;
    try {
      assert.equal(check(), 0);
    } finally {
      assert.equal(await fx.stop('SIGTERM'), 0, fx.output());
    }
    assert.equal(check(), 1);
  });
});
