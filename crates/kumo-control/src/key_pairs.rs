//! Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::filters;
use crate::keygen;
use crate::scope;
use crate::tags::{self, Tagged};
use kumo_ec2_wire::filters::DescribeKeyPairs as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_store::{Query, Read, Store, StoreError};

pub use crate::records::key_pair::KeyPairRecord;

fn duplicate(name: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidKeyPair.Duplicate",
        format!("The keypair '{name}' already exists."),
    )
}

fn check_name(name: &str) -> Result<(), Ec2Error> {
    if name.is_empty() || name.len() > 255 || !name.is_ascii() || name.trim() != name {
        return Err(Ec2Error::invalid_value(format!(
            "Value ({name}) for parameter keyName is invalid. A key name can include up to 255 ASCII characters, without leading or trailing spaces."
        )));
    }
    Ok(())
}

/// CreateKeyPair and ImportKeyPair, before any lookup: a name (sent empty, AWS answers it as
/// missing), of AWS's form, and the tags. The name's uniqueness follows.
macro_rules! key_checks {
    ($($t:ty),*) => {$(
        impl Checks for $t {
            fn required(&self) -> Result<(), Ec2Error> {
                if self.key_name.is_empty() {
                    return Err(Ec2Error::missing_parameter("KeyName"));
                }
                Ok(())
            }

            fn formats(&self) -> Result<(), Ec2Error> {
                check_name(&self.key_name)?;
                tags::from_specifications(self.tag_specifications.clone(), "key-pair").map(drop)
            }
        }
    )*};
}
key_checks!(CreateKeyPairRequest, ImportKeyPairRequest);

/// DeleteKeyPair, before any lookup: a name or an id.
impl Checks for DeleteKeyPairRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.key_name.is_none() && self.key_pair_id.is_none() {
            return Err(Ec2Error::missing_parameter("KeyName or KeyPairId"));
        }
        Ok(())
    }
}

fn crypto_failed(e: openssl::error::ErrorStack) -> Ec2Error {
    tracing::error!(error = %e, "key generation failed");
    Ec2Error::internal()
}

/// Stores a new key pair and its tags in one transaction.
fn store_new(
    store: &Store,
    ctx: &RequestContext,
    rec: &KeyPairRecord,
    tag_specs: Option<Vec<TagSpecification>>,
) -> Result<Vec<Tag>, Ec2Error> {
    let tag_list = tags::from_specifications(tag_specs, "key-pair")?;
    store
        .write(!ctx.dry_run, |tx| {
            if tx
                .get_by_name::<KeyPairRecord>(scope(ctx), &rec.name)?
                .is_some()
            {
                return Err(Fail(duplicate(&rec.name)));
            }
            match tx.insert(scope(ctx), rec) {
                Err(StoreError::Conflict) => return Err(Fail(duplicate(&rec.name))),
                other => other?,
            }
            tags::put_all(tx, scope(ctx), &rec.id, "key-pair", &tag_list)?;
            Ok(())
        })
        .map_err(|f| f.0)?;
    Ok(tag_list)
}

pub fn create(
    store: &Store,
    ctx: &RequestContext,
    input: CreateKeyPairRequest,
) -> Result<KeyPair, Ec2Error> {
    let name = input.key_name;
    check_name(&name)?;
    tags::from_specifications(input.tag_specifications.clone(), "key-pair")?;
    let exists = store
        .read(|v| {
            v.get_by_name::<KeyPairRecord>(scope(ctx), &name)
                .map_err(Fail::from)
        })
        .map_err(|f| f.0)?;
    if exists.is_some() {
        return Err(duplicate(&name));
    }
    if ctx.dry_run {
        return Err(Ec2Error::dry_run());
    }
    let key_type = input.key_type.unwrap_or_else(|| "rsa".into());
    let ppk = input.key_format.as_deref() == Some("ppk");
    let generated = match key_type.as_str() {
        "ed25519" => keygen::generate_ed25519(ppk, &name),
        _ => keygen::generate_rsa(ppk, &name),
    }
    .map_err(crypto_failed)?;
    let rec = KeyPairRecord {
        id: crate::core::ids::new_id("key"),
        name,
        key_type,
        fingerprint: generated.fingerprint,
        public_key: generated.public_key,
        created_ms: DateTime::now().0,
    };
    let tags = store_new(store, ctx, &rec, input.tag_specifications)?;
    Ok(KeyPair {
        key_pair_id: Some(rec.id),
        key_name: Some(rec.name),
        key_fingerprint: Some(rec.fingerprint),
        key_material: Some(generated.material),
        tags: Some(tags),
    })
}

pub fn import(
    store: &Store,
    ctx: &RequestContext,
    input: ImportKeyPairRequest,
) -> Result<ImportKeyPairResult, Ec2Error> {
    let name = input.key_name;
    check_name(&name)?;
    let key = keygen::import(&input.public_key_material.0).ok_or_else(|| {
        Ec2Error::new(
            "InvalidKey.Format",
            "Key is not in valid OpenSSH public key format",
        )
    })?;
    let rec = KeyPairRecord {
        id: crate::core::ids::new_id("key"),
        name,
        key_type: key.key_type.to_string(),
        fingerprint: key.fingerprint,
        public_key: key.public_key,
        created_ms: DateTime::now().0,
    };
    let tags = store_new(store, ctx, &rec, input.tag_specifications)?;
    Ok(ImportKeyPairResult {
        key_pair_id: Some(rec.id),
        key_name: Some(rec.name),
        key_fingerprint: Some(rec.fingerprint),
        tags: Some(tags),
    })
}

