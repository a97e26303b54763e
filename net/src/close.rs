//! Application close codes of a parameter-server connection.

/// The worker said it is done.
pub const DONE: u32 = 0;
/// The secret was not accepted.
pub const BAD_SECRET: u32 = 1;
/// A frame was malformed, oversized or out of protocol.
pub const BAD_FRAME: u32 = 2;
/// The worker was refused (id taken or out of range, run already complete).
pub const REFUSED: u32 = 3;
/// The server is shutting down.
pub const SHUTDOWN: u32 = 4;
/// The worker id is in use by another connected worker process.
pub const IN_USE: u32 = 5;
/// This connection was superseded by a newer one of the same worker.
pub const SUPERSEDED: u32 = 6;
