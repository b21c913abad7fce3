//! Key material and fingerprints exactly as EC2 makes them:
//!
//! | key | fingerprint |
//! |---|---|
//! | RSA created by EC2 | SHA-1 of the DER PKCS#8 private key, colon hex |
//! | RSA imported | MD5 of the DER SubjectPublicKeyInfo, colon hex |
//! | ED25519 | base64 SHA-256 of the SSH wire public key |

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use openssl::bn::BigNum;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKey};
use openssl::rsa::Rsa;
use openssl::sign::Signer;

/// A key pair EC2 generated.
pub struct Generated {
    /// The private key, in the requested format.
    pub material: String,
    pub fingerprint: String,
    /// The public key, as an OpenSSH `authorized_keys` line.
    pub public_key: String,
}

/// A public key a user imported.
pub struct Imported {
    pub key_type: &'static str,
    pub fingerprint: String,
    pub public_key: String,
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SSH wire encoding helpers (RFC 4251).
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

fn put_mpint(out: &mut Vec<u8>, n: &[u8]) {
    let n = match n.iter().position(|b| *b != 0) {
        Some(i) => &n[i..],
        None => &[][..],
    };
    if n.first().is_some_and(|b| b & 0x80 != 0) {
        out.extend_from_slice(&(n.len() as u32 + 1).to_be_bytes());
        out.push(0);
        out.extend_from_slice(n);
    } else {
        put_string(out, n);
    }
}

fn rsa_wire(e: &[u8], n: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    put_string(&mut w, b"ssh-rsa");
    put_mpint(&mut w, e);
    put_mpint(&mut w, n);
    w
}

fn ed25519_wire(public: &[u8]) -> Vec<u8> {
    let mut w = Vec::new();
    put_string(&mut w, b"ssh-ed25519");
    put_string(&mut w, public);
    w
}

fn ed25519_fingerprint(wire: &[u8]) -> Result<String, openssl::error::ErrorStack> {
    Ok(B64.encode(hash(MessageDigest::sha256(), wire)?))
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width + 1);
    for chunk in text.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// A fresh 2048-bit RSA key pair (`KeyType=rsa`, EC2's default).
pub fn generate_rsa(ppk: bool, comment: &str) -> Result<Generated, openssl::error::ErrorStack> {
    let rsa = Rsa::generate(2048)?;
    let e = rsa.e().to_vec();
    let n = rsa.n().to_vec();
    let wire = rsa_wire(&e, &n);
    let material = if ppk {
        let mut private = Vec::new();
        put_mpint(&mut private, &rsa.d().to_vec());
        put_mpint(
            &mut private,
            &rsa.p().map(|p| p.to_vec()).unwrap_or_default(),
        );
        put_mpint(
            &mut private,
            &rsa.q().map(|q| q.to_vec()).unwrap_or_default(),
        );
        put_mpint(
            &mut private,
            &rsa.iqmp().map(|v| v.to_vec()).unwrap_or_default(),
        );
        ppk_v2("ssh-rsa", comment, &wire, &private)?
    } else {
        String::from_utf8_lossy(&rsa.private_key_to_pem()?).into_owned()
    };
    let pkey = PKey::from_rsa(rsa)?;
    let pkcs8 = pkey.private_key_to_pkcs8()?;
    Ok(Generated {
        material,
        fingerprint: colon_hex(&hash(MessageDigest::sha1(), &pkcs8)?),
        public_key: format!("ssh-rsa {}", B64.encode(&wire)),
    })
}

/// A fresh ED25519 key pair, its private key in OpenSSH's format (or PuTTY's).
pub fn generate_ed25519(ppk: bool, comment: &str) -> Result<Generated, openssl::error::ErrorStack> {
    let key = PKey::generate_ed25519()?;
    let public = key.raw_public_key()?;
    let seed = key.raw_private_key()?;
    let wire = ed25519_wire(&public);
    let material = if ppk {
        let mut private = Vec::new();
        put_string(&mut private, &seed);
        ppk_v2("ssh-ed25519", comment, &wire, &private)?
    } else {
        openssh_private_ed25519(&wire, &public, &seed, comment)?
    };
    Ok(Generated {
        material,
        fingerprint: ed25519_fingerprint(&wire)?,
        public_key: format!("ssh-ed25519 {}", B64.encode(&wire)),
    })
}

/// `-----BEGIN OPENSSH PRIVATE KEY-----`, unencrypted (PROTOCOL.key of OpenSSH).
fn openssh_private_ed25519(
    wire: &[u8],
    public: &[u8],
    seed: &[u8],
    comment: &str,
) -> Result<String, openssl::error::ErrorStack> {
    let mut check = [0u8; 4];
    openssl::rand::rand_bytes(&mut check)?;
    let mut private = Vec::new();
    private.extend_from_slice(&check);
    private.extend_from_slice(&check);
    put_string(&mut private, b"ssh-ed25519");
    put_string(&mut private, public);
    let mut both = seed.to_vec();
    both.extend_from_slice(public);
    put_string(&mut private, &both);
    put_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut blob = b"openssh-key-v1\0".to_vec();
    put_string(&mut blob, b"none");
    put_string(&mut blob, b"none");
    put_string(&mut blob, b"");
    blob.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut blob, wire);
    put_string(&mut blob, &private);
    Ok(format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{}-----END OPENSSH PRIVATE KEY-----\n",
        wrap(&B64.encode(blob), 70)
    ))
}

