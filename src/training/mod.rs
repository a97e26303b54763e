//! Training on one device: optimizers by Keras name, the training session (graph, partial batches),
//! the loop of `distk-gpu run`, history and checkpoints.

pub mod checkpoint;
pub mod evaluate;
pub mod history;
pub mod optimizers;
pub mod plot;
pub mod session;

pub use optimizers::parse_optimizer;
pub use session::{SessionConfig, StepStats, TrainSession};
