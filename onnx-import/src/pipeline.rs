//! The import pipeline, in phases: check coverage (every unsupported op, opset and node form, in
//! one error); load the initializers and graph inputs; convert node by node (folding nodes whose
//! inputs are all constants, importing the rest through their op's file); finish (graph outputs,
//! parameter layout). A model reaches it already decoded ([`OnnxModel::from_bytes`]).

use std::collections::HashMap;

use tract_onnx::pb;

use crate::context::{ImportCx, NodeCx, State, Val};
use crate::coverage::{self, Step};
use crate::error::{ImportError, Result};
use crate::model::{OnnxModel, TensorSig};
use crate::ops::spec::Consts;
use crate::tensor::{ConstTensor, numel};

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

/// Choices made at import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Give every MatMul, Gemm and Conv without a bias a trainable zero bias (named by
    /// [`crate::inspect::added_bias_name`]); [`crate::export::add_biases`] writes them into the file.
    pub add_missing_biases: bool,
    /// Graph inputs given a value at import: they become constants, as an exporter writes them
    /// (inputs that set shapes, such as axes, a target shape or a depth, which the engine's static
    /// shapes need at import: [`crate::coverage::inputs_needed_at_import`] lists them).
    pub bound_inputs: Vec<(String, ConstTensor)>,
    /// Float initializers to train whatever [`crate::trainable`] decides (`--trainable`).
    pub trainable: Vec<String>,
    /// Float initializers to keep frozen whatever [`crate::trainable`] decides (`--frozen`).
    pub frozen: Vec<String>,
}

/// Imports `model` with its batch dims bound to `batch`.
pub fn import(model: &OnnxModel, batch: usize) -> Result<ImportedGraph> {
    import_with(model, batch, &ImportOptions::default())
}

/// [`import`] with options.
pub fn import_with(model: &OnnxModel, batch: usize, options: &ImportOptions) -> Result<ImportedGraph> {
    let bound: Vec<&str> = options.bound_inputs.iter().map(|(n, _)| n.as_str()).collect();
    let decisions =
        crate::trainable::decide_with(model, &options.trainable, &options.frozen).map_err(ImportError::Model)?;
    let params = crate::trainable::parameters(&decisions);
    let steps = coverage::check_with(model, &bound, &params)?;
    let (mut st, inputs) = load(model, batch, options, &decisions)?;
    for (node, step) in model.graph().node.iter().zip(&steps) {
        convert(&mut st, node, step, model.opset)?;
    }
    finish(st, inputs)
}

/// Phase 2: the initializers (float ones as parameters-to-be, the rest as constants) and the graph
/// inputs (engine inputs with the batch bound).
fn load<'m>(
    model: &'m OnnxModel,
    batch: usize,
    options: &ImportOptions,
    decisions: &[crate::trainable::TrainDecision],
) -> Result<(State<'m>, Vec<TensorSig>)> {
    let missing_bias = if options.add_missing_biases {
        crate::inspect::missing_biases(model).iter().filter_map(|n| n.output.first().cloned()).collect()
    } else {
        Default::default()
    };
    let params = crate::trainable::parameters(decisions);
    let mut st = State {
        model,
        b: distk_engine::GraphBuilder::new(),
        env: HashMap::new(),
        materialized: HashMap::new(),
        missing_bias,
        trainable: decisions
            .iter()
            .filter(|d| d.trainable)
            .map(|d| d.name.clone())
            .chain(options.trainable.iter().cloned())
            .collect(),
        frozen: options.frozen.iter().cloned().collect(),
        aliases: crate::trainable::aliases(model).into_iter().map(|(alias, _)| alias).collect(),
    };
    for (i, t) in model.graph().initializer.iter().enumerate() {
        let v = if t.data_type == crate::tensor::elem::FLOAT && params.contains(&t.name) {
            Val::Init(i)
        } else {
            Val::Const(ConstTensor::from_proto(t).map_err(ImportError::Model)?)
        };
        st.env.insert(t.name.clone(), v);
    }
    let mut inputs = model.inputs()?;
    for (name, value) in &options.bound_inputs {
        let s = inputs.iter().find(|s| &s.name == name).ok_or_else(|| {
            ImportError::Model(format!("`{name}` is given a value at import but is not a graph input"))
        })?;
        if s.dims.len() != value.shape.len() {
            return Err(ImportError::Model(format!(
                "graph input `{name}` has rank {}, the value bound to it {:?}",
                s.dims.len(),
                value.shape
            )));
        }
        st.env.insert(name.clone(), Val::Const(value.clone()));
    }
    inputs.retain(|s| !options.bound_inputs.iter().any(|(n, _)| n == &s.name));
    for s in &inputs {
        let id = st.b.typed_input(&s.name, s.bind(batch), s.dtype);
        st.env.insert(s.name.clone(), Val::Dyn(id));
    }
    Ok((st, inputs))
}

/// The node's inputs when every present one is a constant (absent optional ones are `None`).
fn all_const(st: &State<'_>, n: &NodeCx<'_>) -> Result<Option<Consts>> {
    let mut out = Vec::with_capacity(n.node.input.len());
    for i in 0..n.node.input.len() {
        let Some(name) = n.input_name(i) else {
            out.push(None);
            continue;
        };
        match st.env.get(name) {
            Some(Val::Const(c)) => out.push(Some(c.clone())),
            Some(_) => return Ok(None),
            None => {
                return Err(
                    n.err(format!("{} `{name}` is produced by no node, initializer or graph input", n.input_label(i)))
                );
            }
        }
    }
    Ok(Some(Consts(out)))
}

