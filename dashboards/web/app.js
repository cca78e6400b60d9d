// wardhub nurse dashboard: the ward at a glance, the alarm list, acknowledge / audio pause,
// bed detail with trends. Plain ES module, no dependencies, no build step.
//
// Live data:
// - alarms: the SSE stream /api/v1/alarms/stream (a `snapshot`, then every `transition`);
//   on an error the page reconnects with backoff, and every new stream starts with a full
//   snapshot (the resync); a `resync` event (too slow a client) reconnects at once;
// - numerics and device connections: GET /api/v1/ward every 2 s (with a timeout).
// The page is "live" only while the stream is open and the last ward poll succeeded less
// than WARD_SILENT_MS ago; otherwise it says so, loudly, and greys the data.

const POLL_MS = 2000;
const POLL_TIMEOUT_MS = 5000;
/** No successful poll for this long: the page is not live. */
const WARD_SILENT_MS = 10000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 5000;
/** Seconds after which a value is stale (greyed, marked): NIBP is intermittent. */
const STALE_AFTER_S = { default: 30, nibp_sys: 900, nibp_dia: 900, nibp_mean: 900, temp: 120 };
const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };
const PRIORITY_TEXT = { high: 'HIGH', medium: 'MEDIUM', low: 'LOW' };
/** IEC 60601-1-8 visual markers: the priority never relies on colour alone. */
const PRIORITY_MARK = { high: '!!!', medium: '!!', low: '!' };
const SLOT_LABEL = {
  patient_monitor: 'MON', infusion_pump: 'PUMP', ventilator: 'VENT',
  smart_bed: 'BED', nurse_call: 'CALL', wearable: 'WEAR',
};
const SLOT_NAME = {
  patient_monitor: 'Patient monitor', infusion_pump: 'Infusion pump', ventilator: 'Ventilator',
  smart_bed: 'Smart bed', nurse_call: 'Nurse call', wearable: 'Wearable',
};
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
// One alarm per condition and bed: what the condition is, whichever devices show it.
const CONDITION_TEXT = {
  bradycardia: 'Bradycardia', tachycardia: 'Tachycardia', desaturation: 'Desaturation',
  spo2_high: 'SpO₂ high', low_breathing: 'Low breathing / apnoea', tachypnoea: 'Tachypnoea',
  hypercapnia: 'etCO₂ high', hypotension: 'Hypotension', hypertension: 'Hypertension',
  hypothermia: 'Hypothermia', fever: 'Fever',
};
const KIND_TAG = { technical: 'TECH', call: 'CALL' };
const REASON_TEXT = { actionable: 'actionable', non_actionable: 'not actionable', artefact: 'artefact' };

const $ = (sel, root = document) => root.querySelector(sel);

const state = {
  ward: '',
  beds: new Map(), // bed id -> bed JSON of /api/v1/ward
  fetchedAt: 0, // local ms of the last ward response
  alarms: new Map(), // alarm id -> alarm
  clockOffset: 0, // hub ms - local ms
  user: null,
  sse: { es: null, open: false, retry: 0, timer: 0, nextAt: 0, lostSince: 0 },
  poll: { lastOk: 0, timer: 0 },
  live: false,
  lostSince: Date.now(),
  detail: null, // { bed, range, timer }
  pendingAck: null, // alarm id waiting for a login
  ackTarget: null,
  // Alarms sent to people (GET /api/v1/dissemination): alarm id -> status; a 404 is
  // dissemination switched off, asked again after offUntil.
  dissemination: { byAlarm: new Map(), offUntil: 0, busy: false },
  // The shift's roster (GET /api/v1/roster): `data` its last reply, null until known or with
  // dissemination off (`off`, a 404, asked again after offUntil). `gen` counts the replies
  // of our own writes: a poll that began before one is stale. `editing`: beds whose row is
  // being edited (a poll does not overwrite what is typed); `users`: for an admin, the
  // hub's users (GET /api/v1/users) offered as names.
  roster: {
    data: null, off: false, offUntil: 0, busy: false, at: 0, gen: 0,
    editing: new Set(), shiftEditing: false, users: null,
  },
};

const hubNow = () => Date.now() + state.clockOffset;

// ---------------------------------------------------------------- small helpers

/** Creates an element: h('span', {class: 'x', dataset: {a: 1}}, 'text', child). */
// ---------------------------------------------------------------- alarm load (charge nurse)

const ACK_TEXT = {
  actionable: 'Actionable', non_actionable: 'Not actionable', artefact: 'Artefact',
  no_reason: 'No reason given', not_acknowledged: 'Not acknowledged (cleared or open)',
};

function causeText(c) {
  return CONDITION_TEXT[c] ?? CAUSE_TEXT[c] ?? c.replace(/_/g, ' ');
}

function openKpis() {
  const d = $('#kpi-dialog');
  if (!d.open) d.showModal();
  const pressed = $('#kpi-dialog [data-period][aria-pressed="true"]');
  loadKpis(parseInt(pressed?.dataset.period ?? '24', 10));
}

async function loadKpis(hours) {
  const box = $('#kpi-dialog');
  setText($('#kpi-status'), 'Loading…');
  const to = Math.round(hubNow());
  const from = to - hours * 3600000;
  const r = await api(`/api/v1/alarms/kpis?from=${from}&to=${to}`, { timeout: 15000 });
  if (!r.ok) {
    setText($('#kpi-status'), r.status === 401 ? 'Log in to see the alarm load.' : 'The alarm load could not be loaded.');
    return;
  }
  const k = r.json.kpis;
  const pct = (x) => `${Math.round(x * 100)} %`;
  const secs = (x) => (x == null ? '—' : ageText(x * 1000));
  const summary = [
    ['per-bed-day', 'Alarms per bed per day', k.per_bed_per_day.toFixed(1)],
    ['raised', 'Alarms raised', String(k.raised)],
    ['high', 'High priority', String(k.by_priority.high ?? 0)],
    ['ack-p50', 'Time to acknowledge (median)', secs(k.time_to_ack_s.p50)],
    ['ack-p90', 'Time to acknowledge (90 %)', secs(k.time_to_ack_s.p90)],
    ['self-cleared', 'Cleared by themselves within 10 s', pct(k.self_cleared_within_10s)],
  ];
  $('#kpi-summary').replaceChildren(...summary.map(([key, label, value]) =>
    h('div', { class: 'kpi', dataset: { kpi: key } }, h('b', {}, value), label)));
  $('#kpi-ack tbody').replaceChildren(...Object.entries(k.acknowledged).map(([key, n]) =>
    h('tr', { dataset: { reason: key } }, h('th', { scope: 'row' }, ACK_TEXT[key] ?? key), h('td', {}, String(n)),
      h('td', {}, k.raised ? pct(n / k.raised) : '—'))));
  const rows = (list, name) => list.map((c) =>
    h('tr', { dataset: { name: c.name } }, h('td', {}, name(c.name)), h('td', {}, String(c.raised)), h('td', {}, String(c.high))));
  $('#kpi-causes tbody').replaceChildren(...rows(k.top_causes, causeText));
  $('#kpi-beds tbody').replaceChildren(...rows(k.top_beds, (b) => b));
  renderDisseminationKpis(r.json.dissemination ?? k.dissemination ?? null);
  setText($('#kpi-status'), `Alarms raised in the last ${hours >= 48 ? `${hours / 24} days` : `${hours} h`}, ${k.beds} beds.`);
  box.dataset.loaded = String(hours);
}

/** "Alarms to people" (dissemination on): sent, accepted, reached nobody, and how long to the
 *  first person told and to someone accepting. Hidden when dissemination is off (null). */
function renderDisseminationKpis(d) {
  const box = $('#kpi-dissem');
  box.hidden = !d;
  if (!d) { $('#kpi-dissem-summary').replaceChildren(); return; }
  const s = (x) => (x == null ? '—' : x < 10 ? `${x.toFixed(1)} s` : `${Math.round(x)} s`);
  const pair = (p) => `${s(p?.p50)} / ${s(p?.p90)}`;
  const nobody = d.reached_nobody ?? 0;
  const items = [
    ['sent', 'Alarms sent to people', String(d.alarms_sent ?? 0)],
    ['accepted', 'Accepted by someone', String(d.accepted ?? 0)],
    ['reached-nobody', nobody > 0 ? '⚠ Reached nobody: check the roster' : 'Reached nobody', String(nobody)],
    ['first-told', 'Time to the first person told (median / 90 %)', pair(d.first_delivery_s)],
    ['accepted-time', 'Time to accepted (median / 90 %)', pair(d.accepted_s)],
  ];
  $('#kpi-dissem-summary').replaceChildren(...items.map(([key, label, value]) =>
    h('div', { class: 'kpi', dataset: key === 'reached-nobody' && nobody > 0 ? { kpi: key, alert: 'true' } : { kpi: key } },
      h('b', {}, value), label)));
}

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

