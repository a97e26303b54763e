//! What training reads from and writes into an ONNX model: its input and output widths, and the
//! model file with trained initializers.

use std::collections::HashMap;

use anyhow::{Result, bail};
use distk_onnx::OnnxModel;

use crate::data::atomic::write_atomically;
use crate::training::TrainSession;

/// Values per input row and outputs per row of a one-input, one-output model.
/// A fixed batch declared by the input (see [`check_fixed_batch`]) is not counted into the widths.
pub fn model_widths(model: &OnnxModel) -> Result<(usize, usize)> {
    let batch = fixed_batch(model)?.unwrap_or(1);
    let g = distk_onnx::import(model, batch)?.graph;
    if g.inputs.len() != 1 || g.outputs.len() != 1 {
        bail!("distk-gpu trains and evaluates models with one input and one output");
    }
    let per_row = |shape: &[usize]| distk_engine::shape::numel(shape) / batch;
    Ok((per_row(g.shape(g.inputs[0])), per_row(g.shape(g.outputs[0]))))
}

/// The batch `model`'s input declares, when it is fixed (an export traced without a dynamic batch
/// axis); `None` for the usual symbolic batch.
pub fn fixed_batch(model: &OnnxModel) -> Result<Option<usize>> {
    Ok(match model.inputs()?.first().and_then(|i| i.dims.first().cloned()) {
        Some(distk_onnx::Dim::Fixed(n)) if n > 0 => Some(n),
        _ => None,
    })
}

/// Refuses to run a model with a fixed batch above 1 where rows come in batches of any size
/// (`predict`, `evaluate`'s per-row pass): the last batch could not be cut to that batch.
pub fn refuse_fixed_batch_for_inference(model: &OnnxModel) -> Result<()> {
    if let Some(n) = fixed_batch(model)?
        && n > 1
    {
        let name = model.inputs()?.first().map(|i| i.name.clone()).unwrap_or_default();
        bail!(
            "the model's input `{name}` has a fixed batch of {n}: predict and evaluate take rows in batches of any size; export the model with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={{\"{name}\": {{0: \"batch\"}}}}) or dynamic=True; tf2onnx and Keras keep it dynamic)"
        );
    }
    Ok(())
}

/// Refuses to train `model` with batches of `batch` rows when its input declares another fixed
/// batch (an export traced with one example and no dynamic batch axis): the rows would be cut
/// into the wrong shape. Names the input, its shape and the way out.
pub fn check_fixed_batch(model: &OnnxModel, batch: usize) -> Result<()> {
    let inputs = model.inputs()?;
    let Some(input) = inputs.first() else { return Ok(()) };
    if let Some(distk_onnx::Dim::Fixed(n)) = input.dims.first()
        && *n != batch
    {
        let shape: Vec<String> = input
            .dims
            .iter()
            .map(|d| match d {
                distk_onnx::Dim::Fixed(k) => k.to_string(),
                distk_onnx::Dim::Symbolic(s) if s.is_empty() => "?".to_string(),
                distk_onnx::Dim::Symbolic(s) => s.clone(),
            })
            .collect();
        bail!(
            "the model's input `{}` has a fixed batch of {n} (shape [{}]) but --batch-size is {batch}: give --batch-size {n}, or export the model with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={{\"{}\": {{0: \"batch\"}}}}) or dynamic=True; tf2onnx and Keras keep it dynamic)",
            input.name,
            shape.join(", "),
            input.name
        );
    }
    Ok(())
}

/// Writes `session`'s parameters into a copy of the model file (with the biases the import added).
pub fn write_trained_model(
    model: &OnnxModel,
    session: &mut TrainSession,
    out: &std::path::Path,
    added_biases: bool,
) -> Result<()> {
    let params = session.params()?;
    let bytes = trained_model_bytes(model, session.layout(), &params, added_biases)?;
    write_atomically(out, |f| {
        use std::io::Write;
        Ok(f.write_all(&bytes)?)
    })
}

/// The model file with its initializers replaced by `params` (laid out by `layout`), plus the
/// biases the import added when `added_biases`.
pub fn trained_model_bytes(
    model: &OnnxModel,
    layout: &distk_engine::ParamLayout,
    params: &[f32],
    added_biases: bool,
) -> Result<Vec<u8>> {
    let values: HashMap<String, Vec<f32>> =
        layout.slots.iter().map(|s| (s.name.clone(), params[s.offset..s.offset + s.len].to_vec())).collect();
    let mut base = model.bytes.clone();
    if added_biases {
        let biases: Vec<distk_onnx::export::AddedBias> = distk_onnx::inspect::missing_biases(model)
            .iter()
            .filter_map(|n| {
                let output = n.output.first()?.clone();
                let len = layout.find(&distk_onnx::inspect::added_bias_name(&output))?.len;
                Some(distk_onnx::export::AddedBias { output, op_type: n.op_type.clone(), len })
            })
            .collect();
        base = distk_onnx::export::add_biases(&base, &biases)?;
    }
    let aliases: Vec<(String, Vec<usize>)> = distk_onnx::trainable::aliases(model)
        .into_iter()
        .filter_map(|(alias, _)| layout.find(&alias).map(|s| (alias, s.shape.clone())))
        .collect();
    if !aliases.is_empty() {
        base = distk_onnx::export::untie_aliases(&base, &aliases)?;
    }
    Ok(distk_onnx::export::replace_initializers(&base, &values)?)
}
