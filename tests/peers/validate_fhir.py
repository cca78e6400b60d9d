#!/usr/bin/env python3
"""Validates FHIR R4 JSON for wardhub's end-to-end tests.

Usage:
  python3 tests/peers/validate_fhir.py [FILE ...]     (no FILE, or "-": read standard input)

Each input is one JSON document: a Bundle (transaction, batch, searchset, their responses, ...), a
single resource, or a JSON array of resources. Every resource is parsed with the PyPI package
fhir.resources (its FHIR R4B models, pydantic; R4B's Observation, Patient, Device and Bundle are R4's),
which checks the structure: known elements only, cardinalities, required elements, choice types
(one value[x]), primitive formats (dateTime, decimal, uri, ...). The models do not check codes nor
the vital-signs profile, so this script adds:
  - required codes where the models leave them open: Observation.status, Patient.gender, Device.status,
    Bundle.type, Bundle.entry.request.method, Quantity.comparator, Identifier.use, HumanName.use;
  - transaction/batch Bundles: every entry has a request; fullUrls are unique (bdl-7);
  - the FHIR R4 vital-signs profile rules, for each Observation whose code has a LOINC code
    8867-4 (heart rate), 9279-1 (respiratory rate), 2708-6 / 59408-5 (SpO2; the R4 oxygensat
    profile requires 2708-6 in any case), 8310-5 (body temperature), 85354-9 (blood pressure panel):
    status; category vital-signs (system http://terminology.hl7.org/CodeSystem/observation-category);
    subject; effective[x] (a dateTime at least to the day, vs-1); either value[x] or
    dataAbsentReason and not both (obs-6, vs-2), the value a Quantity with a number value, a unit,
    system http://unitsofmeasure.org and the UCUM code of the sign (/min, %, Cel or [degF]);
    the blood pressure panel has no value but components 8480-6 (systolic) and 8462-4 (diastolic),
    each with a mm[Hg] Quantity or a dataAbsentReason, not both (vs-3).

Prints "ok N resources" (N: the resources found, Bundles not counted; with a count per type) and
exits 0 when all is valid; otherwise prints one line per error and exits 1.
"""

import argparse
import json
import re
import sys
from collections import Counter

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

# LOINC code -> (name, UCUM codes allowed) for the single-value vital signs.
VITAL_SIGNS = {
    "8867-4": ("heart rate", {"/min"}),
    "9279-1": ("respiratory rate", {"/min"}),
    "2708-6": ("oxygen saturation", {"%"}),
    "59408-5": ("oxygen saturation", {"%"}),
    "8310-5": ("body temperature", {"Cel", "[degF]"}),
}
BP_PANEL = "85354-9"
BP_COMPONENTS = {"8480-6": "systolic", "8462-4": "diastolic"}

# Required bindings (FHIR R4) the models do not enforce: resource type -> element -> codes.
OBSERVATION_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                      "entered-in-error", "unknown"}
REQUIRED_CODES = {
    "Observation": {"status": OBSERVATION_STATUS},
    "Patient": {"gender": {"male", "female", "other", "unknown"}},
    "Device": {"status": {"active", "inactive", "entered-in-error", "unknown"}},
    "Bundle": {"type": {"document", "message", "transaction", "transaction-response", "batch",
                        "batch-response", "history", "searchset", "collection"}},
}
REQUEST_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}
COMPARATORS = {"<", "<=", ">=", ">"}
IDENTIFIER_USE = {"usual", "official", "temp", "secondary", "old"}
NAME_USE = {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}
DATE_AT_LEAST_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}")


