//! What stops the generator, with the cause it met.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CodegenError {
    /// The model file cannot be read or unpacked.
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The model file is not the JSON the generator reads.
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The model lacks what an allow-listed operation needs, or has a shape the generator
    /// does not handle.
    #[error("{0}")]
    Model(String),
    /// rustfmt could not be run or fed.
    #[error("{step}: {source}")]
    Rustfmt {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// rustfmt ran and refused the generated code.
    #[error("rustfmt rejected the generated code")]
    Rejected,
}

impl CodegenError {
    pub fn model(what: impl Into<String>) -> CodegenError {
        CodegenError::Model(what.into())
    }
}
