//! A loaded ONNX model: the original bytes, the decoded ModelProto, its opset and its signature.

use std::path::Path;

use tract_onnx::pb;
use tract_onnx::prelude::Framework;

use crate::error::{ImportError, Result};

/// A dimension of a graph input or output as the file declares it.
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic size (its name, possibly empty): the batch dim.
    Symbolic(String),
}

/// A graph input or output with its declared shape.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSig {
    /// The tensor's name.
    pub name: String,
    /// Its declared dims.
    pub dims: Vec<Dim>,
    /// Its element type (float32 for an output that declares none).
    pub dtype: distk_engine::DType,
}

impl TensorSig {
    /// The shape with symbolic dims bound to `batch`.
    pub fn bind(&self, batch: usize) -> Vec<usize> {
        self.dims.iter().map(|d| if let Dim::Fixed(n) = d { *n } else { batch }).collect()
    }

    /// The dims for display, symbolic ones as their name (or `N`).
    pub fn display(&self) -> String {
        let parts: Vec<String> = self
            .dims
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Symbolic(s) if s.is_empty() => "N".into(),
                Dim::Symbolic(s) => s.clone(),
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }
}

/// A decoded ONNX model.
#[derive(Clone, Debug)]
pub struct OnnxModel {
    /// Where it came from (for messages).
    pub path: String,
    /// The file's bytes, kept so export can rewrite initializers without re-encoding the rest.
    pub bytes: Vec<u8>,
    /// The decoded protobuf.
    pub proto: pb::ModelProto,
    /// The default-domain opset version.
    pub opset: i64,
}

impl OnnxModel {
    /// Reads and decodes a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|source| ImportError::Io { path: path.display().to_string(), source })?;
        Self::from_bytes(bytes, &path.display().to_string())
    }

    /// Decodes a model from bytes; `path` names it in messages.
    pub fn from_bytes(bytes: Vec<u8>, path: &str) -> Result<Self> {
        let not_onnx = |reason: String| ImportError::NotOnnx { path: path.to_string(), reason };
        let mut proto =
            tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| not_onnx(format!("{e:#}")))?;
        // Layer weights the exporter merged become separate parameters again; the bytes
        // export rewrites are those of the untied graph.
        let mut bytes = bytes;
        if !crate::untie::split_merged_weights(&mut proto).is_empty() {
            bytes = prost::Message::encode_to_vec(&proto);
        }
        let graph = proto.graph.as_ref().ok_or_else(|| not_onnx("it has no graph".into()))?;
        if graph.node.is_empty() || graph.output.is_empty() {
            return Err(not_onnx("its graph has no nodes or no outputs".into()));
        }
        let opset =
            proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(1, |o| o.version);
        Ok(OnnxModel { path: path.to_string(), bytes, proto, opset })
    }

    /// The graph (present: checked at load).
    pub fn graph(&self) -> &pb::GraphProto {
        // `from_bytes` refuses models without a graph.
        self.proto.graph.as_ref().expect("checked at load")
    }

    /// The graph inputs the caller feeds (initializers listed as inputs, as old IR versions do, excluded).
    pub fn inputs(&self) -> Result<Vec<TensorSig>> {
        let g = self.graph();
        g.input.iter().filter(|i| !g.initializer.iter().any(|t| t.name == i.name)).map(|v| sig(v, false)).collect()
    }

    /// The graph outputs (an output without declared type has no dims here; the importer infers them).
    pub fn outputs(&self) -> Result<Vec<TensorSig>> {
        self.graph().output.iter().map(|v| sig(v, true)).collect()
    }
}

fn sig(v: &pb::ValueInfoProto, is_output: bool) -> Result<TensorSig> {
    use pb::tensor_shape_proto::dimension::Value;
    use pb::type_proto::Value as TV;
    let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(TV::TensorType(t)) => t,
        None if is_output => {
            return Ok(TensorSig { name: v.name.clone(), dims: Vec::new(), dtype: distk_engine::DType::F32 });
        }
        _ => return Err(ImportError::Model(format!("graph input/output `{}` is not a tensor", v.name))),
    };
    let dtype = engine_dtype(tensor.elem_type).ok_or_else(|| {
        ImportError::Model(format!(
            "graph input/output `{}` has element type {} ({}); the engine takes float32, int64, int32 (and narrower integers) and bool: export the model with one of those",
            v.name,
            tensor.elem_type,
            crate::tensor::elem::name(tensor.elem_type)
        ))
    })?;
    let dims = match tensor.shape.as_ref() {
        Some(s) => s
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(Value::DimValue(n)) if *n > 0 => Dim::Fixed(*n as usize),
                Some(Value::DimParam(p)) => Dim::Symbolic(p.clone()),
                _ => Dim::Symbolic(String::new()),
            })
            .collect(),
        None if is_output => Vec::new(),
        None => return Err(ImportError::Model(format!("graph input `{}` declares no shape", v.name))),
    };
    Ok(TensorSig { name: v.name.clone(), dims, dtype })
}

/// The engine type of an ONNX element type, when the engine holds it (integers narrower than
/// 32 bits as int32: every value of theirs is exact in the engine's storage).
pub fn engine_dtype(elem_type: i32) -> Option<distk_engine::DType> {
    use crate::tensor::elem;
    use distk_engine::DType;
    match elem_type {
        elem::FLOAT => Some(DType::F32),
        elem::INT64 => Some(DType::I64),
        elem::INT32 | elem::INT8 | elem::UINT8 | elem::INT16 | elem::UINT16 => Some(DType::I32),
        elem::BOOL => Some(DType::Bool),
        _ => None,
    }
}
