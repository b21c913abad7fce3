//! The stored documents: the bottom layer of the control plane.
//!
//! Each is a [`kumo_store::Record`] with typed states (the instance's lifecycle `State`, a
//! volume attachment's `AttachState`), versioned, with `Record::upgrade` for older
//! documents. Records hold data and the rules that read only themselves (a volume's
//! attachments settling against the clock); they import nothing of the control plane but
//! each other, which `tests/dependencies.rs` checks.

/// A record's `Record` impl at version 1: its kind, its `id` field, and its index.
macro_rules! record {
    ($t:ty, $kind:literal, |$s:ident| $index:expr) => {
        impl kumo_store::Record for $t {
            const KIND: &'static str = $kind;
            const VERSION: u32 = 1;
            fn id(&self) -> &str {
                &self.id
            }
            fn index(&self) -> kumo_store::Index {
                let $s = self;
                $index
            }
        }
    };
}

pub mod capacity_reservation;
pub mod command;
pub mod image;
pub mod instance;
pub mod key_pair;
pub mod launch_template;
pub mod metric;
pub mod net;
pub mod permissions;
pub mod placement_group;
pub mod session;
pub mod snapshot;
pub mod volume;
