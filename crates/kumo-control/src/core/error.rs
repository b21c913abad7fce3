//! Errors inside the control plane. A store failure is an internal fault: it is logged with
//! its cause and answered as `InternalError`, never leaked to the wire.

use kumo_ec2_wire::Ec2Error;
use kumo_store::StoreError;

/// An [`Ec2Error`] that store failures convert into, so `?` works inside transactions.
#[derive(Debug)]
pub struct Fail(pub Ec2Error);

impl From<Ec2Error> for Fail {
    fn from(e: Ec2Error) -> Self {
        Fail(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %chain(&e), "store failure");
        Fail(Ec2Error::internal())
    }
}

/// Turns a (code, message) rule violation from `kumo-model` into a wire error.
pub fn rule((code, message): (&'static str, String)) -> Ec2Error {
    Ec2Error::new(code, message)
}

/// Settings of a request that Kumo cannot honour yet: (name, given). Ignoring one would make
/// something other than what was asked, so the first one given is refused by name.
pub fn refuse_settings(op: &str, settings: &[(&str, bool)]) -> Result<(), Ec2Error> {
    match settings.iter().find(|(_, given)| *given) {
        Some((name, _)) => Err(Ec2Error::new(
            "Unsupported",
            format!("Kumo does not support the {op} setting {name} yet."),
        )),
        None => Ok(()),
    }
}

/// An error with its causes, for the log (`cannot grow: volume file I/O failed: No space left
/// on device`): the one formatter, shared with the driver crate.
pub use kumo_compute::error_chain as chain;

#[cfg(test)]
mod chain_tests {
    #[test]
    fn causes_are_kept() {
        let io = std::io::Error::other("No space left on device");
        let e = kumo_blockstore::BlockError::Io(io);
        assert_eq!(
            super::chain(&e),
            "volume file I/O failed: No space left on device"
        );
    }
}
