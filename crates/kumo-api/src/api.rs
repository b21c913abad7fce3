//! The API endpoint (`/`): authenticates a request, decodes it, routes it on its credential
//! scope's service (EC2, STS, SSM) and its `Action` or `X-Amz-Target`, and answers on AWS's
//! wire.
//!
//! No work whose cost grows with the request or the store runs on the runtime's threads,
//! which serve every other connection: a request of more than [`INLINE_BYTES`] is
//! authenticated (its body hashed), decoded and answered on the blocking pool, and so is every
//! operation but the few whose cost is fixed ([`INLINE_ACTIONS`]).

use crate::auth;
use crate::wire::{ec2_error, request_id, xml};
use crate::{cloudwatch, ssm, sts, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use kumo_ec2_wire::query::Node;
use kumo_ec2_wire::{dispatch, Ec2Error, RequestContext};
use std::sync::Arc;

/// Requests larger than this (query and body) are handled wholly on the blocking pool.
pub const INLINE_BYTES: usize = 16 * 1024;

/// Operations answered on the runtime's thread: their cost does not depend on what is stored.
const INLINE_ACTIONS: &[&str] = &[
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "GetEbsEncryptionByDefault",
    "GetEbsDefaultKmsKeyId",
];

/// The query parameters of SigV4's presigned form, which are not the operation's input.
const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// A request as it arrived.
pub struct Raw {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub query: String,
    pub body: Bytes,
    /// The request came through a VPC endpoint, from a guest.
    pub via_endpoint: bool,
}

/// A request's mark: it came through a VPC endpoint.
#[derive(Clone, Copy)]
pub struct ViaEndpoint;

/// Every endpoint reads its request whole, within the body bounds (see [`crate::body`]).
impl<S: Send + Sync> axum::extract::FromRequest<S> for Raw {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, _: &S) -> Result<Raw, Response> {
        let (parts, body) = req.into_parts();
        let body = crate::body::read(body).await?;
        Ok(Raw {
            via_endpoint: parts.extensions.get::<ViaEndpoint>().is_some(),
            method: parts.method,
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            query: parts.uri.query().unwrap_or("").to_string(),
            body,
        })
    }
}

impl Raw {
    pub fn auth(&self) -> auth::Request<'_> {
        auth::Request {
            method: &self.method,
            path: &self.path,
            headers: &self.headers,
            query: &self.query,
            body: &self.body,
        }
    }
}

/// A request authenticated, decoded and routed: what remains is to answer it.
enum Prepared {
    Ec2 {
        ctx: RequestContext,
        action: String,
        params: Node,
    },
    Sts {
        action: String,
        account: String,
        rid: String,
    },
    CloudWatch {
        op: String,
        account: String,
        region: String,
        body: Bytes,
        gzip: bool,
        rid: String,
    },
    Ssm {
        target: String,
        account: String,
        region: String,
        body: Bytes,
        /// `ws://<the Host the client used>`: where Session Manager's data channel is.
        stream_base: String,
        rid: String,
    },
}

impl Prepared {
    fn inline(&self) -> bool {
        match self {
            Prepared::Ec2 { action, .. } => INLINE_ACTIONS.contains(&action.as_str()),
            Prepared::Sts { .. } => true,
            Prepared::Ssm { .. } | Prepared::CloudWatch { .. } => false,
        }
    }
}

/// `GET /` and `POST /`.
pub async fn handle(State(state): State<Arc<AppState>>, raw: Raw) -> Response {
    if raw.body.len() + raw.query.len() > INLINE_BYTES {
        return blocking(state, move |s| match prepare(s, &raw) {
            Ok(p) => execute(s, p),
            Err(r) => r.response(),
        })
        .await;
    }
    let prepared = match prepare(&state, &raw) {
        Ok(p) => p,
        Err(r) => return r.response(),
    };
    if prepared.inline() {
        // A bug must cost one request an InternalError, never the connection.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(&state, prepared)))
            .unwrap_or_else(|_| {
                tracing::error!("handler panicked");
                internal()
            })
    } else {
        blocking(state, move |s| execute(s, prepared)).await
    }
}

fn internal() -> Response {
    ec2_error(&Ec2Error::internal(), &request_id())
}

/// Runs `f` on the blocking pool.
pub async fn blocking(
    state: Arc<AppState>,
    f: impl FnOnce(&AppState) -> Response + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(move || f(&state)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "handler panicked");
            internal()
        }
    }
}

/// A request refused before it reached its service: the error, in the wire of the service
/// it was for, and the request's id.
enum Refused {
    Ec2(Ec2Error, String),
    /// A CloudWatch JSON request: its clients could not read EC2's XML.
    CloudWatch(kumo_control::metrics::CwError, String),
}

