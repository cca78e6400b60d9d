// The hospital view (`wardhub hospital`) in headless Chromium (Debian's, via playwright-core).
// Run by the Rust side, which starts the hospital server with its wards, raises one alarm and
// passes:
//   WARDHUB_HOSPITAL_URL    the hospital server's HTTP address
//   WARDHUB_HOSPITAL_TOKEN  a valid bearer token
//   WARDHUB_EXPECT          JSON: {"wards": ["site/ward", …],
//                                  "alarm": {"ward": "site/ward", "bed": "bed-01", "priority": "high"}}
//   WARDHUB_CHROMIUM        the browser (default /usr/bin/chromium)
// Screenshots are written to ./artifacts/. (fake_hospital.mjs serves fake data for a try.)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const BASE = process.env.WARDHUB_HOSPITAL_URL?.replace(/\/+$/, '');
const TOKEN = process.env.WARDHUB_HOSPITAL_TOKEN;
const EXPECT = process.env.WARDHUB_EXPECT ? JSON.parse(process.env.WARDHUB_EXPECT) : null;
const executablePath = process.env.WARDHUB_CHROMIUM || '/usr/bin/chromium';
const ART = new URL('./artifacts/', import.meta.url).pathname;
const PRIORITY_TEXT = { high: 'HIGH', medium: 'MEDIUM', low: 'LOW' };
const READ_ONLY = "Read-only: acknowledge alarms on the ward's own dashboard.";

if (!BASE || !TOKEN || !EXPECT?.wards?.length || !EXPECT.alarm) {
  throw new Error('run through the Rust side (WARDHUB_HOSPITAL_URL, WARDHUB_HOSPITAL_TOKEN, WARDHUB_EXPECT)');
}
mkdirSync(ART, { recursive: true });

let browser;
/** Page errors of every page: a page that throws fails the last test. */
const pageErrors = [];

async function newPage(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Refused and aborted requests (401 on purpose, the cut connection below) are expected.
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_FAILED|401/.test(m.text())) pageErrors.push(m.text()); });
  await page.goto(`${BASE}/`);
  await page.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
  return { context, page };
}

/** Opens the page and logs in; resolves once every expected ward has its card. */
async function openHospital(viewport) {
  const { context, page } = await newPage(viewport);
  await page.fill('#token', TOKEN);
  await page.click('#login-submit');
  await page.locator('#login').waitFor({ state: 'hidden', timeout: 5000 });
  for (const w of EXPECT.wards) await wardCard(page, w).waitFor({ timeout: 10000 });
  return { context, page };
}

const wardCard = (page, ward) => page.locator(`[data-ward="${ward}"]`).first();
const bedTile = (page, ward, bed) => page.locator(`.ward[data-ward="${ward}"] [data-bed="${bed}"]`);
const alarmRows = (page) => page.locator('#alarms tbody tr');

let wall; // the wall screen, 1920×1080

before(async () => {
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
});

test('before a login nothing of the wards is shown, and a wrong token is refused', async () => {
  const { context, page } = await newPage({ width: 1280, height: 800 });
  // Settled: the page found no login in this tab and says so.
  await page.waitForSelector('body[data-auth="none"]', { timeout: 10000 });
  assert.equal(await page.evaluate(() => fetch('/api/v1/hospital').then((r) => r.status)), 401);
  assert.equal(await page.locator('[data-ward]').count(), 0, 'no ward cards before a login');
  assert.equal(await page.locator('[data-bed]').count(), 0, 'no beds before a login');
  assert.equal(await alarmRows(page).count(), 0, 'no alarms before a login');
  assert.equal(await page.locator('#totals').isHidden(), true, 'no totals before a login');
  assert.equal(await page.locator('#hospital').isHidden(), true);

  await page.fill('#token', 'not-a-token');
  await page.click('#login-submit');
  await page.locator('#login-error').filter({ hasText: /token was refused/ }).waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#login').isVisible(), true);
  assert.equal(await page.locator('[data-ward]').count(), 0, 'still nothing after a wrong token');
  assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0, 'a refused token is not kept');
  await context.close();
});

