//! The published JSON Schema of the MQTT observation document stays in step with the decoder.

use serde_json::Value;
use wardhub_adapters::model::{DeviceId, TimeLimits};
use wardhub_adapters::mqtt_json::decode_observations;

const SCHEMA: &str = include_str!("../schema/observation-document.schema.json");

fn schema() -> Value {
    serde_json::from_str(SCHEMA).expect("the schema file is valid JSON")
}

#[test]
fn schema_is_json_of_draft_2020_12() {
    let s = schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(s["description"].as_str().is_some_and(|d| !d.is_empty()));
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

#[test]
fn schema_examples_decode() {
    let s = schema();
    let device = DeviceId::new("mon-01").unwrap();
    let now = 1_795_168_800_000;
    for example in s["examples"].as_array().unwrap() {
        let bytes = serde_json::to_vec(example).unwrap();
        let d = decode_observations(&device, &bytes, now, &TimeLimits::default(), 100);
        assert!(d.rejects.is_empty(), "{:?}", d.rejects);
        assert!(!d.observations.is_empty());
    }
}
