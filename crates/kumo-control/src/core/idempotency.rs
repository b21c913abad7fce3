//! `ClientToken` idempotency: the first call with a token creates; a retry with the same token
//! and the same parameters answers with the same resource; the same token with other
//! parameters answers `IdempotentParameterMismatch`. The token is stored in the same
//! transaction as the resource it created, so a retry after a crash is still idempotent.

use crate::core::error::Fail;
use kumo_ec2_wire::Ec2Error;
use kumo_store::{Read, Scope, Tx};
use openssl::hash::{hash, MessageDigest};
use std::fmt::Debug;

/// A fingerprint of a request's parameters.
pub fn digest<T: Debug>(input: &T) -> String {
    hash(MessageDigest::sha256(), format!("{input:?}").as_bytes())
        .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

/// Checks a token's form: at most 64 ASCII characters.
pub fn check_token(token: Option<&str>) -> Result<(), Ec2Error> {
    if let Some(t) = token {
        if t.len() > 64 || !t.is_ascii() {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({t}) for parameter clientToken is invalid. The token must be at most 64 ASCII characters."
            )));
        }
    }
    Ok(())
}

/// The resource an earlier call with this token created, if there was one.
pub fn earlier(
    tx: &Tx,
    s: Scope,
    op: &str,
    token: Option<&str>,
    digest: &str,
) -> Result<Option<String>, Fail> {
    let Some(t) = token else { return Ok(None) };
    match tx.idempotent(s, op, t)? {
        None => Ok(None),
        Some((d, _)) if d != digest => Err(Fail(Ec2Error::new(
            "IdempotentParameterMismatch",
            "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
        ))),
        Some((_, id)) => Ok(Some(String::from_utf8_lossy(&id).into_owned())),
    }
}

/// Remembers that this token created `resource_id`.
pub fn remember(
    tx: &Tx,
    s: Scope,
    op: &str,
    token: Option<&str>,
    digest: &str,
    resource_id: &str,
) -> Result<(), Fail> {
    if let Some(t) = token {
        tx.put_idempotent(s, op, t, digest, resource_id.as_bytes())?;
    }
    Ok(())
}
