//! The CPU reference of the losses, their gradients and accuracy (Keras semantics), in f32 or f64.
//!
//! Every loss is a weighted mean over rows, `sum_i w_i l_i / sum_i w_i`, so padded rows of a partial
//! batch (weight 0) count for nothing. Probabilities are clipped to [1e-7, 1 - 1e-7] as Keras does.

use crate::cpu::real::Real;
use crate::ops::LossKind;

/// Keras' clipping epsilon for losses on probabilities.
pub const EPSILON: f32 = 1e-7;

fn clip<T: Real>(p: T) -> (T, bool) {
    let eps = T::of(EPSILON);
    let c = p.max(eps).min(T::one() - eps);
    (c, c == p)
}

fn lse<T: Real>(z: &[T]) -> T {
    let m = z.iter().copied().fold(T::neg_infinity(), T::max);
    m + z.iter().map(|&v| (v - m).exp()).sum::<T>().ln()
}

fn argmax<T: Real>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// A sparse label as a class index of `width` classes; `None` for anything else (negative,
/// fractional, too large), whose row then has a NaN loss and gradient, as TensorFlow's GPU kernels
/// give (an error cannot stop a step on the GPU; the NaN shows in the history).
fn class<T: Real>(t: T, width: usize) -> Option<usize> {
    (t.fract() == T::zero()).then(|| t.to_usize()).flatten().filter(|&c| c < width)
}

/// The loss of one row, and (when `grad` is given) its gradient with respect to the prediction.
fn row<T: Real>(kind: LossKind, p: &[T], t: &[T], grad: Option<&mut [T]>) -> T {
    let (zero, one, two) = (T::zero(), T::one(), T::of(2.0));
    let k = T::count(p.len());
    match kind {
        LossKind::SparseCategoricalLogits | LossKind::SparseCategoricalProbs if class(t[0], p.len()).is_none() => {
            if let Some(g) = grad {
                g.iter_mut().for_each(|v| *v = T::nan());
            }
            T::nan()
        }
        LossKind::SparseCategoricalLogits => {
            let y = class(t[0], p.len()).unwrap_or(0);
            let l = lse(p);
            if let Some(g) = grad {
                for (c, gc) in g.iter_mut().enumerate() {
                    *gc = (p[c] - l).exp() - if c == y { one } else { zero };
                }
            }
            l - p[y]
        }
        LossKind::SparseCategoricalProbs => {
            let y = class(t[0], p.len()).unwrap_or(0);
            let (c, inside) = clip(p[y]);
            if let Some(g) = grad {
                g.iter_mut().for_each(|v| *v = zero);
                if inside {
                    g[y] = -one / c;
                }
            }
            -c.ln()
        }
        LossKind::CategoricalLogits => {
            let l = lse(p);
            let total: T = t.iter().copied().sum();
            if let Some(g) = grad {
                for (c, gc) in g.iter_mut().enumerate() {
                    *gc = (p[c] - l).exp() * total - t[c];
                }
            }
            p.iter().zip(t).map(|(&z, &y)| -y * (z - l)).sum()
        }
        LossKind::CategoricalProbs => {
            // Keras renormalises the probabilities, clips, then takes -sum t log q.
            let s: T = p.iter().copied().sum();
            let q: Vec<(T, bool)> = p.iter().map(|&v| clip(v / s)).collect();
            if let Some(g) = grad {
                let gq: Vec<T> = q.iter().zip(t).map(|(&(c, inside), &y)| if inside { -y / c } else { zero }).collect();
                let dot: T = gq.iter().zip(&q).map(|(&a, &(c, _))| a * c).sum();
                for (j, gj) in g.iter_mut().enumerate() {
                    *gj = (gq[j] - dot) / s;
                }
            }
            q.iter().zip(t).map(|(&(c, _), &y)| -y * c.ln()).sum()
        }
        LossKind::BinaryLogits => {
            if let Some(g) = grad {
                for ((gc, &z), &y) in g.iter_mut().zip(p).zip(t) {
                    *gc = (crate::ops::sigmoid(z) - y) / k;
                }
            }
            p.iter().zip(t).map(|(&z, &y)| z.max(zero) - z * y + (-z.abs()).exp().ln_1p()).sum::<T>() / k
        }
        LossKind::BinaryProbs => {
            let mut l = zero;
            let mut gv = grad;
            for (c, (&v, &y)) in p.iter().zip(t).enumerate() {
                let (q, inside) = clip(v);
                l = l - (y * q.ln() + (one - y) * (one - q).ln());
                if let Some(g) = gv.as_deref_mut() {
                    g[c] = if inside { (-y / q + (one - y) / (one - q)) / k } else { zero };
                }
            }
            l / k
        }
        LossKind::MeanSquaredError => {
            if let Some(g) = grad {
                for ((gc, &v), &y) in g.iter_mut().zip(p).zip(t) {
                    *gc = two * (v - y) / k;
                }
            }
            p.iter().zip(t).map(|(&v, &y)| (v - y) * (v - y)).sum::<T>() / k
        }
        LossKind::MeanAbsoluteError => {
            if let Some(g) = grad {
                for ((gc, &v), &y) in g.iter_mut().zip(p).zip(t) {
                    *gc = if v > y {
                        one / k
                    } else if v < y {
                        -one / k
                    } else {
                        zero
                    };
                }
            }
            p.iter().zip(t).map(|(&v, &y)| (v - y).abs()).sum::<T>() / k
        }
    }
}

