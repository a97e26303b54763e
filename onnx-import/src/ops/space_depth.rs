//! DepthToSpace and SpaceToDepth: blocks of channels moved into space and back, as a reshape, a
//! transpose and a reshape.
//!
//! Opset history: both 1; DepthToSpace 11 adds `mode` (DCR, the default, or CRD), SpaceToDepth 28;
//! 13 widens the types.

use distk_engine::{Op, Transpose};

use crate::context::ImportCx;
use crate::error::Result;
use crate::ops::spec::{AttrDefault, AttrSpec, OpDef, OpSpec};

/// DepthToSpace, SpaceToDepth.
pub static OPS: &[OpDef] = &[
    OpDef {
        op_type: "DepthToSpace",
        spec: OpSpec {
            attrs: &[AttrSpec::required("blocksize"), AttrSpec::new("mode", AttrDefault::Str("DCR")).opsets(11, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
    OpDef {
        op_type: "SpaceToDepth",
        spec: OpSpec {
            attrs: &[AttrSpec::required("blocksize"), AttrSpec::new("mode", AttrDefault::Str("DCR")).opsets(28, None)],
            ..OpSpec::DEFAULT
        },
        import: Some(import),
        fold: None,
    },
];

fn import(cx: &mut ImportCx<'_, '_>) -> Result<()> {
    let s = cx.shape(0)?;
    let b = usize::try_from(cx.int("blocksize")?)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| cx.err("blocksize must be positive"))?;
    let [n, c, h, w] = s[..] else {
        return Err(cx.err(format!("input {s:?} is not [N, C, H, W]")));
    };
    let x = cx.value(0)?;
    let (lifted, perm, out) = if cx.def.op_type == "DepthToSpace" {
        if c % (b * b) != 0 {
            return Err(cx.err(format!("{c} channels are not a multiple of blocksize^2 = {}", b * b)));
        }
        let crd = cx.declares("mode") && cx.string("mode")? == "CRD";
        if crd {
            (vec![n, c / (b * b), b, b, h, w], vec![0, 1, 4, 2, 5, 3], vec![n, c / (b * b), h * b, w * b])
        } else {
            (vec![n, b, b, c / (b * b), h, w], vec![0, 3, 4, 1, 5, 2], vec![n, c / (b * b), h * b, w * b])
        }
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(cx.err(format!("spatial dims {h}x{w} are not multiples of blocksize {b}")));
        }
        let crd = cx.declares("mode") && cx.string("mode")? == "CRD";
        let perm = if crd { vec![0, 1, 3, 5, 2, 4] } else { vec![0, 3, 5, 1, 2, 4] };
        (vec![n, c, h / b, b, w / b, b], perm, vec![n, c * b * b, h / b, w / b])
    };
    let x = cx.reshape(x, lifted)?;
    let y = cx.emit(Op::Transpose(Transpose { perm }), &[x])?;
    let y = cx.reshape(y, out)?;
    cx.set(y)
}
