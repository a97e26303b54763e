//! `averaging`: dist-keras' AveragingTrainer (`shared/spec/dist-keras.md` §3.7), synchronous.
//!
//! - Worker, after each epoch `r`: commit `W_k`; wait for round `r` to close; `W_k = C`.
//! - Server (the round barrier of `distk_net::averaging`): once every live worker committed to round
//!   `r`, `C = (1/n) sum_k W_k` over the `n` workers that did; a worker lost or done no longer
//!   counts.

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The averaging trainer.
pub const TRAINER: Trainer =
    Trainer { name: "averaging", default_window: 1, default_elastic_lr: 1.0, worker: WorkerSide::EpochAverage, server };

fn server(_: &TrainerParams) -> ServerSide {
    ServerSide::Rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainers::TrainerKind;

    #[test]
    fn averages_in_rounds_synchronously() {
        let p = TrainerParams::new(TrainerKind::Averaging, None, None, None, None).unwrap();
        assert!(matches!(p.server_side(), ServerSide::Rounds));
        assert!(TRAINER.uses_server() && !TRAINER.is_async());
    }
}
