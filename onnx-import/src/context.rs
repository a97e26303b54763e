//! The small API an op file imports and folds through: the node's attributes read against its spec
//! (defaults per opset), its inputs as run-time values or as constants, engine IR emission, and
//! error helpers that name the node.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;

use distk_engine::{DType, GraphBuilder, Op, Reshape, ValueId};
use tract_onnx::pb;

use crate::error::{ImportError, Result};
use crate::fold::norm_axis;
use crate::model::OnnxModel;
use crate::ops::spec::{AttrDefault, Consts, OpDef};
use crate::tensor::ConstTensor;

/// A tensor of the ONNX graph as the import sees it.
#[derive(Clone, Debug)]
pub enum Val {
    /// A constant known at import (a non-float initializer, a Constant, a folded result).
    Const(ConstTensor),
    /// A float initializer (index in the graph's initializers): a parameter once used at run time.
    Init(usize),
    /// A value of the engine graph, computed at run time.
    Dyn(ValueId),
}

/// The constness of a tensor, as the coverage check predicts it and the import produces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Known at import, foldable.
    Const,
    /// A float initializer: known at import, but a parameter (never folded away).
    Param,
    /// Computed at run time.
    RunTime,
}

impl Kind {
    /// How messages describe a value of this kind.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Const => "a constant",
            Kind::Param => "a float initializer (a trainable parameter)",
            Kind::RunTime => "computed at run time",
        }
    }
}

impl Val {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Val::Const(_) => Kind::Const,
            Val::Init(_) => Kind::Param,
            Val::Dyn(_) => Kind::RunTime,
        }
    }
}

/// The import's state across nodes: the engine graph under construction and every ONNX tensor's value.
pub struct State<'m> {
    /// The model.
    pub model: &'m OnnxModel,
    /// The engine graph under construction.
    pub b: GraphBuilder,
    /// Every ONNX tensor met so far.
    pub env: HashMap<String, Val>,
    /// ONNX tensors (constants, initializers) already turned into engine values.
    pub materialized: HashMap<String, ValueId>,
    /// Outputs of the nodes that get an added zero bias (`--add-missing-biases`).
    pub missing_bias: HashSet<String>,
    /// The float initializers that train ([`crate::trainable`]; aliases named by `--trainable`
    /// too); the others are frozen.
    pub trainable: HashSet<String>,
    /// Aliases of initializers (Identity outputs) named by `--frozen`.
    pub frozen: HashSet<String>,
    /// The outputs of Identity nodes of float initializers: parameters of their own.
    pub aliases: HashSet<String>,
}

impl State<'_> {
    /// Decodes initializer `k`.
    fn init(&self, k: usize) -> std::result::Result<ConstTensor, String> {
        let t = self.model.graph().initializer.get(k).ok_or_else(|| format!("initializer {k} does not exist"))?;
        ConstTensor::from_proto(t)
    }

    /// The engine value of a tensor: float initializers become parameters (trainable when
    /// `trainable` is asked and [`crate::trainable`] decided so, state otherwise), constants become
    /// engine constants; each is materialised once.
    pub fn materialize(&mut self, name: &str, trainable: bool) -> std::result::Result<ValueId, String> {
        if let Some(&id) = self.materialized.get(name) {
            return Ok(id);
        }
        let id = match self.env.get(name).cloned() {
            None => return Err(format!("input `{name}` is produced by no node, initializer or graph input")),
            Some(Val::Dyn(id)) => return Ok(id),
            Some(Val::Const(c)) => {
                let dtype = if c.is_float { DType::F32 } else { DType::I64 };
                self.b.typed_constant(name, c.shape.clone(), c.as_f32(), dtype).map_err(|e| e.to_string())?
            }
            Some(Val::Init(k)) => {
                // An initializer reached through Identity under another name is a parameter of
                // its own (the legacy PyTorch exporter merges equal initial values through
                // Identity: every BatchNorm gamma is the first one's, which is also a running
                // variance). It trains as the initializer's decision says, or as an override of
                // its own name says; export writes it as an initializer of its own.
                // Under any other name (a Loop body's input bound to it, an If's output) it is
                // the initializer itself: one parameter, shared by every unrolled iteration.
                let own = self.model.graph().initializer.get(k).map(|t| t.name.clone());
                let own = own.ok_or_else(|| format!("initializer {k} does not exist"))?;
                let key = if self.aliases.contains(name) { name.to_string() } else { own.clone() };
                if let Some(&id) = self.materialized.get(&key) {
                    self.materialized.insert(name.to_string(), id);
                    return Ok(id);
                }
                let decided = self.trainable.contains(&own) || self.trainable.contains(&key);
                let trainable = trainable && decided && !self.frozen.contains(&key);
                let c = self.init(k)?;
                let id = self.b.param(&key, c.shape.clone(), c.as_f32(), trainable).map_err(|e| e.to_string())?;
                self.materialized.insert(key, id);
                id
            }
        };
        self.materialized.insert(name.to_string(), id);
        Ok(id)
    }
}

