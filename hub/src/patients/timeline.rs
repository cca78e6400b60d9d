//! Who lay in which bed when: the bed ↔ patient history, replayed from the recorded events.
//!
//! Pure: events in, stays out. Replay is by event time (EVN-6, else when recorded), then by
//! arrival, so an ADT feed that sends a backdated transfer puts the move where it happened.
//! A cancel (A11, A12, A13, or a nurse's "undo") removes the most recent event it cancels, of
//! the same patient, before it; the history is replayed without it, so a cancelled admit
//! leaves no association at all and a cancelled transfer puts the patient back.
//!
//! A location that is not one of this hub's beds (another ward of the hospital) is recorded
//! as `bed: None`: moving there ends the patient's stay here.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use wardhub_adapters::model::{Millis, Patient};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A01, A04 with a bed, a nurse's manual association.
    Admit,
    /// A02.
    Transfer,
    /// A03, a nurse's manual end of association.
    Discharge,
    /// A08 (and A04 without a bed): demographics only.
    Update,
    /// A11.
    CancelAdmit,
    /// A12.
    CancelTransfer,
    /// A13.
    CancelDischarge,
}

impl Kind {
    /// The kind a cancel undoes.
    fn cancels(self) -> Option<Kind> {
        match self {
            Kind::CancelAdmit => Some(Kind::Admit),
            Kind::CancelTransfer => Some(Kind::Transfer),
            Kind::CancelDischarge => Some(Kind::Discharge),
            _ => None,
        }
    }
}

/// A bed of this hub.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BedRef {
    pub ward: String,
    pub bed: String,
}

/// Who recorded an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Source {
    /// The hospital's ADT feed: the message's sender and control id.
    Adt {
        application: String,
        control_id: String,
        trigger: String,
    },
    /// A user of the API (nurse or above).
    Manual { user: String },
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Arrival order at this hub.
    pub seq: u64,
    pub kind: Kind,
    pub patient: Patient,
    /// Where the event puts the patient: a bed of this hub, or `None` (elsewhere, or not
    /// said).
    pub bed: Option<BedRef>,
    /// When it happened (EVN-6, else EVN-2, else MSH-7, else arrival).
    pub at: Millis,
    pub received_at: Millis,
    pub source: Source,
}

/// A patient's time in one bed: `[from, to)`, `to` open while they are still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stay {
    pub patient_id: String,
    pub bed: BedRef,
    pub from: Millis,
    pub to: Option<Millis>,
    /// The event that began it.
    pub began_by: u64,
}

impl Stay {
    pub fn covers(&self, t: Millis) -> bool {
        self.from <= t && self.to.is_none_or(|to| t < to)
    }
}

/// What a replay found odd (counted, never logged with patient data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Oddities {
    /// A cancel that found nothing to cancel.
    pub cancel_without_event: u64,
    /// An admit or transfer into a bed someone else still occupied (their stay ended).
    pub bed_taken_over: u64,
}

/// The replayed history.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// By bed, in time order.
    by_bed: BTreeMap<BedRef, Vec<Stay>>,
    /// Every stay of a patient, in time order.
    by_patient: HashMap<String, Vec<Stay>>,
    /// The latest demographics of each patient (by arrival).
    patients: HashMap<String, Patient>,
    pub oddities: Oddities,
}

