//! distk-onnx: reads ONNX models exported by Keras (tf2onnx, Keras 3) and PyTorch into the engine's IR
//! for a bound batch size, and describes what an export lost for training.

pub mod attrs;
pub mod convert;
pub mod error;
pub mod export;
pub mod fold;
pub mod inspect;
pub mod model;
pub mod tensor;

pub use convert::{ImportOptions, ImportedGraph, SUPPORTED_OPS, import, import_with, unsupported_ops};
pub use error::{ImportError, Result, UnsupportedOp};
pub use inspect::{ModelReport, inspect};
pub use model::{Dim, OnnxModel, TensorSig};
