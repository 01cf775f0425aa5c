/**
 * The live status page (GET / of the admin listener) in a real headless
 * chromium: it renders the workers, the routes in match order with their
 * library hashes and an upstream pool, and shows a quarantine within seconds
 * of it happening — and its end with the new build's hash — without a reload;
 * GET /status carries the same facts. With
 * the listener bound beyond loopback and ADMIN_TOKEN set, the page still
 * works (it only reads) while mutating endpoints keep asking for the token.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { compilePlugin, crashOnce, fixture, request, startFlexilib, tempDir, waitForAnswers } from '@flexilib/test-support';
import { startOrigin } from '../upstream/origins.js';
import { launchChromium } from './chromium.js';

test('the status page renders live state and shows a quarantine within seconds, without reloading', { timeout: 120_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await Promise.all([
    compilePlugin(fixture('segfault.c'), path.join(dir, 'libsegv.so')),
    compilePlugin(fixture('segfault.c'), path.join(dir, 'fixed.so'), { defines: ['FIXED'] }),
    compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] }),
  ]);
  const up = await startOrigin(t, 'from origin');
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, `/crash = libsegv.so\n/ok = libok.so\n/api = upstream:api\n[upstream.api]\nservers = http://127.0.0.1:${up.port}\nhealth_interval = 1s\n`);
  const server = await startFlexilib({ config, workers: 2, accessLog: false, args: ['--quarantine-crashes', '2', '--quarantine-window', '60'] });
  t.after(() => server.kill());
  await waitForAnswers(server.port, '/ok', (r) => r.body === 'ok');
  await waitForAnswers(server.port, '/api', (r) => r.body === 'from origin');

  const chrome = await launchChromium();
  t.after(() => chrome.close());
  const page = await chrome.browser.newPage();
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations++; });
  const res = await page.goto(`http://127.0.0.1:${server.adminPort}/`);
  assert.equal(res?.status(), 200);
  assert.match(res!.headers()['content-type'], /^text\/html/);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });

  // Routes in match order, with executors and the library's hash.
  const routeRows = () => page.$$eval('#routes tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  const rows = await routeRows();
  assert.deepEqual(rows.map((r) => r[1]), ['/crash', '/ok', '/api']);
  assert.match(rows[0][2], /^native · inline/);
  assert.match(rows[2][2], /^upstream · pool api/);
  const okSha = createHash('sha256').update(readFileSync(path.join(dir, 'libok.so'))).digest('hex');
  await page.waitForFunction((prefix) => document.querySelector('#routes tr:nth-child(2)')?.textContent?.includes(prefix), `sha256 ${okSha.slice(0, 16)}`, { timeout: 10_000 });
  assert.ok(rows.every((r) => /serving/.test(r[4])), `every route serves at first: ${JSON.stringify(rows)}`);
  // Workers with pid, uptime, RSS, and a request rate once two samples exist.
  const workers = await page.$$eval('#workers tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  assert.ok(workers.filter((w) => w[1] === 'listening').length >= 2, JSON.stringify(workers));
  assert.ok(workers.every((w) => /^\d+$/.test(w[0]) && /iB$/.test(w[3])), JSON.stringify(workers));
  // The upstream origin, up, with its request counts.
  await page.waitForFunction(() => /up/.test(document.querySelector('#upstreams tr')?.textContent ?? ''), undefined, { timeout: 10_000 });
  const origins = await page.$$eval('#upstreams tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
  assert.match(origins[0], new RegExp(`api.*http://127\\.0\\.0\\.1:${up.port}.*up`));

  // Crash until quarantined; the open page shows it within seconds.
  let quarantinedAt = 0;
  for (let i = 0; i < 6 && !quarantinedAt; i++) {
    const { reply } = await crashOnce(server, '/crash');
    if (reply?.status === 503) quarantinedAt = Date.now();
  }
  assert.ok(quarantinedAt, 'the route became quarantined');
  await page.waitForFunction(() => document.querySelector('#routes tr.quarantined')?.textContent?.includes('libsegv.so is quarantined'), undefined, { timeout: 5000 });
  const shown = (await routeRows())[0];
  assert.match(shown[4], /quarantined.*crashed workers 2 times in 60 s.*until the library file changes or the server is sent SIGHUP/s);
  assert.equal(navigations, 1, 'the page updated in place, never reloaded');

  // GET /status says the same.
  const status = JSON.parse((await request(server.adminPort, '/status')).body);
  assert.deepEqual(status.routes.map((r: { key: string }) => r.key), ['/crash', '/ok', '/api']);
  assert.equal(status.routes[0].state, 'quarantined');
  assert.equal(status.routes[0].quarantine.crashes, 2);
  assert.equal(status.routes[0].quarantine.library, path.join(dir, 'libsegv.so'));
  assert.equal(status.routes[1].library.sha256, okSha);
  assert.equal(status.upstreams[0].origins[0].healthy, true);
  assert.equal(status.functions, null);
  assert.equal(status.cluster, null);

  // A little traffic so the screenshot shows rates, then the picture for docs/.
  for (let i = 0; i < 40; i++) await request(server.port, i % 2 ? '/ok' : '/api');
  await page.waitForFunction(() => [...document.querySelectorAll('#workers tr td:nth-child(5)')].some((td) => Number(td.textContent) > 0), undefined, { timeout: 10_000 });
  // Workers report upstream counts at most once a second: the page shows them once they arrive.
  await page.waitForFunction(() => /^[1-9]\d* ok/.test(document.querySelector('#upstreams tr td:nth-child(4)')?.textContent ?? ''), undefined, { timeout: 10_000 });
  const after = JSON.parse((await request(server.adminPort, '/status')).body);
  assert.ok(after.upstreams[0].origins[0].requests.success >= 1, JSON.stringify(after.upstreams[0]));
  // The page's per-worker counts add up to the traffic just sent.
  await page.waitForFunction(() => [...document.querySelectorAll('#workers tr td:nth-child(6)')].reduce((a, td) => a + Number(td.textContent), 0) >= 40, undefined, { timeout: 10_000 });
  await page.screenshot({ path: process.env.FLEXILIB_STATUS_SCREENSHOT ?? path.join(dir, 'status-page.png'), fullPage: true });

  // A fixed build lifts the quarantine: the page shows the route serving again, with the new hash and load time.
  const before = status.routes[0].library;
  const fixedSha = createHash('sha256').update(readFileSync(path.join(dir, 'fixed.so'))).digest('hex');
  copyFileSync(path.join(dir, 'fixed.so'), path.join(dir, '.tmp.so'));
  renameSync(path.join(dir, '.tmp.so'), path.join(dir, 'libsegv.so'));
  await page.waitForFunction((prefix) => {
    const tr = document.querySelector('#routes tr:first-child');
    return !tr?.classList.contains('quarantined') && tr?.textContent?.includes(prefix) && tr.textContent.includes('serving');
  }, `sha256 ${fixedSha.slice(0, 16)}`, { timeout: 15_000 });
  const lifted = JSON.parse((await request(server.adminPort, '/status')).body);
  assert.equal(lifted.routes[0].state, 'serving');
  assert.equal(lifted.routes[0].library.sha256, fixedSha);
  assert.ok(lifted.routes[0].library.loaded_at > before.loaded_at, 'the new version has a later load time');
  assert.deepEqual(lifted.quarantined, []);
  assert.equal(navigations, 1, 'still the same page');
});

/**
 * An address the admin listener's rule counts as beyond loopback (so ADMIN_TOKEN is required)
 * that still only accepts local connections: 127.0.0.1, IPv4-mapped on a dual-stack socket.
 */