impl Timeline {
    /// Replays `events` (any order).
    pub fn replay(events: &[Recorded]) -> Timeline {
        let mut order: Vec<&Recorded> = events.iter().collect();
        order.sort_by_key(|e| (e.at, e.seq));
        let mut t = Timeline::default();

        // Which events stand: a cancel strikes the latest standing event it cancels, of the
        // same patient, that came before it.
        let mut struck: HashSet<u64> = HashSet::new();
        for (i, e) in order.iter().enumerate() {
            let Some(target) = e.kind.cancels() else {
                continue;
            };
            struck.insert(e.seq);
            let found = order[..i].iter().rev().find(|c| {
                c.kind == target && c.patient.id == e.patient.id && !struck.contains(&c.seq)
            });
            match found {
                Some(c) => {
                    struck.insert(c.seq);
                }
                None => t.oddities.cancel_without_event += 1,
            }
        }

        // Demographics: the latest by arrival of every event, cancelled or not (a cancel
        // says nothing against the patient's name).
        let mut by_arrival: Vec<&Recorded> = events.iter().collect();
        by_arrival.sort_by_key(|e| e.seq);
        for e in by_arrival {
            let entry = t.patients.entry(e.patient.id.clone()).or_default();
            merge_demographics(entry, &e.patient);
        }

        let mut current: HashMap<String, BedRef> = HashMap::new();
        let mut occupant: HashMap<BedRef, String> = HashMap::new();
        let mut open: HashMap<String, Stay> = HashMap::new();
        let mut closed: Vec<Stay> = Vec::new();
        let mut close = |patient: &str,
                         at: Millis,
                         current: &mut HashMap<String, BedRef>,
                         occupant: &mut HashMap<BedRef, String>,
                         open: &mut HashMap<String, Stay>| {
            if let Some(bed) = current.remove(patient) {
                occupant.remove(&bed);
            }
            if let Some(mut s) = open.remove(patient) {
                s.to = Some(at);
                closed.push(s);
            }
        };
        for e in order.iter().filter(|e| !struck.contains(&e.seq)) {
            let id = e.patient.id.as_str();
            match e.kind {
                Kind::Admit | Kind::Transfer => {
                    if e.bed.is_some() && current.get(id) == e.bed.as_ref() {
                        continue; // already there (a repeated A01, an A02 to the same bed)
                    }
                    close(id, e.at, &mut current, &mut occupant, &mut open);
                    if let Some(bed) = &e.bed {
                        if let Some(other) = occupant.get(bed).cloned() {
                            t.oddities.bed_taken_over += 1;
                            close(&other, e.at, &mut current, &mut occupant, &mut open);
                        }
                        current.insert(id.to_owned(), bed.clone());
                        occupant.insert(bed.clone(), id.to_owned());
                        open.insert(
                            id.to_owned(),
                            Stay {
                                patient_id: id.to_owned(),
                                bed: bed.clone(),
                                from: e.at,
                                to: None,
                                began_by: e.seq,
                            },
                        );
                    }
                }
                Kind::Discharge => close(id, e.at, &mut current, &mut occupant, &mut open),
                Kind::Update | Kind::CancelAdmit | Kind::CancelTransfer | Kind::CancelDischarge => {
                }
            }
        }
        closed.extend(open.into_values());
        closed.retain(|s| s.to.is_none_or(|to| to > s.from));
        closed.sort_by_key(|s| (s.from, s.began_by));
        for s in closed {
            t.by_patient
                .entry(s.patient_id.clone())
                .or_default()
                .push(s.clone());
            t.by_bed.entry(s.bed.clone()).or_default().push(s);
        }
        t
    }

    /// Who was in `bed` at `t`.
    pub fn at(&self, bed: &str, t: Millis) -> Option<&Stay> {
        self.by_bed
            .iter()
            .filter(|(b, _)| b.bed == bed)
            .flat_map(|(_, stays)| stays.iter().rev())
            .find(|s| s.covers(t))
    }

    /// Who is in `bed` now (an open stay).
    pub fn current(&self, bed: &str) -> Option<&Stay> {
        self.by_bed
            .iter()
            .filter(|(b, _)| b.bed == bed)
            .filter_map(|(_, stays)| stays.last())
            .find(|s| s.to.is_none())
    }

