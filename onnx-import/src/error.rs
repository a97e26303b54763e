//! The importer's error type.

use thiserror::Error;

/// One unsupported op type with where it occurs.
#[derive(Clone, Debug, PartialEq)]
pub struct UnsupportedOp {
    /// The op type (with its domain when not the default one).
    pub op_type: String,
    /// How many nodes use it.
    pub count: usize,
    /// The names of those nodes (first few).
    pub nodes: Vec<String>,
    /// Why, when the op is known but not at the model's opset (`None`: the op is unknown).
    pub opset: Option<String>,
}

/// One node the importer cannot convert in the form the model gives it, and why (a run-time value
/// where the op needs a constant, an output the importer does not produce, a missing input, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeIssue {
    /// The node's name (its first output when it has none).
    pub node: String,
    /// Its op type.
    pub op_type: String,
    /// What is missing.
    pub reason: String,
}

/// Everything the coverage check found, reported at once before any node is converted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coverage {
    /// Op types the importer does not support (or not at the model's opset).
    pub ops: Vec<UnsupportedOp>,
    /// Nodes of supported ops in forms the importer does not have.
    pub nodes: Vec<NodeIssue>,
}

impl Coverage {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.nodes.is_empty()
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.ops.is_empty() {
            parts.push(format!(
                "the model uses {} unsupported op type(s): {}",
                self.ops.len(),
                list_unsupported(&self.ops)
            ));
        }
        if !self.nodes.is_empty() {
            let nodes: Vec<String> =
                self.nodes.iter().map(|n| format!("`{}` ({}): {}", n.node, n.op_type, n.reason)).collect();
            parts.push(format!(
                "{} node(s) need a form the importer does not have: {}",
                self.nodes.len(),
                nodes.join("; ")
            ));
        }
        write!(f, "{}", parts.join("; and "))
    }
}

/// Everything that can go wrong while reading or converting a model.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read `{path}`")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX ModelProto (wrong file, or truncated).
    #[error(
        "`{path}` is not a readable ONNX model ({reason}); export it again with tf2onnx, Keras' model.export(format=\"onnx\") or torch.onnx.export"
    )]
    NotOnnx {
        /// The path.
        path: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// The model uses ops, opsets or node forms this importer does not support: all of them,
    /// listed at once.
    #[error("{0}")]
    Unsupported(Coverage),
    /// A node is malformed or its inputs do not fit.
    #[error("node `{node}` ({op_type}): {reason}")]
    Node {
        /// The node's name.
        node: String,
        /// Its op type.
        op_type: String,
        /// What is wrong.
        reason: String,
    },
    /// The model as a whole is malformed (missing graph, unknown tensor, symbolic dims, ...).
    #[error("{0}")]
    Model(String),
    /// The engine rejected the graph.
    #[error(transparent)]
    Engine(#[from] distk_engine::EngineError),
}

fn list_unsupported(ops: &[UnsupportedOp]) -> String {
    ops.iter()
        .map(|u| {
            let more = if u.count > u.nodes.len() { ", ..." } else { "" };
            let opset = u.opset.as_ref().map(|o| format!(" {o}")).unwrap_or_default();
            format!("{} x{} (nodes: {}{more}){opset}", u.op_type, u.count, u.nodes.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result with [`ImportError`].
pub type Result<T> = std::result::Result<T, ImportError>;
