//! The nurse dashboard: static assets from `dashboards/web/`, embedded in the binary (hospital
//! networks are closed: no CDN, no external font), served at `/`.
//!
//! `Cache-Control: no-cache` makes a wall display pick up a new hub version on its next load;
//! the Content-Security-Policy allows nothing but the hub itself.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::response::IntoResponse;

use super::access::{Access, Routes};

const INDEX_HTML: &str = include_str!("../../../dashboards/web/index.html");
const APP_JS: &str = include_str!("../../../dashboards/web/app.js");
const APP_CSS: &str = include_str!("../../../dashboards/web/app.css");
const FAVICON_SVG: &str = include_str!("../../../dashboards/web/favicon.svg");

pub(crate) const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The dashboard's routes: open, as the login screen needs them and they hold no patient data.
pub fn routes(r: Routes) -> Routes {
    r.get("/", Access::Open, || {
        asset("text/html; charset=utf-8", INDEX_HTML)
    })
    .get("/index.html", Access::Open, || {
        asset("text/html; charset=utf-8", INDEX_HTML)
    })
    .get("/app.js", Access::Open, || {
        asset("text/javascript; charset=utf-8", APP_JS)
    })
    .get("/app.css", Access::Open, || {
        asset("text/css; charset=utf-8", APP_CSS)
    })
    .get("/favicon.svg", Access::Open, || {
        asset("image/svg+xml", FAVICON_SVG)
    })
}

pub(crate) async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (HeaderName::from_static("content-security-policy"), CSP),
            (HeaderName::from_static("x-content-type-options"), "nosniff"),
            (HeaderName::from_static("referrer-policy"), "no-referrer"),
        ],
        body,
    )
}