struct View<'a>(&'a Tagged<KeyPairRecord>);

impl Filterable<F> for View<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        let k = &self.0.item;
        match f {
            F::KeyPairId => out(&k.id),
            F::KeyName => out(&k.name),
            F::Fingerprint => out(&k.fingerprint),
            F::KeyType => out(&k.key_type),
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }
}

/// `Some(a ∩ b)` of two optional restrictions.
fn restrict<'a>(a: Option<Vec<&'a str>>, b: Option<Vec<&'a str>>) -> Option<Vec<&'a str>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.into_iter().filter(|x| b.contains(x)).collect()),
        (a, b) => a.or(b),
    }
}

pub fn describe(
    store: &Store,
    ctx: &RequestContext,
    input: DescribeKeyPairsRequest,
) -> Result<DescribeKeyPairsResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[])?;
    let names = input.key_names.unwrap_or_default();
    let ids = input.key_pair_ids.unwrap_or_default();
    let asked_names =
        (!names.is_empty()).then(|| names.iter().map(String::as_str).collect::<Vec<_>>());
    let asked_ids = (!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect::<Vec<_>>());
    let items = store
        .read(|v| {
            let s = scope(ctx);
            // Names and ids the caller listed must all exist, whatever the filters say.
            if asked_names.is_some() || asked_ids.is_some() {
                let found: Vec<KeyPairRecord> = v.list(
                    s,
                    &Query {
                        names: asked_names.as_deref(),
                        ids: asked_ids.as_deref(),
                        ..Query::default()
                    },
                )?;
                if let Some(missing) = names.iter().find(|n| !found.iter().any(|k| &k.name == *n)) {
                    return Err(Fail(Ec2Error::new(
                        "InvalidKeyPair.NotFound",
                        format!("The key pair '{missing}' does not exist"),
                    )));
                }
                if let Some(missing) = ids.iter().find(|i| !found.iter().any(|k| &k.id == *i)) {
                    return Err(Fail(Ec2Error::new(
                        "InvalidKeyPair.NotFound",
                        format!("The key pair ID '{missing}' does not exist"),
                    )));
                }
            }
            let q_names = restrict(asked_names.clone(), fs.exact(F::KeyName));
            let q_ids = restrict(asked_ids.clone(), fs.exact(F::KeyPairId));
            let tag = fs.exact_tag();
            let rows: Vec<KeyPairRecord> = v.list(
                s,
                &Query {
                    names: q_names.as_deref(),
                    ids: q_ids.as_deref(),
                    tag: tag.as_ref().map(|(k, vals)| (*k, vals.as_slice())),
                    ..Query::default()
                },
            )?;
            tags::attach(v, s, rows)
        })
        .map_err(|f| f.0)?;
    let include_public = input.include_public_key.unwrap_or(false);
    let out = items
        .iter()
        .filter(|t| fs.matches(&View(t)))
        .map(|t| KeyPairInfo {
            key_pair_id: Some(t.item.id.clone()),
            key_name: Some(t.item.name.clone()),
            key_fingerprint: Some(t.item.fingerprint.clone()),
            key_type: Some(t.item.key_type.clone()),
            public_key: include_public.then(|| t.item.public_key.clone()),
            create_time: Some(DateTime(t.item.created_ms)),
            tags: Some(tags::wire(&t.tags)),
        })
        .collect();
    Ok(DescribeKeyPairsResult {
        key_pairs: Some(out),
    })
}

pub fn delete(
    store: &Store,
    ctx: &RequestContext,
    input: DeleteKeyPairRequest,
) -> Result<DeleteKeyPairResult, Ec2Error> {
    let deleted = store
        .write(!ctx.dry_run, |tx| {
            let s = scope(ctx);
            let rec = match (&input.key_pair_id, &input.key_name) {
                (Some(id), _) => match tx.get::<KeyPairRecord>(s, id)? {
                    Some(r) => Some(r),
                    None => {
                        return Err(Fail(Ec2Error::new(
                            "InvalidKeyPair.NotFound",
                            format!("The key pair ID '{id}' does not exist"),
                        )));
                    }
                },
                // Deleting a name that does not exist succeeds, as in AWS.
                (None, Some(name)) => tx.get_by_name::<KeyPairRecord>(s, name)?,
                (None, None) => None,
            };
            if let Some(r) = &rec {
                tx.delete::<KeyPairRecord>(s, &r.id)?;
            }
            Ok(rec.map(|r| r.id))
        })
        .map_err(|f| f.0)?;
    Ok(DeleteKeyPairResult {
        r#return: Some(true),
        key_pair_id: deleted,
    })
}
