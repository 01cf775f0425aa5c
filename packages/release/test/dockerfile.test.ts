/**
 * docker/Dockerfile, checked as written (no Docker engine runs here): valid
 * syntax, the image made from the same release script as CI and the tests,
 * a non-root user, both ports, a HEALTHCHECK on /healthz, signals reaching the
 * supervisor. release-tarball.test.ts runs its HEALTHCHECK command for real.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { all, parseDockerfile, type DockerStage } from './helpers/dockerfile.js';
import { at } from './helpers/repo.js';

const docker = parseDockerfile(at('docker', 'Dockerfile'));
const build = docker.stages[0];
const final = docker.stages.at(-1)!;
const rootScripts = (JSON.parse(readFileSync(at('package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The shell commands of a stage's RUN instructions, split at && and ;. */
function commands(stage: DockerStage): string[] {
  return all(stage, 'RUN').flatMap((r) => r.text.split(/&&|;/).map((c) => c.trim().replace(/\s+/g, ' ')));
}

describe('docker/Dockerfile', () => {
  test('has no syntax problem dockerfile-utils can find', () => {
    assert.deepEqual(docker.problems, []);
  });

  test('is multi-stage on Debian-based Node 20 images', () => {
    assert.ok(docker.stages.length >= 2, 'expected a build stage and a final stage');
    for (const s of docker.stages) assert.match(s.image, /^node:20[\w.-]*-(bookworm|bullseye|trixie)(-slim)?$/, `stage image ${s.image}`);
    assert.match(final.image, /-slim$/, 'the final stage should be the slim image');
    // Plugins compiled in the build stage must run against the final stage's glibc.
    assert.equal(build.image.match(/bookworm|bullseye|trixie/)?.[0], final.image.match(/bookworm|bullseye|trixie/)?.[0]);
  });

  test('builds with the frozen lockfile and the same release script as CI and the tests', () => {
    assert.ok(rootScripts.release, 'package.json has no release script');
    const cmds = commands(build);
    const install = cmds.find((c) => /^pnpm install\b/.test(c));
    assert.ok(install?.includes('--frozen-lockfile'), `pnpm install without --frozen-lockfile: ${install}`);
    assert.ok(cmds.includes('pnpm run release'), `no "pnpm run release" in: ${cmds.join(' | ')}`);
    assert.ok(cmds.indexOf('pnpm run release') > cmds.indexOf(install!), 'release before install');
    assert.ok(cmds.some((c) => /^tar -xzf dist\/flexilib-\*\.tar\.gz\b/.test(c)), 'the tarball is not unpacked');
  });

  test("the final stage holds the unpacked tarball and nothing built on the host", () => {
    const copies = all(final, 'COPY').concat(all(final, 'ADD'));
    assert.equal(copies.length, 1, `expected one COPY, got: ${copies.map((c) => c.text).join(' | ')}`);
    assert.equal(copies[0].flags.from, build.name, 'the final stage copies from something other than the build stage');
    const [src, dest] = copies[0].text.split(/\s+/);
    const unpackedTo = commands(build).find((c) => c.startsWith('tar -xzf'))!.match(/-C (\S+)/)![1];
    assert.equal(src.replace(/\/$/, ''), unpackedTo);
    assert.equal(dest.replace(/\/$/, ''), '/opt/flexilib');
    const ignore = readFileSync(at('docker', 'Dockerfile.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['**/node_modules', '**/dist', '**/build']) assert.ok(ignore.includes(p), `Dockerfile.dockerignore lacks ${p}`);
  });

  test('runs as a non-root user', () => {
    const users = all(final, 'USER');
    assert.ok(users.length > 0, 'no USER in the final stage');
    const user = users.at(-1)!.text.split(':')[0];
    assert.notEqual(user, 'root');
    assert.notEqual(user, '0');
    const entry = all(final, 'ENTRYPOINT').at(-1)!;
    assert.ok(users.at(-1)!.line < entry.line, 'USER comes after ENTRYPOINT');
  });

  test('exposes the traffic and admin ports, and declares the plugins volume', () => {
    const ports = all(final, 'EXPOSE').flatMap((e) => e.text.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
    assert.ok(ports.includes('8069'), `EXPOSE ${ports.join(' ')}`);
    assert.ok(ports.includes('8687'), `EXPOSE ${ports.join(' ')}`);
    const volumes = all(final, 'VOLUME').flatMap((v) => v.exec ?? v.text.split(/\s+/));
    assert.ok(volumes.includes('/opt/flexilib/plugins'), `VOLUME ${volumes.join(' ')}`);
  });

  test('has a HEALTHCHECK on /healthz of the admin port', () => {
    const hcs = all(final, 'HEALTHCHECK');
    assert.equal(hcs.length, 1);
    const cmd = hcs[0].exec!.join(' ');
    assert.match(cmd, /127\.0\.0\.1/);
    assert.match(cmd, /\/healthz/);
    assert.match(cmd, /ADMIN_PORT/);
    assert.match(cmd, /8687/);
    assert.ok(hcs[0].flags.interval && hcs[0].flags.timeout, 'HEALTHCHECK without --interval/--timeout');
  });

  test('signals reach the supervisor: tini as PID 1, SIGTERM to stop', () => {
    assert.ok(commands(final).some((c) => /apt-get install\b.*\btini\b/.test(c)), 'tini is not installed');
    const entry = all(final, 'ENTRYPOINT').at(-1)!;
    assert.deepEqual(entry.exec, ['/usr/bin/tini', '--', '/opt/flexilib/bin/flexilib'], 'ENTRYPOINT must be exec form: tini -- the launcher');
    assert.ok(existsSync(at('packages', 'release', 'files', 'bin', 'flexilib')), 'the release has no bin/flexilib to run');
    assert.equal(all(final, 'STOPSIGNAL').at(-1)?.text, 'SIGTERM');
  });
});
