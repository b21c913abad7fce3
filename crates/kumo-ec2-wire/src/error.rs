//! The one error type of the wire: an AWS error code, its message and its HTTP status.

use std::borrow::Cow;
use std::fmt;

/// An EC2 error as the client sees it. Small on purpose: it is returned through every layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Error(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    code: Cow<'static, str>,
    message: String,
}

/// Builds an [`Ec2Error`] with a `format!`-style message: `ec2_error!("InvalidKeyPair.NotFound",
/// "The key pair '{name}' does not exist")`.
#[macro_export]
macro_rules! ec2_error {
    ($code:expr, $($arg:tt)+) => {
        $crate::Ec2Error::new($code, format!($($arg)+))
    };
}

impl Ec2Error {
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Ec2Error(Box::new(Inner {
            code: code.into(),
            message: message.into(),
        }))
    }

    pub fn code(&self) -> &str {
        &self.0.code
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The HTTP status AWS answers this code with. Deterministic errors are never 5xx, since
    /// every SDK retries those.
    pub fn status(&self) -> u16 {
        match self.code() {
            "DryRunOperation" => 412,
            "AuthFailure" => 401,
            "UnauthorizedOperation" => 403,
            "RequestLimitExceeded" => 503,
            // AWS answers a capacity shortage with 500, as a fault worth retrying.
            "InternalError" | "InsufficientInstanceCapacity" => 500,
            _ => 400,
        }
    }

    pub fn invalid_action(action: &str) -> Self {
        ec2_error!(
            "InvalidAction",
            "The action {action} is not valid for this web service."
        )
    }

    pub fn not_implemented(action: &str) -> Self {
        ec2_error!(
            "NotImplemented",
            "The action {action} is part of the EC2 API but Kumo does not implement it yet."
        )
    }

    pub fn dry_run() -> Self {
        Ec2Error::new(
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    }

    /// An internal fault. The cause is for the log, never for the wire.
    pub fn internal() -> Self {
        Ec2Error::new(
            "InternalError",
            "An internal error has occurred. Try again later.",
        )
    }

    pub fn invalid_value(message: impl Into<String>) -> Self {
        Ec2Error::new("InvalidParameterValue", message)
    }

    /// A required parameter is absent (`name` as AWS spells it in the message).
    pub fn missing_parameter(name: &str) -> Self {
        Ec2Error::new(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }
}

impl fmt::Display for Ec2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Ec2Error {}
