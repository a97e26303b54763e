//! `aeasgd`: asynchronous elastic averaging SGD (Zhang et al. 2015; `shared/spec/dist-keras.md`
//! §3.4), asynchronous.
//!
//! - Worker, every `w` local steps (default 32): pull `C`; `E = alpha (W - C)`; `W <- W - E`; commit
//!   `E`. `alpha = rho * elastic_lr` (defaults 5.0 x 0.1 = 0.5; it must be in (0, 1]). The worker is
//!   pulled toward the centre, never reset to it.
//! - Server: `C <- C + E`.

use crate::trainers::{ServerSide, Trainer, WorkerSide};

/// The AEASGD trainer.
pub const TRAINER: Trainer = Trainer {
    name: "aeasgd",
    default_window: 32,
    default_elastic_lr: 0.1,
    worker: WorkerSide::Elastic { momentum: false },
    server: ServerSide::sum,
};

#[cfg(test)]
mod tests {
    use crate::trainers::TrainerKind;
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, centre, params, setup};

    #[test]
    fn the_centre_adds_the_elastic_difference() {
        assert_eq!(apply_rule(TrainerKind::Aeasgd, &[1.0], &[0.5], 4, None), vec![1.5]);
    }

    #[test]
    fn aeasgd_applies_the_elastic_force_to_both_sides() {
        let p = params(TrainerKind::Aeasgd, 2);
        let (core, mut ws) = setup(&p, 1, 0);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap();
        // alpha 0.5: E = 0.5 (2 - 0) = 1; W = 1; C = 1. The worker is pulled, not reset.
        assert_eq!((centre(&core), r.w[0]), (1.0, 1.0));
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap();
        // W = 3, C = 1: E = 1; W = 2; C = 2.
        assert_eq!((centre(&core), r.w[0]), (2.0, 2.0));
    }
}
