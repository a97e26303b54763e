//! Keras 3 optimizers over the flat parameter buffer. The trainable tensors are a contiguous prefix of
//! the buffer and their gradients sit at the same offsets of a gradient buffer, so one update is one
//! elementwise pass (one dispatch on the GPU) whatever the number of tensors. Padding between tensors
//! has zero gradient and stays zero under every rule below.
//!
//! Equations (Keras 3.15, `shared/fixtures/oracles/train/optimizers.md`), `t` the 1-based step:
//! - weight decay (any optimizer, AdamW's default 0.004): `p <- p - p*wd*lr`, before the update;
//! - SGD: `p <- p - g*lr`; with momentum `m <- m*mu - g*lr; p <- p + m` (Nesterov: `p <- p + m*mu - g*lr`);
//! - Adam: `m <- m + (g-m)(1-b1); v <- v + (g^2-v)(1-b2); a = lr sqrt(1-b2^t)/(1-b1^t); p <- p - m a/(sqrt v + eps)`;
//! - RMSprop: `v <- rho v + (1-rho) g^2` (centered: `mg <- rho mg + (1-rho) g`, denominator
//!   `sqrt(v - mg^2 + eps)`), `p <- p - lr g/sqrt(v + eps)`; with momentum `b <- mu b + lr g/sqrt(..); p <- p - b`;
//! - Adagrad: `a <- a + g^2` (a starts at 0.1), `p <- p - lr g/sqrt(a + eps)`;
//! - Adadelta: `Eg <- rho Eg + (1-rho) g^2; d = -sqrt(Edx + eps) g/sqrt(Eg + eps); Edx <- rho Edx + (1-rho) d^2; p <- p + lr d`.

use crate::cpu::real::Real;

/// Which update rule, with its hyper-parameters (Keras names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    /// `sgd`.
    Sgd {
        /// Momentum (0 for plain SGD).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// `adam` (and `adamw`, which is Adam with weight decay 0.004).
    Adam {
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to sqrt(v).
        epsilon: f32,
    },
    /// `rmsprop`.
    RmsProp {
        /// Decay of the squared-gradient average.
        rho: f32,
        /// Momentum (0: none).
        momentum: f32,
        /// Added inside the square root.
        epsilon: f32,
        /// Subtract the squared mean gradient.
        centered: bool,
    },
    /// `adagrad`.
    Adagrad {
        /// Starting value of the accumulator.
        initial_accumulator_value: f32,
        /// Added inside the square root.
        epsilon: f32,
    },
    /// `adadelta`.
    Adadelta {
        /// Decay of the running averages.
        rho: f32,
        /// Added inside the square roots.
        epsilon: f32,
    },
}

/// An optimizer: rule, learning rate and decoupled weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Optimizer {
    /// The rule.
    pub kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f32,
    /// Decoupled weight decay (None: off).
    pub weight_decay: Option<f32>,
}

/// `1 - x` computed in double and rounded once, as Keras casts its Python hyper-parameters.
fn one_minus(x: f32) -> f32 {
    (1.0 - x as f64) as f32
}

impl Optimizer {
    /// Number of state slots per parameter (each a buffer as long as the trainable prefix).
    pub fn state_slots(&self) -> usize {
        match self.kind {
            OptimizerKind::Sgd { momentum, .. } => (momentum != 0.0) as usize,
            OptimizerKind::Adam { .. } => 2,
            OptimizerKind::RmsProp { .. } => 3,
            OptimizerKind::Adagrad { .. } => 1,
            OptimizerKind::Adadelta { .. } => 2,
        }
    }

    /// The initial value of each state slot.
    pub fn initial_state(&self) -> Vec<f32> {
        match self.kind {
            OptimizerKind::Adagrad { initial_accumulator_value, .. } => vec![initial_accumulator_value],
            _ => vec![0.0; self.state_slots()],
        }
    }

