//! Who may use a resource (an image, a snapshot) besides its owner.

use serde::{Deserialize, Serialize};

/// Who may use a resource besides its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Account ids, sorted, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// The group `all`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
}

impl Permissions {
    pub fn allows(&self, account: &str) -> bool {
        self.public || self.users.iter().any(|u| u == account)
    }
}
