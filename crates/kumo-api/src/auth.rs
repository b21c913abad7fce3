//! Who is calling: the access key, region and service from the SigV4 credential scope, and in
//! strict mode a verified signature.
//!
//! Strict verification follows AWS's rules for SigV4, in the header form (`Authorization`) and
//! the presigned form (`X-Amz-Signature` in the query):
//! - the signature is recomputed over the request's own method, path, query, signed headers
//!   and the SHA-256 of the body bytes it really carries. A present `X-Amz-Content-SHA256` must
//!   equal that hash; `UNSIGNED-PAYLOAD` is S3's, not EC2's, and is refused;
//! - the request's time (`X-Amz-Date`, else `Date`) is within 15 minutes of the server's clock
//!   (the test clock when it is set), and a presigned request is used within its
//!   `X-Amz-Expires` (1 s to 7 days): otherwise `RequestExpired`;
//! - a key whose credential line has a session token is accepted only with that token in
//!   `X-Amz-Security-Token`, and a key without one refuses any token.
//!
//! A failed signature, key or token answers EC2's `AuthFailure` (401).

use crate::sigv4;
use crate::AppState;
use axum::http::{HeaderMap, Method};
use kumo_ec2_wire::{DateTime, Ec2Error};
use std::collections::HashMap;
use std::path::Path;

/// How far a request's time may be from the server's, either way (AWS's 15 minutes).
const MAX_SKEW_MS: i64 = 15 * 60 * 1000;
/// The longest validity of a presigned request, in seconds (SigV4's seven days).
const MAX_EXPIRES: i64 = 604_800;

/// How requests are authenticated.
pub enum AuthMode {
    /// Any credentials are accepted; the access key picks the account. Only on loopback.
    Open,
    /// Every request must carry a valid SigV4 signature by a known key.
    Strict(Credentials),
}

/// One known access key.
struct Key {
    secret: String,
    account: String,
    /// The session token requests with this key must carry, for temporary credentials.
    token: Option<String>,
}

/// Known access keys by id.
pub struct Credentials(HashMap<String, Key>);

/// Why a credentials file cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: expected `ACCESS_KEY_ID SECRET [ACCOUNT_ID] [SESSION_TOKEN]`", path.display())]
    Line {
        path: std::path::PathBuf,
        line: usize,
    },
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl Credentials {
    /// Reads a credentials file: one `ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT_ID]
    /// [SESSION_TOKEN]` per line; `#` starts a comment. A third field of 12 digits is the
    /// account, any other third field the session token. Without an account, the key's
    /// account rule applies.
    pub fn load(path: &Path, default_account: &str) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || CredentialsError::Line {
                path: path.to_path_buf(),
                line: n + 1,
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (account, token) = match parts.as_slice() {
                [_, _] => (None, None),
                [_, _, a] if is_account(a) => (Some(*a), None),
                [_, _, t] => (None, Some(*t)),
                [_, _, a, t] if is_account(a) => (Some(*a), Some(*t)),
                _ => return Err(bad()),
            };
            let account = account
                .map(str::to_string)
                .unwrap_or_else(|| account_of(parts[0], default_account));
            map.insert(
                parts[0].to_string(),
                Key {
                    secret: parts[1].to_string(),
                    account,
                    token: token.map(str::to_string),
                },
            );
        }
        Ok(Credentials(map))
    }
}

/// An access key of 12 digits is its own account id (as LocalStack does); any other maps to
/// the default account.
pub fn account_of(access_key: &str, default_account: &str) -> String {
    if is_account(access_key) {
        access_key.to_string()
    } else {
        default_account.to_string()
    }
}

/// The authenticated caller.
pub struct Caller {
    pub account: String,
    pub region: String,
    /// The service of the credential scope; `None` for an unsigned request.
    pub service: Option<String>,
}

/// A request as authentication sees it.
pub struct Request<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub query: &'a str,
    pub body: &'a [u8],
}

/// Where a request's signature came from.
enum Form {
    Header,
    /// Presigned: the validity in seconds from `X-Amz-Expires`.
    Query {
        expires: i64,
    },
}

/// A SigV4 signature's parts.
struct SigV4 {
    form: Form,
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: String,
    signature: String,
    /// `X-Amz-Date` (or the `Date` header, converted): the time the string to sign names.
    amz_date: Option<String>,
    token: Option<String>,
}

fn auth_failure() -> Ec2Error {
    Ec2Error::new(
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    )
}

