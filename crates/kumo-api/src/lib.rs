//! Kumo's HTTP front: routes each request on its SigV4 credential scope's service and its
//! `Action`, gives it a request id, and maps results and errors onto AWS's wire. No EC2 rules
//! live here.

mod auth;
pub mod sigv4;
mod ssm;
mod sts;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use kumo_control::Kumo;
use kumo_ec2_wire::encode::error_body;
use kumo_ec2_wire::query::Node;
use kumo_ec2_wire::{dispatch, Ec2Error, RequestContext};
use std::sync::Arc;

pub use auth::{AuthMode, Credentials};

/// Everything a request handler needs.
pub struct AppState {
    pub kumo: Kumo,
    pub auth: AuthMode,
    /// The account of access keys that are not 12 digits.
    pub default_account: String,
    /// The region of unsigned requests.
    pub default_region: String,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", post(api).get(api))
        .route("/_kumo/health", get(health))
        .route("/_kumo/reset", post(reset))
        .route("/moto-api/reset", post(reset))
        .route("/_kumo/admin/{op}", post(admin))
        .with_state(state)
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        "{\"status\":\"ok\"}",
    )
}

async fn reset(State(state): State<Arc<AppState>>) -> Response {
    let s = state.clone();
    match tokio::task::spawn_blocking(move || s.kumo.reset()).await {
        Ok(Ok(())) => (
            [(header::CONTENT_TYPE, "application/json")],
            "{\"reset\":true}",
        )
            .into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "reset failed").into_response(),
    }
}

/// `kumo admin …`: operator actions, as JSON. Open-auth servers only (they listen on
/// loopback); a strict server refuses them.
async fn admin(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(op): axum::extract::Path<String>,
    body: Bytes,
) -> Response {
    let json = |status: StatusCode, v: serde_json::Value| {
        ([(header::CONTENT_TYPE, "application/json")], v.to_string())
            .into_response()
            .tap_status(status)
    };
    if !matches!(state.auth, AuthMode::Open) {
        return json(
            StatusCode::FORBIDDEN,
            serde_json::json!({"code": "AuthFailure", "message": "Admin calls are served only by open-auth (loopback) servers."}),
        );
    }
    let input: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text = |k: &str| {
        input
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let num = |k: &str| input.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let account = input
        .get("account")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| state.default_account.clone());
    let region = input
        .get("region")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| state.default_region.clone());
    let (instance, code, in_seconds, seconds) = (
        text("instance"),
        text("code"),
        num("in_seconds"),
        num("seconds"),
    );
    let s = state.clone();
    let result = tokio::task::spawn_blocking(move || match op.as_str() {
        "credits" => s.kumo.admin_credits(&account, &region, &instance),
        "schedule-event" => s
            .kumo
            .admin_schedule_event(&account, &region, &instance, &code, in_seconds),
        "guest-shutdown" => s.kumo.admin_guest_shutdown(&account, &region, &instance),
        "advance-clock" => s.kumo.admin_advance_clock(seconds),
        other => Err(Ec2Error::new(
            "InvalidAction",
            format!("Unknown admin call {other}"),
        )),
    })
    .await;
    match result {
        Ok(Ok(v)) => json(StatusCode::OK, v),
        Ok(Err(e)) => json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"code": e.code(), "message": e.message()}),
        ),
        Err(_) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"code": "InternalError"}),
        ),
    }
}

trait TapStatus {
    fn tap_status(self, status: StatusCode) -> Self;
}

impl TapStatus for Response {
    fn tap_status(mut self, status: StatusCode) -> Self {
        *self.status_mut() = status;
        self
    }
}

/// A request id in AWS's form (a UUID).
fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    kumo_model::ids::format_uuid(b)
}

fn xml(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn ec2_error(err: &Ec2Error, request_id: &str) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    xml(status, request_id, error_body(err, request_id))
}

async fn api(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let rid = request_id();
    let raw: &[u8] = if method == Method::GET {
        query.as_deref().unwrap_or("").as_bytes()
    } else {
        &body
    };
    let mut params = match Node::parse(raw) {
        Ok(p) => p,
        Err(e) => return ec2_error(&e, &rid),
    };
    let action = params.take("Action");
    let caller = match auth::authenticate(&state, &method, &headers, query.as_deref(), &body) {
        Ok(c) => c,
        Err(e) => return ec2_error(&e, &rid),
    };
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        if caller.service.as_deref().is_none_or(|s| s == "ssm") && target.starts_with("AmazonSSM.")
        {
            return ssm::handle(
                &state.kumo,
                target,
                &caller.account,
                &caller.region,
                &body,
                &rid,
            );
        }
    }
    let service = caller.service.clone().unwrap_or_else(|| {
        if action.as_deref() == Some("GetCallerIdentity") {
            "sts".into()
        } else {
            "ec2".into()
        }
    });
    let Some(action) = action else {
        return ec2_error(
            &Ec2Error::new(
                "MissingAction",
                "The request must contain the parameter Action",
            ),
            &rid,
        );
    };
    params.take("Version");
    match service.as_str() {
        "sts" => sts::handle(&action, &caller.account, &rid),
        "ec2" => {
            let mut ctx = RequestContext {
                account_id: caller.account,
                region: caller.region,
                request_id: rid.clone(),
                dry_run: false,
                client_token: None,
            };
            tracing::debug!(action = %action, account = %ctx.account_id, region = %ctx.region, request_id = %rid, "request");
            // Reads answer on the I/O thread; anything that writes (fsync, key generation)
            // moves to the blocking pool so it never stalls other connections.
            let result = if action.starts_with("Describe") || action.starts_with("Get") {
                // A bug must cost one request an InternalError, never the connection.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    dispatch(&state.kumo, &mut ctx, &action, &params)
                }))
                .unwrap_or_else(|_| {
                    tracing::error!(action = %action, "handler panicked");
                    Err(Ec2Error::internal())
                })
            } else {
                let s = state.clone();
                let a = action.clone();
                match tokio::task::spawn_blocking(move || dispatch(&s.kumo, &mut ctx, &a, &params))
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, action = %action, "handler panicked");
                        Err(Ec2Error::internal())
                    }
                }
            };
            match result {
                Ok(body) => xml(StatusCode::OK, &rid, body),
                Err(e) => {
                    if e.code() == "InternalError" {
                        tracing::error!(action = %action, request_id = %rid, "internal error");
                    }
                    ec2_error(&e, &rid)
                }
            }
        }
        other => ec2_error(
            &Ec2Error::new(
                "InvalidAction",
                format!("Kumo does not serve the {other} service."),
            ),
            &rid,
        ),
    }
}
