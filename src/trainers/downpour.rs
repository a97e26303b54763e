//! `downpour`: DOWNPOUR (Dean et al. 2012; `shared/spec/dist-keras.md` §3.1), asynchronous.
//!
//! - Worker, every `w` local steps (default 5): commit `delta = W - W1` (accumulated, not
//!   normalised); pull; `W = W1 = C`.
//! - Server: `C <- C + delta`.
//!
//! The original checked the window before the local step, so its first window had `w - 1` steps;
//! here every window has `w`.

use distk_net::rules::Add;

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The DOWNPOUR trainer.
pub const TRAINER: Trainer = Trainer {
    name: "downpour",
    default_window: 5,
    default_elastic_lr: 1.0,
    worker: WorkerSide::WindowDelta { normalize: false },
    server,
};

fn server(_: &TrainerParams) -> ServerSide {
    ServerSide::Rule(Box::new(Add))
}

#[cfg(test)]
mod tests {
    use crate::trainers::TrainerKind;
    use crate::trainers::testing::apply_rule;

    #[test]
    fn the_centre_adds_the_accumulated_delta() {
        assert_eq!(apply_rule(TrainerKind::Downpour, &[1.0, 2.0], &[0.5, -1.0], 3, None), vec![1.5, 1.0]);
    }
}
