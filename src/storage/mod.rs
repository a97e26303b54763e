//! Object storage: `s3://` paths for data, models, outputs, histories and parameter-server
//! snapshots, through the `object_store` crate (ring as the only TLS provider). Inputs are
//! staged to a private temporary folder and outputs uploaded once written whole; write-ahead
//! logs and the job server's records stay on a local filesystem (they need append, fsync and
//! rename). Other schemes are refused with the way out.

pub mod aws_profile;
pub mod location;
pub mod s3;
pub mod staged;

pub use location::{Location, LocationError};
pub use staged::{StagedInput, StagedOutput, StagingError, stage_input};
