//! distk-net: the parameter server's wire format and its core, independent of the engine.
//!
//! - [`wire`]: a frame is a versioned rkyv header followed by an aligned raw f32 payload; sizes are
//!   limited and validated before anything is used; the payload is read in place (no copy into a
//!   new Vec per commit).
//! - [`rules`]: the server-side update rules of the dist-keras trainers (add, DynSGD staleness
//!   scaling, ADAG per-weight scaling), applied straight to the centre from a payload slice.
//! - [`server`]: the parameter-server state machine (centre, global clock, each worker's last-pull
//!   clock and commit sequence), tested without sockets.
//! - [`transport`]: the QUIC shell (quinn, rustls with ring): pinned self-signed certificate, secret
//!   authentication, one stream per commit or pull.

pub mod error;
pub mod rules;
pub mod server;
pub mod transport;
pub mod wire;

pub use error::{NetError, Result};