/** HH:MM:SS of a hub epoch ms, in the browser's time zone. */
function clockText(ms, seconds = true) {
  const d = new Date(ms);
  const t = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return seconds ? `${t}:${two(d.getSeconds())}` : t;
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

function staleAfterMs(name) { return 1000 * (STALE_AFTER_S[name] ?? STALE_AFTER_S.default); }

// Every call carries the session cookie (HttpOnly: this script never sees it, nor the token).
async function api(path, { method = 'GET', body, timeout = POLL_TIMEOUT_MS } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeout);
  try {
    const resp = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      signal: ctl.signal, cache: 'no-store',
    });
    let json = null;
    try { json = await resp.json(); } catch { /* empty body */ }
    if (resp.status === 401 && state.user !== undefined) loggedOut();
    return { status: resp.status, ok: resp.ok, json };
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- liveness

function updateLive() {
  const now = Date.now();
  const pollOk = state.poll.lastOk > 0 && now - state.poll.lastOk < WARD_SILENT_MS;
  const live = state.sse.open && pollOk;
  if (live !== state.live) {
    state.live = live;
    if (!live) state.lostSince = now;
    document.body.classList.toggle('not-live', !live);
    document.body.dataset.live = String(live);
    $('#lost').hidden = live;
  }
  const conn = $('#conn');
  if (live) {
    setData(conn, 'state', 'live');
    setText($('#conn-text'), 'LIVE');
  } else {
    const everLive = state.poll.lastOk > 0;
    setData(conn, 'state', everLive ? 'lost' : 'connecting');
    const retry = state.sse.es || !state.sse.nextAt ? '' :
      ` · retrying in ${Math.max(0, Math.ceil((state.sse.nextAt - now) / 1000))} s`;
    setText($('#conn-text'), everLive ? `NOT LIVE${retry}` : `Connecting…${retry}`);
    const last = state.poll.lastOk
      ? `Last data from the hub at ${clockText(state.poll.lastOk + state.clockOffset)} (${ageText(now - state.poll.lastOk)} ago).`
      : 'No data from the hub yet.';
    setText($('#lost-detail'), `${last} Values and alarms shown may be out of date.${retry ? ' Reconnecting…' : ''}`);
  }
}

// ---------------------------------------------------------------- ward polling

async function pollWard() {
  clearTimeout(state.poll.timer);
  const t0 = Date.now();
  try {
    if (!state.user) throw new Error('not logged in');
    const r = await api('/api/v1/ward');
    if (!r.ok || !r.json) throw new Error(`HTTP ${r.status}`);
    const t1 = Date.now();
    state.clockOffset = r.json.now - (t0 + t1) / 2;
    state.fetchedAt = t1;
    state.poll.lastOk = t1;
    state.ward = r.json.ward;
    state.beds = new Map(r.json.beds.map((b) => [b.bed, b]));
    renderWard();
    pollDissemination();
    pollRoster();
  } catch {
    // Not live: updateLive() tells once WARD_SILENT_MS has passed.
  } finally {
    updateLive();
    state.poll.timer = setTimeout(pollWard, POLL_MS);
  }
}

// ---------------------------------------------------------------- who has an alarm

/** With the ward poll: who each open alarm was sent to and who accepted it (the alarm list
 *  shows "Accepted by …" / "Sent to …"). Never in the way of the ward poll or liveness. */
async function pollDissemination() {
  const d = state.dissemination;
  if (d.busy || !state.user || Date.now() < d.offUntil) return;
  d.busy = true;
  try {
    const r = await api('/api/v1/dissemination');
    if (r.status === 404) {
      d.offUntil = Date.now() + 60000;
      d.byAlarm = new Map();
    } else if (r.ok && r.json) {
      d.byAlarm = new Map((r.json.alarms ?? []).map((x) => [x.alarm, x]));
    } else {
      return;
    }
    renderAlarms();
  } catch {
    // Asked again with the next ward poll.
  } finally {
    d.busy = false;
  }
}

// ---------------------------------------------------------------- roster (who is told)

/** How often the ward poll also asks for the roster (the tiles' "unassigned" tags). */
const ROSTER_POLL_MS = 5000;
/** Roles that may assign a bed's nurses (PUT /api/v1/beds/{bed}/assignment). */
const ASSIGN_ROLES = new Set(['nurse', 'biomed', 'admin']);
const canAssign = () => ASSIGN_ROLES.has(state.user?.role);
/** Only an admin replaces the whole roster (charge nurse, team: PUT /api/v1/roster). */
const isAdmin = () => state.user?.role === 'admin';
const UNASSIGNED_TEXT = 'unassigned — alarms go to the charge nurse';

/** Whether a bed has no primary nurse; false while the roster is unknown or dissemination
 *  is off (then nobody is sent alarms, and nothing is "unassigned"). */
function bedUnassigned(bed) {
  const r = state.roster.data?.roster;
  return Boolean(r) && !r.beds?.[bed]?.primary;
}

/** With the ward poll, at most every ROSTER_POLL_MS (`force`: now, the view opened). */
async function pollRoster(force = false) {
  const ro = state.roster;
  if (ro.busy || !state.user) return;
  const now = Date.now();
  if (!force && (now < ro.offUntil || now - ro.at < ROSTER_POLL_MS)) return;
  ro.busy = true;
  const gen = ro.gen;
  try {
    const r = await api('/api/v1/roster');
    ro.at = Date.now();
    if (gen !== ro.gen || !state.user) return; // one of our writes answered meanwhile
    if (r.status === 404) {
      rosterOff();
    } else if (r.ok && r.json?.roster) {
      rosterKnown(r.json);
    } else if ($('#roster-dialog').open) {
      setText($('#roster-status'), r.status === 401 ? 'Log in to see the roster.'
        : `The roster could not be loaded: the hub answered ${r.status}.`);
    }
  } catch {
    if ($('#roster-dialog').open) setText($('#roster-status'), 'The hub cannot be reached: the roster shown may be out of date.');
  } finally {
    ro.busy = false;
  }
}

function rosterOff() {
  const ro = state.roster;
  ro.off = true;
  ro.data = null;
  ro.offUntil = Date.now() + 60000;
  ro.editing.clear();
  ro.shiftEditing = false;
  renderWard();
  renderRoster();
}

/** A roster reply (of a poll or of a write). */
function rosterKnown(json) {
  const ro = state.roster;
  ro.off = false;
  ro.offUntil = 0;
  ro.data = json;
  renderWard();
  renderRoster();
}

function forgetRoster() {
  const ro = state.roster;
  ro.data = null;
  ro.off = false;
  ro.offUntil = 0;
  ro.at = 0;
  ro.users = null;
  ro.editing.clear();
  ro.shiftEditing = false;
  ro.gen += 1;
  renderRoster();
}

function openRoster() {
  if (!state.user) { requireLogin(() => openRoster()); return; }
  const d = $('#roster-dialog');
  if (!state.roster.data && !state.roster.off) setText($('#roster-status'), 'Loading…');
  renderRoster();
  openDialog(d);
  pollRoster(true);
  if (isAdmin() && !state.roster.users) loadRosterUsers();
}

/** For an admin: the hub's users who may take alarms, as the names the inputs offer. */
async function loadRosterUsers() {
  try {
    const r = await api('/api/v1/users');
    if (!r.ok || !Array.isArray(r.json?.users)) return;
    state.roster.users = r.json.users.filter((u) => u.role !== 'viewer' && !u.revoked);
    renderRosterNames();
  } catch { /* the names on the roster are offered still */ }
}

/** The beds of the ward view, then any other the roster or the hub names. */
function rosterBeds() {
  const out = [...state.beds.keys()];
  const seen = new Set(out);
  const more = [...Object.keys(state.roster.data?.roster?.beds ?? {}), ...(state.roster.data?.unassigned_beds ?? [])]
    .filter((b) => !seen.has(b) && seen.add(b))
    .sort();
  return out.concat(more);
}

const rosterRows = new Map(); // bed -> { tr, parts }

