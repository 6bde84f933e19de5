// Eddy console: a single page over Eddy's HTTP API (docs/http-api.md). No build step, no
// dependencies: plain ES2020, DOM and SVG drawn here. Views are routed by the location hash:
// #/editor, #/catalog, #/queries, #/queries/<id>, #/health.
'use strict';
(() => {
  // ---------------------------------------------------------------- DOM helpers
  const $ = (sel, root = document) => root.querySelector(sel);
  const SVGNS = 'http://www.w3.org/2000/svg';

  // h('div.cls#id', {attrs}, children...): an element; attrs starting with "on" are listeners.
  function build(ns, spec, attrs, children) {
    const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/i.exec(spec);
    const el = ns ? document.createElementNS(ns, m[1]) : document.createElement(m[1]);
    for (const part of m[2].match(/[.#][\w-]+/g) || []) {
      if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
    }
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const h = (spec, attrs, ...children) => build(null, spec, attrs, children);
  const s = (spec, attrs, ...children) => build(SVGNS, spec, attrs, children);

  // ---------------------------------------------------------------- formatting
  const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const nf1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
  const fmtInt = (n) => (n === null || n === undefined ? '—' : nf0.format(n));
  function fmtNum(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '—';
    return Math.abs(v) < 10 && v !== 0 ? nf1.format(v) : nf0.format(v);
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return '—';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? String(b) : b.toFixed(b < 10 ? 1 : 0)) + ' ' + u[i];
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  const fmtClock = (ms) => { const d = new Date(ms); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };
  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    const sec = Math.floor(ms / 1000);
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ' + (sec % 60) + ' s';
    if (sec < 86400) return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
    return Math.floor(sec / 86400) + ' d ' + Math.floor((sec % 86400) / 3600) + ' h';
  }
  function cellText(v) {
    if (v === null || v === undefined) return 'null';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  // A rate: a span the staleness logic finds (data-rate) and the test reads (data-value).
  function rateEl(v, unit = '/s') {
    const el = h('span.rate', { 'data-testid': 'rate', 'data-rate': '' });
    setRate(el, v, unit);
    return el;
  }
  function setRate(el, v, unit = '/s') {
    const live = v !== null && v !== undefined && Number.isFinite(v) && !conn.down;
    el.textContent = live ? fmtNum(v) + unit : '—';
    el.dataset.value = live ? String(v) : '';
    el.classList.toggle('stale', !live);
  }

  // ---------------------------------------------------------------- the connection
  // Every request goes through api(): a failed fetch (no answer at all) means the server is
  // unreachable: a banner says since when, every rate turns to "—", and a ping retries until
  // the server answers again.
  const conn = { down: false, since: null, pingTimer: null };
  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.message) || `HTTP ${status}`);
      this.status = status; this.body = body;
    }
  }
  function markDown() {
    if (conn.down) return;
    conn.down = true; conn.since = Date.now();
    rates.reset();
    const b = $('#banner');
    b.textContent = `Server unreachable since ${fmtClock(conn.since)}, retrying…`;
    b.hidden = false;
    document.body.classList.add('offline');
    $('#conn').textContent = 'offline';
    $('#conn').className = 'conn down';
    for (const el of document.querySelectorAll('[data-rate]')) setRate(el, null);
    conn.pingTimer = setInterval(ping, 2000);
  }
  function markUp() {
    if (!conn.down) { $('#conn').className = 'conn up'; $('#conn').textContent = 'connected'; return; }
    conn.down = false;
    clearInterval(conn.pingTimer);
    $('#banner').hidden = true;
    document.body.classList.remove('offline');
    $('#conn').className = 'conn up'; $('#conn').textContent = 'connected';
    rates.reset(); // the first interval after an outage has no rate
    notice(`The server answers again since ${fmtClock(Date.now())} (unreachable for ${fmtDuration(Date.now() - conn.since)}).`);
    if (current && current.poll) schedule(0);
  }
  // A passing note under the top bar (30 s).
  let noticeTimer = 0;
  function notice(text) {
    const el = $('#notice');
    el.textContent = text;
    el.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { el.hidden = true; }, 30000);
  }
  function ping() {
    if (document.visibilityState !== 'visible') return;
    api('/healthcheck', { cache: 'no-store' }, 5000).catch(() => {});
  }
  // timeoutMs: a server that does not answer in time counts as unreachable (polls and pings).
  async function api(path, opts = {}, timeoutMs = 0) {
    let res;
    let timedOut = false;
    let tm = 0;
    if (timeoutMs) {
      const c = new AbortController();
      opts = { ...opts, signal: c.signal };
      tm = setTimeout(() => { timedOut = true; c.abort(); }, timeoutMs);
    }
    try {
      res = await fetch(path, opts);
    } catch (e) {
      if (e.name !== 'AbortError' || timedOut) markDown();
      throw timedOut ? new TypeError(`no answer in ${timeoutMs / 1000} s`) : e;
    } finally {
      clearTimeout(tm);
    }
    markUp();
    return res;
  }
  async function readJSON(res) {
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = { message: text }; }
    if (!res.ok) throw new HttpError(res.status, body);
    return body;
  }
  const getJSON = async (path) => readJSON(await api(path, { cache: 'no-store', headers: { Accept: 'application/json' } }, 10000));
  const postJSON = async (path, obj) => readJSON(await api(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(obj),
  }));
  const offsetReset = () => $('#offset-reset').value;
  const ksql = (sql) => postJSON('/ksql', { ksql: sql, streamsProperties: { 'auto.offset.reset': offsetReset() } });

  // ---------------------------------------------------------------- rates and series
  // A rate is the difference of two answers' counters over the difference of their server
  // clocks (timeMs). A counter that went down (a restart) or a gap over 10 s gives no rate.
  const rates = {
    prev: new Map(),
    rate(key, t, v) {
      const p = this.prev.get(key);
      if (p && t <= p.t) return p.r; // the same answer again
      let r = null;
      if (p && v !== null && v !== undefined && p.v !== null && p.v !== undefined) {
        const dt = t - p.t;
        if (dt <= 10000 && v >= p.v) r = ((v - p.v) * 1000) / dt;
        if (v < p.v) notice(`A counter went down at ${fmtClock(t)}: the server or the query restarted; that interval has no rate.`);
      }
      this.prev.set(key, { t, v, r });
      return r;
    },
    reset() { this.prev.clear(); },
  };
  // Series of the last 5 minutes, [serverTimeMs, value|null], kept in the page's memory.
  const WINDOW_MS = 5 * 60 * 1000;
  const series = {
    m: new Map(),
    push(key, t, v) {
      let a = this.m.get(key);
      if (!a) { a = []; this.m.set(key, a); }
      if (a.length && a[a.length - 1][0] >= t) return a;
      a.push([t, v]);
      while (a.length && a[0][0] < t - WINDOW_MS) a.shift();
      return a;
    },
    get(key) { return this.m.get(key) || []; },
  };
  // counter -> rate -> series, in one call
  function track(key, t, counter) {
    const r = rates.rate(key, t, counter);
    series.push(key, t, r);
    return r;
  }

  // A sparkline of a series; points more than 3 s apart are not joined (an outage shows as a gap).
  function sparkline(points, w = 120, hgt = 28) {
    const el = s('svg.spark', { width: w, height: hgt, viewBox: `0 0 ${w} ${hgt}`, 'data-testid': 'sparkline' });
    const vals = points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
    if (!vals.length) return el;
    // The x axis spans the points kept (at most 5 minutes), so that a fresh page has a line too.
    const tMax = points[points.length - 1][0];
    const span = Math.max(5000, tMax - vals[0][0]);
    const tMin = tMax - span;
    const vMax = Math.max(...vals.map((p) => p[1]), 1e-9);
    const x = (t) => ((t - tMin) / span) * (w - 4) + 2;
    const y = (v) => hgt - 2 - (v / vMax) * (hgt - 4);
    let d = '';
    let last = null;
    for (const [t, v] of points) {
      if (v === null || !Number.isFinite(v)) { last = null; continue; }
      d += (last !== null && t - last < 3000 ? 'L' : 'M') + x(t).toFixed(1) + ' ' + y(v).toFixed(1);
      last = t;
    }
    el.append(s('line.base', { x1: 0, x2: w, y1: hgt - 1.5, y2: hgt - 1.5 }), s('path', { d }));
    const lp = vals[vals.length - 1];
    el.append(s('circle', { cx: x(lp[0]), cy: y(lp[1]), r: 2 }));
    el.append(s('title', {}, `last ${fmtDuration(span)}: max ${fmtNum(vMax)}, now ${fmtNum(lp[1])}`));
    return el;
  }

  // ---------------------------------------------------------------- tables
  function table(columns, rows, opts = {}) {
    const t = h('table.grid', { 'data-testid': opts.testid || null });
    t.append(h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c)))));
    const tb = h('tbody');
    for (const r of rows) tb.append(h('tr', {}, r.map((v) => (v instanceof Node ? h('td', {}, v) : h('td', { class: v === null ? 'null' : null }, cellText(v))))));
    if (!rows.length && opts.empty) tb.append(h('tr', {}, h('td.empty', { colspan: columns.length }, opts.empty)));
    t.append(tb);
    return t;
  }

  // ---------------------------------------------------------------- statements
  // Splits SQL text into statements on semicolons outside quotes and comments. Each statement
  // keeps its offset in the text (after leading blanks and comments) so that an error's
  // "Line: N, Column: M" can be marked in the editor.
  function splitStatements(text) {
    const out = [];
    let start = -1;
    let i = 0;
    const n = text.length;
    while (i < n) {
      const c = text[i];
      if (c === '-' && text[i + 1] === '-') { const e = text.indexOf('\n', i); i = e < 0 ? n : e + 1; continue; }
      if (c === '/' && text[i + 1] === '*') { const e = text.indexOf('*/', i + 2); i = e < 0 ? n : e + 2; continue; }
      if (start < 0 && /\s/.test(c)) { i++; continue; }
      if (start < 0) start = i;
      if (c === "'" || c === '"' || c === '`') {
        let j = i + 1;
        while (j < n) { if (text[j] === c) { if (text[j + 1] === c) { j += 2; continue; } break; } j++; }
        i = j + 1; continue;
      }
      if (c === ';') { out.push({ text: text.slice(start, i + 1), start }); start = -1; }
      i++;
    }
    if (start >= 0 && text.slice(start).trim()) out.push({ text: text.slice(start).trimEnd() + ';', start });
    return out;
  }
  const firstWord = (sql) => (/^\s*([a-z]+)/i.exec(sql) || [, ''])[1].toUpperCase();
  const isQuery = (sql) => ['SELECT', 'PRINT'].includes(firstWord(sql));
  // "Line: N, Column: M" (sqlparser's form) -> {line, col}
  function errorPosition(msg) {
    const m = /Line:\s*(\d+),\s*Column:?\s*(\d+)/i.exec(msg || '');
    return m ? { line: +m[1], col: +m[2] } : null;
  }
  function offsetOf(text, pos) {
    const lines = text.split('\n');
    let off = 0;
    for (let i = 0; i < pos.line - 1 && i < lines.length; i++) off += lines[i].length + 1;
    return Math.min(off + pos.col - 1, text.length);
  }

  // ---------------------------------------------------------------- result blocks
  // One block per statement run: the statement, its status, and its rows, message or error.
  // Used by the editor and by the catalog's live tail of a topic.
  const MAX_ROWS = 1000;
  function makeBlock(sql, container, editorOffset) {
    const b = { sql, editorOffset, running: false, queryId: null, ctrl: null, rows: 0, stopped: false };
    b.stmt = h('pre.stmt', {}, sql);
    b.status = h('span.status', { 'data-testid': 'status' });
    b.stopBtn = h('button.stop', { 'data-testid': 'stop', hidden: true, onclick: () => stopBlock(b) }, 'Stop');
    b.body = h('div.result-body');
    b.el = h('div.result', { 'data-testid': 'result' }, h('div.result-head', {}, b.stmt, h('div.result-side', {}, b.status, b.stopBtn)), b.body);
    container.prepend(b.el);
    b.el._block = b;
    setStatus(b, 'running', 'running…');
    return b;
  }
  function setStatus(b, state, text) {
    b.el.dataset.status = state;
    b.status.textContent = text;
    b.status.className = 'status st-' + state;
  }
  function showError(b, err) {
    const body = err instanceof HttpError ? err.body || {} : { message: err.message || String(err) };
    const msg = body.message || err.message || 'failed';
    setStatus(b, 'error', err instanceof HttpError ? `error ${body.error_code || err.status}` : 'failed');
    b.body.append(h('div.error', { 'data-testid': 'error' }, msg));
    const pos = errorPosition(msg);
    if (pos) {
      // Mark the position in the statement shown, and offer to jump there in the editor.
      const lines = b.sql.split('\n');
      b.stmt.textContent = '';
      lines.forEach((line, i) => {
        b.stmt.append(h('span', { class: i === pos.line - 1 ? 'err-line' : null }, line), '\n');
        if (i === pos.line - 1) b.stmt.append(h('span.caret', {}, ' '.repeat(Math.max(0, pos.col - 1)) + '^ ' + 'here'), '\n');
      });
      const link = h('a.error-pos', { href: '#', 'data-testid': 'error-pos', 'data-line': pos.line, 'data-column': pos.col },
        `Line ${pos.line}, Column ${pos.col}`);
      if (b.editorOffset !== undefined) {
        const at = b.editorOffset + offsetOf(b.sql, pos);
        link.addEventListener('click', (e) => { e.preventDefault(); const ta = $('#sql'); ta.focus(); ta.setSelectionRange(at, Math.min(at + 1, ta.value.length)); });
        const ta = $('#sql');
        if (ta.value.length >= at) ta.setSelectionRange(at, Math.min(at + 1, ta.value.length));
      }
      b.body.append(h('div.error-at', {}, 'at ', link));
    }
    for (const ent of body.entities || []) renderEntity(b, ent);
  }
  function renderEntity(b, ent) {
    if (ent['@type'] === 'currentStatus' || ent.commandStatus) {
      const msg = (ent.commandStatus && ent.commandStatus.message) || 'done';
      const m = /query with ID (\w+)/i.exec(msg);
      b.body.append(h('div.message', { 'data-testid': 'message' }, msg, ' ',
        m ? h('a.open-query', { href: '#/queries/' + encodeURIComponent(m[1]) }, 'open its page →') : null));
    } else if (ent['@type'] === 'rows' || Array.isArray(ent.rows)) {
      b.body.append(h('div.table-wrap', {}, table(ent.columnNames || [], ent.rows || [], { testid: 'result-table', empty: 'no rows' })));
    } else {
      b.body.append(h('pre.json', {}, JSON.stringify(ent, null, 2)));
    }
    for (const w of ent.warnings || []) b.body.append(h('div.warning', {}, (w && w.message) || cellText(w)));
  }
  async function runStatement(b) {
    try {
      const res = await ksql(b.sql);
      for (const ent of res || []) renderEntity(b, ent);
      setStatus(b, 'done', 'done');
      return true;
    } catch (e) {
      showError(b, e);
      return false;
    }
  }

  // A query through /query-stream: a header line, then one JSON array per line; empty lines are
  // keep-alives. Resolves once the header is there (push) or the result is complete (pull).
  // A browser keeps at most 6 HTTP/1.1 connections to a server and each running query holds
  // one, so the page runs at most MAX_STREAMS at once (the oldest is stopped), leaving
  // connections for the views' polling.
  const MAX_STREAMS = 4;
  const streams = new Set();
  async function runQuery(b) {
    const running = [...streams].filter((x) => x.running);
    if (running.length >= MAX_STREAMS) {
      const old = running[0];
      stopBlock(old);
      old.body.append(h('div.warning', {}, `Stopped to make room: this page runs at most ${MAX_STREAMS} queries at once (the browser's connections to a server are few).`));
    }
    streams.add(b);
    b.ctrl = new AbortController();
    b.running = true;
    let res;
    try {
      res = await api('/query-stream', {
        method: 'POST', signal: b.ctrl.signal,
        headers: { 'Content-Type': 'application/json', Accept: 'application/vnd.ksqlapi.delimited.v1' },
        body: JSON.stringify({ sql: b.sql, streamsProperties: { 'auto.offset.reset': offsetReset() } }),
      });
      if (!res.ok) await readJSON(res);
    } catch (e) {
      b.running = false;
      streams.delete(b);
      if (b.stopped) { setStatus(b, 'stopped', 'stopped'); return true; }
      showError(b, e.name === 'TypeError' ? new Error('server unreachable: ' + e.message) : e);
      return false;
    }
    b.stopBtn.hidden = false;
    let headerSeen;
    const header = new Promise((r) => { headerSeen = r; });
    const done = pump(b, res, headerSeen);
    const kind = await header;
    if (kind !== 'push') return done;
    return true;
  }
  async function pump(b, res, headerSeen) {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let kind = null;
    let ok = true;
    const onLine = (line) => {
      if (!line.trim()) return;
      let v;
      try { v = JSON.parse(line); } catch (_) { b.body.append(h('div.warning', {}, 'unreadable line: ' + line.slice(0, 200))); return; }
      if (Array.isArray(v)) { if (!b.tbody) startTable(b, []); queueRow(b, v); return; }
      if (!kind && (v.queryId !== undefined || v.columnNames)) {
        kind = v.kind || 'push';
        b.queryId = v.queryId || null;
        b.kind = kind;
        startTable(b, v.columnNames || []);
        setStatus(b, 'running', kind === 'push' ? 'streaming' : 'reading');
        headerSeen(kind);
        return;
      }
      if (v.message && (v['@type'] || v.error_code)) { ok = false; b.body.append(h('div.error', { 'data-testid': 'error' }, v.message)); return; }
      if (v.finalMessage) { b.body.append(h('div.message', {}, v.finalMessage)); return; }
      b.body.append(h('pre.json', {}, JSON.stringify(v)));
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
      }
      buf += dec.decode();
      if (buf) onLine(buf);
      flushRows(b);
      b.running = false;
      b.stopBtn.hidden = true;
      const n = `${fmtInt(b.rows)} row${b.rows === 1 ? '' : 's'}`;
      if (!ok) setStatus(b, 'error', `failed after ${n}`);
      else if (b.stopped) setStatus(b, 'stopped', `stopped after ${n}`);
      else if (kind === 'push' && /\bLIMIT\s+\d+\s*;?\s*$/i.test(b.sql)) setStatus(b, 'done', 'done: LIMIT reached');
      else if (kind === 'push') setStatus(b, 'ended', `the server ended the stream after ${n}`);
      else setStatus(b, 'done', 'done');
    } catch (e) {
      flushRows(b);
      b.running = false;
      b.stopBtn.hidden = true;
      if (b.stopped || e.name === 'AbortError') { setStatus(b, 'stopped', `stopped after ${fmtInt(b.rows)} rows`); ok = true; }
      else {
        ok = false;
        setStatus(b, 'error', 'connection lost');
        b.body.append(h('div.error', { 'data-testid': 'error' },
          `Connection to the server lost after ${fmtInt(b.rows)} rows (${e.message}). The query is no longer running; run it again when the server is back.`));
        ping();
      }
    }
    headerSeen(kind);
    streams.delete(b);
    return ok;
  }
  function startTable(b, columns) {
    if (b.tbody) return;
    b.count = h('div.row-count', { 'data-testid': 'row-count' }, '0 rows');
    b.tbody = h('tbody');
    b.pending = [];
    b.wrap = h('div.table-wrap.rows', {}, h('table.grid', { 'data-testid': 'result-table' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, c)))), b.tbody));
    b.body.append(b.count, b.wrap);
  }
  // Rows are drawn once per animation frame, and only the last MAX_ROWS are kept, so that a
  // fast push query cannot freeze the page.
  function queueRow(b, row) {
    b.rows++;
    b.pending.push(row);
    if (b.pending.length > MAX_ROWS) b.pending.splice(0, b.pending.length - MAX_ROWS);
    if (!b.frame) b.frame = requestAnimationFrame(() => flushRows(b));
  }
  function flushRows(b) {
    if (b.frame) { cancelAnimationFrame(b.frame); b.frame = 0; }
    if (!b.tbody || !b.pending.length) { if (b.count) b.count.textContent = rowCountText(b); return; }
    // follow new rows while the table is scrolled to its end
    const atEnd = b.wrap.scrollTop + b.wrap.clientHeight >= b.wrap.scrollHeight - 24;
    const frag = document.createDocumentFragment();
    for (const r of b.pending) frag.append(h('tr', {}, r.map((v) => h('td', { class: v === null ? 'null' : null }, cellText(v)))));
    b.pending = [];
    b.tbody.append(frag);
    while (b.tbody.childElementCount > MAX_ROWS) b.tbody.firstElementChild.remove();
    if (atEnd && b.kind === 'push') b.wrap.scrollTop = b.wrap.scrollHeight;
    b.count.textContent = rowCountText(b);
    b.count.dataset.rows = String(b.rows);
  }
  const rowCountText = (b) => `${fmtInt(b.rows)} row${b.rows === 1 ? '' : 's'}` + (b.rows > MAX_ROWS ? ` (showing the last ${fmtInt(MAX_ROWS)})` : '');
  function stopBlock(b) {
    if (!b.running) return;
    b.stopped = true;
    if (b.queryId) postJSON('/close-query', { queryId: b.queryId }).catch(() => {});
    if (b.ctrl) b.ctrl.abort();
  }

  // ---------------------------------------------------------------- editor
  const HISTORY_KEY = 'eddy.console.history';
  const loadHistory = () => { try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch (_) { return []; } };
  function addHistory(text) {
    const hist = loadHistory().filter((x) => x !== text);
    hist.unshift(text);
    try { localStorage.setItem(HISTORY_KEY, JSON.stringify(hist.slice(0, 100))); } catch (_) { /* full or disabled */ }
    drawHistory();
  }
  function drawHistory() {
    const ol = $('#history');
    ol.textContent = '';
    const hist = loadHistory();
    if (!hist.length) ol.append(h('li.empty', {}, 'Statements you run appear here.'));
    for (const text of hist) {
      ol.append(h('li', { 'data-testid': 'history-item', title: text, onclick: () => { const ta = $('#sql'); ta.value = text; ta.focus(); } }, text));
    }
  }
  let editorBusy = false;
  async function runEditor() {
    if (editorBusy) return;
    const ta = $('#sql');
    let text = ta.value;
    let base = 0;
    if (ta.selectionEnd > ta.selectionStart) { text = ta.value.slice(ta.selectionStart, ta.selectionEnd); base = ta.selectionStart; }
    const stmts = splitStatements(text);
    if (!stmts.length) return;
    addHistory(text.trim());
    editorBusy = true;
    $('#run').disabled = true;
    try {
      const results = $('#results');
      for (const st of stmts) {
        const b = makeBlock(st.text, results, base + st.start);
        const ok = isQuery(st.text) ? await runQuery(b) : await runStatement(b);
        if (!ok) break; // stop at the first failing statement, as /ksql does
      }
      const blocks = [...results.children];
      for (const el of blocks.slice(30)) { stopBlock(el._block); el.remove(); }
    } finally {
      editorBusy = false;
      $('#run').disabled = false;
    }
  }
  function initEditor() {
    const ta = $('#sql');
    ta.value = localStorage.getItem('eddy.console.draft') || '';
    ta.addEventListener('input', () => { try { localStorage.setItem('eddy.console.draft', ta.value); } catch (_) { /* ignore */ } });
    ta.addEventListener('keydown', (e) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') { e.preventDefault(); runEditor(); }
      if (e.key === 'Tab' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
        e.preventDefault();
        ta.setRangeText('  ', ta.selectionStart, ta.selectionEnd, 'end');
      }
      if (e.key === 'Escape') ta.blur(); // Tab indents; Escape leaves the editor
    });
    $('#run').addEventListener('click', runEditor);
    $('#clear-results').addEventListener('click', () => {
      for (const el of [...$('#results').children]) { stopBlock(el._block); el.remove(); }
    });
    $('#clear-history').addEventListener('click', () => { localStorage.removeItem(HISTORY_KEY); drawHistory(); });
    const sel = $('#offset-reset');
    sel.value = localStorage.getItem('eddy.console.offset') || 'earliest';
    sel.addEventListener('change', () => localStorage.setItem('eddy.console.offset', sel.value));
    drawHistory();
  }
  // Put SQL into the editor and show it (the catalog's "query it").
  function openInEditor(sql) {
    const ta = $('#sql');
    ta.value = sql;
    location.hash = '#/editor';
    setTimeout(() => ta.focus(), 0);
  }

  // ---------------------------------------------------------------- catalog
  const catalog = { selected: null, tail: null, showInternal: false, data: null };
  function catalogView() {
    const root = $('#view-catalog');
    root.textContent = '';
    const list = h('div.cat-list', { 'data-testid': 'catalog' });
    const detail = h('div.cat-detail', { 'data-testid': 'catalog-detail' }, h('p.muted', {}, 'Pick a stream, table, topic or type.'));
    root.append(h('div.view-head', {}, h('h1', {}, 'Catalog'),
      h('button', { 'data-testid': 'catalog-refresh', onclick: () => loadCatalog(list, detail) }, 'Refresh'),
      h('label.check', {}, h('input', { type: 'checkbox', checked: catalog.showInternal, onchange: (e) => { catalog.showInternal = e.target.checked; drawCatalogList(list, detail); } }), 'internal topics')),
    h('div.cat-grid', {}, list, detail));
    loadCatalog(list, detail);
    return {
      poll: () => (catalog.selected && catalog.selected.kind === 'topic' ? refreshTopic(detail) : null),
      every: 2000,
      leave: () => { if (catalog.tail) stopBlock(catalog.tail); catalog.tail = null; },
    };
  }
  async function loadCatalog(list, detail) {
    list.textContent = 'loading…';
    try {
      const [ents, topics] = await Promise.all([ksql('SHOW STREAMS; SHOW TABLES; SHOW TYPES;'), getJSON('/api/topics')]);
      catalog.data = { streams: ents[0].rows || [], tables: ents[1].rows || [], types: ents[2].rows || [], topics: topics.topics || [] };
      drawCatalogList(list, detail);
      const sel = catalog.selected; // shown again on coming back, if it still exists
      if (sel) {
        const d = catalog.data;
        const row = { stream: d.streams, table: d.tables, type: d.types }[sel.kind];
        const found = row ? row.find((r) => r[0] === sel.name) : d.topics.find((t) => t.name === sel.name);
        if (found) { sel.item = row ? { ...sel.item, row: found } : { ...sel.item, topic: found }; showCatalogItem(detail); } else { catalog.selected = null; drawCatalogList(list, detail); }
      }
    } catch (e) {
      list.textContent = '';
      list.append(h('div.error', {}, 'Could not read the catalog: ' + e.message));
    }
  }
  function drawCatalogList(list, detail) {
    const d = catalog.data;
    if (!d) return;
    list.textContent = '';
    const section = (title, kind, unsorted) => {
      const items = [...unsorted].sort((a, b) => a.name.localeCompare(b.name, 'en', { sensitivity: 'base' }));
      list.append(h('h2', {}, title, h('span.count', {}, String(items.length))));
      const ul = h('ul', { 'data-testid': `catalog-${kind}s` });
      if (!items.length) ul.append(h('li.empty', {}, 'none'));
      for (const it of items) {
        const sel = catalog.selected && catalog.selected.kind === kind && catalog.selected.name === it.name;
        ul.append(h('li', { class: sel ? 'selected' : null, title: it.name, 'data-testid': 'catalog-item', 'data-kind': kind, 'data-name': it.name,
          onclick: () => { catalog.selected = { kind, name: it.name, item: it }; drawCatalogList(list, detail); showCatalogItem(detail); } },
        h('span.name', {}, it.name), h('span.sub', {}, it.sub || '')));
      }
      list.append(ul);
    };
    section('Streams', 'stream', d.streams.map((r) => ({ name: r[0], sub: r[1], row: r })));
    section('Tables', 'table', d.tables.map((r) => ({ name: r[0], sub: r[1], row: r })));
    const topics = d.topics.filter((t) => catalog.showInternal || !t.internal);
    section('Topics', 'topic', topics.map((t) => ({ name: t.name, sub: `${t.partitions.length} p · ${fmtInt(t.partitions.reduce((a, p) => a + (p.end - p.start), 0))} rec`, topic: t })));
    section('Types', 'type', d.types.map((r) => ({ name: r[0], sub: '', row: r })));
  }
  async function showCatalogItem(detail) {
    if (catalog.tail) { stopBlock(catalog.tail); catalog.tail = null; }
    const { kind, name, item } = catalog.selected;
    detail.textContent = '';
    detail.append(h('h2', {}, h('span.kind', {}, kind), ' ', name));
    if (kind === 'stream' || kind === 'table') {
      const [, topic, keyFmt, valFmt, windowed] = item.row;
      detail.append(h('dl.facts', {}, h('dt', {}, 'topic'), h('dd', {}, topic), h('dt', {}, 'key format'), h('dd', {}, keyFmt),
        h('dt', {}, 'value format'), h('dd', {}, valFmt), h('dt', {}, 'windowed'), h('dd', {}, windowed)));
      detail.append(h('div.actions', {},
        h('button', { onclick: () => openInEditor(`SELECT * FROM ${name} EMIT CHANGES;`) }, 'Query in editor'),
        h('button', { onclick: () => openInEditor(`DESCRIBE ${name} EXTENDED;`) }, 'DESCRIBE EXTENDED')));
      const schema = h('div', { 'data-testid': 'schema' }, 'loading…');
      detail.append(h('h3', {}, 'Schema'), schema);
      try {
        const ents = await ksql(`DESCRIBE ${quoteIdent(name)};`);
        schema.textContent = '';
        schema.append(table(ents[0].columnNames || ['Field', 'Type'], ents[0].rows || []));
      } catch (e) { schema.textContent = ''; schema.append(h('div.error', {}, e.message)); }
    } else if (kind === 'type') {
      detail.append(h('pre.stmt', { 'data-testid': 'schema' }, item.row[1]));
    } else {
      detail.append(h('div', { 'data-testid': 'topic-partitions' }));
      drawTopic(detail, item.topic);
      const tailBox = h('div.results');
      const btn = h('button.primary', { 'data-testid': 'tail', onclick: async () => {
        if (catalog.tail && catalog.tail.running) { stopBlock(catalog.tail); return; }
        tailBox.textContent = '';
        const safe = name.replace(/'/g, "''");
        catalog.tail = makeBlock(`PRINT '${safe}' FROM BEGINNING;`, tailBox);
        btn.textContent = 'Stop tail';
        await runQuery(catalog.tail);
        const watch = setInterval(() => { if (!catalog.tail || !catalog.tail.running) { btn.textContent = 'Live tail'; clearInterval(watch); } }, 300);
      } }, 'Live tail');
      detail.append(h('h3', {}, 'Records ', btn), tailBox);
    }
  }
  const quoteIdent = (name) => (/^[A-Z_][A-Z0-9_]*$/.test(name) ? name : '`' + name.replace(/`/g, '``') + '`');
  function drawTopic(detail, t) {
    const box = $('[data-testid=topic-partitions]', detail);
    if (!box || !t) return;
    box.textContent = '';
    const rows = t.partitions.map((p) => [p.partition, fmtInt(p.start), fmtInt(p.end), fmtInt(p.end - p.start), fmtBytes(p.bytes)]);
    const tot = t.partitions.reduce((a, p) => [a[0] + (p.end - p.start), a[1] + p.bytes], [0, 0]);
    box.append(h('dl.facts', {}, h('dt', {}, 'partitions'), h('dd', {}, String(t.partitions.length)), h('dt', {}, 'records'),
      h('dd', {}, fmtInt(tot[0])), h('dt', {}, 'size'), h('dd', {}, fmtBytes(tot[1])), h('dt', {}, 'internal'), h('dd', {}, String(t.internal))));
    box.append(table(['Partition', 'Start offset', 'End offset', 'Records', 'Size'], rows));
  }
  async function refreshTopic(detail) {
    const data = await getJSON('/api/topics');
    const t = (data.topics || []).find((x) => x.name === catalog.selected.name);
    drawTopic(detail, t);
  }

  // ---------------------------------------------------------------- queries list
  // Summaries feed the same rates and series as the query page, so that opening a query shows
  // the minutes already seen.
  function trackSummary(q, t) {
    const k = 'q:' + q.id;
    series.push(k + ':lag', t, q.lag);
    series.push(k + ':state', t, q.stateBytes);
    return {
      // Records of the query's own input and output topics (repartition hops left out).
      in: track(k + ':in', t, q.inputRecords ?? q.recordsIn),
      out: track(k + ':out', t, q.outputRecords ?? q.recordsOut),
    };
  }
  // "clicks → PER_PAGE": the query's outside topics (internal repartition topics left out).
  const outside = (ts) => { const o = (ts || []).filter((t) => !t.startsWith('_')); return o.length ? o : ts || []; };
  const topicFlow = (q) => outside(q.sourceTopics).join(', ') + ' → ' + (outside(q.sinkTopics).join(', ') || 'client');
  const stateBadge = (q) => h('span.badge', { class: 'badge ' + (q.state || '').toLowerCase(), 'data-testid': 'query-state' }, q.state || '?');
  function queriesView() {
    const root = $('#view-queries');
    root.textContent = '';
    const box = h('div', { 'data-testid': 'queries' }, h('p.muted', {}, 'loading…'));
    root.append(h('div.view-head', {}, h('h1', {}, 'Queries'), h('span.muted', {}, 'updated every second')), box);
    return {
      every: 1000,
      poll: async () => {
        const data = await getJSON('/api/queries');
        const t = data.timeMs;
        const rows = (data.queries || []).map((q) => {
          const r = trackSummary(q, t);
          const idCell = q.persistent ? h('a', { href: '#/queries/' + encodeURIComponent(q.id) }, q.id) : h('span', {}, q.id);
          return [idCell, stateBadge(q), q.persistent ? 'persistent' : 'push',
            h('span.topics', {}, topicFlow(q)),
            rateEl(r.in), rateEl(r.out), sparkline(series.get('q:' + q.id + ':in'), 90, 22),
            fmtInt(q.inputRecords ?? q.recordsIn), fmtInt(q.outputRecords ?? q.recordsOut), fmtInt(q.errors), fmtInt(q.lateRecords), fmtInt(q.lag), fmtBytes(q.stateBytes), fmtInt(q.tasks)];
        });
        box.textContent = '';
        const tbl = table(['Query', 'State', 'Kind', 'Topics', 'In/s', 'Out/s', 'In, 5 min', 'Records in', 'Records out', 'Errors', 'Late', 'Lag', 'State size', 'Tasks'],
          rows, { testid: 'queries-table', empty: 'No queries are running. CREATE STREAM … AS SELECT or CREATE TABLE … AS SELECT starts one.' });
        [...tbl.tBodies[0].rows].forEach((tr, i) => { const q = data.queries[i]; if (q) { tr.dataset.testid = 'query-row'; tr.dataset.id = q.id; if (q.persistent) { tr.classList.add('link'); tr.addEventListener('click', (e) => { if (!e.target.closest('a')) location.hash = '#/queries/' + encodeURIComponent(q.id); }); } } });
        box.append(h('div.table-wrap', {}, tbl));
        for (const q of data.queries || []) if (q.error) box.append(h('div.error', {}, `${q.id}: ${q.error}`));
      },
    };
  }

  // ---------------------------------------------------------------- one query
  function queryView(id) {
    const root = $('#view-query');
    root.textContent = '';
    const v = { id, planKey: null, nodeEls: new Map() };
    v.head = h('div.view-head', {}, h('h1', { 'data-testid': 'query-id' }, id));
    v.msg = h('div.action-msg', { 'data-testid': 'action-msg' });
    const act = (stmt) => async () => {
      if (stmt === 'TERMINATE' && !confirm(`Terminate ${id}? Its sink stays; the query stops for good.`)) return;
      v.msg.textContent = `${stmt} ${id}…`;
      v.msg.className = 'action-msg';
      try { const r = await ksql(`${stmt} ${id};`); v.msg.textContent = (r[0] && r[0].commandStatus && r[0].commandStatus.message) || 'done'; } catch (e) { v.msg.textContent = e.message; v.msg.className = 'action-msg error'; }
      schedule(0);
    };
    v.pause = h('button', { 'data-testid': 'pause', onclick: act('PAUSE') }, 'Pause');
    v.resume = h('button', { 'data-testid': 'resume', onclick: act('RESUME') }, 'Resume');
    v.term = h('button.danger', { 'data-testid': 'terminate', onclick: act('TERMINATE') }, 'Terminate');
    v.head.append(h('span.badge-slot'), h('span.spacer'), v.pause, v.resume, v.term);
    v.sql = h('pre.stmt.query-sql');
    v.notes = h('div');
    v.stats = h('div.stats', { 'data-testid': 'query-stats' });
    v.graph = h('div.graph-wrap', { 'data-testid': 'graph-wrap' });
    v.ops = h('div.table-wrap');
    v.inputs = h('div.table-wrap');
    v.tasks = h('div.table-wrap');
    v.root = h('div', { 'data-testid': 'query-page' });
    root.append(v.root);
    v.root.append(h('a.back', { href: '#/queries' }, '← all queries'), v.head, v.msg, v.sql, v.notes, v.stats,
      h('h2', {}, 'Operator graph'), v.graph, h('h2', {}, 'Operators'), v.ops, h('h2', {}, 'Lag per input partition'), v.inputs,
      h('h2', {}, 'Operators per task (sub-topology × partition)'), v.tasks);
    return { every: 1000, poll: () => pollQuery(v) };
  }
  async function pollQuery(v) {
    let d;
    try {
      d = await getJSON('/api/queries/' + encodeURIComponent(v.id));
    } catch (e) {
      if (e instanceof HttpError && e.status === 404) {
        v.notes.textContent = '';
        v.notes.append(h('div.error', { 'data-testid': 'error' }, `Query ${v.id} does not exist (any more): ${e.message}`));
        for (const b of [v.pause, v.resume, v.term]) b.disabled = true;
        $('.badge-slot', v.head).textContent = '';
        v.root.classList.add('gone'); // what is left on the page is history
        return;
      }
      throw e;
    }
    v.root.classList.remove('gone');
    const q = d.query;
    const t = d.timeMs;
    const sum = trackSummary(q, t);
    $('.badge-slot', v.head).replaceChildren(stateBadge(q));
    v.pause.disabled = q.state !== 'RUNNING';
    v.resume.disabled = q.state !== 'PAUSED';
    v.term.disabled = false;
    v.sql.textContent = q.sql || '';
    v.notes.textContent = '';
    if (q.error) v.notes.append(h('div.error', { 'data-testid': 'query-error' }, 'Error: ' + q.error));
    if (q.waiting) v.notes.append(h('div.warning', {}, 'Waiting: ' + q.waiting));
    const k = 'q:' + q.id;
    const stat = (label, valueEl, key) => h('div.stat', {}, h('div.stat-label', {}, label), h('div.stat-value', {}, valueEl), key ? sparkline(series.get(key), 160, 30) : null);
    v.stats.replaceChildren(
      stat('records in', rateEl(sum.in), k + ':in'),
      stat('records out', rateEl(sum.out), k + ':out'),
      stat('lag (records)', h('span', {}, fmtInt(q.lag)), k + ':lag'),
      stat('state size', h('span', {}, fmtBytes(q.stateBytes)), k + ':state'),
      h('div.stat.small', {}, h('div', {}, `total in ${fmtInt(q.inputRecords ?? q.recordsIn)} · out ${fmtInt(q.outputRecords ?? q.recordsOut)}`, h('span.muted', { title: 'every record read and written, repartition topics included' }, ` (all hops ${fmtInt(q.recordsIn)} · ${fmtInt(q.recordsOut)})`)),
        h('div', {}, `errors ${fmtInt(q.errors)} · late ${fmtInt(q.lateRecords)} · tasks ${fmtInt(q.tasks)}`),
        h('div', {}, topicFlow(q))));

    // Per node: the sum over the partitions of its sub-topology; rates per node and per task.
    const subs = (d.plan && d.plan.subtopologies) || [];
    const agg = new Map();
    const taskRows = [];
    const inputRows = [];
    for (const task of d.tasks || []) {
      const sub = subs[task.subtopology] || { nodes: [] };
      for (const c of task.nodes || []) {
        const key = `${task.subtopology}:${c.node}`;
        const a = agg.get(key) || { rowsIn: 0, rowsOut: 0, batches: 0, errors: 0, late: 0 };
        for (const f of ['rowsIn', 'rowsOut', 'batches', 'errors', 'late']) a[f] += c[f] || 0;
        agg.set(key, a);
        const tk = `${k}:t${task.subtopology}.${task.partition}.${c.node}`;
        const node = sub.nodes.find((n) => n.id === c.node) || {};
        taskRows.push([task.subtopology, task.partition, c.node, node.kind || '?', rateEl(track(tk + ':in', t, c.rowsIn)), rateEl(track(tk + ':out', t, c.rowsOut)),
          fmtInt(c.rowsIn), fmtInt(c.rowsOut), fmtInt(c.batches), fmtInt(c.errors), fmtInt(c.late),
          c.stateBytes === null || c.stateBytes === undefined ? '' : fmtBytes(c.stateBytes)]);
      }
      for (const inp of task.inputs || []) {
        const lk = `${k}:lag:${inp.topic}:${inp.partition}`;
        series.push(lk, t, inp.lag);
        inputRows.push([task.subtopology, task.partition, inp.topic, inp.partition, fmtInt(inp.offset), fmtInt(inp.end),
          h('span', { class: inp.lag > 0 ? 'lagging' : null }, fmtInt(inp.lag)), sparkline(series.get(lk), 100, 20), task.instance || '']);
      }
    }
    const opRows = [];
    const nodeStats = new Map();
    subs.forEach((sub, si) => {
      for (const n of sub.nodes) {
        const key = `${si}:${n.id}`;
        const a = agg.get(key) || { rowsIn: null, rowsOut: null, batches: null, errors: null, late: null };
        const nk = `${k}:n${key}`;
        const st = { ...a, rin: track(nk + ':in', t, a.rowsIn), rout: track(nk + ':out', t, a.rowsOut), stateBytes: n.stateBytes };
        nodeStats.set(key, st);
        opRows.push([si, n.id, n.kind, h('span.label', { title: n.label }, n.label), rateEl(st.rin), rateEl(st.rout), sparkline(series.get(nk + ':out'), 100, 20),
          fmtInt(a.rowsIn), fmtInt(a.rowsOut), fmtInt(a.batches), fmtInt(a.errors), fmtInt(a.late), n.stateBytes === null || n.stateBytes === undefined ? '' : fmtBytes(n.stateBytes)]);
      }
    });
    drawGraph(v, subs, nodeStats);
    v.ops.replaceChildren(table(['Sub', 'Node', 'Kind', 'Operator', 'In/s', 'Out/s', 'Out, 5 min', 'Rows in', 'Rows out', 'Batches', 'Errors', 'Late', 'State size'], opRows, { testid: 'operators' }));
    v.inputs.replaceChildren(table(['Sub', 'Task', 'Topic', 'Partition', 'Offset', 'End', 'Lag', 'Lag, 5 min', 'Instance'], inputRows, { testid: 'inputs', empty: 'no inputs reported' }));
    v.tasks.replaceChildren(table(['Sub', 'Partition', 'Node', 'Kind', 'In/s', 'Out/s', 'Rows in', 'Rows out', 'Batches', 'Errors', 'Late', 'State size'], taskRows, { testid: 'tasks', empty: 'no tasks run on this instance' }));
  }

  // The operator graph: each sub-topology a band, its nodes in columns by depth (a node's
  // column is one past its deepest input), bands stacked; a Sink writing topic T is linked
  // (dashed) to the Source reading T in another sub-topology. Laid out once per plan; the
  // figures are updated in place every poll.
  const NW = 214, NH = 80, GX = 46, GY = 16, BAND_GAP = 46, PAD = 14;
  function drawGraph(v, subs, nodeStats) {
    const key = JSON.stringify(subs.map((sb) => sb.nodes.map((n) => [n.id, n.kind, n.inputs, n.topic])));
    if (key !== v.planKey) layoutGraph(v, subs, key);
    for (const [nk, els] of v.nodeEls) {
      const st = nodeStats.get(nk);
      if (!st) continue;
      setRate(els.rin, st.rin); setRate(els.rout, st.rout);
      els.counts.textContent = `rows ${fmtInt(st.rowsIn)} → ${fmtInt(st.rowsOut)} · batches ${fmtInt(st.batches)}`;
      els.errs.textContent = `errors ${fmtInt(st.errors)} · late ${fmtInt(st.late)}` + (st.stateBytes !== null && st.stateBytes !== undefined ? ` · state ${fmtBytes(st.stateBytes)}` : '');
      els.g.classList.toggle('has-errors', (st.errors || 0) > 0);
    }
  }
  function layoutGraph(v, subs, key) {
    v.planKey = key;
    v.nodeEls = new Map();
    const pos = new Map();
    let y = PAD;
    let width = 0;
    const bands = [];
    subs.forEach((sub, si) => {
      const depth = new Map();
      const cols = [];
      for (const n of sub.nodes) {
        const d = (n.inputs || []).reduce((m, i) => Math.max(m, (depth.get(i) ?? -1) + 1), 0);
        depth.set(n.id, d);
        (cols[d] = cols[d] || []).push(n);
      }
      const rows = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
      const top = y + 22;
      cols.forEach((col, ci) => (col || []).forEach((n, ri) => {
        pos.set(`${si}:${n.id}`, { x: PAD + ci * (NW + GX), y: top + ri * (NH + GY) + ((rows - col.length) * (NH + GY)) / 2, n, si });
      }));
      const bandH = 22 + rows * (NH + GY) - GY + 10;
      bands.push({ si, y, h: bandH, w: cols.length * (NW + GX) - GX + 2 * PAD - 8 });
      width = Math.max(width, PAD + cols.length * (NW + GX) - GX + PAD);
      y += bandH + BAND_GAP;
    });
    const height = Math.max(y - BAND_GAP + PAD, 60);
    const g = s('svg.graph', { width, height, viewBox: `0 0 ${width} ${height}`, 'data-testid': 'graph', role: 'img', 'aria-label': 'operator graph' });
    g.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0 0 L10 5 L0 10 z', class: 'arrowhead' }))));
    for (const b of bands) {
      g.append(s('rect.band', { x: PAD / 2, y: b.y, width: Math.max(b.w, 200), height: b.h, rx: 6 }));
      g.append(s('text.band-label', { x: PAD, y: b.y + 15 }, subs.length > 1 ? `sub-topology ${b.si}` : 'topology'));
    }
    // edges inside a sub-topology
    subs.forEach((sub, si) => {
      for (const n of sub.nodes) {
        const to = pos.get(`${si}:${n.id}`);
        for (const i of n.inputs || []) {
          const from = pos.get(`${si}:${i}`);
          if (!from) continue;
          const x1 = from.x + NW, y1 = from.y + NH / 2, x2 = to.x - 2, y2 = to.y + NH / 2;
          g.append(s('path.edge', { d: `M${x1} ${y1} C${x1 + GX / 2} ${y1} ${x2 - GX / 2} ${y2} ${x2} ${y2}`, 'marker-end': 'url(#arrow)' }));
        }
      }
    });
    // links between sub-topologies through a (repartition) topic
    const sinks = [...pos.values()].filter((p) => p.n.kind === 'Sink' && p.n.topic);
    for (const sp of sinks) {
      for (const tp of pos.values()) {
        if (tp.n.kind !== 'Source' || tp.n.topic !== sp.n.topic || tp.si === sp.si) continue;
        const x1 = sp.x + 40, y1 = sp.y + NH, x2 = tp.x + NW - 40, y2 = tp.y - 2;
        const down = y2 > y1;
        const mid = down ? bandBottom(bands, sp.si) + BAND_GAP / 2 : y1 + BAND_GAP / 2;
        g.append(s('path.link', { d: `M${x1} ${y1} V${mid} H${x2} V${y2}`, 'marker-end': 'url(#arrow)', 'data-testid': 'link' }));
        g.append(s('text.link-label', { x: (x1 + x2) / 2, y: mid - 6, 'text-anchor': 'middle' }, sp.n.topic));
      }
    }
    for (const p of pos.values()) {
      const n = p.n;
      const stateful = n.stateBytes !== null && n.stateBytes !== undefined;
      const title = n.kind + (n.internal ? ' · repartition' : n.topic ? ' · ' + n.topic : '');
      const rin = s('tspan.rate', { 'data-testid': 'rate', 'data-rate': '' }, '—');
      const rout = s('tspan.rate', { 'data-testid': 'rate', 'data-rate': '' }, '—');
      const counts = s('text.node-text', { x: p.x + 10, y: p.y + 52 });
      const errs = s('text.node-text', { x: p.x + 10, y: p.y + 68 });
      const ng = s('g.node', { class: `node kind-${n.kind.toLowerCase()}${stateful ? ' stateful' : ''}`, 'data-testid': 'node', 'data-kind': n.kind, 'data-node': `${p.si}:${n.id}` },
        s('title', {}, `${n.label}\ncolumns: ${(n.columns || []).join(', ')}`),
        s('rect', { x: p.x, y: p.y, width: NW, height: NH, rx: 5 }),
        s('rect.node-bar', { x: p.x, y: p.y, width: 4, height: NH }),
        s('text.node-title', { x: p.x + 10, y: p.y + 17 }, clip(title, 40)),
        s('text.node-text.rates', { x: p.x + 10, y: p.y + 35 }, 'in ', rin, '   out ', rout),
        counts, errs);
      g.append(ng);
      v.nodeEls.set(`${p.si}:${n.id}`, { g: ng, rin, rout, counts, errs });
    }
    if (!subs.length) { v.graph.replaceChildren(h('p.muted', {}, 'no plan')); return; }
    v.graph.replaceChildren(g);
    // Shorten titles that do not fit their box (fonts differ between browsers).
    for (const tt of g.querySelectorAll('.node-title')) {
      let text = tt.textContent;
      while (text.length > 4 && tt.getComputedTextLength() > NW - 16) { text = text.slice(0, -2) + '…'; tt.textContent = text; text = text.slice(0, -1); }
    }
  }
  const bandBottom = (bands, si) => { const b = bands.find((x) => x.si === si); return b ? b.y + b.h : 0; };
  const clip = (text, n) => (text.length > n ? text.slice(0, n - 1) + '…' : text);

  // ---------------------------------------------------------------- health
  function healthView() {
    const root = $('#view-health');
    root.textContent = '';
    const box = h('div.cards', { 'data-testid': 'health' }, h('p.muted', {}, 'loading…'));
    root.append(h('div.view-head', {}, h('h1', {}, 'Health')), box);
    return {
      every: 2000,
      poll: async () => {
        const d = await getJSON('/api/health');
        const cp = d.checkpoint || {};
        const kv = (pairs) => h('dl.facts', {}, pairs.map(([k, v2, id]) => [h('dt', {}, k), h('dd', { 'data-testid': id || null }, v2)]));
        const card = (title, ...body) => h('div.card', {}, h('h2', {}, title), body);
        const disk = d.disk;
        let diskCard;
        if (disk) {
          const usedPct = disk.totalBytes ? 100 - (disk.freeBytes / disk.totalBytes) * 100 : 0;
          diskCard = card('Disk', kv([['data dir', disk.dataDir], ['used by data dir', fmtBytes(disk.usedBytes), 'disk-used'], ['free', fmtBytes(disk.freeBytes), 'disk-free'], ['total', fmtBytes(disk.totalBytes)]]),
            h('div.bar', { title: `${usedPct.toFixed(1)}% of the disk in use` }, h('div.bar-fill', { class: usedPct > 90 ? 'bar-fill full' : 'bar-fill', style: `width:${usedPct.toFixed(1)}%` })),
            h('div.muted', {}, `${usedPct.toFixed(1)}% of the disk in use`));
        } else diskCard = card('Disk', h('p.muted', {}, 'not reported'));
        box.replaceChildren(
          card('Server', kv([['backend', d.backend, 'backend'], ['instance', d.instance], ['started', d.startedMs ? new Date(d.startedMs).toLocaleString() : '—'],
            ['uptime', d.startedMs ? fmtDuration(d.timeMs - d.startedMs) : '—']])),
          card('Checkpoint', kv([['epoch', fmtInt(cp.epoch), 'checkpoint-epoch'], ['last duration', cp.lastDurationMs === null || cp.lastDurationMs === undefined ? '—' : cp.lastDurationMs.toFixed(1) + ' ms'],
            ['last pause', cp.lastPauseMs === null || cp.lastPauseMs === undefined ? '—' : cp.lastPauseMs.toFixed(1) + ' ms'],
            ['last', cp.lastAtMs ? `${fmtDuration(d.timeMs - cp.lastAtMs)} ago (${fmtClock(cp.lastAtMs)})` : 'none yet'],
            ['failures', fmtInt(cp.failuresTotal)], ['consecutive failures', fmtInt(cp.consecutiveFailures)]]),
          cp.lastError ? h('div.error', { 'data-testid': 'checkpoint-error' }, 'last error: ' + cp.lastError) : null),
          diskCard,
          card('Recovery notes', (d.recoveryNotes || []).length
            ? h('ul.notes', { 'data-testid': 'recovery-notes' }, d.recoveryNotes.map((x) => h('li', {}, x)))
            : h('p.muted', { 'data-testid': 'recovery-notes' }, 'The last start found nothing to repair.')));
        $('#conn').title = `${d.backend} · ${d.instance}`;
      },
    };
  }

  // ---------------------------------------------------------------- routing and polling
  // The current view polls while the page is visible; nothing runs when it is hidden.
  let current = null;
  let timer = 0;
  function schedule(ms) {
    clearTimeout(timer);
    if (!current || !current.poll || document.visibilityState !== 'visible') return;
    timer = setTimeout(tick, ms);
  }
  async function tick() {
    const view = current;
    if (!view || view.inflight) return; // the poll in flight schedules the next one
    view.inflight = true;
    const box = $('#poll-error');
    try {
      await view.poll();
      box.hidden = true;
    } catch (e) {
      // unreachable: the banner says so; any other failure is shown above the view
      if (!conn.down && view === current) { box.textContent = 'Could not update this view: ' + e.message; box.hidden = false; }
    } finally { view.inflight = false; }
    if (view === current) schedule(view.every || 1000);
  }
  function route() {
    const parts = (location.hash || '#/editor').replace(/^#\/?/, '').split('/');
    const name = parts[0] || 'editor';
    if (current && current.leave) current.leave();
    current = null;
    clearTimeout(timer);
    for (const sec of document.querySelectorAll('main > .view')) sec.hidden = true;
    $('#poll-error').hidden = true;
    let section = name;
    if (name === 'queries' && parts[1]) section = 'query';
    if (!['editor', 'catalog', 'queries', 'query', 'health'].includes(section)) section = 'editor';
    const nav = section === 'query' ? 'queries' : section;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.view === nav);
    $('#view-' + section).hidden = false;
    if (section === 'catalog') current = catalogView();
    else if (section === 'queries') current = queriesView();
    else if (section === 'query') current = queryView(decodeURIComponent(parts.slice(1).join('/')));
    else if (section === 'health') current = healthView();
    else current = { poll: null };
    document.title = `Eddy · ${section === 'query' ? decodeURIComponent(parts[1]) : section}`;
    if (section === 'editor') setTimeout(() => $('#sql').focus(), 0);
    schedule(0);
  }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') { rates.reset(); schedule(0); } else clearTimeout(timer);
  });
  window.addEventListener('hashchange', route);
  initEditor();
  route();
  if (!current.poll) ping();
})();
