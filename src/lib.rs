//! distk-gpu: distributed training of imported ONNX models on GPUs, in Rust. The binary's commands,
//! data input and the benchmark harness live here; the engine, importer and network layers are
//! the workspace crates `distk-engine`, `distk-onnx` and `distk-net`.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod data;
pub mod distributed;
pub mod job_spec;
pub mod predictor;
pub mod punchcard;
pub mod runtime;
pub mod storage;
pub mod trainers;
pub mod training;
pub mod transform;
