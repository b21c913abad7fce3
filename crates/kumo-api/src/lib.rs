//! Kumo's HTTP front: the connection layer ([`server`]), then routes each request on its
//! SigV4 credential scope's service and its `Action`, gives it a request id, and maps results
//! and errors onto AWS's wire. No EC2 rules live here.

mod api;
mod auth;
mod body;
pub mod channel;
mod cloudwatch;
mod ops;
pub mod server;
pub mod sigv4;
mod ssm;
mod sts;
mod wire;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use kumo_control::Kumo;
use std::sync::Arc;

pub use auth::{AuthMode, Credentials};
pub use body::{Timing as BodyTiming, MAX_BODY};
pub(crate) use wire::xml;

/// Everything a request handler needs.
pub struct AppState {
    pub kumo: Kumo,
    pub auth: AuthMode,
    /// The account of access keys that are not 12 digits.
    pub default_account: String,
    /// The region of unsigned requests.
    pub default_region: String,
    /// Under strict auth, `/_kumo/reset` and `/moto-api/reset` answer signed requests
    /// (`--enable-reset`); otherwise they are refused.
    pub enable_reset: bool,
    /// Under strict auth, `/_kumo/admin/*` answers signed requests (`--enable-admin`).
    pub enable_admin: bool,
}

/// The routes; a path or method they do not serve answers in EC2's envelope. The server
/// ([`server::serve`]) bounds each request's body before it reaches them.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(api::handle).get(api::handle))
        .route("/_kumo/health", get(health))
        .route("/_kumo/reset", post(ops::reset))
        .route("/moto-api/reset", post(ops::reset))
        .route("/_kumo/admin/{op}", post(ops::admin))
        .route("/v1/data-channel/{id}", get(channel::open))
        .route(
            "/service/{service}/operation/{op}",
            post(cloudwatch::handle_cbor),
        )
        .fallback(wire::not_found)
        .method_not_allowed_fallback(wire::method_not_allowed)
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
}