fn split<'a, T: Real>(
    kind: LossKind,
    pred: &'a [T],
    target: &'a [T],
    rows: usize,
) -> impl Iterator<Item = (&'a [T], &'a [T])> {
    let width = pred.len() / rows.max(1);
    let tw = if kind.sparse_targets() { 1 } else { width };
    pred.chunks(width.max(1)).zip(target.chunks(tw.max(1)))
}

fn total_weight<T: Real>(weight: &[T]) -> T {
    weight.iter().copied().sum::<T>().max(T::min_positive_value())
}

/// The weighted mean loss.
pub fn loss<T: Real>(kind: LossKind, pred: &[T], target: &[T], weight: &[T]) -> T {
    let sum: T = split(kind, pred, target, weight.len())
        .zip(weight)
        .map(|((p, t), &w)| if w == T::zero() { T::zero() } else { w * row(kind, p, t, None) })
        .sum();
    sum / total_weight(weight)
}

/// The gradient of the weighted mean loss with respect to the prediction.
pub fn loss_grad<T: Real>(kind: LossKind, pred: &[T], target: &[T], weight: &[T], grad: &mut [T]) {
    let total = total_weight(weight);
    let width = pred.len() / weight.len().max(1);
    for (i, ((p, t), &w)) in split(kind, pred, target, weight.len()).zip(weight).enumerate() {
        let g = &mut grad[i * width..(i + 1) * width];
        if w == T::zero() {
            g.iter_mut().for_each(|v| *v = T::zero());
            continue;
        }
        row(kind, p, t, Some(g));
        g.iter_mut().for_each(|v| *v = *v * (w / total));
    }
}

/// Whether one row is predicted right (a fraction for multi-output binary rows).
pub fn row_correct<T: Real>(kind: LossKind, p: &[T], t: &[T]) -> T {
    let (zero, one, half) = (T::zero(), T::one(), T::of(0.5));
    if kind.sparse_targets() {
        return if Some(argmax(p)) == class(t[0], p.len()) { one } else { zero };
    }
    if p.len() == 1 || matches!(kind, LossKind::BinaryLogits | LossKind::BinaryProbs) {
        let thr = if kind.on_logits() { zero } else { half };
        let hits = p.iter().zip(t).filter(|&(&v, &y)| (v > thr) == (y > half)).count();
        return T::count(hits) / T::count(p.len());
    }
    if argmax(p) == argmax(t) { one } else { zero }
}

