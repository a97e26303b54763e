//! Static memory planning: where every value lives. Parameters sit in the parameter buffer; every
//! other value gets an offset in one activation arena. Inputs, constants and outputs are permanent;
//! activations share space by liveness (first fit); a Reshape aliases its input.

use crate::graph::{Graph, ValueKind};
use crate::op::Op;
use crate::shape::numel;

/// Alignment of arena offsets, in f32 elements (256 bytes).
pub const ARENA_ALIGN: usize = 64;

/// Which buffer a value lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The flat parameter buffer.
    Params,
    /// The activation arena.
    Arena,
    /// The flat gradient buffer (laid out like the trainable parameters).
    Grads,
    /// The optimizer's state slots.
    OptState,
}

/// Where a value lives: a region and an element offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// The buffer.
    pub region: Region,
    /// Offset in f32 elements.
    pub offset: usize,
}

/// The result of planning: a location per value, scratch space per node, and the arena's size.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Location of each value, indexed by value id.
    pub locations: Vec<Location>,
    /// Scratch offset in the arena for nodes that asked for scratch space.
    pub scratch: Vec<Option<usize>>,
    /// Arena length in elements.
    pub arena_len: usize,
}

/// First-fit allocator over a growing arena.
#[derive(Default)]
struct Arena {
    live: Vec<(usize, usize)>,
    high: usize,
}

impl Arena {
    fn alloc(&mut self, len: usize) -> usize {
        let len = len.max(1).div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        self.live.sort_unstable();
        let mut at = 0;
        for &(o, l) in &self.live {
            if o >= at + len {
                break;
            }
            at = at.max(o + l);
        }
        self.live.push((at, len));
        self.high = self.high.max(at + len);
        at
    }

    fn free(&mut self, offset: usize) {
        self.live.retain(|&(o, _)| o != offset);
    }
}

/// Plans memory for `graph`. `scratch_len(node)` gives the temporary elements a node needs.
pub fn plan_memory(graph: &Graph, scratch_len: impl Fn(usize) -> usize) -> MemoryPlan {
    let nv = graph.values.len();
    // Alias roots: a Reshape output shares its input's storage.
    let mut root: Vec<usize> = (0..nv).collect();
    for n in &graph.nodes {
        if matches!(n.op, Op::Reshape { .. }) {
            root[n.output] = root[n.inputs[0]];
        }
    }
    // The last node index at which each root's storage is needed.
    let last = graph.last_uses();
    let mut root_last: Vec<Option<usize>> = vec![None; nv];
    for v in 0..nv {
        if let Some(l) = last[v] {
            let r = root[v];
            root_last[r] = Some(root_last[r].map_or(l, |x: usize| x.max(l)));
        }
    }
    let mut arena = Arena::default();
    let mut locations = vec![Location { region: Region::Arena, offset: 0 }; nv];
    for (v, info) in graph.values.iter().enumerate() {
        match &info.kind {
            ValueKind::Param { slot } => {
                locations[v] = Location { region: Region::Params, offset: graph.layout.slots[*slot].offset };
            }
            ValueKind::Input | ValueKind::Constant(_) => {
                locations[v] = Location { region: Region::Arena, offset: arena.alloc(numel(&info.shape)) };
            }
            ValueKind::Activation => {}
        }
    }
    let mut pinned = vec![false; nv];
    for &(slot, v) in &graph.param_grads {
        locations[v] = Location { region: Region::Grads, offset: graph.layout.slots[slot].offset };
        pinned[v] = true;
    }
    let mut scratch = vec![None; graph.nodes.len()];
    let mut frees: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        let o = n.output;
        if root[o] != o {
            locations[o] = locations[root[o]];
        } else if pinned[o] {
            // A parameter gradient: it lives in the gradient buffer.
        } else {
            locations[o] = Location { region: Region::Arena, offset: arena.alloc(numel(graph.shape(o))) };
            match root_last[o] {
                Some(l) if l != usize::MAX => frees[l].push(locations[o].offset),
                Some(_) => {}
                None => frees[i].push(locations[o].offset),
            }
        }
        let s = scratch_len(i);
        if s > 0 {
            let at = arena.alloc(s);
            scratch[i] = Some(at);
            frees[i].push(at);
        }
        for off in std::mem::take(&mut frees[i]) {
            arena.free(off);
        }
    }
    MemoryPlan { locations, scratch, arena_len: arena.high.max(ARENA_ALIGN) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use crate::op::UnaryOp;

    #[test]
    fn dead_activations_are_reused_and_live_ones_never_overlap() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", vec![100]);
        let a = b.node("a", Op::Unary(UnaryOp::Relu), &[x]).unwrap();
        let c = b.node("c", Op::Unary(UnaryOp::Exp), &[a]).unwrap();
        let r = b.node("r", Op::Reshape { shape: vec![10, 10] }, &[c]).unwrap();
        let d = b.node("d", Op::Unary(UnaryOp::Tanh), &[r]).unwrap();
        b.output(d);
        let g = b.finish();
        let p = plan_memory(&g, |_| 0);
        assert_eq!(p.locations[r], p.locations[c]);
        // `a` is dead once `c` is computed, so `d` may take its place; `c` is still live then.
        assert_ne!(p.locations[d].offset, p.locations[c].offset);
        assert_ne!(p.locations[a].offset, p.locations[c].offset);
        assert_eq!(p.locations[d].offset, p.locations[a].offset);
    }
}
