// The phone page (`/m`, a nurse's own alarms) in headless Chromium (Debian's, via
// playwright-core), at 390×844, beside the ward dashboard at 1920×1080. Run by
// tests/e2e/phone.rs, which starts a hub with [dissemination] on, puts the nurse on the
// roster (bed-01: the nurse, no buddy; bed-02: the nurse, the buddy), feeds two monitors over
// MQTT once a second and passes:
//   WARDHUB_URL           the hub's HTTP address
//   WARDHUB_CONTROL       host:port of its control socket (set <device> <metric> <value>,
//                         stop, start)
//   WARDHUB_NURSE_TOKEN   the nurse's bearer token,  WARDHUB_NURSE_NAME  their user name
//   WARDHUB_BUDDY_TOKEN   bed-02's buddy's token,    WARDHUB_BUDDY_NAME
//   WARDHUB_CHARGE_NAME   the charge nurse (bed-01's alarms go there when nobody answers)
//   WARDHUB_VIEWER_TOKEN  a viewer's (wall display) token
//   WARDHUB_CHROMIUM      the browser (default /usr/bin/chromium)
// Screenshots are written to ./artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const HUB = process.env.WARDHUB_URL;
const CONTROL = process.env.WARDHUB_CONTROL;
const NURSE_TOKEN = process.env.WARDHUB_NURSE_TOKEN;
const NURSE = process.env.WARDHUB_NURSE_NAME;
const BUDDY_TOKEN = process.env.WARDHUB_BUDDY_TOKEN;
const BUDDY = process.env.WARDHUB_BUDDY_NAME;
const CHARGE = process.env.WARDHUB_CHARGE_NAME;
const VIEWER_TOKEN = process.env.WARDHUB_VIEWER_TOKEN;
const ART = new URL('./artifacts/', import.meta.url).pathname;
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

if (!HUB || !CONTROL || !NURSE_TOKEN || !NURSE || !BUDDY_TOKEN || !BUDDY || !CHARGE || !VIEWER_TOKEN) {
  throw new Error('run through `cargo test -p wardhub-e2e --test e2e phone` (WARDHUB_URL, WARDHUB_CONTROL, tokens and names)');
}
mkdirSync(ART, { recursive: true });

/** Sends one command to the Rust side; resolves on "ok". */
function control(cmd) {
  return new Promise((resolve, reject) => {
    const i = CONTROL.lastIndexOf(':');
    const sock = net.connect(Number(CONTROL.slice(i + 1)), CONTROL.slice(0, i), () => sock.write(`${cmd}\n`));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => { buf += d; });
    sock.on('end', () => (buf.startsWith('ok') ? resolve() : reject(new Error(`${cmd}: ${buf.trim()}`))));
    sock.on('error', reject);
  });
}