function rosterRow(bed) {
  let e = rosterRows.get(bed);
  if (e) return e;
  const id = `roster-${bed.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const input = (field, label) => h('input', {
    type: 'text', list: 'roster-names', autocomplete: 'off', spellcheck: 'false', class: 'roster-input',
    id: `${id}-${field}`, 'aria-label': `${label} of ${bed}`, 'aria-describedby': `${id}-msg`,
    maxlength: 100, hidden: true, dataset: { field },
  });
  const parts = {
    primaryText: h('span', { class: 'roster-who' }),
    buddyText: h('span', { class: 'roster-who' }),
    primary: input('primary', 'Primary nurse'),
    buddy: input('buddy', 'Buddy'),
    edit: h('button', { type: 'button', dataset: { action: 'edit' }, 'aria-label': `Change the nurses of ${bed}` }, 'Change'),
    save: h('button', { type: 'button', class: 'primary', dataset: { action: 'save' }, hidden: true, 'aria-label': `Save the nurses of ${bed}` }, 'Save'),
    cancel: h('button', { type: 'button', class: 'secondary', dataset: { action: 'cancel' }, hidden: true, 'aria-label': `Cancel changing the nurses of ${bed}` }, 'Cancel'),
    msg: h('span', { class: 'roster-msg', id: `${id}-msg`, role: 'status' }),
  };
  parts.edit.addEventListener('click', () => startAssign(bed));
  parts.cancel.addEventListener('click', () => stopAssign(bed, true));
  parts.save.addEventListener('click', () => saveAssign(bed));
  for (const el of [parts.primary, parts.buddy]) {
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') { ev.preventDefault(); saveAssign(bed); }
      // Escape leaves the row, not the whole view.
      if (ev.key === 'Escape') { ev.preventDefault(); stopAssign(bed, true); }
    });
  }
  const tr = h('tr', { dataset: { bed } },
    h('th', { scope: 'row' }, bed),
    h('td', { dataset: { col: 'primary' } }, parts.primaryText, parts.primary),
    h('td', { dataset: { col: 'buddy' } }, parts.buddyText, parts.buddy),
    h('td', { class: 'roster-actions' }, parts.edit, parts.save, parts.cancel),
    h('td', { class: 'roster-msg-cell' }, parts.msg));
  e = { tr, parts };
  rosterRows.set(bed, e);
  return e;
}

function renderRoster() {
  const d = $('#roster-dialog');
  const ro = state.roster;
  $('#roster-off').hidden = !ro.off;
  $('#roster-body').hidden = !ro.data;
  setData(d, 'state', ro.off ? 'off' : ro.data ? 'on' : 'unknown');
  if (ro.off) { setText($('#roster-status'), ''); return; }
  if (!ro.data) return;
  const r = ro.data.roster;
  const beds = rosterBeds();
  const body = $('#roster-beds tbody');
  const wanted = new Set(beds);
  for (const [bed, e] of rosterRows) {
    if (!wanted.has(bed) && !ro.editing.has(bed)) { e.tr.remove(); rosterRows.delete(bed); }
  }
  beds.forEach((bed, i) => {
    const { tr, parts } = rosterRow(bed);
    // In order; a row already in place is not moved (moving it would take its focus).
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
    renderRosterRow(bed, parts, tr, r);
  });
  const unassigned = beds.filter(bedUnassigned);
  setText($('#roster-status'), unassigned.length
    ? `${unassigned.length} of ${beds.length} beds without a primary nurse: ${unassigned.join(', ')}.`
    : `Every bed has a primary nurse (${beds.length} beds).`);
  setText($('#roster-help'), canAssign()
    ? `Alarms go to a bed's primary nurse, then to the buddy, the charge nurse and the team. “Change” edits a bed's nurses (Enter saves, Escape cancels).${isAdmin() ? '' : ' An admin sets the charge nurse and the team.'}`
    : 'Alarms go to a bed\'s primary nurse, then to the buddy, the charge nurse and the team. Nurses change the roster (your role may only read it).');
  renderShift(r);
  renderRosterNames();
}

function renderRosterRow(bed, parts, tr, r) {
  const a = r.beds?.[bed] ?? {};
  const editing = state.roster.editing.has(bed);
  const unassigned = !a.primary;
  setData(tr, 'unassigned', unassigned);
  setData(tr, 'editing', editing);
  setData(parts.primaryText, 'unassigned', unassigned);
  setText(parts.primaryText, a.primary ?? `${UNASSIGNED_TEXT}${r.charge ? ` (${r.charge})` : ', and no charge nurse is set'}`);
  setText(parts.buddyText, a.buddy ?? 'none');
  setData(parts.buddyText, 'none', !a.buddy);
  for (const el of [parts.primaryText, parts.buddyText]) el.hidden = editing;
  for (const el of [parts.primary, parts.buddy, parts.save, parts.cancel]) el.hidden = !editing;
  parts.edit.hidden = editing || !canAssign();
}

function startAssign(bed) {
  const e = rosterRows.get(bed);
  const r = state.roster.data?.roster;
  if (!e || !r || !canAssign()) return;
  state.roster.editing.add(bed);
  const a = r.beds?.[bed] ?? {};
  e.parts.primary.value = a.primary ?? '';
  e.parts.buddy.value = a.buddy ?? '';
  for (const el of [e.parts.primary, e.parts.buddy]) el.removeAttribute('aria-invalid');
  setText(e.parts.msg, '');
  setData(e.tr, 'error', false);
  renderRosterRow(bed, e.parts, e.tr, r);
  e.parts.primary.focus();
}

function stopAssign(bed, refocus) {
  const e = rosterRows.get(bed);
  state.roster.editing.delete(bed);
  if (!e) return;
  const r = state.roster.data?.roster;
  if (r) renderRosterRow(bed, e.parts, e.tr, r);
  else e.tr.remove();
  if (refocus && !e.parts.edit.hidden) e.parts.edit.focus();
}

/** The message of a refused roster write, in the words a nurse reads. */
function rosterError(r) {
  if (r.status === 401) return 'Your login is no longer valid: log in again.';
  if (r.status === 403) return 'Your role may not change the roster.';
  return r.json?.error ? `Not saved: ${r.json.error}.` : `Not saved: the hub answered ${r.status}.`;
}

/** Marks the inputs whose name the hub refused (409 names it: "x" is not a user …). */
function markRefused(inputs, error) {
  const named = /"([^"]*)"/.exec(error ?? '')?.[1];
  for (const el of inputs) {
    const bad = named !== undefined && el.value.split(',').map((v) => v.trim()).includes(named);
    if (bad) el.setAttribute('aria-invalid', 'true'); else el.removeAttribute('aria-invalid');
  }
}

async function saveAssign(bed) {
  const e = rosterRows.get(bed);
  if (!e || !state.roster.editing.has(bed) || e.parts.save.disabled) return;
  const value = (el) => el.value.trim() || null;
  const body = { primary: value(e.parts.primary), buddy: value(e.parts.buddy) };
  e.parts.save.disabled = true;
  setText(e.parts.msg, 'Saving…');
  setData(e.tr, 'error', false);
  try {
    const r = await api(`/api/v1/beds/${encodeURIComponent(bed)}/assignment`, { method: 'PUT', body });
    if (r.ok && r.json?.roster) {
      state.roster.gen += 1;
      state.roster.editing.delete(bed);
      rosterKnown(r.json);
      setText(e.parts.msg, 'Saved.');
      e.parts.edit.focus();
      return;
    }
    if (r.status === 404 && !r.json?.error?.includes('bed')) { rosterOff(); return; }
    setText(e.parts.msg, rosterError(r));
    setData(e.tr, 'error', true);
    markRefused([e.parts.primary, e.parts.buddy], r.json?.error);
    ($('[aria-invalid="true"]', e.tr) ?? e.parts.primary).focus();
  } catch {
    setText(e.parts.msg, 'The hub cannot be reached: not saved.');
    setData(e.tr, 'error', true);
  } finally {
    e.parts.save.disabled = false;
  }
}

function renderShift(r) {
  const ro = state.roster;
  const charge = $('#roster-charge');
  setText(charge, r.charge ?? 'None set: alarms of unassigned beds reach nobody until the team is told');
  setData(charge, 'none', !r.charge);
  setText($('#roster-team'), r.team?.length ? r.team.join(', ') : 'Nobody');
  $('#roster-shift-form').hidden = !ro.shiftEditing;
  $('#roster-shift-edit').hidden = ro.shiftEditing || !isAdmin();
}

function startShiftEdit() {
  const r = state.roster.data?.roster;
  if (!r || !isAdmin()) return;
  state.roster.shiftEditing = true;
  $('#roster-charge-input').value = r.charge ?? '';
  $('#roster-team-input').value = (r.team ?? []).join(', ');
  for (const el of [$('#roster-charge-input'), $('#roster-team-input')]) el.removeAttribute('aria-invalid');
  setText($('#roster-shift-msg'), '');
  setData($('#roster-shift-msg'), 'error', false);
  renderShift(r);
  $('#roster-charge-input').focus();
}

function stopShiftEdit(refocus) {
  state.roster.shiftEditing = false;
  const r = state.roster.data?.roster;
  if (r) renderShift(r);
  if (refocus && !$('#roster-shift-edit').hidden) $('#roster-shift-edit').focus();
}

async function saveShift(ev) {
  ev.preventDefault();
  const btn = $('#roster-shift-save');
  if (btn.disabled || !state.roster.shiftEditing) return;
  const msg = $('#roster-shift-msg');
  const charge = $('#roster-charge-input').value.trim() || null;
  const team = [...new Set($('#roster-team-input').value.split(',').map((x) => x.trim()).filter(Boolean))];
  btn.disabled = true;
  setText(msg, 'Saving…');
  setData(msg, 'error', false);
  try {
    // PUT replaces the whole roster: start from the hub's beds as they are now, so that a
    // bed assigned since this page last asked is kept.
    const cur = await api('/api/v1/roster');
    if (cur.status === 404) { rosterOff(); return; }
    if (!cur.ok || !cur.json?.roster) { setText(msg, rosterError(cur)); setData(msg, 'error', true); return; }
    const r = await api('/api/v1/roster', { method: 'PUT', body: { beds: cur.json.roster.beds ?? {}, charge, team } });
    if (r.ok && r.json?.roster) {
      state.roster.gen += 1;
      state.roster.shiftEditing = false;
      rosterKnown(r.json);
      setText(msg, 'Saved.');
      $('#roster-shift-edit').focus();
      return;
    }
    if (r.status === 404) { rosterOff(); return; }
    setText(msg, rosterError(r));
    setData(msg, 'error', true);
    markRefused([$('#roster-charge-input'), $('#roster-team-input')], r.json?.error);
    ($('#roster-shift-form [aria-invalid="true"]') ?? $('#roster-charge-input')).focus();
  } catch {
    setText(msg, 'The hub cannot be reached: not saved.');
    setData(msg, 'error', true);
  } finally {
    btn.disabled = false;
  }
}

/** The names the inputs offer: everyone on the roster, this user, and (an admin) the hub's
 *  users who may take alarms. Free text still: the hub checks the name. */
function renderRosterNames() {
  const r = state.roster.data?.roster;
  const names = new Map(); // name -> role, if known
  for (const u of state.roster.users ?? []) names.set(u.name, u.role);
  if (state.user?.name && state.user.role !== 'viewer') names.set(state.user.name, state.user.role);
  for (const a of Object.values(r?.beds ?? {})) for (const n of [a.primary, a.buddy]) if (n && !names.has(n)) names.set(n, null);
  for (const n of [r?.charge, ...(r?.team ?? [])]) if (n && !names.has(n)) names.set(n, null);
  const list = $('#roster-names');
  const sorted = [...names].sort((x, y) => x[0].localeCompare(y[0]));
  const key = JSON.stringify(sorted);
  if (list.dataset.key === key) return;
  list.dataset.key = key;
  list.replaceChildren(...sorted.map(([name, role]) => h('option', { value: name, label: role ?? undefined })));
}

// ---------------------------------------------------------------- alarm stream

function connectStream() {
  clearTimeout(state.sse.timer);
  state.sse.nextAt = 0;
  if (state.sse.es) state.sse.es.close();
  const es = new EventSource('/api/v1/alarms/stream');
  state.sse.es = es;
  es.addEventListener('snapshot', (e) => {
    if (state.sse.es !== es) return;
    const data = JSON.parse(e.data);
    state.alarms = new Map(data.alarms.map((a) => [a.id, a]));
    state.sse.open = true;
    state.sse.retry = 0;
    renderAlarms();
    renderWard();
    // A new stream after a gap: refresh the numerics at once too.
    pollWard();
  });
  es.addEventListener('transition', (e) => {
    if (state.sse.es !== es) return;
    applyTransition(JSON.parse(e.data), true);
  });
  es.addEventListener('resync', () => {
    // The hub dropped us for being slow: start again from a snapshot.
    if (state.sse.es !== es) return;
    es.close();
    state.sse.es = null;
    state.sse.open = false;
    connectStream();
  });
  es.onerror = () => {
    if (state.sse.es !== es) return;
    if (!state.user) { es.close(); state.sse.es = null; return; }
    // Our own backoff instead of EventSource's: close and schedule.
    es.close();
    state.sse.es = null;
    state.sse.open = false;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.sse.retry);
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    state.sse.retry = Math.min(state.sse.retry + 1, 10);
    state.sse.nextAt = Date.now() + delay;
    state.sse.timer = setTimeout(connectStream, delay);
    updateLive();
  };
}

function applyTransition(t, announceIt) {
  const a = t.alarm;
  if (t.event === 'suppressed') return;
  const old = state.alarms.get(a.id);
  if (old && old.updated_at > a.updated_at) return; // an older copy (our own ack reply raced it)
  if (a.state === 'cleared' || a.state === 'suppressed') state.alarms.delete(a.id);
  else state.alarms.set(a.id, a);
  if (announceIt && ['raised', 'priority_changed', 'reannounced', 'escalated', 'condition_returned'].includes(t.event)) {
    const what = `${t.event === 'escalated' ? 'Escalated: ' : ''}${PRIORITY_TEXT[a.priority]} priority alarm`;
    setText($('#announce'), `${what}, ${a.bed ?? a.device_id}: ${alarmText(a)}`);
    sound.kick();
  }
  renderAlarms();
  renderWard();
  if (state.detail && state.detail.bed === a.bed) loadHistory();
}

// ---------------------------------------------------------------- alarm list

function alarmText(a) {
  const sources = a.sources ?? [];
  if (a.kind === 'technical' || a.cause !== 'limit') {
    const cause = CAUSE_TEXT[a.cause] ?? a.cause;
    // Sensor off is one alarm per device: name every metric without signal.
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
  const unit = unitText(m.unit);
  const limit = a.limit != null ? ` (limit ${fmtValue(m.name, a.limit)})` : '';
  const condition = CONDITION_TEXT[a.condition] ? `${CONDITION_TEXT[a.condition]}: ` : '';
  // The other devices and metrics that show the same condition.
  const others = sources
    .filter((s) => !(s.device_id === a.device_id && s.metric?.name === m.name))
    .map((s) => {
      const n = s.metric?.name ?? '?';
      const where = s.device_id === a.device_id ? '' : ` ${s.device_id}`;
      return `${METRIC_LABEL[n] ?? n} ${fmtValue(n, s.value)}${where}`;
    });
  const also = others.length ? ` · also ${others.join(', ')}` : '';
  return `${condition}${METRIC_LABEL[m.name] ?? m.name} ${side} ${fmtValue(m.name, a.value)} ${unit}${limit}${also}`;
}

function sortedAlarms() {
  return [...state.alarms.values()].sort((x, y) =>
    (PRIORITY_RANK[y.priority] - PRIORITY_RANK[x.priority])
    // Within a priority, the alarm waiting longest first.
    || (x.raised_at - y.raised_at)
    || x.id.localeCompare(y.id));
}

const alarmEls = new Map(); // alarm id -> { li, parts }

function alarmElement(a) {
  let e = alarmEls.get(a.id);
  if (e) return e;
  const parts = {
    prio: h('span', { class: 'prio' }),
    kind: h('span', { class: 'kind' }),
    esc: h('span', { class: 'esc', hidden: true }, 'ESCALATED'),
    bed: h('span', { class: 'alarm-bed' }),
    text: h('div', { class: 'alarm-text' }),
    meta: h('div', { class: 'alarm-meta' }),
    ackMeta: h('div', { class: 'alarm-meta ack' }),
    who: h('div', { class: 'alarm-meta who', hidden: true }),
    ack: h('button', { type: 'button', class: 'primary', dataset: { action: 'ack' } }, 'Acknowledge…'),
    pause: h('button', { type: 'button', dataset: { action: 'pause' }, title: 'Pause the sound of this alarm (2 min unless configured otherwise)' }, 'Pause audio'),
  };
  parts.ack.addEventListener('click', () => startAck(a.id));
  parts.pause.addEventListener('click', () => pauseAlarm(a.id));
  const li = h('li', { class: 'alarm', dataset: { alarmId: a.id } },
    h('div', { class: 'alarm-top' }, parts.prio, parts.bed, parts.kind, parts.esc),
    parts.text, parts.meta, parts.ackMeta, parts.who,
    h('div', { class: 'alarm-actions' }, parts.ack, parts.pause));
  // Every flashing alarm flashes in phase, whenever it appeared.
  li.style.animationDelay = `-${Math.round(performance.now() % 2000)}ms`;
  e = { li, parts };
  alarmEls.set(a.id, e);
  $('#alarms').append(li);
  return e;
}

function renderAlarms() {
  const list = sortedAlarms();
  const now = hubNow();
  const seen = new Set();
  list.forEach((a, i) => {
    seen.add(a.id);
    const { li, parts } = alarmElement(a);
    li.style.order = String(i);
    setData(li, 'prio', a.priority);
    setData(li, 'state', a.state);
    setData(li, 'kind', a.kind);
    setData(li, 'bed', a.bed ?? '');
    setText(parts.prio, `${PRIORITY_MARK[a.priority]} ${PRIORITY_TEXT[a.priority]}`);
    setText(parts.kind, KIND_TAG[a.kind] ?? 'PHYSIO');
    setData(parts.kind, 'kind', a.kind);
    parts.esc.hidden = !a.escalated_at;
    if (a.escalated_at) setText(parts.esc, `ESCALATED ${clockText(a.escalated_at, false)}`);
    setText(parts.bed, a.bed ?? 'no bed');
    setText(parts.text, alarmText(a));
    const bits = [`raised ${clockText(a.raised_at)} · ${ageText(now - a.raised_at)} ago`];
    if (!a.condition_present) bits.push('condition ended (latched)');
    if (a.audio_paused_until && a.audio_paused_until > now) bits.push(`audio paused until ${clockText(a.audio_paused_until)}`);
    setText(parts.meta, bits.join(' · '));
    if (a.state === 'acknowledged') {
      const reason = a.ack_reason ? ` — ${REASON_TEXT[a.ack_reason] ?? a.ack_reason}` : '';
      const note = a.ack_note ? `: “${a.ack_note}”` : '';
      setText(parts.ackMeta, `Acknowledged by ${a.acknowledged_by ?? '?'} at ${clockText(a.acknowledged_at ?? a.updated_at)}${reason}${note}`);
    } else {
      setText(parts.ackMeta, '');
    }
    renderWho(li, parts.who, state.dissemination.byAlarm.get(a.id));
    parts.ack.hidden = a.state !== 'active';
    parts.pause.hidden = a.state !== 'active' || (a.audio_paused_until && a.audio_paused_until > now);
    li.setAttribute('aria-label', `${PRIORITY_TEXT[a.priority]} priority ${a.kind} alarm, ${a.bed ?? ''}: ${alarmText(a)}, ${a.state}`);
  });
  for (const [id, e] of alarmEls) {
    if (!seen.has(id)) {
      const hadFocus = e.li.contains(document.activeElement);
      e.li.remove();
      alarmEls.delete(id);
      if (hadFocus) $('#alarms').focus();
    }
  }
  setText($('#alarm-count'), String(list.length));
  $('#no-alarms').hidden = list.length > 0;
}

/** Who took the alarm (data-accepted-by, for tests too), or whom it is being sent to. */
function renderWho(li, el, d) {
  let text = '';
  if (d?.accepted_by) {
    const at = Date.parse(d.accepted_at ?? '');
    text = `Accepted by ${d.accepted_by}${Number.isFinite(at) ? ` at ${clockText(at)}` : ''}`;
    setData(li, 'acceptedBy', d.accepted_by);
  } else {
    if (d?.with?.length) text = `Sent to ${d.with.join(', ')}`;
    if ('acceptedBy' in li.dataset) delete li.dataset.acceptedBy;
  }
  setText(el, text);
  el.hidden = !text;
}

// ---------------------------------------------------------------- ward tiles

const tileEls = new Map(); // bed -> { tile, parts }
const TILE_NUMS = [
  { key: 'hr', label: 'HR', pick: ['hr', 'pr'] },
  { key: 'spo2', label: 'SpO₂', pick: ['spo2'] },
  { key: 'rr', label: 'RR', pick: ['rr'] },
  { key: 'nibp', label: 'NIBP', pick: ['nibp_sys'], small: true, wide: true },
  { key: 'temp', label: 'Temp', pick: ['temp'], small: true },
];

function tileElement(bed) {
  let e = tileEls.get(bed);
  if (e) return e;
  const nums = {};
  const numEls = TILE_NUMS.map((n) => {
    const parts = {
      el: null,
      lbl: h('span', { class: 'lbl' }, n.label),
      val: null,
      text: h('span', {}, '—'),
      extra: h('span', { class: 'extra' }),
      age: h('span', { class: 'age' }),
    };
    parts.val = h('span', { class: 'val' }, parts.text, parts.extra);
    parts.el = h('span', { class: `num${n.small ? ' small' : ''}${n.wide ? ' wide' : ''}`, dataset: { metric: n.key } },
      h('span', { class: 'nhead' }, parts.lbl, parts.age), parts.val);
    nums[n.key] = parts;
    return parts.el;
  });
  const parts = {
    label: h('span', { class: 'bed-label' }, bed),
    badge: h('span', { class: 'badge' }),
    // Who is in the bed, as far as the hub's display policy lets it say.
    patient: h('span', { class: 'patient' }),
    // IEC 60601-1-8: an ALARM OFF state is indicated for as long as it lasts.
    off: h('span', { class: 'alarm-off', hidden: true }),
    // No primary nurse on the roster (dissemination on): its alarms go to the charge nurse.
    unassigned: h('span', { class: 'unassigned-tag', hidden: true, title: UNASSIGNED_TEXT }, 'unassigned'),
    nums,
    points: h('span', { class: 'points' }),
  };
  const tile = h('button', { type: 'button', class: 'tile', dataset: { bed } },
    h('span', { class: 'tile-head' }, parts.label, parts.badge),
    h('span', { class: 'tile-sub' }, parts.patient, parts.unassigned),
    parts.off,
    h('span', { class: 'nums' }, numEls),
    parts.points);
  tile.addEventListener('click', () => openBed(bed));
  tile.style.animationDelay = `-${Math.round(performance.now() % 2000)}ms`;
  e = { tile, parts };
  tileEls.set(bed, e);
  return e;
}

/** The worst open alarm of each bed, and the metrics in alarm. */
function bedAlarms() {
  const out = new Map();
  for (const a of state.alarms.values()) {
    if (!a.bed) continue;
    const b = out.get(a.bed) ?? { prio: null, active: false, count: 0, metrics: new Map(), offline: new Set() };
    b.count += 1;
    if (!b.prio || PRIORITY_RANK[a.priority] > PRIORITY_RANK[b.prio]) {
      b.prio = a.priority;
      b.active = a.state === 'active';
    } else if (a.priority === b.prio && a.state === 'active') {
      b.active = true;
    }
    if (a.cause === 'offline') b.offline.add(a.device_id);
    if (a.kind === 'physiological') {
      // Every metric that shows the condition (HR and PR of one tachycardia) takes its colour.
      const metrics = (a.sources?.length ? a.sources.map((x) => x.metric) : [a.metric]).filter(Boolean);
      for (const m of metrics) {
        const prev = b.metrics.get(m.name);
        if (!prev || PRIORITY_RANK[a.priority] > PRIORITY_RANK[prev]) b.metrics.set(m.name, a.priority);
      }
    }
    out.set(a.bed, b);
  }
  return out;
}

function renderWard() {
  setText($('#ward-name'), state.ward);
  const container = $('#beds');
  const alarms = bedAlarms();
  const names = [...state.beds.keys()];
  // Beds with alarms but (not yet) in the ward view still get a tile.
  for (const b of alarms.keys()) if (!state.beds.has(b)) names.push(b);
  const wanted = new Set(names);
  for (const [bed, e] of tileEls) {
    if (!wanted.has(bed)) { e.tile.remove(); tileEls.delete(bed); }
  }
  names.forEach((bed, i) => {
    const { tile, parts } = tileElement(bed);
    if (tile.parentNode !== container) container.append(tile);
    tile.style.order = String(i);
    const al = alarms.get(bed);
    setData(tile, 'prio', al ? al.prio : 'none');
    setData(tile, 'active', al ? al.active : false);
    setText(parts.badge, al ? `${PRIORITY_MARK[al.prio]} ${PRIORITY_TEXT[al.prio]}${al.count > 1 ? ` ×${al.count}` : ''}` : 'no alarm');
    const data = state.beds.get(bed);
    setData(tile, 'admitted', Boolean(data?.admitted));
    setText(parts.patient, patientText(data));
    const ch = data?.alarm_change;
    parts.off.hidden = !ch;
    setData(tile, 'alarmOff', ch ? (ch.off.length ? 'off' : 'widened') : 'none');
    if (ch) setText(parts.off, changeText(ch));
    const unassigned = bedUnassigned(bed);
    parts.unassigned.hidden = !unassigned;
    setData(tile, 'unassigned', unassigned);
    renderNums(parts, data, al);
    renderPoints(parts.points, data, al?.offline);
    tile.setAttribute('aria-label', tileLabel(bed, data, al));
  });
  $('#no-beds').hidden = names.length > 0;
  renderChanges();
}

/** "ALARM OFF HR · until 14:00" / "LIMITS WIDENED SpO2". */
function changeText(ch) {
  const names = (l) => l.map((m) => m.toUpperCase().replace('_', ' ')).join(', ');
  const parts = [];
  if (ch.off.length) parts.push(`ALARM OFF ${names(ch.off)}`);
  if (ch.widened.length) parts.push(`LIMITS WIDENED ${names(ch.widened)}`);
  if (!parts.length) parts.push('LIMITS CHANGED');
  if (ch.until_ms) parts.push(`until ${clockText(ch.until_ms, false)}`);
  return parts.join(' · ');
}

/** The alarm list's part for beds whose alarms are off or widened: who, why, until when. */
function renderChanges() {
  const list = $('#alarm-changes');
  if (!list) return;
  const items = [...state.beds.values()].filter((b) => b.alarm_change);
  list.replaceChildren(...items.map((b) => {
    const ch = b.alarm_change;
    return h('li', { class: 'alarm-change', dataset: { bed: b.bed, kind: ch.off.length ? 'off' : 'widened' } },
      h('span', { class: 'bed' }, b.bed), ' ',
      h('span', { class: 'what' }, changeText(ch)),
      h('span', { class: 'meta' }, ` — by ${ch.by}: “${ch.reason}”`));
  }));
  list.hidden = items.length === 0;
}

function numeric(data, names) {
  for (const n of names) {
    const v = data?.latest?.[n];
    if (v) return { name: n, ...v };
  }
  return null;
}

/** Age now of a numeric of the last ward response. */
function ageOf(v) { return v.age_ms + (Date.now() - state.fetchedAt); }

function renderNums(parts, data, al) {
  for (const n of TILE_NUMS) {
    const p = parts.nums[n.key];
    const v = numeric(data, n.pick);
    if (!v) {
      setText(p.text, '—');
      setText(p.extra, '');
      setText(p.age, '');
      setData(p.el, 'stale', false);
      setData(p.el, 'alarm', 'none');
      continue;
    }
    if (n.key === 'hr') setText(p.lbl, v.name === 'hr' ? 'HR' : 'PR');
    let text = fmtValue(v.name, v.value);
    let extra = '';
    if (n.key === 'nibp') {
      const dia = data.latest.nibp_dia;
      const mean = data.latest.nibp_mean;
      text = `${text}/${dia ? fmtValue('nibp_dia', dia.value) : '—'}`;
      if (mean) extra = `(${fmtValue('nibp_mean', mean.value)})`;
    }
    // Unusable data is never shown as a number (8388607 is 11073's "not available").
    const unusable = v.status === 'invalid' || v.status === 'not-available';
    if (unusable) { text = '—'; extra = ''; }
    if (v.status === 'questionable') text += '?';
    setText(p.text, text);
    setText(p.extra, extra);
    setData(p.el, 'status', v.status);
    const age = ageOf(v);
    const stale = age > staleAfterMs(v.name);
    setData(p.el, 'stale', stale);
    const flag = unusable ? (v.status === 'invalid' ? 'INVALID ' : 'N/A ') : stale ? 'STALE ' : '';
    setText(p.age, `${flag}${ageText(age)}`);
    let alarm = 'none';
    for (const name of n.key === 'nibp' ? ['nibp_sys', 'nibp_dia', 'nibp_mean'] : [v.name]) {
      const pr = al?.metrics.get(name);
      if (pr && (alarm === 'none' || PRIORITY_RANK[pr] > PRIORITY_RANK[alarm])) alarm = pr;
    }
    setData(p.el, 'alarm', alarm);
    p.el.title = `${METRIC_LABEL[v.name] ?? v.name}: ${text}${extra ? ` ${extra}` : ''} ${unitText(v.unit)}, ${ageText(age)} old${stale ? ' (stale)' : ''}, from ${v.device_id}`;
  }
}

function renderPoints(container, data, offline) {
  const order = Object.keys(SLOT_LABEL);
  const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
  const slots = (data?.slots?.length ? [...data.slots]
    : (data?.devices ?? []).map((d) => ({ kind: d.kind, device: d.id, connection: d.connection })))
    .sort((a, b) => rank(a.kind) - rank(b.kind))
    // An open "device offline" alarm wins: the tile must not contradict the alarm list.
    .map((s) => (s.device && offline?.has(s.device) ? { ...s, connection: 'offline' } : s));
  const key = JSON.stringify(slots.map((s) => [s.kind, s.device, s.connection]));
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  const mark = { online: '✓', offline: '✕', unknown: '?', empty: '–' };
  container.replaceChildren(...slots.map((s) => {
    const label = SLOT_LABEL[s.kind] ?? s.device ?? s.kind;
    const name = SLOT_NAME[s.kind] ?? s.kind;
    const title = s.device ? `${name} ${s.device}: ${s.connection}` : `${name}: none bound`;
    return h('span', { class: 'pt', dataset: { conn: s.connection, kind: s.kind }, title }, `${label} ${mark[s.connection] ?? ''}`);
  }));
}

/** "J.S." / "Jane Smith" / "Patient admitted" / "No patient". */
function patientText(data) {
  if (!data?.admitted) return 'No patient';
  return data.patient?.label || 'Patient admitted';
}

function tileLabel(bed, data, al) {
  const bits = [`Bed ${bed}`, patientText(data)];
  bits.push(al ? `${PRIORITY_TEXT[al.prio]} priority alarm` : 'no alarm');
  for (const n of TILE_NUMS) {
    const v = numeric(data, n.pick);
    if (!v) continue;
    const unusable = v.status === 'invalid' || v.status === 'not-available';
    bits.push(`${n.label} ${unusable ? v.status : fmtValue(v.name, v.value)}${ageOf(v) > staleAfterMs(v.name) ? ' stale' : ''}`);
  }
  const offline = (data?.slots ?? []).filter((s) => s.connection === 'offline').map((s) => SLOT_NAME[s.kind] ?? s.kind);
  if (offline.length) bits.push(`offline: ${offline.join(', ')}`);
  if (bedUnassigned(bed)) bits.push('no nurse assigned, alarms go to the charge nurse');
  return `${bits.join(', ')}. Open details.`;
}

/** Once a second: ages, the clock, liveness, sound. */
function tick() {
  const now = hubNow();
  setText($('#clock'), state.poll.lastOk ? clockText(now) : '--:--:--');
  const alarms = bedAlarms();
  for (const [bed, { parts }] of tileEls) renderNums(parts, state.beds.get(bed), alarms.get(bed));
  renderAlarms();
  updateLive();
  sound.tick();
}

// ---------------------------------------------------------------- login, ack, pause

function openDialog(d) {
  if (!d.open) d.showModal();
}

function renderUser() {
  setText($('#user'), state.user ? `${state.user.name} (${state.user.role})` : 'Not logged in');
  setText($('#login-btn'), state.user ? 'Log out' : 'Log in');
}

/** Nothing of the ward is shown without a login: the session ended or never began. */
function loggedOut() {
  const was = state.user;
  state.user = null;
  renderUser();
  document.body.dataset.auth = 'none';
  if (state.sse.es) { state.sse.es.close(); state.sse.es = null; state.sse.open = false; }
  state.alarms = new Map();
  state.beds = new Map();
  state.dissemination.byAlarm = new Map();
  forgetRoster();
  renderAlarms();
  renderWard();
  if (was !== null && !$('#login-dialog').open) requireLogin(null);
}

/** A login began (or an existing session was found): show the ward. */
function loggedIn(user) {
  state.user = user;
  document.body.dataset.auth = 'ok';
  renderUser();
  connectStream();
  pollWard();
  openFromHash();
}

async function checkSession() {
  try {
    const r = await api('/api/v1/me');
    if (r.ok) { loggedIn(r.json); return; }
  } catch { /* offline: the login dialog says so on submit */ }
  state.user = undefined;
  loggedOut();
}

function requireLogin(then) {
  state.afterLogin = then;
  $('#login-error').textContent = '';
  $('#token-input').value = '';
  openDialog($('#login-dialog'));
  $('#token-input').focus();
}

async function submitLogin(ev) {
  ev.preventDefault();
  const token = $('#token-input').value.trim();
  if (!token) return;
  $('#login-submit').disabled = true;
  try {
    const r = await fetch('/api/v1/session', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ token }), cache: 'no-store',
    });
    $('#token-input').value = '';
    if (r.status === 401) { $('#login-error').textContent = 'This token is not known to the hub, has expired or was revoked.'; return; }
    if (r.status === 429) { $('#login-error').textContent = 'Too many failed logins from this place: wait a few minutes.'; return; }
    if (!r.ok) { $('#login-error').textContent = `The hub answered ${r.status}.`; return; }
    $('#login-dialog').close();
    loggedIn(await r.json());
    const then = state.afterLogin;
    state.afterLogin = null;
    if (then) then();
  } catch {
    $('#login-error').textContent = 'The hub cannot be reached.';
  } finally {
    $('#login-submit').disabled = false;
  }
}

function startAck(id) {
  if (!state.user) { requireLogin(() => startAck(id)); return; }
  const a = state.alarms.get(id);
  if (!a) return;
  state.ackTarget = id;
  setText($('#ack-what'), `${PRIORITY_MARK[a.priority]} ${PRIORITY_TEXT[a.priority]} · ${a.bed ?? ''} · ${alarmText(a)}`);
  $('#ack-error').textContent = '';
  $('#ack-note').value = '';
  $('#ack-form').reason.value = 'actionable';
  openDialog($('#ack-dialog'));
  $('#ack-form').querySelector('input[name="reason"]:checked').focus();
}

/** Applies the transitions of a write's reply at once (the stream brings them too). */
function applyReply(json) {
  for (const t of json?.transitions ?? []) applyTransition(t, false);
}

async function authError(r, errorEl) {
  if (r.status === 401) {
    errorEl.textContent = 'Your login is no longer valid: log in again.';
    return true;
  }
  if (r.status === 403) { errorEl.textContent = 'Your role may not do this.'; return true; }
  return false;
}

async function submitAck(ev) {
  ev.preventDefault();
  const id = state.ackTarget;
  const form = $('#ack-form');
  const body = { reason: form.reason.value };
  const note = $('#ack-note').value.trim();
  if (note) body.note = note;
  $('#ack-submit').disabled = true;
  try {
    const r = await api(`/api/v1/alarms/${encodeURIComponent(id)}/ack`, { method: 'POST', body });
    if (r.ok || r.status === 409) { applyReply(r.json); $('#ack-dialog').close(); return; }
    if (await authError(r, $('#ack-error'))) return;
    $('#ack-error').textContent = r.json?.error ?? `The hub answered ${r.status}.`;
  } catch {
    $('#ack-error').textContent = 'The hub cannot be reached: not acknowledged.';
  } finally {
    $('#ack-submit').disabled = false;
  }
}

async function pauseAlarm(id) {
  if (!state.user) { requireLogin(() => pauseAlarm(id)); return; }
  await sendPause(`/api/v1/alarms/${encodeURIComponent(id)}/pause`, () => pauseAlarm(id));
}

async function pauseBed() {
  const bed = state.detail?.bed;
  if (!bed) return;
  if (!state.user) { requireLogin(() => pauseBed()); return; }
  await sendPause(`/api/v1/beds/${encodeURIComponent(bed)}/pause`, () => pauseBed());
}

async function sendPause(path, retry) {
  const status = $('#bed-dialog').open ? $('#bed-status') : $('#announce');
  try {
    const r = await api(path, { method: 'POST', body: {} });
    if (r.ok) { applyReply(r.json); setText(status, 'Audio paused.'); return; }
    if (r.status === 401) { await authError(r, status); requireLogin(retry); return; }
    if (await authError(r, status)) return;
    setText(status, r.json?.error ?? `The hub answered ${r.status}.`);
  } catch {
    setText(status, 'The hub cannot be reached: audio not paused.');
  }
}

// ---------------------------------------------------------------- sound (Web Audio)

/** Optional alarm sounds, off by default, remembered per browser. Patterns follow the
 *  spirit of IEC 60601-1-8: high = two bursts of 5 fast pulses, medium = 3 pulses,
 *  low = 2 slow pulses; repeated while an unacknowledged, un-paused alarm is active. */
const sound = {
  on: localStorage.getItem('wardhub.sound') === 'on',
  ctx: null,
  lastAt: 0,
  lastPrio: null,
  ensure() {
    if (!this.on) return null;
    try {
      if (!this.ctx) this.ctx = new AudioContext();
      if (this.ctx.state === 'suspended') this.ctx.resume();
    } catch { return null; }
    return this.ctx;
  },
  render() {
    const b = $('#sound-toggle');
    b.setAttribute('aria-pressed', String(this.on));
    const blocked = this.on && this.ctx && this.ctx.state !== 'running';
    setText(b, this.on ? (blocked ? 'Sound: on (click to enable)' : 'Sound: on') : 'Sound: off');
  },
  toggle() {
    this.on = !this.on;
    localStorage.setItem('wardhub.sound', this.on ? 'on' : 'off');
    if (this.on) this.ensure(); else if (this.ctx) this.ctx.suspend();
    this.lastAt = 0;
    this.render();
  },
  pulses(freq, starts, len) {
    const ctx = this.ensure();
    if (!ctx || ctx.state !== 'running') return;
    const t0 = ctx.currentTime + 0.05;
    for (const s of starts) {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.type = 'square';
      o.frequency.value = freq;
      g.gain.setValueAtTime(0, t0 + s);
      g.gain.linearRampToValueAtTime(0.15, t0 + s + 0.02);
      g.gain.setValueAtTime(0.15, t0 + s + len - 0.03);
      g.gain.linearRampToValueAtTime(0, t0 + s + len);
      o.connect(g).connect(ctx.destination);
      o.start(t0 + s);
      o.stop(t0 + s + len + 0.02);
    }
  },
  play(prio) {
    if (prio === 'high') this.pulses(880, [0, 0.25, 0.5, 1.0, 1.25, 2.0, 2.25, 2.5, 3.0, 3.25], 0.15);
    else if (prio === 'medium') this.pulses(660, [0, 0.35, 0.7], 0.2);
    else this.pulses(440, [0, 0.6], 0.3);
  },
  /** The priority that should sound now, if any. */
  wanted() {
    const now = hubNow();
    let best = null;
    for (const a of state.alarms.values()) {
      if (a.state !== 'active') continue;
      if (a.audio_paused_until && a.audio_paused_until > now) continue;
      if (!best || PRIORITY_RANK[a.priority] > PRIORITY_RANK[best]) best = a.priority;
    }
    return best;
  },
  tick() {
    if (!this.on) return;
    const prio = this.wanted();
    if (!prio) { this.lastPrio = null; return; }
    const every = { high: 7000, medium: 15000, low: 30000 }[prio];
    const now = Date.now();
    if (prio !== this.lastPrio || now - this.lastAt >= every) {
      this.lastPrio = prio;
      this.lastAt = now;
      this.play(prio);
    }
    this.render();
  },
  kick() { this.lastAt = 0; },
};

// ---------------------------------------------------------------- bed detail

const CHARTS = [
  { title: 'Heart rate', series: [['hr', 'HR', '#3ee07a'], ['pr', 'PR (SpO₂)', '#9be7b3']], limits: 'hr' },
  { title: 'SpO₂', series: [['spo2', 'SpO₂', '#4fc3ff']], limits: 'spo2' },
  { title: 'NIBP', series: [['nibp_sys', 'sys', '#ffffff'], ['nibp_dia', 'dia', '#c0c7cf'], ['nibp_mean', 'mean', '#8a939c']], limits: 'nibp_sys', limits2: 'nibp_dia' },
  { title: 'Respiratory rate', series: [['rr', 'RR', '#ffe082']], limits: 'rr' },
  { title: 'Temperature', series: [['temp', 'Temp', '#ff9e80']], limits: 'temp' },
  { title: 'etCO₂', series: [['etco2', 'etCO₂', '#e1bee7']], limits: 'etco2', optional: true },
];

/** A deep link to a bed's detail and trends: `/#bed=bed-01` (the phone page links here). */
function bedFromHash() {
  const m = /^#bed=(.+)$/.exec(location.hash);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

function openFromHash() {
  const bed = bedFromHash();
  if (bed && state.user && state.detail?.bed !== bed) openBed(bed);
}

function openBed(bed) {
  const d = $('#bed-dialog');
  state.detail = { bed, range: state.detail?.range ?? '1h', timer: 0, trends: null };
  setText($('#bed-h'), `Bed ${bed}`);
  setText($('#bed-status'), 'Loading…');
  $('#charts').replaceChildren();
  $('#history tbody').replaceChildren();
  for (const b of d.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === state.detail.range));
  openDialog(d);
  loadDetail();
}

function closeBed() {
  if (state.detail) clearTimeout(state.detail.timer);
  state.detail = null;
  // Closed: a reload shows the ward, not the bed of the link that opened it.
  if (bedFromHash()) history.replaceState(null, '', location.pathname + location.search);
}

async function loadDetail() {
  const det = state.detail;
  if (!det) return;
  clearTimeout(det.timer);
  const box = $('#charts');
  if (box.dataset.drawn !== `${det.bed} ${det.range}`) delete box.dataset.drawn;
  try {
    const r = await api(`/api/v1/beds/${encodeURIComponent(det.bed)}/trends?range=${det.range}`, { timeout: 15000 });
    if (state.detail !== det) return;
    if (!r.ok) throw new Error(r.json?.error ?? `HTTP ${r.status}`);
    det.trends = r.json;
    drawCharts();
    const res = r.json.resolution === 'raw' ? 'raw values' : 'one-minute rollups (mean, band = min–max)';
    setText($('#bed-status'), `Last ${det.range.replace('h', ' h')}, ${res}. Dashed lines: alarm limits (yellow), severe limits (red). Updated ${clockText(hubNow())}.`);
  } catch (e) {
    if (state.detail === det) setText($('#bed-status'), `Trends could not be loaded: ${e.message}`);
  }
  loadHistory();
  if (state.detail === det) det.timer = setTimeout(loadDetail, det.range === '1h' ? 10000 : 60000);
}

async function loadHistory() {
  const det = state.detail;
  if (!det) return;
  const hours = parseInt(det.range, 10);
  const from = Math.round(hubNow() - Math.max(hours, 24) * 3600000);
  try {
    // Oldest first, a page at a time: follow `next` so that a busy bed's newest transitions
    // are not the ones left out (at most 5 pages of 10,000).
    let all = [];
    let cursor = '';
    for (let page = 0; page < 5; page++) {
      const r = await api(`/api/v1/alarms/history?bed=${encodeURIComponent(det.bed)}&from=${from}&limit=10000${cursor}`, { timeout: 15000 });
      if (state.detail !== det || !r.ok) return;
      all = all.concat(r.json.transitions ?? []);
      if (!r.json.next) break;
      cursor = `&cursor=${encodeURIComponent(r.json.next)}`;
    }
    const rows = all
      .sort((x, y) => y.at - x.at)
      .slice(0, 300)
      .map((t) => {
        const a = t.alarm;
        const reason = t.event === 'acknowledged'
          ? [a.ack_reason ? REASON_TEXT[a.ack_reason] ?? a.ack_reason : '', a.ack_note ?? ''].filter(Boolean).join(': ')
          : (t.note ?? '');
        return h('tr', { dataset: { event: t.event } },
          h('td', {}, clockText(t.at)),
          h('td', {}, t.event.replace(/_/g, ' ')),
          h('td', {}, `${PRIORITY_MARK[a.priority]} ${PRIORITY_TEXT[a.priority]}`),
          h('td', {}, `${KIND_TAG[a.kind] ? `[${KIND_TAG[a.kind]}] ` : ''}${alarmText(a)}`),
          h('td', {}, t.by ?? ''),
          h('td', {}, reason));
      });
    const body = $('#history tbody');
    if (rows.length) body.replaceChildren(...rows);
    else body.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, 'No alarms in the last 24 h.')));
  } catch { /* shown as not live anyway */ }
}