    /// Every stay of a patient, oldest first.
    pub fn stays(&self, patient_id: &str) -> &[Stay] {
        self.by_patient
            .get(patient_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn patient(&self, id: &str) -> Option<&Patient> {
        self.patients.get(id)
    }

    /// Beds with a patient now.
    pub fn occupied(&self) -> usize {
        self.by_bed
            .values()
            .filter(|s| s.last().is_some_and(|s| s.to.is_none()))
            .count()
    }

    /// Whether the hub has ever seen this patient in one of its beds.
    pub fn knows(&self, patient_id: &str) -> bool {
        self.by_patient.contains_key(patient_id)
    }
}

/// A later message's non-empty fields replace the earlier ones.
fn merge_demographics(into: &mut Patient, from: &Patient) {
    into.id.clone_from(&from.id);
    for (dst, src) in [
        (&mut into.authority, &from.authority),
        (&mut into.family, &from.family),
        (&mut into.given, &from.given),
        (&mut into.birth_date, &from.birth_date),
        (&mut into.sex, &from.sex),
    ] {
        if src.as_deref().is_some_and(|s| !s.trim().is_empty()) {
            dst.clone_from(src);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bed(b: &str) -> Option<BedRef> {
        Some(BedRef {
            ward: "icu".into(),
            bed: b.into(),
        })
    }

    fn ev(seq: u64, kind: Kind, patient: &str, b: Option<BedRef>, at: Millis) -> Recorded {
        Recorded {
            seq,
            kind,
            patient: Patient {
                id: patient.into(),
                ..Default::default()
            },
            bed: b,
            at,
            received_at: at,
            source: Source::Manual { user: "n".into() },
        }
    }

    #[test]
    fn a_transfer_moves_the_patient_and_data_before_and_after_stays_theirs() {
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::Transfer, "p1", bed("bed-07"), 200),
        ]);
        assert_eq!(t.at("bed-03", 150).unwrap().patient_id, "p1");
        assert!(
            t.at("bed-03", 250).is_none(),
            "bed 3 is empty after the move"
        );
        assert_eq!(t.at("bed-07", 250).unwrap().patient_id, "p1");
        assert!(t.at("bed-07", 150).is_none());
        assert_eq!(t.stays("p1").len(), 2);
        assert_eq!(t.stays("p1")[0].to, Some(200));
    }

    #[test]
    fn a_cancelled_admit_leaves_no_association() {
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::CancelAdmit, "p1", bed("bed-03"), 150),
        ]);
        assert!(t.at("bed-03", 120).is_none());
        assert!(t.stays("p1").is_empty());
        assert_eq!(t.occupied(), 0);
    }

    #[test]
    fn a_cancelled_transfer_puts_the_patient_back_and_a_cancelled_discharge_reopens() {
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::Transfer, "p1", bed("bed-07"), 200),
            ev(3, Kind::CancelTransfer, "p1", None, 300),
        ]);
        assert_eq!(t.at("bed-03", 250).unwrap().patient_id, "p1");
        assert!(t.at("bed-07", 250).is_none());
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::Discharge, "p1", None, 200),
            ev(3, Kind::CancelDischarge, "p1", None, 300),
        ]);
        assert_eq!(t.current("bed-03").unwrap().patient_id, "p1");
    }

    #[test]
    fn a_backdated_event_is_replayed_where_it_happened() {
        // The transfer arrives after the discharge but happened before it.
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::Discharge, "p1", None, 400),
            ev(3, Kind::Transfer, "p1", bed("bed-07"), 200),
        ]);
        assert_eq!(t.at("bed-07", 300).unwrap().patient_id, "p1");
        assert!(t.at("bed-07", 450).is_none());
    }

    #[test]
    fn moving_to_another_ward_ends_the_stay_and_a_taken_bed_is_counted() {
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::Transfer, "p1", None, 200),
            ev(3, Kind::Admit, "p2", bed("bed-05"), 100),
            ev(4, Kind::Admit, "p3", bed("bed-05"), 300),
        ]);
        assert!(t.at("bed-03", 250).is_none());
        assert_eq!(t.at("bed-05", 250).unwrap().patient_id, "p2");
        assert_eq!(t.at("bed-05", 350).unwrap().patient_id, "p3");
        assert_eq!(t.oddities.bed_taken_over, 1);
    }

    #[test]
    fn a_cancel_without_its_event_is_counted_and_changes_nothing() {
        let t = Timeline::replay(&[
            ev(1, Kind::Admit, "p1", bed("bed-03"), 100),
            ev(2, Kind::CancelTransfer, "p1", None, 150),
        ]);
        assert_eq!(t.oddities.cancel_without_event, 1);
        assert_eq!(t.current("bed-03").unwrap().patient_id, "p1");
    }

    #[test]
    fn demographics_come_from_the_latest_message_and_empty_fields_keep_old_ones() {
        let mut a = ev(1, Kind::Admit, "p1", bed("bed-03"), 100);
        a.patient.family = Some("Smith".into());
        a.patient.given = Some("Jane".into());
        let mut u = ev(2, Kind::Update, "p1", None, 200);
        u.patient.family = Some("Jones".into());
        let t = Timeline::replay(&[a, u]);
        let p = t.patient("p1").unwrap();
        assert_eq!(
            (p.family.as_deref(), p.given.as_deref()),
            (Some("Jones"), Some("Jane"))
        );
    }
}
