//! Conversion of ONNX nodes into the engine's IR, with the batch size bound: shape sub-graphs fold
//! to constants, legacy attribute forms are normalised, and every output shape is inferred.

use std::collections::HashMap;

use distk_engine::{BinaryOp, ConvAttrs, GraphBuilder, Op, PoolAttrs, PoolKind, ReduceOp, UnaryOp, ValueId};
use tract_onnx::pb;

use crate::attrs::Attrs;
use crate::error::{ImportError, Result, UnsupportedOp};
use crate::fold::{self, norm_axis};
use crate::model::OnnxModel;
use crate::tensor::ConstTensor;

/// Op types the importer converts (default domain).
pub const SUPPORTED_OPS: &[&str] = &[
    "MatMul",
    "Gemm",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Relu",
    "LeakyRelu",
    "Elu",
    "Selu",
    "Sigmoid",
    "HardSigmoid",
    "Tanh",
    "Softplus",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Clip",
    "Softmax",
    "LogSoftmax",
    "Conv",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "BatchNormalization",
    "Dropout",
    "Flatten",
    "Reshape",
    "Transpose",
    "Identity",
    "Concat",
    "ReduceMean",
    "ReduceSum",
    "Squeeze",
    "Unsqueeze",
    "Shape",
    "Size",
    "Gather",
    "Slice",
    "Cast",
    "Range",
    "ConstantOfShape",
    "Constant",
    "Min",
    "Max",
    "Equal",
    "ReduceProd",
    "Reciprocal",
    "Sum",
    "Mean",
];

/// A model imported for one batch size.
#[derive(Clone, Debug)]
pub struct ImportedGraph {
    /// The engine graph.
    pub graph: distk_engine::Graph,
    /// ONNX names of the graph inputs, in order.
    pub input_names: Vec<String>,
    /// ONNX names of the graph outputs, in order.
    pub output_names: Vec<String>,
}

/// Lists every unsupported op of the model (empty when all are supported).
pub fn unsupported_ops(model: &OnnxModel) -> Vec<UnsupportedOp> {
    let mut found: Vec<UnsupportedOp> = Vec::new();
    for n in &model.graph().node {
        let default_domain = n.domain.is_empty() || n.domain == "ai.onnx";
        if default_domain && SUPPORTED_OPS.contains(&n.op_type.as_str()) {
            continue;
        }
        let name = if default_domain { n.op_type.clone() } else { format!("{}:{}", n.domain, n.op_type) };
        let node_name = if n.name.is_empty() { n.output.first().cloned().unwrap_or_default() } else { n.name.clone() };
        match found.iter_mut().find(|u| u.op_type == name) {
            Some(u) => {
                u.count += 1;
                if u.nodes.len() < 5 {
                    u.nodes.push(node_name);
                }
            }
            None => found.push(UnsupportedOp { op_type: name, count: 1, nodes: vec![node_name] }),
        }
    }
    found
}

/// Window attributes of Conv and pooling with `auto_pad` resolved to explicit pads.
struct Window {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads_begin: Vec<usize>,
    pads_end: Vec<usize>,
}

/// A Slice's starts, ends, axes and steps, one of each per sliced axis.
struct SliceParams {
    starts: Vec<i64>,
    ends: Vec<i64>,
    axes: Vec<usize>,
    steps: Vec<i64>,
}

#[derive(Clone)]
enum Val {
    Const(ConstTensor),
    Init(usize),
    Dyn(ValueId),
}

struct Importer<'a> {
    /// Outputs of the nodes that get an added zero bias.
    missing_bias: Vec<String>,
    model: &'a OnnxModel,
    b: GraphBuilder,
    env: HashMap<String, Val>,
    materialized: HashMap<String, ValueId>,
    node: &'a pb::NodeProto,
}

/// Choices made at import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Give every MatMul, Gemm and Conv without a bias a trainable zero bias (named by
    /// [`crate::inspect::added_bias_name`]); [`crate::export::add_biases`] writes them into the file.
    pub add_missing_biases: bool,
}

/// Imports `model` with its batch dims bound to `batch`.
pub fn import(model: &OnnxModel, batch: usize) -> Result<ImportedGraph> {
    import_with(model, batch, &ImportOptions::default())
}

/// [`import`] with options.
pub fn import_with(model: &OnnxModel, batch: usize, options: &ImportOptions) -> Result<ImportedGraph> {
    let unsupported = unsupported_ops(model);
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }
    let g = model.graph();
    let placeholder = pb::NodeProto::default();
    let missing: Vec<String> = if options.add_missing_biases {
        crate::inspect::missing_biases(model).iter().filter_map(|n| n.output.first().cloned()).collect()
    } else {
        Vec::new()
    };
    let mut imp = Importer {
        missing_bias: missing,
        model,
        b: GraphBuilder::new(),
        env: HashMap::new(),
        materialized: HashMap::new(),
        node: &placeholder,
    };
    for (i, t) in g.initializer.iter().enumerate() {
        let v = if t.data_type == crate::tensor::elem::FLOAT {
            Val::Init(i)
        } else {
            Val::Const(ConstTensor::from_proto(t).map_err(ImportError::Model)?)
        };
        imp.env.insert(t.name.clone(), v);
    }
    let inputs = model.inputs()?;
    for s in &inputs {
        let id = imp.b.input(&s.name, s.bind(batch));
        imp.env.insert(s.name.clone(), Val::Dyn(id));
    }
    for node in &g.node {
        imp.node = node;
        imp.convert()?;
    }
    let outputs = model.outputs()?;
    for o in &outputs {
        let id = imp.dynamic(&o.name).map_err(|e| match e {
            ImportError::Node { reason, .. } => ImportError::Model(format!("graph output `{}`: {reason}", o.name)),
            e => e,
        })?;
        imp.b.output(id);
    }
    Ok(ImportedGraph {
        graph: imp.b.finish(),
        input_names: inputs.into_iter().map(|s| s.name).collect(),
        output_names: outputs.into_iter().map(|s| s.name).collect(),
    })
}

