//! Reshape: same data, a new shape whose 0s copy the input's dim (unless `allowzero`) and whose
//! one -1 is inferred. One shape rule for the run-time form and the constant fold.
//!
//! Opset history: 1 takes the shape as the `shape` attribute; from 5 it is an input, which the
//! importer needs as a constant or an initializer (shape sub-graphs fold to one); 13 widens the
//! types; 14 adds `allowzero`; 19, 21 and 23 widen the types.

use crate::context::{ImportCx, NodeCx};
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, InputSpec, OpDef, OpSpec};
use crate::tensor::{ConstTensor, numel};

/// Reshape.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Reshape",
    spec: OpSpec {
        inputs: &[InputSpec::value("data"), InputSpec::known("shape").since(5)],
        attrs: &[AttrSpec::required("shape").opsets(1, Some(4)), AttrSpec::int("allowzero", 0).opsets(14, None)],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: Some(fold),
}];

/// The target shape of an ONNX Reshape of `input` to `spec`.
pub fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> std::result::Result<Vec<usize>, String> {
    let total = numel(input)?;
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
            s => out.push(usize::try_from(s).map_err(|_| format!("shape {spec:?} has invalid dim {s}"))?),
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    } else if known != total {
        return Err(format!("cannot reshape {input:?} ({total} elements) to {spec:?}"));
    }
    Ok(out)
}

/// The node's target shape for an input of `shape`, the spec coming from the attribute (opsets
/// below 5) or from `shape_input`.
fn target(cx: &NodeCx<'_>, shape: &[usize], shape_input: Option<&ConstTensor>) -> Result<Vec<usize>> {
    let spec = if cx.opset < 5 {
        cx.ints_opt("shape")?.unwrap_or_default()
    } else {
        shape_input.ok_or_else(|| cx.err(format!("{} is missing", cx.input_label(1))))?.as_i64()
    };
    let allowzero = cx.declares("allowzero") && cx.int("allowzero")? == 1;
    reshape_target(shape, &spec, allowzero).map_err(|e| cx.err(e))
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let shape_input = if cx.opset < 5 { None } else { Some(cx.require_known(1)?) };
    let shape = target(cx, &s, shape_input.as_ref())?;
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
    use super::reshape_target;

    #[test]
    fn zeros_copy_and_minus_one_infers() {
        assert_eq!(reshape_target(&[4, 5, 5, 64], &[4, -1], false), Ok(vec![4, 1600]));
        assert_eq!(reshape_target(&[2, 3, 4], &[0, -1, 2], false), Ok(vec![2, 6, 2]));
        assert_eq!(reshape_target(&[0, 3], &[0, 3], true), Ok(vec![0, 3]));
        assert!(reshape_target(&[2, 3], &[-1, -1], false).is_err());
        assert!(reshape_target(&[2, 3], &[7], false).is_err());
        assert!(reshape_target(&[2, 3], &[-2, 3], false).is_err());
        assert!(reshape_target(&[2, 3], &[i64::MAX, i64::MAX, 1], false).is_err(), "an overflowing shape is an error");
    }
}
