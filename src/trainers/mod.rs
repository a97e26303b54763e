//! The dist-keras trainers (`--trainer`), one file each (its equations, its worker side, its server
//! rule and their tests), listed once in the registry below; each with the original defaults. `shared/spec/dist-keras.md`
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
//!
//! A trainer is a [`Trainer`]: its name and defaults, its [`WorkerSide`] (which exchange
//! [`policy::WorkerPolicy`] runs around the local steps) and its [`ServerSide`] (what the parameter
//! server does with commits: an [`UpdateRule`] of `distk-net`, averaging rounds, or collecting the
//! final models). `docs/adding-a-trainer.md` shows how to add one.

pub mod link;
pub mod policy;
pub mod replica;
#[cfg(test)]
pub(crate) mod testing;

use anyhow::{Result, bail};
use distk_net::rules::{Add, UpdateRule};
use serde::{Deserialize, Serialize};

/// The registry: one line per trainer, `Variant => file,` (the file is `src/trainers/<file>.rs`,
/// holding `pub const TRAINER: Trainer`). It declares the modules, [`TrainerKind`] (serialised as
/// the lowercase variant name) and the lookup [`TrainerKind::trainer`].
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $file:ident,)*) => {
        $(pub mod $file;)*

        /// The training algorithms.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum TrainerKind {
            $($(#[$doc])* $variant,)*
        }

        impl TrainerKind {
            /// Every trainer, in the registry's order.
            pub const ALL: &'static [TrainerKind] = &[$(TrainerKind::$variant,)*];

            /// The trainer's description (its file's `TRAINER`).
            pub fn trainer(self) -> &'static Trainer {
                match self {
                    $(TrainerKind::$variant => &$file::TRAINER,)*
                }
            }
        }
    };
}

registry! {
    /// One replica on one device.
    Single => single,
    /// Synchronous model averaging after every epoch.
    Averaging => averaging,
    /// N independent models, one per worker.
    Ensemble => ensemble,
    /// DOWNPOUR (Dean et al. 2012): accumulated deltas.
    Downpour => downpour,
    /// Asynchronous Gradient Normalization (the original's class `ADAG`).
    Agn => agn,
    /// Asynchronous Distributed Adaptive Gradients (the original's class `Experimental`).
    Adag => adag,
    /// DynSGD (Jiang et al. 2017): deltas scaled by staleness.
    Dynsgd => dynsgd,
    /// Asynchronous elastic averaging SGD (Zhang et al. 2015).
    Aeasgd => aeasgd,
    /// Elastic averaging with momentum (Zhang et al. 2015).
    Eamsgd => eamsgd,
}

/// One trainer: what its file declares.
#[derive(Debug)]
pub struct Trainer {
    /// The name on the command line (the variant's name in lowercase).
    pub name: &'static str,
    /// The original's default communication window.
    pub default_window: usize,
    /// The original's default trainer-level learning rate (ADAG's gamma, the elastic trainers' eta).
    pub default_elastic_lr: f32,
    /// What a worker does around its local steps.
    pub worker: WorkerSide,
    /// What the parameter server does with commits, for these hyper-parameters.
    pub server: fn(&TrainerParams) -> ServerSide,
}

/// What a worker does around its local steps ([`policy::WorkerPolicy`] runs it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerSide {
    /// One replica, no server.
    Alone,
    /// Trains its own model from its own start; sends its final weights.
    Independent,
    /// After each epoch: commits `W`, waits for the round's mean and takes it.
    EpochAverage,
    /// Every window: commits `W - W1` (divided by the steps taken when `normalize`), pulls,
    /// `W = W1 = C`.
    WindowDelta {
        /// Divide the delta by the local steps it accumulates (AGN's residual).
        normalize: bool,
    },
    /// Every window: pulls `C`; `E = alpha (W - C)`; `W -= E`; commits `E`.
    Elastic {
        /// EAMSGD's momentum around each local step.
        momentum: bool,
    },
}

/// What the parameter server does with commits.
pub enum ServerSide {
    /// No server.
    None,
    /// Folds every commit into the centre with a rule, asynchronously.
    Rule(Box<dyn UpdateRule>),
    /// Closes a round when every live worker committed: `C = (1/n) sum W_k`.
    Rounds,
    /// Nothing during training; keeps each worker's final model.
    Collect,
}

impl ServerSide {
    /// `C <- C + commit` ([`Add`]): the server side of the trainers whose workers send what the
    /// centre is to add (DOWNPOUR's delta, AGN's residual, the elastic difference).
    pub fn sum(_: &TrainerParams) -> ServerSide {
        ServerSide::Rule(Box::new(Add))
    }
}

impl Trainer {
    /// Whether workers exchange with a parameter server during training.
    pub fn uses_server(&self) -> bool {
        self.worker != WorkerSide::Alone
    }

    /// Whether workers train asynchronously (they go on when another is lost).
    pub fn is_async(&self) -> bool {
        matches!(self.worker, WorkerSide::WindowDelta { .. } | WorkerSide::Elastic { .. })
    }
}

impl TrainerKind {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        self.trainer().name
    }

    /// The original's default communication window.
    pub fn default_window(self) -> usize {
        self.trainer().default_window
    }

    /// The original's default trainer-level learning rate (ADAG's gamma, the elastic trainers' eta).
    pub fn default_elastic_lr(self) -> f32 {
        self.trainer().default_elastic_lr
    }

    /// Whether workers exchange with a parameter server during training.
    pub fn uses_server(self) -> bool {
        self.trainer().uses_server()
    }

    /// Whether workers train asynchronously (they go on when another is lost).
    pub fn is_async(self) -> bool {
        self.trainer().is_async()
    }

    /// What a worker does around its local steps.
    pub fn worker(self) -> WorkerSide {
        self.trainer().worker
    }
}

impl std::str::FromStr for TrainerKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        TrainerKind::ALL.iter().copied().find(|k| k.name() == s).ok_or_else(|| format!("unknown trainer `{s}`"))
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
        if matches!(kind.worker(), WorkerSide::Elastic { .. }) && !(p.alpha() > 0.0 && p.alpha() <= 1.0) {
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

    /// What the parameter server does with commits.
    pub fn server_side(&self) -> ServerSide {
        (self.kind.trainer().server)(self)
    }

    /// The server's update rule (the plain sum where the trainer folds no commit with a rule of its
    /// own: averaging rounds and ensembles do not use it).
    pub fn server_rule(&self) -> Box<dyn UpdateRule> {
        match self.server_side() {
            ServerSide::Rule(r) => r,
            ServerSide::None | ServerSide::Rounds | ServerSide::Collect => Box::new(Add),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_names_match_the_serialised_names() {
        for &k in TrainerKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.name()));
            assert_eq!(k.name().parse::<TrainerKind>(), Ok(k));
        }
        assert!("nope".parse::<TrainerKind>().is_err());
    }

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
