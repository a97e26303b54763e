//! The dist-keras trainers (`--trainer`), each with the original defaults. `shared/spec/dist-keras.md`
//! §3 gives the originals; `W` is a worker's weights, `W1` its reference point (the centre it last
//! pulled), `C` the centre, `w` the communication window, `k` the local steps actually taken since the
//! last exchange (`w`, or fewer in the partial window at the end of the data, which is committed too:
//! the original discarded it).
//!
//! | trainer | worker, every `w` local steps | server rule |
//! |---|---|---|
//! | `single` | one replica, no server | — |
//! | `averaging` | after each epoch: commit `W`; pull the round's mean | `C = (1/n) sum W_k` (barrier) |
//! | `ensemble` | none; sends its final `W` | keeps N models |
//! | `downpour` | commit `W - W1`; pull; `W = W1 = C` | `C += delta` |
//! | `agn` (the original's class `ADAG`) | commit `(W - W1) / k`; pull; `W = W1 = C` | `C += residual` |
//! | `adag` (the original's `Experimental`) | as `agn` | `C += residual / ((C - C_pulled)^2 / gamma + 1)` per weight |
//! | `dynsgd` | commit `W - W1`; pull | `C += delta / (tau + 1)`, `tau` commits since the pull |
//! | `aeasgd` | pull; `E = alpha (W - C)`; `W -= E`; commit `E` | `C += E` |
//! | `eamsgd` | as `aeasgd`; each local step `v = d v + step(W + d v)`, `W += v` | `C += E` |
//!
//! `alpha = rho * elastic_lr` (defaults 5.0 and 0.1: 0.5); `gamma` is `--elastic-lr` for `adag`.
//!
//! Deviations from the original, on purpose: every window commits after `w` local steps (DOWNPOUR
//! checked before the step, so its first window had `w - 1`); the partial window at the end of the
//! data is committed; EAMSGD's momentum is that of Zhang et al. around the worker optimizer's step
//! (the original scaled the step twice and looked ahead on the wrong side); the communication of
//! the window-delta trainers overlaps the next local steps (the pulled centre arrives a few steps
//! late and the steps taken meanwhile are kept: `W = C + (W - W_sent)`), and an elastic exchange
//! applies to the weights the worker has when the centre arrives.

pub mod link;
pub mod policy;
pub mod replica;

use anyhow::{Result, bail};
use clap::ValueEnum;
use distk_net::rules::{Adag, Add, DynSgd, UpdateRule};
use serde::{Deserialize, Serialize};

/// The training algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainerKind {
    /// One replica on one device.
    Single,
    /// Synchronous model averaging after every epoch.
    Averaging,
    /// N independent models, one per worker.
    Ensemble,
    /// DOWNPOUR (Dean et al. 2012): accumulated deltas.
    Downpour,
    /// Asynchronous Gradient Normalization (the original's class `ADAG`).
    Agn,
    /// Asynchronous Distributed Adaptive Gradients (the original's class `Experimental`).
    Adag,
    /// DynSGD (Jiang et al. 2017): deltas scaled by staleness.
    Dynsgd,
    /// Asynchronous elastic averaging SGD (Zhang et al. 2015).
    Aeasgd,
    /// Elastic averaging with momentum (Zhang et al. 2015).
    Eamsgd,
}

impl TrainerKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TrainerKind::Single => "single",
            TrainerKind::Averaging => "averaging",
            TrainerKind::Ensemble => "ensemble",
            TrainerKind::Downpour => "downpour",
            TrainerKind::Agn => "agn",
            TrainerKind::Adag => "adag",
            TrainerKind::Dynsgd => "dynsgd",
            TrainerKind::Aeasgd => "aeasgd",
            TrainerKind::Eamsgd => "eamsgd",
        }
    }

    /// The original's default communication window.
    pub fn default_window(self) -> usize {
        match self {
            TrainerKind::Downpour | TrainerKind::Dynsgd | TrainerKind::Adag => 5,
            TrainerKind::Agn => 12,
            TrainerKind::Aeasgd | TrainerKind::Eamsgd => 32,
            _ => 1,
        }
    }

    /// The original's default trainer-level learning rate (ADAG's gamma, the elastic trainers' eta).
    pub fn default_elastic_lr(self) -> f32 {
        match self {
            TrainerKind::Aeasgd | TrainerKind::Eamsgd => 0.1,
            _ => 1.0,
        }
    }

    /// Whether workers exchange with a parameter server during training.
    pub fn uses_server(self) -> bool {
        !matches!(self, TrainerKind::Single)
    }

    /// Whether workers train asynchronously (they go on when another is lost).
    pub fn is_async(self) -> bool {
        !matches!(self, TrainerKind::Single | TrainerKind::Averaging | TrainerKind::Ensemble)
    }
}

