//! The workflows that span resource families. Each is called by the families' operations
//! and by the compute side; none calls back up into them.

pub mod boot;
pub mod credits;
pub mod events;
pub mod guest_events;
pub mod lifecycle;
pub mod metrics;
pub mod session;
pub mod ssm;