function drawCharts() {
  const det = state.detail;
  if (!det?.trends) return;
  const t = det.trends;
  const box = $('#charts');
  const existing = new Map([...box.children].map((c) => [c.dataset.chart, c]));
  const keep = [];
  for (const c of CHARTS) {
    const present = c.series.filter(([name]) => t.series[name]?.points?.length);
    if (c.optional && !present.length) continue;
    let el = existing.get(c.title);
    if (!el) {
      el = h('figure', { class: 'chart', dataset: { chart: c.title } },
        h('h4', {}), h('canvas', { role: 'img' }));
    }
    keep.push(el);
    const unit = unitText(present.length ? t.series[present[0][0]].unit : '');
    const latest = present.map(([name, label]) => {
      const pts = t.series[name].points;
      return `${label} ${fmtValue(name, pts[pts.length - 1][1])}`;
    }).join(' · ');
    setText($('h4', el), `${c.title}${unit ? ` (${unit})` : ''}${latest ? ` — ${latest}` : ' — no data'}`);
    $('canvas', el).setAttribute('aria-label', `${c.title} trend, ${latest || 'no data'}`);
  }
  box.replaceChildren(...keep);
  // Draw after layout so the canvases have their size.
  requestAnimationFrame(() => {
    for (const el of keep) {
      const c = CHARTS.find((x) => x.title === el.dataset.chart);
      drawChart($('canvas', el), c, t);
    }
    // For tests and for the curious: what the charts show now.
    box.dataset.drawn = `${det.bed} ${det.range}`;
  });
}