/// A trainer with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerParams {
    /// The algorithm.
    pub kind: TrainerKind,
    /// Local steps between exchanges (`--communication-window`).
    pub window: usize,
    /// The elastic force's rho (`--rho`).
    pub rho: f32,
    /// The trainer-level learning rate (`--elastic-lr`): ADAG's gamma, the elastic trainers' eta.
    pub elastic_lr: f32,
    /// EAMSGD's momentum `d` (`--momentum`).
    pub momentum: f32,
    /// Overlap communication with the next local steps.
    pub overlap: bool,
}

impl TrainerParams {
    /// `kind` with the original defaults, overridden where given.
    pub fn new(
        kind: TrainerKind,
        window: Option<usize>,
        rho: Option<f32>,
        elastic_lr: Option<f32>,
        momentum: Option<f32>,
    ) -> Result<Self> {
        let p = TrainerParams {
            kind,
            window: window.unwrap_or(kind.default_window()),
            rho: rho.unwrap_or(5.0),
            elastic_lr: elastic_lr.unwrap_or(kind.default_elastic_lr()),
            momentum: momentum.unwrap_or(0.9),
            overlap: true,
        };
        if p.window == 0 {
            bail!("--communication-window must be at least 1");
        }
        if !(p.elastic_lr > 0.0 && p.elastic_lr.is_finite()) {
            bail!("--elastic-lr must be a positive number");
        }
        if matches!(kind, TrainerKind::Aeasgd | TrainerKind::Eamsgd) && !(p.alpha() > 0.0 && p.alpha() <= 1.0) {
            bail!(
                "the elastic force alpha = rho x elastic-lr = {} must be in (0, 1]: above 1 a worker overshoots the centre",
                p.alpha()
            );
        }
        if !(0.0..1.0).contains(&p.momentum) {
            bail!("--momentum must be in [0, 1)");
        }
        Ok(p)
    }

    /// The elastic force `alpha = rho * elastic_lr`.
    pub fn alpha(&self) -> f32 {
        self.rho * self.elastic_lr
    }

    /// The server's update rule.
    pub fn server_rule(&self) -> Box<dyn UpdateRule> {
        match self.kind {
            TrainerKind::Dynsgd => Box::new(DynSgd),
            TrainerKind::Adag => Box::new(Adag { gamma: self.elastic_lr }),
            _ => Box::new(Add),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let p = TrainerParams::new(TrainerKind::Aeasgd, None, None, None, None).unwrap();
        assert_eq!((p.window, p.rho, p.elastic_lr), (32, 5.0, 0.1));
        assert!((p.alpha() - 0.5).abs() < 1e-7);
        assert_eq!(TrainerParams::new(TrainerKind::Agn, None, None, None, None).unwrap().window, 12);
        assert_eq!(TrainerParams::new(TrainerKind::Downpour, None, None, None, None).unwrap().window, 5);
        let adag = TrainerParams::new(TrainerKind::Adag, None, None, None, None).unwrap();
        assert_eq!((adag.window, adag.elastic_lr, adag.server_rule().name()), (5, 1.0, "adag"));
        assert_eq!(
            TrainerParams::new(TrainerKind::Dynsgd, None, None, None, None).unwrap().server_rule().name(),
            "dynsgd"
        );
        assert!(TrainerParams::new(TrainerKind::Aeasgd, None, Some(50.0), None, None).is_err(), "alpha 5");
        assert!(TrainerParams::new(TrainerKind::Agn, Some(0), None, None, None).is_err());
    }
}