impl<'a> Importer<'a> {
    fn err(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Node { node: self.node.name.clone(), op_type: self.node.op_type.clone(), reason: reason.into() }
    }

    fn attrs(&self) -> Attrs<'a> {
        Attrs(self.node)
    }

    fn name(&self) -> String {
        if self.node.name.is_empty() {
            self.node.output.first().cloned().unwrap_or_default()
        } else {
            self.node.name.clone()
        }
    }

    fn input_name(&self, i: usize) -> Option<&str> {
        self.node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn val(&self, name: &str) -> Result<&Val> {
        self.env
            .get(name)
            .ok_or_else(|| self.err(format!("input `{name}` is produced by no node, initializer or graph input")))
    }

    fn init(&self, i: usize) -> Result<ConstTensor> {
        ConstTensor::from_proto(&self.model.graph().initializer[i]).map_err(|e| self.err(e))
    }

    /// The constant value of input `i`, or `None` when it is computed at run time or absent.
    fn konst(&self, i: usize) -> Result<Option<ConstTensor>> {
        let Some(name) = self.input_name(i) else { return Ok(None) };
        Ok(match self.val(name)? {
            Val::Const(c) => Some(c.clone()),
            Val::Init(k) => Some(self.init(*k)?),
            Val::Dyn(_) => None,
        })
    }

    fn require_const(&self, i: usize, what: &str) -> Result<ConstTensor> {
        self.konst(i)?
            .ok_or_else(|| self.err(format!("{what} (input {i}) must be a constant; it is computed at run time")))
    }

    fn shape_of(&self, name: &str) -> Result<Vec<usize>> {
        Ok(match self.val(name)? {
            Val::Const(c) => c.shape.clone(),
            Val::Init(k) => self.model.graph().initializer[*k].dims.iter().map(|&d| d as usize).collect(),
            Val::Dyn(id) => self.b.shape(*id).to_vec(),
        })
    }

    fn input_shape(&self, i: usize) -> Result<Vec<usize>> {
        let name = self.input_name(i).ok_or_else(|| self.err(format!("input {i} is missing")))?;
        self.shape_of(name)
    }

    /// The engine value of a tensor: initializers become parameters, constants become constants.
    fn dynamic(&mut self, name: &str) -> Result<ValueId> {
        if let Some(&id) = self.materialized.get(name) {
            return Ok(id);
        }
        let id = match self.val(name)?.clone() {
            Val::Dyn(id) => return Ok(id),
            Val::Const(c) => self.b.constant(name, c.shape.clone(), c.as_f32())?,
            Val::Init(k) => {
                let c = self.init(k)?;
                self.b.param(name, c.shape.clone(), c.as_f32(), true)?
            }
        };
        self.materialized.insert(name.to_string(), id);
        Ok(id)
    }

    /// Like [`Importer::dynamic`], but an initializer becomes a non-trainable parameter (state).
    fn state(&mut self, name: &str) -> Result<ValueId> {
        if let Some(&id) = self.materialized.get(name) {
            return Ok(id);
        }
        match self.val(name)?.clone() {
            Val::Init(k) => {
                let c = self.init(k)?;
                let id = self.b.param(name, c.shape.clone(), c.as_f32(), false)?;
                self.materialized.insert(name.to_string(), id);
                Ok(id)
            }
            _ => self.dynamic(name),
        }
    }

    fn input(&mut self, i: usize) -> Result<ValueId> {
        let name = self.input_name(i).ok_or_else(|| self.err(format!("input {i} is missing")))?.to_string();
        self.dynamic(&name)
    }

    fn set(&mut self, v: Val) -> Result<()> {
        let out = self.node.output.first().ok_or_else(|| self.err("node has no output"))?.clone();
        self.env.insert(out, v);
        Ok(())
    }

    fn emit(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId> {
        let name = self.name();
        Ok(self.b.node(&name, op, inputs)?)
    }

    fn emit_out(&mut self, op: Op, inputs: &[ValueId]) -> Result<()> {
        let id = self.emit(op, inputs)?;
        self.set(Val::Dyn(id))
    }

    fn reshape(&mut self, x: ValueId, shape: Vec<usize>) -> Result<ValueId> {
        if self.b.shape(x) == shape.as_slice() {
            return Ok(x);
        }
        self.emit(Op::Reshape { shape }, &[x])
    }

    fn all_const(&self) -> Result<Option<Vec<ConstTensor>>> {
        let mut out = Vec::new();
        for i in 0..self.node.input.len() {
            if self.input_name(i).is_none() {
                continue;
            }
            // Float initializers are parameters, never folded away.
            match self.val(self.input_name(i).unwrap_or_default())? {
                Val::Const(c) => out.push(c.clone()),
                Val::Init(_) | Val::Dyn(_) => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// Axes from the attribute (older opsets) or from input `i` (newer ones).
    fn axes(&self, input: usize) -> Result<Option<Vec<i64>>> {
        if let Some(a) = self.attrs().ints("axes") {
            return Ok(Some(a));
        }
        Ok(self.konst(input)?.map(|c| c.as_i64()))
    }

    fn convert(&mut self) -> Result<()> {
        let op = self.node.op_type.clone();
        // Fold nodes whose inputs are all constants (not trainable initializers).
        if let Some(consts) = self.all_const()?
            && let Some(v) = self.fold(&op, &consts)?
        {
            return self.set(Val::Const(v));
        }
        let a = self.attrs();
        match op.as_str() {
            "Dropout" => {
                if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(self.err("the mask output of Dropout is not supported"));
                }
                // The ratio: an attribute below opset 12, an optional constant input from 12 on.
                let rate = match self.konst(1)? {
                    Some(c) => c.data.first().copied().unwrap_or(0.5) as f32,
                    None => a.float_or("ratio", 0.5),
                };
                let x = self.input(0)?;
                self.emit_out(Op::Dropout { rate }, &[x])
            }
            "Identity" => {
                if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(self.err("the mask output of Dropout is not supported"));
                }
                let name = self.input_name(0).ok_or_else(|| self.err("input 0 is missing"))?;
                let v = self.val(name)?.clone();
                self.set(v)
            }
            "Constant" => {
                let c = if let Some(t) = a.tensor("value") {
                    ConstTensor::from_proto(t).map_err(|e| self.err(e))?
                } else if a.has("value_float") {
                    ConstTensor { shape: vec![], data: vec![f64::from(a.float_or("value_float", 0.0))], is_float: true }
                } else if let Some(v) = a.floats("value_floats") {
                    ConstTensor {
                        shape: vec![v.len()],
                        data: v.iter().map(|&x| f64::from(x)).collect(),
                        is_float: true,
                    }
                } else if let Some(v) = a.int("value_int") {
                    ConstTensor { shape: vec![], data: vec![v as f64], is_float: false }
                } else if let Some(v) = a.ints("value_ints") {
                    ConstTensor::ints(&v)
                } else {
                    return Err(self
                        .err("only the `value`, `value_float(s)` and `value_int(s)` forms of Constant are supported"));
                };
                self.set(Val::Const(c))
            }
            "Shape" => {
                let s = self.input_shape(0)?;
                let r = s.len() as i64;
                let norm = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
                let start = norm(a.int_or("start", 0));
                let end = norm(a.int_or("end", r));
                let dims: Vec<i64> = s[start..end.max(start)].iter().map(|&d| d as i64).collect();
                self.set(Val::Const(ConstTensor::ints(&dims)))
            }
            "Size" => {
                let n: usize = self.input_shape(0)?.iter().product();
                self.set(Val::Const(ConstTensor { shape: vec![], data: vec![n as f64], is_float: false }))
            }
            "Cast" => {
                let to = a.int_or("to", 1);
                if to != i64::from(crate::tensor::elem::FLOAT) {
                    return Err(self.err(format!(
                        "casting a run-time tensor to element type {to} is not supported (only float32)"
                    )));
                }
                let x = self.input(0)?;
                self.set(Val::Dyn(x))
            }
            "MatMul" => self.matmul(),
            "Gemm" => self.gemm(),
            "Add" | "Sub" | "Mul" | "Div" | "Pow" => self.binary(&op),
            "Relu" | "LeakyRelu" | "Elu" | "Selu" | "Sigmoid" | "HardSigmoid" | "Tanh" | "Softplus" | "Exp" | "Log"
            | "Sqrt" | "Neg" | "Abs" | "Clip" => self.unary(&op),
            "Softmax" | "LogSoftmax" => self.softmax(op == "LogSoftmax"),
            "Conv" => self.conv(),
            "MaxPool" | "AveragePool" => self.pool(op == "MaxPool"),
            "GlobalAveragePool" => {
                let s = self.input_shape(0)?;
                if s.len() < 3 {
                    return Err(self.err(format!("input {s:?} has no spatial dims")));
                }
                let x = self.input(0)?;
                self.emit_out(Op::Reduce { op: ReduceOp::Mean, axes: (2..s.len()).collect(), keepdims: true }, &[x])
            }
            "BatchNormalization" => self.batch_norm(),
            "Flatten" => {
                let s = self.input_shape(0)?;
                let axis = if a.int_or("axis", 1) == s.len() as i64 {
                    s.len()
                } else {
                    norm_axis(a.int_or("axis", 1), s.len()).map_err(|e| self.err(e))?
                };
                let x = self.input(0)?;
                let shape = vec![s[..axis].iter().product(), s[axis..].iter().product()];
                let y = self.reshape(x, shape)?;
                self.set(Val::Dyn(y))
            }
            "Reshape" => {
                let s = self.input_shape(0)?;
                let spec = match a.ints("shape") {
                    Some(v) if self.model.opset < 5 => v,
                    _ => self.require_const(1, "the target shape")?.as_i64(),
                };
                let target = fold::reshape_target(&s, &spec, a.int_or("allowzero", 0) == 1).map_err(|e| self.err(e))?;
                let x = self.input(0)?;
                let y = self.reshape(x, target)?;
                self.set(Val::Dyn(y))
            }
            "Squeeze" | "Unsqueeze" => {
                let s = self.input_shape(0)?;
                let axes = self.axes(1)?;
                let target = squeeze_shape(&s, axes.as_deref(), op == "Unsqueeze").map_err(|e| self.err(e))?;
                let x = self.input(0)?;
                let y = self.reshape(x, target)?;
                self.set(Val::Dyn(y))
            }
            "Transpose" => {
                let s = self.input_shape(0)?;
                let perm: Vec<usize> = match a.ints("perm") {
                    Some(p) => p
                        .iter()
                        .map(|&x| norm_axis(x, s.len()))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|e| self.err(e))?,
                    None => (0..s.len()).rev().collect(),
                };
                let x = self.input(0)?;
                self.emit_out(Op::Transpose { perm }, &[x])
            }
            "Concat" => {
                let s = self.input_shape(0)?;
                let axis = norm_axis(a.int_or("axis", 0), s.len()).map_err(|e| self.err(e))?;
                let mut ins = Vec::new();
                for i in 0..self.node.input.len() {
                    if self.input_name(i).is_some() && self.input_shape(i)?.iter().product::<usize>() > 0 {
                        ins.push(self.input(i)?);
                    }
                }
                self.emit_out(Op::Concat { axis }, &ins)
            }
            "Slice" => self.slice(),
            "Reciprocal" => {
                let x = self.input(0)?;
                let one = self.b.constant(&format!("{}/one", self.name()), vec![], vec![1.0])?;
                self.emit_out(Op::Binary(BinaryOp::Div), &[one, x])
            }
            "Sum" | "Mean" => {
                let sum = self.variadic(BinaryOp::Add)?;
                let n = self.node.input.iter().filter(|i| !i.is_empty()).count();
                if op == "Sum" || n == 1 {
                    return self.set(Val::Dyn(sum));
                }
                let k = self.b.constant(&format!("{}/count", self.name()), vec![], vec![n as f32])?;
                self.emit_out(Op::Binary(BinaryOp::Div), &[sum, k])
            }
            "Min" | "Max" => {
                let y = self.variadic(if op == "Min" { BinaryOp::Min } else { BinaryOp::Max })?;
                self.set(Val::Dyn(y))
            }
            "ReduceMean" | "ReduceSum" => {
                let s = self.input_shape(0)?;
                let axes = self.axes(1)?;
                let axes: Vec<usize> = match axes {
                    Some(v) if !v.is_empty() => {
                        let mut ax: Vec<usize> = v
                            .iter()
                            .map(|&x| norm_axis(x, s.len()))
                            .collect::<std::result::Result<_, _>>()
                            .map_err(|e| self.err(e))?;
                        ax.sort_unstable();
                        ax.dedup();
                        ax
                    }
                    _ if a.int_or("noop_with_empty_axes", 0) == 1 => {
                        let x = self.input(0)?;
                        return self.set(Val::Dyn(x));
                    }
                    _ => (0..s.len()).collect(),
                };
                let x = self.input(0)?;
                let op = if op == "ReduceMean" { ReduceOp::Mean } else { ReduceOp::Sum };
                self.emit_out(Op::Reduce { op, axes, keepdims: a.int_or("keepdims", 1) == 1 }, &[x])
            }
            other => Err(self.err(format!(
                "{other} on run-time tensors is not supported (it is supported only in constant shape computations)"
            ))),
        }
    }

    fn fold(&self, op: &str, c: &[ConstTensor]) -> Result<Option<ConstTensor>> {
        let a = self.attrs();
        let e = |r: String| self.err(r);
        let first = || c.first().cloned().ok_or_else(|| self.err("input 0 is missing"));
        Ok(Some(match op {
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Min" | "Max" | "Equal" if c.len() == 2 => {
                fold::binary(op, &c[0], &c[1]).map_err(e)?
            }
            "Neg" => {
                let mut x = first()?;
                x.data.iter_mut().for_each(|v| *v = -*v);
                x
            }
            "Identity" => first()?,
            "Cast" => {
                let mut x = first()?;
                let to = a.int_or("to", 1) as i32;
                x.is_float = matches!(to, 1 | 10 | 11 | 16);
                if !x.is_float {
                    x.data.iter_mut().for_each(|v| *v = v.trunc());
                }
                x
            }
            "Gather" => {
                let x = first()?;
                let axis = norm_axis(a.int_or("axis", 0), x.shape.len()).map_err(e)?;
                fold::gather(&x, c.get(1).ok_or_else(|| self.err("indices missing"))?, axis).map_err(|r| self.err(r))?
            }
            "Slice" => {
                let x = first()?;
                let p = self.slice_params(x.shape.len())?;
                fold::slice(&x, &p.starts, &p.ends, &p.axes, &p.steps).map_err(|r| self.err(r))?
            }
            "Concat" => {
                let r = c.first().map_or(1, |t| t.shape.len());
                let axis = norm_axis(a.int_or("axis", 0), r).map_err(e)?;
                fold::concat(c, axis).map_err(|r| self.err(r))?
            }
            "Unsqueeze" | "Squeeze" => {
                let x = first()?;
                let axes = match a.ints("axes") {
                    Some(v) => Some(v),
                    None => c.get(1).map(|t| t.as_i64()),
                };
                let shape = squeeze_shape(&x.shape, axes.as_deref(), op == "Unsqueeze").map_err(e)?;
                ConstTensor { shape, ..x }
            }
            "Reshape" => {
                let x = first()?;
                let spec = match a.ints("shape") {
                    Some(v) if self.model.opset < 5 => v,
                    _ => c.get(1).ok_or_else(|| self.err("shape missing"))?.as_i64(),
                };
                let shape = fold::reshape_target(&x.shape, &spec, a.int_or("allowzero", 0) == 1).map_err(e)?;
                ConstTensor { shape, ..x }
            }
            "Flatten" => {
                let x = first()?;
                let axis = a.int_or("axis", 1).clamp(0, x.shape.len() as i64) as usize;
                let shape = vec![x.shape[..axis].iter().product(), x.shape[axis..].iter().product()];
                ConstTensor { shape, ..x }
            }
            "Transpose" => {
                let x = first()?;
                let perm: Vec<usize> = match a.ints("perm") {
                    Some(p) => p
                        .iter()
                        .map(|&v| norm_axis(v, x.shape.len()))
                        .collect::<std::result::Result<_, _>>()
                        .map_err(e)?,
                    None => (0..x.shape.len()).rev().collect(),
                };
                fold::transpose(&x, &perm)
            }
            "Range" if c.len() == 3 => {
                let (s, l, d) = (c[0].data[0], c[1].data[0], c[2].data[0]);
                if d == 0.0 {
                    return Err(self.err("Range with delta 0"));
                }
                let n = ((l - s) / d).ceil().max(0.0) as usize;
                ConstTensor {
                    shape: vec![n],
                    data: (0..n).map(|i| s + i as f64 * d).collect(),
                    is_float: c[0].is_float,
                }
            }
            "ConstantOfShape" => {
                let shape: Vec<usize> = first()?.as_i64().iter().map(|&d| d.max(0) as usize).collect();
                let (value, is_float) = match a.tensor("value") {
                    Some(t) => {
                        let v = ConstTensor::from_proto(t).map_err(e)?;
                        (v.data.first().copied().unwrap_or(0.0), v.is_float)
                    }
                    None => (0.0, true),
                };
                ConstTensor { data: vec![value; shape.iter().product()], shape, is_float }
            }
            "ReduceProd" => {
                let x = first()?;
                ConstTensor { shape: vec![], data: vec![x.data.iter().product()], is_float: x.is_float }
            }
            _ => return Ok(None),
        }))
    }

    /// Starts, ends, axes and steps of a Slice (attributes below opset 10, constant inputs from 10 on),
    /// one of each per sliced axis.
    fn slice_params(&self, rank: usize) -> Result<SliceParams> {
        let a = self.attrs();
        let (starts, ends, axes, steps) = if self.model.opset < 10 {
            (a.ints("starts").unwrap_or_default(), a.ints("ends").unwrap_or_default(), a.ints("axes"), None)
        } else {
            let get = |i: usize, what: &str| -> Result<Option<Vec<i64>>> {
                if self.input_name(i).is_none() {
                    return Ok(None);
                }
                Ok(Some(self.require_const(i, what)?.as_i64()))
            };
            (
                get(1, "starts")?.unwrap_or_default(),
                get(2, "ends")?.unwrap_or_default(),
                get(3, "axes")?,
                get(4, "steps")?,
            )
        };
        let axes: Vec<usize> = match axes {
            Some(v) => {
                v.iter().map(|&x| norm_axis(x, rank)).collect::<std::result::Result<_, _>>().map_err(|e| self.err(e))?
            }
            None => (0..starts.len()).collect(),
        };
        let steps = steps.unwrap_or_else(|| vec![1; axes.len()]);
        if starts.len() != axes.len() || ends.len() != axes.len() || steps.len() != axes.len() {
            return Err(self
                .err(format!("starts {starts:?}, ends {ends:?}, axes {axes:?} and steps {steps:?} differ in length")));
        }
        Ok(SliceParams { starts, ends, axes, steps })
    }

    /// Slice of a run-time tensor: one engine slice per axis (step 1 only).
    fn slice(&mut self) -> Result<()> {
        let s = self.input_shape(0)?;
        let SliceParams { starts, ends, axes, steps } = self.slice_params(s.len())?;
        let mut x = self.input(0)?;
        for k in 0..axes.len() {
            let (axis, d) = (axes[k], s[axes[k]] as i64);
            if steps[k] != 1 {
                return Err(self.err(format!("step {} on a run-time tensor is not supported (only 1)", steps[k])));
            }
            let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v }.clamp(0, d);
            let (begin, end) = (norm(starts[k]), norm(ends[k]));
            if end <= begin {
                return Err(self.err(format!("the slice {}..{} of axis {axis} is empty", starts[k], ends[k])));
            }
            if (begin, end) != (0, d) {
                let op = Op::Slice { axis, start: begin as usize, len: (end - begin) as usize };
                x = self.emit(op, &[x])?;
            }
        }
        self.set(Val::Dyn(x))
    }

    /// The zero bias of `len` values `--add-missing-biases` gives this node, when it gets one.
    fn added_bias(&mut self, len: usize) -> Result<Option<ValueId>> {
        let Some(out) = self.node.output.first() else { return Ok(None) };
        if !self.missing_bias.contains(out) {
            return Ok(None);
        }
        let name = crate::inspect::added_bias_name(out);
        if let Some(&id) = self.materialized.get(&name) {
            return Ok(Some(id));
        }
        let id = self.b.param(&name, vec![len], vec![0.0; len], true)?;
        self.materialized.insert(name, id);
        Ok(Some(id))
    }

    fn matmul(&mut self) -> Result<()> {
        let (sa, sb) = (self.input_shape(0)?, self.input_shape(1)?);
        let (mut a, mut b) = (self.input(0)?, self.input(1)?);
        if sa.len() == 1 {
            a = self.reshape(a, vec![1, sa[0]])?;
        }
        if sb.len() == 1 {
            b = self.reshape(b, vec![sb[0], 1])?;
        }
        // The engine broadcasts an operand's batch dims only when they are all ones; broadcast the
        // others ([3, 1] x [1, 2]) explicitly.
        let (ra, rb) = (self.b.shape(a).to_vec(), self.b.shape(b).to_vec());
        let (ba, bb) = (&ra[..ra.len() - 2], &rb[..rb.len() - 2]);
        if let Some(batch) = distk_engine::shape::broadcast_shapes(ba, bb) {
            let n: usize = batch.iter().product();
            for (v, own, mat) in [(&mut a, ba, &ra[ra.len() - 2..]), (&mut b, bb, &rb[rb.len() - 2..])] {
                let m: usize = own.iter().product();
                if m != n && m != 1 {
                    let shape = [batch.as_slice(), mat].concat();
                    *v = self.emit(Op::Broadcast { shape }, &[*v])?;
                }
            }
        }
        let mut y = self.emit(Op::MatMul { trans_a: false, trans_b: false, alpha: 1.0 }, &[a, b])?;
        if sa.len() == 1 || sb.len() == 1 {
            let mut s = self.b.shape(y).to_vec();
            if sb.len() == 1 {
                s.pop();
            }
            if sa.len() == 1 {
                s.remove(s.len() - if sb.len() == 1 { 1 } else { 2 });
            }
            y = self.reshape(y, s)?;
        }
        let n = *self.b.shape(y).last().unwrap_or(&1);
        if let Some(b) = self.added_bias(n)? {
            y = self.emit(Op::Binary(BinaryOp::Add), &[y, b])?;
        }
        self.set(Val::Dyn(y))
    }

    fn gemm(&mut self) -> Result<()> {
        let a = self.attrs();
        let (alpha, beta) = (a.float_or("alpha", 1.0), a.float_or("beta", 1.0));
        let (ta, tb) = (a.int_or("transA", 0) == 1, a.int_or("transB", 0) == 1);
        let (x, w) = (self.input(0)?, self.input(1)?);
        let mut y = self.emit(Op::MatMul { trans_a: ta, trans_b: tb, alpha }, &[x, w])?;
        if self.input_name(2).is_some() && beta != 0.0 {
            let mut c = self.input(2)?;
            if beta != 1.0 {
                let name = format!("{}/beta", self.name());
                let k = self.b.constant(&name, vec![], vec![beta])?;
                c = self.emit(Op::Binary(BinaryOp::Mul), &[c, k])?;
            }
            y = self.emit(Op::Binary(BinaryOp::Add), &[y, c])?;
        } else if self.input_name(2).is_none() {
            let n = *self.b.shape(y).last().unwrap_or(&1);
            if let Some(b) = self.added_bias(n)? {
                y = self.emit(Op::Binary(BinaryOp::Add), &[y, b])?;
            }
        }
        self.set(Val::Dyn(y))
    }

    fn binary(&mut self, op: &str) -> Result<()> {
        let bop = match op {
            "Add" => BinaryOp::Add,
            "Sub" => BinaryOp::Sub,
            "Mul" => BinaryOp::Mul,
            "Div" => BinaryOp::Div,
            _ => BinaryOp::Pow,
        };
        let sa = self.input_shape(0)?;
        let sb = self.input_shape(1)?;
        let (x, mut y) = (self.input(0)?, self.input(1)?);
        // Opsets below 7: `broadcast=1` with `axis` aligns B's dims starting at `axis` of A.
        if self.model.opset < 7
            && self.attrs().int_or("broadcast", 0) == 1
            && let Some(axis) = self.attrs().int("axis")
        {
            {
                let axis = norm_axis(axis, sa.len()).map_err(|e| self.err(e))?;
                let mut shape = sb.clone();
                shape.resize(sa.len() - axis, 1);
                y = self.reshape(y, shape)?;
            }
        }
        self.emit_out(Op::Binary(bop), &[x, y])
    }

    fn unary(&mut self, op: &str) -> Result<()> {
        let a = self.attrs();
        let u = match op {
            "Relu" => UnaryOp::Relu,
            "LeakyRelu" => UnaryOp::LeakyRelu { alpha: a.float_or("alpha", 0.01) },
            "Elu" => UnaryOp::Elu { alpha: a.float_or("alpha", 1.0) },
            "Selu" => UnaryOp::Selu { alpha: a.float_or("alpha", 1.673_263_2), gamma: a.float_or("gamma", 1.050_701) },
            "Sigmoid" => UnaryOp::Sigmoid,
            "HardSigmoid" => UnaryOp::HardSigmoid { alpha: a.float_or("alpha", 0.2), beta: a.float_or("beta", 0.5) },
            "Tanh" => UnaryOp::Tanh,
            "Softplus" => UnaryOp::Softplus,
            "Exp" => UnaryOp::Exp,
            "Log" => UnaryOp::Log,
            "Sqrt" => UnaryOp::Sqrt,
            "Neg" => UnaryOp::Neg,
            "Abs" => UnaryOp::Abs,
            _ => {
                let (min, max) = if self.model.opset < 11 {
                    (a.float_or("min", f32::NEG_INFINITY), a.float_or("max", f32::INFINITY))
                } else {
                    let lo = self.konst(1)?;
                    let hi = self.konst(2)?;
                    if (self.input_name(1).is_some() && lo.is_none()) || (self.input_name(2).is_some() && hi.is_none())
                    {
                        return self.clip_dynamic();
                    }
                    (
                        lo.and_then(|t| t.data.first().copied()).map_or(f32::NEG_INFINITY, |v| v as f32),
                        hi.and_then(|t| t.data.first().copied()).map_or(f32::INFINITY, |v| v as f32),
                    )
                };
                UnaryOp::Clip { min, max }
            }
        };
        let x = self.input(0)?;
        self.emit_out(Op::Unary(u), &[x])
    }

    /// Clip with bounds computed at run time: `min(max(x, lo), hi)` (all `hi` when `lo > hi`, as ONNX says).
    fn clip_dynamic(&mut self) -> Result<()> {
        let mut y = self.input(0)?;
        for (i, bop) in [(1, BinaryOp::Max), (2, BinaryOp::Min)] {
            if self.input_name(i).is_some() {
                let bound = self.input(i)?;
                y = self.emit(Op::Binary(bop), &[y, bound])?;
            }
        }
        self.set(Val::Dyn(y))
    }

    /// Variadic Min, Max or Sum of run-time tensors, folded left with broadcasting.
    fn variadic(&mut self, bop: BinaryOp) -> Result<ValueId> {
        let mut y = self.input(0)?;
        for i in 1..self.node.input.len() {
            if self.input_name(i).is_some() {
                let x = self.input(i)?;
                y = self.emit(Op::Binary(bop), &[y, x])?;
            }
        }
        Ok(y)
    }

    fn softmax(&mut self, log: bool) -> Result<()> {
        let s = self.input_shape(0)?;
        let x = self.input(0)?;
        if self.model.opset < 13 {
            // Coerce to 2-D [prod(dims before axis), prod(dims from axis)] and normalise rows.
            let axis = norm_axis(self.attrs().int_or("axis", 1), s.len()).map_err(|e| self.err(e))?;
            let flat = self.reshape(x, vec![s[..axis].iter().product(), s[axis..].iter().product()])?;
            let y = self.emit(Op::Softmax { axis: 1, log }, &[flat])?;
            let y = self.reshape(y, s)?;
            return self.set(Val::Dyn(y));
        }
        let axis = norm_axis(self.attrs().int_or("axis", -1), s.len()).map_err(|e| self.err(e))?;
        self.emit_out(Op::Softmax { axis, log }, &[x])
    }

    /// Kernel, strides, dilations and explicit pads of a windowed op (auto_pad resolved).
    fn window(&self, spatial: &[usize], kernel: Vec<usize>) -> Result<Window> {
        let a = self.attrs();
        let nd = spatial.len();
        let list = |name: &str, default: usize| -> Vec<usize> {
            a.ints(name).map(|v| v.iter().map(|&x| x.max(0) as usize).collect()).unwrap_or_else(|| vec![default; nd])
        };
        let strides = list("strides", 1);
        let dilations = list("dilations", 1);
        if kernel.len() != nd || strides.len() != nd || dilations.len() != nd {
            return Err(self.err(format!(
                "kernel {kernel:?}, strides {strides:?}, dilations {dilations:?} do not fit {nd} spatial dims"
            )));
        }
        let auto = a.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
        let (mut begin, mut end) = (vec![0; nd], vec![0; nd]);
        match auto.as_str() {
            "NOTSET" => {
                let pads = list("pads", 0);
                if a.has("pads") {
                    if pads.len() != 2 * nd {
                        return Err(self.err(format!("pads {pads:?} need {} values", 2 * nd)));
                    }
                    begin.copy_from_slice(&pads[..nd]);
                    end.copy_from_slice(&pads[nd..]);
                }
            }
            "VALID" => {}
            "SAME_UPPER" | "SAME_LOWER" => {
                for i in 0..nd {
                    let out = spatial[i].div_ceil(strides[i].max(1));
                    let span = dilations[i] * (kernel[i] - 1) + 1;
                    let total = ((out - 1) * strides[i] + span).saturating_sub(spatial[i]);
                    let small = total / 2;
                    if auto == "SAME_UPPER" {
                        (begin[i], end[i]) = (small, total - small);
                    } else {
                        (begin[i], end[i]) = (total - small, small);
                    }
                }
            }
            other => return Err(self.err(format!("auto_pad `{other}` is not valid"))),
        }
        Ok(Window { kernel, strides, dilations, pads_begin: begin, pads_end: end })
    }

    fn conv(&mut self) -> Result<()> {
        let s = self.input_shape(0)?;
        let ws = self.input_shape(1)?;
        if s.len() < 3 || s.len() > 5 {
            return Err(self.err(format!("input {s:?}: 1, 2 or 3 spatial dims are supported")));
        }
        let kernel = match self.attrs().ints("kernel_shape") {
            Some(k) => k.iter().map(|&x| x.max(0) as usize).collect(),
            None => ws[2..].to_vec(),
        };
        let Window { kernel, strides, dilations, pads_begin, pads_end } = self.window(&s[2..], kernel)?;
        let group = self.attrs().int_or("group", 1).max(1) as usize;
        let mut ins = vec![self.input(0)?, self.input(1)?];
        if self.input_name(2).is_some() {
            ins.push(self.input(2)?);
        } else if let Some(b) = self.added_bias(ws[0])? {
            ins.push(b);
        }
        self.emit_out(Op::Conv(ConvAttrs { kernel, strides, dilations, pads_begin, pads_end, group }), &ins)
    }

    fn pool(&mut self, max: bool) -> Result<()> {
        if self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.err("the Indices output of MaxPool is not supported"));
        }
        let s = self.input_shape(0)?;
        if s.len() < 3 || s.len() > 5 {
            return Err(self.err(format!("input {s:?}: 1, 2 or 3 spatial dims are supported")));
        }
        let a = self.attrs();
        let kernel: Vec<usize> = a
            .ints("kernel_shape")
            .ok_or_else(|| self.err("kernel_shape is required"))?
            .iter()
            .map(|&x| x.max(1) as usize)
            .collect();
        let kind = if max {
            PoolKind::Max
        } else {
            PoolKind::Average { count_include_pad: a.int_or("count_include_pad", 0) == 1 }
        };
        let ceil_mode = a.int_or("ceil_mode", 0) == 1;
        let Window { kernel, strides, dilations, pads_begin, pads_end } = self.window(&s[2..], kernel)?;
        let x = self.input(0)?;
        self.emit_out(Op::Pool(PoolAttrs { kind, kernel, strides, dilations, pads_begin, pads_end, ceil_mode }), &[x])
    }

    fn batch_norm(&mut self) -> Result<()> {
        let a = self.attrs();
        if self.model.opset < 9 && a.int_or("spatial", 1) == 0 {
            return Err(self.err("BatchNormalization with spatial=0 (per-activation statistics) is not supported"));
        }
        if a.int_or("training_mode", 0) == 1 || self.node.output.iter().skip(1).any(|o| !o.is_empty()) {
            return Err(self.err("BatchNormalization in training form (extra outputs) is not supported on import; export the inference graph"));
        }
        let eps = a.float_or("epsilon", 1e-5);
        let momentum = a.has("momentum").then(|| a.float_or("momentum", 0.9));
        let mut ins = Vec::new();
        for i in 0..3 {
            ins.push(self.input(i)?);
        }
        // The running statistics are state: they travel with the weights but no optimizer moves them.
        for i in 3..5 {
            let name = self.input_name(i).ok_or_else(|| self.err(format!("input {i} is missing")))?.to_string();
            ins.push(self.state(&name)?);
        }
        self.emit_out(Op::BatchNorm { epsilon: eps, momentum }, &ins)
    }
}