impl Refused {
    fn response(self) -> Response {
        match self {
            Refused::Ec2(e, rid) => ec2_error(&e, &rid),
            Refused::CloudWatch(e, rid) => cloudwatch::error(cloudwatch::Protocol::Json, &rid, &e),
        }
    }
}

/// Whether the request names a CloudWatch operation in `X-Amz-Target` (JSON 1.0).
fn is_cloudwatch(raw: &Raw) -> bool {
    raw.headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with(cloudwatch::SERVICE))
}

/// Authentication first, so an unsigned or forged request costs no decoding; then the
/// parameters, then the route.
fn prepare(state: &AppState, raw: &Raw) -> Result<Prepared, Refused> {
    let rid = request_id();
    let caller = match auth::authenticate(state, &raw.auth(), state.kumo.now_ms()) {
        Ok(c) => c,
        Err(e) if is_cloudwatch(raw) => {
            let (code, message) = auth::service_refusal(state, &raw.auth(), &e);
            let e = kumo_control::metrics::CwError { code, message };
            return Err(Refused::CloudWatch(e, rid));
        }
        Err(e) => return Err(Refused::Ec2(e, rid)),
    };
    if let Some(target) = raw
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        if let Some(op) = target
            .strip_prefix(cloudwatch::SERVICE)
            .and_then(|t| t.strip_prefix('.'))
        {
            if caller.service.as_deref().is_none_or(|s| s == "monitoring") {
                return Ok(Prepared::CloudWatch {
                    op: op.to_string(),
                    account: caller.account,
                    region: caller.region,
                    body: raw.body.clone(),
                    gzip: cloudwatch::gzipped(&raw.headers),
                    rid,
                });
            }
        }
        if caller.service.as_deref().is_none_or(|s| s == "ssm") && target.starts_with("AmazonSSM.")
        {
            // Session Manager's data channel is on this server, at the address the client
            // used.
            let host = raw
                .headers
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("127.0.0.1");
            return Ok(Prepared::Ssm {
                target: target.to_string(),
                account: caller.account,
                region: caller.region,
                body: raw.body.clone(),
                stream_base: format!("ws://{host}"),
                rid,
            });
        }
    }
    let input: &[u8] = if raw.method == Method::GET {
        raw.query.as_bytes()
    } else {
        &raw.body
    };
    let mut params = match Node::parse(input) {
        Ok(p) => p,
        Err(e) => return Err(Refused::Ec2(e, rid)),
    };
    for p in PRESIGN_PARAMS {
        params.take(p);
    }
    let action = params.take("Action");
    let service = caller.service.clone().unwrap_or_else(|| {
        if action.as_deref() == Some("GetCallerIdentity") {
            "sts".into()
        } else {
            "ec2".into()
        }
    });
    let Some(action) = action else {
        return Err(Refused::Ec2(
            Ec2Error::new(
                "MissingAction",
                "The request must contain the parameter Action",
            ),
            rid,
        ));
    };
    params.take("Version");
    match service.as_str() {
        "sts" => Ok(Prepared::Sts {
            action,
            account: caller.account,
            rid,
        }),
        "ec2" => Ok(Prepared::Ec2 {
            ctx: RequestContext {
                account_id: caller.account,
                region: caller.region,
                request_id: rid,
                dry_run: false,
                client_token: None,
            },
            action,
            params,
        }),
        other => Err(Refused::Ec2(
            Ec2Error::new(
                "InvalidAction",
                format!("Kumo does not serve the {other} service."),
            ),
            rid,
        )),
    }
}

fn execute(state: &AppState, prepared: Prepared) -> Response {
    match prepared {
        Prepared::Sts {
            action,
            account,
            rid,
        } => sts::handle(&action, &account, &rid),
        Prepared::CloudWatch {
            op,
            account,
            region,
            body,
            gzip,
            rid,
        } => cloudwatch::run(
            &state.kumo,
            cloudwatch::Protocol::Json,
            &op,
            &account,
            &region,
            &body,
            gzip,
            &rid,
        ),
        Prepared::Ssm {
            target,
            account,
            region,
            body,
            stream_base,
            rid,
        } => ssm::handle(
            &state.kumo,
            &target,
            &ssm::Caller {
                account: &account,
                region: &region,
                stream_base: &stream_base,
            },
            &body,
            &rid,
        ),
        Prepared::Ec2 {
            mut ctx,
            action,
            params,
        } => {
            tracing::debug!(action = %action, account = %ctx.account_id, region = %ctx.region, request_id = %ctx.request_id, "request");
            let rid = ctx.request_id.clone();
            match dispatch(&state.kumo, &mut ctx, &action, &params) {
                Ok(body) => xml(StatusCode::OK, &rid, body),
                Err(e) => {
                    if e.code() == "InternalError" {
                        tracing::error!(action = %action, request_id = %rid, "internal error");
                    }
                    ec2_error(&e, &rid)
                }
            }
        }
    }
}
