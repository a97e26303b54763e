//! What a worker does around its local steps: the exchanges each trainer's [`WorkerSide`] names
//! (the table in [`crate::trainers`]; each trainer's file says which it takes).
//! Weights are read from the replica only at exchanges (EAMSGD: every step, for its momentum).

use anyhow::Result;

use crate::trainers::link::Link;
use crate::trainers::replica::Replica;
use crate::trainers::{TrainerParams, WorkerSide};
use crate::training::StepStats;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    None,
    /// A commit and a pull are in flight; when the centre arrives, `W = C + (W - W_sent)`.
    Reset,
    /// A pull is in flight; when the centre arrives, the elastic exchange happens.
    Elastic,
}

/// A worker's side of a trainer.
pub struct WorkerPolicy {
    p: TrainerParams,
    /// The reference point: the centre last pulled.
    w1: Vec<f32>,
    /// The weights when the last delta was committed.
    sent: Vec<f32>,
    /// Local steps since the last exchange.
    since: usize,
    /// EAMSGD's velocity.
    velocity: Vec<f32>,
    pending: Pending,
    /// Values before this index are trained by the optimizer; after it is state (BatchNorm running
    /// statistics), which is neither normalised by the window nor given momentum.
    trainable_len: usize,
}

impl WorkerPolicy {
    /// The worker side of `p` for a layout whose first `trainable_len` values are trainable.
    pub fn new(p: TrainerParams, trainable_len: usize) -> Self {
        WorkerPolicy {
            p,
            w1: Vec::new(),
            sent: Vec::new(),
            since: 0,
            velocity: Vec::new(),
            pending: Pending::None,
            trainable_len,
        }
    }

    /// Starts from the centre: `W = W1 = C` (the ensemble keeps its own start).
    pub fn start(&mut self, r: &mut impl Replica, link: &mut impl Link) -> Result<()> {
        if matches!(self.p.kind.worker(), WorkerSide::Alone | WorkerSide::Independent) {
            return Ok(());
        }
        link.request_pull(distk_net::wire::NOW)?;
        let c = link.take_pull(true)?.unwrap_or_default();
        r.set_params(&c)?;
        self.w1 = c;
        Ok(())
    }

    /// One local step on the loaded batch, and the exchange when the window is full.
    pub fn step(&mut self, r: &mut impl Replica, link: &mut impl Link) -> Result<StepStats> {
        self.integrate(r, link, false)?;
        let stats = if self.p.kind.worker() == (WorkerSide::Elastic { momentum: true }) {
            self.momentum_step(r)?
        } else {
            r.train_step()?
        };
        if self.p.kind.is_async() {
            self.since += 1;
            if self.since >= self.p.window {
                self.exchange(r, link)?;
            }
        }
        Ok(stats)
    }

    /// The end of epoch `epoch`: averaging commits its weights and waits for the round's mean.
    pub fn end_epoch(&mut self, r: &mut impl Replica, link: &mut impl Link, epoch: u64) -> Result<()> {
        if self.p.kind.worker() == WorkerSide::EpochAverage {
            link.commit(r.params()?, epoch)?;
            link.request_pull(epoch)?;
            if let Some(c) = link.take_pull(true)? {
                r.set_params(&c)?;
            }
        }
        Ok(())
    }

    /// The end of the data: the partial window is exchanged too, and every request is answered.
    pub fn finish(&mut self, r: &mut impl Replica, link: &mut impl Link) -> Result<()> {
        if self.p.kind.is_async() {
            self.integrate(r, link, true)?;
            if self.since > 0 {
                self.exchange(r, link)?;
                self.integrate(r, link, true)?;
            }
        }
        link.flush()
    }

    /// Between parts of a worker's rows (`--parallelism-factor`): the pending window is exchanged
    /// and the worker starts again from the centre, as a new dist-keras task did.
    pub fn resync(&mut self, r: &mut impl Replica, link: &mut impl Link) -> Result<()> {
        if self.p.kind.is_async() {
            self.finish(r, link)?;
            self.start(r, link)?;
        }
        Ok(())
    }

    /// EAMSGD (Zhang et al.): `v = d v + step(W + d v)`, `W = W + v`, where `step(y)` is what the
    /// worker optimizer adds to `y`.
    fn momentum_step(&mut self, r: &mut impl Replica) -> Result<StepStats> {
        let d = self.p.momentum;
        let w = r.params()?;
        if self.velocity.len() != w.len() {
            self.velocity = vec![0.0; w.len()];
        }
        let look: Vec<f32> = w.iter().zip(&self.velocity).map(|(w, v)| w + d * v).collect();
        r.set_params(&look)?;
        let stats = r.train_step()?;
        let after = r.params()?;
        let mut next = w;
        let t = self.trainable_len.min(next.len());
        for ((n, v), (a, l)) in next[..t].iter_mut().zip(self.velocity.iter_mut()).zip(after.iter().zip(&look)) {
            *v = d * *v + (a - l);
            *n += *v;
        }
        // Running statistics are state, not parameters: they take the step's value as it is.
        next[t..].copy_from_slice(&after[t..]);
        r.set_params(&next)?;
        Ok(stats)
    }

