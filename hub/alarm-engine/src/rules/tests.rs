use super::*;
use crate::config::AlarmsConfig;

#[test]
fn adult_defaults_validate_and_cover_design() {
    let rs = RuleSet::default_adult();
    rs.validate().unwrap();
    let eff = rs.effective(None);
    let get = |n: &str| eff.iter().find(|r| r.metric.name == n).unwrap();
    assert_eq!((get("hr").low, get("hr").high), (Some(50.0), Some(120.0)));
    let spo2 = get("spo2");
    assert_eq!((spo2.low, spo2.extra_low), (Some(90.0), Some(85.0)));
    assert_eq!(spo2.extra_priority, Priority::High);
    assert_eq!(spo2.delay, Duration::from_secs(15));
    assert_eq!(get("nibp_mean").high, Some(110.0));
    assert_eq!(get("temp").low, Some(35.0));
    assert_eq!(get("etco2").high, Some(50.0));
    assert_eq!(eff.len(), 9);
}

#[test]
fn toml_shape_with_bed_overrides() {
    let cfg: AlarmsConfig = toml::from_str(
        r#"
        audio_pause = "90s"
        [technical]
        offline_after = "45s"
        [escalation]
        high = "1m"
        medium = "5m"
        [[rules]]
        metric = "MDC_PULS_OXIM_SAT_O2"
        low = 92
        delay = "10s"
        extra_low = 86
        hysteresis = 1
        latching = true
        [[rules]]
        metric = 151708
        enabled = false
        [[beds."12"]]
        metric = "hr"
        low = 40
        high = 130
        priority = "high"
        escalate_after = "30s"
        "#,
    )
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.audio_pause, Duration::from_secs(90));
    assert_eq!(cfg.escalation.medium, Some(Duration::from_secs(300)));
    let rs = cfg.rule_set();
    let ward = rs.effective(None);
    assert!(ward.iter().all(|r| r.metric.name != "etco2"));
    let spo2 = ward.iter().find(|r| r.metric.name == "spo2").unwrap();
    assert_eq!(spo2.low, Some(92.0));
    assert!(spo2.latching);
    let bed = rs.effective(Some("12"));
    let hr = bed.iter().find(|r| r.metric.name == "hr").unwrap();
    assert_eq!((hr.low, hr.priority), (Some(40.0), Priority::High));
    assert_eq!(hr.escalate_after, Some(Duration::from_secs(30)));
    // Other beds keep the ward rule.
    let other = rs.effective(Some("13"));
    assert_eq!(
        other.iter().find(|r| r.metric.name == "hr").unwrap().low,
        Some(50.0)
    );
}

#[test]
fn json_round_trip() {
    let mut rs = RuleSet::default_adult();
    rs.rules = default_adult();
    rs.beds.insert("3".into(), vec![default_adult()[0].clone()]);
    let json = serde_json::to_string(&rs).unwrap();
    assert!(json.contains(r#""delay":"15s""#), "{json}");
    let back: RuleSet = serde_json::from_str(&json).unwrap();
    assert_eq!(back, rs);
    let cfg = AlarmsConfig::default();
    let back: AlarmsConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let toml_text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<AlarmsConfig>(&toml_text).unwrap(), cfg);
}

#[test]
fn validation_errors() {
    let parse = |s: &str| serde_json::from_str::<RuleSet>(s);
    let invalid = |s: &str| {
        let e = parse(s).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("alarm rule") || e.contains("bed id"), "{e}");
        e
    };
    assert!(invalid(r#"{"rules":[{"metric":"hr","low":120,"high":50}]}"#).contains("below"));
    assert!(
        invalid(r#"{"rules":[{"metric":"hr","low":50,"hysteresis":-1}]}"#).contains("hysteresis")
    );
    assert!(invalid(r#"{"rules":[{"metric":"hr"}]}"#).contains("low"));
    assert!(
        invalid(r#"{"rules":[{"metric":"spo2","low":90,"extra_low":95}]}"#).contains("extra_low")
    );
    assert!(invalid(r#"{"rules":[{"metric":"spo2","extra_low":80}]}"#).contains("needs"));
    assert!(invalid(r#"{"rules":[{"metric":"spo2","low":190}]}"#).contains("range"));
    assert!(invalid(r#"{"rules":[{"metric":"spo2","low":90,"delay":"10m"}]}"#).contains("maximum"));
    assert!(
        invalid(r#"{"rules":[{"metric":"hr","low":50},{"metric":"hr","high":9}]}"#)
            .contains("more than one")
    );
    assert!(invalid(r#"{"beds":{"bad bed":[]}}"#).contains("bed id"));
    assert!(invalid(
        r#"{"rules":[{"metric":"hr","high":100,"extra_high":150,"priority":"high","extra_priority":"low"}]}"#
    )
    .contains("extra_priority"));
    // Serde-level errors: unknown metric, unknown field, bad duration.
    assert!(parse(r#"{"rules":[{"metric":"glucose","low":1}]}"#).is_err());
    assert!(parse(r#"{"rules":[{"metric":"hr","low":1,"lo":2}]}"#).is_err());
    assert!(parse(r#"{"rules":[{"metric":"hr","low":1,"delay":"soon"}]}"#).is_err());
    assert!(parse(r#"{"rule":[]}"#).is_err());
}
