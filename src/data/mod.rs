//! Data input and output: rows of features (and labels) from Parquet or CSV, read as a stream of
//! batches, and result files written atomically.

pub mod atomic;
pub mod columns;
pub mod dataset;
pub mod decoder_guard;
pub mod fit;
pub mod parquet_output;
pub mod parts;
pub mod predictions;
pub mod reader;
pub mod stream;

pub use reader::{DataReader, FeatureColumns, Rows};
