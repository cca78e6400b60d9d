//! The observation document decoder: [`decode_observations`] walks the JSON with serde
//! visitors, without building a tree, into the document shapes the contract allows (a wrapper
//! object with an `observations` array, a bare array, one observation object). It counts
//! observations against the limit and turns document-level problems into the one reject that
//! refuses the whole document; each observation's fields go to `fields` to be checked.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{Field, Fields};
use super::Decoded;
use crate::model::{DeviceId, Millis, Reject, RejectReason, TimeLimits};

/// Decodes one observation document from `device` (see the module docs for the rules).
///
/// The size limit is not checked here; [`Decoder::decode`](super::Decoder::decode) checks it
/// first.
pub fn decode_observations(
    device: &DeviceId,
    payload: &[u8],
    now: Millis,
    limits: &TimeLimits,
    max_observations: usize,
) -> Decoded {
    let mut st = State {
        device,
        now,
        limits,
        max: max_observations,
        out: Decoded::default(),
        count: 0,
        doc_error: None,
    };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let result = DocSeed { st: &mut st }
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match result {
        Ok(()) => st.out,
        Err(e) => {
            let reject = st.doc_error.take().unwrap_or_else(|| {
                if e.is_data() {
                    Reject::new(
                        RejectReason::Schema,
                        "document must be an object or an array of objects",
                    )
                } else {
                    Reject::new(
                        RejectReason::Malformed,
                        format!(
                            "payload is not valid JSON (line {}, column {})",
                            e.line(),
                            e.column()
                        ),
                    )
                }
            });
            Decoded {
                observations: Vec::new(),
                rejects: vec![reject],
            }
        }
    }
}

/// Decoding state shared by the nested visitors.
struct State<'d> {
    device: &'d DeviceId,
    now: Millis,
    limits: &'d TimeLimits,
    max: usize,
    out: Decoded,
    count: usize,
    /// A document-level reject found by a visitor; the visitor then aborts the parse.
    doc_error: Option<Reject>,
}

impl State<'_> {
    fn abort<E: de::Error>(&mut self, reject: Reject) -> E {
        self.doc_error = Some(reject);
        E::custom("document rejected")
    }

    /// Counts one more observation; errors (aborting the parse) past the limit.
    fn count_one<E: de::Error>(&mut self) -> Result<(), E> {
        self.count += 1;
        if self.count > self.max {
            let max = self.max;
            return Err(self.abort(Reject::new(
                RejectReason::TooMany,
                format!("more than {max} observations in one document"),
            )));
        }
        Ok(())
    }

    fn finish(&mut self, index: Option<usize>, fields: Fields<'_>) {
        match fields.to_observation(self.device, self.now, self.limits) {
            Ok(obs) => self.out.observations.push(obs),
            Err(mut r) => {
                r.detail = match index {
                    Some(i) => format!("observations[{i}]: {}", r.detail),
                    None => format!("observation: {}", r.detail),
                };
                self.out.rejects.push(r);
            }
        }
    }

    fn refuse(&mut self, index: usize, detail: &str) {
        self.out.rejects.push(Reject::new(
            RejectReason::Schema,
            format!("observations[{index}]: {detail}"),
        ));
    }
}

/// The top level: an object (wrapper or single observation) or an array.
struct DocSeed<'s, 'd> {
    st: &'s mut State<'d>,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an observation document")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        visit_list(self.st, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut fields = Fields::default();
        let mut saw_list = false;
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Observations if saw_list => {
                    return Err(self.st.abort(Reject::new(
                        RejectReason::Schema,
                        "observations appears twice",
                    )))
                }
                Key::Observations => {
                    saw_list = true;
                    map.next_value_seed(ListSeed { st: &mut *self.st })?;
                }
                Key::Field(f) => fields.set(f, map.next_value()?),
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_list {
            if fields.is_empty() {
                return Err(self.st.abort(Reject::new(
                    RejectReason::Schema,
                    "document has no observations array and is not an observation",
                )));
            }
            self.st.count_one()?;
            self.st.finish(None, fields);
        }
        Ok(())
    }
}

fn visit_list<'de, A: SeqAccess<'de>>(st: &mut State<'_>, mut seq: A) -> Result<(), A::Error> {
    let mut index = 0;
    while seq.next_element_seed(ObsSeed { st, index })?.is_some() {
        index += 1;
    }
    Ok(())
}

/// The value of `observations`: must be an array.
struct ListSeed<'s, 'd> {
    st: &'s mut State<'d>,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of observations")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        visit_list(self.st, seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(self.not_array())
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        Err(self.not_array())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.not_array())
    }
}

impl ListSeed<'_, '_> {
    fn not_array<E: de::Error>(self) -> E {
        self.st.abort(Reject::new(
            RejectReason::Schema,
            "observations must be an array",
        ))
    }
}

/// One element of the observation list: an object, or refused on its own.
struct ObsSeed<'s, 'd> {
    st: &'s mut State<'d>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for ObsSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ObsSeed<'_, '_> {
    fn not_object<E: de::Error>(self) -> Result<(), E> {
        self.st.count_one()?;
        self.st.refuse(self.index, "not an object");
        Ok(())
    }
}

impl<'de> Visitor<'de> for ObsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an observation object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.st.count_one()?;
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Field(f) => fields.set(f, map.next_value()?),
                Key::Observations | Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.st.finish(Some(self.index), fields);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_object()
    }
    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<(), E> {
        self.not_object()
    }
    fn visit_i64<E: de::Error>(self, _v: i64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_u64<E: de::Error>(self, _v: u64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<(), E> {
        self.not_object()
    }
    fn visit_str<E: de::Error>(self, _v: &str) -> Result<(), E> {
        self.not_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object()
    }
}

/// An object key: the wrapper's `observations`, an observation field, or anything else.
enum Key {
    Observations,
    Field(Field),
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "observations" => Key::Observations,
                    "metric" => Key::Field(Field::Metric),
                    "value" => Key::Field(Field::Value),
                    "unit" => Key::Field(Field::Unit),
                    "time" => Key::Field(Field::Time),
                    "status" => Key::Field(Field::Status),
                    "channel" => Key::Field(Field::Channel),
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}
