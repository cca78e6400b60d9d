// wardhub phone page: a nurse's own alarms — what the escalation chains sent them and is
// still theirs — live, to accept or pass on. Plain ES module, no dependencies, no build step.
//
// - Login as on the ward dashboard: a token is traded for an HttpOnly session cookie
//   (POST /api/v1/session); GET /api/v1/me says who is logged in. A 401 at any time returns
//   to the login screen.
// - Live data: the SSE stream /api/v1/me/alarms/stream (a `snapshot`, then `notified` and
//   `gone` for this user only; `resync`: start over). On an error the page says "connection
//   lost" and reconnects with backoff; every new stream starts with a full snapshot.
//   GET /api/v1/me/alarms every 20 s checks that the login is still valid and the hub there.
// - Accept: POST /api/v1/alarms/{id}/accept; pass on: POST /api/v1/alarms/{id}/reject.
//   409: no longer being sent to anyone.
// - A new notification (or a reminder) beeps (Web Audio, once a tap has allowed it) and
//   vibrates (navigator.vibrate, where the phone allows it).

const TIMEOUT_MS = 8000;
const CHECK_MS = 20000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };
const PRIORITY_TEXT = { high: 'HIGH', medium: 'MEDIUM', low: 'LOW' };
/** IEC 60601-1-8 visual markers, as on the ward dashboard: never colour alone. */
const PRIORITY_MARK = { high: '!!!', medium: '!!', low: '!' };
const METRIC_LABEL = {
  hr: 'HR', pr: 'PR', spo2: 'SpO₂', nibp_sys: 'NIBP sys', nibp_dia: 'NIBP dia',
  nibp_mean: 'NIBP mean', rr: 'RR', temp: 'Temp', etco2: 'etCO₂',
};
const UNIT_TEXT = { '/min': '/min', '%': '%', 'mm[Hg]': 'mmHg', Cel: '°C' };
const CAUSE_TEXT = {
  offline: 'Device offline', sensor_off: 'Sensor off / invalid data',
  battery_low: 'Battery low', clock_skew: 'Device clock wrong',
  nurse_call: 'Nurse call', bed_exit: 'Bed exit', pump_occlusion: 'Pump occlusion',
  end_of_infusion: 'End of infusion',
};
const CONDITION_TEXT = {
  bradycardia: 'Bradycardia', tachycardia: 'Tachycardia', desaturation: 'Desaturation',
  spo2_high: 'SpO₂ high', low_breathing: 'Low breathing / apnoea', tachypnoea: 'Tachypnoea',
  hypercapnia: 'etCO₂ high', hypotension: 'Hypotension', hypertension: 'Hypertension',
  hypothermia: 'Hypothermia', fever: 'Fever',
};
const KIND_TAG = { technical: 'TECH', call: 'CALL' };
/** Why a notification went to this person, when not as the bed's own nurse. */
const TARGET_TEXT = {
  buddy: 'TO YOU AS BUDDY',
  charge: 'TO YOU AS CHARGE NURSE',
  ward: 'TO THE WHOLE WARD',
};
const GONE_TEXT = {
  accepted: 'accepted by a colleague',
  acknowledged: 'acknowledged at the station',
  cleared: 'cleared',
  passed_on: 'passed on',
};

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  /** {name, role}; null: logged out; undefined: not known yet. */
  user: undefined,
  /** alarm id (A000123) → { n (the notification), el, parts, shownAt } */
  items: new Map(),
  sse: { es: null, open: false, everOpen: false, retry: 0, timer: 0, nextAt: 0 },
  checkTimer: 0,
  /** Bumped at every login and logout: an old stream or check stops. */
  generation: 0,
  /** Alarms this page is accepting or passing on (their `gone` is our own doing). */
  pending: new Set(),
  alerts: 0,
};

// ---------------------------------------------------------------- helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setData(el, key, value) {
  const v = String(value);
  if (el.dataset[key] !== v) el.dataset[key] = v;
}

function two(n) { return String(n).padStart(2, '0'); }

