/**
 * Signed releases: the release script writes SHA256SUMS beside the tarball
 * and, given a throwaway SSH key, detached signatures that `ssh-keygen -Y
 * verify` accepts with that key's allowed_signers line — exactly the steps of
 * docs/deployment.md. A tampered tarball (or sums file) fails them. Without a
 * key there are sums and no signatures; a key that does not exist is refused
 * before anything is built.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tempDir, type TempDir } from '@flexilib/test-support';
import { ROOT, at } from './helpers/repo.js';

const IDENTITY = 'release@flexilib.test';
let tmp: TempDir;

function sshKeygen(args: string[], opts: { input?: Buffer | string; cwd?: string } = {}) {
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8', timeout: 30_000, ...opts });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('ssh-keygen is missing: install Debian\'s "openssh-client" package');
  return r;
}

function release(outDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', at('packages', 'release', 'src', 'release.ts'), '--out-dir', outDir, ...extra], {
    cwd: ROOT, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FLEXILIB_SIGNING_KEY: '', ...env },
  });
}

/** The verification steps of docs/deployment.md, in `dir`. */
function verify(dir: string, tarball: string) {
  const allowed = path.join(tmp.dir, 'allowed_signers');
  const sig = (file: string) => sshKeygen(['-Y', 'verify', '-f', allowed, '-I', IDENTITY, '-n', 'flexilib-release', '-s', `${file}.sig`], { input: readFileSync(path.join(dir, file)), cwd: dir });
  const sums = spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
  return { tarball: sig(tarball), sums: sig('SHA256SUMS'), check: sums };
}

describe('signed release', () => {
  let out: string;
  let tarball: string;

  before(() => {
    tmp = tempDir('signed-release');
    const key = path.join(tmp.dir, 'release_key');
    const gen = sshKeygen(['-q', '-t', 'ed25519', '-N', '', '-C', IDENTITY, '-f', key]);
    assert.equal(gen.status, 0, gen.stderr);
    // What a user writes from the published public key.
    writeFileSync(path.join(tmp.dir, 'allowed_signers'), `${IDENTITY} namespaces="flexilib-release" ${readFileSync(`${key}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ')}\n`);
    out = path.join(tmp.dir, 'out');
    const r = release(out, [], { FLEXILIB_SIGNING_KEY: key });
    assert.equal(r.status, 0, `release failed:\n${r.stderr}`);
    tarball = path.basename(r.stdout.trim());
  });
  after(() => tmp?.cleanup());

  test('writes the tarball, SHA256SUMS and both signatures', () => {
    assert.deepEqual(readdirSync(out).sort(), ['SHA256SUMS', 'SHA256SUMS.sig', tarball, `${tarball}.sig`].sort());
    assert.match(readFileSync(path.join(out, 'SHA256SUMS'), 'utf8'), new RegExp(`^[0-9a-f]{64}  ${tarball.replaceAll('.', '\\.')}\\n$`));
    assert.match(readFileSync(path.join(out, `${tarball}.sig`), 'utf8'), /^-----BEGIN SSH SIGNATURE-----/);
  });

  test('ssh-keygen -Y verify and sha256sum -c accept the untouched release', () => {
    const v = verify(out, tarball);
    assert.equal(v.tarball.status, 0, v.tarball.stderr);
    assert.match(v.tarball.stdout, new RegExp(`Good "flexilib-release" signature for ${IDENTITY}`));
    assert.equal(v.sums.status, 0, v.sums.stderr);
    assert.equal(v.check.status, 0, v.check.stdout + v.check.stderr);
    assert.match(v.check.stdout, new RegExp(`${tarball}: OK`));
  });

  test('a tampered tarball fails both checks; a forged SHA256SUMS fails its signature', () => {
    const bad = path.join(tmp.dir, 'tampered');
    spawnSync('mkdir', ['-p', bad]);
    for (const f of readdirSync(out)) copyFileSync(path.join(out, f), path.join(bad, f));
    const buf = readFileSync(path.join(bad, tarball));
    buf[Math.floor(buf.length / 2)] ^= 0xff;
    writeFileSync(path.join(bad, tarball), buf);
    let v = verify(bad, tarball);
    assert.notEqual(v.tarball.status, 0, 'the tarball signature must not verify');
    assert.match(v.tarball.stderr, /Signature verification failed/);
    assert.notEqual(v.check.status, 0, 'sha256sum -c must fail');
    assert.match(v.check.stdout, new RegExp(`${tarball}: FAILED`));
    // Someone who rewrites SHA256SUMS to match is caught by its signature.
    const forged = spawnSync('sha256sum', [tarball], { cwd: bad, encoding: 'utf8' }).stdout;
    writeFileSync(path.join(bad, 'SHA256SUMS'), forged);
    v = verify(bad, tarball);
    assert.equal(v.check.status, 0, 'the forged sums match the tampered tarball');
    assert.notEqual(v.sums.status, 0, 'but the forged sums file fails its signature');
  });

  test('without a key: SHA256SUMS and no signature; a missing key is refused before building', () => {
    const plain = path.join(tmp.dir, 'plain');
    const r = release(plain);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readdirSync(plain).sort(), ['SHA256SUMS', path.basename(r.stdout.trim())].sort());
    assert.match(r.stderr, /not signed/);
    const missing = release(path.join(tmp.dir, 'never'), ['--sign-key', path.join(tmp.dir, 'no-such-key')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /FLX_RELEASE_SIGN: signing key .*no-such-key does not exist/);
    assert.equal(existsSync(path.join(tmp.dir, 'never')), false, 'nothing was built');
  });
});
