//! EC2's semantics: one module per resource family, each implementing its part of the
//! generated [`Ec2`] trait. No HTTP and no XML here: typed requests in, typed results or
//! [`Ec2Error`]s out.

mod error;
mod instance_types;
mod key_pairs;
mod keygen;
mod paging;
mod regions;
mod tags;

use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2, Ec2Error, RequestContext};
use kumo_store::{Scope, Store};

pub use error::Fail;

/// The control plane. One per process; shared by every request.
pub struct Kumo {
    store: Store,
}

impl Kumo {
    pub fn new(store: Store) -> Kumo {
        Kumo { store }
    }

    /// Deletes all state of every account (`POST /_kumo/reset`).
    pub fn reset(&self) -> Result<(), Ec2Error> {
        self.store.reset().map_err(|e| Fail::from(e).0)
    }

    /// Loads the lazily parsed catalogs now, so the first request does not pay for them.
    pub fn warm_up() {
        instance_types::catalog();
    }
}

fn scope(ctx: &RequestContext) -> Scope<'_> {
    Scope {
        account: &ctx.account_id,
        region: &ctx.region,
    }
}

impl Ec2 for Kumo {
    fn describe_regions(
        &self,
        ctx: &RequestContext,
        input: DescribeRegionsRequest,
    ) -> Result<DescribeRegionsResult, Ec2Error> {
        regions::describe_regions(ctx, input)
    }

    fn describe_availability_zones(
        &self,
        ctx: &RequestContext,
        input: DescribeAvailabilityZonesRequest,
    ) -> Result<DescribeAvailabilityZonesResult, Ec2Error> {
        regions::describe_availability_zones(ctx, input)
    }

    fn describe_instance_types(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceTypesRequest,
    ) -> Result<DescribeInstanceTypesResult, Ec2Error> {
        instance_types::describe_instance_types(ctx, input)
    }

    fn describe_instance_type_offerings(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceTypeOfferingsRequest,
    ) -> Result<DescribeInstanceTypeOfferingsResult, Ec2Error> {
        instance_types::describe_offerings(ctx, input)
    }

    fn create_key_pair(
        &self,
        ctx: &RequestContext,
        input: CreateKeyPairRequest,
    ) -> Result<KeyPair, Ec2Error> {
        key_pairs::create(&self.store, ctx, input)
    }

    fn import_key_pair(
        &self,
        ctx: &RequestContext,
        input: ImportKeyPairRequest,
    ) -> Result<ImportKeyPairResult, Ec2Error> {
        key_pairs::import(&self.store, ctx, input)
    }

    fn describe_key_pairs(
        &self,
        ctx: &RequestContext,
        input: DescribeKeyPairsRequest,
    ) -> Result<DescribeKeyPairsResult, Ec2Error> {
        key_pairs::describe(&self.store, ctx, input)
    }

    fn delete_key_pair(
        &self,
        ctx: &RequestContext,
        input: DeleteKeyPairRequest,
    ) -> Result<DeleteKeyPairResult, Ec2Error> {
        key_pairs::delete(&self.store, ctx, input)
    }

    fn create_tags(&self, ctx: &RequestContext, input: CreateTagsRequest) -> Result<(), Ec2Error> {
        tags::create_tags(&self.store, ctx, input)
    }

    fn delete_tags(&self, ctx: &RequestContext, input: DeleteTagsRequest) -> Result<(), Ec2Error> {
        tags::delete_tags(&self.store, ctx, input)
    }

    fn describe_tags(
        &self,
        ctx: &RequestContext,
        input: DescribeTagsRequest,
    ) -> Result<DescribeTagsResult, Ec2Error> {
        tags::describe_tags(&self.store, ctx, input)
    }
}