function clockText(ms) {
  const d = new Date(ms);
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function ageText(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d`;
}

function fmtValue(name, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (name === 'temp') return v.toFixed(1);
  if (Math.abs(v) >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return v.toFixed(1);
}

function unitText(u) { return UNIT_TEXT[u] ?? u ?? ''; }

/** What the alarm is, in the ward dashboard's words. */
function alarmText(a) {
  const sources = a.sources ?? [];
  if (a.kind === 'technical' || a.cause !== 'limit') {
    const cause = CAUSE_TEXT[a.cause] ?? String(a.cause ?? '').replace(/_/g, ' ');
    const names = sources.length ? sources.map((s) => s.metric?.name).filter(Boolean) : [a.metric?.name].filter(Boolean);
    const metric = names.length ? ` (${names.map((n) => METRIC_LABEL[n] ?? n).join(', ')})` : '';
    let value = '';
    if (a.cause === 'battery_low' && a.value != null) value = ` ${Math.round(a.value)} %`;
    if (a.cause === 'offline' && a.value != null) value = ` for ${ageText(a.value * 1000)}`;
    if (a.cause === 'clock_skew' && a.value != null) value = ` by ${Math.round(a.value)} s`;
    return `${cause}${metric}${value} — ${a.device_id}`;
  }
  const m = a.metric ?? { name: '?', unit: '' };
  const side = a.side === 'below' ? 'low' : a.side === 'above' ? 'high' : '';
  const limit = a.limit != null ? ` (limit ${fmtValue(m.name, a.limit)})` : '';
  const condition = CONDITION_TEXT[a.condition] ? `${CONDITION_TEXT[a.condition]}: ` : '';
  const others = sources
    .filter((s) => !(s.device_id === a.device_id && s.metric?.name === m.name))
    .map((s) => `${METRIC_LABEL[s.metric?.name] ?? s.metric?.name ?? '?'} ${fmtValue(s.metric?.name, s.value)}`);
  const also = others.length ? ` · also ${others.join(', ')}` : '';
  return `${condition}${METRIC_LABEL[m.name] ?? m.name} ${side} ${fmtValue(m.name, a.value)}\u00a0${unitText(m.unit)}${limit}${also}`;
}

/** Every call carries the session cookie (HttpOnly: this script never sees it, nor the token). */
async function api(path, { method = 'GET', body, timeout = TIMEOUT_MS } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  const gen = state.generation;
  try {
    const resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal, cache: 'no-store', credentials: 'same-origin',
    });
    let json = null;
    try { json = await resp.json(); } catch { /* empty body */ }
    if (resp.status === 401 && state.user && gen === state.generation) {
      loggedOut('Your login is no longer valid (expired or revoked): log in again.');
    }
    return { status: resp.status, ok: resp.ok, json };
  } finally {
    clearTimeout(timer);
  }
}

function say(text, kind = 'info') {
  const el = $('#status');
  setText(el, text);
  setData(el, 'kind', kind);
}

// ---------------------------------------------------------------- sound and vibration

/** A beep per new notification or reminder. Browsers start audio only after a tap: until
 *  then the button says "Tap to enable sound". Muting is remembered per phone. */
const sound = {
  muted: localStorage.getItem('wardhub.m.sound') === 'off',
  ctx: null,
  beeps: 0,
  state() {
    if (this.muted) return 'muted';
    return this.ctx && this.ctx.state === 'running' ? 'on' : 'blocked';
  },
  /** Within a tap: create or resume the audio context. */
  unlock() {
    if (this.muted) return;
    try {
      if (!this.ctx) {
        this.ctx = new AudioContext();
        this.ctx.addEventListener('statechange', () => this.render());
      }
      if (this.ctx.state === 'suspended') this.ctx.resume().then(() => this.render(), () => {});
    } catch { /* no Web Audio */ }
    this.render();
  },
  render() {
    const b = $('#sound');
    const s = this.state();
    setData(b, 'state', s);
    b.setAttribute('aria-pressed', String(s === 'on'));
    setText(b, s === 'on' ? 'Sound on' : s === 'muted' ? 'Sound off (tap for on)' : 'Tap to enable sound');
  },
  tap() {
    if (this.state() === 'on') {
      this.muted = true;
      if (this.ctx) this.ctx.suspend().catch(() => {});
    } else {
      this.muted = false;
      this.unlock();
      this.beep('low');
    }
    localStorage.setItem('wardhub.m.sound', this.muted ? 'off' : 'on');
    this.render();
  },
  /** High: 5 fast pulses, medium: 3, low: 2 slow (the dashboard's patterns, shorter). */
  beep(prio) {
    const ctx = this.ctx;
    if (this.muted || !ctx || ctx.state !== 'running') return false;
    const [freq, starts, len] = prio === 'high' ? [880, [0, 0.2, 0.4, 0.8, 1.0], 0.13]
      : prio === 'medium' ? [660, [0, 0.3, 0.6], 0.18] : [440, [0, 0.5], 0.25];
    const t0 = ctx.currentTime + 0.03;
    for (const s of starts) {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.type = 'square';
      o.frequency.value = freq;
      g.gain.setValueAtTime(0, t0 + s);
      g.gain.linearRampToValueAtTime(0.2, t0 + s + 0.02);
      g.gain.setValueAtTime(0.2, t0 + s + len - 0.03);
      g.gain.linearRampToValueAtTime(0, t0 + s + len);
      o.connect(g).connect(ctx.destination);
      o.start(t0 + s);
      o.stop(t0 + s + len + 0.02);
    }
    this.beeps += 1;
    document.body.dataset.beeps = String(this.beeps);
    return true;
  },
};

function vibrate(prio) {
  // Browsers refuse (and complain) before the first tap on the page.
  if (!navigator.vibrate || !navigator.userActivation?.hasBeenActive) return;
  try {
    navigator.vibrate(prio === 'high' ? [300, 120, 300, 120, 300] : prio === 'medium' ? [300, 150, 300] : [250]);
  } catch { /* not on this phone */ }
}

/** A new notification or a reminder: sound, vibration, and the screen reader. */
function ring(n) {
  const a = n.alarm;
  state.alerts += 1;
  document.body.dataset.alerts = String(state.alerts);
  sound.beep(a.priority);
  vibrate(a.priority);
  const why = n.reminder ? 'Reminder: ' : TARGET_TEXT[n.target] ? `${TARGET_TEXT[n.target]}: ` : '';
  setText($('#announce'), `${why}${PRIORITY_TEXT[a.priority]} priority alarm, ${a.bed ?? a.device_id}: ${alarmText(a)}`);
}

// ---------------------------------------------------------------- cards

function cardFor(id, n) {
  let it = state.items.get(id);
  if (it) return it;
  const parts = {
    prio: h('span', { class: 'prio' }),
    bed: h('span', { class: 'bed' }),
    kind: h('span', { class: 'kind' }),
    reminder: h('span', { class: 'tag reminder', hidden: true }, 'REMINDER'),
    target: h('span', { class: 'tag esc', hidden: true }),
    what: h('div', { class: 'what' }),
    meta: h('div', { class: 'meta' }),
    sent: h('div', { class: 'meta sent' }),
    note: h('p', { class: 'note', role: 'alert' }),
    accept: h('button', { type: 'button', class: 'accept', dataset: { action: 'accept' } }, 'Accept'),
    reject: h('button', { type: 'button', class: 'reject', dataset: { action: 'reject' } }, 'Can\u2019t go — pass on'),
    trend: h('a', { class: 'trend', dataset: { action: 'trends' } }),
  };
  parts.accept.addEventListener('click', () => answer(id, 'accept'));
  parts.reject.addEventListener('click', () => answer(id, 'reject'));
  const el = h('li', { class: 'card', dataset: { alarmId: id } },
    h('div', { class: 'card-top' }, parts.prio, parts.bed, parts.kind),
    h('div', { class: 'tags' }, parts.reminder, parts.target),
    parts.what, parts.meta, parts.sent, parts.note,
    h('div', { class: 'actions' }, parts.accept, parts.reject),
    parts.trend);
  it = { n, el, parts, shownAt: 0 };
  state.items.set(id, it);
  return it;
}

function renderCard(it) {
  const { n, el, parts } = it;
  const a = n.alarm;
  const now = Date.now();
  setData(el, 'prio', a.priority);
  setData(el, 'kind', a.kind);
  setData(el, 'state', a.state);
  setData(el, 'bed', a.bed ?? '');
  setData(el, 'target', n.target);
  setData(el, 'reminder', Boolean(n.reminder));
  setText(parts.prio, `${PRIORITY_MARK[a.priority]} ${PRIORITY_TEXT[a.priority]}`);
  setText(parts.bed, a.bed ?? a.device_id ?? 'no bed');
  setText(parts.kind, KIND_TAG[a.kind] ?? 'PHYSIO');
  setData(parts.kind, 'kind', a.kind);
  parts.reminder.hidden = !n.reminder;
  parts.target.hidden = !TARGET_TEXT[n.target];
  if (TARGET_TEXT[n.target]) setText(parts.target, TARGET_TEXT[n.target]);
  setText(parts.what, alarmText(a));
  const bits = [`since ${clockText(a.raised_at)} · ${ageText(now - a.raised_at)}`];
  if (a.escalated_at) bits.push('escalated');
  if (a.condition_present === false) bits.push('condition ended');
  setText(parts.meta, bits.join(' · '));
  const at = Date.parse(n.at);
  const sent = Number.isFinite(at) ? `${n.reminder ? 'Reminded' : 'Sent to you'} ${clockText(at)}` : '';
  setText(parts.sent, sent);
  if (a.bed) {
    parts.trend.hidden = false;
    parts.trend.setAttribute('href', `/#bed=${encodeURIComponent(a.bed)}`);
    setText(parts.trend, `Trends of ${a.bed} ›`);
    parts.trend.setAttribute('aria-label', `Trends of ${a.bed} on the ward dashboard`);
  } else {
    parts.trend.hidden = true;
  }
  el.setAttribute('aria-label', `${PRIORITY_TEXT[a.priority]} priority alarm, ${a.bed ?? ''}: ${alarmText(a)}${n.reminder ? ', reminder' : ''}${TARGET_TEXT[n.target] ? `, ${TARGET_TEXT[n.target].toLowerCase()}` : ''}`);
}

