//! Image lookups: an image the caller may launch, and the image that holds a snapshot.

use crate::core::error::Fail;
use crate::records::image::ImageRecord;
use crate::repo::instance::{image_malformed, image_not_found};
use crate::{scope, Kumo};
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Query, Read, Scope};

/// The catalog image an id names. The catalog is looked up before the id's form is checked,
/// since moto's ids (under `--moto-compat`: `ami-ekswin`) are not all of AWS's form; any
/// other id must be, else `InvalidAMIID.Malformed`.
pub fn catalog_image(
    region: &str,
    id: &str,
    moto: bool,
) -> Result<Option<&'static kumo_model::images::PublicImage>, Ec2Error> {
    if let Some(p) = kumo_model::images::by_id(region, id, moto) {
        return Ok(Some(p));
    }
    if kumo_model::ids::resource_type(id) != Some("image") {
        return Err(image_malformed(id));
    }
    Ok(None)
}

/// An image the caller may launch, with its owner: the caller's own, or another account's
/// shared with the caller or public.
pub fn usable(k: &Kumo, ctx: &RequestContext, id: &str) -> Result<(String, ImageRecord), Ec2Error> {
    k.store
        .read(|v| {
            crate::sharing::owner_of::<ImageRecord, _>(v, scope(ctx), id)?
                .ok_or_else(|| Fail(image_not_found(id)))
        })
        .map_err(|f| f.0)
}

/// The image of this scope that uses a snapshot, if any.
pub fn user_of<V: Read>(v: &V, s: Scope, snapshot: &str) -> Result<Option<String>, Fail> {
    let all: Vec<ImageRecord> = v.list(s, &Query::default())?;
    Ok(all
        .into_iter()
        .find(|i| i.snapshots().any(|x| x == snapshot))
        .map(|i| i.id))
}
