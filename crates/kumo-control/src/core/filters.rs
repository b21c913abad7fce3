//! The wire's filters, for the model's filter engine ([`kumo_model::filter`]), over the names
//! codegen generates per operation ([`kumo_ec2_wire::filters`]).

use crate::core::error::rule;
use kumo_ec2_wire::shapes::Filter;
use kumo_ec2_wire::{Ec2Error, FilterName};
use kumo_model::filter::{Filter as ModelFilter, Filters};

/// Converts the wire's filters for the model's engine.
pub fn filters(input: Option<Vec<Filter>>) -> Vec<ModelFilter> {
    input
        .unwrap_or_default()
        .into_iter()
        .map(|f| ModelFilter {
            name: f.name.unwrap_or_default(),
            values: f.values.unwrap_or_default(),
        })
        .collect()
}

/// Compiles a Describe call's filters. Every name the operation's reference lists is accepted
/// except `refused`: names Kumo has nothing behind, which get AWS's invalid-filter answer
/// rather than matching nothing.
pub fn compile<F: FilterName>(
    input: Option<Vec<Filter>>,
    refused: &[F],
) -> Result<Filters<F>, Ec2Error> {
    Filters::compile(
        &filters(input),
        |n| F::parse(n).filter(|f| !refused.contains(f)),
        F::TAGS,
    )
    .map_err(rule)
}
