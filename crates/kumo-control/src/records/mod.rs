//! The stored documents: the bottom layer of the control plane.
//!
//! Each is a [`kumo_store::Record`] with typed states (the instance's lifecycle `State`, a
//! volume attachment's `AttachState`), versioned, with `Record::upgrade` for older
//! documents. Records hold data and the rules that read only themselves (a volume's
//! attachments settling against the clock); they import nothing of the control plane but
//! each other, which `tests/dependencies.rs` checks.

pub mod command;
pub mod image;
pub mod instance;
pub mod key_pair;
pub mod net;
pub mod permissions;
pub mod snapshot;
pub mod volume;
