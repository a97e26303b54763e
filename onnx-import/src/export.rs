//! Writing trained values back into the original model bytes. Only the `raw_data`/`float_data` of
//! the float initializers that changed are rewritten; every other byte of the file (graph, names,
//! metadata, fields this crate's protobuf types do not know) is kept as it was, so downstream tools
//! keep working. The protobuf wire format is walked directly for that reason.

use std::collections::HashMap;

use crate::error::{ImportError, Result};

const MODEL_GRAPH: u64 = 7;
const GRAPH_INITIALIZER: u64 = 5;
const TENSOR_FLOAT_DATA: u64 = 4;
const TENSOR_NAME: u64 = 8;
const TENSOR_RAW_DATA: u64 = 9;

fn bad(what: &str) -> ImportError {
    ImportError::Model(format!("cannot rewrite the model: malformed protobuf ({what})"))
}

fn read_varint(b: &[u8], at: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or_else(|| bad("truncated varint"))?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint too long"))
}

fn write_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One field: its number, wire type, the whole field's bytes, and (length-delimited) its payload.
struct Field<'a> {
    number: u64,
    whole: &'a [u8],
    payload: Option<&'a [u8]>,
}

fn fields(b: &[u8]) -> Result<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let start = at;
        let key = read_varint(b, &mut at)?;
        let (number, wire) = (key >> 3, key & 7);
        let payload = match wire {
            0 => {
                read_varint(b, &mut at)?;
                None
            }
            1 => {
                at += 8;
                None
            }
            5 => {
                at += 4;
                None
            }
            2 => {
                let len = read_varint(b, &mut at)? as usize;
                let end = at.checked_add(len).filter(|&e| e <= b.len()).ok_or_else(|| bad("length past the end"))?;
                let p = &b[at..end];
                at = end;
                Some(p)
            }
            _ => return Err(bad("unsupported wire type")),
        };
        if at > b.len() {
            return Err(bad("field past the end"));
        }
        out.push(Field { number, whole: &b[start..at], payload });
    }
    Ok(out)
}

