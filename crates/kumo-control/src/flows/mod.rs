//! The workflows that span resource families. Each is called by the families' operations
//! and by the compute side; none calls back up into them.

pub mod lifecycle;
