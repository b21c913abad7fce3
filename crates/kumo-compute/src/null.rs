//! The null driver: no guests. The control plane keeps its instances as API state only, and
//! says so in their state reason; everything that would reach a guest finds none.

use crate::{CommandResult, ComputeError, Driver, Guest, GuestEvent, InstanceSpec};
use std::sync::Arc;

/// A driver that runs nothing.
#[derive(Debug, Default)]
pub struct NullDriver;

impl Driver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
    }

    fn runs_guests(&self) -> bool {
        false
    }

    fn runs_architecture(&self, _arch: &str) -> bool {
        true
    }

    fn start(&self, spec: &InstanceSpec) -> Result<(), ComputeError> {
        Err(ComputeError::Unknown(spec.id.clone()))
    }

    fn guest(&self, _id: &str) -> Option<Arc<dyn Guest>> {
        None
    }

    fn guests(&self) -> Vec<Arc<dyn Guest>> {
        Vec::new()
    }

    fn destroy(&self, _id: &str) -> Result<(), ComputeError> {
        Ok(())
    }

    fn console(&self, _id: &str) -> Option<Vec<u8>> {
        None
    }

    fn command_result(&self, _id: &str, _command_id: &str) -> Option<CommandResult> {
        None
    }

    fn set_firewall(
        &self,
        _vpc_id: &str,
        _fw: &crate::firewall::Firewall,
    ) -> Result<(), ComputeError> {
        Ok(())
    }

    fn events(&self) -> Option<std::sync::mpsc::Receiver<GuestEvent>> {
        None
    }

    fn shutdown_all(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_driver_runs_nothing() {
        let d: Arc<dyn Driver> = Arc::new(NullDriver);
        assert!(!d.runs_guests());
        assert!(!d.is_running("i-0123456789abcdef0"));
        assert!(d.guests().is_empty());
        assert!(d.events().is_none());
        assert!(d.stop("i-0123456789abcdef0", true).is_ok());
    }
}
