//! ConvTranspose: the adjoint of a convolution (1, 2 or 3 spatial dims), the engine's
//! `ConvGradInput` with the input as the output gradient: weight `[C_in, C_out / group, k...]`,
//! output `stride * (in - 1) + output_padding + (k - 1) * dilation + 1 - pads`, or `output_shape`
//! (the pads then follow from it, and `auto_pad`). Its gradients are a convolution and the
//! convolution's weight gradient, so it trains. Optional bias per output channel.
//!
//! Opset history: 1, 11 (clarified `auto_pad` and `output_shape`), 22 (types).

use distk_engine::{BinaryOp, ConvAttrs, ConvGradInput, Op};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, InputSpec, OpDef, OpSpec};

/// ConvTranspose.
pub static OPS: &[OpDef] = &[OpDef {
    op_type: "ConvTranspose",
    spec: OpSpec {
        inputs: &[InputSpec::value("X"), InputSpec::value("W"), InputSpec::value("B").optional()],
        attrs: &[
            AttrSpec::new("auto_pad", AttrDefault::Str("NOTSET")),
            AttrSpec::absent("dilations"),
            AttrSpec::int("group", 1),
            AttrSpec::absent("kernel_shape"),
            AttrSpec::absent("output_padding"),
            AttrSpec::absent("output_shape"),
            AttrSpec::absent("pads"),
            AttrSpec::absent("strides"),
        ],
        ..OpSpec::DEFAULT
    },
    import: Some(import),
    fold: None,
}];

/// A per-spatial-dim list attribute of non-negative values, or `default` for each dim.
fn dims(cx: &ImportCx<'_, '_>, name: &str, nd: usize, default: usize) -> Result<Vec<usize>> {
    match cx.ints_opt(name)? {
        None => Ok(vec![default; nd]),
        Some(v) => {
            let v: Vec<usize> = v
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("`{name}` has a negative entry {d}"))))
                .collect::<Result<_>>()?;
            if v.len() != nd {
                return Err(cx.err(format!("`{name}` has {} entries for {nd} spatial dims", v.len())));
            }
            Ok(v)
        }
    }
}

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let (s, ws) = (cx.shape(0)?, cx.shape(1)?);
    if !(3..=5).contains(&s.len()) || ws.len() != s.len() {
        return Err(cx.err(format!("input {s:?} and weight {ws:?}: 1, 2 or 3 spatial dims are supported")));
    }
    let nd = s.len() - 2;
    let group = usize::try_from(cx.int("group")?).ok().filter(|&g| g >= 1 && s[1] % g == 0 && ws[0] == s[1]);
    let group = group.ok_or_else(|| cx.err(format!("group does not fit input channels {} and weight {ws:?}", s[1])))?;
    let kernel = match cx.ints_opt("kernel_shape")? {
        Some(_) => dims(cx, "kernel_shape", nd, 1)?,
        None => ws[2..].to_vec(),
    };
    let strides = dims(cx, "strides", nd, 1)?;
    let dilations = dims(cx, "dilations", nd, 1)?;
    let output_padding = dims(cx, "output_padding", nd, 0)?;
    if strides.contains(&0) || dilations.contains(&0) {
        return Err(cx.err("strides and dilations must be positive"));
    }
    // The full (unpadded) output length per dim.
    let mut full: Vec<usize> =
        (0..nd).map(|i| strides[i] * (s[i + 2] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1).collect();
    let auto = cx.string("auto_pad")?;
    let explicit_shape = cx.ints_opt("output_shape")?;
    let (pads_begin, pads_end) = if explicit_shape.is_some() || auto == "SAME_UPPER" || auto == "SAME_LOWER" {
        let out: Vec<usize> = match explicit_shape {
            Some(o) => {
                let o = &o[o.len().saturating_sub(nd)..];
                o.iter()
                    .map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("output_shape entry {d}"))))
                    .collect::<Result<_>>()?
            }
            None => (0..nd).map(|i| s[i + 2] * strides[i]).collect(),
        };
        let mut b = Vec::new();
        let mut e = Vec::new();
        for i in 0..nd {
            if out[i] > full[i] {
                // Longer than the full output: the extra positions at the end (less than a stride)
                // receive nothing, as output_padding does.
                if out[i] - full[i] >= strides[i] {
                    return Err(cx.err(format!(
                        "output_shape {} exceeds the transposed convolution's {} by a stride or more",
                        out[i], full[i]
                    )));
                }
                full[i] = out[i];
                b.push(0);
                e.push(0);
                continue;
            }
            let total = full[i] - out[i];
            if auto == "SAME_UPPER" {
                b.push(total / 2);
                e.push(total - total / 2);
            } else {
                b.push(total - total / 2);
                e.push(total / 2);
            }
        }
        (b, e)
    } else {
        match cx.ints_opt("pads")? {
            Some(p) if p.len() == 2 * nd => {
                let p: Vec<usize> = p
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| cx.err(format!("negative pad {d}"))))
                    .collect::<Result<_>>()?;
                (p[..nd].to_vec(), p[nd..].to_vec())
            }
            Some(p) => return Err(cx.err(format!("{} pads for {nd} spatial dims", p.len()))),
            None => (vec![0; nd], vec![0; nd]),
        }
    };
    let mut out_shape = vec![s[0], ws[1] * group];
    for i in 0..nd {
        let o = full[i].checked_sub(pads_begin[i] + pads_end[i]).filter(|&o| o > 0);
        out_shape.push(o.ok_or_else(|| cx.err("the pads leave an empty output"))?);
    }
    let attrs = ConvAttrs { kernel, strides, dilations, pads_begin, pads_end, group };
    let (x, w) = (cx.value(0)?, cx.value(1)?);
    let mut y = cx.emit(Op::ConvGradInput(ConvGradInput { attrs, input_shape: out_shape.clone() }), &[x, w])?;
    if cx.has_input(2) {
        let b = cx.value(2)?;
        let mut per_channel = vec![1; out_shape.len()];
        per_channel[1] = out_shape[1];
        let b = cx.reshape(b, per_channel)?;
        y = cx.emit(Op::Binary(BinaryOp::Add), &[y, b])?;
    }
    cx.set(y)
}
