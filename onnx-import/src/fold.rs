//! Constant folding of the shape sub-graphs exporters emit (Shape -> Gather -> Concat -> Reshape and
//! the like): evaluated on the host once the batch size is bound.

use crate::tensor::ConstTensor;

/// Normalises a possibly negative axis against `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a < 0 || a as usize >= rank.max(1) {
        return Err(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(a as usize)
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Elementwise binary arithmetic with numpy broadcasting.
pub fn binary(op: &str, a: &ConstTensor, b: &ConstTensor) -> Result<ConstTensor, String> {
    let shape = distk_engine::shape::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape))?;
    let sa = distk_engine::shape::broadcast_strides(&a.shape, &shape);
    let sb = distk_engine::shape::broadcast_strides(&b.shape, &shape);
    let is_float = a.is_float || b.is_float;
    let mut data = Vec::with_capacity(shape.iter().product());
    distk_engine::cpu::kernels::for_each_index(&shape, [&sa, &sb], |[i, j]| {
        let (x, y) = (a.data[i], b.data[j]);
        data.push(match op {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            "Div" if is_float => x / y,
            "Div" => {
                if y == 0.0 {
                    0.0
                } else {
                    (x / y).trunc()
                }
            }
            "Pow" => x.powf(y),
            "Min" => x.min(y),
            "Max" => x.max(y),
            "Equal" => (x == y) as i64 as f64,
            _ => f64::NAN,
        });
    });
    Ok(ConstTensor { shape, data, is_float: is_float && op != "Equal" })
}

/// ONNX Gather along `axis` with integer indices.
pub fn gather(x: &ConstTensor, idx: &ConstTensor, axis: usize) -> Result<ConstTensor, String> {
    let dim = *x.shape.get(axis).ok_or("gather axis out of range")?;
    let outer: usize = x.shape[..axis].iter().product();
    let inner: usize = x.shape[axis + 1..].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for &i in &idx.data {
            let i = if i < 0.0 { i + dim as f64 } else { i };
            if i < 0.0 || i as usize >= dim {
                return Err(format!("gather index {i} out of range for dim {dim}"));
            }
            let base = (o * dim + i as usize) * inner;
            data.extend_from_slice(&x.data[base..base + inner]);
        }
    }
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&x.shape[axis + 1..]);
    Ok(ConstTensor { shape, data, is_float: x.is_float })
}

/// ONNX Slice (start, end, step per listed axis; ends clamp).
pub fn slice(
    x: &ConstTensor,
    starts: &[i64],
    ends: &[i64],
    axes: &[usize],
    steps: &[i64],
) -> Result<ConstTensor, String> {
    let rank = x.shape.len();
    let mut ranges: Vec<(i64, i64, i64)> = x.shape.iter().map(|&d| (0, d as i64, 1)).collect();
    for (k, &ax) in axes.iter().enumerate() {
        let d = x.shape[ax] as i64;
        let step = *steps.get(k).unwrap_or(&1);
        if step == 0 {
            return Err("slice step 0".into());
        }
        let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
        let norm = |v: i64| if v < 0 { v + d } else { v };
        let (s, e) = if step > 0 {
            (clamp(norm(starts[k]), 0, d), clamp(norm(ends[k]), 0, d))
        } else {
            (clamp(norm(starts[k]), -1, d - 1), clamp(norm(ends[k]), -1, d - 1))
        };
        ranges[ax] = (s, e, step);
    }
    let counts: Vec<usize> = ranges
        .iter()
        .map(|&(s, e, st)| {
            if st > 0 {
                ((e - s).max(0) as usize).div_ceil(st as usize)
            } else {
                ((s - e).max(0) as usize).div_ceil((-st) as usize)
            }
        })
        .collect();
    let src = strides(&x.shape);
    let total: usize = counts.iter().product();
    let mut data = Vec::with_capacity(total);
    for flat in 0..total {
        let mut rem = flat;
        let mut off = 0i64;
        for d in (0..rank).rev() {
            let c = (rem % counts[d]) as i64;
            rem /= counts[d];
            off += (ranges[d].0 + c * ranges[d].2) * src[d] as i64;
        }
        data.push(x.data[off as usize]);
    }
    Ok(ConstTensor { shape: counts, data, is_float: x.is_float })
}

/// Concatenation along `axis`.
pub fn concat(parts: &[ConstTensor], axis: usize) -> Result<ConstTensor, String> {
    let first = parts.first().ok_or("concat of nothing")?;
    let outer: usize = first.shape[..axis].iter().product();
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape.get(axis).copied().unwrap_or(0)).sum();
    let mut data = Vec::new();
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.shape[axis..].iter().product();
            data.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(ConstTensor { shape, data, is_float: parts.iter().any(|p| p.is_float) })
}

/// Transpose by `perm`.
pub fn transpose(x: &ConstTensor, perm: &[usize]) -> ConstTensor {
    let src = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let st: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
    let mut data = Vec::with_capacity(x.data.len());
    distk_engine::cpu::kernels::for_each_index(&shape, [&st], |[i]| data.push(x.data[i]));
    ConstTensor { shape, data, is_float: x.is_float }
}

/// The target shape of an ONNX Reshape: 0 copies the input dim (unless `allowzero`), -1 is inferred.
pub fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>, String> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 => {
                if infer.replace(i).is_some() {
                    return Err(format!("shape {spec:?} has more than one -1"));
                }
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| format!("shape {spec:?}: 0 at {i} has no input dim to copy"))?)
            }
            s if s >= 0 => out.push(s as usize),
            s => return Err(format!("shape {spec:?} has invalid dim {s}")),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(format!("cannot reshape {input:?} ({total} elements) to {spec:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_flatten_chain_folds() {
        // Shape [4, 64, 5, 5] -> gather [0,2,3,1] -> slice [0:1] -> concat with [-1].
        let shape = ConstTensor::ints(&[4, 64, 5, 5]);
        let g = gather(&shape, &ConstTensor::ints(&[0, 2, 3, 1]), 0).unwrap();
        assert_eq!(g.as_i64(), vec![4, 5, 5, 64]);
        let s = slice(&g, &[0], &[1], &[0], &[1]).unwrap();
        let c = concat(&[s, ConstTensor::ints(&[-1])], 0).unwrap();
        assert_eq!(c.as_i64(), vec![4, -1]);
        assert_eq!(reshape_target(&[4, 5, 5, 64], &c.as_i64(), false).unwrap(), vec![4, 1600]);
    }

    #[test]
    fn slice_clamps_and_steps_backwards() {
        let x = ConstTensor::ints(&[0, 1, 2, 3, 4]);
        assert_eq!(slice(&x, &[1], &[i64::MAX], &[0], &[1]).unwrap().as_i64(), vec![1, 2, 3, 4]);
        assert_eq!(slice(&x, &[-1], &[i64::MIN], &[0], &[-2]).unwrap().as_i64(), vec![4, 2, 0]);
    }

    #[test]
    fn integer_division_truncates() {
        let d = binary("Div", &ConstTensor::ints(&[7, -7]), &ConstTensor::ints(&[2])).unwrap();
        assert_eq!(d.as_i64(), vec![3, -3]);
    }
}
