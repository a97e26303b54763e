//! `downpour`: DOWNPOUR (Dean et al. 2012; `shared/spec/dist-keras.md` §3.1), asynchronous.
//!
//! - Worker, every `w` local steps (default 5): commit `delta = W - W1` (accumulated, not
//!   normalised); pull; `W = W1 = C`.
//! - Server: `C <- C + delta`.
//!
//! The original checked the window before the local step, so its first window had `w - 1` steps;
//! here every window has `w`.

use crate::trainers::{ServerSide, Trainer, WorkerSide};

/// The DOWNPOUR trainer.
pub const TRAINER: Trainer = Trainer {
    name: "downpour",
    default_window: 5,
    default_elastic_lr: 1.0,
    worker: WorkerSide::WindowDelta { normalize: false },
    server: ServerSide::sum,
};

#[cfg(test)]
mod tests {
    use crate::trainers::TrainerKind;
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, centre, params, setup};

    #[test]
    fn the_centre_adds_the_accumulated_delta() {
        assert_eq!(apply_rule(TrainerKind::Downpour, &[1.0, 2.0], &[0.5, -1.0], 3, None), vec![1.5, 1.0]);
    }

    #[test]
    fn downpour_commits_the_accumulated_delta_and_resets_to_the_centre() {
        let p = params(TrainerKind::Downpour, 2);
        let (core, mut ws) = setup(&p, 1, 0);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        pol.step(r, l).unwrap();
        assert_eq!(centre(&core), 0.0);
        pol.step(r, l).unwrap();
        assert_eq!((centre(&core), r.w[0]), (2.0, 2.0));
    }
}
