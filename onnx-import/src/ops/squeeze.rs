//! Squeeze (drop the listed 1-dims, or all of them) and Unsqueeze (insert 1-dims at the listed
//! axes of the output). One shape rule for the run-time form (a reshape) and the constant fold.
//!
//! Opset history: 1 and 11 (negative axes) take `axes` as an attribute (required for Unsqueeze);
//! from 13 it is an input (optional for Squeeze), needed as a constant or an initializer; 21 and
//! 23 widen the types.

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::fold::norm_axis;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::ConstTensor;

/// Squeeze and Unsqueeze.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "Squeeze",
        spec: OpSpec {
            inputs: &[InputSpec::value("data"), InputSpec::known("axes").optional().since(13)],
            attrs: &[AttrSpec::absent("axes").opsets(1, Some(12))],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: Some(fold),
    },
    OpDef {
        op_type: "Unsqueeze",
        spec: OpSpec {
            inputs: &[InputSpec::value("data"), InputSpec::known("axes").since(13)],
            attrs: &[AttrSpec::required("axes").opsets(1, Some(12))],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: Some(fold),
    },
];

/// The shape the node gives an input of shape `s`, `axes_input` being input 1 where given.
fn target(cx: &NodeCx<'_>, s: &[usize], axes_input: Option<&ConstTensor>) -> Result<Vec<usize>> {
    let axes = if cx.opset < 13 { cx.ints_opt("axes")? } else { axes_input.map(ConstTensor::as_i64) };
    let unsqueeze = cx.def.op_type == "Unsqueeze";
    squeeze_shape(s, axes.as_deref(), unsqueeze).map_err(|e| cx.err(e))
}

/// The shape after Squeeze (drop `axes`, or every 1-dim) or Unsqueeze (insert 1-dims at `axes`).
fn squeeze_shape(s: &[usize], axes: Option<&[i64]>, unsqueeze: bool) -> std::result::Result<Vec<usize>, String> {
    let normalise = |axes: &[i64], rank: usize| -> std::result::Result<Vec<usize>, String> {
        let mut ax: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<std::result::Result<_, _>>()?;
        ax.sort_unstable();
        if ax.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("axes {axes:?} repeat"));
        }
        Ok(ax)
    };
    if unsqueeze {
        let axes = axes.ok_or("Unsqueeze needs axes")?;
        let rank = s.len() + axes.len();
        let ax = normalise(axes, rank)?;
        let mut dims = s.iter();
        return (0..rank)
            .map(|i| if ax.contains(&i) { Ok(1) } else { dims.next().copied().ok_or_else(|| "axes repeat".into()) })
            .collect();
    }
    match axes {
        Some(axes) if !axes.is_empty() => {
            let ax = normalise(axes, s.len())?;
            if let Some(&bad) = ax.iter().find(|&&a| s[a] != 1) {
                return Err(format!("cannot squeeze axis {bad} of size {}", s[bad]));
            }
            Ok(s.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect())
        }
        _ => Ok(s.iter().copied().filter(|&d| d != 1).collect()),
    }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let axes = if cx.opset < 13 { None } else { cx.known(1)? };
    let shape = target(cx, &s, axes.as_ref())?;
    let x = cx.value(0)?;
    let y = cx.reshape(x, shape)?;
    cx.set(y)
}

fn fold(cx: &NodeCx<'_>, c: &Consts) -> Result<ConstTensor> {
    let x = cx.arg(c, 0)?;
    Ok(ConstTensor { shape: target(cx, &x.shape, c.opt(1))?, ..x.clone() })
}

#[cfg(test)]
mod tests {
    use super::squeeze_shape;

    #[test]
    fn squeeze_and_unsqueeze_shapes() {
        assert_eq!(squeeze_shape(&[3, 4], Some(&[-1, 0]), true), Ok(vec![1, 3, 4, 1]));
        assert_eq!(squeeze_shape(&[1, 3, 1], Some(&[0]), false), Ok(vec![3, 1]));
        assert_eq!(squeeze_shape(&[1, 3, 1], None, false), Ok(vec![3]));
        assert!(squeeze_shape(&[1, 3], Some(&[1]), false).is_err());
        assert!(squeeze_shape(&[3], Some(&[0, 0]), true).is_err());
        assert!(squeeze_shape(&[], Some(&[0]), false).is_err(), "a scalar has no axis to squeeze");
    }
}