/** The hub's API with a bearer token: [status, JSON]. */
async function api(path, token = VIEWER_TOKEN, method = 'GET', body) {
  const r = await fetch(`${HUB}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  return [r.status, text ? JSON.parse(text) : null];
}

/** The dissemination audit of one alarm, oldest first. */
const steps = async (id) => {
  const [s, body] = await api(`/api/v1/alarms/${id}/dissemination`);
  assert.equal(s, 200, JSON.stringify(body));
  return body.steps;
};
const statusOf = async (id) => {
  const [s, body] = await api('/api/v1/dissemination');
  assert.equal(s, 200, JSON.stringify(body));
  return body.alarms.find((x) => x.alarm === id);
};

let browser;
/** Page errors of every page: a page that throws fails the last test. */
const pageErrors = [];

function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource|401|404/.test(m.text())) pageErrors.push(m.text());
  });
}

/** A phone at 390×844 on the login screen; vibrations are recorded in window.__vibrations. */
async function openPhone() {
  const context = await browser.newContext(PHONE);
  await context.addInitScript(() => {
    window.__vibrations = [];
    const real = navigator.vibrate?.bind(navigator);
    navigator.vibrate = (p) => { window.__vibrations.push(p); return real ? real(p) : true; };
  });
  const page = await context.newPage();
  watch(page);
  await page.goto(`${HUB}/m`);
  await page.waitForSelector('body[data-auth="none"]', { timeout: 10000 });
  return { context, page };
}

/** Logs a phone in (by touch) and waits for its stream. */
async function logIn(page, token) {
  await page.fill('#token', token);
  await page.locator('#login-submit').tap();
  await page.waitForSelector('body[data-auth="ok"]', { timeout: 5000 });
  await page.waitForSelector('body[data-live="true"]', { timeout: 10000 });
}

/** The ward dashboard at 1920×1080, logged in as the wall display. */
async function openWard() {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
  const page = await context.newPage();
  watch(page);
  await page.goto(`${HUB}/`);
  await page.locator('#login-dialog').waitFor({ state: 'visible', timeout: 5000 });
  await page.fill('#token-input', VIEWER_TOKEN);
  await page.click('#login-submit');
  await page.locator('#login-dialog').waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForSelector('body[data-live="true"]', { timeout: 10000 });
  // When each alarm first showed on the list (page clock), to compare with the phone.
  await page.evaluate(() => {
    window.__seen = {};
    const mark = () => {
      for (const li of document.querySelectorAll('#alarms .alarm')) {
        const id = li.dataset.alarmId;
        if (id && !window.__seen[id]) window.__seen[id] = Date.now();
      }
    };
    new MutationObserver(mark).observe(document.querySelector('#alarms'), { childList: true, subtree: true, attributes: true });
    mark();
  });
  return { context, page };
}

const card = (page, bed) => page.locator(`#cards .card[data-bed="${bed}"]`);
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

let phone; // the nurse's phone
let ward; // the ward dashboard (wall display)

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.WARDHUB_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
});