/// One node as its op file sees it: attributes (read against the spec), names and errors.
/// What a fold gets; [`ImportCx`] adds the inputs' values and the engine graph.
pub struct NodeCx<'m> {
    /// The node.
    pub node: &'m pb::NodeProto,
    /// Its op's definition.
    pub def: &'static OpDef,
    /// The model's default-domain opset.
    pub opset: i64,
}

/// ONNX attribute type codes.
mod attr_type {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
    pub const GRAPH: i32 = 5;
}

impl<'m> NodeCx<'m> {
    /// The node's name (its first output when it has none), for messages and engine nodes.
    pub fn name(&self) -> String {
        if self.node.name.is_empty() {
            self.node.output.first().cloned().unwrap_or_default()
        } else {
            self.node.name.clone()
        }
    }

    /// An error naming this node.
    pub fn err(&self, reason: impl Into<String>) -> ImportError {
        ImportError::Node { node: self.name(), op_type: self.node.op_type.clone(), reason: reason.into() }
    }

    /// The name of input `i`, when present (absent optional inputs are missing or `""`).
    pub fn input_name(&self, i: usize) -> Option<&'m str> {
        self.node.input.get(i).map(String::as_str).filter(|s| !s.is_empty())
    }

    /// The spec's name of input `i`, for messages.
    pub fn input_label(&self, i: usize) -> String {
        match self.def.spec.input(i, self.opset) {
            Some(s) => format!("input {i} ({})", s.name),
            None => format!("input {i}"),
        }
    }

    /// Normalises a possibly negative axis against `rank` (`[-rank, rank)`).
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize> {
        norm_axis(axis, rank).map_err(|e| self.err(e))
    }

    /// Constant input `i` of a fold.
    pub fn arg<'c>(&self, c: &'c Consts, i: usize) -> Result<&'c ConstTensor> {
        c.opt(i).ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))
    }

    /// The attribute `name` as the node gives it, after checking that the spec declares it at
    /// this opset and that its type is `ty` (an untyped attribute, as old exporters write, passes).
    fn raw(&self, name: &str, ty: i32) -> Result<(Option<&'m pb::AttributeProto>, AttrDefault)> {
        let spec = self.def.spec.attr(name, self.opset).ok_or_else(|| {
            self.err(format!(
                "internal: the importer reads attribute `{name}`, which the spec of {} does not declare at opset {}",
                self.def.op_type, self.opset
            ))
        })?;
        let a = self.node.attribute.iter().find(|a| a.name == name);
        if let Some(a) = a
            && a.r#type != 0
            && a.r#type != ty
        {
            return Err(self.err(format!("attribute `{name}` has type {}, expected {ty}", a.r#type)));
        }
        Ok((a, spec.default))
    }

    /// A graph attribute (a Loop or Scan body, an If branch).
    pub fn graph(&self, name: &str) -> Result<&'m pb::GraphProto> {
        match self.raw(name, attr_type::GRAPH)? {
            (Some(a), _) => a.g.as_ref().ok_or_else(|| self.err(format!("attribute `{name}` holds no graph"))),
            (None, _) => Err(self.missing(name)),
        }
    }

    fn missing(&self, name: &str) -> ImportError {
        self.err(format!("attribute `{name}` is required"))
    }

    /// An integer attribute, or `None` when absent and its spec gives no default.
    pub fn int_opt(&self, name: &str) -> Result<Option<i64>> {
        match self.raw(name, attr_type::INT)? {
            (Some(a), _) => Ok(Some(a.i)),
            (None, AttrDefault::Int(v)) => Ok(Some(v)),
            (None, AttrDefault::Required) => Err(self.missing(name)),
            (None, _) => Ok(None),
        }
    }

    /// An integer attribute (its default when absent).
    pub fn int(&self, name: &str) -> Result<i64> {
        self.int_opt(name)?.ok_or_else(|| self.missing(name))
    }

    /// A float attribute (its default when absent).
    pub fn float(&self, name: &str) -> Result<f32> {
        match self.raw(name, attr_type::FLOAT)? {
            (Some(a), _) => Ok(a.f),
            (None, AttrDefault::Float(v)) => Ok(v),
            (None, _) => Err(self.missing(name)),
        }
    }

    /// An integer-list attribute, or `None` when absent and its spec gives no default.
    pub fn ints_opt(&self, name: &str) -> Result<Option<Vec<i64>>> {
        match self.raw(name, attr_type::INTS)? {
            (Some(a), _) => Ok(Some(a.ints.clone())),
            (None, AttrDefault::Ints(v)) => Ok(Some(v.to_vec())),
            (None, AttrDefault::Required) => Err(self.missing(name)),
            (None, _) => Ok(None),
        }
    }

    /// A float-list attribute, or `None` when absent (no float-list attribute has a default).
    pub fn floats_opt(&self, name: &str) -> Result<Option<Vec<f32>>> {
        match self.raw(name, attr_type::FLOATS)? {
            (Some(a), _) => Ok(Some(a.floats.clone())),
            (None, AttrDefault::Required) => Err(self.missing(name)),
            (None, _) => Ok(None),
        }
    }

    /// A string attribute (its default when absent).
    pub fn string(&self, name: &str) -> Result<String> {
        match self.raw(name, attr_type::STRING)? {
            (Some(a), _) => Ok(String::from_utf8_lossy(&a.s).into_owned()),
            (None, AttrDefault::Str(v)) => Ok(v.to_string()),
            (None, _) => Err(self.missing(name)),
        }
    }

    /// A tensor attribute, when given.
    pub fn tensor(&self, name: &str) -> Result<Option<&'m pb::TensorProto>> {
        match self.raw(name, attr_type::TENSOR)? {
            (Some(a), _) => Ok(a.t.as_ref()),
            (None, AttrDefault::Required) => Err(self.missing(name)),
            (None, _) => Ok(None),
        }
    }

    /// Whether the spec declares attribute `name` at this opset (attributes that came later, or
    /// went away, are read only where they exist).
    pub fn declares(&self, name: &str) -> bool {
        self.def.spec.attr(name, self.opset).is_some()
    }

    /// Whether the node gives the attribute (declared in the spec).
    pub fn has(&self, name: &str) -> Result<bool> {
        let spec = self.def.spec.attr(name, self.opset);
        if spec.is_none() {
            return Err(self.err(format!(
                "internal: the importer reads attribute `{name}`, which the spec of {} does not declare at opset {}",
                self.def.op_type, self.opset
            )));
        }
        Ok(self.node.attribute.iter().any(|a| a.name == name))
    }
}

