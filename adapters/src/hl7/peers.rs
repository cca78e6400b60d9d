//! Who may connect to the MLLP listener: each peer (a monitor, an IHE PCD gateway) is a source
//! address allow-list and/or a client certificate (its subject CN or SHA-256, over TLS), and
//! optionally the MSH-3 sending applications it may send as. A connection that matches no
//! peer is refused at connect, before a byte of HL7 is read (unless unknown peers are
//! allowed, for a lab).

use std::net::IpAddr;

use crate::tls::PeerIdentity;

/// An address or a CIDR block (`10.1.2.0/24`, `fd00::/8`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// One peer allowed to connect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// A name for logs and the operator (not a credential).
    pub name: String,
    /// Source addresses or CIDR blocks it connects from; empty: any address (then a
    /// certificate is required).
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Its client certificate's subject common name (needs the MLLP TLS listener with a
    /// client CA).
    #[serde(default)]
    pub certificate_cn: Option<String>,
    /// Or the SHA-256 (hex) of its certificate: pins exactly one certificate.
    #[serde(default)]
    pub certificate_sha256: Option<String>,
    /// MSH-3 sending applications it may send as; empty: any.
    #[serde(default)]
    pub senders: Vec<String>,
    /// Gateway mode (an IHE PCD Device Observation Reporter: one connection, many beds):
    /// each message's bed is its PV1-3 bed, checked against the registry's beds, instead of
    /// each device's binding.
    #[serde(default)]
    pub gateway: bool,
    /// In gateway mode: register devices the registry does not know under the gateway
    /// (bound to the message's bed); otherwise they are refused.
    #[serde(default)]
    pub auto_create_devices: bool,
}

/// Peers, checked.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    peers: Vec<(Peer, Vec<Cidr>)>,
}

/// One peer a connection matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub name: String,
    /// The senders it may send as (empty: any).
    pub senders: Vec<String>,
    /// Gateway mode, and whether unknown devices are registered under it.
    pub gateway: Option<bool>,
}

/// What a connection was admitted as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// These peers.
    Peers(Vec<Matched>),
    /// No peer matched, and unknown peers are allowed (lab setups).
    Unknown,
}

impl Admitted {
    /// Whether a message with MSH-3 `sender` may come over this connection.
    pub fn may_send_as(&self, sender: &str) -> bool {
        match self {
            Admitted::Unknown => true,
            Admitted::Peers(p) => p.iter().any(|m| {
                m.senders.is_empty() || m.senders.iter().any(|s| s.eq_ignore_ascii_case(sender))
            }),
        }
    }

    /// The gateway this connection is (name, auto-create devices), when a matched peer is
    /// one that may send as `sender`.
    pub fn gateway_for(&self, sender: &str) -> Option<(String, bool)> {
        match self {
            Admitted::Unknown => None,
            Admitted::Peers(p) => p
                .iter()
                .filter(|m| {
                    m.senders.is_empty() || m.senders.iter().any(|s| s.eq_ignore_ascii_case(sender))
                })
                .find_map(|m| m.gateway.map(|auto| (m.name.clone(), auto))),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Admitted::Unknown => "unknown".into(),
            Admitted::Peers(p) => p
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

impl Peers {
    pub fn new(peers: Vec<Peer>) -> Result<Peers, String> {
        let mut out = Vec::new();
        for p in peers {
            if p.name.trim().is_empty() {
                return Err("an HL7 peer needs a name".into());
            }
            let cidrs = p
                .allow_from
                .iter()
                .map(|s| s.parse::<Cidr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("HL7 peer {}: {e}", p.name))?;
            let has_cert = p.certificate_cn.is_some() || p.certificate_sha256.is_some();
            if cidrs.is_empty() && !has_cert {
                return Err(format!(
                    "HL7 peer {}: give allow_from, a certificate, or both",
                    p.name
                ));
            }
            if let Some(h) = &p.certificate_sha256 {
                if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!(
                        "HL7 peer {}: certificate_sha256 must be 64 hex digits",
                        p.name
                    ));
                }
            }
            out.push((p, cidrs));
        }
        Ok(Peers { peers: out })
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Whether any peer could still match `ip` once a certificate is known (so a TLS
    /// handshake is worth doing).
    pub fn may_match_address(&self, ip: IpAddr) -> bool {
        self.peers
            .iter()
            .any(|(_, c)| c.is_empty() || c.iter().any(|c| c.contains(ip)))
    }

    /// The peers a connection from `ip` with (optionally) a verified certificate matches.
    pub fn admit(&self, ip: IpAddr, cert: Option<&PeerIdentity>) -> Vec<Matched> {
        self.peers
            .iter()
            .filter(|(p, cidrs)| {
                let addr_ok = cidrs.is_empty() || cidrs.iter().any(|c| c.contains(ip));
                let cn_ok = p
                    .certificate_cn
                    .as_ref()
                    .is_none_or(|cn| cert.and_then(|c| c.common_name.as_ref()) == Some(cn));
                let fp_ok = p
                    .certificate_sha256
                    .as_ref()
                    .is_none_or(|h| cert.is_some_and(|c| c.sha256.eq_ignore_ascii_case(h)));
                addr_ok && cn_ok && fp_ok
            })
            .map(|(p, _)| Matched {
                name: p.name.clone(),
                senders: p.senders.clone(),
                gateway: p.gateway.then_some(p.auto_create_devices),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_match_what_they_cover() {
        let c: Cidr = "10.1.2.0/24".parse().unwrap();
        assert!(c.contains(ip("10.1.2.200")));
        assert!(!c.contains(ip("10.1.3.1")));
        assert!(c.contains(ip("::ffff:10.1.2.9")), "IPv4-mapped IPv6");
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.168.1.1")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("bed-01".parse::<Cidr>().is_err());
    }

    #[test]
    fn a_peer_needs_its_address_and_its_certificate() {
        let peers = Peers::new(vec![
            Peer {
                name: "gw".into(),
                allow_from: vec!["10.0.0.0/8".into()],
                certificate_cn: Some("gw-icu".into()),
                certificate_sha256: None,
                senders: vec!["GATEWAY".into()],
                gateway: true,
                auto_create_devices: false,
            },
            Peer {
                name: "mon".into(),
                allow_from: vec!["10.9.9.9".into()],
                certificate_cn: None,
                certificate_sha256: None,
                senders: vec![],
                gateway: false,
                auto_create_devices: false,
            },
        ])
        .unwrap();
        let cert = PeerIdentity {
            common_name: Some("gw-icu".into()),
            sha256: "00".repeat(32),
        };
        assert_eq!(peers.admit(ip("10.1.1.1"), Some(&cert)).len(), 1);
        assert!(
            peers.admit(ip("10.1.1.1"), None).is_empty(),
            "the certificate is required"
        );
        assert!(
            peers.admit(ip("192.168.0.1"), Some(&cert)).is_empty(),
            "and the address"
        );
        let admitted = Admitted::Peers(peers.admit(ip("10.1.1.1"), Some(&cert)));
        assert!(admitted.may_send_as("gateway"));
        assert!(!admitted.may_send_as("OTHER"));
        assert_eq!(admitted.gateway_for("GATEWAY"), Some(("gw".into(), false)));
        let any = Admitted::Peers(peers.admit(ip("10.9.9.9"), None));
        assert!(any.may_send_as("OTHER"));
        assert!(Peers::new(vec![Peer {
            name: "x".into(),
            allow_from: vec![],
            certificate_cn: None,
            certificate_sha256: None,
            senders: vec![],
            gateway: false,
            auto_create_devices: false,
        }])
        .is_err());
    }
}
