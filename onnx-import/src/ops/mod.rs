//! The registry: every ONNX op the importer supports, each listed once. An op (or a tight family
//! of ops) lives in its own file with its spec, its import and its constant fold; adding one is
//! that file plus one line in [`REGISTRY`]. [`supported_ops`] and the coverage check read this list.

pub mod spec;

mod activation;
mod activation_composite;
mod arg_max;
mod attention;
mod batch_normalization;
mod binary;
mod cast;
mod center_crop_pad;
mod clip;
mod compare;
mod concat;
mod constant;
mod constant_of_shape;
mod control_flow;
mod conv;
mod conv_transpose;
mod dropout;
mod expand;
mod flatten;
mod gather;
mod gather_elements;
mod gather_nd;
mod gelu;
mod gemm;
mod global_average_pool;
mod hard_swish;
mod identity;
mod layer_normalization;
mod logic;
mod loss;
mod lrn;
mod matmul;
mod min_max;
mod normalization;
mod one_hot;
mod pad;
mod pool;
mod range;
mod reciprocal;
mod recurrent;
mod reduce;
mod remainder;
mod reshape;
mod resize;
mod rotary_embedding;
mod shape;
mod size;
mod slice;
mod softmax;
mod space_depth;
mod split;
mod squeeze;
mod sum_mean;
mod tile;
mod top_k;
mod transpose;
mod where_op;
mod window;

use spec::OpDef;

/// Every supported op, by file (a family file defines several).
pub static REGISTRY: &[&[OpDef]] = &[
    activation::OPS,
    activation_composite::OPS,
    arg_max::OPS,
    attention::OPS,
    batch_normalization::OPS,
    binary::OPS,
    cast::OPS,
    center_crop_pad::OPS,
    clip::OPS,
    compare::OPS,
    concat::OPS,
    constant::OPS,
    constant_of_shape::OPS,
    conv::OPS,
    control_flow::OPS,
    conv_transpose::OPS,
    dropout::OPS,
    expand::OPS,
    flatten::OPS,
    gather::OPS,
    gather_elements::OPS,
    gather_nd::OPS,
    gelu::OPS,
    gemm::OPS,
    global_average_pool::OPS,
    hard_swish::OPS,
    identity::OPS,
    layer_normalization::OPS,
    logic::OPS,
    loss::OPS,
    lrn::OPS,
    matmul::OPS,
    min_max::OPS,
    normalization::OPS,
    one_hot::OPS,
    pad::OPS,
    pool::OPS,
    range::OPS,
    reciprocal::OPS,
    recurrent::OPS,
    reduce::OPS,
    remainder::OPS,
    reshape::OPS,
    resize::OPS,
    rotary_embedding::OPS,
    shape::OPS,
    size::OPS,
    slice::OPS,
    softmax::OPS,
    space_depth::OPS,
    split::OPS,
    squeeze::OPS,
    sum_mean::OPS,
    tile::OPS,
    top_k::OPS,
    transpose::OPS,
    where_op::OPS,
];

/// Every registered op definition.
pub fn all() -> impl Iterator<Item = &'static OpDef> {
    REGISTRY.iter().flat_map(|file| file.iter())
}

/// The definition of a default-domain op type.
pub fn lookup(op_type: &str) -> Option<&'static OpDef> {
    all().find(|d| d.op_type == op_type)
}

/// The op types the importer converts (default domain), in registry order.
pub fn supported_ops() -> Vec<&'static str> {
    all().map(|d| d.op_type).collect()
}

#[cfg(test)]
mod tests {
    use super::spec::OutputRule;
    use super::*;

    #[test]
    fn every_op_is_registered_once_with_a_coherent_spec() {
        let names = supported_ops();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} is registered twice");
        }
        for d in all() {
            let s = &d.spec;
            assert!(d.import.is_some() || d.fold.is_some(), "{}: neither an import nor a fold", d.op_type);
            assert!(s.until.is_none_or(|u| u >= s.since), "{}: empty opset range", d.op_type);
            if let Some(v) = s.inputs.iter().position(|i| i.presence.repeats()) {
                assert_eq!(v + 1, s.inputs.len(), "{}: a variadic input must come last", d.op_type);
            }
            assert!(s.outputs.first().is_some_and(|o| o.produced), "{}: the first output must be produced", d.op_type);
            if d.import.is_none() {
                assert_eq!(s.output, OutputRule::Computed, "{}: a constant-only op computes its output", d.op_type);
            }
        }
    }
}
