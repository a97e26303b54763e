//! `adag`: Asynchronous Distributed Adaptive Gradients (the thesis' ADAG, the original's class
//! `Experimental`; `shared/spec/dist-keras.md` §3.6), asynchronous.
//!
//! - Worker: as AGN, every `w` local steps (default 5): commit `(W - W1) / k`; pull; `W = W1 = C`.
//! - Server, per weight: `D = C - C_pulled`, `s = 1 / (D^2 / gamma + 1)`, `C <- C + s * residual`,
//!   `C_pulled` the centre this worker last pulled and `gamma` `--elastic-lr` (default 1.0; the
//!   thesis used 1e-4). The server keeps each worker's pulled centre (the thesis' option 2), so a
//!   commit carries only the residual.

use distk_net::rules::{Add, CommitMeta, UpdateRule};

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The ADAG trainer.
pub const TRAINER: Trainer = Trainer {
    name: "adag",
    default_window: 5,
    default_elastic_lr: 1.0,
    worker: WorkerSide::WindowDelta { normalize: true },
    server,
};

fn server(p: &TrainerParams) -> ServerSide {
    ServerSide::Rule(Box::new(Adag { gamma: p.elastic_lr }))
}

/// Per-weight ADAG scaling: `s = 1 / ((C - C_pulled)^2 / gamma + 1)`, `C <- C + s delta`.
#[derive(Clone, Copy, Debug)]
pub struct Adag {
    /// The thesis' gamma (`--elastic-lr`; the thesis used 1e-4).
    pub gamma: f32,
}

impl UpdateRule for Adag {
    fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
        let inv = 1.0 / self.gamma;
        match meta.pulled_centre {
            Some(pulled) => {
                for ((c, &d), &p) in centre.iter_mut().zip(commit).zip(pulled) {
                    let dist = *c - p;
                    *c += d / (inv * dist * dist + 1.0);
                }
            }
            // A worker that never pulled started from the initial centre: no distance known, add.
            None => Add.apply(centre, commit, meta),
        }
    }
    fn needs_pulled_centre(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str {
        "adag"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainers::TrainerKind;
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, centre, params, setup};

    #[test]
    fn scales_each_weight_by_its_distance() {
        // gamma 0.5: s = 1 / (2 D^2 + 1). D = [0, 1, -2] -> s = [1, 1/3, 1/9].
        let mut c = vec![1.0, 2.0, -1.0];
        let pulled = [1.0, 1.0, 1.0];
        let meta = CommitMeta { worker: 0, staleness: 5, pulled_centre: Some(&pulled) };
        Adag { gamma: 0.5 }.apply(&mut c, &[0.9, 0.9, 0.9], &meta);
        let want = [1.9, 2.0 + 0.3, -1.0 + 0.1];
        for (a, b) in c.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{c:?}");
        }
    }

    #[test]
    fn gamma_is_the_elastic_lr_and_a_worker_that_never_pulled_adds() {
        // Default gamma 1: D = 1 -> s = 1/2.
        assert_eq!(apply_rule(TrainerKind::Adag, &[2.0], &[1.0], 0, Some(&[1.0])), vec![2.5]);
        assert_eq!(apply_rule(TrainerKind::Adag, &[2.0], &[1.0], 0, None), vec![3.0]);
    }

    #[test]
    fn adag_scales_each_weight_by_how_far_the_centre_moved() {
        let p = TrainerParams { elastic_lr: 1.0, ..params(TrainerKind::Adag, 2) };
        let (core, mut ws) = setup(&p, 2, 0);
        let mut pols = [WorkerPolicy::new(p, usize::MAX), WorkerPolicy::new(p, usize::MAX)];
        for (pol, (r, l)) in pols.iter_mut().zip(ws.iter_mut()) {
            pol.start(r, l).unwrap();
        }
        for (pol, (r, l)) in pols.iter_mut().zip(ws.iter_mut()) {
            pol.step(r, l).unwrap();
            pol.step(r, l).unwrap();
        }
        // Residuals (2 - 0) / 2 = 1. Worker 0: C = 1. Worker 1 pulled 0, C moved by 1: s = 1 / (1/1 * 1 + 1).
        assert!((centre(&core) - 1.5).abs() < 1e-6, "{}", centre(&core));
    }
}
