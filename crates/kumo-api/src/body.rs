//! Reading a request's body within bounds, set per request by [`bound`] from tower-http's
//! body types and http-body-util's limit:
//! - at most [`MAX_BODY`] bytes (a larger `Content-Length` is refused before a byte is read);
//! - a deadline for the whole body that a client sending at the minimum rate meets:
//!   `stall + length / min_rate` for a declared length, the maximum's for a chunked one
//!   (tower-http's `DeadlineBody`);
//! - for a large or chunked body, a stall timeout between two pieces (tower-http's
//!   `TimeoutBody`), so a trickle is cut off long before its deadline. A small body's deadline
//!   is already about the stall timeout, so it does without the per-piece timer.
//!
//! Here their failures become EC2's envelope: 413, 408, and 400 for a body that is not valid
//! HTTP (a malformed chunk).

use crate::wire;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use std::time::Duration;

/// The largest request body accepted (the limit axum applied before).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// Bodies up to this size get only the deadline, no per-piece timer.
const SMALL_BODY: u64 = 64 * 1024;

/// How the body of a request must arrive.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The longest pause between two pieces of a body, and the allowance before the minimum
    /// rate applies.
    pub stall: Duration,
    /// The slowest rate a body may arrive at, in bytes per second.
    pub min_rate: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            stall: Duration::from_secs(10),
            min_rate: 64 * 1024,
        }
    }
}

impl Timing {
    /// The deadline for a body of `len` bytes (of up to [`MAX_BODY`] when not declared).
    pub fn deadline(&self, len: Option<u64>) -> Duration {
        let len = len.unwrap_or(MAX_BODY as u64) as f64;
        self.stall + Duration::from_secs_f64(len / self.min_rate.max(1) as f64)
    }
}

/// The declared length of a request's body; `None` when chunked.
fn declared(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A request's body under its bounds, or the status (413) that refuses it at once.
pub fn bound<B>(headers: &HeaderMap, body: B, timing: &Timing) -> Result<Body, StatusCode>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let len = declared(headers);
    if len.is_some_and(|l| l > MAX_BODY as u64) {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY);
    let timed = tower_http::timeout::DeadlineBody::new(timing.deadline(len), limited);
    Ok(match len {
        Some(l) if l <= SMALL_BODY => Body::new(timed),
        _ => Body::new(tower_http::timeout::TimeoutBody::new(timing.stall, timed)),
    })
}

/// The whole body, or the HTTP error that ended its reading.
pub async fn read(body: Body) -> Result<Bytes, Response> {
    match body.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            let status = classify(&e);
            if status != StatusCode::BAD_REQUEST {
                tracing::debug!(error = %e, status = status.as_u16(), "request body refused");
            }
            Err(wire::http_error(
                status,
                wire::code_for(status),
                wire::message_for(status),
            ))
        }
    }
}

/// Which bound a body's error broke, from the error's chain of causes.
fn classify(e: &axum::Error) -> StatusCode {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return StatusCode::REQUEST_TIMEOUT;
        }
        if c.is::<http_body_util::LengthLimitError>() {
            return StatusCode::PAYLOAD_TOO_LARGE;
        }
        cause = c.source();
    }
    StatusCode::BAD_REQUEST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_follows_the_minimum_rate() {
        let t = Timing {
            stall: Duration::from_secs(10),
            min_rate: 64 * 1024,
        };
        assert_eq!(t.deadline(None), Duration::from_secs(42));
        assert_eq!(t.deadline(Some(64 * 1024)), Duration::from_secs(11));
        assert_eq!(t.deadline(Some(0)), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, "3000000".parse().unwrap());
        let s = bound(&h, Body::empty(), &Timing::default()).unwrap_err();
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        h.insert(header::CONTENT_LENGTH, "3".parse().unwrap());
        assert!(bound(&h, Body::from("abc"), &Timing::default()).is_ok());
    }

    #[tokio::test]
    async fn bounds_become_statuses() {
        let over = Body::new(http_body_util::Limited::new(Body::from(vec![0u8; 10]), 4));
        let r = read(over).await.unwrap_err();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let stalled = Body::new(tower_http::timeout::TimeoutBody::new(
            Duration::from_millis(10),
            Body::new(Never),
        ));
        let r = read(stalled).await.unwrap_err();
        assert_eq!(r.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(
            r.headers().get("connection").unwrap(),
            "close",
            "the rest of the body is never read, so the connection must end"
        );
    }

    /// A body that never yields a frame: a client that stopped sending.
    struct Never;

    impl axum::body::HttpBody for Never {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
            std::task::Poll::Pending
        }
    }
}
