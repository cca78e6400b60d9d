//! Who may do what through the HTTP API.
//!
//! Users and their roles come from the config (`[[users]]`), each with the SHA-256 of a bearer
//! token (tokens are random and long, so a fast hash is the right tool; the hub never stores a
//! token itself) and an optional expiry. `wardhub user token` prints a new token and the line
//! to put in the config. An admin can revoke a user's token at run time
//! ([`Revocations`], kept in the store); the dashboard trades a token for a session cookie
//! ([`Sessions`]); failed logins are limited per source ([`FailureLimiter`]).
//!
//! | role | may |
//! |---|---|
//! | `viewer` | read (wall displays) |
//! | `nurse` | read; acknowledge and audio-pause alarms; bed alarm limits within the safe range |
//! | `biomed` | read; acknowledge; manage the device registry |
//! | `admin` | everything, including ward rules, limits outside the safe range, users, the audit log |

mod limiter;
mod revoked;
mod sessions;

pub use limiter::FailureLimiter;
pub use revoked::{Revocation, Revocations};
pub use sessions::{Session, Sessions, SESSION_COOKIE};

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A role of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Nurse,
    Biomed,
    Admin,
}

/// Something a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read patient data (every role).
    Read,
    /// Acknowledge or audio-pause alarms.
    Acknowledge,
    /// Change the device registry (add, bind, retire, credentials).
    Registry,
    /// Change alarm rules, users, configuration.
    Admin,
}

impl Role {
    pub fn allows(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::Biomed => matches!(
                p,
                Permission::Read | Permission::Acknowledge | Permission::Registry
            ),
            Role::Nurse => matches!(p, Permission::Read | Permission::Acknowledge),
            Role::Viewer => matches!(p, Permission::Read),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Nurse => "nurse",
            Role::Biomed => "biomed",
            Role::Admin => "admin",
        }
    }
}

/// A user as configured.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the user's bearer token.
    pub token_sha256: String,
    /// When the token stops working (RFC 3339); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

/// A user as the hub keeps it: who, and until when the token works.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    user: User,
    /// Unix milliseconds; `None`: no expiry.
    expires_ms: Option<i64>,
}

/// Why a token was not accepted (a bounded metric label; the token itself is never logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Unknown,
    Expired,
    Revoked,
}

impl Rejected {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Unknown => "unknown",
            Rejected::Expired => "expired",
            Rejected::Revoked => "revoked",
        }
    }
}

/// A user as the admin API lists it (no token, no hash).
#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub role: Role,
    pub expires: Option<String>,
    pub revoked: Option<Revocation>,
}

/// A role that may not do what was asked (the HTTP API answers it with 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {role} may not do this ({needed:?} needed)")]
pub struct Forbidden {
    pub role: &'static str,
    pub needed: Permission,
}

impl User {
    /// `Ok` when the role allows `p`, else what is missing.
    pub fn require(&self, p: Permission) -> Result<(), Forbidden> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(Forbidden {
                role: self.role.as_str(),
                needed: p,
            })
        }
    }
}

/// The users the hub knows, by token hash.
#[derive(Clone, Default)]
pub struct Users {
    by_hash: HashMap<[u8; 32], Entry>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("count", &self.by_hash.len())
            .finish()
    }
}

/// A bad `[[users]]` entry.
#[derive(Debug, thiserror::Error)]
#[error("users: {0}")]
pub struct UsersError(pub String);

impl Users {
    pub fn from_config(users: &[UserConfig]) -> Result<Users, UsersError> {
        let mut by_hash = HashMap::new();
        for u in users {
            if u.name.is_empty() || u.name.len() > 64 || u.name.chars().any(char::is_control) {
                return Err(UsersError(format!(
                    "user name {:?} must be 1-64 printable characters",
                    u.name
                )));
            }
            let hash = parse_hex32(&u.token_sha256).ok_or_else(|| {
                UsersError(format!("token_sha256 of {} must be 64 hex digits", u.name))
            })?;
            let expires_ms = match &u.expires {
                None => None,
                Some(t) => Some(wardhub_adapters::model::parse_time(t).ok_or_else(|| {
                    UsersError(format!(
                        "expires of {} ({t:?}) is not an RFC 3339 time",
                        u.name
                    ))
                })?),
            };
            let entry = Entry {
                user: User {
                    name: u.name.clone(),
                    role: u.role,
                },
                expires_ms,
            };
            if by_hash.insert(hash, entry).is_some() {
                return Err(UsersError(format!(
                    "the token of {} is also another user's",
                    u.name
                )));
            }
        }
        Ok(Users { by_hash })
    }

