import { escapeXml } from '../graph/index.ts';

const STYLE = `
:root { --ink: #263238; --muted: #607d8b; --line: #cfd8dc; --bad: #c62828; --ok: #2e7d32; }
* { box-sizing: border-box; }
body { margin: 0; font: 13px/1.4 Helvetica, Arial, sans-serif; color: var(--ink); background: #fff; }
header { display: flex; gap: 16px; align-items: center; padding: 10px 18px; border-bottom: 1px solid var(--line); }
header h1 { font-size: 17px; margin: 0; }
#status { padding: 2px 10px; border-radius: 10px; background: #eceff1; color: var(--muted); }
#status.live { background: #e8f5e9; color: var(--ok); }
#status.down { background: #ffebee; color: var(--bad); }
main { display: grid; grid-template-columns: minmax(360px, 42%) minmax(0, 1fr); gap: 16px; padding: 12px 16px; align-items: start; }
#side { overflow-x: auto; }
#graph { overflow: auto; max-height: calc(100vh - 80px); border: 1px solid var(--line); border-radius: 8px; }
#graph svg { display: block; }
table { border-collapse: collapse; width: 100%; margin-bottom: 18px; }
th, td { text-align: right; padding: 3px 6px; border-bottom: 1px solid #eceff1; white-space: nowrap; font-size: 12px; }
th { white-space: normal; vertical-align: bottom; }
#workers td.text { white-space: normal; }
th:first-child, td:first-child, td.text { text-align: left; }
th { color: var(--muted); font-weight: 600; }
td.bad { color: var(--bad); font-weight: 600; }
h2 { font-size: 14px; margin: 6px 0; }
button { font: inherit; padding: 2px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fafafa; cursor: pointer; }
button.danger { border-color: var(--bad); color: var(--bad); }
.panel { border: 1px solid #ffcdd2; background: #fffafa; border-radius: 6px; padding: 8px; margin: 0 0 14px; }
.panel pre { margin: 0; max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: pre-wrap; word-break: break-all; }
.muted { color: var(--muted); }
#token-box { display: none; gap: 6px; align-items: center; }
`;

