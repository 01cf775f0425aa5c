/**
 * The status page served at GET / of the admin listener: one self-contained
 * HTML document (no build step, no external assets) that polls GET /status
 * every POLL_MS and redraws in place. Values go in through textContent only:
 * route keys and quarantine reasons come from files and must not become markup.
 * The inline script is allowed by its hash in the Content-Security-Policy.
 */
import { createHash } from 'node:crypto';

const POLL_MS = 1000;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells, cls) {
  const tr = el('tr', null, cls);
  for (const c of cells) tr.append(c instanceof Node ? wrap(c) : el('td', c));
  return tr;
}
function wrap(node) { const td = el('td'); td.append(node); return td; }
function badge(text, kind) { return el('span', text, 'badge ' + kind); }
function bytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}
function dur(s) {
  if (s < 60) return s.toFixed(0) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
}
function fill(id, rows, empty, span) {
  if (!rows.length) { const td = el('td', empty, 'empty'); td.colSpan = span; const tr = el('tr'); tr.append(td); rows = [tr]; }
  $(id).replaceChildren(...rows);
}
function render(s) {
  $('sup').textContent = 'supervisor ' + s.supervisor.pid + ' · up ' + dur(s.supervisor.uptime_s) + ' · ' + bytes(s.supervisor.rss_bytes) +
    ' · config generation ' + s.supervisor.generation + ' (' + s.supervisor.config + ')' + (s.supervisor.port ? ' · traffic port ' + s.supervisor.port : '');
  fill('workers', s.workers.map((w) => row([w.pid, badge(w.state, w.state === 'listening' ? 'ok' : 'idle'), dur(w.uptime_s), bytes(w.rss_bytes),
    w.requests_per_s === null ? '…' : w.requests_per_s.toFixed(1), w.requests])), 'no worker alive', 6);
  fill('routes', s.routes.map((r, i) => {
    const ex = r.executor.kind + (r.executor.mode ? ' · ' + r.executor.mode : '') + (r.executor.pool ? ' · pool ' + r.executor.pool : '') + (r.executor.service ? ' · service ' + r.executor.service : '');
    const match = r.match.path_prefix + (r.match.header ? '  [' + r.match.header + ']' : '');
    const state = el('div');
    state.append(badge(r.state, r.state === 'serving' ? 'ok' : 'bad'));
    if (r.quarantine) {
      state.append(el('div', r.quarantine.reason, 'reason'));
      state.append(el('div', 'since ' + new Date(r.quarantine.since).toLocaleTimeString() + ' (' + r.quarantine.crashes + ' crashes) · until ' + r.quarantine.until, 'detail'));
    }
    const lib = el('div');
    if (r.library) {
      lib.append(el('div', r.target));
      const sha = el('code', r.library.sha256 ? 'sha256 ' + r.library.sha256.slice(0, 16) + '…' : (r.library.error || 'hashing…'), 'sha');
      sha.title = r.library.sha256 || '';
      lib.append(sha);
      if (r.library.loaded_at) lib.append(el('div', 'loaded ' + new Date(r.library.loaded_at).toLocaleString(), 'detail'));
    } else lib.append(el('div', r.target));
    return row([i + 1, match, ex, lib, state], r.quarantine ? 'quarantined' : '');
  }), 'no route', 5);
  const pools = [];
  for (const p of s.upstreams) {
    for (const o of p.origins) {
      pools.push(row([p.name + ' (' + p.healthy + '/' + p.origins.length + ' healthy, ' + p.balance + ')', o.url, badge(o.healthy ? 'up' : 'down', o.healthy ? 'ok' : 'bad'),
        o.requests.success + ' ok / ' + o.requests.failed + ' failed', o.checks.ok + ' ok / ' + o.checks.failed + ' failed',
        o.last_check ? o.last_check.detail : '–'], o.healthy ? '' : 'down'));
    }
    if (!p.origins.length) pools.push(row([p.name, el('span', 'no origin', 'empty'), badge('empty', 'bad'), '', '', ''], 'down'));
  }
  fill('upstreams', pools, 'no upstream pool configured', 6);
  fill('services', s.wasm_services.map((w) => row([w.name, w.prefix, el('code', w.sha256.slice(0, 16) + '…', 'sha')])), 'no WASM service registered', 3);
  $('functions').textContent = s.functions === null ? 'Lambda and worker functions are not available in this version.' : JSON.stringify(s.functions);
  $('cluster').textContent = s.cluster === null ? 'Cluster mode is not available in this version: this server runs alone.' : JSON.stringify(s.cluster);
  $('updated').textContent = 'updated ' + new Date(s.time).toLocaleTimeString();
  $('problem').hidden = true;
  document.body.dataset.loaded = 'true';
}
async function poll() {
  try {
    const r = await fetch('status', { cache: 'no-store' });
    if (!r.ok) throw new Error('GET /status answered ' + r.status);
    render(await r.json());
  } catch (err) {
    $('problem').textContent = 'cannot read /status: ' + err.message + ' (retrying)';
    $('problem').hidden = false;
  }
  setTimeout(poll, ${POLL_MS});
}
poll();
`;

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2230; background: #f4f5f8; }
header { background: #1d2230; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header span { opacity: .8; }
main { padding: 8px 24px 24px; }
section { background: #fff; border-radius: 6px; margin: 16px 0; padding: 8px 16px 12px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { font-size: 15px; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e6e8ee; vertical-align: top; }
th { font-weight: 600; color: #586079; font-size: 12px; text-transform: uppercase; }
.badge { padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.ok { background: #d8f3e0; color: #17642f; } .bad { background: #fbdada; color: #8d1c1c; } .idle { background: #e6e8ee; color: #586079; }
tr.quarantined td, tr.down td { background: #fff5f5; }
.reason { margin-top: 4px; color: #8d1c1c; } .detail, .empty { color: #586079; font-size: 12px; }
code.sha { font-size: 12px; color: #586079; }
#problem { background: #fbdada; color: #8d1c1c; padding: 8px 24px; }
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flexilib status</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>flexilib</h1><span id="sup">loading…</span><span id="updated"></span></header>
<div id="problem" role="alert" hidden></div>
<main>
<section><h2>Workers</h2><table><thead><tr><th>pid</th><th>state</th><th>uptime</th><th>RSS</th><th>requests/s</th><th>requests</th></tr></thead><tbody id="workers"></tbody></table></section>
<section><h2>Routes, in match order</h2><table><thead><tr><th>#</th><th>match</th><th>executor</th><th>target</th><th>state</th></tr></thead><tbody id="routes"></tbody></table></section>
<section><h2>Upstream pools</h2><table><thead><tr><th>pool</th><th>origin</th><th>health</th><th>requests</th><th>checks</th><th>last check</th></tr></thead><tbody id="upstreams"></tbody></table></section>
<section><h2>WASM services</h2><table><thead><tr><th>name</th><th>prefix</th><th>module sha256</th></tr></thead><tbody id="services"></tbody></table></section>
<section><h2>Functions</h2><p id="functions" class="empty"></p></section>
<section><h2>Cluster</h2><p id="cluster" class="empty"></p></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const scriptHash = createHash('sha256').update(SCRIPT).digest('base64');

export const STATUS_PAGE = {
  html: HTML,
  headers: {
    'content-security-policy': `default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-${scriptHash}'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  },
};
