//! The job a parameter server hands each worker: the hyper-parameters as JSON and the model's ONNX
//! bytes, so a worker needs only an address, a secret and its data.

use anyhow::{Context, Result, bail};
use distk_onnx::OnnxModel;

use crate::job_spec::JobSpec;

/// Encodes a job: `[u32 LE json length][json][onnx bytes]`.
pub fn encode(spec: &JobSpec, model: &OnnxModel) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(spec)?;
    let mut out = Vec::with_capacity(4 + json.len() + model.bytes.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&model.bytes);
    Ok(out)
}

/// Decodes a job the server sent.
pub fn decode(bytes: &[u8]) -> Result<(JobSpec, OnnxModel)> {
    if bytes.len() < 4 {
        bail!("the job from the parameter server is truncated");
    }
    let n = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if 4 + n > bytes.len() {
        bail!("the job from the parameter server is truncated");
    }
    let spec: JobSpec =
        serde_json::from_slice(&bytes[4..4 + n]).context("the job from the parameter server does not parse")?;
    let model = OnnxModel::from_bytes(bytes[4 + n..].to_vec(), "<model from the parameter server>")?;
    Ok((spec, model))
}
