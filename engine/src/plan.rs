//! Static memory planning: where every value lives. Parameters sit in the parameter buffer; every
//! other value gets an offset in an activation arena. Inputs, constants and outputs are permanent;
//! activations share space by liveness (first fit); a Reshape aliases its input. The arena is split
//! into chunks of at most `chunk_capacity` elements (the adapter's storage-binding limit), each its own
//! buffer, so the activations of a step may exceed one binding; every tensor lies within one chunk.

use crate::graph::{Graph, ValueKind};
use crate::ops::Op;
use crate::shape::numel;

/// Alignment of arena offsets, in f32 elements (256 bytes).
pub const ARENA_ALIGN: usize = 64;

/// Which buffer a value lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Region {
    /// The flat parameter buffer.
    Params,
    /// Chunk `k` of the activation arena.
    Arena(u16),
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

/// The result of planning: a location per value, scratch space per node, and the arena chunks' sizes.
#[derive(Clone, Debug)]
pub struct MemoryPlan {
    /// Location of each value, indexed by value id.
    pub locations: Vec<Location>,
    /// Scratch space for nodes that asked for it.
    pub scratch: Vec<Option<Location>>,
    /// Length in elements of each arena chunk.
    pub arena_lens: Vec<usize>,
}

/// First-fit allocator over one chunk.
#[derive(Default)]
struct Chunk {
    live: Vec<(usize, usize)>,
    high: usize,
}

impl Chunk {
    fn fit(&mut self, len: usize, capacity: usize) -> Option<usize> {
        self.live.sort_unstable();
        let mut at = 0;
        for &(o, l) in &self.live {
            if o >= at + len {
                break;
            }
            at = at.max(o + l);
        }
        if at + len > capacity {
            return None;
        }
        self.live.push((at, len));
        self.high = self.high.max(at + len);
        Some(at)
    }
}

