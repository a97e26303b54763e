//! The mechanics of lowering a planned graph to compute dispatches: the context an op's
//! [`crate::ops::OpDef::lower`] reads (locations, shapes, scratch, target), the strided copy every
//! data-movement op shares, the matrix product, and the optimizer's dispatch. What each op
//! computes lives in its own file under `crate::ops`.

use crate::graph::{Graph, Node};
use crate::plan::{Location, MemoryPlan, Region};
use crate::shape::numel;
use crate::wgpu_exec::matmul::{MatMulParams, choose_tile, matmul_grid, template_for, tile_override};
use crate::wgpu_exec::template::{ELEMENTWISE_WG, Shader, grid, instantiate};
use crate::wgpu_exec::uniforms::{MAX_RANK, Uniforms, rank_array};
use crate::{EngineError, Result};

const COPY: &str = include_str!("../../../shaders/copy.wgsl");
const OPTIMIZER: &str = include_str!("../../../shaders/optimizer.wgsl");

/// Most elements one invocation of a reduction sums; longer reductions run in passes over the
/// partial sums, a tree of fan-in 256. A running f32 sum's error grows with its length: with chunks
/// of 4,096 a BatchNormalization gradient over 25,088 elements was 1e-3 off its f64 value (as far
/// off as TensorFlow's own f32 step), with 256 it is 3e-6. Short loops also keep lavapipe under its
/// 65,535 iterations per invocation and give a GPU more invocations.
pub const REDUCE_CHUNK: usize = 256;

/// One compute dispatch: a shader, its uniform words and its grid.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// The shader.
    pub shader: Shader,
    /// Uniform words (at most [`crate::wgpu_exec::template::UNIFORM_WORDS`]).
    pub uniforms: Vec<u32>,
    /// Workgroup counts.
    pub workgroups: [u32; 3],
}

impl Dispatch {
    /// A dispatch of `template` with the uniform block `params` (whose WGSL accessors are put
    /// before the kernel, after `includes`), its operands and pasted expressions.
    pub fn new<U: Uniforms>(
        template: &str,
        includes: &[&str],
        params: U,
        operands: &[(&str, Region)],
        exprs: &[(&str, String)],
        workgroups: [u32; 3],
    ) -> Self {
        let accessors = U::wgsl_accessors();
        let mut all: Vec<&str> = vec![&accessors];
        all.extend_from_slice(includes);
        Dispatch { shader: instantiate(template, &all, operands, exprs), uniforms: params.words(), workgroups }
    }
}

/// What lowering needs to know of the adapter.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Largest workgroup count per dimension.
    pub max_groups: u32,
    /// Whether the adapter is a CPU implementation (changes the tile choice).
    pub cpu_adapter: bool,
    /// A matrix-product tile shape to use everywhere instead of the automatic choice.
    pub matmul_tile: Option<crate::wgpu_exec::matmul::TileConfig>,
}

/// What an op's lowering reads: the node, the planned locations and shapes of its values, its
/// scratch space and the target.
pub struct LowerCtx<'a> {
    /// The graph.
    pub graph: &'a Graph,
    /// Where every value lives.
    pub plan: &'a MemoryPlan,
    /// The node's index.
    pub index: usize,
    /// The adapter.
    pub target: Target,
}

