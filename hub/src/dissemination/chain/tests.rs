use super::*;

const S: Millis = 1000;

/// high: primary → after 30 s buddy → after 60 s charge → after 120 s ward; reminders 20 s.
fn high() -> Chain {
    Chain {
        priority: Some(Priority::High),
        kind: None,
        steps: vec![
            Step {
                to: Target::Primary,
                after: 0,
            },
            Step {
                to: Target::Buddy,
                after: 30 * S,
            },
            Step {
                to: Target::Charge,
                after: 60 * S,
            },
            Step {
                to: Target::Ward,
                after: 120 * S,
            },
        ],
        remind_every: 20 * S,
    }
}

fn roster() -> Roster {
    Roster {
        beds: [
            (
                "bed-01".to_owned(),
                Assignment {
                    primary: Some("ann".to_owned()),
                    buddy: Some("bob".to_owned()),
                },
            ),
            ("bed-02".to_owned(), Assignment::default()),
        ]
        .into(),
        charge: Some("cat".into()),
        team: ["ann", "bob", "cat", "dan"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    }
}

/// (user, step, reminder) of the notifications among `actions`.
fn told(actions: &[Action]) -> Vec<(String, usize, bool)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Notify {
                user,
                step,
                reminder,
                ..
            } => Some((user.clone(), *step, *reminder)),
            _ => None,
        })
        .collect()
}

fn t(user: &str, step: usize, reminder: bool) -> (String, usize, bool) {
    (user.to_owned(), step, reminder)
}

/// What happens after the alarm is raised at 0, tick by tick, when `answer` (at its time) is
/// applied: the table of the issue (accept stops it, station acknowledge stops it, clear
/// stops it, a missing assignee goes to the charge nurse).
#[test]
fn chains_run_and_stop_as_the_table_says() {
    /// When, and what: accept, ack, clear, reject.
    type Answer = Option<(Millis, &'static str)>;
    /// At each tick, who is told (user, step, reminder).
    type Expected = Vec<(Millis, Vec<(String, usize, bool)>)>;
    let cases: Vec<(&str, &str, Answer, Expected)> = vec![
        (
            "nobody answers: primary, a reminder, buddy, charge, then the ward",
            "bed-01",
            None,
            vec![
                (0, vec![t("ann", 0, false)]),
                (20 * S, vec![t("ann", 0, true)]),
                (30 * S, vec![t("bob", 1, false)]),
                (40 * S, vec![t("ann", 0, true)]),
                (
                    60 * S,
                    vec![t("ann", 0, true), t("bob", 1, true), t("cat", 2, false)],
                ),
                (
                    120 * S,
                    vec![
                        t("ann", 0, true),
                        t("bob", 1, true),
                        t("cat", 2, true),
                        t("dan", 3, false),
                    ],
                ),
            ],
        ),
        (
            "accepted at 25 s: no buddy, no reminder after",
            "bed-01",
            Some((25 * S, "accept")),
            vec![
                (0, vec![t("ann", 0, false)]),
                (20 * S, vec![t("ann", 0, true)]),
                (30 * S, vec![]),
                (60 * S, vec![]),
            ],
        ),
        (
            "acknowledged at the station at 10 s",
            "bed-01",
            Some((10 * S, "ack")),
            vec![
                (0, vec![t("ann", 0, false)]),
                (30 * S, vec![]),
                (120 * S, vec![]),
            ],
        ),
        (
            "cleared at 10 s",
            "bed-01",
            Some((10 * S, "clear")),
            vec![(0, vec![t("ann", 0, false)]), (60 * S, vec![])],
        ),
        (
            "a bed without an assigned nurse goes to the charge nurse, once",
            "bed-02",
            None,
            vec![
                (0, vec![t("cat", 0, false)]),
                // The buddy step names nobody either: the charge nurse, told already, is
                // only reminded.
                (30 * S, vec![t("cat", 0, true)]),
                (40 * S, vec![]),
            ],
        ),
        (
            "the primary rejects at 5 s: the buddy at once, the charge nurse 30 s later",
            "bed-01",
            Some((5 * S, "reject")),
            vec![
                (0, vec![t("ann", 0, false)]),
                (5 * S, vec![t("bob", 1, false)]),
                (34 * S, vec![t("bob", 1, true)]),
                (35 * S, vec![t("cat", 2, false)]),
            ],
        ),
    ];
    for (name, bed, answer, expected) in cases {
        let r = roster();
        let mut d = Dispatcher::new(vec![high()]);
        let id = AlarmId(7);
        let mut answered = false;
        for (at, want) in expected {
            let mut got = Vec::new();
            if let Some((when, what)) = answer {
                if !answered && when <= at {
                    answered = true;
                    let acts = match what {
                        "accept" => d.accepted(id),
                        "ack" => d.ended(id, "acknowledged"),
                        "clear" => d.ended(id, "cleared"),
                        _ => d.rejected(id, "ann", when, &r),
                    };
                    if what == "reject" {
                        got.extend(told(&acts));
                    } else {
                        assert!(matches!(acts[..], [Action::Stopped { .. }]), "{name}");
                        assert!(!d.is_open(id), "{name}: the chain stopped");
                    }
                }
            }
            let acts = if at == 0 {
                d.raised(id, Priority::High, Kind::Physiological, Some(bed), 0, 0, &r)
            } else {
                d.tick(at, &r)
            };
            got.extend(told(&acts));
            assert_eq!(got, want, "{name}, at {} s", at / S);
        }
    }
}

#[test]
fn an_alarm_that_reaches_nobody_is_reported_and_chains_are_chosen_by_priority_and_kind() {
    let mut d = Dispatcher::new(vec![
        high(),
        Chain {
            priority: None,
            kind: Some(Kind::Technical),
            steps: vec![Step {
                to: Target::Charge,
                after: 0,
            }],
            remind_every: 0,
        },
    ]);
    let empty = Roster::default();
    let acts = d.raised(
        AlarmId(1),
        Priority::High,
        Kind::Physiological,
        Some("bed-01"),
        0,
        0,
        &empty,
    );
    assert!(acts.is_empty(), "{acts:?}: the later steps are not due yet");
    let acts = d.tick(120 * S, &empty);
    assert_eq!(acts, vec![Action::ReachedNobody { alarm: AlarmId(1) }]);
    assert!(!d.is_open(AlarmId(1)));
    let acts = d.raised(
        AlarmId(2),
        Priority::Low,
        Kind::Technical,
        None,
        0,
        0,
        &roster(),
    );
    assert_eq!(told(&acts), vec![t("cat", 0, false)]);
    assert!(
        d.raised(
            AlarmId(3),
            Priority::Low,
            Kind::Physiological,
            None,
            0,
            0,
            &roster()
        )
        .is_empty(),
        "no chain for a low physiological alarm: the station only"
    );
}