test('after a login every ward shows, the raised alarm is on its bed tile and in the hospital list', async () => {
  wall = await openHospital({ width: 1920, height: 1080 });
  const { page } = wall;
  const { ward, bed, priority } = EXPECT.alarm;
  await page.waitForSelector('body[data-live="true"]', { timeout: 10000 });
  assert.equal(await page.locator('#connection').isHidden(), true);
  for (const w of EXPECT.wards) {
    const [site, name] = w.split('/');
    const title = await wardCard(page, w).locator('h3').textContent();
    assert.ok(title.includes(site) && title.includes(name), `card title ${title}`);
  }

  // The bed tile shows its worst alarm: the priority in words and the cause.
  const tile = bedTile(page, ward, bed);
  await page.locator(`.ward[data-ward="${ward}"] [data-bed="${bed}"][data-priority="${priority}"]`).waitFor({ timeout: 10000 });
  assert.match(await tile.textContent(), new RegExp(PRIORITY_TEXT[priority]));
  assert.notEqual((await tile.locator('.bed-cause').textContent()).trim(), '', 'the tile names the cause');
  // A bed without alarms says so (if the ward has one).
  const calm = page.locator(`.ward[data-ward="${ward}"] [data-bed][data-priority="none"]`);
  if (await calm.count()) assert.match(await calm.first().textContent(), /no alarm/);

  // The hospital-wide list: a row of that ward and bed, with its priority, state and age.
  const row = page.locator(`#alarms tbody tr[data-ward="${ward}"][data-bed="${bed}"][data-priority="${priority}"]`).first();
  await row.waitFor({ timeout: 10000 });
  assert.match(await row.locator('.col-prio').textContent(), new RegExp(PRIORITY_TEXT[priority]));
  assert.match(await row.locator('.col-since').textContent(), /^\d+ (s|min|h \d+ min|d) ago$/);
  // Sorted high → low.
  const order = await alarmRows(page).evaluateAll((rows) => rows.map((r) => r.dataset.priority));
  const rank = { high: 0, medium: 1, low: 2 };
  assert.deepEqual(order, [...order].sort((x, y) => rank[x] - rank[y]));
  // The header's total of that priority counts it.
  const total = Number(await page.locator(`#totals [data-priority="${priority}"] .total-n`).textContent());
  assert.ok(total >= 1, `${priority} total ${total}`);
  assert.match(await page.locator('#totals').textContent(), /HIGH.*MEDIUM.*LOW/);

  // Read-only, and says so.
  const note = page.locator('#readonly-note');
  assert.equal(await note.isVisible(), true);
  assert.equal((await note.textContent()).trim(), READ_ONLY);
  assert.equal(await page.locator('button', { hasText: /acknowledge/i }).count(), 0, 'nothing to acknowledge here');

  // The token lives in this tab's sessionStorage only.
  assert.equal(await page.evaluate((t) => Object.values(sessionStorage).includes(t), TOKEN), true);
  assert.equal(await page.evaluate((t) => JSON.stringify(localStorage).includes(t), TOKEN), false);
  assert.equal(await page.evaluate(() => document.cookie), '');
  await page.screenshot({ path: `${ART}hospital-wall.png` });
});

test('a phone (390×844) shows the same, without scrolling sideways', async () => {
  const { context, page } = await openHospital({ width: 390, height: 844 });
  const { ward, bed, priority } = EXPECT.alarm;
  await page.locator(`#alarms tbody tr[data-ward="${ward}"][data-bed="${bed}"][data-priority="${priority}"]`).first().waitFor({ timeout: 10000 });
  await page.locator(`.ward[data-ward="${ward}"] [data-bed="${bed}"][data-priority="${priority}"]`).waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#readonly-note').isVisible(), true);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the phone`);
  // No card sticks out either (overflow hidden somewhere would hide it rather than scroll).
  const widest = await page.locator('.ward, #alarms tbody tr').evaluateAll((els) => Math.max(...els.map((e) => e.getBoundingClientRect().right)));
  assert.ok(widest <= 390, `an element reaches x=${widest}`);
  await page.screenshot({ path: `${ART}hospital-phone.png`, fullPage: true });
  await context.close();
});

test('a lost connection keeps the last data under a banner; a 401 returns to the login', async () => {
  const { page } = wall;
  const api = '**/api/v1/hospital';
  // One request at a time: with every answer 1.2 s late, polls never overlap.
  await page.bringToFront();
  // Only requests that started after the listeners count: one already in flight when they
  // were attached ended uncounted ("0 polls at once" in CI, the count having gone to -1).
  const open = new Set();
  let most = 0;
  let polls = 0;
  const isPoll = (r) => new URL(r.url()).pathname === '/api/v1/hospital';
  const started = (r) => { if (isPoll(r)) { polls += 1; open.add(r); most = Math.max(most, open.size); } };
  const ended = (r) => { open.delete(r); };
  page.on('request', started);
  page.on('requestfinished', ended);
  page.on('requestfailed', ended);
  await page.route(api, async (route) => { await new Promise((r) => setTimeout(r, 1200)); await route.continue().catch(() => {}); });
  for (const t0 = Date.now(); polls < 3 && Date.now() - t0 < 15000;) await page.waitForTimeout(100);
  await page.unroute(api);
  page.off('request', started);
  page.off('requestfinished', ended);
  page.off('requestfailed', ended);
  assert.ok(polls >= 3, `${polls} polls in 15 s`);
  assert.equal(most, 1, `${most} polls at once`);

  // Unreachable: the banner, with the time of the data shown, and the data stays.
  await page.route(api, (route) => route.abort('connectionrefused'));
  const banner = page.locator('#connection');
  await banner.waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await banner.textContent(), /Connection lost — showing data from \d\d:\d\d:\d\d/);
  await page.waitForSelector('body[data-live="false"]');
  for (const w of EXPECT.wards) assert.equal(await wardCard(page, w).isVisible(), true, `${w} still shown`);
  assert.ok(await alarmRows(page).count() >= 1, 'the alarm list is kept');
  await page.screenshot({ path: `${ART}hospital-connection-lost.png` });
  await page.unroute(api);
  await banner.waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForSelector('body[data-live="true"]');

  // A token refused mid-session (revoked): back to the login, saying why, data gone.
  await page.route(api, (route) => route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":"token revoked"}' }));
  await page.locator('#login').waitFor({ state: 'visible', timeout: 5000 });
  assert.match(await page.locator('#login-error').textContent(), /logged out/);
  assert.equal(await page.locator('[data-ward]').count(), 0, 'no ward left after a 401');
  assert.equal(await alarmRows(page).count(), 0);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'the refused token is forgotten');
  await page.unroute(api);
});

test('no page errors', async () => {
  await wall?.context.close();
  assert.deepEqual(pageErrors, []);
});
