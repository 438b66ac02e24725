'use strict';
// The admin's four steps as pages: Users (with their PSTN extensions),
// Media (prompts), Flows and Dispatch mappings. Each page lists the
// objects (GET, paged by cursor) and edits one in a form: PUT to the
// object's own path creates or replaces it (src/api/v1/directory.rs), with
// If-Match set to the ETag read when editing, so a change made meanwhile
// by someone else is refused (412) rather than overwritten; DELETE removes. A refused change comes back as an RFC
// 9457 problem whose errors[].field names the key as the TOML writes it
// (`users[3].extensions[0].value`); each message is shown beside the input
// of that key. Objects declared in the configuration file (`origin:
// "file"`) are shown read-only: they change in the file and a reload.
(() => {
  const { api, h } = tp;

  const PROMPTS_TP = ['welcome', 'resource_lookup_error', 'preset_hours', 'custom_hours',
    'invalid_input', 'online', 'offline', 'enter_extension', 'enter_pin', 'wrong_pin',
    'not_responding'];
  const PROMPTS_QUEUE = ['greeting', 'hold', 'whisper', 'unavailable'];

  // Field kinds: text, number, list (comma-separated words), numlist,
  // bool, select, secret (write-only), extensions (a repeating group).
  const PAGES = {
    users: {
      title: 'Users',
      path: '/api/v1/users',
      key: 'id',
      help: 'A user is an agent; they log in by calling the contact point from a PSTN extension.',
      columns: [
        ['Id', (o) => o.id],
        ['Name', (o) => o.name],
        ['Extensions', (o) => (o.extensions || []).map((e) => e.value + (e.ext ? ' ext ' + e.ext : '')).join(', ')],
        ['Skills', (o) => (o.skills || []).join(', ')],
      ],
      fields: [
        { name: 'id', label: 'Id', kind: 'text', key: true, hint: "letters, digits, '.', '_' and '-'" },
        { name: 'name', label: 'Name', kind: 'text' },
        { name: 'skills', label: 'Skills', kind: 'list', hint: 'comma-separated, e.g. billing, spanish' },
        { name: 'pin', label: 'PIN', kind: 'secret', hint: '4 to 8 digits; empty: unchanged (new user: none)' },
        { name: 'extensions', label: 'Extensions', kind: 'extensions' },
      ],
    },
    media: {
      title: 'Media',
      path: '/api/v1/prompts',
      key: 'name',
      help: 'Prompts the flows play. Upload WAV, MP3, OGG or FLAC at any rate; it is converted on upload.',
      columns: [
        ['Name', (o) => o.name],
        ['File', (o) => o.path],
      ],
      fields: [
        { name: 'name', label: 'Name', kind: 'text', key: true },
        { name: 'audio', label: 'Audio file', kind: 'file' },
      ],
      upload: true,
    },
    flows: {
      title: 'Flows',
      path: '/api/v1/flows',
      key: 'name',
      help: 'Entry → activity (timed presence or a queue) → Exit.',
      columns: [
        ['Name', (o) => o.name],
        ['Path', (o) => 'Entry → ' + (o.activity || '?') + ' → Exit'],
      ],
      fields: [
        { name: 'name', label: 'Name', kind: 'text', key: true },
        { name: 'type', label: 'Type', kind: 'select', options: ['customer'] },
        { name: 'activity', label: 'Activity', kind: 'select', options: ['timed-presence', 'queue'] },
        { name: 'presets', label: 'Preset hours (keys 1-4)', kind: 'numlist', when: 'timed-presence', hint: 'e.g. 8, 24, 48, 72' },
        { name: 'custom_max_digits', label: 'Custom hours digits', kind: 'number', when: 'timed-presence' },
        { name: 'max_attempts', label: 'Max attempts', kind: 'number', when: 'timed-presence' },
        { name: 'digit_timeout', label: 'Digit timeout', kind: 'text', when: 'timed-presence', hint: 'e.g. 5s' },
        { name: 'notify_on_expiry', label: 'Call the agent when the window ends', kind: 'bool', when: 'timed-presence' },
        { name: 'ext_timeout', label: 'Ext timeout', kind: 'text', when: 'timed-presence' },
        { name: 'pin_attempts', label: 'PIN attempts', kind: 'number', when: 'timed-presence' },
        { name: 'skills', label: 'Skills', kind: 'list', when: 'queue' },
        { name: 'strategy', label: 'Strategy', kind: 'select', options: ['', 'longest-idle', 'round-robin', 'fewest-calls'], when: 'queue' },
        { name: 'ring_timeout', label: 'Ring timeout', kind: 'text', when: 'queue' },
        { name: 'accept_digit', label: 'Accept digit', kind: 'text', when: 'queue' },
        { name: 'accept_timeout', label: 'Accept timeout', kind: 'text', when: 'queue' },
        { name: 'max_wait', label: 'Max wait', kind: 'text', when: 'queue' },
        { name: 'wrap_up', label: 'Wrap-up', kind: 'text', when: 'queue' },
        { name: 'max_no_answer', label: 'Max no answer', kind: 'number', when: 'queue' },
        { name: 'priority', label: 'Priority', kind: 'number', when: 'queue' },
        { name: 'overflow_number', label: 'Overflow number', kind: 'text', when: 'queue' },
        { name: 'no_agents', label: 'No agents online', kind: 'select', options: ['', 'immediate', 'wait'], when: 'queue' },
        { name: 'ext_pause', label: 'Ext pause', kind: 'text', when: 'queue' },
        ...PROMPTS_TP.map((p) => ({ name: 'prompts.' + p, label: 'Prompt: ' + p, kind: 'text', when: 'timed-presence' })),
        ...PROMPTS_QUEUE.map((p) => ({ name: 'prompts.' + p, label: 'Prompt: ' + p, kind: 'text', when: 'queue' })),
      ],
    },
    mappings: {
      title: 'Dispatch mappings',
      path: '/api/v1/dispatch-mappings',
      key: 'name',
      help: 'A contact point (phone number) to a flow.',
      columns: [
        ['Name', (o) => o.name],
        ['Phone number', (o) => o.phone_number],
        ['Flow', (o) => o.flow],
      ],
      fields: [
        { name: 'name', label: 'Name', kind: 'text', key: true },
        { name: 'description', label: 'Description', kind: 'text' },
        { name: 'interaction_type', label: 'Interaction type', kind: 'select', options: ['voice'] },
        { name: 'mapping', label: 'Mapping', kind: 'select', options: ['contact-point'] },
        { name: 'phone_number', label: 'Phone number', kind: 'text', hint: 'E.164, e.g. +15550100002' },
        { name: 'flow', label: 'Flow', kind: 'flow' },
      ],
    },
  };

  const main = () => document.getElementById('page');
  const list = (v) => (v && Array.isArray(v.items) ? v.items : []);
  const fromFile = (o) => o && o.origin === 'file';
  const one = (page, key) => page.path + '/' + encodeURIComponent(key);

  // ------------------------------------------------------------ lists

  async function showList(name) {
    const page = PAGES[name];
    const table = h('table', { class: 'cards', id: name + '-list' },
      h('thead', {}, h('tr', {}, ...page.columns.map(([t]) => h('th', {}, t)), h('th', {}, 'Origin'), h('th', {}, ''))),
      h('tbody'));
    const more = h('button', { type: 'button', hidden: true }, 'More');
    const note = h('p', { class: 'muted' });
    const add = h('button', { type: 'button', onclick: () => showForm(name, null) }, 'New');
    main().replaceChildren(
      h('div', { class: 'section-head' }, h('h2', {}, page.title), add),
      h('p', { class: 'muted' }, page.help),
      note, table, more);
    let cursor = '';
    async function next() {
      const r = await api('GET', page.path + (cursor ? '?cursor=' + encodeURIComponent(cursor) : ''));
      if (!r.ok) {
        note.textContent = tp.problemText(r.problem);
        note.className = 'error';
        more.hidden = true;
        return;
      }
      const items = list(r.json);
      const tbody = table.querySelector('tbody');
      for (const o of items) tbody.append(row(name, o));
      if (!tbody.children.length) note.textContent = 'None yet.';
      cursor = (r.json && r.json.next_cursor) || '';
      more.hidden = !cursor;
    }
    more.addEventListener('click', next);
    await next();
  }

  function row(name, o) {
    const page = PAGES[name];
    const cells = page.columns.map(([t, f]) => h('td', { dataset: { label: t } }, String(f(o) ?? '')));
    const actions = [h('button', { type: 'button', onclick: () => showForm(name, o) }, fromFile(o) ? 'View' : 'Edit')];
    if (page.upload) actions.push(' ', h('button', { type: 'button', onclick: (e) => play(o[page.key], e.target) }, 'Play'));
    if (!fromFile(o)) actions.push(' ', h('button', { type: 'button', class: 'danger', onclick: () => remove(name, o) }, 'Delete'));
    return h('tr', { dataset: { key: String(o[page.key] ?? '') } },
      ...cells,
      h('td', { dataset: { label: 'Origin' } }, h('span', { class: 'badge origin-' + (fromFile(o) ? 'file' : 'api') }, fromFile(o) ? 'file' : 'api')),
      h('td', { dataset: { label: '' } }, ...actions));
  }

  // A prompt fetched with the token and played from memory (an <audio
  // src> could not send the Authorization header).
  async function play(name, button) {
    const res = await fetch(one(PAGES.media, name) + '/audio', { headers: tp.headers({ Accept: 'audio/*' }) });
    if (!res.ok) {
      tp.status('Cannot play ' + name + ': HTTP ' + res.status, true);
      return;
    }
    const url = URL.createObjectURL(await res.blob());
    const audio = h('audio', { controls: true, src: url });
    audio.addEventListener('ended', () => URL.revokeObjectURL(url));
    button.replaceWith(audio);
    audio.play().catch(() => { /* the controls are there */ });
  }

  async function remove(name, o) {
    const page = PAGES[name];
    const key = o[page.key];
    const r = await api('DELETE', one(page, key));
    if (r.ok) {
      tp.status('Removed ' + key + '.');
      showList(name);
    } else {
      tp.status('Cannot remove ' + key + ': ' + tp.problemText(r.problem), true);
    }
  }

  // ------------------------------------------------------------ forms

  function get(o, path) {
    return path.split('.').reduce((v, k) => (v && typeof v === 'object' ? v[k] : undefined), o);
  }

  function set(o, path, value) {
    const keys = path.split('.');
    let at = o;
    for (const k of keys.slice(0, -1)) at = at[k] = at[k] && typeof at[k] === 'object' ? at[k] : {};
    at[keys[keys.length - 1]] = value;
  }

  // One labelled input with a place for its field's problem.
  function fieldBox(f, input) {
    return h('div', { class: 'field', dataset: { field: f.name, when: f.when || '' } },
      h('label', {}, f.label, input),
      f.hint ? h('small', { class: 'muted' }, f.hint) : null,
      h('span', { class: 'field-error', role: 'alert' }));
  }

  function input(f, value, readOnly, flows) {
    const common = { name: f.name, disabled: readOnly };
    if (f.kind === 'bool') return h('input', Object.assign({ type: 'checkbox', checked: value === true }, common));
    // No flow to pick from (none readable): the name is typed.
    if (f.kind === 'flow' && !flows.length) return input(Object.assign({}, f, { kind: 'text' }), value, readOnly, flows);
    if (f.kind === 'select' || f.kind === 'flow') {
      const options = f.kind === 'flow' ? flows : f.options;
      const sel = h('select', common, ...options.map((o) => h('option', { value: o }, o === '' ? '(default)' : o)));
      if (value !== undefined && !options.includes(String(value))) sel.append(h('option', { value: String(value) }, String(value)));
      sel.value = value === undefined ? options[0] || '' : String(value);
      return sel;
    }
    if (f.kind === 'file') return h('input', Object.assign({ type: 'file', accept: 'audio/*,.wav,.mp3,.ogg,.flac' }, common));
    let text = value;
    if (Array.isArray(value)) text = value.join(', ');
    const attrs = Object.assign({ type: f.kind === 'number' ? 'number' : f.kind === 'secret' ? 'password' : 'text' }, common);
    if (f.kind === 'secret') attrs.autocomplete = 'new-password';
    const el = h('input', attrs);
    el.value = text === undefined || text === null || f.kind === 'secret' ? '' : String(text);
    return el;
  }

  function extensionsEditor(values, readOnly) {
    const box = h('div', { class: 'extensions' });
    const addRow = (e) => {
      const i = box.children.length;
      const base = 'extensions[' + i + '].';
      const sub = (key, label, el) => h('div', { class: 'field', dataset: { field: base + key } },
        h('label', {}, label, el), h('span', { class: 'field-error', role: 'alert' }));
      const type = h('select', { name: base + 'type', disabled: readOnly }, h('option', { value: 'pstn' }, 'PSTN'));
      const value = h('input', { type: 'text', name: base + 'value', disabled: readOnly, placeholder: '+12345678910' });
      value.value = e.value || '';
      const ext = h('input', { type: 'text', name: base + 'ext', disabled: readOnly, inputmode: 'numeric' });
      ext.value = e.ext || '';
      const desc = h('input', { type: 'text', name: base + 'description', disabled: readOnly });
      desc.value = e.description || '';
      const drop = readOnly ? null : h('button', { type: 'button', onclick: () => { fieldset.remove(); renumber(box); } }, 'Remove');
      const fieldset = h('fieldset', { class: 'extension' }, h('legend', {}, 'Extension'),
        sub('type', 'Type', type), sub('value', 'E.164 number', value), sub('ext', 'Ext', ext),
        sub('description', 'Description', desc), drop);
      box.append(fieldset);
    };
    (values && values.length ? values : readOnly ? [] : [{}]).forEach(addRow);
    const add = readOnly ? null : h('button', { type: 'button', onclick: () => addRow({}) }, 'Add extension');
    return h('div', { class: 'field', dataset: { field: 'extensions' } },
      h('span', { class: 'label' }, 'Extensions'), box, add, h('span', { class: 'field-error', role: 'alert' }));
  }

  // After a removal the rows are numbered again, so `extensions[1]` in a
  // problem is the second row on screen, as it was the second one sent.
  function renumber(box) {
    [...box.children].forEach((fs, i) => {
      for (const el of fs.querySelectorAll('[name], [data-field]')) {
        if (el.name) el.name = el.name.replace(/^extensions\[\d+\]/, 'extensions[' + i + ']');
        if (el.dataset.field) el.dataset.field = el.dataset.field.replace(/^extensions\[\d+\]/, 'extensions[' + i + ']');
      }
    });
  }

  function readExtensions(form) {
    return [...form.querySelectorAll('fieldset.extension')].map((fs) => {
      const v = (k) => (fs.querySelector('[name$="].' + k + '"]') || {}).value || '';
      const e = { type: v('type') || 'pstn', value: v('value').trim(), ext: v('ext').trim() };
      const d = v('description').trim();
      if (d) e.description = d;
      return e;
    });
  }

  async function showForm(name, listed) {
    const page = PAGES[name];
    let o = listed;
    let etag = '';
    if (o && !page.upload) {
      // The object as it is now, and its version for If-Match.
      const r = await api('GET', one(page, o[page.key]));
      if (!r.ok) {
        tp.status('Cannot read ' + o[page.key] + ': ' + tp.problemText(r.problem), true);
        return;
      }
      o = r.json;
      etag = r.etag;
    }
    const readOnly = fromFile(o);
    const editing = !!o;
    let flows = [];
    if (name === 'mappings') {
      const r = await api('GET', PAGES.flows.path + '?limit=500');
      flows = list(r.json).map((f) => f.name);
    }
    const form = h('form', { class: 'edit', novalidate: true, autocomplete: 'off' });
    const top = h('div', { class: 'form-errors', role: 'alert' });
    for (const f of page.fields) {
      if (f.kind === 'extensions') {
        form.append(extensionsEditor(o ? o.extensions : [], readOnly));
        continue;
      }
      if (editing && f.kind === 'file' && readOnly) continue;
      const el = input(f, o ? get(o, f.name) : undefined, readOnly || (editing && f.key), flows);
      form.append(fieldBox(f, el));
    }
    const save = h('button', { type: 'submit', disabled: readOnly }, editing ? 'Save' : 'Create');
    const back = h('button', { type: 'button', onclick: () => showList(name) }, 'Back');
    form.append(top, h('div', { class: 'buttons' }, save, ' ', back));
    const title = (editing ? (readOnly ? 'View ' : 'Edit ') : 'New ') + page.title.replace(/s$/, '').toLowerCase();
    const note = h('p', { class: 'note', hidden: !readOnly },
      'Declared in the configuration file: change it there and reload (tpswitch reload). Shown read-only.');
    main().replaceChildren(h('h2', {}, title), note, form);
    // Only the inputs of the flow's activity.
    const activity = form.querySelector('[name="activity"]');
    const showActivity = () => {
      for (const box of form.querySelectorAll('.field[data-when]')) {
        box.hidden = !!box.dataset.when && activity && box.dataset.when !== activity.value;
      }
    };
    if (activity) activity.addEventListener('change', showActivity);
    showActivity();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (readOnly) return;
      clearErrors(form);
      const r = await submit(page, form, o, etag);
      if (r.ok) {
        tp.status((editing ? 'Saved ' : 'Created ') + (r.key || '') + '; the next call uses it.');
        showList(name);
      } else {
        showErrors(form, top, r.problem, r.status);
      }
    });
  }

  async function submit(page, form, o, etag) {
    const body = {};
    let file = null;
    for (const f of page.fields) {
      if (f.kind === 'extensions') {
        body.extensions = readExtensions(form);
        continue;
      }
      const el = form.querySelector('[name="' + f.name + '"]');
      if (!el || (el.closest('.field') || {}).hidden) continue;
      let v;
      if (f.kind === 'bool') v = el.checked;
      else if (f.kind === 'file') {
        file = el.files && el.files[0];
        continue;
      } else {
        v = el.value.trim();
        if (v === '') continue; // unset: the default applies (or unchanged, for a PIN)
        if (f.kind === 'number') v = Number(v);
        else if (f.kind === 'list') v = v.split(',').map((s) => s.trim()).filter(Boolean);
        else if (f.kind === 'numlist') v = v.split(',').map((s) => Number(s.trim())).filter((n) => !Number.isNaN(n));
      }
      set(body, f.name, v);
    }
    const key = o ? o[page.key] : body[page.key];
    if (page.upload) {
      if (!key) return { ok: false, status: 422, problem: invalid(page.key, 'give the prompt a name') };
      if (!file) return { ok: false, status: 422, problem: invalid('audio', 'choose an audio file') };
      return Object.assign(await api('PUT', one(page, key), undefined, file), { key });
    }
    if (!key) return { ok: false, status: 422, problem: invalid(page.key, 'is required') };
    if (!o) {
      // PUT creates or replaces: "New" must not replace one of that name.
      const there = await api('GET', one(page, key));
      if (there.ok) return { ok: false, status: 422, problem: invalid(page.key, key + ' already exists; edit it from the list or pick another ' + page.key) };
    }
    const r = await api('PUT', one(page, key), body, undefined, etag ? { 'If-Match': etag } : undefined);
    return Object.assign(r, { key });
  }

  function invalid(field, problem) {
    return { detail: 'nothing was sent', errors: [{ field, problem, fix: '' }] };
  }

  function clearErrors(form) {
    for (const el of form.querySelectorAll('.field-error, .form-errors')) el.textContent = '';
    for (const el of form.querySelectorAll('.field.invalid')) el.classList.remove('invalid');
  }

  // Each error beside the input of its field: the most specific box whose
  // field the error's field is or starts with, after dropping a leading
  // `users[3].` (the TOML's table and index: the form is that one object).
  function showErrors(form, top, problem, status) {
    const boxes = [...form.querySelectorAll('.field[data-field]')];
    const unplaced = [];
    for (const e of (problem && problem.errors) || []) {
      const field = String(e.field || '').replace(/^[a-z_]+\[\d+\]\./, '');
      let best = null;
      for (const b of boxes) {
        const f = b.dataset.field;
        if (field === f || field.startsWith(f + '.') || field.startsWith(f + '[')) {
          if (!best || f.length > best.dataset.field.length) best = b;
        }
      }
      const text = e.problem + (e.fix ? ' — ' + e.fix : '');
      if (best && !best.hidden) {
        const out = best.querySelector('.field-error');
        out.textContent = (out.textContent ? out.textContent + ' ' : '') + text;
        best.classList.add('invalid');
      } else {
        unplaced.push(e.field + ': ' + text);
      }
    }
    const head = (problem && (problem.detail || problem.title)) || 'refused';
    top.replaceChildren(h('p', {}, head), ...unplaced.map((u) => h('p', {}, u)));
  }

  // ------------------------------------------------------------ tabs

  function route() {
    const name = (location.hash || '#users').slice(1);
    const tab = PAGES[name] ? name : 'users';
    for (const a of document.querySelectorAll('#tabs [data-tab]')) {
      if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    tp.status('');
    showList(tab);
  }

  window.addEventListener('hashchange', route);
  tp.wireTokenForm(route);
  route();
})();
