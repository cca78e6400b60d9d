//! The published JSON Schema of the MQTT observation document stays in step with the decoder.

use serde_json::Value;
use wardhub_adapters::model::{DeviceId, TimeLimits};
use wardhub_adapters::mqtt_json::decode_observations;

const SCHEMA: &str = include_str!("../schema/observation-document.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the schema file is valid JSON")
}

/// Validates with Python's `jsonschema` (a validator no one here wrote; tests/run installs
/// it): `check` is `schema` (the schema against the 2020-12 metaschema) or `valid` /
/// `invalid` (each of `docs` against the schema, which must accept / refuse every one).
/// Returns what the validator said when it disagrees.
fn python_jsonschema(check: &str, docs: &[Value]) -> Result<(), String> {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
check = sys.argv[2]
if check == "schema":
    Draft202012Validator.check_schema(schema)
    sys.exit(0)
v = Draft202012Validator(schema)
bad = []
for doc in json.loads(sys.stdin.read()):
    errors = list(v.iter_errors(doc))
    if (check == "valid") == bool(errors):
        bad.append((doc, [e.message for e in errors]))
if bad:
    print(json.dumps(bad))
    sys.exit(1)
"#;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/observation-document.schema.json"
    );
    let mut child = std::process::Command::new("python3")
        .args(["-c", SCRIPT, path, check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs (tests/run installs it and the PyPI package jsonschema)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(serde_json::to_string(docs).unwrap().as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'jsonschema'"),
        "the PyPI package jsonschema is missing (tests/run installs it)"
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{stderr}", String::from_utf8_lossy(&out.stdout)))
    }
}

#[test]
fn schema_is_a_valid_draft_2020_12_schema() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
    python_jsonschema("schema", &[]).expect("the schema against the 2020-12 metaschema");
}

/// The schema and the decoder agree: documents the decoder takes are valid, documents it
/// refuses as a whole (wrong shape, a value that is not a number, no metric) are not.
#[test]
fn schema_accepts_what_the_decoder_takes_and_refuses_what_it_refuses() {
    let s = schema();
    let device = DeviceId::new("mon-01").unwrap();
    let now = 1_795_168_800_000;
    let mut accepted: Vec<Value> = s["examples"].as_array().unwrap().clone();
    accepted.push(serde_json::json!({"metric": 150456, "value": 97, "time": now - 1000}));
    accepted.push(serde_json::json!([{"metric": "hr", "value": 72}]));
    let refused = [
        serde_json::json!(42),
        serde_json::json!({"metric": "spo2", "value": "97"}),
        serde_json::json!({"value": 97}),
        serde_json::json!({"observations": {"metric": "hr", "value": 72}}),
    ];
    for doc in &accepted {
        let bytes = serde_json::to_vec(doc).unwrap();
        let d = decode_observations(&device, &bytes, now, &TimeLimits::default(), 100);
        assert!(d.rejects.is_empty(), "{doc}: {:?}", d.rejects);
        assert!(!d.observations.is_empty(), "{doc}");
    }
    for doc in &refused {
        let bytes = serde_json::to_vec(doc).unwrap();
        let d = decode_observations(&device, &bytes, now, &TimeLimits::default(), 100);
        assert!(d.observations.is_empty(), "the decoder took {doc}");
        assert!(!d.rejects.is_empty(), "the decoder said nothing of {doc}");
    }
    python_jsonschema("valid", &accepted).expect("the schema refuses what the decoder takes");
    python_jsonschema("invalid", &refused).expect("the schema accepts what the decoder refuses");
}

#[test]
fn schema_describes_every_accepted_field() {
    let s = schema();
    let obs = &s["$defs"]["observation"]["properties"];
    for field in ["metric", "value", "unit", "time", "status"] {
        let d = obs[field]["description"].as_str();
        assert!(d.is_some_and(|d| !d.is_empty()), "{field} is not described");
    }
    assert_eq!(
        s["$defs"]["observation"]["required"],
        serde_json::json!(["metric", "value"])
    );
    assert!(s["oneOf"][0]["properties"]["observations"].is_object());
}
