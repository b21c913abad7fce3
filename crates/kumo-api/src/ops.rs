//! Kumo's own endpoints that change state: `POST /_kumo/reset` (and moto's
//! `/moto-api/reset`) and `POST /_kumo/admin/{op}`.
//!
//! On an open-auth server (loopback only) they answer anyone, as moto's server mode does, so
//! suites written for it run unchanged. Under strict auth each is refused with 403
//! `UnauthorizedOperation` unless the server was started with its flag (`--enable-reset`,
//! `--enable-admin`), and even then it answers only a request that passes SigV4.

use crate::api::{blocking, Raw};
use crate::wire::{ec2_error, request_id};
use crate::{auth, AppState, AuthMode};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_ec2_wire::Ec2Error;
use std::sync::Arc;

/// Whether `raw` may use its operator endpoint, enabled on strict servers by `flag`; on a
/// strict server, the signed caller.
fn authorize(
    state: &AppState,
    enabled: bool,
    flag: &str,
    raw: &Raw,
) -> Result<Option<auth::Caller>, Ec2Error> {
    // The operator's paths are the server host's: a guest calling through a VPC endpoint
    // reaches the services, never these.
    if raw.via_endpoint {
        return Err(Ec2Error::new(
            "UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation. {} is not served through a VPC endpoint.",
                raw.path
            ),
        ));
    }
    if matches!(state.auth, AuthMode::Open) {
        return Ok(None);
    }
    if !enabled {
        return Err(Ec2Error::new(
            "UnauthorizedOperation",
            format!(
                "You are not authorized to perform this operation. {} is disabled on this server; start it with {flag} to allow it to signed requests.",
                raw.path
            ),
        ));
    }
    auth::authenticate(state, &raw.auth(), state.kumo.now_ms()).map(Some)
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response();
    *r.status_mut() = status;
    r
}

/// Deletes all state.
pub async fn reset(State(state): State<Arc<AppState>>, raw: Raw) -> Response {
    if let Err(e) = authorize(&state, state.enable_reset, "--enable-reset", &raw) {
        return ec2_error(&e, &request_id());
    }
    blocking(state, |s| match s.kumo.reset() {
        Ok(()) => json(StatusCode::OK, serde_json::json!({"reset": true})),
        Err(e) => {
            tracing::error!(error = %e, "reset failed");
            ec2_error(&Ec2Error::internal(), &request_id())
        }
    })
    .await
}

/// `kumo admin …`: operator actions, as JSON in and out; errors in EC2's envelope.
pub async fn admin(
    State(state): State<Arc<AppState>>,
    Path(op): Path<String>,
    raw: Raw,
) -> Response {
    let caller = match authorize(&state, state.enable_admin, "--enable-admin", &raw) {
        Ok(c) => c,
        Err(e) => return ec2_error(&e, &request_id()),
    };
    blocking(state, move |s| {
        let rid = request_id();
        match admin_call(s, &op, &raw.body, caller) {
            Ok(v) => json(StatusCode::OK, v),
            Err(e) => ec2_error(&e, &rid),
        }
    })
    .await
}

/// One admin call. A signed caller acts in its own account and its signature's region; on an
/// open server the body names them.
fn admin_call(
    s: &AppState,
    op: &str,
    body: &[u8],
    caller: Option<auth::Caller>,
) -> Result<serde_json::Value, Ec2Error> {
    let input: serde_json::Value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            Ec2Error::new(
                "InvalidRequest",
                format!("The admin call's body is not JSON: {e}"),
            )
        })?
    };
    let text = |k: &str| {
        input
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let num = |k: &str| input.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let field = |k: &str, default: &str| {
        input
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| default.to_string())
    };
    let (account, region) = match caller {
        Some(c) => (c.account, c.region),
        None => (
            field("account", &s.default_account),
            field("region", &s.default_region),
        ),
    };
    let instance = text("instance");
    match op {
        "credits" => s.kumo.admin_credits(&account, &region, &instance),
        "schedule-event" => s.kumo.admin_schedule_event(
            &account,
            &region,
            &instance,
            &text("code"),
            num("in_seconds"),
        ),
        "guest-shutdown" => s.kumo.admin_guest_shutdown(&account, &region, &instance),
        "reach" => s.kumo.admin_reach(&account, &region, &instance),
        "advance-clock" => s.kumo.admin_advance_clock(num("seconds")),
        other => Err(Ec2Error::new(
            "InvalidAction",
            format!("Unknown admin call {other}"),
        )),
    }
}
