//! The coverage check, run on the whole graph before any node is converted, so that a model the
//! importer cannot take gets one error listing everything in the way: every op type it does not
//! know (or not at the model's opset), and every node of a known op in a form it does not have
//! (a run-time value where the op needs a constant, an output it does not produce, an input
//! missing or extra). It also predicts, from the ops' specs alone, which tensors are constants,
//! parameters or run-time values; the conversion checks that it produces the same.

use std::collections::HashMap;

use tract_onnx::pb;

use crate::context::Kind;
use crate::error::{Coverage, ImportError, NodeIssue, Result, UnsupportedOp};
use crate::model::OnnxModel;
use crate::ops::spec::{Need, OpDef, OutputRule, Presence};

/// What the conversion of one node needs from the check: its op and its output's predicted kind.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// The node's op.
    pub def: &'static OpDef,
    /// The kind of its (first) output.
    pub kind: Kind,
}

fn is_default_domain(n: &pb::NodeProto) -> bool {
    n.domain.is_empty() || n.domain == "ai.onnx"
}

/// The node's name for messages (its first output when it has none).
pub fn node_name(n: &pb::NodeProto) -> String {
    if n.name.is_empty() { n.output.first().cloned().unwrap_or_default() } else { n.name.clone() }
}

/// Looks a node's op up in the registry, at the model's opset.
fn resolve(n: &pb::NodeProto, opset: i64) -> std::result::Result<&'static OpDef, (String, Option<String>)> {
    let name = if is_default_domain(n) { n.op_type.clone() } else { format!("{}:{}", n.domain, n.op_type) };
    match crate::ops::lookup(&n.op_type).filter(|_| is_default_domain(n)) {
        None => Err((name, None)),
        Some(d) if !d.spec.handles_opset(opset) => {
            Err((name, Some(format!("at opset {opset} (supported at opsets {})", d.spec.opset_range()))))
        }
        Some(d) => Ok(d),
    }
}

fn note_unsupported(found: &mut Vec<UnsupportedOp>, op_type: String, opset: Option<String>, node: String) {
    match found.iter_mut().find(|u| u.op_type == op_type) {
        Some(u) => {
            u.count += 1;
            if u.nodes.len() < 5 {
                u.nodes.push(node);
            }
        }
        None => found.push(UnsupportedOp { op_type, count: 1, nodes: vec![node], opset }),
    }
}

/// Every op type of the model the importer does not support (or not at its opset); empty when
/// all are supported. Node forms are checked by the import itself.
pub fn unsupported_ops(model: &OnnxModel) -> Vec<UnsupportedOp> {
    let mut found = Vec::new();
    for n in model.graph().node.iter().flat_map(|n| std::iter::once(n).chain(subgraph_nodes(n))) {
        if let Err((op_type, opset)) = resolve(n, model.opset) {
            note_unsupported(&mut found, op_type, opset, node_name(n));
        }
    }
    found
}

/// The input and output arity issues of a node against its spec.
fn arity_issues(n: &pb::NodeProto, def: &OpDef, opset: i64, issue: &mut impl FnMut(String)) {
    let spec = &def.spec;
    let present = |i: usize| n.input.get(i).is_some_and(|s| !s.is_empty());
    for i in 0..n.input.len() {
        if present(i) && spec.input(i, opset).is_none() {
            let declared = spec.inputs.iter().filter(|s| s.exists_at(opset)).count();
            issue(format!("input {i} is one too many: {} takes {declared} input(s) at opset {opset}", def.op_type));
        }
    }
    for (position, s) in spec.inputs.iter().filter(|s| s.exists_at(opset)).enumerate() {
        if matches!(s.presence, Presence::Required | Presence::Variadic) && !present(position) {
            issue(format!("input {position} ({}) is missing", s.name));
        }
    }
    if n.output.iter().all(|o| o.is_empty()) {
        issue("the node has no output".into());
    }
    for (i, o) in n.output.iter().enumerate().skip(1).filter(|(_, o)| !o.is_empty()) {
        match spec.outputs.get(i).or_else(|| spec.outputs.last().filter(|s| s.variadic)) {
            None => issue(format!("output {i} is one too many: {} has {} output(s)", def.op_type, spec.outputs.len())),
            Some(s) if !s.produced => issue(format!(
                "output {i} ({}, `{o}`) is not supported; export the model without it (inference form)",
                s.name
            )),
            Some(_) => {}
        }
    }
}

/// Checks every node of `model` against the registry, returning each node's step, or one error
/// listing every unsupported op type and every node in a form the importer does not have.
pub fn check(model: &OnnxModel) -> Result<Vec<Step>> {
    let params = crate::trainable::parameters(&crate::trainable::decide(model));
    check_with(model, &[], &params)
}

/// [`check`] with the graph inputs named in `bound` given values at import (constants).
/// `params` names the float initializers that stay parameters (the others are constants).
pub fn check_with(model: &OnnxModel, bound: &[&str], params: &std::collections::HashSet<String>) -> Result<Vec<Step>> {
    let g = model.graph();
    let mut kinds: HashMap<&str, Kind> = HashMap::new();
    for v in &g.input {
        kinds.insert(&v.name, if bound.contains(&v.name.as_str()) { Kind::Const } else { Kind::RunTime });
    }
    for t in &g.initializer {
        let k = if t.data_type == crate::tensor::elem::FLOAT && params.contains(&t.name) {
            Kind::Param
        } else {
            Kind::Const
        };
        kinds.insert(&t.name, k);
    }
    check_nodes(&g.node, model.opset, kinds, &|_| None)
}