/// The weighted accuracy.
pub fn accuracy<T: Real>(kind: LossKind, pred: &[T], target: &[T], weight: &[T]) -> T {
    let sum: T =
        split(kind, pred, target, weight.len()).zip(weight).map(|((p, t), &w)| w * row_correct(kind, p, t)).sum();
    sum / total_weight(weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f64) {
        assert!((a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }

    #[test]
    fn losses_equal_hand_computed_values() {
        // Two rows, three classes; the second row is padding (weight 0).
        let z = [1.0f32, 2.0, 0.5, 9.0, 9.0, 9.0];
        let w = [1.0f32, 0.0];
        let lse = (1f64.exp() + 2f64.exp() + 0.5f64.exp()).ln();
        close(loss(LossKind::SparseCategoricalLogits, &z, &[1.0, 0.0], &w), lse - 2.0);
        close(loss(LossKind::CategoricalLogits, &z, &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0], &w), lse - 0.5);
        let p = [0.2f32, 0.7, 0.1, 0.3, 0.3, 0.4];
        close(loss(LossKind::SparseCategoricalProbs, &p, &[1.0, 0.0], &w), -(0.7f64.ln()));
        // Keras renormalises: probabilities summing to 2 give the same loss as halved ones.
        let p2 = [0.4f32, 1.4, 0.2, 0.3, 0.3, 0.4];
        close(loss(LossKind::CategoricalProbs, &p2, &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0], &w), -(0.7f64.ln()));
        // Clipping at 1e-7.
        close(loss(LossKind::SparseCategoricalProbs, &[0.0, 1.0], &[0.0], &[1.0]), -(1e-7f64.ln()));
        let zb = [0.3f32, -1.2];
        let t = [1.0f32, 0.0];
        let bce = |z: f64, y: f64| z.max(0.0) - z * y + (1.0 + (-z.abs()).exp()).ln();
        close(loss(LossKind::BinaryLogits, &zb, &t, &[1.0]), (bce(0.3, 1.0) + bce(-1.2, 0.0)) / 2.0);
        let pb = [0.8f32, 0.4];
        close(loss(LossKind::BinaryProbs, &pb, &t, &[1.0]), -(0.8f64.ln() + 0.6f64.ln()) / 2.0);
        close(loss(LossKind::MeanSquaredError, &[1.0, 3.0], &[0.0, 1.0], &[1.0]), (1.0 + 4.0) / 2.0);
        close(loss(LossKind::MeanAbsoluteError, &[1.0, 3.0], &[0.0, 1.0], &[1.0]), (1.0 + 2.0) / 2.0);
        // Weighted mean over rows.
        close(loss(LossKind::MeanSquaredError, &[1.0, 2.0], &[0.0, 0.0], &[3.0, 1.0]), (3.0 * 1.0 + 4.0) / 4.0);
    }

    #[test]
    fn gradients_equal_hand_computed_values() {
        let z = [1.0f32, 2.0, 0.5];
        let mut g = [0.0f32; 3];
        loss_grad(LossKind::SparseCategoricalLogits, &z, &[1.0], &[1.0], &mut g);
        let s: f64 = z.iter().map(|&v| (v as f64).exp()).sum();
        for (c, &gc) in g.iter().enumerate() {
            close(gc, (z[c] as f64).exp() / s - (c == 1) as i32 as f64);
        }
        loss_grad(LossKind::MeanSquaredError, &[1.0, 3.0, 0.0], &[0.0, 1.0, 0.0], &[1.0], &mut g);
        close(g[0], 2.0 / 3.0);
        close(g[1], 4.0 / 3.0);
        let mut g2 = [0.0f32; 2];
        loss_grad(LossKind::BinaryLogits, &[0.0, 0.0], &[1.0, 0.0], &[1.0], &mut g2);
        close(g2[0], -0.25);
        close(g2[1], 0.25);
    }

    #[test]
    fn accuracy_follows_keras() {
        assert_eq!(accuracy(LossKind::SparseCategoricalLogits, &[0.1, 0.9, 0.8, 0.2], &[1.0, 1.0], &[1.0, 1.0]), 0.5);
        assert_eq!(
            accuracy(LossKind::CategoricalProbs, &[0.1, 0.9, 0.8, 0.2], &[0.0, 1.0, 1.0, 0.0], &[1.0, 1.0]),
            1.0
        );
        assert_eq!(accuracy(LossKind::BinaryLogits, &[0.3, -0.2], &[1.0, 1.0], &[1.0, 1.0]), 0.5);
        assert_eq!(accuracy(LossKind::BinaryProbs, &[0.6, 0.4], &[1.0, 0.0], &[1.0, 1.0]), 1.0);
    }
}