/** High priority first, then the newest. */
function sorted() {
  return [...state.items.entries()].sort(([xi, x], [yi, y]) =>
    (PRIORITY_RANK[y.n.alarm.priority] - PRIORITY_RANK[x.n.alarm.priority])
    || (y.n.alarm.raised_at - x.n.alarm.raised_at)
    || yi.localeCompare(xi));
}

function render() {
  const list = $('#cards');
  const items = sorted();
  items.forEach(([, it], i) => {
    renderCard(it);
    if (list.children[i] !== it.el) list.insertBefore(it.el, list.children[i] ?? null);
    if (!it.shownAt) {
      it.shownAt = Date.now();
      // For tests and the curious: when this page first showed the alarm.
      it.el.dataset.shownAt = String(it.shownAt);
    }
  });
  for (const el of [...list.children]) {
    if (state.items.get(el.dataset.alarmId)?.el !== el) el.remove();
  }
  const c = $('#count');
  c.hidden = items.length === 0;
  setText(c, String(items.length));
  renderEmpty();
  document.title = items.length ? `(${items.length}) wardhub — my alarms` : 'wardhub — my alarms';
}

/** "No alarms for you" only while live: without the stream the page cannot know. */
function renderEmpty() {
  $('#empty').hidden = state.items.size > 0 || !$('#off').hidden || !state.sse.open;
}

