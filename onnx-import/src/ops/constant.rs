//! Constant: a tensor given as an attribute. Constant form only (it has no inputs).
//!
//! Opset history: 1 and 9 have `value`; 11 adds `sparse_value` (not supported); 12 adds
//! `value_float(s)` and `value_int(s)` (supported; `value_string(s)` are not); 13 and later widen
//! the types.

use crate::context::NodeCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, Consts, OpDef, OpSpec};
use crate::tensor::ConstTensor;

/// Constant.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Constant",
    spec: OpSpec {
        inputs: &[],
        attrs: &[
            AttrSpec::absent("value"),
            AttrSpec::absent("sparse_value").opsets(11, None),
            AttrSpec::absent("value_float").opsets(12, None),
            AttrSpec::absent("value_floats").opsets(12, None),
            AttrSpec::absent("value_int").opsets(12, None),
            AttrSpec::absent("value_ints").opsets(12, None),
        ],
        ..OpSpec::DEFAULT
    },
    import: None,
    fold: Some(fold),
}];

fn fold(cx: &NodeCx<'_>, _: &Consts) -> Result<ConstTensor> {
    if let Some(t) = cx.tensor("value")? {
        return ConstTensor::from_proto(t).map_err(|e| cx.err(e));
    }
    if cx.opset >= 12 {
        if cx.has("value_float")? {
            return Ok(ConstTensor::scalar(f64::from(cx.float("value_float")?), true));
        }
        if cx.has("value_int")? {
            return Ok(ConstTensor::scalar(cx.int("value_int")? as f64, false));
        }
        if let Some(v) = cx.ints_opt("value_ints")? {
            return Ok(ConstTensor::ints(&v));
        }
        if let Some(v) = cx.floats_opt("value_floats")? {
            let data: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
            return Ok(ConstTensor { shape: vec![data.len()], data, is_float: true });
        }
    }
    Err(cx.err("only the `value`, `value_float(s)` and `value_int(s)` forms of Constant are supported"))
}
