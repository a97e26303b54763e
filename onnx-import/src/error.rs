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
    /// The model uses ops this importer does not support: all of them, listed at once.
    #[error("the model uses {} unsupported op type(s): {}", .0.len(), list_unsupported(.0))]
    Unsupported(Vec<UnsupportedOp>),
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
            format!("{} x{} (nodes: {}{more})", u.op_type, u.count, u.nodes.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Result with [`ImportError`].
pub type Result<T> = std::result::Result<T, ImportError>;
