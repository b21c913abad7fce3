//! The wire's filters, for the model's filter engine ([`kumo_model::filter`]).

use kumo_ec2_wire::shapes::Filter;
use kumo_model::filter::Filter as ModelFilter;

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
