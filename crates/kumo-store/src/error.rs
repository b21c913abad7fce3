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
    /// The engine failed; its own error is the source (for the log, never for the wire).
    #[error("the database failed")]
    Db(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A transaction's body did not run to its end (it panicked, or the engine never called
    /// it).
    #[error("the transaction did not run to its end")]
    Unfinished,
    /// The database was written by a newer build.
    #[error("the database has schema version {found}, newer than this build's {supported}")]
    NewerSchema { found: i64, supported: i64 },
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
            _ => StoreError::Db(Box::new(e)),
        }
    }
}
