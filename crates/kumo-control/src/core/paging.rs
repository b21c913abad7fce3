//! Pagination as EC2 does it: `MaxResults` bounded per operation, counted in items, and an
//! opaque `NextToken` that only this operation accepts.
//!
//! A token is tamper-evident: it carries an HMAC-SHA256 (truncated to 128 bits) of its
//! operation and cursor under a key kept in the data directory, so a token a client edited, or
//! one made by another server, answers `InvalidParameterValue` instead of a page from
//! somewhere else.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kumo_ec2_wire::Ec2Error;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use std::path::Path;
use std::sync::OnceLock;

/// The bytes of the MAC a token ends with.
const MAC_LEN: usize = 16;

/// The process's token key: installed from the data directory at start, else random (an
/// in-process control plane without a directory).
static KEY: OnceLock<[u8; 32]> = OnceLock::new();

fn key() -> &'static [u8; 32] {
    KEY.get_or_init(|| {
        let mut k = [0u8; 32];
        let _ = openssl::rand::rand_bytes(&mut k);
        k
    })
}

/// Reads the token key of `dir` (`paging.key`, owner-only), making it on first use, and
/// installs it for this process. A server restarted on the same data directory accepts the
/// tokens it handed out before.
pub fn install_key(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("paging.key");
    let mut k = [0u8; 32];
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => k.copy_from_slice(&bytes),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not a 32-byte key", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            openssl::rand::rand_bytes(&mut k).map_err(std::io::Error::other)?;
            let tmp = dir.join("paging.key.tmp");
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&k)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        Err(e) => return Err(e),
    }
    // A second install in one process (tests) keeps the first key.
    let _ = KEY.set(k);
    Ok(())
}

fn mac(payload: &[u8]) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    let signed = PKey::hmac(key())
        .and_then(|k| {
            let mut s = Signer::new(MessageDigest::sha256(), &k)?;
            s.update(payload)?;
            s.sign_to_vec()
        })
        .unwrap_or_default();
    if signed.len() >= MAC_LEN {
        out.copy_from_slice(&signed[..MAC_LEN]);
    }
    out
}

/// Checks `MaxResults` against the operation's documented range.
pub fn max_results(value: Option<i32>, min: i32, max: i32) -> Result<Option<usize>, Ec2Error> {
    match value {
        None => Ok(None),
        Some(v) if v < min => Err(Ec2Error::invalid_value(format!(
            "Value ( {v} ) for parameter maxResults is invalid. Expecting a value greater than {min}."
        ))),
        Some(v) if v > max => Err(Ec2Error::invalid_value(format!(
            "Value ( {v} ) for parameter maxResults is invalid. Expecting a value less than or equal to {max}."
        ))),
        Some(v) => Ok(Some(v as usize)),
    }
}

/// A token carrying `cursor` (the last item of the page) for `op`.
pub fn token(op: &str, cursor: &str) -> String {
    let mut bytes = format!("{op}\n{cursor}").into_bytes();
    let m = mac(&bytes);
    bytes.extend_from_slice(&m);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cursor inside a token; a token from elsewhere (another operation, another server, an
/// edited one, garbage) is refused.
pub fn cursor(op: &str, token: Option<&str>) -> Result<Option<String>, Ec2Error> {
    let Some(t) = token else { return Ok(None) };
    let bad = || {
        Ec2Error::invalid_value(format!(
            "Value ( {t} ) for parameter NextToken is invalid. The token is invalid."
        ))
    };
    let raw = URL_SAFE_NO_PAD.decode(t).map_err(|_| bad())?;
    if raw.len() <= MAC_LEN {
        return Err(bad());
    }
    let (payload, m) = raw.split_at(raw.len() - MAC_LEN);
    if !openssl::memcmp::eq(&mac(payload), m) {
        return Err(bad());
    }
    let text = std::str::from_utf8(payload).map_err(|_| bad())?;
    match text.split_once('\n') {
        Some((o, c)) if o == op && !c.is_empty() => Ok(Some(c.to_string())),
        _ => Err(bad()),
    }
}

/// Cuts `items` (already in cursor order and past the cursor) to one page of `limit` items
/// (all of them without a limit), and makes the token for the next page when more remain.
pub fn page<T>(
    mut items: Vec<T>,
    limit: Option<usize>,
    op: &str,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let Some(limit) = limit.filter(|l| items.len() > *l) else {
        return (items, None);
    };
    items.truncate(limit);
    let next = items.last().map(|last| token(op, &key(last)));
    (items, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_scoped() {
        let t = token("DescribeTags", "key-1\u{0}env");
        assert_eq!(
            cursor("DescribeTags", Some(&t)).unwrap().as_deref(),
            Some("key-1\u{0}env")
        );
        assert_eq!(
            cursor("DescribeInstanceTypes", Some(&t))
                .unwrap_err()
                .code(),
            "InvalidParameterValue"
        );
        assert!(cursor("DescribeTags", Some("garbage!")).is_err());
        // A token edited by a client: any changed byte breaks the MAC.
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[0] ^= 1;
        let edited = URL_SAFE_NO_PAD.encode(&raw);
        assert_eq!(
            cursor("DescribeTags", Some(&edited)).unwrap_err().code(),
            "InvalidParameterValue"
        );
        // A token forged without the key, in the format the MAC protects.
        let forged = URL_SAFE_NO_PAD.encode(format!("DescribeTags\nkey-9{}", "0".repeat(16)));
        assert!(cursor("DescribeTags", Some(&forged)).is_err());
        assert!(cursor("DescribeTags", Some("")).is_err());
    }

    #[test]
    fn max_results_bounds() {
        assert_eq!(max_results(Some(5), 5, 100).unwrap(), Some(5));
        assert!(max_results(Some(4), 5, 100)
            .unwrap_err()
            .message()
            .contains("greater than 5"));
        assert!(max_results(Some(101), 5, 100).is_err());
    }

    #[test]
    fn pages() {
        let (p, next) = page(vec![1, 2, 3], Some(2), "Op", |i| i.to_string());
        assert_eq!(p, vec![1, 2]);
        assert_eq!(cursor("Op", next.as_deref()).unwrap().as_deref(), Some("2"));
        let (_, next) = page(vec![1, 2], Some(2), "Op", |i| i.to_string());
        assert!(next.is_none());
        // Without a limit, everything is one page.
        let (p, next) = page(vec![1, 2, 3], None, "Op", |i| i.to_string());
        assert_eq!((p, next), (vec![1, 2, 3], None));
    }
}