impl LowerCtx<'_> {
    /// The node being lowered.
    pub fn node(&self) -> &Node {
        &self.graph.nodes[self.index]
    }

    /// Input `i`'s value.
    pub fn input(&self, i: usize) -> usize {
        self.node().inputs[i]
    }

    /// Input `i`'s location.
    pub fn in_loc(&self, i: usize) -> Location {
        self.plan.locations[self.input(i)]
    }

    /// Input `i`'s shape.
    pub fn in_shape(&self, i: usize) -> &[usize] {
        self.graph.shape(self.input(i))
    }

    /// The (first) output's location.
    pub fn out_loc(&self) -> Location {
        self.plan.locations[self.node().output()]
    }

    /// The (first) output's shape.
    pub fn out_shape(&self) -> &[usize] {
        self.graph.shape(self.node().output())
    }

    /// Output `k`'s location (multi-output ops).
    pub fn out_loc_of(&self, k: usize) -> Location {
        self.plan.locations[self.node().outputs[k]]
    }

    /// The output's element count.
    pub fn out_len(&self) -> usize {
        numel(self.out_shape())
    }

    /// The grid of an elementwise kernel over `n` invocations.
    pub fn grid(&self, n: usize) -> [u32; 3] {
        grid(n, ELEMENTWISE_WG, self.target.max_groups)
    }

    /// The start of the node's scratch space (sized by the op's `scratch_len`).
    pub fn scratch(&self) -> Result<Location> {
        self.plan.scratch[self.index].ok_or_else(|| {
            EngineError::Unsupported(format!("node `{}`: no scratch space was planned", self.node().name))
        })
    }

    /// The error of a kernel that would need more dims than the strided kernels handle.
    pub fn too_many_dims(&self, rank: usize) -> EngineError {
        EngineError::Unsupported(format!(
            "node `{}` ({}): {rank} non-contiguous dims after merging; the WGSL kernels handle {MAX_RANK}",
            self.node().name,
            self.node().op.name()
        ))
    }

    /// A strided copy of `dims` elements from `src` (location, strides) to `dst`.
    pub fn copy(&self, dims: &[usize], src: (Location, Vec<usize>), dst: (Location, Vec<usize>)) -> Result<Dispatch> {
        let (d, st) = crate::shape::coalesce_dims(dims, &[src.1, dst.1]);
        if d.len() > MAX_RANK {
            return Err(self.too_many_dims(d.len()));
        }
        let n = numel(dims);
        let params = CopyParams {
            n: n as u32,
            rank: d.len() as u32,
            src: src.0.offset as u32,
            dst: dst.0.offset as u32,
            dims: rank_array(&d),
            src_strides: rank_array(&st[0]),
            dst_strides: rank_array(&st[1]),
        };
        Ok(Dispatch::new(COPY, &[], params, &[("X", src.0.region), ("O", dst.0.region)], &[], self.grid(n)))
    }
}

crate::uniforms! {
    /// The strided copy (shaders/copy.wgsl).
    pub struct CopyParams {
        n: u32, rank: u32, src: u32, dst: u32,
        dims: [u32; 8], src_strides: [u32; 8], dst_strides: [u32; 8],
    }
}

/// The dispatches that compute `graph.nodes[i]`, reading and writing the planned locations.
pub fn lower_node(graph: &Graph, plan: &MemoryPlan, i: usize, target: Target) -> Result<Vec<Dispatch>> {
    graph.nodes[i].op.lower(&LowerCtx { graph, plan, index: i, target })
}

/// Scratch elements node `i` needs.
pub fn scratch_len(graph: &Graph, i: usize) -> usize {
    let n = &graph.nodes[i];
    let shapes: Vec<&[usize]> = n.inputs.iter().map(|&v| graph.shape(v)).collect();
    n.op.scratch_len(&shapes, graph.shape(n.output()))
}

crate::uniforms! {
    /// The optimizer step (shaders/optimizer.wgsl); the scalars from `lr` on change every step.
    pub struct OptimizerParams { n: u32, state_offset: u32, lr: f32, wd: f32, c0: f32, c1: f32, c2: f32, c3: f32 }
}

/// The optimizer's dispatch over the trainable prefix (`n` elements); its uniforms from word 2 on
/// change every step ([`crate::optimizer::Optimizer::uniform_scalars`]).
pub fn optimizer_dispatch(t: Target, optimizer: &crate::optimizer::Optimizer, n: usize) -> Dispatch {
    let s = optimizer.uniform_scalars(1);
    let params =
        OptimizerParams { n: n as u32, state_offset: 0, lr: s[0], wd: s[1], c0: s[2], c1: s[3], c2: s[4], c3: s[5] };
    let mut operands = vec![("P", Region::Params), ("G", Region::Grads)];
    if optimizer.state_slots() > 0 {
        operands.push(("S", Region::OptState));
    }
    Dispatch::new(
        OPTIMIZER,
        &[],
        params,
        &operands,
        &[("BODY", optimizer.wgsl_body())],
        grid(n, ELEMENTWISE_WG, t.max_groups),
    )
}

