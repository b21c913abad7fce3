//! What every layer of the control plane uses: the control error and its wire form
//! ([`error`]), resource ids, the wire's filters, DescribeX's engine ([`describe`]: filters
//! pushed down to the store's indexes, pages counted in items), page tokens, and idempotency
//! tokens. It imports no other module of the crate but itself.

pub mod checks;
pub mod describe;
pub mod error;
pub mod filters;
pub mod idempotency;
pub mod ids;
pub mod paging;
pub mod tagged;
