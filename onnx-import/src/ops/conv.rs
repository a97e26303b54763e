//! Conv: N-d convolution (1, 2 or 3 spatial dims), layout N, C, spatial. With
//! `--add-missing-biases`, a Conv without B gets a trainable zero bias.
//!
//! Opset history: 1 and 11 (which clarified `auto_pad`) and 22 (types) share one form. An absent
//! `kernel_shape` is read off the weight.

use distk_engine::{ConvAttrs, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrSpec, InputSpec, OpDef, OpSpec};
use crate::ops::window::{WINDOW_ATTRS, Window, kernel_attr, window};

/// Conv.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "Conv",
    spec: OpSpec {
        inputs: &[InputSpec::value("X"), InputSpec::value("W"), InputSpec::value("B").optional()],
        attrs: &[
            WINDOW_ATTRS[0],
            WINDOW_ATTRS[1],
            WINDOW_ATTRS[2],
            AttrSpec::absent("dilations"),
            AttrSpec::absent("kernel_shape"),
            AttrSpec::int("group", 1),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let (s, ws) = (cx.shape(0)?, cx.shape(1)?);
    if !(3..=5).contains(&s.len()) || ws.len() != s.len() {
        return Err(cx.err(format!("input {s:?} and weight {ws:?}: 1, 2 or 3 spatial dims are supported")));
    }
    let kernel = match kernel_attr(cx, s.len() - 2)? {
        Some(k) => k,
        None => ws[2..].to_vec(),
    };
    let Window { kernel, strides, dilations, pads_begin, pads_end } = window(cx, &s[2..], kernel)?;
    let group =
        usize::try_from(cx.int("group")?).ok().filter(|&g| g >= 1).ok_or_else(|| cx.err("group must be >= 1"))?;
    let mut ins = vec![cx.value(0)?, cx.value(1)?];
    if cx.has_input(2) {
        ins.push(cx.value(2)?);
    } else if let Some(b) = cx.added_bias(ws[0])? {
        ins.push(b);
    }
    cx.emit_out(Op::Conv(ConvAttrs { kernel, strides, dilations, pads_begin, pads_end, group }), &ins)
}
