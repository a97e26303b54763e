//! distk-net: the parameter server's wire format, its core and its QUIC transport, independent of
//! the engine.
//!
//! - [`wire`]: a frame is a versioned rkyv header followed by an aligned raw payload; sizes are
//!   limited and validated before anything is used; an f32 payload is read in place.
//! - [`rules`]: the update-rule trait the trainers' server rules implement (applied straight to the
//!   centre from a payload slice), with the plain sum; the rules themselves live with the trainers.
//! - [`server`]: the parameter-server state machine (centre, global clock, each worker's last-pull
//!   clock and commit sequence), [`averaging`]: the round barrier of synchronous averaging,
//!   [`membership`]: which workers joined, left or finished, and which process holds each id;
//!   [`state`]: all of it together, changed only by applying [`journal`] ops. All tested without
//!   sockets.
//! - [`wal`], [`snapshot`], [`durable`]: the write-ahead log (checksummed records, group commit,
//!   replay to a torn tail), the snapshot file, and recovery (snapshot + replay) and checkpoints.
//! - [`tls`], [`auth`], [`endpoint`]: certificates (self-signed or given), pinning or a CA, secrets,
//!   QUIC settings (5 s idle timeout, 1 s keep-alive).
//! - [`host`] and [`client`]: the thin quinn/tokio shells of the server and of a worker.

pub mod auth;
pub mod averaging;
pub mod client;
pub mod close;
pub mod durable;
pub mod endpoint;
pub mod error;
pub mod host;
pub mod journal;
pub mod membership;
pub mod protocol;
pub mod rules;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod tls;
pub mod wal;
pub mod wire;

pub use error::{NetError, Result};
