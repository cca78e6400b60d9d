//! The nurse dashboard: static assets from `dashboards/web/`, embedded in the binary (hospital
//! networks are closed: no CDN, no external font), served at `/`.
//!
//! `Cache-Control: no-cache` makes a wall display pick up a new hub version on its next load;
//! the Content-Security-Policy allows nothing but the hub itself.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("../../../dashboards/web/index.html");
const APP_JS: &str = include_str!("../../../dashboards/web/app.js");
const APP_CSS: &str = include_str!("../../../dashboards/web/app.css");
const FAVICON_SVG: &str = include_str!("../../../dashboards/web/favicon.svg");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The dashboard's routes (stateless: merged into the API router).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/index.html",
            get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        )
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/app.css",
            get(|| asset("text/css; charset=utf-8", APP_CSS)),
        )
        .route("/favicon.svg", get(|| asset("image/svg+xml", FAVICON_SVG)))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
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

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn assets_are_served_with_their_types_and_no_cache() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: axum::Router = super::routes();
        tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, ty, needle) in [
            (
                "/",
                "text/html; charset=utf-8",
                "<script type=\"module\" src=\"/app.js\">",
            ),
            ("/app.js", "text/javascript; charset=utf-8", "EventSource"),
            (
                "/app.css",
                "text/css; charset=utf-8",
                "prefers-reduced-motion",
            ),
            ("/favicon.svg", "image/svg+xml", "<svg"),
        ] {
            let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            assert_eq!(resp.headers()["content-type"], ty, "{path}");
            assert_eq!(resp.headers()["cache-control"], "no-cache", "{path}");
            assert!(resp.headers().contains_key("content-security-policy"));
            let body = resp.text().await.unwrap();
            assert!(body.contains(needle), "{path} lacks {needle}");
            // Closed hospital networks: nothing may come from elsewhere.
            let body = body.replace("http://www.w3.org/2000/svg", "");
            assert!(
                !body.contains("https://") && !body.contains("http://"),
                "{path} links out"
            );
        }
    }
}