/// What an op's import works with: [`NodeCx`] plus the inputs' values and the engine graph.
pub struct ImportCx<'a, 'm> {
    st: &'a mut State<'m>,
    n: NodeCx<'m>,
}

impl<'m> Deref for ImportCx<'_, 'm> {
    type Target = NodeCx<'m>;

    fn deref(&self) -> &NodeCx<'m> {
        &self.n
    }
}

impl<'a, 'm> ImportCx<'a, 'm> {
    /// A context for `n` over `st`.
    pub fn new(st: &'a mut State<'m>, n: NodeCx<'m>) -> Self {
        ImportCx { st, n }
    }

    fn val(&self, i: usize) -> Result<Option<&Val>> {
        let Some(name) = self.input_name(i) else { return Ok(None) };
        self.st.env.get(name).map(Some).ok_or_else(|| {
            self.err(format!("{} `{name}` is produced by no node, initializer or graph input", self.input_label(i)))
        })
    }

    /// Input `i` as the import holds it (a constant, a parameter or a run-time value).
    pub fn input_val(&self, i: usize) -> Result<Val> {
        self.val(i)?.cloned().ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))
    }

    /// An engine value for `v`: itself when computed at run time, an engine constant for a
    /// constant (named `<node>/<suffix>`), the parameter for a float initializer.
    pub fn materialize(&mut self, v: &Val, suffix: &str) -> Result<ValueId> {
        match v {
            Val::Dyn(id) => Ok(*id),
            Val::Const(c) => {
                let dtype = if c.is_float { DType::F32 } else { DType::I64 };
                self.typed_constant(suffix, c.shape.clone(), c.as_f32(), dtype)
            }
            Val::Init(k) => {
                let name = self.st.model.graph().initializer.get(*k).map(|t| t.name.clone());
                let name = name.ok_or_else(|| self.err("unknown initializer"))?;
                self.st.materialize(&name, true).map_err(|e| self.n.err(e))
            }
        }
    }

    /// Unrolls one pass of subgraph `g` (a Loop or Scan body, an If branch) into the engine
    /// graph, its inputs bound to `bindings`; returns its outputs.
    pub fn run_subgraph(&mut self, g: &'m pb::GraphProto, bindings: Vec<Val>) -> Result<Vec<Val>> {
        crate::pipeline::run_subgraph(self.st, g, self.n.opset, bindings)
    }

    /// The program that wrote the model (`tf2onnx`, `pytorch`, ...).
    pub fn producer(&self) -> &str {
        &self.st.model.proto.producer_name
    }

    /// Whether input `i` is present.
    pub fn has_input(&self, i: usize) -> bool {
        self.input_name(i).is_some()
    }

    /// The shape of input `i` (with the batch bound).
    pub fn shape(&self, i: usize) -> Result<Vec<usize>> {
        match self.val(i)? {
            None => Err(self.err(format!("{} is missing", self.input_label(i)))),
            Some(Val::Const(c)) => Ok(c.shape.clone()),
            Some(Val::Dyn(id)) => Ok(self.st.b.shape(*id).to_vec()),
            Some(Val::Init(k)) => {
                let t = self.st.model.graph().initializer.get(*k).ok_or_else(|| self.err("unknown initializer"))?;
                t.dims.iter().map(|&d| usize::try_from(d).map_err(|_| self.err(format!("negative dim {d}")))).collect()
            }
        }
    }

    /// The kind of input `i` (`None` when absent).
    pub fn kind(&self, i: usize) -> Result<Option<Kind>> {
        Ok(self.val(i)?.map(Val::kind))
    }

    /// The values of input `i` when known at import (a constant or an initializer); `None` when absent.
    /// An input computed at run time is an error: the spec declares such inputs `Need::Known`, and
    /// the coverage check refuses run-time values there before any node is converted.
    pub fn known(&self, i: usize) -> Result<Option<ConstTensor>> {
        match self.val(i)? {
            None => Ok(None),
            Some(Val::Const(c)) => Ok(Some(c.clone())),
            Some(Val::Init(k)) => self.st.init(*k).map(Some).map_err(|e| self.err(e)),
            Some(Val::Dyn(_)) => Err(self.err(format!(
                "{} must be known at import time (a constant or an initializer); it is computed at run time",
                self.input_label(i)
            ))),
        }
    }

    /// Like [`ImportCx::known`], for an input that must be present.
    pub fn require_known(&self, i: usize) -> Result<ConstTensor> {
        self.known(i)?.ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))
    }

    /// Input `i` as an engine value: float initializers become trainable parameters, constants
    /// become engine constants.
    pub fn value(&mut self, i: usize) -> Result<ValueId> {
        let name = self.input_name(i).ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))?;
        self.st.materialize(name, true).map_err(|e| self.n.err(e))
    }

    /// Like [`ImportCx::value`], but a float initializer becomes a non-trainable parameter (state,
    /// such as BatchNorm running statistics).
    pub fn state(&mut self, i: usize) -> Result<ValueId> {
        let name = self.input_name(i).ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))?;
        self.st.materialize(name, false).map_err(|e| self.n.err(e))
    }

    /// The shape of an engine value.
    pub fn value_shape(&self, v: ValueId) -> Vec<usize> {
        self.st.b.shape(v).to_vec()
    }

    /// The element type of an engine value.
    pub fn value_dtype(&self, v: ValueId) -> DType {
        self.st.b.dtype(v)
    }

    /// The element type of input `i` (a constant known at import: float32 or int64 as it is float).
    pub fn dtype(&self, i: usize) -> Result<DType> {
        match self.val(i)? {
            None => Err(self.err(format!("{} is missing", self.input_label(i)))),
            Some(Val::Const(c)) => Ok(if c.is_float { DType::F32 } else { DType::I64 }),
            Some(Val::Init(_)) => Ok(DType::F32),
            Some(Val::Dyn(id)) => Ok(self.st.b.dtype(*id)),
        }
    }

    /// Adds a multi-output engine node named after this node; returns every output.
    pub fn emit_outputs(&mut self, op: Op, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        let name = self.name();
        Ok(self.st.b.node_outputs(&name, op, inputs)?)
    }

    /// Sets the node's output `k` (when the node names it) to a run-time value.
    pub fn set_output(&mut self, k: usize, v: ValueId) -> Result<()> {
        if let Some(out) = self.node.output.get(k).filter(|o| !o.is_empty()) {
            self.st.env.insert(out.clone(), Val::Dyn(v));
        }
        Ok(())
    }

    /// Whether the node names its output `k`.
    pub fn has_output(&self, k: usize) -> bool {
        self.node.output.get(k).is_some_and(|o| !o.is_empty())
    }

    /// Adds an engine node named after this node.
    pub fn emit(&mut self, op: Op, inputs: &[ValueId]) -> Result<ValueId> {
        let name = self.name();
        Ok(self.st.b.node(&name, op, inputs)?)
    }

    /// `x` reshaped to `shape` (no node when the shape is already that).
    pub fn reshape(&mut self, x: ValueId, shape: Vec<usize>) -> Result<ValueId> {
        if self.st.b.shape(x) == shape.as_slice() {
            return Ok(x);
        }
        self.emit(Op::Reshape(Reshape { shape }), &[x])
    }

    /// An engine constant named `<node>/<suffix>`.
    pub fn constant(&mut self, suffix: &str, shape: Vec<usize>, data: Vec<f32>) -> Result<ValueId> {
        let name = format!("{}/{suffix}", self.name());
        Ok(self.st.b.constant(&name, shape, data)?)
    }

    /// An engine constant of element type `dtype` named `<node>/<suffix>`.
    pub fn typed_constant(&mut self, suffix: &str, shape: Vec<usize>, data: Vec<f32>, dtype: DType) -> Result<ValueId> {
        let name = format!("{}/{suffix}", self.name());
        Ok(self.st.b.typed_constant(&name, shape, data, dtype)?)
    }

    /// The zero bias of `len` values `--add-missing-biases` gives this node, when it gets one.
    pub fn added_bias(&mut self, len: usize) -> Result<Option<ValueId>> {
        let Some(out) = self.node.output.first() else { return Ok(None) };
        if !self.st.missing_bias.contains(out) {
            return Ok(None);
        }
        let name = crate::inspect::added_bias_name(out);
        if let Some(&id) = self.st.materialized.get(&name) {
            return Ok(Some(id));
        }
        crate::tensor::check_len(len).map_err(|e| self.n.err(e))?;
        let id = self.st.b.param(&name, vec![len], vec![0.0; len], true)?;
        self.st.materialized.insert(name, id);
        Ok(Some(id))
    }

    fn set_val(&mut self, v: Val) -> Result<()> {
        let out = self.node.output.first().filter(|o| !o.is_empty()).ok_or_else(|| self.err("node has no output"))?;
        self.st.env.insert(out.clone(), v);
        Ok(())
    }

    /// Sets the node's output to a run-time value.
    pub fn set(&mut self, v: ValueId) -> Result<()> {
        self.set_val(Val::Dyn(v))
    }

    /// Emits `op` of `inputs` and sets the node's output to it.
    pub fn emit_out(&mut self, op: Op, inputs: &[ValueId]) -> Result<()> {
        let y = self.emit(op, inputs)?;
        self.set(y)
    }

    /// Sets the node's output to a constant.
    pub fn set_const(&mut self, c: ConstTensor) -> Result<()> {
        self.set_val(Val::Const(c))
    }

    /// Sets the node's output to input `i` as it is (a constant, a parameter or a run-time value).
    pub fn forward(&mut self, i: usize) -> Result<()> {
        let v = self.val(i)?.cloned().ok_or_else(|| self.err(format!("{} is missing", self.input_label(i))))?;
        self.set_val(v)
    }
}
