//! distk-onnx: reads ONNX models exported by Keras (tf2onnx, Keras 3) and PyTorch into the engine's IR
//! for a bound batch size, and describes what an export lost for training.
//!
//! Each supported ONNX op has one file under [`ops`] (its spec, import and constant fold) and one
//! line in [`ops::REGISTRY`]; [`pipeline`] runs the phases of an import.

pub mod context;
pub mod coverage;
pub mod error;
pub mod export;
pub mod fold;
pub mod inspect;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod tensor;
pub mod trainable;
pub mod untie;

pub use coverage::{inputs_needed_at_import, unsupported_ops};
pub use error::{Coverage, ImportError, NodeIssue, Result, UnsupportedOp};
pub use inspect::{ModelReport, inspect};
pub use model::{Dim, OnnxModel, TensorSig};
pub use ops::supported_ops;
pub use pipeline::{ImportOptions, ImportedGraph, import, import_with};
pub use trainable::TrainDecision;