const BEYOND_LOOPBACK = '::ffff:127.0.0.1';

test('beyond loopback with ADMIN_TOKEN the page works without the token; mutating calls still need it', { timeout: 90_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  await compilePlugin(fixture('versioned.c'), path.join(dir, 'libok.so'), { defines: ['VERSION="ok"'] });
  const config = path.join(dir, 'proxy.ini');
  writeFileSync(config, '/ok = libok.so\n');
  // The rule itself: beyond loopback without a token, flexilib refuses to start.
  await assert.rejects(startFlexilib({ config, workers: 1, accessLog: false, env: { ADMIN_HOST: BEYOND_LOOPBACK }, timeoutMs: 15_000 }), /beyond loopback: set ADMIN_TOKEN/);
  const server = await startFlexilib({ config, workers: 1, accessLog: false, env: { ADMIN_HOST: BEYOND_LOOPBACK, ADMIN_TOKEN: 'tok-status-test' } });
  t.after(() => server.kill());

  const chrome = await launchChromium();
  t.after(() => chrome.close());
  const page = await chrome.browser.newPage();
  await page.goto(`http://127.0.0.1:${server.adminPort}/`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 15_000 });
  assert.equal(await page.$eval('#routes tr td:nth-child(2)', (td) => td.textContent), '/ok');
  assert.equal(await page.$eval('#problem', (e) => (e as HTMLElement).hidden), true);
  // From the page's own origin: the token rule is unchanged for mutating endpoints.
  const calls = await page.evaluate(async () => {
    const denied = await fetch('services', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const allowed = await fetch('services', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer tok-status-test' }, body: '{}' });
    return { denied: denied.status, deniedBody: await denied.json(), allowed: allowed.status };
  });
  assert.equal(calls.denied, 401);
  assert.equal(calls.deniedBody.error.code, 'FLX_ADMIN_UNAUTHORIZED');
  assert.equal(calls.allowed, 400, 'with the token the call reaches validation (an empty body is refused there)');
});
