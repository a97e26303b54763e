//! Shape arithmetic shared by the executors: element counts, contiguous strides and numpy broadcasting.

/// Number of elements of a shape (1 for a scalar).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C order) strides of a shape, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    strides
}

/// The numpy broadcast of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank { a[i + a.len() - rank] } else { 1 };
        let db = if i + b.len() >= rank { b[i + b.len() - rank] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides (in elements) with which an operand of shape `operand` is read when broadcast to `out`:
/// 0 along broadcast dimensions, contiguous strides elsewhere. `out` must be a broadcast of `operand`.
pub fn broadcast_strides(operand: &[usize], out: &[usize]) -> Vec<usize> {
    let own = contiguous_strides(operand);
    let lead = out.len() - operand.len();
    (0..out.len()).map(|i| if i < lead || operand[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// Merges adjacent dimensions that are contiguous in every stride set, to cut index arithmetic.
/// Returns the merged dims and, for each stride set, its merged strides. Keeps at least one dim.
pub fn coalesce_dims(dims: &[usize], strides: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_dims: Vec<usize> = Vec::new();
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        if !out_dims.is_empty() {
            let mergeable = strides.iter().zip(out_strides.iter()).all(|(s, os)| os.last().copied() == Some(s[i] * d));
            if mergeable {
                let n = out_dims.len() - 1;
                out_dims[n] *= d;
                for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
                    let m = os.len() - 1;
                    os[m] = s[i];
                }
                continue;
            }
        }
        out_dims.push(d);
        for (s, os) in strides.iter().zip(out_strides.iter_mut()) {
            os.push(s[i]);
        }
    }
    if out_dims.is_empty() {
        out_dims.push(1);
        for os in out_strides.iter_mut() {
            os.push(0);
        }
    }
    (out_dims, out_strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast_shapes(&[4, 1, 3], &[5, 1]), Some(vec![4, 5, 3]));
        assert_eq!(broadcast_shapes(&[2, 3], &[4]), None);
        assert_eq!(broadcast_strides(&[5, 1], &[4, 5, 3]), vec![0, 1, 0]);
    }

    #[test]
    fn coalescing_merges_contiguous_runs() {
        let (d, s) = coalesce_dims(&[2, 3, 4], &[vec![12, 4, 1], vec![0, 0, 1]]);
        assert_eq!(d, vec![6, 4]);
        assert_eq!(s, vec![vec![4, 1], vec![0, 1]]);
        let (d, s) = coalesce_dims(&[2, 3, 4], &[vec![12, 4, 1], vec![12, 4, 1]]);
        assert_eq!(d, vec![24]);
        assert_eq!(s, vec![vec![1], vec![1]]);
    }
}