test('the phone page: a login screen, a wrong token refused, then no alarms; sound needs a tap', async () => {
  // Served with the dashboard's strict policy: nothing but the hub itself.
  const r = await fetch(`${HUB}/m`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'; style-src 'self'/);
  phone = await openPhone();
  const { page } = phone;
  assert.equal(await page.locator('#login-view').isVisible(), true);
  assert.equal(await page.locator('#main').isHidden(), true);
  assert.equal(await page.evaluate(() => fetch('/api/v1/me/alarms').then((x) => x.status)), 401);
  await page.fill('#token', 'not-a-token');
  await page.locator('#login-submit').tap();
  await page.locator('#login-error').filter({ hasText: /not known/ }).waitFor({ timeout: 5000 });
  await logIn(page, NURSE_TOKEN);
  assert.equal(await page.locator('#user').textContent(), `${NURSE} (nurse)`);
  assert.equal(await page.locator('#conn-text').textContent(), 'LIVE');
  assert.equal(await page.locator('#empty').isVisible(), true);
  assert.equal(await page.locator('#cards .card').count(), 0);
  assert.equal(await page.locator('#lost').isHidden(), true);
  assert.ok(await overflow(page) <= 0, 'no sideways scrolling');
  // The token is kept nowhere in the page.
  assert.equal(await page.evaluate(() => document.cookie), '');
  assert.equal(await page.evaluate(() => JSON.stringify(localStorage)).then((l) => l.includes(NURSE_TOKEN)), false);

  // A reload keeps the session, but audio may start only after a tap: the page asks for one.
  await page.reload();
  await page.waitForSelector('body[data-live="true"]', { timeout: 10000 });
  const sound = page.locator('#sound');
  assert.equal(await sound.getAttribute('data-state'), 'blocked');
  assert.equal(await sound.textContent(), 'Tap to enable sound');
  const box = await sound.boundingBox();
  assert.ok(box.height >= 48, `sound control ${box.height}px tall`);
  await sound.tap();
  await page.waitForSelector('#sound[data-state="on"]', { timeout: 5000 });
  assert.equal(await sound.textContent(), 'Sound on');
  await page.screenshot({ path: `${ART}phone-empty-390x844.png` });
});

test('a desaturation reaches the phone within 1 s; Accept stops the chain and the ward dashboard says who', async () => {
  const { page } = phone;
  ward = await openWard();
  await control('set b1-mon spo2 82'); // below 85 for 3 s: high
  const c = card(page, 'bed-01');
  await c.waitFor({ timeout: 20000 });
  const id = await c.getAttribute('data-alarm-id');
  const shownAt = Number(await c.getAttribute('data-shown-at'));
  const [, list] = await api('/api/v1/alarms?bed=bed-01');
  const alarm = list.alarms.find((a) => a.id === id);
  assert.ok(alarm, `alarm ${id} in the API`);
  assert.equal(alarm.priority, 'high');
  // The hub and the browser share this machine's clock.
  const sinceRaised = shownAt - alarm.raised_at;
  assert.ok(sinceRaised < 1000, `the card showed ${sinceRaised} ms after the alarm was raised`);
  await ward.page.locator(`.alarm[data-alarm-id="${id}"]`).waitFor({ timeout: 5000 });
  const wardAt = await ward.page.evaluate((x) => window.__seen[x], id);
  assert.ok(shownAt - wardAt < 1000, `the phone was ${shownAt - wardAt} ms behind the ward dashboard`);
  console.log(`# phone card ${sinceRaised} ms after raised_at, ${shownAt - wardAt} ms after the ward dashboard's list`);

  // What the card says: priority in colour, text and marks; bed; what; since when.
  assert.equal(await c.getAttribute('data-prio'), 'high');
  assert.equal(await c.locator('.prio').textContent(), '!!! HIGH');
  assert.equal(await c.locator('.prio').evaluate((el) => getComputedStyle(el).backgroundColor), 'rgb(255, 42, 42)');
  assert.equal(await c.locator('.bed').textContent(), 'bed-01');
  assert.match(await c.locator('.what').textContent(), /^Desaturation: SpO₂ low 82\s% \(limit (85|90)\)$/);
  assert.match(await c.locator('.meta').first().textContent(), /^since \d\d:\d\d:\d\d · \d+ s/);
  assert.match(await c.locator('.sent').textContent(), /^Sent to you \d\d:\d\d:\d\d$/);
  assert.equal(await c.getAttribute('data-target'), 'primary');
  assert.equal(await c.locator('.tag.reminder').isHidden(), true, 'a first notification, not a reminder');
  assert.equal(await c.locator('.tag.esc').isHidden(), true, 'sent as the bed\'s own nurse');
  assert.equal(await c.locator('a.trend').getAttribute('href'), '/#bed=bed-01');
  for (const sel of ['button[data-action="accept"]', 'button[data-action="reject"]', 'a.trend']) {
    const b = await c.locator(sel).boundingBox();
    assert.ok(b.height >= 48 && b.width >= 48, `${sel} is ${b.width}×${b.height}px`);
  }
  assert.equal(await c.locator('button[data-action="reject"]').textContent(), 'Can’t go — pass on');
  // It rang: sound (the tap above allowed it) and vibration.
  assert.ok(Number(await page.evaluate(() => document.body.dataset.alerts)) >= 1, 'the page alerted');
  assert.ok(Number(await page.evaluate(() => document.body.dataset.beeps)) >= 1, 'the page beeped');
  assert.ok(await page.evaluate(() => window.__vibrations.length) >= 1, 'the phone vibrated');
  assert.ok(await overflow(page) <= 0, 'no sideways scrolling with a card');
  assert.ok(await c.evaluate((el) => el.scrollWidth <= el.clientWidth), 'the card fits');
  await page.screenshot({ path: `${ART}phone-alarm-390x844.png` });
  // The ward dashboard knows whom it was sent to.
  const onWard = ward.page.locator(`.alarm[data-alarm-id="${id}"]`);
  await onWard.locator('.who', { hasText: new RegExp(`^Sent to ${NURSE}$`) }).waitFor({ timeout: 10000 });

  // Accept, by touch: the card goes, the chain stops.
  await c.locator('button[data-action="accept"]').tap();
  await c.waitFor({ state: 'detached', timeout: 5000 });
  assert.match(await page.locator('#status').textContent(), /^You accepted bed-01: Desaturation/);
  assert.equal(await page.locator('#empty').isVisible(), true);
  const [, mine] = await api('/api/v1/me/alarms', NURSE_TOKEN);
  assert.deepEqual(mine.alarms, []);
  const st = await statusOf(id);
  assert.equal(st.running, false);
  assert.equal(st.accepted_by, NURSE);
  assert.deepEqual(st.with, []);
  // The dashboard shows who accepted it.
  const accepted = ward.page.locator(`.alarm[data-alarm-id="${id}"][data-accepted-by="${NURSE}"]`);
  await accepted.waitFor({ timeout: 10000 });
  assert.match(await accepted.locator('.who').textContent(), new RegExp(`^accepted by ${NURSE} at \\d\\d:\\d\\d:\\d\\d$`, 'i'));
  await ward.page.screenshot({ path: `${ART}ward-accepted-1920x1080.png` });
  // The audit: told the nurse, accepted, stopped — and after two more timer ticks still
  // nothing to the buddy (there is none: the charge nurse stands in) or the charge nurse.
  await page.waitForTimeout(2500);
  const s = await steps(id);
  const events = s.map((x) => x.event);
  const acc = events.indexOf('accepted');
  assert.ok(acc > 0, `accepted in ${JSON.stringify(s)}`);
  assert.equal(s[acc].user, NURSE);
  assert.deepEqual(s.filter((x) => x.event === 'notified').map((x) => [x.user, x.target]), [[NURSE, 'primary']]);
  assert.equal(s.at(-1).event, 'stopped');
  assert.equal(s.at(-1).note, 'accepted');
  assert.deepEqual(s.slice(acc + 1).filter((x) => x.event === 'notified' || x.event === 'reminded'), [], 'nobody told after the accept');
  assert.equal(s.some((x) => x.user === CHARGE), false, 'the charge nurse was never told');
  // A second accept is refused: nothing is being sent any more.
  const [again] = await api(`/api/v1/alarms/${id}/accept`, NURSE_TOKEN, 'POST');
  assert.equal(again, 409);
  await control('set b1-mon spo2 97');
});

test('"Can\'t go — pass on" takes the card away and sends the alarm to the buddy at once', async () => {
  const { page } = phone;
  // The buddy's phone is open too: the alarm reaches it live once the nurse passes it on.
  const buddy = await openPhone();
  await logIn(buddy.page, BUDDY_TOKEN);
  await control('set b2-mon spo2 82');
  const c = card(page, 'bed-02');
  await c.waitFor({ timeout: 20000 });
  const id = await c.getAttribute('data-alarm-id');
  const [, list] = await api('/api/v1/alarms?bed=bed-02');
  const alarm = list.alarms.find((a) => a.id === id);
  assert.equal(await buddy.page.locator('#cards .card').count(), 0, 'not the buddy\'s yet');
  await c.locator('button[data-action="reject"]').tap();
  await c.waitFor({ state: 'detached', timeout: 5000 });
  assert.match(await page.locator('#status').textContent(), /^Passed on: bed-02/);
  // The buddy's phone rings, saying why it is theirs.
  const theirs = card(buddy.page, 'bed-02');
  await theirs.waitFor({ timeout: 5000 });
  assert.equal(await theirs.getAttribute('data-target'), 'buddy');
  assert.equal(await theirs.locator('.tag.esc').textContent(), 'TO YOU AS BUDDY');
  assert.ok(await overflow(buddy.page) <= 0);
  await buddy.page.screenshot({ path: `${ART}phone-buddy-390x844.png` });
  // The audit: rejected by the nurse, then the buddy told — at once, not at the buddy step's 30 s.
  const s = await steps(id);
  const rej = s.findIndex((x) => x.event === 'rejected');
  assert.ok(rej > 0, JSON.stringify(s));
  assert.equal(s[rej].user, NURSE);
  const next = s.slice(rej + 1).find((x) => x.event === 'notified');
  assert.ok(next, `a notification after the rejection: ${JSON.stringify(s)}`);
  assert.deepEqual([next.user, next.target], [BUDDY, 'buddy']);
  const after = Date.parse(next.at) - alarm.raised_at;
  assert.ok(after < 30000, `the buddy was told ${after} ms after the alarm`);
  const st = await statusOf(id);
  assert.equal(st.running, true);
  assert.deepEqual(st.with, [BUDDY]);
  const [, mine] = await api('/api/v1/me/alarms', NURSE_TOKEN);
  assert.deepEqual(mine.alarms, [], 'no longer the nurse\'s');
  await ward.page.locator(`.alarm[data-alarm-id="${id}"] .who`, { hasText: new RegExp(`^Sent to ${BUDDY}$`) }).waitFor({ timeout: 10000 });
  assert.equal(await ward.page.locator(`.alarm[data-alarm-id="${id}"]`).getAttribute('data-accepted-by'), null);

  // Acknowledged at the station: it leaves the buddy's phone too, which says why.
  const [ack] = await api(`/api/v1/alarms/${id}/ack`, NURSE_TOKEN, 'POST', { reason: 'actionable' });
  assert.equal(ack, 200);
  await theirs.waitFor({ state: 'detached', timeout: 5000 });
  assert.match(await buddy.page.locator('#status').textContent(), /^bed-02: acknowledged at the station\.$/);
  await buddy.context.close();
  await control('set b2-mon spo2 97');
});

test('the card\'s link opens the bed\'s trends on the ward dashboard', async () => {
  const { page } = ward;
  await page.goto(`${HUB}/#bed=bed-01`);
  await page.locator('#bed-dialog').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await page.locator('#bed-h').textContent(), 'Bed bed-01');
  await page.waitForSelector('#charts[data-drawn="bed-01 1h"]', { timeout: 10000 });
  await page.screenshot({ path: `${ART}ward-deep-link-1920x1080.png` });
  await page.keyboard.press('Escape');
  await page.locator('#bed-dialog').waitFor({ state: 'hidden' });
  // The dialog's close handler clears the hash just after it hides (it once raced this check).
  await page.waitForFunction(() => location.hash === '', null, { timeout: 5000 }).catch(() => {});
  assert.equal(await page.evaluate(() => location.hash), '', 'closed: the link is spent');
});