// The page's script: plain DOM, no framework; every value from the server goes in with textContent.
const SCRIPT = `
'use strict';
const tokenKey = 'warren-dashboard-token';
const open = new Set();
let last = null;
const $ = (sel, root) => (root || document).querySelector(sel);
const el = (tag, props, children) => {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const c of children || []) node.append(c);
  return node;
};
const num = (n) => (n === undefined || n === null ? '–' : n >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1));
const ms = (n) => (n === undefined || n === null ? '–' : n < 1 ? n.toFixed(2) + ' ms' : n < 1000 ? n.toFixed(1) + ' ms' : (n / 1000).toFixed(2) + ' s');
const reasons = (r) => Object.entries(r).map(([k, v]) => k + ' ' + v).join(', ');
function setStatus(text, cls) {
  const s = $('#status');
  s.textContent = text;
  s.className = cls;
}
function cell(row, field, text, bad) {
  const td = $('td[data-field="' + field + '"]', row);
  if (td.textContent !== text) td.textContent = text;
  td.classList.toggle('bad', !!bad);
}
function actorRow(a) {
  let row = $('tr[data-actor="' + CSS.escape(a.name) + '"]');
  if (row) return row;
  const fields = ['kind', 'inRate', 'outRate', 'processed', 'inFlight', 'ready', 'dead', 'parked', 'retried', 'p50', 'p99'];
  row = el('tr', {}, [el('td', { textContent: a.name, className: 'text' })]);
  row.dataset.actor = a.name;
  for (const f of fields) {
    const td = el('td', { className: f === 'kind' || f === 'parked' ? 'text' : '' });
    td.dataset.field = f;
    row.append(td);
  }
  const button = el('button', { textContent: 'dead letters' });
  button.dataset.action = 'dead-letters';
  button.addEventListener('click', () => toggle(a.name));
  row.append(el('td', {}, [button]));
  $('#actors tbody').append(row);
  return row;
}
function render(frame) {
  last = frame;
  $('#token-box').style.display = frame.replayNeedsToken ? 'flex' : 'none';
  for (const a of frame.actors) {
    const row = actorRow(a);
    cell(row, 'kind', a.kind);
    cell(row, 'inRate', a.kind === 'source' ? '' : num(a.inRate));
    cell(row, 'outRate', num(a.outRate));
    cell(row, 'processed', num(a.kind === 'source' ? a.emitted : a.processed));
    cell(row, 'inFlight', num(a.inFlight));
    cell(row, 'ready', num(a.ready));
    cell(row, 'dead', num(a.dead), a.dead > 0);
    cell(row, 'parked', a.parked > 0 ? a.parked + ' (' + reasons(a.parkedByReason) + ')' : '0');
    cell(row, 'retried', num(a.retried));
    cell(row, 'p50', ms(a.p50Ms));
    cell(row, 'p99', ms(a.p99Ms));
    const live = document.querySelector('[data-live="' + CSS.escape(a.name) + '"]');
    if (live)
      live.textContent = (a.kind === 'source' ? '' : 'in ' + num(a.inRate) + '/s · ') + 'out ' + num(a.outRate) + '/s' + (a.p99Ms !== undefined ? ' · p99 ' + ms(a.p99Ms) : '');
    const depth = document.querySelector('[data-depth="' + CSS.escape(a.name) + '"]');
    if (depth) depth.textContent = a.ready === undefined ? '' : a.ready + ' ready';
    const parked = document.querySelector('[data-parked="' + CSS.escape(a.name) + '"]');
    if (parked) parked.textContent = a.dead ? a.dead + ' parked' : '';
    const panel = document.getElementById('dead-' + a.name);
    if (panel && panel.dataset.count !== String(a.dead)) load(a.name);
  }
  const tbody = $('#workers tbody');
  tbody.replaceChildren(
    ...frame.workers.map((w) => {
      const row = el('tr', {}, [
        el('td', { className: 'text', textContent: w.id + (w.self ? ' (this process)' : '') }),
        el('td', { className: 'text', textContent: w.actors.join(', ') }),
        el('td', { className: 'text', textContent: Object.entries(w.shards).map(([a, list]) => a + ' ' + list.join(',')).join(' · ') }),
        el('td', { textContent: String(w.received) }),
        el('td', { textContent: w.uptimeSeconds + ' s' }),
        el('td', { textContent: w.seenSecondsAgo + ' s ago' }),
      ]);
      row.dataset.worker = w.id;
      return row;
    }),
  );
  $('#updated').textContent = 'updated ' + new Date(frame.at).toLocaleTimeString();
}
function headers() {
  const h = { 'x-warren-dashboard': 'replay' };
  const token = sessionStorage.getItem(tokenKey);
  if (token) h.authorization = 'Bearer ' + token;
  return h;
}
async function load(actor) {
  const panel = document.getElementById('dead-' + actor);
  if (!panel) return;
  const res = await fetch('api/parked?actor=' + encodeURIComponent(actor) + '&limit=50');
  const body = await res.json();
  const list = $('.list', panel);
  if (!res.ok) {
    list.replaceChildren(el('p', { className: 'muted', textContent: body.error || res.statusText }));
    return;
  }
  panel.dataset.count = String(body.messages.length);
  if (body.messages.length === 0) {
    list.replaceChildren(el('p', { className: 'muted empty', textContent: 'nothing parked' }));
    return;
  }
  list.replaceChildren(
    el('table', {}, [
      el('thead', {}, [el('tr', {}, ['id', 'type', 'reason', 'error', 'parked at', 'trace', 'body'].map((t) => el('th', { textContent: t })))]),
      el('tbody', {}, body.messages.map((m) => {
        const trace = m.jaeger ? el('a', { href: m.jaeger, target: '_blank', rel: 'noopener noreferrer', textContent: 'flow in Jaeger' }) : el('span', { className: 'muted', textContent: m.flowId || '' });
        const row = el('tr', {}, [
          el('td', { className: 'text', textContent: m.id || '' }),
          el('td', { className: 'text', textContent: m.type || '' }),
          el('td', { className: 'text', textContent: m.reason || '' }),
          el('td', { className: 'text', textContent: m.error || '' }),
          el('td', { className: 'text', textContent: m.parkedAt ? new Date(m.parkedAt).toLocaleTimeString() : '' }),
          el('td', { className: 'text' }, [trace]),
          el('td', { className: 'text' }, [el('pre', { textContent: m.body })]),
        ]);
        row.dataset.parkedId = m.id || '';
        return row;
      })),
    ]),
  );
}
async function replay(actor) {
  const panel = document.getElementById('dead-' + actor);
  const res = await fetch('api/replay?actor=' + encodeURIComponent(actor), { method: 'POST', headers: headers() });
  const body = await res.json();
  $('.result', panel).textContent = res.ok ? 'replayed ' + body.replayed : body.error || res.statusText;
  await load(actor);
}
function toggle(actor) {
  const id = 'dead-' + actor;
  const existing = document.getElementById(id);
  if (existing) {
    existing.remove();
    open.delete(actor);
    return;
  }
  open.add(actor);
  const button = el('button', { className: 'danger', textContent: 'replay all' });
  button.dataset.action = 'replay';
  button.addEventListener('click', () => replay(actor));
  const panel = el('section', { className: 'panel', id }, [
    el('h2', { textContent: 'Dead letters of ' + actor + ' ' }, [button, el('span', { className: 'result muted' })]),
    el('div', { className: 'list', textContent: 'loading…' }),
  ]);
  panel.dataset.actor = actor;
  $('#dead-letters').append(panel);
  load(actor);
}
$('#token').addEventListener('change', (e) => sessionStorage.setItem(tokenKey, e.target.value.trim()));
$('#token').value = sessionStorage.getItem(tokenKey) || '';
let source = null;
function connect() {
  source = new EventSource('events');
  source.onopen = () => setStatus('live', 'live');
  source.onmessage = (e) => render(JSON.parse(e.data));
  source.onerror = () => {
    setStatus('reconnecting…', 'down');
    // The browser retries by itself, unless the answer was not an event stream: then start again.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 1000);
  };
}
connect();
`;