    /// Adds a user with a plain token (for `demo` and tests, whose tokens are made at start).
    pub fn add(&mut self, name: &str, role: Role, token: &str) {
        self.by_hash.insert(
            sha256(token.as_bytes()),
            Entry {
                user: User {
                    name: name.into(),
                    role,
                },
                expires_ms: None,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The names of the users whose role allows `p`, sorted (the people a roster may name:
    /// those who may take an alarm).
    pub fn names_with(&self, p: Permission) -> Vec<String> {
        let mut v: Vec<String> = self
            .by_hash
            .values()
            .filter(|e| e.user.role.allows(p))
            .map(|e| e.user.name.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The user of a bearer token at `now_ms`, unless it is unknown, expired or revoked.
    pub fn authenticate(
        &self,
        token: &str,
        now_ms: i64,
        revoked: &Revocations,
    ) -> Result<&User, Rejected> {
        // The map lookup compares hashes, not tokens, so its timing tells nothing about a token.
        self.by_token_hash(&sha256(token.as_bytes()), now_ms, revoked)
    }

    /// The user of a token hash (a session's), unless that token is gone from the config,
    /// expired or revoked: a session never outlives its token.
    pub fn by_token_hash(
        &self,
        hash: &[u8; 32],
        now_ms: i64,
        revoked: &Revocations,
    ) -> Result<&User, Rejected> {
        let entry = self.by_hash.get(hash).ok_or(Rejected::Unknown)?;
        if entry.expires_ms.is_some_and(|e| now_ms >= e) {
            return Err(Rejected::Expired);
        }
        if revoked.is_revoked(hash) {
            return Err(Rejected::Revoked);
        }
        Ok(&entry.user)
    }

    /// The token hashes of a user (one per configured entry).
    pub fn hashes_of(&self, name: &str) -> Vec<[u8; 32]> {
        self.by_hash
            .iter()
            .filter(|(_, e)| e.user.name == name)
            .map(|(h, _)| *h)
            .collect()
    }

    /// Every user, by name.
    pub fn list(&self, revoked: &Revocations) -> Vec<UserInfo> {
        let mut out: Vec<UserInfo> = self
            .by_hash
            .iter()
            .map(|(h, e)| UserInfo {
                name: e.user.name.clone(),
                role: e.user.role,
                expires: e.expires_ms.map(wardhub_adapters::model::format_rfc3339),
                revoked: revoked.get(h),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(out)
}

/// A new random secret: 32 bytes from the OS, hex (64 characters).
pub fn new_secret() -> String {
    let mut buf = [0u8; 32];
    // The OS random source failing is not something a hub can work around; without it no
    // credential can be issued safely.
    getrandom::fill(&mut buf).expect("the operating system's random source");
    hex(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert!(Role::Nurse.allows(Permission::Acknowledge));
        assert!(!Role::Nurse.allows(Permission::Registry));
        assert!(Role::Biomed.allows(Permission::Registry));
        assert!(!Role::Biomed.allows(Permission::Admin));
        assert!(Role::Admin.allows(Permission::Admin));
        assert!(Role::Viewer.allows(Permission::Read));
        assert!(!Role::Viewer.allows(Permission::Acknowledge));
    }

    #[test]
    fn tokens_are_checked_by_hash() {
        let token = new_secret();
        assert_eq!(token.len(), 64);
        let users = Users::from_config(&[UserConfig {
            name: "ana".into(),
            role: Role::Nurse,
            token_sha256: hex(&sha256(token.as_bytes())),
            expires: Some("2026-12-01T12:00:00Z".into()),
        }])
        .unwrap();
        let none = Revocations::in_memory();
        let before = wardhub_adapters::model::parse_time("2026-12-01T11:59:59Z").unwrap();
        assert_eq!(
            users.authenticate(&token, before, &none).unwrap().name,
            "ana"
        );
        assert_eq!(
            users.authenticate("guess", before, &none),
            Err(Rejected::Unknown)
        );
        assert_eq!(
            users.authenticate(&token, before + 1000, &none),
            Err(Rejected::Expired),
            "a token past its expiry must stop working without a restart"
        );
        none.revoke(&users.hashes_of("ana"), "ana", "admin-ada", before)
            .unwrap();
        assert_eq!(
            users.authenticate(&token, before, &none),
            Err(Rejected::Revoked)
        );
        assert!(Users::from_config(&[UserConfig {
            name: "x".into(),
            role: Role::Admin,
            token_sha256: "abc".into(),
            expires: None,
        }])
        .is_err());
    }
}