fn expired() -> Ec2Error {
    Ec2Error::new("RequestExpired", "Request has expired.")
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_header_form(h: &str, headers: &HeaderMap) -> Option<SigV4> {
    let rest = h.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => {}
        }
    }
    let amz_date = header(headers, "x-amz-date")
        .map(str::to_string)
        .or_else(|| header(headers, "date").and_then(http_date_to_amz));
    scoped(
        Form::Header,
        cred?,
        signed?,
        sig?,
        amz_date,
        header(headers, "x-amz-security-token").map(str::to_string),
    )
}

/// The presigned form: every part in the query string.
fn parse_query_form(query: &str) -> Option<SigV4> {
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if params.get("X-Amz-Algorithm").map(String::as_str) != Some("AWS4-HMAC-SHA256") {
        return None;
    }
    let expires = match params.get("X-Amz-Expires") {
        Some(e) => e.parse().unwrap_or(-1),
        None => -1,
    };
    scoped(
        Form::Query { expires },
        params.get("X-Amz-Credential")?,
        params.get("X-Amz-SignedHeaders")?,
        params.get("X-Amz-Signature")?,
        params.get("X-Amz-Date").cloned(),
        params.get("X-Amz-Security-Token").cloned(),
    )
}

fn scoped(
    form: Form,
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: Option<String>,
    token: Option<String>,
) -> Option<SigV4> {
    let mut scope = credential.splitn(5, '/');
    Some(SigV4 {
        form,
        access_key: scope.next()?.to_string(),
        date: scope.next()?.to_string(),
        region: scope.next()?.to_string(),
        service: scope.next()?.to_string(),
        signed_headers: signed_headers.to_string(),
        signature: signature.to_string(),
        amz_date,
        token,
    })
}

/// The signature a request carries, in either form.
fn signature_of(req: &Request) -> Option<SigV4> {
    match header(req.headers, "authorization") {
        Some(h) => parse_header_form(h, req.headers),
        None => parse_query_form(req.query),
    }
}

/// `Tue, 01 Dec 2026 20:59:31 GMT` (RFC 7231's date) as `20261201T205931Z`.
fn http_date_to_amz(s: &str) -> Option<String> {
    let mut f = s.split_whitespace().skip(1);
    let (day, mon, year, time) = (f.next()?, f.next()?, f.next()?, f.next()?);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == mon)? + 1;
    let iso = format!("{year}-{m:02}-{day:0>2}T{time}Z");
    let ms = DateTime::parse(&iso)?.0;
    Some(sigv4::amz_date(ms))
}

/// `20261201T205931Z` in milliseconds since the epoch.
fn amz_date_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    DateTime::parse(&iso).map(|d| d.0)
}

/// A refusal of [`authenticate`] as the JSON and query services (CloudWatch, STS) word it:
/// they tell an unsigned request, an unknown key and a bad signature apart, where EC2
/// answers `AuthFailure` to each.
pub fn service_refusal(state: &AppState, req: &Request, e: &Ec2Error) -> (&'static str, String) {
    if e.code() == "RequestExpired" {
        return ("RequestExpired", "Request has expired.".into());
    }
    let known = |k: &str| match &state.auth {
        AuthMode::Strict(creds) => creds.0.contains_key(k),
        AuthMode::Open => true,
    };
    match signature_of(req) {
        None => (
            "MissingAuthenticationToken",
            "Request is missing Authentication Token".into(),
        ),
        Some(sig) if !known(&sig.access_key) => (
            "InvalidClientTokenId",
            "The security token included in the request is invalid.".into(),
        ),
        Some(_) => (
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        ),
    }
}

/// Authenticates a request at the server's time `now_ms`.
pub fn authenticate(state: &AppState, req: &Request, now_ms: i64) -> Result<Caller, Ec2Error> {
    let parsed = signature_of(req);
    match (&state.auth, parsed) {
        (AuthMode::Open, Some(sig)) => Ok(Caller {
            account: account_of(&sig.access_key, &state.default_account),
            region: sig.region,
            service: Some(sig.service),
        }),
        (AuthMode::Open, None) => Ok(Caller {
            account: state.default_account.clone(),
            region: state.default_region.clone(),
            service: None,
        }),
        (AuthMode::Strict(_), None) => Err(Ec2Error::new(
            "AuthFailure",
            "The request is not signed with AWS Signature Version 4",
        )),
        (AuthMode::Strict(creds), Some(sig)) => {
            let key = creds.0.get(&sig.access_key).ok_or_else(auth_failure)?;
            verify(&sig, key, req, now_ms)?;
            Ok(Caller {
                account: key.account.clone(),
                region: sig.region,
                service: Some(sig.service),
            })
        }
    }
}