/// A byte count for messages.
pub fn human_bytes(b: usize) -> String {
    if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

/// First-fit allocator over chunks of bounded size.
struct Arena {
    chunks: Vec<Chunk>,
    capacity: usize,
}

impl Arena {
    fn alloc(&mut self, len: usize, what: &str) -> Result<Location, String> {
        let len = len.max(1).div_ceil(ARENA_ALIGN) * ARENA_ALIGN;
        if len > self.capacity {
            return Err(format!(
                "{what} needs {}, more than the adapter binds in one buffer ({})",
                human_bytes(len * 4),
                human_bytes(self.capacity * 4)
            ));
        }
        for (k, c) in self.chunks.iter_mut().enumerate() {
            if let Some(at) = c.fit(len, self.capacity) {
                return Ok(Location { region: Region::Arena(k as u16), offset: at });
            }
        }
        let mut c = Chunk::default();
        let at = c.fit(len, self.capacity).ok_or("chunk capacity")?;
        self.chunks.push(c);
        Ok(Location { region: Region::Arena((self.chunks.len() - 1) as u16), offset: at })
    }

    fn free(&mut self, loc: Location) {
        if let Region::Arena(k) = loc.region {
            self.chunks[k as usize].live.retain(|&(o, _)| o != loc.offset);
        }
    }
}

/// Plans memory for `graph`. `scratch_len(node)` gives the temporary elements a node needs;
/// `chunk_capacity` is the most elements one arena buffer may hold. Fails, naming the value, when a
/// single tensor is larger than a chunk.
pub fn plan_memory(
    graph: &Graph,
    scratch_len: impl Fn(usize) -> usize,
    chunk_capacity: usize,
) -> Result<MemoryPlan, String> {
    let nv = graph.values.len();
    // Alias roots: a Reshape output shares its input's storage.
    let mut root: Vec<usize> = (0..nv).collect();
    for n in &graph.nodes {
        if matches!(n.op, Op::Reshape(_)) {
            root[n.output()] = root[n.inputs[0]];
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
    let mut arena =
        Arena { chunks: Vec::new(), capacity: (chunk_capacity / ARENA_ALIGN * ARENA_ALIGN).max(ARENA_ALIGN) };
    let name = |v: usize| format!("tensor `{}` {:?}", graph.values[v].name, graph.values[v].shape);
    let mut locations = vec![Location { region: Region::Arena(0), offset: 0 }; nv];
    for (v, info) in graph.values.iter().enumerate() {
        match &info.kind {
            ValueKind::Param { slot } => {
                locations[v] = Location { region: Region::Params, offset: graph.layout.slots[*slot].offset };
            }
            ValueKind::Input | ValueKind::Constant(_) => locations[v] = arena.alloc(numel(&info.shape), &name(v))?,
            ValueKind::Activation => {}
        }
    }
    let mut pinned = vec![false; nv];
    for &(slot, v) in &graph.param_grads {
        locations[v] = Location { region: Region::Grads, offset: graph.layout.slots[slot].offset };
        pinned[v] = true;
    }
    let mut scratch = vec![None; graph.nodes.len()];
    let mut frees: Vec<Vec<Location>> = vec![Vec::new(); graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for &o in &n.outputs {
            if root[o] != o {
                locations[o] = locations[root[o]];
            } else if pinned[o] {
                // A parameter gradient: it lives in the gradient buffer.
            } else {
                locations[o] = arena.alloc(numel(graph.shape(o)), &name(o))?;
                match root_last[o] {
                    Some(l) if l != usize::MAX => frees[l].push(locations[o]),
                    Some(_) => {}
                    None => frees[i].push(locations[o]),
                }
            }
        }
        let s = scratch_len(i);
        if s > 0 {
            let at = arena.alloc(s, &format!("the scratch space of node `{}`", n.name))?;
            scratch[i] = Some(at);
            frees[i].push(at);
        }
        for loc in std::mem::take(&mut frees[i]) {
            arena.free(loc);
        }
    }
    let mut arena_lens: Vec<usize> = arena.chunks.iter().map(|c| c.high.max(ARENA_ALIGN)).collect();
    if arena_lens.is_empty() {
        arena_lens.push(ARENA_ALIGN);
    }
    Ok(MemoryPlan { locations, scratch, arena_lens })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use crate::ops::{Reshape, UnaryOp};

    #[test]
    fn dead_activations_are_reused_and_live_ones_never_overlap() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", vec![100]);
        let a = b.node("a", Op::Unary(UnaryOp::Relu), &[x]).unwrap();
        let c = b.node("c", Op::Unary(UnaryOp::Exp), &[a]).unwrap();
        let r = b.node("r", Op::Reshape(Reshape { shape: vec![10, 10] }), &[c]).unwrap();
        let d = b.node("d", Op::Unary(UnaryOp::Tanh), &[r]).unwrap();
        b.output(d);
        let g = b.finish();
        let p = plan_memory(&g, |_| 0, usize::MAX).unwrap();
        assert_eq!(p.locations[r], p.locations[c]);
        // `a` is dead once `c` is computed, so `d` may take its place; `c` is still live then.
        assert_ne!(p.locations[d].offset, p.locations[c].offset);
        assert_ne!(p.locations[a].offset, p.locations[c].offset);
        assert_eq!(p.locations[d].offset, p.locations[a].offset);
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use crate::ops::UnaryOp;

    #[test]
    fn tensors_spread_over_chunks_and_one_too_large_is_named() {
        let mut b = GraphBuilder::new();
        let x = b.input("x", vec![1000]);
        let a = b.node("a", Op::Unary(UnaryOp::Relu), &[x]).unwrap();
        let c = b.node("c", Op::Unary(UnaryOp::Exp), &[a]).unwrap();
        b.output(c);
        let g = b.finish();
        let p = plan_memory(&g, |_| 0, 1024).unwrap();
        assert_eq!(p.arena_lens.len(), 3, "x, a and c are live together and each fills most of a chunk");
        assert!(p.arena_lens.iter().all(|&l| l <= 1024));
        let e = plan_memory(&g, |_| 0, 512).unwrap_err();
        assert!(e.contains("tensor `x` [1000]"), "{e}");
    }
}
