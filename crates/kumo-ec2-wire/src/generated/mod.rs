//! Output of `cargo run -p codegen`: see `crates/codegen`. Never edit these files by hand; a
//! deviation from the AWS model is a patch in the generator.

pub mod filters;
pub mod ids;
pub mod operations;
pub mod shapes;