function upsert(n) {
  const id = n.alarm?.id;
  if (typeof id !== 'string') return false;
  const known = state.items.has(id);
  const it = cardFor(id, n);
  it.n = n;
  return !known;
}

function remove(id) {
  const it = state.items.get(id);
  if (!it) return null;
  state.items.delete(id);
  const hadFocus = it.el.contains(document.activeElement);
  it.el.remove();
  if (hadFocus) $('#cards').focus?.();
  return it;
}

/** Accept or pass on. */
async function answer(id, what) {
  const it = state.items.get(id);
  if (!it) return;
  const a = it.n.alarm;
  const where = a.bed ?? a.device_id;
  it.parts.accept.disabled = true;
  it.parts.reject.disabled = true;
  setText(it.parts.note, '');
  state.pending.add(id);
  try {
    const r = await api(`/api/v1/alarms/${encodeURIComponent(id)}/${what}`, { method: 'POST' });
    if (r.ok) {
      remove(id);
      render();
      say(what === 'accept'
        ? `You accepted ${where}: ${alarmText(a)}. Nobody else is being called.`
        : `Passed on: ${where} is being sent to the next person now.`);
      return;
    }
    if (r.status === 409) {
      remove(id);
      render();
      say(`${where}: no longer being sent to anyone (accepted by someone, acknowledged or over).`);
      return;
    }
    if (r.status === 401) return; // back to the login
    const msg = r.status === 403 ? 'Your role may not do this.' : (r.json?.error ?? `The hub answered ${r.status}.`);
    setText(it.parts.note, msg);
  } catch {
    setText(it.parts.note, `The hub cannot be reached: not ${what === 'accept' ? 'accepted' : 'passed on'}. Try again.`);
  } finally {
    state.pending.delete(id);
    it.parts.accept.disabled = false;
    it.parts.reject.disabled = false;
  }
}