function drawChart(canvas, c, t) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  if (!w || !hgt) return;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(hgt * dpr);
  const g = canvas.getContext('2d');
  g.scale(dpr, dpr);
  g.fillStyle = '#000';
  g.fillRect(0, 0, w, hgt);
  const L = 44; const R = 34; const T = 8; const B = 20;
  const pw = w - L - R; const ph = hgt - T - B;
  const series = c.series.map(([name, label, color]) => ({ name, label, color, points: t.series[name]?.points ?? [] }));
  const limits = [];
  for (const key of [c.limits, c.limits2].filter(Boolean)) {
    const l = t.limits[key];
    if (!l) continue;
    for (const [k, severe] of [['low', false], ['high', false], ['extra_low', true], ['extra_high', true]]) {
      if (l[k] !== null && l[k] !== undefined) limits.push({ v: l[k], severe });
    }
  }
  let lo = Infinity; let hi = -Infinity;
  for (const s of series) for (const p of s.points) { lo = Math.min(lo, p[2] ?? p[1]); hi = Math.max(hi, p[3] ?? p[1]); }
  for (const l of limits) { lo = Math.min(lo, l.v); hi = Math.max(hi, l.v); }
  if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
  if (hi - lo < 1e-6) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.08;
  lo -= pad; hi += pad;
  const x = (ms) => L + ((ms - t.from) / (t.to - t.from)) * pw;
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * ph;
  // Grid and labels.
  g.font = '12px system-ui, sans-serif';
  g.strokeStyle = '#262c33';
  g.fillStyle = '#a9b1ba';
  g.lineWidth = 1;
  const step = niceStep((hi - lo) / 4);
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(L + pw, y(v)); g.stroke();
    g.fillText(fmtValue(c.limits, v), L - 4, y(v));
  }
  const tick = { 1: 10, 8: 60, 24: 240 }[Math.round((t.to - t.from) / 3600000)] ?? 60;
  g.textAlign = 'center';
  g.textBaseline = 'top';
  const first = Math.ceil(t.from / (tick * 60000)) * tick * 60000;
  for (let ms = first; ms <= t.to; ms += tick * 60000) {
    g.beginPath(); g.moveTo(x(ms), T); g.lineTo(x(ms), T + ph); g.stroke();
    g.fillText(clockText(ms, false), x(ms), T + ph + 4);
  }
  // Limits: dashed, labelled at the right.
  g.setLineDash([6, 4]);
  g.lineWidth = 1.5;
  g.textAlign = 'left';
  g.textBaseline = 'middle';
  for (const l of limits) {
    g.strokeStyle = l.severe ? '#ff2a2a' : '#ffd400';
    g.fillStyle = g.strokeStyle;
    g.beginPath(); g.moveTo(L, y(l.v)); g.lineTo(L + pw, y(l.v)); g.stroke();
    g.fillText(fmtValue(c.limits, l.v), L + pw + 3, y(l.v));
  }
  g.setLineDash([]);
  g.strokeStyle = '#6b7580';
  g.lineWidth = 1;
  g.strokeRect(L, T, pw, ph);
  // Data, over the frame: a gap in the data is a gap in the line.
  for (const s of series) {
    if (!s.points.length) continue;
    // NIBP is measured every few minutes: its points are joined across longer gaps, and marked.
    const sparse = s.name.startsWith('nibp');
    const gapMs = sparse ? 3600000 : t.resolution === 'raw' ? 120000 : 180000;
    if (t.resolution !== 'raw') {
      g.fillStyle = `${s.color}33`;
      for (const p of s.points) g.fillRect(x(p[0]), y(p[3]), Math.max(1, pw / ((t.to - t.from) / 60000)), Math.max(1, y(p[2]) - y(p[3])));
    }
    g.strokeStyle = s.color;
    g.lineWidth = 2;
    g.beginPath();
    let prev = null;
    for (const p of s.points) {
      if (prev === null || p[0] - prev > gapMs) g.moveTo(x(p[0]), y(p[1]));
      else g.lineTo(x(p[0]), y(p[1]));
      prev = p[0];
    }
    g.stroke();
    if (sparse || s.points.length === 1) {
      g.fillStyle = s.color;
      for (const p of s.points) g.fillRect(x(p[0]) - 2.5, y(p[1]) - 2.5, 5, 5);
    }
  }
}

