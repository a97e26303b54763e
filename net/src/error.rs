//! Errors of the wire format, the server core and the transport.

use thiserror::Error;

/// What can go wrong decoding a frame, applying a message or talking to a peer.
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
    /// The peer refused us (wrong secret, worker id taken): retrying will not help.
    #[error("{0}")]
    Refused(String),
    /// The worker id asked for is held by another worker process that is still connected (if that
    /// process died, its connection times out within seconds and the id becomes free).
    #[error("{0}")]
    InUse(String),
    /// The server could not carry out a request (its write-ahead log could not be written): the
    /// request was not applied and not acknowledged.
    #[error("{0}")]
    Rejected(String),
    /// The write-ahead log or a snapshot could not be written or read.
    #[error("{0}")]
    Storage(String),
    /// The connection failed or was lost, or a reply did not come in time: a retry may help.
    #[error("{0}")]
    Connection(String),
    /// TLS material (certificate, key, CA file) could not be made or read.
    #[error("{0}")]
    Tls(String),
}

impl NetError {
    /// Whether reconnecting and retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, NetError::Connection(_))
    }
}

/// Result with [`NetError`].
pub type Result<T> = std::result::Result<T, NetError>;
