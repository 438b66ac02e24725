'use strict';
// The floor dashboard: every agent with a countdown to the end of their
// window and today's figures, customers waiting per queue, active calls,
// today's figures per queue, and a supervisor's "end window" / "extend"
// per agent.
//
// Data: GET /api/v1/floor (agents as `tpswitch agents --json` has them,
// waiting customers per queue, calls in progress) and GET
// /api/v1/queues/stats (each queue's figures since 00:00 UTC).
// Freshness: each event on the SSE stream GET /api/v1/events triggers a
// reload; without the stream the page polls every second. Countdowns and
// waits tick here, between reloads, from the times the switch gave
// (corrected by the offset of its clock to ours).
(() => {
  const { api, h, duration } = tp;

  const POLL_MS = 1000;         // without the event stream
  const SAFETY_MS = 15000;      // with it: a reload now and then all the same
  const RETRY_STATS_MS = 60000;
  const STATS_MS = 5000;        // today's figures change slowly
  const STREAM_RETRY_MS = 15000;
  const FLOOR = '/api/v1/floor';

  let statsRetryAt = 0;
  let statsAt = 0;
  let skew = 0;                 // the switch's clock minus ours, in ms
  let pushed = false;           // the event stream is open
  let lastEventId = '';
  let busy = false;
  let again = false;
  let loaded = false;
  let wake = null;              // cuts short the wait before reopening the stream
  const rows = new Map();       // agent id -> {tr, a, cells}
  const agentNames = new Map();

  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const arr = (v) => (Array.isArray(v) ? v : []);
  // A time the switch wrote (RFC 3339), on our clock, in ms.
  const local = (v) => {
    const t = Date.parse(v || '');
    return Number.isFinite(t) ? t - skew : undefined;
  };

  // One AgentRow (src/report/agents.rs): id, name, state, not_responding
  // {since, reason} or null, window {start, end} or null,
  // remaining_seconds, today {offered, accepted, missed, talk_seconds,
  // online_seconds}.
  function agent(a, fetchedAt) {
    const state = String(a.state || 'offline');
    const end = a.window && online(state) ? String(a.window.end || '') : '';
    let endAt;
    if (end) {
      endAt = local(end);
      // The Date header has whole seconds; remaining_seconds (rounded up)
      // pins the end to the second the switch saw.
      const left = num(a.remaining_seconds);
      if (left !== undefined && endAt !== undefined) {
        endAt = Math.min(Math.max(endAt, fetchedAt + (left - 1) * 1000), fetchedAt + left * 1000);
      }
    }
    const t = a.today || {};
    return {
      id: String(a.id),
      name: String(a.name || ''),
      state,
      // Why the agent is not responding ("missed 3 offers in a row
      // (max_no_answer)"), shown as the badge's title.
      why: a.not_responding ? String(a.not_responding.reason || '') : '',
      end,
      endAt,
      offered: num(t.offered),
      accepted: num(t.accepted),
      missed: num(t.missed),
      talk: num(t.talk_seconds),
      online: num(t.online_seconds),
    };
  }

  // Offline and not-responding agents have no window.
  function online(state) {
    return state !== 'offline' && state !== 'not-responding';
  }

  // One QueueWaiting (src/live.rs): queue, customers [{call, caller,
  // since, wait_seconds, ringing}], longest_wait_seconds.
  function queue(q) {
    const waiting = arr(q.customers).map((c) => ({
      caller: String(c.caller || ''),
      since: local(c.since),
    }));
    return { name: String(q.queue || ''), count: waiting.length, waiting };
  }

  // One ActiveCall (src/live.rs): caller, flow, state, agent, started.
  function call(c) {
    return {
      caller: String(c.caller || ''),
      flow: String(c.flow || ''),
      state: String(c.state || ''),
      agent: String(c.agent || ''),
      since: local(c.started),
    };
  }

  // The floor as {agents, queues, calls} or {problem}.
  async function loadFloor() {
    const r = await api('GET', FLOOR);
    if (r.status !== 200 || !r.json || typeof r.json !== 'object') return { problem: r.problem };
    clock(r);
    const at = Date.now();
    return {
      agents: arr(r.json.agents).map((a) => agent(a, at)),
      queues: arr(r.json.queues).map(queue),
      calls: arr(r.json.calls).map(call),
    };
  }

  function clock(r) {
    if (Number.isFinite(r.date)) skew = r.date - Date.now();
  }

  // ------------------------------------------------------------ agents

  function td(label, ...children) {
    return h('td', { dataset: { label } }, ...children);
  }

  function makeRow(id) {
    const cells = {
      name: td('Agent'),
      state: td('State'),
      left: td('Window ends in', ''),
      offered: td('Offered'),
      accepted: td('Accepted'),
      missed: td('Missed'),
      talk: td('Talk'),
      online: td('Online'),
      msg: h('span', { class: 'msg', role: 'status' }),
    };
    cells.left.classList.add('countdown');
    const end = h('button', { type: 'button', class: 'danger', onclick: () => act(id, 'end') }, 'End window');
    const extend = h('button', { type: 'button', onclick: () => act(id, 'extend') }, 'Extend');
    const actions = td('Actions', end, ' ', extend, ' ', cells.msg);
    const tr = h('tr', { dataset: { agent: id } },
      cells.name, cells.state, cells.left, cells.offered, cells.accepted,
      cells.missed, cells.talk, cells.online, actions);
    return { tr, cells, a: null };
  }

  function renderAgents(agents) {
    const tbody = document.querySelector('#agents tbody');
    const seen = new Set();
    agents.forEach((a, i) => {
      seen.add(a.id);
      agentNames.set(a.id, a.name || a.id);
      let r = rows.get(a.id);
      if (!r) {
        r = makeRow(a.id);
        rows.set(a.id, r);
      }
      r.a = a;
      // Moved only when out of place, so a focused button keeps focus.
      if (tbody.children[i] !== r.tr) tbody.insertBefore(r.tr, tbody.children[i] || null);
      const c = r.cells;
      c.name.replaceChildren(h('strong', {}, a.name || a.id), h('span', { class: 'muted id' }, a.id));
      c.state.replaceChildren(h('span', { class: 'badge state-' + a.state.replace(/[^a-z-]/g, ''), title: a.why || undefined }, a.state));
      c.left.dataset.end = a.endAt !== undefined ? String(a.endAt) : '';
      c.left.title = a.end ? 'until ' + a.end : '';
      const show = (v) => (v === undefined ? '—' : String(v));
      c.offered.textContent = show(a.offered);
      c.accepted.textContent = show(a.accepted);
      c.missed.textContent = show(a.missed);
      c.talk.textContent = a.talk === undefined ? '—' : duration(a.talk);
      c.online.textContent = a.online === undefined ? '—' : duration(a.online);
    });
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    const count = agents.filter((a) => online(a.state)).length;
    document.getElementById('agents-count').textContent = count + ' of ' + agents.length + ' online';
    tick();
  }

  function setMsg(id, text, isError) {
    const r = rows.get(id);
    if (!r) return;
    r.cells.msg.textContent = text;
    r.cells.msg.className = isError ? 'msg error' : 'msg ok';
  }

  // A supervisor's action, with the reason the presence history records
  // (src/api/v1/presence.rs): `DELETE .../presence?reason=` ends the
  // window now; `PUT .../presence {until, reason}` moves an open window's
  // end, `{minutes, reason}` opens one from now for an offline agent.
  async function act(id, kind) {
    const r = rows.get(id);
    const reason = document.getElementById('reason').value.trim();
    if (!reason) {
      setMsg(id, 'give a reason first: it goes into the presence history', true);
      return;
    }
    const path = '/api/v1/agents/' + encodeURIComponent(id) + '/presence';
    let res;
    if (kind === 'end') {
      setMsg(id, 'ending…');
      res = await api('DELETE', path + '?reason=' + encodeURIComponent(reason));
    } else {
      const minutes = parseInt(document.getElementById('extend-minutes').value, 10);
      if (!(minutes >= 1)) {
        setMsg(id, 'extend by a whole number of minutes, 1 or more', true);
        return;
      }
      const end = r && r.a && r.a.end ? Date.parse(r.a.end) : NaN;
      const body = Number.isFinite(end)
        ? { until: new Date(end + minutes * 60000).toISOString().replace('.000Z', 'Z'), reason }
        : { minutes, reason };
      setMsg(id, 'extending…');
      res = await api('PUT', path, body);
    }
    if (res.ok) {
      setMsg(id, kind === 'end' ? 'window ended' : 'window extended');
      refresh();
    } else {
      setMsg(id, tp.problemText(res.problem), true);
    }
  }

  // ------------------------------------------------------------ queues, calls

  function renderQueues(queues) {
    const tbody = document.querySelector('#queues tbody');
    document.getElementById('queues-note').textContent = queues.length ? '' : 'No queue.';
    tbody.replaceChildren(...queues.map((q) => {
      // Longest wait first (as the switch orders them).
      const oldest = q.waiting.map((c) => c.since).filter((t) => t !== undefined).sort((a, b) => a - b)[0];
      return h('tr', { dataset: { queue: q.name } },
        td('Queue', q.name),
        td('Waiting', h('span', { class: 'waiting-count' }, String(q.count))),
        td('Longest wait', h('span', { class: 'since', dataset: { since: oldest !== undefined ? String(oldest) : '' } }, '—')),
        td('Callers', ...q.waiting.map((c) => h('span', { class: 'chip' }, c.caller + ' ',
          h('span', { class: 'since', dataset: { since: c.since !== undefined ? String(c.since) : '' } }, '')))));
    }));
  }

  function renderCalls(calls) {
    const tbody = document.querySelector('#calls tbody');
    document.getElementById('calls-note').textContent = calls.length ? '' : 'No call in progress.';
    tbody.replaceChildren(...calls.map((c) => h('tr', {},
      td('Caller', c.caller),
      td('Flow', c.flow),
      td('State', c.state),
      td('Agent', c.agent ? agentNames.get(c.agent) || c.agent : '—'),
      td('Duration', h('span', { class: 'since', dataset: { since: c.since !== undefined ? String(c.since) : '' } }, '—')))));
  }

  // Today per queue: GET /api/v1/queues/stats, a StatsReport
  // (src/api/v1/queue_stats.rs) whose `queues` are QueueStats
  // (src/report/queue_stats.rs), times in milliseconds and the service
  // level as a ratio (null until a wait is over). Every few seconds, or at
  // once after an event.
  async function loadToday(force) {
    const now = Date.now();
    if (now < statsRetryAt || (!force && now - statsAt < STATS_MS)) return;
    statsAt = now;
    const r = await api('GET', '/api/v1/queues/stats');
    const note = document.getElementById('today-note');
    const tbody = document.querySelector('#today tbody');
    document.getElementById('today').hidden = r.status !== 200;
    if (r.status !== 200) {
      statsRetryAt = now + RETRY_STATS_MS;
      note.textContent = tp.problemText(r.problem);
      tbody.replaceChildren();
      return;
    }
    const items = arr(r.json && r.json.queues);
    note.textContent = items.length ? '' : 'No queue.';
    const ms = (v) => (num(v) === undefined ? '—' : duration(v / 1000));
    const show = (v) => (num(v) === undefined ? '—' : String(v));
    tbody.replaceChildren(...items.map((q) => {
      const sl = num(q.service_level);
      const within = num(q.service_level_threshold_ms);
      return h('tr', { dataset: { queue: String(q.flow || '') } },
        td('Queue', String(q.flow || '')),
        td('Offered', show(q.offered)),
        td('Answered', show(q.answered)),
        td('Abandoned', show(q.abandoned)),
        td('Avg. speed of answer', ms(q.average_speed_of_answer_ms)),
        td('Longest wait', ms(q.longest_wait_ms)),
        td('Service level', sl === undefined ? '—'
          : Math.round(sl * 100) + ' %' + (within !== undefined ? ' within ' + Math.round(within / 1000) + ' s' : '')));
    }));
  }

  // ------------------------------------------------------------ time

  function tick() {
    const now = Date.now();
    for (const r of rows.values()) {
      const end = Number(r.cells.left.dataset.end);
      r.cells.left.textContent = r.cells.left.dataset.end && Number.isFinite(end)
        ? duration(Math.ceil((end - now) / 1000)) : '—';
    }
    for (const el of document.querySelectorAll('.since')) {
      const since = Number(el.dataset.since);
      el.textContent = el.dataset.since && Number.isFinite(since) ? duration((now - since) / 1000) : '';
    }
  }

  // ------------------------------------------------------------ refresh

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } finally {
      busy = false;
    }
  }

  async function load() {
    const data = await loadFloor();
    if (data.problem) {
      tp.status('Cannot read the floor: ' + tp.problemText(data.problem), true);
      return;
    }
    loaded = true;
    renderAgents(data.agents);
    renderQueues(data.queues);
    renderCalls(data.calls);
    showMode();
    await loadToday(false);
  }

  function showMode() {
    if (!loaded) return;
    const how = pushed ? 'updated on each event from /api/v1/events' : 'polled every second';
    tp.status('Live: ' + FLOOR + ', ' + how + '. Last update ' + new Date().toLocaleTimeString() + '.');
  }

  // The event stream (SSE, text/event-stream) read through fetch, because
  // EventSource cannot send the Authorization header. Returns whether it
  // opened; resolves when it ends.
  async function follow() {
    const headers = tp.headers({ Accept: 'text/event-stream' });
    if (lastEventId) headers['Last-Event-ID'] = lastEventId;
    let res;
    try {
      res = await fetch('/api/v1/events', { headers, cache: 'no-store' });
    } catch (_) {
      return false;
    }
    const type = res.headers.get('content-type') || '';
    if (res.status !== 200 || !type.startsWith('text/event-stream') || !res.body) {
      try {
        if (res.body) await res.body.cancel();
      } catch (_) { /* already closed */ }
      return false;
    }
    pushed = true;
    refresh();
    let buf = '';
    try {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let m;
        // Events end with a blank line (the HTML standard's SSE parsing).
        while ((m = /\r\n\r\n|\n\n|\r\r/.exec(buf))) {
          const block = buf.slice(0, m.index);
          buf = buf.slice(m.index + m[0].length);
          onEvent(block);
        }
        if (buf.length > 1 << 20) break; // no blank line in a megabyte: start over
      }
    } catch (_) { /* the connection dropped */ }
    pushed = false;
    showMode();
    return true;
  }

  function onEvent(block) {
    let data = false;
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (line.startsWith(':')) continue; // a keep-alive comment
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'id') lastEventId = value;
      else if (field === 'data') data = true;
    }
    if (data) {
      refresh();
      loadToday(true);
    }
  }

  async function stream() {
    for (;;) {
      const opened = await follow();
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, opened ? POLL_MS : STREAM_RETRY_MS);
      });
      wake = null;
    }
  }

  tp.wireTokenForm(() => {
    statsRetryAt = 0;
    refresh();
    loadToday(true);
    if (wake) wake();
  });
  setInterval(() => {
    if (!pushed) refresh();
  }, POLL_MS);
  setInterval(() => {
    if (pushed) refresh();
  }, SAFETY_MS);
  setInterval(tick, 250);
  refresh();
  stream();
})();
