//! The memory budget of this process's executors (`--max-memory`): a compiled graph's buffers
//! (activations, inputs, constants, parameters, gradients, optimizer state) are counted before any
//! is allocated, and a graph that needs more than the budget is refused with one error naming its
//! largest tensor, instead of an allocation that aborts the process.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{EngineError, Result};
use crate::graph::{Graph, ValueKind};
use crate::shape::numel;

static BUDGET: AtomicU64 = AtomicU64::new(u64::MAX);
static ON_DEVICES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the budget also bounds graphs compiled for a GPU (whose buffers live in the device's
/// memory, not the host's): only when the user gave it.
pub fn set_on_devices(on: bool) {
    ON_DEVICES.store(on, Ordering::SeqCst);
}

/// See [`set_on_devices`].
pub fn on_devices() -> bool {
    ON_DEVICES.load(Ordering::SeqCst)
}

/// Sets the budget in bytes for every graph compiled from now on.
pub fn set_budget(bytes: u64) {
    BUDGET.store(bytes, Ordering::SeqCst);
}

/// The budget in bytes (`u64::MAX`: none).
pub fn budget() -> u64 {
    BUDGET.load(Ordering::SeqCst)
}

/// Bytes an executor holds for `graph` with elements of `elem_bytes`, and its largest tensor
/// (name and bytes).
pub fn graph_bytes(graph: &Graph, elem_bytes: u64) -> (u64, Option<(String, u64)>) {
    let mut total = 0u64;
    let mut largest: Option<(String, u64)> = None;
    for v in &graph.values {
        let n = match &v.kind {
            ValueKind::Activation | ValueKind::Input => numel(&v.shape) as u64,
            ValueKind::Constant(c) => c.len() as u64,
            ValueKind::Param { .. } => 0,
        };
        let bytes = n.saturating_mul(elem_bytes);
        total = total.saturating_add(bytes);
        if largest.as_ref().is_none_or(|(_, b)| bytes > *b) {
            largest = Some((v.name.clone(), bytes));
        }
    }
    let trainable = graph.layout.trainable_len() as u64;
    let slots = graph.optimizer.map_or(0, |o| o.initial_state().len() as u64);
    let params = (graph.initial_params.len() as u64).saturating_add(trainable.saturating_mul(1 + slots));
    (total.saturating_add(params.saturating_mul(elem_bytes)), largest)
}

/// Refuses `graph` when its buffers exceed the budget.
pub fn check(graph: &Graph, elem_bytes: u64) -> Result<()> {
    let limit = budget();
    let (need, largest) = graph_bytes(graph, elem_bytes);
    if need <= limit {
        return Ok(());
    }
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let largest =
        largest.map_or(String::new(), |(name, b)| format!("; its largest tensor, `{name}`, takes {:.1} MiB", mib(b)));
    Err(EngineError::Limit(format!(
        "the model needs {:.1} MiB of buffers at this batch size{largest}: more than the memory budget of {:.1} MiB (--max-memory); lower --batch-size or raise --max-memory",
        mib(need),
        mib(limit)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use crate::ops::{Op, UnaryOp};

    #[test]
    fn a_graph_over_the_budget_is_refused_naming_its_largest_tensor() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", vec![4, 1000]);
        let y = b.node("big", Op::Unary(UnaryOp::Relu), &[x]).unwrap();
        b.output(y);
        let g = b.finish();
        let (need, largest) = graph_bytes(&g, 4);
        assert_eq!(need, 2 * 4000 * 4);
        assert_eq!(largest.map(|l| l.1), Some(16_000));
        set_budget(need);
        assert!(check(&g, 4).is_ok());
        set_budget(need - 1);
        let e = check(&g, 4).unwrap_err().to_string();
        set_budget(u64::MAX);
        assert!(e.contains("needs 0.0 MiB") && e.contains("--max-memory") && e.contains("--batch-size"), "{e}");
    }
}
