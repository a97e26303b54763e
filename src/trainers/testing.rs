//! Helpers for the trainers' tests: a replica whose every step adds a constant, workers linked in
//! memory to one server core, and a server rule applied to one commit.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use distk_net::rules::CommitMeta;
use distk_net::server::ServerCore;

use crate::trainers::link::MemoryLink;
use crate::trainers::replica::Replica;
use crate::trainers::{ServerSide, TrainerKind, TrainerParams};
use crate::training::StepStats;

/// A replica whose optimizer step adds `step` to every weight.
pub struct Fake {
    /// The weights.
    pub w: Vec<f32>,
    /// What each step adds.
    pub step: f32,
}

impl Replica for Fake {
    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.w.clone())
    }
    fn set_params(&mut self, w: &[f32]) -> Result<()> {
        self.w = w.to_vec();
        Ok(())
    }
    fn train_step(&mut self) -> Result<StepStats> {
        self.w.iter_mut().for_each(|w| *w += self.step);
        Ok(StepStats { loss: 0.0, accuracy: 0.0 })
    }
}

/// `kind` with window `window`, exchanges not overlapped.
pub fn params(kind: TrainerKind, window: usize) -> TrainerParams {
    TrainerParams { overlap: false, ..TrainerParams::new(kind, Some(window), None, None, None).unwrap() }
}

/// A one-value centre at 0 under `p`'s rule, and `workers` fake replicas at 0 (steps of 1) linked to
/// it, their pulls arriving `delay` looks late.
pub fn setup(p: &TrainerParams, workers: u32, delay: usize) -> (Arc<Mutex<ServerCore>>, Vec<(Fake, MemoryLink)>) {
    let core = Arc::new(Mutex::new(ServerCore::new(vec![0.0], p.server_rule())));
    let ws =
        (0..workers).map(|i| (Fake { w: vec![0.0], step: 1.0 }, MemoryLink::new(core.clone(), i, delay))).collect();
    (core, ws)
}

/// The centre's one value.
pub fn centre(core: &Arc<Mutex<ServerCore>>) -> f32 {
    core.lock().unwrap().centre()[0]
}

/// `centre` after `kind`'s server rule (default hyper-parameters) applied `commit` from a worker
/// with `staleness` whose pulled centre was `pulled`.
pub fn apply_rule(
    kind: TrainerKind,
    centre: &[f32],
    commit: &[f32],
    staleness: u64,
    pulled: Option<&[f32]>,
) -> Vec<f32> {
    let p = TrainerParams::new(kind, None, None, None, None).expect("default parameters are valid");
    let ServerSide::Rule(rule) = p.server_side() else { panic!("{} folds no commit with a rule", kind.name()) };
    let mut c = centre.to_vec();
    rule.apply(&mut c, commit, &CommitMeta { worker: 0, staleness, pulled_centre: pulled });
    c
}
