//! Who may publish and subscribe to what, and which client ids are the hub's own.

/// Client ids starting with this are the hub's own (its publisher, bus links, probes): no
/// external CONNECT may use one, so no client can kick the hub's internal connections.
pub const RESERVED_PREFIX: &str = "wardhub-";

/// Whether an external client may not use this client id.
pub fn is_reserved(client_id: &str) -> bool {
    client_id
        .get(..RESERVED_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX))
}

/// Whether the MQTT filter `req` matches only topics that `allowed` matches.
pub fn filter_within(req: &str, allowed: &str) -> bool {
    if req.starts_with('$') {
        return false;
    }
    let mut r = req.split('/');
    let mut a = allowed.split('/');
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(x)) if x != "#" => {}
            (Some(l), Some(x)) if l == x && x != "+" && x != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether some topic matches both filters.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(p), Some(q)) if p == "+" || q == "+" || p == q => {}
            _ => return false,
        }
    }
}

/// Whether `topic` matches the MQTT `filter`.
pub fn topic_matches(topic: &str, filter: &str) -> bool {
    let mut t = topic.split('/');
    let mut f = filter.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// What a connection may do.
#[derive(Debug, Clone)]
pub enum Acl {
    /// A device: its own topics only (`wardhub/v1/devices/{id}/…`).
    Device { prefix: String },
    /// A service account: subscribe within these filters, never publish.
    Service { filters: Vec<String>, level: u8 },
}

impl Acl {
    pub fn device(id: &str) -> Acl {
        Acl::Device {
            prefix: format!("wardhub/v1/devices/{id}/"),
        }
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        match self {
            Acl::Device { prefix } => {
                topic.len() > prefix.len()
                    && topic.starts_with(prefix.as_str())
                    && !topic.contains(['+', '#'])
            }
            Acl::Service { .. } => false,
        }
    }

    pub fn may_subscribe(&self, filter: &str) -> bool {
        match self {
            Acl::Device { prefix } => {
                filter.len() > prefix.len() && filter.starts_with(prefix.as_str())
            }
            Acl::Service { filters, .. } => filters.iter().any(|a| filter_within(filter, a)),
        }
    }

    /// Checks one whole packet a service account sends (fixed header included): `false`
    /// means close the connection.
    pub fn allows(&self, packet: &[u8]) -> bool {
        use super::packet::{fixed_header, take_bytes, take_props, take_u16};
        let Ok(Some((h, _))) = fixed_header(packet) else {
            return false;
        };
        let level = match self {
            Acl::Service { level, .. } => *level,
            Acl::Device { .. } => 4,
        };
        let mut b = &packet[h..];
        match packet[0] >> 4 {
            3 => match take_bytes(&mut b).map(std::str::from_utf8) {
                Some(Ok(topic)) => self.may_publish(topic),
                _ => false,
            },
            8 => {
                if take_u16(&mut b).is_none() {
                    return false;
                }
                if level == 5 && take_props(&mut b).is_none() {
                    return false;
                }
                let mut any = false;
                while !b.is_empty() {
                    match take_bytes(&mut b).map(std::str::from_utf8) {
                        Some(Ok(f)) if self.may_subscribe(f) => {}
                        _ => return false,
                    }
                    if b.is_empty() {
                        return false; // the options byte is missing
                    }
                    b = &b[1..];
                    any = true;
                }
                any
            }
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str) -> Vec<u8> {
        let mut p = vec![0x32, (2 + topic.len() + 2 + 2) as u8];
        p.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        p.extend_from_slice(topic.as_bytes());
        p.extend_from_slice(&[0, 1]); // packet id
        p.extend_from_slice(b"{}");
        p
    }

    fn subscribe(filters: &[&str]) -> Vec<u8> {
        let mut body = vec![0, 1];
        for f in filters {
            body.extend_from_slice(&(f.len() as u16).to_be_bytes());
            body.extend_from_slice(f.as_bytes());
            body.push(1);
        }
        let mut p = vec![0x82, body.len() as u8];
        p.extend(body);
        p
    }

    #[test]
    fn acl_confines_a_device_to_its_topics() {
        let acl = Acl::device("mon-1");
        assert!(acl.may_publish("wardhub/v1/devices/mon-1/obs"));
        assert!(acl.may_publish("wardhub/v1/devices/mon-1/status"));
        assert!(!acl.may_publish("wardhub/v1/devices/mon-2/obs"));
        assert!(!acl.may_publish("wardhub/v1/devices/mon-10/obs"));
        assert!(!acl.may_publish("wardhub/v1/devices/mon-1"));
        assert!(!acl.may_publish("wardhub/v1/devices/mon-1/+"));
        assert!(!acl.may_publish("wardhub/v1/wards/ward-1/alarms"));
        assert!(!acl.may_publish(""));
        assert!(acl.may_subscribe("wardhub/v1/devices/mon-1/#"));
        assert!(!acl.may_subscribe("wardhub/v1/devices/+/obs"));
        assert!(!acl.may_subscribe("#"));
    }

    #[test]
    fn service_filters_are_subsets() {
        assert!(filter_within(
            "wardhub/v1/wards/w1/alarms",
            "wardhub/v1/wards/#"
        ));
        assert!(filter_within(
            "wardhub/v1/wards/+/alarms",
            "wardhub/v1/wards/#"
        ));
        assert!(filter_within(
            "wardhub/v1/wards/+/alarms",
            "wardhub/v1/wards/+/alarms"
        ));
        assert!(!filter_within("wardhub/v1/#", "wardhub/v1/wards/#"));
        assert!(!filter_within(
            "wardhub/v1/wards/#",
            "wardhub/v1/wards/+/alarms"
        ));
        assert!(!filter_within(
            "wardhub/v1/devices/x/obs",
            "wardhub/v1/wards/#"
        ));
        assert!(!filter_within(
            "$share/g/wardhub/v1/wards/#",
            "wardhub/v1/wards/#"
        ));
        let acl = Acl::Service {
            filters: vec!["wardhub/v1/wards/#".into()],
            level: 4,
        };
        assert!(acl.allows(&subscribe(&["wardhub/v1/wards/w1/alarms"])));
        assert!(!acl.allows(&subscribe(&["wardhub/v1/wards/w1/alarms", "#"])));
        assert!(!acl.allows(&subscribe(&[])));
        assert!(!acl.allows(&publish("wardhub/v1/wards/w1/alarms")));
        assert!(!acl.allows(&[0x30, 1, 0]));
        assert!(acl.allows(&[0xC0, 0]));
    }

    #[test]
    fn overlaps_and_matches() {
        assert!(filters_overlap("wardhub/v1/devices/+/+", "wardhub/v1/#"));
        assert!(filters_overlap(
            "wardhub/v1/devices/+/+",
            "wardhub/v1/devices/m1/obs"
        ));
        assert!(filters_overlap("#", "a"));
        assert!(!filters_overlap(
            "wardhub/v1/devices/+/+",
            "wardhub/v1/wards/#"
        ));
        assert!(!filters_overlap("a/b", "a/b/c"));
        assert!(topic_matches(
            "wardhub/v1/devices/m1/obs",
            "wardhub/v1/devices/m1/#"
        ));
        assert!(topic_matches(
            "wardhub/v1/devices/m1/obs",
            "wardhub/v1/devices/+/obs"
        ));
        assert!(!topic_matches(
            "wardhub/v1/devices/m1/obs",
            "wardhub/v1/devices/m1"
        ));
    }

    #[test]
    fn reserved_ids() {
        for id in [
            "wardhub-hub",
            "wardhub-sub-wardhub_v1_devices__",
            "WARDHUB-probe",
        ] {
            assert!(is_reserved(id), "{id}");
        }
        for id in ["mon-1", "wardhub", "ward-hub-1"] {
            assert!(!is_reserved(id), "{id}");
        }
    }
}
