//! `eamsgd`: elastic averaging with momentum (Zhang et al. 2015; `shared/spec/dist-keras.md` §3.5),
//! asynchronous.
//!
//! - Worker, each local step: `v <- d v + step(W + d v)`, `W <- W + v`, `step(y)` what the worker
//!   optimizer adds to `y` and `d` `--momentum` (default 0.9); running statistics take the step's
//!   value without momentum. Every `w` local steps (default 32), the elastic exchange of AEASGD:
//!   pull `C`; `E = alpha (W - C)`; `W <- W - E`; commit `E`.
//! - Server: `C <- C + E`.
//!
//! The original scaled the step twice and looked ahead on the wrong side; this is Zhang et al.'s
//! momentum around the worker optimizer's step.

use crate::trainers::{ServerSide, Trainer, WorkerSide};

/// The EAMSGD trainer.
pub const TRAINER: Trainer = Trainer {
    name: "eamsgd",
    default_window: 32,
    default_elastic_lr: 0.1,
    worker: WorkerSide::Elastic { momentum: true },
    server: ServerSide::sum,
};

#[cfg(test)]
mod tests {
    use crate::trainers::{TrainerKind, TrainerParams};
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, params, setup};

    #[test]
    fn the_centre_adds_the_elastic_difference() {
        assert_eq!(apply_rule(TrainerKind::Eamsgd, &[-1.0, 0.0], &[0.5, 0.25], 0, None), vec![-0.5, 0.25]);
    }

    #[test]
    fn eamsgd_puts_momentum_around_the_optimizer_step() {
        let p = TrainerParams { momentum: 0.5, ..params(TrainerKind::Eamsgd, 100) };
        let (_, mut ws) = setup(&p, 1, 0);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        // step() adds 1 wherever it is taken: v = 1, W = 1; v = 1.5, W = 2.5; v = 1.75, W = 4.25.
        for want in [1.0, 2.5, 4.25] {
            pol.step(r, l).unwrap();
            assert!((r.w[0] - want).abs() < 1e-6, "{} != {want}", r.w[0]);
        }
    }
}
