//! `ensemble`: dist-keras' EnsembleTrainer (`shared/spec/dist-keras.md` §3.7). Each worker `k`
//! trains its own model from its own start (`W_k <- W_k + step(W_k)`, no exchange) and sends its
//! final `W_k`; the server changes no centre and keeps the N models (written as NAME-k.onnx).

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The ensemble trainer.
pub const TRAINER: Trainer =
    Trainer { name: "ensemble", default_window: 1, default_elastic_lr: 1.0, worker: WorkerSide::Independent, server };

fn server(_: &TrainerParams) -> ServerSide {
    ServerSide::Collect
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainers::TrainerKind;

    #[test]
    fn collects_independent_models() {
        let p = TrainerParams::new(TrainerKind::Ensemble, None, None, None, None).unwrap();
        assert!(matches!(p.server_side(), ServerSide::Collect));
        assert!(TRAINER.uses_server() && !TRAINER.is_async());
    }
}