/// Operands of a (two-level batched) matrix product: each operand's location, its batch strides
/// (outer, inner), and row/column strides.
#[derive(Clone, Copy)]
pub struct MatMulCall {
    /// Rows.
    pub m: usize,
    /// Columns.
    pub n: usize,
    /// Inner size.
    pub k: usize,
    /// Outer batch count.
    pub batch_hi: usize,
    /// Inner batch count (groups).
    pub batch_lo: usize,
    /// A: location, batch strides, row stride, column stride.
    pub a: (Location, [usize; 2], usize, usize),
    /// B: location, batch strides, row stride, column stride.
    pub b: (Location, [usize; 2], usize, usize),
    /// C: location, batch strides, row stride (columns are contiguous).
    pub c: (Location, [usize; 2], usize),
    /// Scale of the product.
    pub alpha: f32,
    /// Scale of the existing C added (0 to overwrite).
    pub beta: f32,
}

/// Longest inner dimension one product dispatch takes on a CPU adapter; longer ones are split
/// into dispatches that accumulate (lavapipe stops loops after 65,535 iterations per invocation).
pub const SPLIT_K: usize = 16_384;

/// The dispatches of a matrix product (one, or several accumulating over K on CPU adapters).
pub fn matmul_dispatches(t: Target, mc: MatMulCall) -> Vec<Dispatch> {
    if !t.cpu_adapter || mc.k <= SPLIT_K {
        return vec![matmul_dispatch(t, mc)];
    }
    let mut out = Vec::new();
    let mut k0 = 0;
    while k0 < mc.k {
        let k = SPLIT_K.min(mc.k - k0);
        let (a, b) = (mc.a, mc.b);
        let part = MatMulCall {
            k,
            a: (Location { region: a.0.region, offset: a.0.offset + k0 * a.3 }, a.1, a.2, a.3),
            b: (Location { region: b.0.region, offset: b.0.offset + k0 * b.2 }, b.1, b.2, b.3),
            beta: if k0 == 0 { mc.beta } else { 1.0 },
            ..mc
        };
        out.push(matmul_dispatch(t, part));
        k0 += k;
    }
    out
}

/// The dispatch of a matrix product.
pub fn matmul_dispatch(t: Target, mc: MatMulCall) -> Dispatch {
    let batch = mc.batch_hi * mc.batch_lo;
    let cfg = t.matmul_tile.or_else(tile_override).unwrap_or_else(|| choose_tile(mc.m, mc.n, batch, t.cpu_adapter));
    let template = template_for(cfg);
    let (gx, gy) = matmul_grid(cfg, mc.m, mc.n);
    let (a, b, c) = (mc.a, mc.b, mc.c);
    let u = |x: usize| x as u32;
    let params = MatMulParams {
        m: u(mc.m),
        n: u(mc.n),
        k: u(mc.k),
        batch_lo: u(mc.batch_lo.max(1)),
        a_offset: u(a.0.offset),
        a_batch_hi: u(a.1[0]),
        a_batch_lo: u(a.1[1]),
        a_rs: u(a.2),
        a_cs: u(a.3),
        b_offset: u(b.0.offset),
        b_batch_hi: u(b.1[0]),
        b_batch_lo: u(b.1[1]),
        b_rs: u(b.2),
        b_cs: u(b.3),
        c_offset: u(c.0.offset),
        c_batch_hi: u(c.1[0]),
        c_batch_lo: u(c.1[1]),
        c_rs: u(c.2),
        alpha: mc.alpha,
        beta: mc.beta,
    };
    Dispatch::new(
        &template,
        &[],
        params,
        &[("A", a.0.region), ("B", b.0.region), ("C", c.0.region)],
        &[],
        [gx, gy, batch as u32],
    )
}
