//! A series: the samples of one device's metric on one channel while the device is on one bed.
//!
//! A device moved to another bed starts a new series, so a chunk, its rollups and a bed's view
//! never mix two beds. Each series has a 4-byte id (`sid`) that keys its chunks; its
//! description is stored once under `S sid`.
//!
//! Layout: version 1, device (u8 length + bytes), metric code (u32 BE), channel (u8 length +
//! bytes, 0 = none), bed (u8 length + bytes, 0 = none).

use wardhub_model::{metric_by_code, DeviceId, Metric};

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesDesc {
    pub device: DeviceId,
    pub metric: Metric,
    pub channel: Option<String>,
    pub bed: Option<String>,
}

const V1: u8 = 1;

impl SeriesDesc {
    pub fn same(&self, device: &str, code: u32, channel: Option<&str>, bed: Option<&str>) -> bool {
        self.metric.code == code
            && self.device.as_str() == device
            && self.channel.as_deref() == channel
            && self.bed.as_deref() == bed
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.push(V1);
        let mut put = |s: &str| {
            // Ids are at most 64 bytes and channels 32 (validated by the model).
            v.push(s.len() as u8);
            v.extend_from_slice(s.as_bytes());
        };
        put(self.device.as_str());
        v.extend_from_slice(&self.metric.code.to_be_bytes());
        let mut put = |s: Option<&str>| {
            let s = s.unwrap_or("");
            v.push(s.len() as u8);
            v.extend_from_slice(s.as_bytes());
        };
        put(self.channel.as_deref());
        put(self.bed.as_deref());
        v
    }

    /// `None` for bytes this version cannot read (or a metric it no longer knows).
    pub fn decode(b: &[u8]) -> Option<SeriesDesc> {
        let (&version, rest) = b.split_first()?;
        if version != V1 {
            return None;
        }
        fn take(b: &[u8]) -> Option<(&str, &[u8])> {
            let (&n, rest) = b.split_first()?;
            let s = rest.get(..usize::from(n))?;
            Some((std::str::from_utf8(s).ok()?, &rest[usize::from(n)..]))
        }
        let (device, rest) = take(rest)?;
        let code = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let (channel, rest) = take(&rest[4..])?;
        let (bed, rest) = take(rest)?;
        if !rest.is_empty() {
            return None;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Some(SeriesDesc {
            device: DeviceId::new(device).ok()?,
            metric: metric_by_code(code)?,
            channel: opt(channel),
            bed: opt(bed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use wardhub_model::metric_by_name;

    proptest! {
        #[test]
        fn descriptions_round_trip(device in "[a-z0-9-]{1,64}",
                                   channel in proptest::option::of("[0-9.]{1,32}"),
                                   bed in proptest::option::of("[A-Za-z0-9._-]{1,64}")) {
            let d = SeriesDesc {
                device: DeviceId::new(device).unwrap(),
                metric: metric_by_name("spo2").unwrap(),
                channel,
                bed,
            };
            prop_assert_eq!(SeriesDesc::decode(&d.encode()), Some(d));
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = SeriesDesc::decode(&bytes);
        }
    }
}
