//! Training on one device: optimizers by Keras name, the training session (graph, partial batches),
//! the loop over epochs and batches that `run` and the workers share ([`epochs`]), the single
//! trainer's run ([`single_run`]), what training reads from and writes into a model, history and
//! checkpoints.

pub mod checkpoint;
pub mod epoch;
pub mod epochs;
pub mod evaluate;
pub mod history;
pub mod metrics;
pub mod model_io;
pub mod optimizers;
pub mod plot;
pub mod session;
pub mod single_run;

pub use epoch::epoch_order;
pub use model_io::{model_widths, trained_model_bytes, write_trained_model};
pub use optimizers::parse_optimizer;
pub use session::{SessionConfig, StepStats, TrainSession};

/// Whether the loss makes a scalar label a regression target (MSE, MAE) rather than a class.
pub fn is_regression_loss(loss: Option<&str>) -> bool {
    matches!(loss, Some("mean_squared_error" | "mse" | "mean_absolute_error" | "mae"))
}

/// What `run` says when it takes a model's output as logits on its own: a cross-entropy on a model
/// that does not end in Softmax or Sigmoid (PyTorch's usual export) reads its output as logits
/// unless `--from-logits false` says otherwise.
pub fn output_kind_note(model: &distk_onnx::OnnxModel, loss: &str, from_logits: Option<bool>) -> Option<String> {
    if from_logits.is_some() || !loss.contains("crossentropy") {
        return None;
    }
    let g = model.graph();
    let out = g.output.first()?;
    let last = g.node.iter().find(|n| n.output.contains(&out.name))?;
    (!matches!(last.op_type.as_str(), "Softmax" | "Sigmoid")).then(|| {
        format!(
            "the model ends in {} (not Softmax or Sigmoid): {loss} reads its output as logits (--from-logits false reads it as probabilities)",
            last.op_type
        )
    })
}
