//! AWS Signature Version 4 for query-protocol requests (path `/`): the canonical request, the
//! signing key and the signature. The server verifies with it; Kumo's own client signs with it.

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer;

/// The credential scope of a signature.
pub struct Scope<'a> {
    /// `YYYYMMDD`.
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hash(MessageDigest::sha256(), bytes)
        .map(|d| hex(&d))
        .unwrap_or_default()
}

fn hmac(key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let k = PKey::hmac(key).ok()?;
    let mut s = Signer::new(MessageDigest::sha256(), &k).ok()?;
    s.update(data).ok()?;
    s.sign_to_vec().ok()
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical query string: each pair re-encoded, sorted.
pub fn canonical_query(q: &str) -> String {
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request for path `/`. `headers` are the signed ones: lower-case names, in
/// the order of the `SignedHeaders` list (sorted), values as sent.
pub fn canonical_request(
    method: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
) -> String {
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        let v = value.split_whitespace().collect::<Vec<_>>().join(" ");
        canonical_headers.push_str(&format!("{name}:{v}\n"));
    }
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n/\n{canonical_query}\n{canonical_headers}\n{}\n{payload_sha256}",
        signed.join(";")
    )
}

/// The hex signature of a canonical request.
pub fn sign(
    secret: &str,
    scope: &Scope,
    amz_date: &str,
    canonical_request: &str,
) -> Option<String> {
    let cred_scope = format!(
        "{}/{}/{}/aws4_request",
        scope.date, scope.region, scope.service
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{cred_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes())?;
    let k_region = hmac(&k_date, scope.region.as_bytes())?;
    let k_service = hmac(&k_region, scope.service.as_bytes())?;
    let k_signing = hmac(&k_service, b"aws4_request")?;
    Some(hex(&hmac(&k_signing, to_sign.as_bytes())?))
}
