//! The file-descriptor budget: the hub raises its soft `RLIMIT_NOFILE` to the hard limit at
//! start, keeps a reserve for its own files (sled, internal broker links, logs), and splits the
//! rest between its faces by their configured connection caps. When the caps do not fit, each
//! is scaled down in proportion (with a warning naming the numbers), so a flood on one face
//! can never take the descriptors another face needs.

use crate::config::{AdapterConfig, Config};

/// Descriptors kept for the hub itself.
pub const RESERVE: u64 = 512;

/// The connection caps that fit the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub mqtt: usize,
    pub http: usize,
    pub hl7: usize,
}

/// Raises the soft limit to the hard limit; returns the limit now in force (`None` where the
/// platform has no such limit).
pub fn raise_nofile_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let l = getrlimit(Resource::Nofile);
        let current = l.current?;
        if l.maximum.is_some_and(|m| m > current) || l.maximum.is_none() {
            let want = l.maximum.unwrap_or(1 << 20);
            if setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(want),
                    maximum: l.maximum,
                },
            )
            .is_ok()
            {
                return Some(want);
            }
        }
        Some(current)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The caps of `config` scaled to fit `limit` descriptors.
pub fn fit(mqtt: usize, http: usize, hl7: usize, limit: Option<u64>) -> Caps {
    let wanted = (mqtt + http + hl7) as u64;
    let Some(limit) = limit else {
        return Caps { mqtt, http, hl7 };
    };
    let budget = limit.saturating_sub(RESERVE).max(64);
    if wanted <= budget {
        return Caps { mqtt, http, hl7 };
    }
    let scale = |n: usize| ((n as u64 * budget / wanted) as usize).max(8);
    Caps {
        mqtt: scale(mqtt),
        http: scale(http),
        hl7: scale(hl7),
    }
}

/// Raises the limit and splits it for `config` (logs what it does).
pub fn split(config: &Config) -> Caps {
    let hl7 = config
        .adapters
        .iter()
        .find_map(|a| match a {
            AdapterConfig::Hl7Mllp(hl7) => Some(hl7.max_connections),
            _ => None,
        })
        .unwrap_or(0);
    let limit = raise_nofile_limit();
    let caps = fit(
        config.mqtt.max_connections,
        config.http.max_connections,
        hl7,
        limit,
    );
    let asked = Caps {
        mqtt: config.mqtt.max_connections,
        http: config.http.max_connections,
        hl7,
    };
    if caps != asked {
        tracing::warn!(
            limit = limit.unwrap_or(0),
            reserve = RESERVE,
            mqtt = caps.mqtt,
            http = caps.http,
            hl7 = caps.hl7,
            "the file-descriptor limit cannot hold the configured connection caps; \
             they are scaled down to fit (raise LimitNOFILE to restore them)"
        );
    } else {
        tracing::debug!(limit = limit.unwrap_or(0), "file-descriptor budget fits");
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_kept_and_others_scaled_in_proportion() {
        assert_eq!(
            fit(1000, 100, 100, Some(100_000)),
            Caps {
                mqtt: 1000,
                http: 100,
                hl7: 100
            }
        );
        let c = fit(16384, 1024, 1024, Some(4096));
        assert!(c.mqtt + c.http + c.hl7 <= 4096 - RESERVE as usize);
        assert!(c.http >= 8 && c.hl7 >= 8, "every face keeps a share: {c:?}");
        assert_eq!(c.http, c.hl7);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise_nofile_limit();
        #[cfg(unix)]
        {
            let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
            assert_eq!(now, l.current);
            if let (Some(c), Some(m)) = (l.current, l.maximum) {
                assert_eq!(c, m);
            }
        }
        let _ = now;
    }
}
