// wardhub hospital view: every ward of the hospital on one page, read-only. Plain ES module,
// no dependencies, no build step.
//
// - Login: a bearer token, checked with GET /api/v1/me and kept in sessionStorage only (this
//   tab; gone when it closes). Nothing of the wards is shown before a login, and a 401 at any
//   time returns to the login form, saying why.
// - Data: GET /api/v1/hospital every POLL_MS, one request at a time (the next one is
//   scheduled when the previous one has finished). When the server cannot be reached the
//   page keeps the last data, greyed, under a "connection lost — showing data from …" banner.
// - Alarms are acknowledged on the ward's own dashboard, never here.

const POLL_MS = 500;
const REQUEST_TIMEOUT_MS = 4000;
/** No successful poll for this long (a request hanging): the page is not live. */
const LOST_AFTER_MS = 3000;
const TOKEN_KEY = 'wardhub.hospital.token';

const PRIORITIES = ['high', 'medium', 'low'];
const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };
const PRIORITY_TEXT = { high: 'HIGH', medium: 'MEDIUM', low: 'LOW' };
/** IEC 60601-1-8 visual markers: the priority never relies on colour alone. */
const PRIORITY_MARK = { high: '!!!', medium: '!!', low: '!' };
const STATE_TEXT = {
  active: 'active', acknowledged: 'acknowledged', 'audio-paused': 'audio paused', latched: 'latched',
};

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  token: null,
  user: null,
  data: null, // the last /api/v1/hospital reply
  lastOk: 0, // local ms of the last successful poll
  clockOffset: 0, // server ms - local ms
  live: false,
  error: '', // why the last poll failed
  generation: 0, // bumped at every login / logout: an old poll loop stops
  timer: 0,
};

const serverNow = () => Date.now() + state.clockOffset;

// ---------------------------------------------------------------- small helpers

/** Creates an element: h('span', {class: 'x', dataset: {a: 1}}, 'text', child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
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

function setAttr(el, name, value) {
  if (value === null || value === undefined) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

function two(n) { return String(n).padStart(2, '0'); }

/** HH:MM:SS of an epoch ms, in the browser's time zone. */
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

/** "2 min ago" of an epoch ms of the server. */
function agoText(ms) {
  if (!Number.isFinite(ms)) return '—';
  return `${ageText(serverNow() - ms)} ago`;
}

/** 0.21 → "0.21 s", 4.5 → "4.5 s", 75 → "1 min". */
function secondsText(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  if (s < 1) return `${s.toFixed(2)} s`;
  if (s < 10) return `${s.toFixed(1)} s`;
  return ageText(s * 1000);
}

function count(n, one, many) { return `${n} ${n === 1 ? one : many}`; }

function worstOf(byPriority) {
  for (const p of PRIORITIES) if ((byPriority?.[p] ?? 0) > 0) return p;
  return 'none';
}

