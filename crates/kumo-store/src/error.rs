use thiserror::Error;

/// Why the store refused or failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule of the schema would break (duplicate id or name).
    #[error("the row conflicts with an existing one")]
    Conflict,
    /// A stored document could not be read: a newer format, or corruption.
    #[error("stored {kind} {id} has an unreadable document")]
    Corrupt {
        kind: &'static str,
        id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the database failed")]
    Db(#[source] rusqlite::Error),
    /// The store's background thread could not start.
    #[error("cannot start the store's checkpoint thread")]
    Thread(#[source] std::io::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict
            }
            _ => StoreError::Db(e),
        }
    }
}