    /// Updates `p` from `g` in place (CPU reference, f32 or f64); `state` holds the slots one after
    /// the other, each `p.len()` long; `t` is the 1-based step. In f32 the operations and their order
    /// are Keras' own.
    pub fn update<T: Real>(&self, p: &mut [T], g: &[T], state: &mut [T], t: u64) {
        let n = p.len();
        let lr = T::of(self.learning_rate);
        let one = T::one();
        if let Some(wd) = self.weight_decay {
            let wd = T::of(wd);
            for v in p.iter_mut() {
                *v = *v - *v * wd * lr;
            }
        }
        let (s0, rest) = state.split_at_mut(n.min(state.len()));
        match self.kind {
            OptimizerKind::Sgd { momentum, nesterov } => {
                if momentum == 0.0 {
                    for (pi, &gi) in p.iter_mut().zip(g) {
                        *pi = *pi - gi * lr;
                    }
                } else {
                    let mu = T::of(momentum);
                    for i in 0..n {
                        s0[i] = s0[i] * mu - g[i] * lr;
                        p[i] = p[i] + if nesterov { s0[i] * mu - g[i] * lr } else { s0[i] };
                    }
                }
            }
            OptimizerKind::Adam { beta_1, beta_2, epsilon } => {
                let (m, v) = (s0, &mut rest[..n]);
                let alpha =
                    T::of(self.learning_rate * (1.0 - beta_2.powi(t as i32)).sqrt() / (1.0 - beta_1.powi(t as i32)));
                let (b1, b2, eps) = (T::of(one_minus(beta_1)), T::of(one_minus(beta_2)), T::of(epsilon));
                for i in 0..n {
                    m[i] = m[i] + (g[i] - m[i]) * b1;
                    v[i] = v[i] + (g[i] * g[i] - v[i]) * b2;
                    p[i] = p[i] - m[i] * alpha / (v[i].sqrt() + eps);
                }
            }
            OptimizerKind::RmsProp { rho, momentum, epsilon, centered } => {
                let (b, mg) = rest.split_at_mut(n);
                let v = s0;
                let (rho, mu, eps) = (T::of(rho), T::of(momentum), T::of(epsilon));
                for i in 0..n {
                    v[i] = rho * v[i] + (one - rho) * g[i] * g[i];
                    let mut denom = v[i];
                    if centered {
                        mg[i] = rho * mg[i] + (one - rho) * g[i];
                        denom = denom - mg[i] * mg[i];
                    }
                    let step = lr * g[i] / (denom + eps).sqrt();
                    if momentum > 0.0 {
                        b[i] = mu * b[i] + step;
                        p[i] = p[i] - b[i];
                    } else {
                        p[i] = p[i] - step;
                    }
                }
            }
            OptimizerKind::Adagrad { epsilon, .. } => {
                let eps = T::of(epsilon);
                for i in 0..n {
                    s0[i] = s0[i] + g[i] * g[i];
                    p[i] = p[i] - lr * g[i] / (s0[i] + eps).sqrt();
                }
            }
            OptimizerKind::Adadelta { rho, epsilon } => {
                let edx = &mut rest[..n];
                let (rho, eps) = (T::of(rho), T::of(epsilon));
                for i in 0..n {
                    s0[i] = rho * s0[i] + (one - rho) * g[i] * g[i];
                    let d = -(edx[i] + eps).sqrt() * g[i] / (s0[i] + eps).sqrt();
                    edx[i] = rho * edx[i] + (one - rho) * d * d;
                    p[i] = p[i] + lr * d;
                }
            }
        }
    }

    /// Uniform words of the WGSL update for step `t` (after the element count and offsets).
    pub fn uniform_scalars(&self, t: u64) -> [f32; 6] {
        let lr = self.learning_rate;
        let wd = self.weight_decay.unwrap_or(0.0);
        match self.kind {
            OptimizerKind::Sgd { momentum, .. } => [lr, wd, momentum, 0.0, 0.0, 0.0],
            OptimizerKind::Adam { beta_1, beta_2, epsilon } => {
                let alpha = lr * (1.0 - beta_2.powi(t as i32)).sqrt() / (1.0 - beta_1.powi(t as i32));
                [lr, wd, one_minus(beta_1), one_minus(beta_2), epsilon, alpha]
            }
            OptimizerKind::RmsProp { rho, momentum, epsilon, .. } => [lr, wd, rho, momentum, epsilon, 0.0],
            OptimizerKind::Adagrad { epsilon, .. } => [lr, wd, epsilon, 0.0, 0.0, 0.0],
            OptimizerKind::Adadelta { rho, epsilon } => [lr, wd, rho, epsilon, 0.0, 0.0],
        }
    }

    /// The WGSL statements of the update for element `i`, reading `lr, wd, c0..c3`, the parameter `pv`, the gradient `g` and
    /// the state buffer `S` (slot k at `so + k * n`).
    pub fn wgsl_body(&self) -> String {
        let decay = if self.weight_decay.is_some() { "pv = pv - pv * wd * lr;\n" } else { "" };
        let body = match self.kind {
            OptimizerKind::Sgd { momentum, nesterov } if momentum != 0.0 => format!(
                "var m = {{S}}[so + i] * c0 - g * lr; {{S}}[so + i] = m; pv = pv + {};",
                if nesterov { "m * c0 - g * lr" } else { "m" }
            ),
            OptimizerKind::Sgd { .. } => "pv = pv - g * lr;".to_string(),
            OptimizerKind::Adam { .. } => {
                "var m = {S}[so + i]; var v = {S}[so + n + i]; m = m + (g - m) * c0; v = v + (g * g - v) * c1; \
                 {S}[so + i] = m; {S}[so + n + i] = v; pv = pv - m * c3 / (sqrt(v) + c2);"
                    .to_string()
            }
            OptimizerKind::RmsProp { centered, .. } => format!(
                "let v = c0 * {{S}}[so + i] + (1.0 - c0) * g * g; {{S}}[so + i] = v; var denom = v; {} \
                 let step = lr * g / sqrt(denom + c2); \
                 if (c1 > 0.0) {{ let b = c1 * {{S}}[so + n + i] + step; {{S}}[so + n + i] = b; pv = pv - b; }} else {{ pv = pv - step; }}",
                if centered {
                    "let mg = c0 * {S}[so + 2u * n + i] + (1.0 - c0) * g; {S}[so + 2u * n + i] = mg; denom = denom - mg * mg;"
                } else {
                    ""
                }
            ),
            OptimizerKind::Adagrad { .. } => {
                "let a = {S}[so + i] + g * g; {S}[so + i] = a; pv = pv - lr * g / sqrt(a + c0);".to_string()
            }
            OptimizerKind::Adadelta { .. } => "let eg = c0 * {S}[so + i] + (1.0 - c0) * g * g; {S}[so + i] = eg; \
                 let d = -sqrt({S}[so + n + i] + c1) * g / sqrt(eg + c1); \
                 {S}[so + n + i] = c0 * {S}[so + n + i] + (1.0 - c0) * d * d; pv = pv + lr * d;"
                .to_string(),
        };
        format!("{decay}{body}").replace("{S}", "{{S}}")
    }
}
