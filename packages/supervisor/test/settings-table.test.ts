/**
 * The settings table is the one list of flexilib's flags and variables: --help,
 * the env mapping, validation and docs/operations.md all follow it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot, runFlexilib, tempDir } from '@flexilib/test-support';
import { resolveSettings } from '../src/settings.js';
import { DOCS_BEGIN, withSettingsTable } from '../src/settings/docs-table.js';
import { optionHelp } from '../src/settings/help.js';
import type { Setting } from '../src/settings/setting.js';
import { SETTINGS, SETTING_ENV_VARS } from '../src/settings/table.js';

const entries = Object.entries(SETTINGS) as Array<[keyof typeof SETTINGS, Setting<unknown>]>;
const modulesDir = tempDir('settings-table');
after(() => modulesDir.cleanup());

/** A valid value for each setting that differs from its default; a new entry needs one here. */
const SAMPLES: Record<keyof typeof SETTINGS, string | undefined> = {
  config: 'other.ini', modulesDir: modulesDir.dir, port: '9001', host: '127.0.0.2', workers: '200',
  arenaBytes: '16', maxBodyBytes: '2m', maxHeaderBytes: '8192', keepAliveTimeoutMs: '1000', headersTimeoutMs: '3000',
  requestTimeoutMs: '90000', sendTimeoutMs: '0', fastLane: '0', adminHost: '127.0.0.3', adminPort: '9002', adminToken: 'secret',
  spareWorkers: '0', drainTimeoutMs: '20', quarantineCrashes: '9', quarantineWindowS: '30', hangTimeoutMs: '0',
  reloadDebounceMs: '10', watch: '0', accessLog: '0', metrics: '0', logLevel: 'debug', logFormat: 'text',
  cluster: 'etcd://127.0.0.1:2379/samples', clusterUser: 'flexi', clusterPassword: 'pw2', clusterCa: '/ca2.pem',
  clusterCert: '/cert2.pem', clusterKey: '/key2.pem',
  // Flags without a value or variable.
  help: undefined, version: undefined,
};

/** Variables an entry needs beside it to be valid (the cluster companions need --cluster and their partner); its sample overrides them. */
const CLUSTER = { FLEXILIB_CLUSTER: 'etcd://127.0.0.1:2379/base' };
const CLUSTER_TLS = { ...CLUSTER, FLEXILIB_CLUSTER_CA: '/ca.pem', FLEXILIB_CLUSTER_CERT: '/cert.pem', FLEXILIB_CLUSTER_KEY: '/key.pem' };
const BESIDE: Partial<Record<keyof typeof SETTINGS, NodeJS.ProcessEnv>> = {
  clusterUser: { ...CLUSTER, FLEXILIB_CLUSTER_USER: 'user', FLEXILIB_CLUSTER_PASSWORD: 'pw' },
  clusterPassword: { ...CLUSTER, FLEXILIB_CLUSTER_USER: 'user', FLEXILIB_CLUSTER_PASSWORD: 'pw' },
  clusterCa: CLUSTER,
  clusterCert: CLUSTER_TLS,
  clusterKey: CLUSTER_TLS,
};