/// PuTTY's key file, version 2, unencrypted: readable by every PuTTY release.
fn ppk_v2(
    alg: &str,
    comment: &str,
    public: &[u8],
    private: &[u8],
) -> Result<String, openssl::error::ErrorStack> {
    let mut mac_data = Vec::new();
    put_string(&mut mac_data, alg.as_bytes());
    put_string(&mut mac_data, b"none");
    put_string(&mut mac_data, comment.as_bytes());
    put_string(&mut mac_data, public);
    put_string(&mut mac_data, private);
    let mac_key = hash(MessageDigest::sha1(), b"putty-private-key-file-mac-key")?;
    let key = PKey::hmac(&mac_key)?;
    let mut signer = Signer::new(MessageDigest::sha1(), &key)?;
    signer.update(&mac_data)?;
    let mac = signer.sign_to_vec()?;
    let pub_b64 = wrap(&B64.encode(public), 64);
    let priv_b64 = wrap(&B64.encode(private), 64);
    Ok(format!(
        "PuTTY-User-Key-File-2: {alg}\nEncryption: none\nComment: {comment}\nPublic-Lines: {}\n{pub_b64}Private-Lines: {}\n{priv_b64}Private-MAC: {}\n",
        pub_b64.lines().count(),
        priv_b64.lines().count(),
        mac.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Reads an SSH wire string.
fn take_string<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if buf.len() < 4 {
        return None;
    }
    let n = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let rest = &buf[4..];
    if rest.len() < n {
        return None;
    }
    let (s, r) = rest.split_at(n);
    *buf = r;
    Some(s)
}

/// Parses public key material as ImportKeyPair accepts it: an OpenSSH `authorized_keys` line,
/// an RFC 4716 SSH2 public key, or a base64 DER (or PEM) SubjectPublicKeyInfo. `None` when it
/// is none of these, or a key type or size EC2 refuses.
pub fn import(material: &[u8]) -> Option<Imported> {
    let text = std::str::from_utf8(material).ok()?.trim();
    let wire = if let Some(rest) = text
        .strip_prefix("ssh-rsa ")
        .or_else(|| text.strip_prefix("ssh-ed25519 "))
    {
        let b64 = rest.split_whitespace().next()?;
        B64.decode(b64).ok()?
    } else if text.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
        let mut body = String::new();
        let mut continued = false;
        for line in text.lines().skip(1) {
            let line = line.trim();
            if line.starts_with("---- END SSH2 PUBLIC KEY ----") {
                break;
            }
            // Header lines are `Tag: value`, possibly continued with a trailing backslash.
            if continued || line.contains(':') {
                continued = line.ends_with('\\');
                continue;
            }
            body.push_str(line);
        }
        B64.decode(body).ok()?
    } else {
        return import_spki(text);
    };
    let mut buf = wire.as_slice();
    let alg = take_string(&mut buf)?;
    match alg {
        b"ssh-rsa" => {
            let e = take_string(&mut buf)?;
            let n = take_string(&mut buf)?;
            let rsa = Rsa::from_public_components(
                BigNum::from_slice(n).ok()?,
                BigNum::from_slice(e).ok()?,
            )
            .ok()?;
            rsa_imported(rsa)
        }
        b"ssh-ed25519" => {
            let key = take_string(&mut buf)?;
            if key.len() != 32 || !buf.is_empty() {
                return None;
            }
            Some(Imported {
                key_type: "ed25519",
                fingerprint: ed25519_fingerprint(&wire).ok()?,
                public_key: format!("ssh-ed25519 {}", B64.encode(&wire)),
            })
        }
        _ => None,
    }
}

fn rsa_imported(rsa: Rsa<openssl::pkey::Public>) -> Option<Imported> {
    let bits = rsa.n().num_bits();
    if !(1024..=4096).contains(&bits) {
        return None;
    }
    let wire = rsa_wire(&rsa.e().to_vec(), &rsa.n().to_vec());
    let spki = PKey::from_rsa(rsa).ok()?.public_key_to_der().ok()?;
    Some(Imported {
        key_type: "rsa",
        fingerprint: colon_hex(&hash(MessageDigest::md5(), &spki).ok()?),
        public_key: format!("ssh-rsa {}", B64.encode(&wire)),
    })
}

fn import_spki(text: &str) -> Option<Imported> {
    let der = if text.starts_with("-----BEGIN PUBLIC KEY-----") {
        PKey::public_key_from_pem(text.as_bytes())
            .ok()?
            .public_key_to_der()
            .ok()?
    } else {
        let compact: String = text.split_whitespace().collect();
        B64.decode(compact).ok()?
    };
    let key = PKey::public_key_from_der(&der).ok()?;
    match key.id() {
        Id::RSA => rsa_imported(key.rsa().ok()?),
        Id::ED25519 => {
            let wire = ed25519_wire(&key.raw_public_key().ok()?);
            Some(Imported {
                key_type: "ed25519",
                fingerprint: ed25519_fingerprint(&wire).ok()?,
                public_key: format!("ssh-ed25519 {}", B64.encode(&wire)),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_round_trip_through_import() {
        let g = generate_ed25519(false, "k").unwrap();
        assert!(g
            .material
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        let i = import(g.public_key.as_bytes()).unwrap();
        assert_eq!(i.key_type, "ed25519");
        assert_eq!(i.fingerprint, g.fingerprint);
        assert_eq!(g.fingerprint.len(), 44);
    }

    #[test]
    fn rsa_pem_is_pkcs1() {
        let g = generate_rsa(false, "k").unwrap();
        assert!(g.material.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
        assert_eq!(g.fingerprint.len(), 59, "20 bytes in colon hex");
        let i = import(format!("{} comment", g.public_key).as_bytes()).unwrap();
        assert_eq!(i.key_type, "rsa");
        assert_eq!(i.fingerprint.len(), 47, "16 bytes of MD5 in colon hex");
    }

    #[test]
    fn ppk_has_putty_header() {
        let g = generate_ed25519(true, "k").unwrap();
        assert!(g
            .material
            .starts_with("PuTTY-User-Key-File-2: ssh-ed25519\nEncryption: none\nComment: k\n"));
        assert!(g.material.contains("\nPrivate-MAC: "));
    }

    #[test]
    fn garbage_is_refused() {
        assert!(import(b"not a key").is_none());
        assert!(import(b"ssh-rsa AAAA").is_none());
        assert!(import(b"ssh-dss AAAAB3NzaC1kc3MAAACBAP").is_none());
        assert!(import(&[0xff, 0xfe]).is_none());
    }

    #[test]
    fn mpint_sign_byte() {
        let mut v = Vec::new();
        put_mpint(&mut v, &[0x80]);
        assert_eq!(v, [0, 0, 0, 2, 0, 0x80]);
    }
}