test('the phone says "connection lost" and reconnects; a login that ended returns to the login screen', async () => {
  const { page } = phone;
  await page.waitForSelector('body[data-live="true"]');
  await control('stop');
  await page.locator('#lost').waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await page.locator('#lost').textContent(), /CONNECTION LOST/);
  assert.match(await page.locator('#conn-text').textContent(), /^NOT LIVE/);
  assert.equal(await page.locator('#empty').isHidden(), true, 'no "no alarms for you" while it cannot know');
  assert.ok(await overflow(page) <= 0);
  await page.screenshot({ path: `${ART}phone-connection-lost-390x844.png` });
  await control('start');
  await page.waitForSelector('body[data-live="true"]', { timeout: 15000 });
  assert.equal(await page.locator('#lost').isHidden(), true);

  // The session ends on the hub (logged out elsewhere, expired): the next reconnect is
  // refused and the page goes back to its login, saying why.
  assert.equal(await page.evaluate(() => fetch('/api/v1/session', { method: 'DELETE' }).then((r) => r.status)), 204);
  await control('stop');
  await control('start');
  await page.waitForSelector('body[data-auth="none"]', { timeout: 15000 });
  assert.equal(await page.locator('#login-view').isVisible(), true);
  assert.match(await page.locator('#login-error').textContent(), /no longer valid/);
  assert.equal(await page.locator('#cards .card').count(), 0);
  await page.screenshot({ path: `${ART}phone-logged-out-390x844.png` });
  assert.deepEqual(pageErrors, []);
});
