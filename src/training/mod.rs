//! Training on one device: optimizers by Keras name, the training session (graph, partial batches),
//! the loop over epochs and batches that `run` and the workers share ([`epochs`]), the single
//! trainer's run ([`single_run`]), what training reads from and writes into a model, history and
//! checkpoints.

pub mod checkpoint;
pub mod epoch;
pub mod epochs;
pub mod evaluate;
pub mod history;
pub mod model_io;
pub mod optimizers;
pub mod plot;
pub mod session;
pub mod single_run;

pub use epoch::epoch_order;
pub use model_io::{model_widths, trained_model_bytes, write_trained_model};
pub use optimizers::parse_optimizer;
pub use session::{SessionConfig, StepStats, TrainSession};