/// Checks a strict request's signature, then its token, then its time.
fn verify(sig: &SigV4, key: &Key, req: &Request, now_ms: i64) -> Result<(), Ec2Error> {
    let amz_date = sig.amz_date.as_deref().ok_or_else(auth_failure)?;
    let signed_at = amz_date_ms(amz_date).ok_or_else(auth_failure)?;
    // The scope's date is the signature's day; any other is a signature made for another.
    if !amz_date.starts_with(sig.date.as_str()) {
        return Err(auth_failure());
    }
    let expected = expected_signature(sig, key, req, amz_date).ok_or_else(auth_failure)?;
    if expected.len() != sig.signature.len()
        || !openssl::memcmp::eq(expected.as_bytes(), sig.signature.as_bytes())
    {
        return Err(auth_failure());
    }
    match (&key.token, &sig.token) {
        (None, None) => {}
        (Some(want), Some(got))
            if want.len() == got.len() && openssl::memcmp::eq(want.as_bytes(), got.as_bytes()) => {}
        _ => return Err(auth_failure()),
    }
    match sig.form {
        Form::Header => {
            if (now_ms - signed_at).abs() > MAX_SKEW_MS {
                return Err(expired());
            }
        }
        Form::Query { expires } => {
            if !(1..=MAX_EXPIRES).contains(&expires) {
                return Err(auth_failure());
            }
            if now_ms > signed_at + expires * 1000 || signed_at - now_ms > MAX_SKEW_MS {
                return Err(expired());
            }
        }
    }
    Ok(())
}

/// Recomputes the signature over the request's own signed headers and exact body.
fn expected_signature(sig: &SigV4, key: &Key, req: &Request, amz_date: &str) -> Option<String> {
    let body_hash = sigv4::sha256_hex(req.body);
    if let Some(claimed) = header(req.headers, "x-amz-content-sha256") {
        // The header is the client's claim about the body; the body itself is what counts.
        if !claimed.eq_ignore_ascii_case(&body_hash) {
            return None;
        }
    }
    let mut canonical_headers = Vec::new();
    let mut host_signed = false;
    for name in sig.signed_headers.split(';') {
        host_signed |= name == "host";
        let values: Vec<&str> = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        canonical_headers.push((name.to_string(), values.join(",")));
    }
    // SigV4 signs the host always: without it a signature would be good for any endpoint.
    if !host_signed {
        return None;
    }
    let query = match sig.form {
        Form::Header => sigv4::canonical_query(req.query),
        Form::Query { .. } => sigv4::canonical_query(&without_signature(req.query)),
    };
    let canonical = sigv4::canonical_request(
        req.method.as_str(),
        req.path,
        &query,
        &canonical_headers,
        &body_hash,
    );
    let scope = sigv4::Scope {
        date: &sig.date,
        region: &sig.region,
        service: &sig.service,
    };
    sigv4::sign(&key.secret, &scope, amz_date, &canonical)
}

