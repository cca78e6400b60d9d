// A stand-in for `wardhub hospital`, to try the hospital view without the Rust side: serves
// dashboards/web/hospital.{html,js,css} and a fake /api/v1/me and /api/v1/hospital. No
// dependencies. Usage:
//   node fake_hospital.mjs [port]       (default: a free port; the address is printed)
// Token: $FAKE_TOKEN or "fake-token". The alarm of st-mary/icu-2 bed-01 is high.

import http from 'node:http';
import { readFileSync } from 'node:fs';

const WEB = new URL('../../dashboards/web/', import.meta.url);
const TOKEN = process.env.FAKE_TOKEN || 'fake-token';
const STATIC = {
  '/': ['hospital.html', 'text/html; charset=utf-8'],
  '/hospital.js': ['hospital.js', 'text/javascript; charset=utf-8'],
  '/hospital.css': ['hospital.css', 'text/css; charset=utf-8'],
};
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
  + "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
const started = Date.now();

function hospital() {
  const now = Date.now();
  const alarms = [
    { site: 'st-mary', ward: 'icu-2', bed: 'bed-01', id: 17, priority: 'high', state: 'active', cause: 'SpO2 low', device_id: 'b1-mon', value: 84.0, since: started - 95000 },
    { site: 'st-mary', ward: 'icu-1', bed: 'bed-03', id: 4, priority: 'high', state: 'acknowledged', cause: 'HR high', device_id: 'b3-mon', value: 141, since: started - 600000 },
    { site: 'st-john', ward: 'emergency-department-east', bed: 'bay-12', id: 2, priority: 'medium', state: 'audio-paused', cause: 'NIBP sys high', device_id: 'bay12-mon', value: 182, since: started - 4000000 },
    { site: 'st-mary', ward: 'icu-1', bed: null, id: 9, priority: 'low', state: 'active', cause: 'Device offline', device_id: 'icu1-gw', value: null, since: started - 30000 },
    { site: 'st-mary', ward: 'icu-2', bed: 'bed-01', id: 18, priority: 'low', state: 'latched', cause: 'Battery low', device_id: 'b1-pump', value: 12, since: started - 20000 },
  ];
  const bedsOf = (site, ward, n, prefix = 'bed-') => Array.from({ length: n }, (_, i) => {
    const bed = `${prefix}${String(i + 1).padStart(2, '0')}`;
    const mine = alarms.filter((a) => a.site === site && a.ward === ward && a.bed === bed);
    const w = mine[0];
    return { bed, open_alarms: mine.length, worst: w ? { priority: w.priority, cause: w.cause, state: w.state, since: w.since } : null };
  });
  const byPrio = (site, ward) => {
    const o = { high: 0, medium: 0, low: 0 };
    for (const a of alarms) if (a.site === site && a.ward === ward) o[a.priority] += 1;
    return o;
  };
  const health = (extra = {}) => ({ reported_at: now - 1200, uplink_connected: true, outbox_messages: 3, outbox_oldest_age_seconds: 0.4, dropped_total: 0, components_down: [], ...extra });
  const ward = (site, name, beds, o) => ({
    site, ward: name, dashboard_url: 'http://10.0.0.5:8080/', health: health(), stale: false,
    lag_seconds: 0.21, last_seen: now - 200, beds, alarms_by_priority: byPrio(site, name), ...o,
  });
  const wards = [
    ward('st-mary', 'icu-1', bedsOf('st-mary', 'icu-1', 8)),
    ward('st-mary', 'icu-2', bedsOf('st-mary', 'icu-2', 6), { lag_seconds: 1.7, health: health({ outbox_messages: 0, outbox_oldest_age_seconds: null }) }),
    ward('st-mary', 'ward-5', bedsOf('st-mary', 'ward-5', 12), { dashboard_url: null, health: health({ uplink_connected: false, outbox_messages: 1840, outbox_oldest_age_seconds: 312.5, dropped_total: 7, components_down: ['mqtt-uplink', 'hl7-listener'] }) }),
    ward('st-john', 'emergency-department-east', bedsOf('st-john', 'emergency-department-east', 16, 'bay-'), { dashboard_url: 'javascript:alert(1)' }),
    ward('st-john', 'maternity', bedsOf('st-john', 'maternity', 4), { health: null, stale: true, lag_seconds: null, last_seen: started - 7200000 }),
    ward('st-john', 'recovery', bedsOf('st-john', 'recovery', 5), { stale: true, health: health({ reported_at: now - 95000 }), last_seen: now - 95000 }),
  ];
  const totals = { high: 0, medium: 0, low: 0 };
  for (const a of alarms) totals[a.priority] += 1;
  const rank = { high: 0, medium: 1, low: 2 };
  alarms.sort((x, y) => rank[x.priority] - rank[y.priority] || x.since - y.since);
  return { now, wards, alarms, totals };
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  const file = STATIC[path];
  if (req.method === 'GET' && file) {
    res.writeHead(200, { 'Content-Type': file[1], 'Cache-Control': 'no-cache', 'Content-Security-Policy': CSP, 'X-Content-Type-Options': 'nosniff' });
    res.end(readFileSync(new URL(file[0], WEB)));
    return;
  }
  if (path.startsWith('/api/')) {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(res, 401, { error: 'unknown or missing token' });
    if (path === '/api/v1/me') return json(res, 200, { name: 'dr-fake', role: 'viewer' });
    if (path === '/api/v1/hospital') return json(res, 200, hospital());
  }
  return json(res, 404, { error: 'not found' });
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port} token=${TOKEN}`);
});
