//! Helpers the ops' constant folds share: axis normalisation, strides and broadcasting over
//! [`ConstTensor`]s. Shape sub-graphs (Shape -> Gather -> Concat -> Reshape and the like) are
//! evaluated with them on the host once the batch size is bound; each op's fold is in its file.

use crate::tensor::{ConstTensor, created_numel};

/// Normalises a possibly negative axis against `rank`: `axis` in `[-rank, rank)`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    norm_axis_in(axis, rank, rank)
}

/// Normalises an axis that may also be `rank` itself (a split point, as Flatten's): `[-rank, rank]`.
pub fn norm_split_axis(axis: i64, rank: usize) -> Result<usize, String> {
    norm_axis_in(axis, rank, rank + 1)
}

fn norm_axis_in(axis: i64, rank: usize, bound: usize) -> Result<usize, String> {
    let r = i64::try_from(rank).map_err(|_| format!("rank {rank} is too large"))?;
    let a = if axis < 0 { axis.checked_add(r) } else { Some(axis) };
    match a.and_then(|a| usize::try_from(a).ok()) {
        Some(a) if a < bound => Ok(a),
        _ => Err(format!("axis {axis} out of range for rank {rank}")),
    }
}

/// Row-major strides of `shape`, in elements.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    distk_engine::shape::contiguous_strides(shape)
}

/// `f` over `a` and `b` with numpy broadcasting; the result is float when either input is.
pub fn broadcast(
    a: &ConstTensor,
    b: &ConstTensor,
    is_float: bool,
    f: impl Fn(f64, f64) -> f64,
) -> Result<ConstTensor, String> {
    let shape = distk_engine::shape::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    let n = created_numel(&shape)?;
    if a.data.len() != crate::tensor::numel(&a.shape)? || b.data.len() != crate::tensor::numel(&b.shape)? {
        return Err("a constant's data does not match its shape".into());
    }
    let sa = distk_engine::shape::broadcast_strides(&a.shape, &shape);
    let sb = distk_engine::shape::broadcast_strides(&b.shape, &shape);
    let mut data = Vec::with_capacity(n);
    distk_engine::cpu::kernels::for_each_index(&shape, [&sa, &sb], |[i, j]| {
        data.push(f(a.data.get(i).copied().unwrap_or(f64::NAN), b.data.get(j).copied().unwrap_or(f64::NAN)));
    });
    Ok(ConstTensor { shape, data, is_float })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_normalise_the_onnx_way() {
        assert_eq!(norm_axis(-1, 3), Ok(2));
        assert_eq!(norm_axis(2, 3), Ok(2));
        assert!(norm_axis(3, 3).is_err() && norm_axis(-4, 3).is_err());
        assert!(norm_axis(0, 0).is_err(), "a scalar has no axis 0");
        assert!(norm_axis(i64::MIN, 3).is_err() && norm_axis(i64::MAX, 3).is_err());
        assert_eq!(norm_split_axis(3, 3), Ok(3));
        assert_eq!(norm_split_axis(-3, 3), Ok(0));
        assert_eq!(norm_split_axis(0, 0), Ok(0));
        assert!(norm_split_axis(4, 3).is_err() && norm_split_axis(-4, 3).is_err());
    }

    #[test]
    fn broadcasting_follows_numpy() {
        let a = ConstTensor { shape: vec![2, 1], data: vec![1.0, 2.0], is_float: false };
        let b = ConstTensor::ints(&[10, 20, 30]);
        let c = broadcast(&a, &b, false, |x, y| x + y).unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.as_i64(), vec![11, 21, 31, 12, 22, 32]);
        assert!(broadcast(&ConstTensor::ints(&[1, 2]), &b, false, |x, _| x).is_err());
    }
}