describe('the settings table', () => {
  test('flexilib --help shows every entry: its flag, short flag, variable and default', () => {
    const r = runFlexilib(['--help']);
    assert.equal(r.status, 0, r.stderr);
    for (const [key, s] of entries) {
      assert.ok(r.stdout.includes(optionHelp(s)), `--help shows ${key}'s lines:\n${optionHelp(s)}`);
      if (s.flag) assert.match(r.stdout, new RegExp(`${s.short ? `-${s.short}, ` : ''}--${s.flag}\\b`), key);
      if (s.env) assert.ok(r.stdout.includes(`[${s.env}`), `--help names ${s.env}`);
    }
  });

  test('every variable maps to its flag: both give the same settings, unlike the default', () => {
    assert.deepEqual(Object.keys(SAMPLES).sort(), Object.keys(SETTINGS).sort(), 'a sample value for every entry');
    for (const [key, s] of entries) {
      const sample = SAMPLES[key];
      const beside = BESIDE[key] ?? {};
      const defaults = resolveSettings([], beside);
      const argv = s.flag ? (s.arg ? [`--${s.flag}`, sample!] : [`--${s.flag}`]) : [];
      const fromFlag = s.flag ? resolveSettings(argv, beside) : undefined;
      const fromEnv = s.env ? resolveSettings([], { ...beside, [s.env]: sample }) : undefined;
      assert.notDeepEqual(fromFlag ?? fromEnv, defaults, `${key} changes a setting`);
      if (fromFlag && fromEnv) assert.deepEqual(fromEnv, fromFlag, `${s.env} means --${s.flag}`);
      // The flag wins over its variable, which is then not even read.
      if (fromFlag && s.env) assert.deepEqual(resolveSettings(argv, { ...beside, [s.env]: '1x!' }), fromFlag, `--${s.flag} over ${s.env}`);
    }
    assert.deepEqual([...SETTING_ENV_VARS].sort(), entries.flatMap(([, s]) => (s.env ? [s.env] : [])).sort());
  });

  test('a bad value exits 2 naming the flag or the variable it came from', () => {
    for (const [key, s] of entries) {
      if (!s.parse) continue;
      let rejects = true;
      try {
        s.parse('1x!', 'X');
        rejects = false;
      } catch {
        /* a parser that refuses the text: checked through resolveSettings below */
      }
      if (!rejects) continue; // free text (host, config, ADMIN_TOKEN)
      const named = (name: string) => (e: Error & { code?: string }) => e.code === 'FLX_USAGE' && e.message.startsWith(`${name}: "1x!"`);
      if (s.env) assert.throws(() => resolveSettings([], { [s.env!]: '1x!' }), named(s.env), `${key} from ${s.env}`);
      if (s.flag && s.arg) assert.throws(() => resolveSettings([`--${s.flag}`, '1x!'], {}), named(`--${s.flag}`), `${key} from --${s.flag}`);
    }
    const r = runFlexilib(['--max-header-size', '1x!']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^flexilib: --max-header-size: "1x!" is not an integer from 1024 to 1048576/);
  });

  test("docs/operations.md's flag tables are the generated ones (node scripts/settings-docs.mjs rewrites them)", () => {
    const doc = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
    assert.ok(doc.includes(DOCS_BEGIN));
    assert.equal(doc, withSettingsTable(doc), 'docs/operations.md is out of date: pnpm build && node scripts/settings-docs.mjs');
    for (const [key, s] of entries) {
      if (s.flag) assert.ok(doc.includes(`\`--${s.flag}`), `operations.md lists --${s.flag} (${key})`);
      if (s.env) assert.ok(doc.includes(`\`${s.env}`), `operations.md lists ${s.env} (${key})`);
    }
  });

  test("README's flag table names only flags and variables that exist", () => {
    const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Running it'));
    const rows = section.slice(0, section.indexOf('\n\n', section.indexOf('| flag |'))).split('\n').filter((l) => l.startsWith('| `'));
    assert.ok(rows.length >= 5, 'README has its flag table under "## Running it"');
    const flags = new Set(entries.flatMap(([, s]) => (s.flag ? [`--${s.flag}`] : [])));
    const envs = new Set(SETTING_ENV_VARS);
    for (const row of rows) {
      for (const [, f] of row.matchAll(/`(--[a-z-]+)`/g)) assert.ok(flags.has(f), `README row names unknown flag ${f}: ${row}`);
      for (const [, e] of row.matchAll(/`([A-Z][A-Z_]+)(=0)?`/g)) assert.ok(envs.has(e), `README row names unknown variable ${e}: ${row}`);
    }
  });
});
