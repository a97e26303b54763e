//! `single`: dist-keras' SingleTrainer. One replica trains on one device; there is no parameter
//! server and no exchange: each local step is `W <- W + step(W)`, `step` being the worker
//! optimizer's update on the batch. `distk-gpu run` without `--workers` trains it.

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The single trainer.
pub const TRAINER: Trainer =
    Trainer { name: "single", default_window: 1, default_elastic_lr: 1.0, worker: WorkerSide::Alone, server };

fn server(_: &TrainerParams) -> ServerSide {
    ServerSide::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainers::TrainerKind;

    #[test]
    fn has_no_server() {
        let p = TrainerParams::new(TrainerKind::Single, None, None, None, None).unwrap();
        assert!(matches!(p.server_side(), ServerSide::None));
        assert!(!TRAINER.uses_server() && !TRAINER.is_async());
    }
}
