//! Classification and regression metrics from predictions: the confusion matrix, per-class
//! precision, recall and F1 (as scikit-learn's `classification_report`, 0 where a class is never
//! predicted or never present), their macro and support-weighted means; mean squared and mean
//! absolute error.

use serde::Serialize;

/// One class's scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    /// The class index.
    pub class: usize,
    /// Of the rows predicted as this class, the share that are.
    pub precision: f64,
    /// Of the rows of this class, the share predicted as it.
    pub recall: f64,
    /// The harmonic mean of precision and recall.
    pub f1: f64,
    /// Rows of this class.
    pub support: u64,
}

/// A classification report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClassificationReport {
    /// `confusion_matrix[true][predicted]`: row counts.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// Per-class scores.
    pub per_class: Vec<ClassScores>,
    /// Rows predicted right over all rows.
    pub accuracy: f64,
    /// The unweighted mean of the per-class F1.
    pub macro_f1: f64,
    /// The mean of the per-class F1 weighted by support.
    pub weighted_f1: f64,
}

/// The report for `truth` and `predicted` class indices (both below `classes`).
pub fn classification(truth: &[usize], predicted: &[usize], classes: usize) -> ClassificationReport {
    let mut m = vec![vec![0u64; classes]; classes];
    for (&t, &p) in truth.iter().zip(predicted) {
        if t < classes && p < classes {
            m[t][p] += 1;
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class: Vec<ClassScores> = (0..classes)
        .map(|c| {
            let tp = m[c][c];
            let predicted_c: u64 = (0..classes).map(|t| m[t][c]).sum();
            let support: u64 = m[c].iter().sum();
            let (precision, recall) = (ratio(tp, predicted_c), ratio(tp, support));
            let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
            ClassScores { class: c, precision, recall, f1, support }
        })
        .collect();
    let total: u64 = per_class.iter().map(|s| s.support).sum();
    let correct: u64 = (0..classes).map(|c| m[c][c]).sum();
    let macro_f1 = if classes == 0 { 0.0 } else { per_class.iter().map(|s| s.f1).sum::<f64>() / classes as f64 };
    let weighted_f1 =
        if total == 0 { 0.0 } else { per_class.iter().map(|s| s.f1 * s.support as f64).sum::<f64>() / total as f64 };
    ClassificationReport { confusion_matrix: m, per_class, accuracy: ratio(correct, total), macro_f1, weighted_f1 }
}

/// Mean squared and mean absolute error over every value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RegressionReport {
    /// Mean of the squared differences.
    pub mse: f64,
    /// Mean of the absolute differences.
    pub mae: f64,
}

/// The errors of `predicted` against `targets` (equal lengths).
pub fn regression(predicted: &[f32], targets: &[f32]) -> RegressionReport {
    let n = predicted.len().min(targets.len()).max(1) as f64;
    let (mut se, mut ae) = (0.0f64, 0.0f64);
    for (&p, &t) in predicted.iter().zip(targets) {
        let d = p as f64 - t as f64;
        se += d * d;
        ae += d.abs();
    }
    RegressionReport { mse: se / n, mae: ae / n }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_computed_by_hand() {
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        let r = classification(&[0, 0, 0, 1, 1, 2], &[0, 0, 1, 1, 2, 2], 3);
        assert_eq!(r.confusion_matrix, vec![vec![2, 1, 0], vec![0, 1, 1], vec![0, 0, 1]]);
        let p: Vec<f64> = r.per_class.iter().map(|s| s.precision).collect();
        let rc: Vec<f64> = r.per_class.iter().map(|s| s.recall).collect();
        assert_eq!(p, vec![1.0, 0.5, 0.5]);
        assert_eq!(rc, vec![2.0 / 3.0, 0.5, 1.0]);
        let f1 = [0.8, 0.5, 2.0 / 3.0];
        for (s, want) in r.per_class.iter().zip(f1) {
            assert!((s.f1 - want).abs() < 1e-12, "{} vs {want}", s.f1);
        }
        assert!((r.accuracy - 4.0 / 6.0).abs() < 1e-12);
        assert!((r.macro_f1 - (0.8 + 0.5 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        assert!((r.weighted_f1 - (0.8 * 3.0 + 0.5 * 2.0 + 2.0 / 3.0) / 6.0).abs() < 1e-12);
        // A class never predicted and never present scores 0, not NaN.
        let r = classification(&[0, 0], &[0, 0], 2);
        assert_eq!((r.per_class[1].precision, r.per_class[1].f1), (0.0, 0.0));
        let e = regression(&[1.0, 2.0, 4.0], &[1.0, 3.0, 2.0]);
        assert_eq!((e.mse, e.mae), (5.0 / 3.0, 1.0));
    }
}
