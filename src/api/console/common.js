'use strict';
// Shared by the console and the floor: the API token, calls to the API,
// and building DOM nodes. Text from the API only ever goes into the page
// through textContent (never as markup), and the server's
// Content-Security-Policy forbids inline script besides.

/* exported tp */
const tp = (() => {
  // sessionStorage: the token lives as long as the tab, is not shared with
  // other tabs and is gone when the browser closes (a wall screen types it
  // again after a restart; nothing secret lingers on a shared machine).
  const KEY = 'tpswitch.token';
  const listeners = [];

  function token() {
    try {
      return sessionStorage.getItem(KEY) || '';
    } catch (_) {
      return '';
    }
  }

  function setToken(t) {
    try {
      if (t) sessionStorage.setItem(KEY, t);
      else sessionStorage.removeItem(KEY);
    } catch (_) { /* storage disabled: the token lasts until reload */ }
    showTokenState('');
    listeners.forEach((f) => f());
  }

  function headers(extra) {
    const h = Object.assign({ Accept: 'application/json' }, extra || {});
    const t = token();
    if (t) h.Authorization = 'Bearer ' + t;
    return h;
  }

  function showTokenState(why) {
    const el = document.getElementById('token-state');
    if (!el) return;
    if (why) {
      el.textContent = why;
      el.className = 'error';
      const input = document.getElementById('token');
      if (input) input.focus();
    } else {
      el.textContent = token() ? 'token set for this tab' : 'no token';
      el.className = 'muted';
    }
  }

  // The token form in the header: typed once, kept for the tab.
  function wireTokenForm(onChange) {
    if (onChange) listeners.push(onChange);
    const form = document.getElementById('token-form');
    const input = document.getElementById('token');
    if (!form || !input) return;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const t = input.value.trim();
      input.value = '';
      setToken(t);
    });
    const forget = document.getElementById('token-forget');
    if (forget) forget.addEventListener('click', () => setToken(''));
    showTokenState('');
  }

  // A problem document (RFC 9457) from any failed answer: the API's own
  // problems as they are, anything else made into one.
  function problemOf(status, json, text) {
    if (json && typeof json === 'object' && (json.detail || json.title)) return json;
    return {
      status,
      title: status ? 'HTTP ' + status : 'No answer',
      detail: (text || '').trim() || (status ? 'the switch answered ' + status : 'the switch did not answer'),
      errors: [],
    };
  }

  // An audio file's type from its name, for a browser that gives none:
  // the types PUT /api/v1/prompts/{name} reads.
  function audioType(name) {
    const ext = String(name || '').toLowerCase().split('.').pop();
    return { wav: 'audio/wav', mp3: 'audio/mpeg', ogg: 'audio/ogg', flac: 'audio/flac' }[ext] || '';
  }

  // One API call: {status, ok, json, problem, date, etag}. Never throws;
  // a network failure is status 0. `raw` sends a Blob/File as it is;
  // `extra` adds headers (If-Match).
  async function api(method, path, body, raw, extra) {
    const init = { method, headers: headers(extra) };
    if (raw !== undefined) {
      init.body = raw;
      const type = raw && (raw.type || audioType(raw.name));
      if (type) init.headers['Content-Type'] = type;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { status: 0, ok: false, json: null, problem: problemOf(0, null, String((e && e.message) || e)) };
    }
    const type = res.headers.get('content-type') || '';
    let json = null;
    let text = '';
    try {
      if (type.includes('json')) json = await res.json();
      else text = await res.text();
    } catch (_) { /* an empty or cut body: the status says enough */ }
    if (res.status === 401) showTokenState('the switch wants a valid token (401)');
    return {
      status: res.status,
      ok: res.ok,
      json,
      problem: res.ok ? null : problemOf(res.status, json, text),
      // The server's clock (RFC 9110 §6.6.1), to show its times on ours.
      date: Date.parse(res.headers.get('date') || ''),
      // The version read (RFC 9110 §8.8.3), sent back as If-Match.
      etag: res.headers.get('etag') || '',
    };
  }

  // h('td', {class: 'x', dataset: {id: 'a'}}, 'text', child...)
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k in el && typeof v !== 'string') el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // "1:02:03", "3d 04:05:06", "0:42".
  function duration(seconds) {
    if (!Number.isFinite(seconds)) return '—';
    let s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = s % 60;
    const two = (n) => String(n).padStart(2, '0');
    if (d > 0) return d + 'd ' + two(hh) + ':' + two(mm) + ':' + two(ss);
    if (hh > 0) return hh + ':' + two(mm) + ':' + two(ss);
    return mm + ':' + two(ss);
  }

  function status(text, isError) {
    const el = document.getElementById('status');
    if (!el) return;
    el.textContent = text || '';
    el.className = isError ? 'status error' : 'status';
  }

  // The words of a problem: its detail, then each field's problem.
  function problemText(p) {
    if (!p) return '';
    const parts = [p.detail || p.title || 'failed'];
    for (const e of p.errors || []) parts.push(e.field + ': ' + e.problem);
    return parts.join(' — ');
  }

  return { token, setToken, headers, wireTokenForm, api, h, duration, status, problemText };
})();