// ---------------------------------------------------------------- the stream

function renderLive() {
  const s = state.sse;
  const loggedIn = Boolean(state.user);
  const live = loggedIn && s.open;
  document.body.dataset.live = String(live);
  const conn = $('#conn');
  const offHub = !$('#off').hidden;
  if (!loggedIn) {
    setData(conn, 'state', 'off');
    setText($('#conn-text'), 'Not logged in');
  } else if (live) {
    setData(conn, 'state', 'live');
    setText($('#conn-text'), 'LIVE');
  } else if (offHub) {
    setData(conn, 'state', 'off');
    setText($('#conn-text'), 'Off');
  } else {
    const retry = s.es || !s.nextAt ? '' : ` · retry in ${Math.max(0, Math.ceil((s.nextAt - Date.now()) / 1000))} s`;
    setData(conn, 'state', s.everOpen || s.retry > 0 ? 'lost' : 'connecting');
    setText($('#conn-text'), s.everOpen || s.retry > 0 ? `NOT LIVE${retry}` : 'Connecting…');
  }
  $('#lost').hidden = !loggedIn || live || offHub || !(s.everOpen || s.retry > 0);
  renderEmpty();
}

function closeStream() {
  const s = state.sse;
  clearTimeout(s.timer);
  if (s.es) s.es.close();
  s.es = null;
  s.open = false;
  s.nextAt = 0;
}

function connect() {
  const gen = state.generation;
  closeStream();
  if (!state.user) return;
  const es = new EventSource('/api/v1/me/alarms/stream');
  const s = state.sse;
  s.es = es;
  const mine = () => s.es === es && gen === state.generation;
  es.addEventListener('snapshot', (e) => {
    if (!mine()) return;
    const data = JSON.parse(e.data);
    const before = new Set(state.items.keys());
    const seen = new Set();
    const fresh = [];
    for (const n of data.alarms ?? []) {
      seen.add(n.alarm?.id);
      if (upsert(n)) fresh.push(n);
    }
    for (const id of before) if (!seen.has(id)) remove(id);
    s.open = true;
    s.everOpen = true;
    s.retry = 0;
    $('#off').hidden = true;
    render();
    renderLive();
    if (fresh.length) ring(fresh.sort((x, y) => PRIORITY_RANK[y.alarm.priority] - PRIORITY_RANK[x.alarm.priority])[0]);
  });
  es.addEventListener('notified', (e) => {
    if (!mine()) return;
    const n = JSON.parse(e.data);
    const fresh = upsert(n);
    render();
    if (fresh || n.reminder) ring(n);
  });
  es.addEventListener('gone', (e) => {
    if (!mine()) return;
    const g = JSON.parse(e.data);
    const id = g.alarm;
    const it = remove(id);
    render();
    if (it && !state.pending.has(id)) {
      const a = it.n.alarm;
      say(`${a.bed ?? a.device_id}: ${GONE_TEXT[g.why] ?? g.why}.`);
    }
  });
  es.addEventListener('resync', () => {
    // The hub dropped us for being slow: start again from a snapshot.
    if (!mine()) return;
    connect();
  });
  es.onerror = () => {
    if (!mine()) return;
    // Our own backoff instead of EventSource's: close, find out why, schedule.
    es.close();
    s.es = null;
    s.open = false;
    renderLive();
    probe(gen);
  };
}

/** The stream failed: a 401 returns to the login, a 404 is dissemination switched off,
 *  anything else (the hub away) reconnects with backoff. */