class Checker:
    def __init__(self):
        self.errors = []
        self.counts = Counter()

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")

    # ---------------------------------------------------------------- walking

    def check_document(self, name, doc):
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                self.check_resource(f"{name}[{i}]", item, top=True)
        else:
            self.check_resource(name, doc, top=True)

    def check_resource(self, where, res, top=False):
        if not isinstance(res, dict):
            self.error(where, "a resource must be a JSON object")
            return
        rtype = res.get("resourceType")
        if not isinstance(rtype, str):
            self.error(where, "missing resourceType")
            return
        ident = rtype + (f"/{res['id']}" if isinstance(res.get("id"), str) else "")
        label = f"{where}: {ident}" if top else f"{where}({ident})"
        if top:
            self.model_check(label, rtype, res)
        if rtype == "Bundle":
            self.check_bundle(label, res)
        else:
            self.counts[rtype] += 1
        self.code_checks(label, rtype, res)
        if rtype == "Observation":
            self.vital_signs(label, res)

    def model_check(self, label, rtype, res):
        """fhir.resources' models, once per top-level document (a Bundle's entries included)."""
        try:
            model = get_fhir_model_class(rtype)
        except (ValueError, KeyError):
            self.error(label, f"unknown resource type {rtype!r}")
            return
        try:
            model.model_validate(res)
        except ValidationError as e:
            for err in e.errors():
                loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
                self.error(f"{label}{loc}", f"{err['msg']} [{err['type']}]")
        except Exception as e:  # the models raise plain errors for some inputs
            self.error(label, f"{type(e).__name__}: {e}")

    def check_bundle(self, label, b):
        btype = b.get("type")
        entries = b.get("entry") or []
        if not isinstance(entries, list):
            return
        full_urls = Counter(e.get("fullUrl") for e in entries if isinstance(e, dict) and e.get("fullUrl"))
        for url, n in full_urls.items():
            if n > 1:
                self.error(label, f"bdl-7: fullUrl {url} is used by {n} entries")
        for i, e in enumerate(entries):
            where = f"{label}.entry[{i}]"
            if not isinstance(e, dict):
                continue
            if btype in ("transaction", "batch"):
                req = e.get("request")
                if not isinstance(req, dict):
                    self.error(where, f"a {btype} entry needs a request")
                else:
                    if req.get("method") not in REQUEST_METHODS:
                        self.error(f"{where}.request.method", f"{req.get('method')!r} is not an HTTP verb of FHIR")
                    if not req.get("url"):
                        self.error(f"{where}.request.url", "missing")
            if "resource" in e:
                self.check_resource(f"{where}.resource", e["resource"])

    # ---------------------------------------------------------------- codes

    def code_checks(self, label, rtype, res):
        for element, codes in REQUIRED_CODES.get(rtype, {}).items():
            v = res.get(element)
            if v is not None and v not in codes:
                self.error(f"{label}.{element}", f"{v!r} is not one of {sorted(codes)}")
        for i, ident in enumerate(_list(res.get("identifier"))):
            if isinstance(ident, dict) and ident.get("use") is not None and ident["use"] not in IDENTIFIER_USE:
                self.error(f"{label}.identifier[{i}].use", f"{ident['use']!r} is not one of {sorted(IDENTIFIER_USE)}")
        if rtype == "Patient":
            for i, name in enumerate(_list(res.get("name"))):
                if isinstance(name, dict) and name.get("use") is not None and name["use"] not in NAME_USE:
                    self.error(f"{label}.name[{i}].use", f"{name['use']!r} is not one of {sorted(NAME_USE)}")
        if rtype == "Observation":
            quantities = [("valueQuantity", res.get("valueQuantity"))]
            for i, c in enumerate(_list(res.get("component"))):
                if isinstance(c, dict):
                    quantities.append((f"component[{i}].valueQuantity", c.get("valueQuantity")))
            for path, q in quantities:
                if isinstance(q, dict) and q.get("comparator") is not None and q["comparator"] not in COMPARATORS:
                    self.error(f"{label}.{path}.comparator", f"{q['comparator']!r} is not one of {sorted(COMPARATORS)}")

    # ---------------------------------------------------------------- vital signs

    def vital_signs(self, label, obs):
        loinc = _loinc_codes(obs.get("code"))
        singles = [c for c in loinc if c in VITAL_SIGNS]
        is_bp = BP_PANEL in loinc
        if not singles and not is_bp:
            return
        what = "blood pressure panel" if is_bp else VITAL_SIGNS[singles[0]][0]
        where = label
        error = self.error
        self.error = lambda w, m: error(w, f"{what}: {m}")
        try:
            self._vital_signs(where, obs, loinc, singles, is_bp)
        finally:
            self.error = error

    def _vital_signs(self, where, obs, loinc, singles, is_bp):

        if not obs.get("status"):
            self.error(where, "status is required")
        cats = _list(obs.get("category"))
        if not any(isinstance(c, dict) and any(
                isinstance(cd, dict) and cd.get("system") == OBS_CATEGORY and cd.get("code") == "vital-signs"
                for cd in _list(c.get("coding"))) for c in cats):
            self.error(f"{where}.category", f"needs a coding {OBS_CATEGORY}|vital-signs")
        subject = obs.get("subject")
        if not isinstance(subject, dict) or not (subject.get("reference") or subject.get("identifier")):
            self.error(f"{where}.subject", "a subject (reference) is required")
        self.check_effective(where, obs)
        if ("59408-5" in loinc or "2708-6" in loinc) and "2708-6" not in loinc:
            self.error(f"{where}.code", "the R4 oxygensat profile requires the LOINC code 2708-6")

        values = [k for k in obs if k.startswith("value") and k != "value"]
        absent = obs.get("dataAbsentReason")
        if values and absent is not None:
            self.error(where, "obs-6: dataAbsentReason and value[x] cannot both be present")
        if is_bp:
            if values:
                self.error(where, f"a blood pressure panel has components, not {values[0]}")
            self.bp_components(where, obs)
            return
        if not values and absent is None:
            self.error(where, "vs-2: value[x] or dataAbsentReason is required")
        for k in values:
            if k != "valueQuantity":
                self.error(f"{where}.{k}", "a vital sign's value must be a valueQuantity")
        if "valueQuantity" in obs:
            units = set().union(*(VITAL_SIGNS[c][1] for c in singles))
            self.check_quantity(f"{where}.valueQuantity", obs["valueQuantity"], units)

    def bp_components(self, where, obs):
        comps = [c for c in _list(obs.get("component")) if isinstance(c, dict)]
        for code, name in BP_COMPONENTS.items():
            found = [(i, c) for i, c in enumerate(_list(obs.get("component")))
                     if isinstance(c, dict) and code in _loinc_codes(c.get("code"))]
            if len(found) != 1:
                self.error(f"{where}.component", f"needs exactly one {name} component (LOINC {code}), found {len(found)}")
                continue
            i, c = found[0]
            cw = f"{where}.component[{i}]"
            values = [k for k in c if k.startswith("value")]
            absent = c.get("dataAbsentReason")
            if values and absent is not None:
                self.error(cw, f"{name}: dataAbsentReason and value[x] cannot both be present")
            if not values and absent is None:
                self.error(cw, f"{name}: vs-3: value[x] or dataAbsentReason is required")
            for k in values:
                if k != "valueQuantity":
                    self.error(f"{cw}.{k}", "must be a valueQuantity")
            if "valueQuantity" in c:
                self.check_quantity(f"{cw}.valueQuantity", c["valueQuantity"], {"mm[Hg]"})
        if not comps:
            self.error(f"{where}.component", "a blood pressure panel needs its components")

    def check_effective(self, where, obs):
        eff = [k for k in obs if k.startswith("effective")]
        if not eff:
            self.error(where, "effective[x] is required")
            return
        v = obs[eff[0]]
        if eff[0] == "effectiveDateTime":
            if not isinstance(v, str) or not DATE_AT_LEAST_DAY.match(v):
                self.error(f"{where}.effectiveDateTime", "vs-1: must be a date at least to the day")
        elif eff[0] == "effectivePeriod":
            start = v.get("start") if isinstance(v, dict) else None
            if not isinstance(start, str) or not DATE_AT_LEAST_DAY.match(start):
                self.error(f"{where}.effectivePeriod.start", "vs-1: must be a date at least to the day")
        else:
            self.error(f"{where}.{eff[0]}", "a vital sign's effective[x] is a dateTime or a Period")

    def check_quantity(self, where, q, units):
        if not isinstance(q, dict):
            self.error(where, "must be an object")
            return
        v = q.get("value")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.error(f"{where}.value", f"must be a JSON number, got {v!r}")
        if not q.get("unit"):
            self.error(f"{where}.unit", "is required")
        if q.get("system") != UCUM:
            self.error(f"{where}.system", f"must be {UCUM}, got {q.get('system')!r}")
        if q.get("code") not in units:
            self.error(f"{where}.code", f"must be the UCUM code {' or '.join(sorted(units))}, got {q.get('code')!r}")


def _list(v):
    return v if isinstance(v, list) else []


def _loinc_codes(cc):
    if not isinstance(cc, dict):
        return []
    return [c.get("code") for c in _list(cc.get("coding")) if isinstance(c, dict) and c.get("system") == LOINC]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", help='JSON files; none or "-": standard input')
    args = p.parse_args()
    checker = Checker()
    for name in args.files or ["-"]:
        label = "<stdin>" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else open(name, encoding="utf-8").read()
            doc = json.loads(text)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            checker.error(label, f"cannot read JSON: {e}")
            continue
        checker.check_document(label, doc)
    if checker.errors:
        for e in checker.errors:
            print(f"error: {e}")
        print(f"invalid: {len(checker.errors)} error(s)")
        return 1
    n = sum(checker.counts.values())
    detail = ", ".join(f"{t} {c}" for t, c in sorted(checker.counts.items()))
    print(f"ok {n} resources" + (f" ({detail})" if detail else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
