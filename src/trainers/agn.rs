//! `agn`: Asynchronous Gradient Normalization (the thesis' AGN, the original's class `ADAG`;
//! `shared/spec/dist-keras.md` §3.2), asynchronous.
//!
//! - Worker, every `w` local steps (default 12): commit the residual `(W - W1) / k`, `k` the local
//!   steps taken since the last exchange (`w`, or fewer in the partial window at the end of the
//!   data); pull; `W = W1 = C`. Running statistics (BatchNorm) travel undivided.
//! - Server: `C <- C + residual` (no division by the number of workers).

use crate::trainers::{ServerSide, Trainer, WorkerSide};

/// The AGN trainer.
pub const TRAINER: Trainer = Trainer {
    name: "agn",
    default_window: 12,
    default_elastic_lr: 1.0,
    worker: WorkerSide::WindowDelta { normalize: true },
    server: ServerSide::sum,
};

#[cfg(test)]
mod tests {
    use crate::trainers::TrainerKind;
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, centre, params, setup};

    #[test]
    fn the_centre_adds_the_residual_whatever_the_staleness() {
        assert_eq!(apply_rule(TrainerKind::Agn, &[1.0, 2.0], &[0.25, -0.5], 7, None), vec![1.25, 1.5]);
    }

    #[test]
    fn agn_divides_by_the_steps_taken_including_the_partial_window() {
        let p = params(TrainerKind::Agn, 3);
        let (core, mut ws) = setup(&p, 1, 0);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        for _ in 0..4 {
            pol.step(r, l).unwrap();
        }
        // Window of 3: (3 - 0) / 3 = 1; the worker resets to 1 and steps to 2.
        assert_eq!((centre(&core), r.w[0]), (1.0, 2.0));
        pol.finish(r, l).unwrap();
        // Partial window of 1 step: (2 - 1) / 1.
        assert_eq!(centre(&core), 2.0);
    }
}
