//! Who may do what through the HTTP API.
//!
//! Users and their roles come from the config (`[[users]]`), each with the SHA-256 of a bearer
//! token (tokens are random and long, so a fast hash is the right tool; the hub never stores a
//! token itself). `wardhub user token` prints a new token and the line to put in the config.
//!
//! | role | may |
//! |---|---|
//! | `nurse` | read; acknowledge and audio-pause alarms |
//! | `biomed` | read; acknowledge; manage the device registry |
//! | `admin` | everything, including alarm rules and users |

use std::collections::HashMap;
use std::fmt;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::ApiError;

/// A role of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Nurse,
    Biomed,
    Admin,
}

/// Something a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
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
            Role::Biomed => matches!(p, Permission::Acknowledge | Permission::Registry),
            Role::Nurse => matches!(p, Permission::Acknowledge),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
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
}

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub role: Role,
}

impl User {
    /// `Ok` when the role allows `p`, else a 403 naming what is missing.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if self.role.allows(p) {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("role {} may not do this ({p:?} needed)", self.role.as_str()),
            ))
        }
    }
}

/// The users the hub knows, by token hash.
#[derive(Clone, Default)]
pub struct Users {
    by_hash: HashMap<[u8; 32], User>,
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
            let user = User {
                name: u.name.clone(),
                role: u.role,
            };
            if by_hash.insert(hash, user).is_some() {
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
            User {
                name: name.into(),
                role,
            },
        );
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The user of a bearer token.
    pub fn authenticate(&self, token: &str) -> Option<&User> {
        // The map lookup compares hashes, not tokens, so its timing tells nothing about a token.
        self.by_hash.get(&sha256(token.as_bytes()))
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

/// Where the extractor finds the users.
pub trait HasUsers {
    fn users(&self) -> &Users;
}

/// An authenticated request: `Authorization: Bearer <token>`; 401 without a known token.
#[derive(Debug, Clone)]
pub struct Authenticated(pub User);

impl<S> FromRequestParts<S> for Authenticated
where
    S: HasUsers + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError(StatusCode::UNAUTHORIZED, m.to_owned());
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("this needs a bearer token (Authorization: Bearer …)"))?;
        let value = header
            .to_str()
            .map_err(|_| unauthorized("bad Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| unauthorized("Authorization must be a bearer token"))?;
        state
            .users()
            .authenticate(token.trim())
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| unauthorized("unknown or revoked token"))
    }
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
    }

    #[test]
    fn tokens_are_checked_by_hash() {
        let token = new_secret();
        assert_eq!(token.len(), 64);
        let users = Users::from_config(&[UserConfig {
            name: "ana".into(),
            role: Role::Nurse,
            token_sha256: hex(&sha256(token.as_bytes())),
        }])
        .unwrap();
        assert_eq!(users.authenticate(&token).unwrap().name, "ana");
        assert!(users.authenticate("guess").is_none());
        assert!(Users::from_config(&[UserConfig {
            name: "x".into(),
            role: Role::Admin,
            token_sha256: "abc".into()
        }])
        .is_err());
    }
}
