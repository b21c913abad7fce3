//! Typed tables: a resource type says how it is stored, and the store handles the encoding.

use crate::{Row, StoreError};
use serde::{de::DeserializeOwned, Serialize};

/// The index columns of a row: what filters and uniqueness rules look at without decoding the
/// document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    /// A name unique within (scope, kind), like a key pair's name.
    pub name: Option<String>,
    pub state: Option<String>,
    pub vpc: Option<String>,
    pub subnet: Option<String>,
    pub zone: Option<String>,
}

/// A resource type stored as a versioned JSON document.
///
/// Persisted formats are versioned from the first row: when a type's layout changes, bump
/// `VERSION` and teach `upgrade` to read the older documents, so old data always decodes.
pub trait Record: Serialize + DeserializeOwned {
    /// The table-level kind, e.g. `key-pair`.
    const KIND: &'static str;
    /// The current document version.
    const VERSION: u32;

    fn id(&self) -> &str;

    fn index(&self) -> Index {
        Index::default()
    }

    /// Reads a document written at an older `version`. The default knows only the current
    /// one.
    fn upgrade(version: u32, doc: serde_json::Value) -> Result<Self, serde_json::Error> {
        let _ = version;
        serde_json::from_value(doc)
    }

    fn to_row(&self) -> Row {
        Row {
            id: self.id().to_string(),
            index: self.index(),
            version: Self::VERSION,
            // Serializing plain data structures to a Vec cannot fail.
            doc: serde_json::to_vec(self).unwrap_or_default(),
        }
    }

    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let corrupt = |source| StoreError::Corrupt {
            kind: Self::KIND,
            id: row.id.clone(),
            source,
        };
        if row.version == Self::VERSION {
            serde_json::from_slice(&row.doc).map_err(corrupt)
        } else {
            let value = serde_json::from_slice(&row.doc).map_err(corrupt)?;
            Self::upgrade(row.version, value).map_err(corrupt)
        }
    }
}