    fn exchange(&mut self, r: &mut impl Replica, link: &mut impl Link) -> Result<()> {
        // One exchange at a time: the previous one completes first.
        self.integrate(r, link, true)?;
        let k = self.since.max(1) as f32;
        self.since = 0;
        let side = self.p.kind.worker();
        if let WorkerSide::WindowDelta { normalize } = side {
            let w = r.params()?;
            // AGN normalises the parameters' accumulated step by the window; running statistics are
            // not steps, so they travel as they changed.
            let t = self.trainable_len;
            let delta: Vec<f32> = w
                .iter()
                .zip(&self.w1)
                .enumerate()
                .map(|(i, (a, b))| if normalize && i < t { (a - b) / k } else { a - b })
                .collect();
            link.commit_and_pull(delta, 0)?;
            self.sent = w;
            self.pending = Pending::Reset;
        } else if let WorkerSide::Elastic { .. } = side {
            link.request_pull(0)?;
            self.pending = Pending::Elastic;
        }
        if !self.p.overlap {
            self.integrate(r, link, true)?;
        }
        Ok(())
    }

    /// Applies an exchange whose centre arrived (waiting for it with `wait`).
    fn integrate(&mut self, r: &mut impl Replica, link: &mut impl Link, wait: bool) -> Result<()> {
        if self.pending == Pending::None {
            return Ok(());
        }
        let Some(c) = link.take_pull(wait)? else { return Ok(()) };
        let mut w = r.params()?;
        match self.pending {
            Pending::Reset => {
                // Steps taken while the exchange was in flight are kept on top of the new centre.
                for ((w, c), s) in w.iter_mut().zip(&c).zip(&self.sent) {
                    *w = c + (*w - s);
                }
                r.set_params(&w)?;
                self.w1 = c;
            }
            Pending::Elastic => {
                let alpha = self.p.alpha();
                let e: Vec<f32> = w.iter().zip(&c).map(|(w, c)| alpha * (w - c)).collect();
                for (w, e) in w.iter_mut().zip(&e) {
                    *w -= e;
                }
                r.set_params(&w)?;
                link.commit(e, 0)?;
            }
            Pending::None => {}
        }
        self.pending = Pending::None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use distk_net::server::ServerCore;

    use super::*;
    use crate::trainers::TrainerKind;
    use crate::trainers::link::MemoryLink;
    use crate::trainers::testing::{Fake, centre, params, setup};

    #[test]
    fn resync_commits_the_partial_window_and_restarts_from_the_centre() {
        // --parallelism-factor: between parts the worker exchanges what it has and starts again.
        let p = params(TrainerKind::Agn, 3);
        let (core, mut ws) = setup(&p, 1, 0);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap();
        core.lock().unwrap().commit(9, 1, &[10.0]).unwrap(); // another worker moves the centre
        pol.resync(r, l).unwrap();
        // (2 - 0) / 2 = 1 committed; the worker restarts from the centre 10 + 1.
        assert_eq!((centre(&core), r.w[0]), (11.0, 11.0));
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap();
        assert_eq!(centre(&core), 12.0, "a new full window from W1 = 11: (14 - 11) / 3");
    }

    #[test]
    fn running_statistics_are_neither_normalised_nor_given_momentum() {
        // Two values: a parameter and a running statistic (trainable_len 1); both step by 1.
        let p = params(TrainerKind::Agn, 2);
        let core = Arc::new(Mutex::new(ServerCore::new(vec![0.0, 0.0], p.server_rule())));
        let (mut r, mut l) = (Fake { w: vec![0.0, 0.0], step: 1.0 }, MemoryLink::new(core.clone(), 0, 0));
        let mut pol = WorkerPolicy::new(p, 1);
        pol.start(&mut r, &mut l).unwrap();
        pol.step(&mut r, &mut l).unwrap();
        pol.step(&mut r, &mut l).unwrap();
        assert_eq!(core.lock().unwrap().centre(), &[1.0, 2.0], "(2 - 0) / 2 for the parameter, 2 for the statistic");
        let p = TrainerParams { momentum: 0.5, ..params(TrainerKind::Eamsgd, 100) };
        let (mut r, mut l) = (Fake { w: vec![0.0, 0.0], step: 1.0 }, MemoryLink::new(core, 1, 0));
        let mut pol = WorkerPolicy::new(p, 1);
        for _ in 0..3 {
            pol.step(&mut r, &mut l).unwrap();
        }
        assert_eq!(r.w, vec![4.25, 3.0], "momentum on the parameter only");
    }

    #[test]
    fn overlapped_exchanges_keep_the_steps_taken_while_in_flight() {
        let p = TrainerParams { overlap: true, ..params(TrainerKind::Agn, 2) };
        let (core, mut ws) = setup(&p, 1, 1);
        let (r, l) = &mut ws[0];
        let mut pol = WorkerPolicy::new(p, usize::MAX);
        pol.start(r, l).unwrap();
        pol.step(r, l).unwrap();
        pol.step(r, l).unwrap(); // commits (2 - 0) / 2 = 1; the centre (1) arrives one look later
        assert_eq!((centre(&core), r.w[0]), (1.0, 2.0));
        pol.step(r, l).unwrap(); // not arrived yet: W = 3
        assert_eq!(r.w[0], 3.0);
        // Arrives: W = 1 + (3 - 2) = 2, W1 = 1; the step makes 3; window full: (3 - 1) / 2 = 1.
        pol.step(r, l).unwrap();
        assert_eq!(centre(&core), 2.0);
        pol.finish(r, l).unwrap();
        assert_eq!((centre(&core), r.w[0]), (2.0, 2.0), "no step since the last commit: W = C");
    }
}
