//! AWS Signature Version 4: the canonical request, the signing key and the signature. The
//! server verifies with it; Kumo's own clients (`kumo describe-unused-ips`, `kumo admin`, `kumo
//! ssm`) sign with [`authorize`].

use openssl::hash::{hash, MessageDigest};
use openssl::pkey::PKey;
use openssl::sign::Signer as HmacSigner;

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
    let mut s = HmacSigner::new(MessageDigest::sha256(), &k).ok()?;
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

/// The canonical URI of a path: each segment URI-encoded once, as SigV4 wants it for every
/// service but S3.
pub fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| uri_encode(&percent_decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

/// The canonical request. `headers` are the signed ones: lower-case names, in the order of
/// the `SignedHeaders` list (sorted), values as sent.
pub fn canonical_request(
    method: &str,
    path: &str,
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
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_sha256}",
        canonical_path(path),
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

/// Who signs a client request, and for which region and service.
pub struct Signer<'a> {
    pub access_key: &'a str,
    pub secret: &'a str,
    /// The session token of temporary credentials, sent as `X-Amz-Security-Token`.
    pub token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

/// `YYYYMMDDTHHMMSSZ` for a time in milliseconds since the epoch.
pub fn amz_date(ms: i64) -> String {
    let iso = kumo_ec2_wire::DateTime(ms).to_iso8601();
    // 2026-11-27T01:02:03.000Z → 20261127T010203Z
    format!("{}Z", iso[..19].replace(['-', ':'], ""))
}

/// A request a client is about to send.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub host: &'a str,
    /// Headers besides `host`, each signed.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The headers that sign `req` at `now_ms` (`x-amz-date`, the session token,
/// `authorization`), to send beside its own.
pub fn authorize(signer: &Signer, req: &Outgoing, now_ms: i64) -> Vec<(String, String)> {
    let Outgoing {
        method,
        path,
        query,
        host,
        headers,
        body,
    } = *req;
    let date_time = amz_date(now_ms);
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    signed.push(("host".into(), host.into()));
    signed.push(("x-amz-date".into(), date_time.clone()));
    if let Some(t) = signer.token {
        signed.push(("x-amz-security-token".into(), t.into()));
    }
    signed.sort();
    let canonical = canonical_request(
        method,
        path,
        &canonical_query(query),
        &signed,
        &sha256_hex(body),
    );
    let scope = Scope {
        date: &date_time[..8],
        region: signer.region,
        service: signer.service,
    };
    let signature = sign(signer.secret, &scope, &date_time, &canonical).unwrap_or_default();
    let names: Vec<&str> = signed.iter().map(|(n, _)| n.as_str()).collect();
    let mut out: Vec<(String, String)> = signed
        .iter()
        .filter(|(n, _)| n != "host" && !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={signature}",
            signer.access_key,
            &date_time[..8],
            signer.region,
            signer.service,
            names.join(";")
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths() {
        assert_eq!(canonical_path(""), "/");
        assert_eq!(canonical_path("/"), "/");
        assert_eq!(canonical_path("/_kumo/reset"), "/_kumo/reset");
        assert_eq!(canonical_path("/a b/c%2Fd"), "/a%20b/c%2Fd");
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(1_440_938_160_000), "20150830T123600Z");
    }
}
