//! A key pair: its public half, name and fingerprint.

use kumo_store::{Index, Record};
use serde::{Deserialize, Serialize};

/// A stored key pair. Only the public half is kept: EC2 never shows a private key twice.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPairRecord {
    pub id: String,
    pub name: String,
    /// `rsa` or `ed25519`.
    pub key_type: String,
    pub fingerprint: String,
    /// OpenSSH `authorized_keys` form.
    pub public_key: String,
    pub created_ms: i64,
}

impl Record for KeyPairRecord {
    const KIND: &'static str = "key-pair";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index {
            name: Some(self.name.clone()),
            ..Index::default()
        }
    }
}
