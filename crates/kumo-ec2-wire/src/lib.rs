//! The EC2 query protocol, API version 2016-11-15: typed requests and responses generated from
//! the AWS model, the form decoder, the XML encoder and the wire error.
//!
//! Everything per operation is generated (`generated/`); this crate's hand-written modules are
//! the protocol's runtime, shared by every operation.

pub mod decode;
pub mod encode;
pub mod error;
pub mod generated;
pub mod query;
pub mod types;

pub use error::Ec2Error;
pub use generated::ids::{IdKind, Ids};
pub use generated::operations::{dispatch, Ec2, Request, API_VERSION, OPERATIONS, XML_NAMESPACE};
pub use generated::{filters, shapes};
pub use types::{Blob, DateTime};

/// Who is calling, where, and how: what every operation needs besides its input.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The 12-digit account the caller's access key maps to.
    pub account_id: String,
    /// The region of the request's SigV4 credential scope.
    pub region: String,
    /// The id that the response carries in `<requestId>` and `x-amzn-RequestId`.
    pub request_id: String,
    /// The call asked for `DryRun`: check everything, change nothing, answer
    /// `DryRunOperation`.
    pub dry_run: bool,
    /// The caller's idempotency token, for the operations that take one.
    pub client_token: Option<String>,
}

/// One Describe operation's filter names, as [`filters`] generates them from the model: each
/// documented name (and the aliases AWS accepts) parses to one value.
pub trait FilterName: Copy + Eq + std::fmt::Debug + 'static {
    /// The operation documents `tag:<key>`, `tag-key` or `tag-value`: its resources have tags.
    const TAGS: bool;
    /// Every name, once.
    const ALL: &'static [Self];
    /// The name a request gives, or one of its aliases.
    fn parse(name: &str) -> Option<Self>;
    /// The name as the reference writes it.
    fn name(self) -> &'static str;
}
