//! `dynsgd`: DynSGD (Jiang et al., SIGMOD 2017; `shared/spec/dist-keras.md` §3.3), asynchronous.
//!
//! - Worker, every `w` local steps (default 5): commit `delta = W - W1` (not normalised); pull;
//!   `W = W1 = C`.
//! - Server: `C <- C + delta / (tau + 1)`, `tau` the commits applied (by anyone) since this
//!   worker's last pull.

use distk_net::rules::{CommitMeta, UpdateRule};

use crate::trainers::{ServerSide, Trainer, TrainerParams, WorkerSide};

/// The DynSGD trainer.
pub const TRAINER: Trainer = Trainer {
    name: "dynsgd",
    default_window: 5,
    default_elastic_lr: 1.0,
    worker: WorkerSide::WindowDelta { normalize: false },
    server,
};

fn server(_: &TrainerParams) -> ServerSide {
    ServerSide::Rule(Box::new(DynSgd))
}

/// `C <- C + delta / (staleness + 1)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DynSgd;

impl UpdateRule for DynSgd {
    fn apply(&self, centre: &mut [f32], commit: &[f32], meta: &CommitMeta<'_>) {
        let scale = 1.0 / (meta.staleness as f32 + 1.0);
        for (c, &d) in centre.iter_mut().zip(commit) {
            *c += d * scale;
        }
    }
    fn name(&self) -> &'static str {
        "dynsgd"
    }
}

#[cfg(test)]
mod tests {
    use crate::trainers::TrainerKind;
    use crate::trainers::link::Link;
    use crate::trainers::policy::WorkerPolicy;
    use crate::trainers::testing::{apply_rule, centre, params, setup};

    #[test]
    fn divides_by_staleness_plus_one() {
        let c = apply_rule(TrainerKind::Dynsgd, &[0.0, 0.0], &[3.0, -6.0], 2, None);
        assert_eq!(c, vec![1.0, -2.0]);
        assert_eq!(apply_rule(TrainerKind::Dynsgd, &c, &[1.0, 1.0], 0, None), vec![2.0, -1.0]);
    }

    #[test]
    fn dynsgd_scales_a_stale_delta() {
        let p = params(TrainerKind::Dynsgd, 2);
        let (core, mut ws) = setup(&p, 2, 0);
        let mut pols = [WorkerPolicy::new(p, usize::MAX), WorkerPolicy::new(p, usize::MAX)];
        for (pol, (r, l)) in pols.iter_mut().zip(ws.iter_mut()) {
            pol.start(r, l).unwrap();
        }
        for (pol, (r, l)) in pols.iter_mut().zip(ws.iter_mut()) {
            pol.step(r, l).unwrap();
            pol.step(r, l).unwrap();
        }
        // Worker 0: delta 2, fresh -> C = 2. Worker 1 pulled at clock 0, one commit since: 2 / 2 -> 3.
        assert_eq!(centre(&core), 3.0);
        assert_eq!(ws[1].1.stats().staleness, 1);
    }
}