/// The nodes of the subgraphs (Loop and Scan bodies, If branches) of `n`, at any depth.
pub fn subgraph_nodes(n: &pb::NodeProto) -> Vec<&pb::NodeProto> {
    let mut out = Vec::new();
    for a in &n.attribute {
        for g in a.g.iter().chain(&a.graphs) {
            for inner in &g.node {
                out.push(inner);
                out.extend(subgraph_nodes(inner));
            }
        }
    }
    out
}

/// Checks `nodes` (a graph's, or a subgraph's when it is unrolled), `kinds` holding the kinds of
/// the tensors they start from and `outer` those of the enclosing scopes.
pub fn check_nodes<'g>(
    nodes: &'g [pb::NodeProto],
    opset: i64,
    mut kinds: HashMap<&'g str, Kind>,
    outer: &dyn Fn(&str) -> Option<Kind>,
) -> Result<Vec<Step>> {
    let mut cov = Coverage::default();
    let mut steps = Vec::with_capacity(nodes.len());
    for n in nodes {
        // The ops inside a Loop, Scan or If are listed with the rest (their forms are checked
        // when the body is unrolled).
        for inner in subgraph_nodes(n) {
            if let Err((op_type, why)) = resolve(inner, opset) {
                note_unsupported(&mut cov.ops, op_type, why, node_name(inner));
            }
        }
        let def = match resolve(n, opset) {
            Ok(d) => d,
            Err((op_type, why)) => {
                note_unsupported(&mut cov.ops, op_type, why, node_name(n));
                if let Some(o) = n.output.first() {
                    kinds.insert(o, Kind::RunTime);
                }
                continue;
            }
        };
        let mut issue = |reason: String| {
            cov.nodes.push(NodeIssue { node: node_name(n), op_type: n.op_type.clone(), reason });
        };
        arity_issues(n, def, opset, &mut issue);
        let label = |i: usize| match def.spec.input(i, opset) {
            Some(s) => format!("input {i} ({})", s.name),
            None => format!("input {i}"),
        };
        // The present inputs with their kinds (`None` for names nothing produces: the conversion
        // reports those with the tensor's name).
        let inputs: Vec<(usize, Option<Kind>)> = n
            .input
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_empty())
            .map(|(i, s)| (i, kinds.get(s.as_str()).copied().or_else(|| outer(s))))
            .collect();
        let all_const = inputs.iter().all(|(_, k)| *k == Some(Kind::Const));
        let kind = if def.fold.is_some() && all_const {
            Kind::Const
        } else if def.import.is_none() {
            for &(i, k) in &inputs {
                if let Some(k) = k.filter(|&k| k != Kind::Const) {
                    issue(format!(
                        "{} is {}, but {} has only a constant form (it is folded at import, as in shape computations); it has no run-time form",
                        label(i),
                        k.describe(),
                        def.op_type
                    ));
                }
            }
            Kind::RunTime
        } else {
            for &(i, k) in &inputs {
                let known = def.spec.input(i, opset).is_some_and(|s| s.need == Need::Known);
                if known && k == Some(Kind::RunTime) {
                    issue(format!(
                        "{} must be known at import time (a constant or an initializer, or computed from shapes); it is computed at run time",
                        label(i)
                    ));
                }
            }
            match def.spec.output {
                OutputRule::Computed => Kind::RunTime,
                OutputRule::FromShape => Kind::Const,
                OutputRule::PassThrough => inputs.first().and_then(|(_, k)| *k).unwrap_or(Kind::RunTime),
            }
        };
        if let Some(o) = n.output.first() {
            kinds.insert(o, kind);
        }
        // The other outputs a node produces (TopK's indices, Split's parts) are run-time values.
        for o in n.output.iter().skip(1).filter(|o| !o.is_empty()) {
            kinds.insert(o, Kind::RunTime);
        }
        steps.push(Step { def, kind });
    }
    if cov.is_empty() { Ok(steps) } else { Err(ImportError::Unsupported(cov)) }
}

/// The graph inputs that must be known at import: those that reach, directly or through ops that
/// fold on constants (shape arithmetic), an input where a node's op needs a value at import (axes, a
/// target shape, a depth, `K`, pads), or an op with only a constant form. A model that computes
/// them at run time cannot have static shapes; bind them with
/// [`crate::ImportOptions::bound_inputs`].
pub fn inputs_needed_at_import(model: &OnnxModel) -> Vec<String> {
    let g = model.graph();
    let mut need: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for n in g.node.iter().rev() {
        let Ok(def) = resolve(n, model.opset) else { continue };
        let feeds_known = def.fold.is_some() && n.output.iter().any(|o| need.contains(o.as_str()));
        for (i, name) in n.input.iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            let known = def.import.is_none() || def.spec.input(i, model.opset).is_some_and(|s| s.need == Need::Known);
            if known || feeds_known {
                need.insert(name.as_str());
            }
        }
    }
    g.input
        .iter()
        .map(|v| v.name.clone())
        .filter(|n| need.contains(n.as_str()) && !g.initializer.iter().any(|t| &t.name == n))
        .collect()
}
