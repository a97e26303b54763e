//! Errors of the wire format and the server core.

use thiserror::Error;

/// What can go wrong decoding a frame or applying a message.
#[derive(Debug, Error, PartialEq)]
pub enum NetError {
    /// The frame is malformed: too short, bad magic or version, sizes that disagree.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The frame or payload exceeds the configured limit.
    #[error("frame of {got} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Bytes announced or received.
        got: usize,
        /// The limit.
        limit: usize,
    },
    /// A message does not fit the server's state (payload length, unknown worker...).
    #[error("{0}")]
    Protocol(String),
}

/// Result with [`NetError`].
pub type Result<T> = std::result::Result<T, NetError>;
