//! The authenticated user of a request, as a handler's argument.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use super::ApiError;
use crate::auth::{Forbidden, User};

/// An authenticated request. The HTTP access guard authenticates every request of a route
/// that needs it (bearer token or session cookie) and leaves the user in the request's
/// extensions; a handler that takes `Authenticated` gets it from there (401 if absent, which
/// only a route declared open can see).
#[derive(Debug, Clone)]
pub struct Authenticated(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<User>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "this needs a login".into()))
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        ApiError(StatusCode::FORBIDDEN, e.to_string())
    }
}
