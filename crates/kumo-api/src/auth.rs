//! Who is calling: the access key, region and service from the SigV4 credential scope, and in
//! strict mode a verified signature.

use crate::sigv4;
use crate::AppState;
use axum::http::{HeaderMap, Method};
use kumo_ec2_wire::Ec2Error;
use std::collections::HashMap;
use std::path::Path;

/// How requests are authenticated.
pub enum AuthMode {
    /// Any credentials are accepted; the access key picks the account. Only on loopback.
    Open,
    /// Every request must carry a valid SigV4 signature by a known key.
    Strict(Credentials),
}

/// Known access keys: key id → (secret, account).
pub struct Credentials(HashMap<String, (String, String)>);

impl Credentials {
    /// Reads a credentials file: one `ACCESS_KEY_ID SECRET_ACCESS_KEY [ACCOUNT_ID]` per line;
    /// `#` starts a comment. Without an account, the key's account rule applies.
    pub fn load(path: &Path, default_account: &str) -> Result<Credentials, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if parts.len() < 2 || parts.len() > 3 {
                return Err(format!(
                    "{}:{}: expected `ACCESS_KEY_ID SECRET [ACCOUNT_ID]`",
                    path.display(),
                    n + 1
                ));
            }
            let account = parts
                .get(2)
                .map(|s| s.to_string())
                .unwrap_or_else(|| account_of(parts[0], default_account));
            map.insert(parts[0].to_string(), (parts[1].to_string(), account));
        }
        Ok(Credentials(map))
    }
}

/// An access key of 12 digits is its own account id (as LocalStack does); any other maps to
/// the default account.
pub fn account_of(access_key: &str, default_account: &str) -> String {
    if access_key.len() == 12 && access_key.bytes().all(|b| b.is_ascii_digit()) {
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

/// The parts of a SigV4 `Authorization` header.
struct SigV4<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_authorization(h: &str) -> Option<SigV4<'_>> {
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
    let mut scope = cred?.splitn(5, '/');
    Some(SigV4 {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?,
        signature: sig?,
    })
}

fn auth_failure() -> Ec2Error {
    Ec2Error::new(
        "AuthFailure",
        "AWS was not able to validate the provided access credentials",
    )
}

pub fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Caller, Ec2Error> {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let parsed = header.and_then(parse_authorization);
    match (&state.auth, parsed) {
        (AuthMode::Open, Some(sig)) => Ok(Caller {
            account: account_of(sig.access_key, &state.default_account),
            region: sig.region.to_string(),
            service: Some(sig.service.to_string()),
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
            let (secret, account) = creds.0.get(sig.access_key).ok_or_else(auth_failure)?;
            let expected =
                signature(&sig, secret, method, headers, query, body).ok_or_else(auth_failure)?;
            if expected.len() != sig.signature.len()
                || !openssl::memcmp::eq(expected.as_bytes(), sig.signature.as_bytes())
            {
                return Err(auth_failure());
            }
            Ok(Caller {
                account: account.clone(),
                region: sig.region.to_string(),
                service: Some(sig.service.to_string()),
            })
        }
    }
}

/// Recomputes the signature over the request's own signed headers and exact body.
fn signature(
    sig: &SigV4,
    secret: &str,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Option<String> {
    let mut canonical_headers = Vec::new();
    for name in sig.signed_headers.split(';') {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        canonical_headers.push((name.to_string(), values.join(",")));
    }
    let payload = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) if h != "UNSIGNED-PAYLOAD" => h.to_string(),
        _ => sigv4::sha256_hex(body),
    };
    let canonical = sigv4::canonical_request(
        method.as_str(),
        &sigv4::canonical_query(query.unwrap_or("")),
        &canonical_headers,
        &payload,
    );
    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok())?;
    let scope = sigv4::Scope {
        date: sig.date,
        region: sig.region,
        service: sig.service,
    };
    sigv4::sign(secret, &scope, amz_date, &canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_authorization() {
        let h = "AWS4-HMAC-SHA256 Credential=123456789012/20261127/eu-west-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abc";
        let s = parse_authorization(h).unwrap();
        assert_eq!(
            (s.access_key, s.region, s.service, s.signature),
            ("123456789012", "eu-west-1", "ec2", "abc")
        );
    }

    #[test]
    fn accounts_from_keys() {
        assert_eq!(account_of("123456789012", "000000000000"), "123456789012");
        assert_eq!(account_of("AKIDEXAMPLE", "000000000000"), "000000000000");
    }

    #[test]
    fn aws_test_suite_vector() {
        // The "get-vanilla" case of AWS's SigV4 test suite.
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let sig = SigV4 {
            access_key: "AKIDEXAMPLE",
            date: "20150830",
            region: "us-east-1",
            service: "service",
            signed_headers: "host;x-amz-date",
            signature: "",
        };
        let got = signature(
            &sig,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            &Method::GET,
            &headers,
            None,
            b"",
        )
        .unwrap();
        assert_eq!(
            got,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }
}