/// Phase 3, one node: its fold when every input is a constant and the op folds, its import
/// otherwise; then the check that its output is of the kind the coverage check predicted.
fn convert<'m>(st: &mut State<'m>, node: &'m pb::NodeProto, step: &Step, opset: i64) -> Result<()> {
    let n = NodeCx { node, def: step.def, opset };
    let folded = match step.def.fold {
        Some(fold) => match all_const(st, &n)? {
            Some(c) => Some(fold(&n, &c)?),
            None => None,
        },
        None => None,
    };
    if node.output.iter().all(|o| o.is_empty()) {
        return Err(n.err("the node has no output"));
    }
    // A node may leave its first output out (an LSTM used only for Y_h); it is then not checked.
    let out = node.output.first().cloned().unwrap_or_default();
    if let Some(c) = folded {
        if numel(&c.shape).ok() != Some(c.data.len()) {
            return Err(n.err(format!(
                "internal: a folded constant has {} values for shape {:?}",
                c.data.len(),
                c.shape
            )));
        }
        if out.is_empty() {
            return Err(n.err("internal: a folded node without a first output"));
        }
        st.env.insert(out.clone(), Val::Const(c));
    } else {
        let import = step.def.import.ok_or_else(|| {
            n.err(format!("internal: {} has only a constant form, and its inputs are not all constants", node.op_type))
        })?;
        import(&mut ImportCx::new(st, NodeCx { node, def: step.def, opset }))?;
    }
    for (i, o) in node.output.iter().enumerate().skip(1).filter(|(_, o)| !o.is_empty()) {
        if !matches!(st.env.get(o), Some(Val::Dyn(_))) {
            return Err(n.err(format!("internal: output {i} (`{o}`) was not produced as a run-time value")));
        }
    }
    let got = st.env.get(&out).map(Val::kind);
    if !out.is_empty() && got != Some(step.kind) {
        return Err(n.err(format!(
            "internal: the coverage check predicted an output {}, the import produced {}",
            step.kind.describe(),
            got.map_or("none", |k| k.describe())
        )));
    }
    Ok(())
}

/// Converts the nodes of a subgraph (a Loop or Scan body, an If branch) into the same engine
/// graph, its inputs bound to `bindings` (in order); returns the values of its outputs. The names
/// the subgraph defines are forgotten first, so that each unrolled iteration gets its own values
/// (and its own engine constants); the outer scope's tensors are visible, as ONNX defines. The
/// subgraph's initializers are constants (they are not trained).
pub(crate) fn run_subgraph<'m>(
    st: &mut State<'m>,
    g: &'m pb::GraphProto,
    opset: i64,
    bindings: Vec<Val>,
) -> Result<Vec<Val>> {
    if bindings.len() != g.input.len() {
        return Err(ImportError::Model(format!(
            "subgraph `{}` declares {} inputs, its node gives it {}",
            g.name,
            g.input.len(),
            bindings.len()
        )));
    }
    let defined = g.node.iter().flat_map(|n| n.output.iter()).chain(g.input.iter().map(|v| &v.name));
    for name in defined.chain(g.initializer.iter().map(|t| &t.name)) {
        st.env.remove(name);
        st.materialized.remove(name);
    }
    for t in &g.initializer {
        st.env.insert(t.name.clone(), Val::Const(ConstTensor::from_proto(t).map_err(ImportError::Model)?));
    }
    for (v, val) in g.input.iter().zip(bindings) {
        st.env.insert(v.name.clone(), val);
    }
    let kinds: HashMap<&str, crate::context::Kind> = g
        .input
        .iter()
        .map(|v| v.name.as_str())
        .chain(g.initializer.iter().map(|t| t.name.as_str()))
        .filter_map(|n| st.env.get(n).map(|v| (n, v.kind())))
        .collect();
    let steps = {
        let env = &st.env;
        coverage::check_nodes(&g.node, opset, kinds, &|name| env.get(name).map(Val::kind))?
    };
    for (node, step) in g.node.iter().zip(&steps) {
        convert(st, node, step, opset)?;
    }
    g.output
        .iter()
        .map(|o| {
            st.env.get(&o.name).cloned().ok_or_else(|| {
                ImportError::Model(format!(
                    "subgraph `{}`: output `{}` is produced by no node or input",
                    g.name, o.name
                ))
            })
        })
        .collect()
}

/// Phase 4: the graph outputs (constants among them become engine constants) and the parameter
/// layout.
fn finish(mut st: State<'_>, inputs: Vec<TensorSig>) -> Result<ImportedGraph> {
    let outputs = st.model.outputs()?;
    for o in &outputs {
        let id = st
            .materialize(&o.name, true)
            .map_err(|reason| ImportError::Model(format!("graph output `{}`: {reason}", o.name)))?;
        st.b.output(id);
    }
    Ok(ImportedGraph {
        graph: st.b.finish(),
        input_names: inputs.into_iter().map(|s| s.name).collect(),
        output_names: outputs.into_iter().map(|s| s.name).collect(),
    })
}