/** Only http(s) links: a ward's dashboard_url never becomes a javascript: link. */
function safeUrl(u) {
  if (typeof u !== 'string' || !u) return null;
  try {
    const url = new URL(u, window.location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

const wardKey = (o) => `${o.site}/${o.ward}`;

/** GET with the bearer token and a timeout: { status, ok, json }; throws when unreachable. */
async function api(path, token = state.token) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
  try {
    const resp = await fetch(path, {
      headers: { Accept: 'application/json', Authorization: `Bearer ${token}` },
      signal: ctl.signal, cache: 'no-store',
    });
    let json = null;
    try { json = await resp.json(); } catch { /* empty or not JSON */ }
    return { status: resp.status, ok: resp.ok, json };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- login

function storedToken() {
  try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
}

function storeToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the login lasts as long as the page */ }
}

/** Back to the login form; every bit of ward data leaves the page. */
function showLogin(message = '') {
  state.generation += 1;
  clearTimeout(state.timer);
  state.token = null;
  state.user = null;
  state.data = null;
  state.lastOk = 0;
  state.error = '';
  storeToken(null);
  clearHospital();
  document.body.dataset.auth = 'none';
  $('#hospital').hidden = true;
  $('#totals').hidden = true;
  $('#logout').hidden = true;
  setText($('#user'), '');
  $('#login-view').hidden = false;
  $('#login-error').textContent = message;
  $('#login-submit').disabled = false;
  updateLive();
  $('#token').focus();
}

function showHospital(token, user) {
  state.generation += 1;
  state.token = token;
  state.user = user;
  storeToken(token);
  document.body.dataset.auth = 'user';
  $('#login-view').hidden = true;
  $('#login-error').textContent = '';
  $('#token').value = '';
  $('#hospital').hidden = false;
  $('#totals').hidden = false;
  $('#logout').hidden = false;
  setText($('#user'), user ? `${user.name} (${user.role})` : '');
  updateLive();
  poll(state.generation);
}

async function submitLogin(ev) {
  ev.preventDefault();
  const token = $('#token').value.trim();
  const error = $('#login-error');
  if (!token) { error.textContent = 'Enter your access token.'; return; }
  $('#login-submit').disabled = true;
  error.textContent = 'Checking…';
  try {
    const r = await api('/api/v1/me', token);
    if (r.status === 401) {
      error.textContent = 'This token was refused: it is not known to the hospital server, has expired or was revoked.';
    } else if (!r.ok || !r.json) {
      error.textContent = `The hospital server answered ${r.status}${r.json?.error ? `: ${r.json.error}` : ''}.`;
    } else {
      showHospital(token, r.json);
      return;
    }
  } catch {
    error.textContent = 'The hospital server cannot be reached. Try again in a moment.';
  }
  $('#login-submit').disabled = false;
  $('#token').select();
}

/** A token from this tab's earlier page load: still good? */
async function resume() {
  const token = storedToken();
  if (!token) { showLogin(); return; }
  try {
    const r = await api('/api/v1/me', token);
    if (r.status === 401) { showLogin('Your login is no longer accepted (the token has expired or was revoked): log in again.'); return; }
    showHospital(token, r.ok ? r.json : null);
  } catch {
    // The server is away: carry on, the banner says so and a 401 later returns here.
    showHospital(token, null);
  }
}

// ---------------------------------------------------------------- polling

/** One request, then the next one POLL_MS after this one began (never two at once). */
async function poll(generation) {
  if (generation !== state.generation || !state.token) return;
  const t0 = Date.now();
  let r = null;
  let failure = '';
  try {
    r = await api('/api/v1/hospital');
  } catch (e) {
    failure = e?.name === 'AbortError' ? 'The hospital server did not answer in time.' : 'The hospital server cannot be reached.';
  }
  if (generation !== state.generation) return;
  if (r?.status === 401) {
    showLogin('You were logged out: the hospital server no longer accepts your token (it expired or was revoked). Log in again.');
    return;
  }
  if (r && !(r.ok && Array.isArray(r.json?.wards) && Array.isArray(r.json?.alarms))) {
    failure = `The hospital server answered ${r.status}${r.json?.error ? `: ${r.json.error}` : ''}.`;
  }
  if (!failure) {
    const t1 = Date.now();
    if (Number.isFinite(r.json.now)) state.clockOffset = r.json.now - (t0 + t1) / 2;
    state.data = r.json;
    state.lastOk = t1;
    state.error = '';
  } else {
    state.error = failure;
  }
  try {
    render();
  } finally {
    updateLive();
    if (generation === state.generation) {
      state.timer = setTimeout(() => poll(generation), Math.max(0, POLL_MS - (Date.now() - t0)));
    }
  }
}

function updateLive() {
  const loggedIn = Boolean(state.token);
  const live = loggedIn && state.lastOk > 0 && !state.error && Date.now() - state.lastOk < LOST_AFTER_MS;
  const lost = loggedIn && !live && (state.error !== '' || state.lastOk > 0);
  if (document.body.dataset.live !== String(live)) document.body.dataset.live = String(live);
  document.body.classList.toggle('not-live', lost);
  const banner = $('#connection');
  if (banner.hidden === lost) banner.hidden = !lost;
  if (lost) {
    const when = state.data?.now ?? (state.lastOk ? state.lastOk + state.clockOffset : null);
    setText($('#connection-text'), when
      ? `Connection lost — showing data from ${clockText(when)}`
      : 'Connection lost — no data received yet');
    const why = state.error || 'The hospital server stopped answering.';
    setText($('#connection-detail'), `${why} Retrying… Alarms shown may be out of date; check the ward's own dashboard.`);
  }
  const indicator = $('#live');
  setData(indicator, 'state', !loggedIn ? 'off' : live ? 'live' : lost ? 'lost' : 'connecting');
  setText($('#live-text'), !loggedIn ? 'Not logged in' : live ? 'LIVE' : lost ? 'NOT LIVE' : 'Connecting…');
  setText($('#clock'), loggedIn && state.lastOk ? clockText(serverNow()) : '--:--:--');
}

// ---------------------------------------------------------------- rendering

const wardEls = new Map(); // "site/ward" -> { card, parts, beds: Map }
const rowEls = new Map(); // "site/ward#id" -> { tr, parts }
let wardSeq = 0;

function clearHospital() {
  for (const e of wardEls.values()) e.card.remove();
  wardEls.clear();
  for (const e of rowEls.values()) e.tr.remove();
  rowEls.clear();
  $('#totals').replaceChildren();
  setText($('#ward-count'), '0');
  setText($('#alarm-count'), '0');
  $('#no-wards').hidden = false;
  setText($('#no-wards'), 'Waiting for the first data from the hospital server…');
  $('#no-alarms').hidden = true;
}

function render() {
  const d = state.data;
  if (!d) return;
  renderTotals(d.totals ?? {});
  renderWards(d.wards);
  renderAlarms(d.alarms);
}

function renderTotals(totals) {
  const box = $('#totals');
  if (!box.children.length) {
    box.append(...PRIORITIES.map((p) => h('span', { class: 'total', dataset: { priority: p } },
      h('span', { class: 'total-label' }, `${PRIORITY_MARK[p]} ${PRIORITY_TEXT[p]}`),
      h('span', { class: 'total-n' }, '0'))));
  }
  for (const p of PRIORITIES) {
    const el = $(`[data-priority="${p}"]`, box);
    const n = totals[p] ?? 0;
    setText($('.total-n', el), String(n));
    setData(el, 'zero', n === 0);
    setAttr(el, 'aria-label', `${count(n, `${p} priority alarm`, `${p} priority alarms`)}`);
  }
}

function wardElement(w) {
  const key = wardKey(w);
  let e = wardEls.get(key);
  if (e) return e;
  wardSeq += 1;
  const id = `ward-${wardSeq}`;
  const dd = () => h('dd', {});
  const parts = {
    stale: h('span', { class: 'stale-badge', hidden: true }, 'STALE'),
    counts: h('p', { class: 'ward-counts' }),
    link: h('a', { class: 'ward-link', target: '_blank', rel: 'noopener noreferrer', hidden: true },
      'Open ward dashboard', h('span', { class: 'sr-only' }, ` of ${w.site} / ${w.ward}`)),
    healthNote: h('p', { class: 'health-note', hidden: true }),
    uplink: dd(), outbox: dd(), oldest: dd(), lag: dd(), lastSeen: dd(), dropped: dd(), down: dd(),
    beds: h('ul', { class: 'beds', 'aria-label': `Beds of ${w.site} / ${w.ward}` }),
    noBeds: h('p', { class: 'empty small', hidden: true }, 'No beds reported.'),
  };
  const row = (label, el, name) => h('div', { class: 'hrow', dataset: { health: name } }, h('dt', {}, label), el);
  parts.downRow = row('Components down', parts.down, 'down');
  const card = h('article', { class: 'ward', 'aria-labelledby': id, dataset: { ward: key } },
    h('div', { class: 'ward-head' },
      h('h3', { id }, h('span', { class: 'site' }, w.site), h('span', { class: 'sep', 'aria-hidden': 'true' }, ' / '),
        h('span', { class: 'sr-only' }, ', '), h('span', { class: 'ward-name' }, w.ward)),
      parts.stale),
    h('div', { class: 'ward-sub' }, parts.counts, parts.link),
    parts.healthNote,
    h('dl', { class: 'health' },
      row('Uplink', parts.uplink, 'uplink'),
      row('Outbox', parts.outbox, 'outbox'),
      row('Oldest in outbox', parts.oldest, 'oldest'),
      row('Lag', parts.lag, 'lag'),
      row('Last seen', parts.lastSeen, 'last-seen'),
      row('Dropped', parts.dropped, 'dropped'),
      parts.downRow),
    parts.beds, parts.noBeds);
  e = { card, parts, beds: new Map() };
  wardEls.set(key, e);
  return e;
}

function renderWards(wards) {
  const container = $('#wards');
  const seen = new Set();
  wards.forEach((w, i) => {
    const key = wardKey(w);
    seen.add(key);
    const e = wardElement(w);
    if (container.children[i] !== e.card) container.insertBefore(e.card, container.children[i] ?? null);
    renderWard(e, w);
  });
  for (const [key, e] of wardEls) {
    if (!seen.has(key)) { e.card.remove(); wardEls.delete(key); }
  }
  setText($('#ward-count'), String(wards.length));
  $('#no-wards').hidden = wards.length > 0;
  if (!wards.length) setText($('#no-wards'), 'No ward has reported to the hospital cluster yet.');
}

function renderWard(e, w) {
  const { card, parts } = e;
  const health = w.health ?? null;
  const stale = Boolean(w.stale) || !health;
  const byPrio = w.alarms_by_priority ?? {};
  const worst = worstOf(byPrio);
  setData(card, 'priority', worst);
  setData(card, 'stale', stale);

  parts.stale.hidden = !stale;
  setAttr(parts.stale, 'title', !health ? 'No health report from this ward yet' : 'No health report from this ward for 30 s or more');
  const open = PRIORITIES.reduce((n, p) => n + (byPrio[p] ?? 0), 0);
  setText(parts.counts, open
    ? `${count(open, 'open alarm', 'open alarms')}: ${PRIORITIES.filter((p) => byPrio[p]).map((p) => `${byPrio[p]} ${p}`).join(', ')}`
    : 'No open alarms');

  const url = safeUrl(w.dashboard_url);
  parts.link.hidden = !url;
  setAttr(parts.link, 'href', url);

  // Health: what the ward last said about itself.
  parts.healthNote.hidden = !stale;
  if (!health) setText(parts.healthNote, 'STALE: no health report from this ward yet.');
  else if (stale) {
    setText(parts.healthNote, Number.isFinite(health.reported_at)
      ? `STALE: no health report for ${ageText(serverNow() - health.reported_at)}; the values below are old.`
      : 'STALE: no recent health report; the values below are old.');
  }
  if (health) {
    setText(parts.uplink, health.uplink_connected ? '✓ connected' : '✕ NOT connected');
    setData(parts.uplink, 'ok', Boolean(health.uplink_connected));
    setText(parts.outbox, count(health.outbox_messages ?? 0, 'message', 'messages'));
    setText(parts.oldest, health.outbox_messages ? secondsText(health.outbox_oldest_age_seconds) : '—');
    setText(parts.dropped, String(health.dropped_total ?? 0));
    setData(parts.dropped, 'ok', !(health.dropped_total > 0));
    const down = health.components_down ?? [];
    parts.downRow.hidden = down.length === 0;
    setText(parts.down, down.join(', '));
  } else {
    for (const el of [parts.uplink, parts.outbox, parts.oldest, parts.dropped]) {
      setText(el, '—');
      setData(el, 'ok', 'unknown');
    }
    parts.downRow.hidden = true;
  }
  setText(parts.lag, w.lag_seconds === null || w.lag_seconds === undefined ? 'no data yet' : secondsText(w.lag_seconds));
  setText(parts.lastSeen, Number.isFinite(w.last_seen) ? agoText(w.last_seen) : 'never');
  setAttr(parts.lastSeen, 'title', Number.isFinite(w.last_seen) ? clockText(w.last_seen) : null);

  renderBeds(e, w.beds ?? [], `${w.site} / ${w.ward}`);
}

function bedElement(e, bed) {
  let b = e.beds.get(bed);
  if (b) return b;
  const parts = {
    badge: h('span', { class: 'badge' }),
    cause: h('span', { class: 'bed-cause' }),
    meta: h('span', { class: 'bed-meta' }),
  };
  const li = h('li', { class: 'bed', dataset: { bed } },
    h('span', { class: 'bed-head' }, h('span', { class: 'bed-name' }, bed), parts.badge),
    parts.cause, parts.meta);
  b = { li, parts };
  e.beds.set(bed, b);
  return b;
}

function renderBeds(e, beds, wardName) {
  const list = e.parts.beds;
  const seen = new Set();
  beds.forEach((bd, i) => {
    seen.add(bd.bed);
    const { li, parts } = bedElement(e, bd.bed);
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    const w = bd.worst ?? null;
    const prio = w && PRIORITY_RANK[w.priority] ? w.priority : 'none';
    setData(li, 'priority', prio);
    setData(li, 'state', w ? w.state : 'none');
    if (w) {
      setText(parts.badge, `${PRIORITY_MARK[prio] ?? ''} ${PRIORITY_TEXT[prio] ?? w.priority}`.trim());
      setText(parts.cause, w.cause ?? '');
      const more = bd.open_alarms > 1 ? ` · ${bd.open_alarms} open` : '';
      const age = Number.isFinite(w.since) ? ` · ${ageText(serverNow() - w.since)}` : '';
      setText(parts.meta, `${STATE_TEXT[w.state] ?? w.state}${age}${more}`);
    } else {
      setText(parts.badge, 'no alarm');
      setText(parts.cause, '');
      setText(parts.meta, '');
    }
    setAttr(li, 'aria-label', w
      ? `${bd.bed}: ${PRIORITY_TEXT[prio] ?? w.priority} priority alarm, ${w.cause}, ${STATE_TEXT[w.state] ?? w.state}, since ${agoText(w.since)}${bd.open_alarms > 1 ? `, ${bd.open_alarms} open alarms` : ''}`
      : `${bd.bed}: no alarm`);
  });
  for (const [bed, b] of e.beds) {
    if (!seen.has(bed)) { b.li.remove(); e.beds.delete(bed); }
  }
  e.parts.noBeds.hidden = beds.length > 0;
  list.hidden = beds.length === 0;
  setAttr(list, 'aria-label', `Beds of ${wardName}`);
}

function rowElement(key) {
  let r = rowEls.get(key);
  if (r) return r;
  const parts = {
    prio: h('span', { class: 'prio' }),
    ward: h('td', { dataset: { label: 'Ward' } }),
    bed: h('td', { class: 'col-bed', dataset: { label: 'Bed' } }),
    cause: h('span', { class: 'cause' }),
    extra: h('span', { class: 'cause-extra' }),
    state: h('td', { class: 'col-state', dataset: { label: 'State' } }),
    since: h('time', {}),
  };
  const tr = h('tr', {},
    h('td', { class: 'col-prio', dataset: { label: 'Priority' } }, parts.prio),
    parts.ward, parts.bed,
    h('td', { class: 'col-cause', dataset: { label: 'Cause' } }, parts.cause, parts.extra),
    parts.state,
    h('td', { class: 'col-since', dataset: { label: 'Since' } }, parts.since));
  r = { tr, parts };
  rowEls.set(key, r);
  return r;
}

function renderAlarms(alarms) {
  const body = $('#alarms tbody');
  const seen = new Set();
  alarms.forEach((a, i) => {
    const key = `${wardKey(a)}#${a.id}`;
    seen.add(key);
    const { tr, parts } = rowElement(key);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
    const prio = PRIORITY_RANK[a.priority] ? a.priority : 'low';
    setData(tr, 'priority', prio);
    setData(tr, 'state', a.state);
    setData(tr, 'ward', wardKey(a));
    setData(tr, 'bed', a.bed ?? '');
    setText(parts.prio, `${PRIORITY_MARK[prio]} ${PRIORITY_TEXT[prio]}`);
    setText(parts.ward, `${a.site} / ${a.ward}`);
    setText(parts.bed, a.bed ?? '— (ward)');
    setText(parts.cause, a.cause ?? '');
    const extra = [a.value !== null && a.value !== undefined && Number.isFinite(a.value) ? String(a.value) : '', a.device_id ?? '']
      .filter(Boolean).join(' · ');
    setText(parts.extra, extra ? ` ${extra}` : '');
    setText(parts.state, STATE_TEXT[a.state] ?? a.state);
    setText(parts.since, agoText(a.since));
    if (Number.isFinite(a.since)) {
      setAttr(parts.since, 'datetime', new Date(a.since).toISOString());
      setAttr(parts.since, 'title', clockText(a.since));
    }
  });
  for (const [key, r] of rowEls) {
    if (!seen.has(key)) { r.tr.remove(); rowEls.delete(key); }
  }
  setText($('#alarm-count'), String(alarms.length));
  $('#no-alarms').hidden = alarms.length > 0;
  $('#alarms').hidden = alarms.length === 0;
}

/** Once a second: relative times and the liveness, between (or without) replies. */
function tick() {
  if (state.token && state.data) render();
  updateLive();
}

// ---------------------------------------------------------------- start

$('#login').addEventListener('submit', submitLogin);
$('#logout').addEventListener('click', () => showLogin());
setInterval(tick, 1000);
resume();
