//! Responses on AWS's wire: the EC2 XML envelope for every error, whatever layer found it (the
//! EC2 handler, the router's 404 and 405, the body bounds, the connection cap, hyper's own
//! refusals), each with a request id in the body and in `x-amzn-RequestId`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_ec2_wire::encode::error_body;
use kumo_ec2_wire::Ec2Error;

/// A request id in AWS's form (a UUID).
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    kumo_model::ids::format_uuid(b)
}

/// An XML response with the request id header.
pub fn xml(status: StatusCode, request_id: &str, body: Vec<u8>) -> Response {
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

/// An EC2 error at its status.
pub fn ec2_error(err: &Ec2Error, request_id: &str) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST);
    xml(status, request_id, error_body(err, request_id))
}

/// A refusal of the HTTP layer rather than of EC2: the status says what happened, the body is
/// EC2's envelope. After one, the connection is closed: the request's body may be unread.
pub fn http_error(status: StatusCode, code: &'static str, message: String) -> Response {
    let rid = request_id();
    let mut r = xml(
        status,
        &rid,
        error_body(&Ec2Error::new(code, message), &rid),
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// EC2's code for an HTTP-level status: `InvalidRequest` ("The request is not valid"), except
/// a timed-out read (`RequestTimeout`, which SDKs retry) and the connection cap
/// (`RequestLimitExceeded`, EC2's throttling answer, retried with back-off).
pub fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        408 => "RequestTimeout",
        503 => "RequestLimitExceeded",
        500 => "InternalError",
        _ => "InvalidRequest",
    }
}

/// The message for an HTTP-level status.
pub fn message_for(status: StatusCode) -> String {
    match status.as_u16() {
        400 => "The request is not valid HTTP.".into(),
        404 => "The requested path is not served. The EC2 Query API is served at /.".into(),
        405 => "The HTTP method is not allowed here. The EC2 Query API takes GET or POST.".into(),
        408 => "The request was not received in time.".into(),
        413 => format!(
            "The request body is larger than the {} bytes accepted.",
            crate::body::MAX_BODY
        ),
        414 => "The request URI is too long.".into(),
        431 => "The request header fields are too large.".into(),
        503 => "Request limit exceeded.".into(),
        s => format!("The request failed with HTTP status {s}."),
    }
}

/// The router's answer to a path it does not serve.
pub async fn not_found() -> Response {
    let s = StatusCode::NOT_FOUND;
    http_error(s, code_for(s), message_for(s))
}

/// The router's answer to a method a path does not take.
pub async fn method_not_allowed() -> Response {
    let s = StatusCode::METHOD_NOT_ALLOWED;
    http_error(s, code_for(s), message_for(s))
}

/// A complete HTTP/1.1 response in bytes, for the layers below the router (the connection
/// cap, hyper's own refusals), which write to the socket themselves.
pub fn raw_error(status: StatusCode) -> Vec<u8> {
    let rid = request_id();
    let err = Ec2Error::new(code_for(status), message_for(status));
    let body = error_body(&err, &rid);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/xml;charset=UTF-8\r\nx-amzn-requestid: {rid}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_errors_are_complete_responses() {
        let raw = String::from_utf8(raw_error(StatusCode::SERVICE_UNAVAILABLE)).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(body.contains("<Code>RequestLimitExceeded</Code>"), "{body}");
        assert!(body.contains("<RequestID>"), "{body}");
    }
}