/// The shape after Squeeze (drop `axes`, or all 1-dims) or Unsqueeze (insert 1-dims at `axes`).
fn squeeze_shape(s: &[usize], axes: Option<&[i64]>, unsqueeze: bool) -> std::result::Result<Vec<usize>, String> {
    if unsqueeze {
        let axes = axes.ok_or("Unsqueeze needs axes")?;
        let rank = s.len() + axes.len();
        let mut ax: Vec<usize> = axes.iter().map(|&a| norm_axis(a, rank)).collect::<std::result::Result<_, _>>()?;
        ax.sort_unstable();
        let mut out = Vec::with_capacity(rank);
        let mut it = s.iter();
        for i in 0..rank {
            if ax.contains(&i) {
                out.push(1);
            } else {
                out.push(*it.next().ok_or("Unsqueeze axes repeat")?);
            }
        }
        return Ok(out);
    }
    match axes {
        Some(axes) if !axes.is_empty() => {
            let ax: Vec<usize> = axes.iter().map(|&a| norm_axis(a, s.len())).collect::<std::result::Result<_, _>>()?;
            if let Some(&bad) = ax.iter().find(|&&a| s[a] != 1) {
                return Err(format!("cannot squeeze axis {bad} of size {}", s[bad]));
            }
            Ok(s.iter().enumerate().filter(|(i, _)| !ax.contains(i)).map(|(_, &d)| d).collect())
        }
        _ => Ok(s.iter().copied().filter(|&d| d != 1).collect()),
    }
}