async function probe(gen) {
  let status = 0;
  try { status = (await api('/api/v1/me/alarms')).status; } catch { /* unreachable */ }
  if (gen !== state.generation || !state.user) return;
  const s = state.sse;
  if (status === 404) {
    $('#off').hidden = false;
    render();
    s.nextAt = Date.now() + 60000;
    s.timer = setTimeout(connect, 60000);
    renderLive();
    return;
  }
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** s.retry);
  const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
  s.retry = Math.min(s.retry + 1, 10);
  s.nextAt = Date.now() + delay;
  s.timer = setTimeout(connect, delay);
  renderLive();
}

/** Every 20 s: is the login still valid, is the hub there? (A stream can die silently.) */
async function check() {
  const gen = state.generation;
  clearTimeout(state.checkTimer);
  if (!state.user) return;
  try {
    const r = await api('/api/v1/me/alarms');
    if (gen !== state.generation) return;
    if (!r.ok && r.status !== 404 && state.sse.open) connect();
  } catch {
    if (gen === state.generation && state.sse.open) {
      // The hub does not answer while the stream looks open: start over.
      connect();
    }
  }
  if (gen === state.generation && state.user) state.checkTimer = setTimeout(check, CHECK_MS);
}

// ---------------------------------------------------------------- login

function showLogin(message) {
  document.body.dataset.auth = 'none';
  $('#main').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message ?? '';
  $('#login-submit').disabled = false;
  $('#token').value = '';
  renderLive();
}

/** Back to the login; nothing of the ward stays on the page. */
function loggedOut(message) {
  state.generation += 1;
  state.user = null;
  closeStream();
  clearTimeout(state.checkTimer);
  state.sse.everOpen = false;
  state.sse.retry = 0;
  for (const id of [...state.items.keys()]) remove(id);
  render();
  say('');
  setText($('#user'), '');
  showLogin(message);
  $('#token').focus();
}

function loggedIn(user) {
  state.generation += 1;
  state.user = { name: user.name, role: user.role };
  document.body.dataset.auth = 'ok';
  $('#login-view').hidden = true;
  $('#main').hidden = false;
  setText($('#user'), `${user.name} (${user.role})`);
  say('');
  sound.render();
  connect();
  renderLive();
  state.checkTimer = setTimeout(check, CHECK_MS);
}

async function submitLogin(ev) {
  ev.preventDefault();
  sound.unlock(); // a tap: the moment audio may start
  const token = $('#token').value.trim();
  const error = $('#login-error');
  if (!token) { error.textContent = 'Paste your token first.'; return; }
  $('#login-submit').disabled = true;
  try {
    const r = await fetch('/api/v1/session', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }), cache: 'no-store',
    });
    $('#token').value = '';
    if (r.status === 401) { error.textContent = 'This token is not known to the hub, has expired or was revoked.'; return; }
    if (r.status === 429) { error.textContent = 'Too many failed logins from this place: wait a few minutes.'; return; }
    if (!r.ok) { error.textContent = `The hub answered ${r.status}.`; return; }
    loggedIn(await r.json());
  } catch {
    error.textContent = 'The hub cannot be reached.';
  } finally {
    $('#login-submit').disabled = false;
  }
}

async function checkSession() {
  try {
    const r = await fetch('/api/v1/me', { cache: 'no-store', headers: { Accept: 'application/json' } });
    if (r.ok) { loggedIn(await r.json()); return; }
    state.user = null;
    showLogin('');
  } catch {
    state.user = null;
    showLogin('The hub cannot be reached: check the network, then log in.');
  }
}

// ---------------------------------------------------------------- start

function tick() {
  if (!state.user) return;
  for (const it of state.items.values()) renderCard(it);
  renderLive();
}

$('#login').addEventListener('submit', submitLogin);
$('#logout').addEventListener('click', () => {
  api('/api/v1/session', { method: 'DELETE' }).catch(() => {}).finally(() => loggedOut(''));
});
$('#sound').addEventListener('click', () => sound.tap());
// Any tap may start audio (browsers allow it only then).
for (const ev of ['pointerdown', 'keydown']) {
  document.addEventListener(ev, () => { if (!sound.muted && sound.state() === 'blocked') sound.unlock(); }, { capture: true });
}
// Back from the background (a phone's screen off): the stream may be dead, start over.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.user && !state.sse.open) connect();
});
sound.render();
render();
renderLive();
checkSession();
setInterval(tick, 1000);