function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

// ---------------------------------------------------------------- start

function wire() {
  $('#login-btn').addEventListener('click', () => {
    if (state.user) {
      api('/api/v1/session', { method: 'DELETE' }).finally(loggedOut);
    } else {
      requireLogin(null);
    }
  });
  $('#login-form').addEventListener('submit', submitLogin);
  $('#ack-form').addEventListener('submit', submitAck);
  for (const b of document.querySelectorAll('dialog [data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }
  $('#bed-dialog').addEventListener('close', closeBed);
  for (const b of document.querySelectorAll('#bed-dialog [data-range]')) {
    b.addEventListener('click', () => {
      if (!state.detail) return;
      state.detail.range = b.dataset.range;
      for (const o of document.querySelectorAll('#bed-dialog [data-range]')) o.setAttribute('aria-pressed', String(o === b));
      setText($('#bed-status'), 'Loading…');
      loadDetail();
    });
  }
  $('#bed-pause').addEventListener('click', pauseBed);
  $('#kpi-btn').addEventListener('click', () => openKpis());
  for (const b of document.querySelectorAll('#kpi-dialog [data-period]')) {
    b.addEventListener('click', () => {
      for (const o of document.querySelectorAll('#kpi-dialog [data-period]')) o.setAttribute('aria-pressed', String(o === b));
      loadKpis(parseInt(b.dataset.period, 10));
    });
  }
  $('#roster-btn').addEventListener('click', () => openRoster());
  $('#roster-shift-edit').addEventListener('click', startShiftEdit);
  $('#roster-shift-cancel').addEventListener('click', () => stopShiftEdit(true));
  $('#roster-shift-form').addEventListener('submit', saveShift);
  $('#roster-shift-form').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); stopShiftEdit(true); }
  });
  // Closed with edits under way: they are dropped (the roster is as the hub has it).
  $('#roster-dialog').addEventListener('close', () => {
    for (const bed of [...state.roster.editing]) stopAssign(bed, false);
    stopShiftEdit(false);
  });
  $('#sound-toggle').addEventListener('click', () => sound.toggle());
  // Browsers start audio only after a user gesture.
  for (const ev of ['pointerdown', 'keydown']) {
    document.addEventListener(ev, () => { if (sound.on) { sound.ensure(); sound.render(); } }, { capture: true });
  }
  window.addEventListener('hashchange', openFromHash);
  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawCharts, 150); });
}

wire();
document.body.dataset.live = 'false';
document.body.classList.add('not-live');
$('#lost').hidden = false;
renderUser();
sound.render();
checkSession();
setInterval(tick, 1000);