fn put_bytes_field(number: u64, payload: &[u8], out: &mut Vec<u8>) {
    write_varint((number << 3) | 2, out);
    write_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

fn rewrite_tensor(t: &[u8], values: &HashMap<String, Vec<f32>>, done: &mut Vec<String>) -> Result<Option<Vec<u8>>> {
    let fs = fields(t)?;
    let name = fs
        .iter()
        .find(|f| f.number == TENSOR_NAME)
        .and_then(|f| f.payload)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let Some(v) = values.get(&name) else { return Ok(None) };
    let mut out = Vec::with_capacity(t.len());
    for f in &fs {
        if f.number != TENSOR_FLOAT_DATA && f.number != TENSOR_RAW_DATA {
            out.extend_from_slice(f.whole);
        }
    }
    let raw: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    put_bytes_field(TENSOR_RAW_DATA, &raw, &mut out);
    done.push(name);
    Ok(Some(out))
}

/// Returns the model bytes with the float initializers named in `values` replaced (as raw_data).
/// Every name must be an initializer of the graph.
pub fn replace_initializers(model: &[u8], values: &HashMap<String, Vec<f32>>) -> Result<Vec<u8>> {
    let mut done = Vec::new();
    let out = with_graph(model, |graph| {
        let mut g = Vec::with_capacity(graph.len());
        for gf in fields(graph)? {
            match (gf.number, gf.payload) {
                (GRAPH_INITIALIZER, Some(t)) => match rewrite_tensor(t, values, &mut done)? {
                    Some(nt) => put_bytes_field(GRAPH_INITIALIZER, &nt, &mut g),
                    None => g.extend_from_slice(gf.whole),
                },
                _ => g.extend_from_slice(gf.whole),
            }
        }
        Ok(g)
    })?;
    if let Some(missing) = values.keys().find(|k| !done.contains(k)) {
        return Err(ImportError::Model(format!("cannot rewrite the model: it has no initializer `{missing}`")));
    }
    Ok(out)
}

/// The model with its graph field replaced by what `rewrite` makes of the graph's bytes; every
/// other field is copied as it is.
fn with_graph(model: &[u8], mut rewrite: impl FnMut(&[u8]) -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(model.len());
    for f in fields(model)? {
        match (f.number, f.payload) {
            (MODEL_GRAPH, Some(graph)) => put_bytes_field(MODEL_GRAPH, &rewrite(graph)?, &mut out),
            _ => out.extend_from_slice(f.whole),
        }
    }
    Ok(out)
}

/// The bytes of every field of the model except the initializers' data, in order: equal for a
/// model and its rewritten copy (what the round-trip test compares).
pub fn bytes_outside_initializer_data(model: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for f in fields(model)? {
        match (f.number, f.payload) {
            (MODEL_GRAPH, Some(graph)) => {
                for gf in fields(graph)? {
                    match (gf.number, gf.payload) {
                        (GRAPH_INITIALIZER, Some(t)) => {
                            for tf in fields(t)? {
                                if tf.number != TENSOR_FLOAT_DATA && tf.number != TENSOR_RAW_DATA {
                                    out.extend_from_slice(tf.whole);
                                }
                            }
                        }
                        _ => out.extend_from_slice(gf.whole),
                    }
                }
            }
            _ => out.extend_from_slice(f.whole),
        }
    }
    Ok(out)
}

const GRAPH_NODE: u64 = 1;
const NODE_INPUT: u64 = 1;
const NODE_OUTPUT: u64 = 2;
const NODE_NAME: u64 = 3;
const NODE_OP_TYPE: u64 = 4;
const TENSOR_DIMS: u64 = 1;
const TENSOR_DATA_TYPE: u64 = 2;

/// A bias `--add-missing-biases` added: the output of the node it belongs to, that node's op type,
/// and the bias length.
#[derive(Clone, Debug)]
pub struct AddedBias {
    /// The node's (first) output.
    pub output: String,
    /// MatMul, Gemm or Conv.
    pub op_type: String,
    /// Values in the bias.
    pub len: usize,
}

fn put_varint_field(number: u64, v: u64, out: &mut Vec<u8>) {
    write_varint(number << 3, out);
    write_varint(v, out);
}

/// A float32 initializer of zeros of shape `dims`.
fn zero_tensor(name: &str, dims: &[usize]) -> Vec<u8> {
    let mut t = Vec::new();
    for &d in dims {
        put_varint_field(TENSOR_DIMS, d as u64, &mut t);
    }
    put_varint_field(TENSOR_DATA_TYPE, 1, &mut t);
    put_bytes_field(TENSOR_NAME, name.as_bytes(), &mut t);
    put_bytes_field(TENSOR_RAW_DATA, &vec![0u8; dims.iter().product::<usize>() * 4], &mut t);
    t
}

/// The first string field `number` of a node's fields (its op type, first output, ...).
fn node_text(nf: &[Field<'_>], number: u64) -> Option<String> {
    nf.iter().find(|x| x.number == number).and_then(|x| x.payload).map(|p| String::from_utf8_lossy(p).into_owned())
}

/// Writes the biases the importer added (`ImportOptions::add_missing_biases`) into the model: a
/// zero initializer each, given to Conv and Gemm as their bias input, and added after MatMul by a
/// new Add node that takes over the MatMul's output name (so every consumer sees the biased value).
/// Fill in trained values afterwards with [`replace_initializers`].
pub fn add_biases(model: &[u8], biases: &[AddedBias]) -> Result<Vec<u8>> {
    let mut placed = Vec::new();
    let out = with_graph(model, |graph| {
        let mut g = Vec::with_capacity(graph.len());
        for gf in fields(graph)? {
            let (GRAPH_NODE, Some(node)) = (gf.number, gf.payload) else {
                g.extend_from_slice(gf.whole);
                continue;
            };
            let nf = fields(node)?;
            let first_output = node_text(&nf, NODE_OUTPUT);
            let Some(bias) = first_output.and_then(|o| biases.iter().find(|b| b.output == o)) else {
                g.extend_from_slice(gf.whole);
                continue;
            };
            let bias_name = crate::inspect::added_bias_name(&bias.output);
            if bias.op_type == "MatMul" {
                let renamed = format!("{}/distk_no_bias", bias.output);
                let mut n = Vec::new();
                for x in &nf {
                    if x.number == NODE_OUTPUT {
                        put_bytes_field(NODE_OUTPUT, renamed.as_bytes(), &mut n);
                    } else {
                        n.extend_from_slice(x.whole);
                    }
                }
                put_bytes_field(GRAPH_NODE, &n, &mut g);
                let mut add = Vec::new();
                put_bytes_field(NODE_INPUT, renamed.as_bytes(), &mut add);
                put_bytes_field(NODE_INPUT, bias_name.as_bytes(), &mut add);
                put_bytes_field(NODE_OUTPUT, bias.output.as_bytes(), &mut add);
                put_bytes_field(NODE_NAME, format!("{}/distk_bias_add", bias.output).as_bytes(), &mut add);
                put_bytes_field(NODE_OP_TYPE, b"Add", &mut add);
                put_bytes_field(GRAPH_NODE, &add, &mut g);
            } else {
                let mut n = node.to_vec();
                put_bytes_field(NODE_INPUT, bias_name.as_bytes(), &mut n);
                put_bytes_field(GRAPH_NODE, &n, &mut g);
            }
            placed.push(bias.output.clone());
        }
        for b in biases {
            put_bytes_field(
                GRAPH_INITIALIZER,
                &zero_tensor(&crate::inspect::added_bias_name(&b.output), &[b.len]),
                &mut g,
            );
        }
        Ok(g)
    })?;
    if let Some(b) = biases.iter().find(|b| !placed.contains(&b.output)) {
        return Err(ImportError::Model(format!("cannot add a bias: no node writes `{}`", b.output)));
    }
    Ok(out)
}

/// Unties initializer aliases: each `(alias, dims)` (the output of an Identity of an initializer,
/// a parameter of its own in training) becomes an initializer of its own (zeros of `dims`, to be
/// filled by [`replace_initializers`]) and its Identity node is dropped.
pub fn untie_aliases(model: &[u8], aliases: &[(String, Vec<usize>)]) -> Result<Vec<u8>> {
    with_graph(model, |graph| {
        let mut g = Vec::with_capacity(graph.len());
        for gf in fields(graph)? {
            if let (GRAPH_NODE, Some(node)) = (gf.number, gf.payload) {
                let nf = fields(node)?;
                let is_identity = node_text(&nf, NODE_OP_TYPE).as_deref() == Some("Identity");
                if is_identity && node_text(&nf, NODE_OUTPUT).is_some_and(|o| aliases.iter().any(|(a, _)| *a == o)) {
                    continue;
                }
            }
            g.extend_from_slice(gf.whole);
        }
        for (name, dims) in aliases {
            put_bytes_field(GRAPH_INITIALIZER, &zero_tensor(name, dims), &mut g);
        }
        Ok(g)
    })
}
