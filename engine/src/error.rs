//! The engine's error type.

use thiserror::Error;

/// Everything that can go wrong while building, compiling or running a graph.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A node's inputs do not fit its op (shape, rank or count).
    #[error("node `{node}` ({op}): {reason}")]
    Shape {
        /// The node's name.
        node: String,
        /// The op's name.
        op: String,
        /// What does not fit.
        reason: String,
    },
    /// The caller passed data that does not fit the compiled graph.
    #[error("{0}")]
    BadInput(String),
    /// No usable GPU adapter, or the adapter refused a request.
    #[error("{0}")]
    Device(String),
    /// A tensor or buffer exceeds what the adapter can bind or allocate.
    #[error("{0}")]
    Limit(String),
    /// A graph uses something the executor cannot do.
    #[error("{0}")]
    Unsupported(String),
}

/// Result with [`EngineError`].
pub type Result<T> = std::result::Result<T, EngineError>;
