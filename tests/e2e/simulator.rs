//! Issue 6: the ward simulator against a real hub.

use std::collections::BTreeSet;
use std::time::Duration;

use ward_sim::run::{spawn, Registration, RunConfig, Targets};
use ward_sim::{Scenario, Ward};
use wardhub_e2e::{now_ms, TestServer};

/// A scenario cut down to `beds` beds (scripted events of other beds dropped).
fn scenario(name: &str, beds: usize) -> Scenario {
    Scenario::builtin(name).with_beds(beds)
}

/// A hub with every device of the scenario bound statically.
async fn hub_for(s: &Scenario) -> TestServer {
    let ward = Ward::new(s.clone(), 0);
    let pairs: Vec<(String, String)> = ward
        .devices()
        .iter()
        .map(|d| (d.id.clone(), d.bed.clone()))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(d, b)| (d.as_str(), b.as_str()))
        .collect();
    TestServer::start(&refs).await
}

fn config(server: &TestServer, s: Scenario, speed: f64, sim: Duration) -> RunConfig {
    let mut c = RunConfig::new(
        s,
        Targets {
            mqtt: server.mqtt(),
            hl7: None,
            http: Some(format!("http://{}", server.http())),
        },
    );
    c.seed = 42;
    c.speed = speed;
    c.duration = Some(sim);
    // Static bindings; a registry API (when there is one) is used if it accepts us.
    c.registration = Registration::BestEffort;
    c
}

/// The deteriorating-patient scenario at 30x: every message is acknowledged, and each bed's
/// data is queryable, with the desaturation of bed 7 in its history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deteriorating_patient_data_is_queryable() {
    let s = scenario("deteriorating-patient", 12);
    let server = hub_for(&s).await;
    let from = now_ms() - 1000;
    let report = spawn(config(&server, s, 30.0, Duration::from_secs(8 * 60)))
        .task
        .await
        .unwrap()
        .unwrap();
    let to = now_ms() + 1000;
    assert!(report.acknowledged > 1000, "{report}");
    assert_eq!(report.acknowledged, report.sent, "{report}");
    assert_eq!(
        (report.refused, report.errors, report.dropped),
        (0, 0, 0),
        "{report}"
    );
    // Latency figures are the benchmarks' (BENCHMARKS.md), not asserted here.
    eprintln!("{report}");

    for bed in ["bed-01", "bed-07", "bed-12"] {
        let ok = server
            .eventually(Duration::from_secs(5), || async {
                let (status, body) = server.get(&format!("/api/v1/beds/{bed}/latest")).await;
                let names: BTreeSet<String> = body["latest"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["metric"]["name"].as_str().or(o["metric"].as_str()))
                    .map(str::to_owned)
                    .collect();
                status == 200 && names.len() >= 6
            })
            .await;
        assert!(
            ok,
            "{bed}: {:?}",
            server.get(&format!("/api/v1/beds/{bed}/latest")).await
        );
    }
    // Bed 7's desaturation (2 to ~7 simulated minutes) is in its stored history.
    let (status, body) = server
        .get(&format!(
            "/api/v1/devices/b07-mon/observations?from={from}&to={to}&metric=spo2&limit=10000&resolution=raw"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let low = body["observations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["value"].as_f64().is_some_and(|v| v < 85.0))
        .count();
    assert!(
        low > 10,
        "bed 7 desaturation not stored: {low} low readings"
    );
}

/// Every alarm raised while `running` runs, at each priority it reached: (bed, metric,
/// priority, kind), read from the alarm history once the run is over (polling the active
/// list would miss an alarm raised and cleared between two looks).
async fn raised_alarms(
    server: &TestServer,
    running: ward_sim::run::Running,
) -> BTreeSet<(String, String, String, String)> {
    let report = running.task.await.unwrap().unwrap();
    // Every message acknowledged: the alarm engine has seen all the data (a PUBACK comes
    // after the pipeline handed it over).
    assert_eq!(report.acknowledged, report.sent, "{report}");
    // The hub is new: its last 24 h of history are all of it.
    let history = server.alarm_history("limit=1000").await;
    assert!(!history.is_empty(), "no alarm transition at all");
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    history
        .iter()
        .filter(|t| t["event"] == "raised" || t["event"] == "priority_changed")
        .map(|t| {
            let a = &t["alarm"];
            (
                s(&a["bed"]),
                s(&a["metric"]["name"]),
                s(&a["priority"]),
                s(&a["kind"]),
            )
        })
        .collect()
}

/// Deteriorating patient at 20x: bed 7's desaturation raises a high SpO2 alarm, bed 12's
/// tachycardia an HR alarm, and beds without a clinical event raise no physiological alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deteriorating_patient_raises_the_expected_alarms() {
    let s = scenario("deteriorating-patient", 12);
    let server = hub_for(&s).await;
    let running = spawn(config(&server, s, 20.0, Duration::from_secs(10 * 60)));
    let seen = raised_alarms(&server, running).await;
    let physio = |bed: &str, metric: &str| {
        seen.iter()
            .filter(|(b, m, _, k)| b == bed && m == metric && k == "physiological")
            .map(|(_, _, p, _)| p.clone())
            .collect::<Vec<_>>()
    };
    assert!(
        physio("bed-07", "spo2").contains(&"high".to_owned()),
        "{seen:?}"
    );
    assert!(!physio("bed-12", "hr").is_empty(), "{seen:?}");
    let stray: Vec<_> = seen
        .iter()
        .filter(|(b, _, _, k)| {
            k == "physiological" && !["bed-03", "bed-07", "bed-12"].contains(&b.as_str())
        })
        .collect();
    assert!(
        stray.is_empty(),
        "physiological alarms at beds without events: {stray:?}"
    );
}

/// Device chaos (artefacts and faults, stable patients) at 20x: technical alarms, and no
/// physiological alarm at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artefacts_raise_no_physiological_alarm() {
    let s = scenario("device-chaos", 12);
    let server = hub_for(&s).await;
    let running = spawn(config(&server, s, 20.0, Duration::from_secs(8 * 60)));
    let seen = raised_alarms(&server, running).await;
    let physio: Vec<_> = seen
        .iter()
        .filter(|(_, _, _, k)| k == "physiological")
        .collect();
    assert!(physio.is_empty(), "{physio:?}");
    assert!(
        seen.iter().any(|(_, _, _, k)| k == "technical"),
        "probe off and disconnects raise technical alarms: {seen:?}"
    );
}
