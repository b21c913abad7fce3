//! Lookups: reads and single-family steps that every family may use (load a record as the
//! caller may see it, the error AWS answers when it is missing). They use only the records
//! and the store, never a family, which `tests/dependencies.rs` checks.

pub mod address;
pub mod eni;
pub mod image;
pub mod instance;
pub mod prefix_list;
pub mod snapshot;
pub mod volume;