/// The query string without its `X-Amz-Signature` pair, which the signature cannot cover.
fn without_signature(query: &str) -> String {
    query
        .split('&')
        .filter(|p| !p.starts_with("X-Amz-Signature="))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &str) -> Key {
        Key {
            secret: secret.into(),
            account: "000000000000".into(),
            token: None,
        }
    }

    #[test]
    fn parses_authorization() {
        let h = "AWS4-HMAC-SHA256 Credential=123456789012/20261127/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";
        let s = parse_header_form(h, &HeaderMap::new()).unwrap();
        assert_eq!(
            (
                s.access_key.as_str(),
                s.region.as_str(),
                s.service.as_str(),
                s.signature.as_str()
            ),
            ("123456789012", "eu-west-1", "ec2", "abc")
        );
    }

    #[test]
    fn accounts_from_keys() {
        assert_eq!(account_of("123456789012", "000000000000"), "123456789012");
        assert_eq!(account_of("AKIDEXAMPLE", "000000000000"), "000000000000");
    }

    #[test]
    fn dates() {
        assert_eq!(
            http_date_to_amz("Sun, 30 Aug 2015 12:36:00 GMT").as_deref(),
            Some("20150830T123600Z")
        );
        assert_eq!(amz_date_ms("20150830T123600Z"), Some(1_440_938_160_000));
        assert_eq!(amz_date_ms("2015-08-30T12:36:00Z"), None);
    }

    fn vanilla() -> (HeaderMap, SigV4) {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let sig = SigV4 {
            form: Form::Header,
            access_key: "AKIDEXAMPLE".into(),
            date: "20150830".into(),
            region: "us-east-1".into(),
            service: "service".into(),
            signed_headers: "host;x-amz-date".into(),
            signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".into(),
            amz_date: Some("20150830T123600Z".into()),
            token: None,
        };
        (headers, sig)
    }

    /// A `GET /` with these headers and no body.
    fn get(headers: &HeaderMap) -> Request<'_> {
        Request {
            method: &Method::GET,
            path: "/",
            headers,
            query: "",
            body: b"",
        }
    }

    #[test]
    fn aws_test_suite_vector() {
        // The "get-vanilla" case of AWS's SigV4 test suite.
        let (headers, sig) = vanilla();
        let req = get(&headers);
        let k = key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let got = expected_signature(&sig, &k, &req, "20150830T123600Z").unwrap();
        assert_eq!(got, sig.signature);
        let at = amz_date_ms("20150830T123600Z").unwrap();
        assert!(verify(&sig, &k, &req, at + 60_000).is_ok());
        // The same request, replayed 16 minutes later, or from 16 minutes ahead.
        for skew in [16 * 60_000, -16 * 60_000] {
            assert_eq!(
                verify(&sig, &k, &req, at + skew).unwrap_err().code(),
                "RequestExpired"
            );
        }
        // A body the signature did not cover.
        let swapped = Request {
            body: b"Action=TerminateInstances",
            ..req
        };
        assert_eq!(
            verify(&sig, &k, &swapped, at).unwrap_err().code(),
            "AuthFailure"
        );
    }

    #[test]
    fn the_payload_header_must_be_the_body_hash() {
        let k = key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        for (claim, accepted) in [
            ("UNSIGNED-PAYLOAD".to_string(), false),
            (sigv4::sha256_hex(b"other"), false),
            (sigv4::sha256_hex(b""), true),
        ] {
            let (mut headers, sig) = vanilla();
            headers.insert("x-amz-content-sha256", claim.parse().unwrap());
            let req = get(&headers);
            let got = expected_signature(&sig, &k, &req, "20150830T123600Z");
            assert_eq!(got.is_some(), accepted, "{claim}");
        }
    }

    #[test]
    fn session_tokens() {
        let (headers, mut sig) = vanilla();
        let req = get(&headers);
        let at = amz_date_ms("20150830T123600Z").unwrap();
        let mut k = key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        sig.token = Some("tok".into());
        assert_eq!(
            verify(&sig, &k, &req, at).unwrap_err().code(),
            "AuthFailure"
        );
        k.token = Some("tok".into());
        assert!(verify(&sig, &k, &req, at).is_ok());
        sig.token = Some("tak".into());
        assert!(verify(&sig, &k, &req, at).is_err());
        sig.token = None;
        assert!(verify(&sig, &k, &req, at).is_err());
    }

    #[test]
    fn credential_lines() {
        let d = std::env::temp_dir().join(format!("kumo-creds-{}", std::process::id()));
        std::fs::write(
            &d,
            "A s\nB s 111122223333\nC s tok-c\nD s 111122223333 tok-d\nE s x y\n",
        )
        .unwrap();
        let e = Credentials::load(&d, "000000000000").err().unwrap();
        assert!(e
            .to_string()
            .ends_with(":5: expected `ACCESS_KEY_ID SECRET [ACCOUNT_ID] [SESSION_TOKEN]`"));
        std::fs::write(
            &d,
            "A s\nB s 111122223333\nC s tok-c\nD s 111122223333 tok-d\n",
        )
        .unwrap();
        let c = Credentials::load(&d, "000000000000").unwrap();
        let _ = std::fs::remove_file(&d);
        let got = |k: &str| {
            let k = &c.0[k];
            (k.account.as_str(), k.token.as_deref())
        };
        assert_eq!(got("A"), ("000000000000", None));
        assert_eq!(got("B"), ("111122223333", None));
        assert_eq!(got("C"), ("000000000000", Some("tok-c")));
        assert_eq!(got("D"), ("111122223333", Some("tok-d")));
    }
}
