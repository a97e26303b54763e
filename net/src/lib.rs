//! distk-net: the parameter server's wire format and its core, independent of the engine.
//!
//! - [`wire`]: a frame is a versioned rkyv header followed by an aligned raw f32 payload; sizes are
//!   limited and validated before anything is used; the payload is read in place (no copy into a
//!   new Vec per commit).
//! - [`rules`]: the server-side update rules of the dist-keras trainers (add, DynSGD staleness
//!   scaling, ADAG per-weight scaling), applied straight to the centre from a payload slice.
//! - [`server`]: the parameter-server state machine (centre, global clock, each worker's last-pull
//!   clock and commit sequence), tested without sockets. The QUIC shell comes next (docs/status.md).

pub mod error;
pub mod rules;
pub mod server;
pub mod wire;

pub use error::{NetError, Result};