/**
 * The dashboard's page: one self-contained HTML file (inline CSS and script, no build step, nothing
 * fetched from elsewhere) around the pipeline's picture drawn with room for live figures.
 *
 * @example
 * ```ts
 * res.end(dashboardPage({ pipeline: 'shop', mode: 'worker', svg }));
 * ```
 */
export function dashboardPage(options: {
  readonly pipeline: string;
  readonly mode: 'worker' | 'attached';
  readonly svg: string;
}): string {
  const title = escapeXml(`warren · ${options.pipeline}`);
  const mode =
    options.mode === 'worker' ? 'served by a worker' : 'attached to RabbitMQ and Redis (hosting no actor)';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${title}</h1>
<span id="status">connecting…</span>
<span class="muted">${escapeXml(mode)}</span>
<span class="muted" id="updated"></span>
<label id="token-box">replay token <input id="token" type="password" autocomplete="off" size="24"></label>
</header>
<main>
<div id="graph">${options.svg}</div>
<div id="side">
<h2>Actors</h2>
<table id="actors">
<thead><tr><th>actor</th><th>kind</th><th>in/s</th><th>out/s</th><th>done</th><th>in flight</th><th>queued</th><th>dead letters</th><th>parked (since start)</th><th>retries</th><th>p50</th><th>p99</th><th></th></tr></thead>
<tbody></tbody>
</table>
<div id="dead-letters"></div>
<h2>Worker processes</h2>
<table id="workers">
<thead><tr><th>worker</th><th>actors</th><th>shards held</th><th>received</th><th>up</th><th>last report</th></tr></thead>
<tbody></tbody>
</table>
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
