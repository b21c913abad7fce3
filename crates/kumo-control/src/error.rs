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
        tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "store failure");
        Fail(Ec2Error::internal())
    }
}

/// Turns a (code, message) rule violation from `kumo-model` into a wire error.
pub fn rule((code, message): (&'static str, String)) -> Ec2Error {
    Ec2Error::new(code, message)
}
