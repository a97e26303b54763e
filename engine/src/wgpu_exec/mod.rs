//! The WGSL executor: a graph compiled once into pipelines, bind groups and a static memory plan,
//! then recorded into one command buffer per run.

pub mod device;
pub mod lower;
pub mod matmul;
pub mod template;
pub mod uniforms;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::executor::{Executor, OptimizerState, check_inputs, initial_optimizer_state};
use crate::graph::{Graph, ValueKind};
use crate::plan::{MemoryPlan, Region, plan_memory};
use crate::shape::numel;
pub use device::{AdapterSummary, GpuContext, list_adapters, open};
use lower::{Dispatch, Target, lower_node};
use template::UNIFORM_WORDS;

const UNIFORM_STRIDE: u64 = 256;

/// Compiled pipelines, keyed by WGSL source, shared by the executors of one device.
#[derive(Default)]
pub struct PipelineCache {
    pipelines: HashMap<String, Arc<wgpu::ComputePipeline>>,
}

impl PipelineCache {
    fn get(&mut self, ctx: &GpuContext, source: &str) -> Result<Arc<wgpu::ComputePipeline>> {
        if let Some(p) = self.pipelines.get(source) {
            return Ok(p.clone());
        }
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: None,
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        let pipeline = ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: None,
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(EngineError::Device(format!("a WGSL kernel failed to compile: {e}\n{source}")));
        }
        let p = Arc::new(pipeline);
        self.pipelines.insert(source.to_string(), p.clone());
        Ok(p)
    }
}

struct Recorded {
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// Runs a [`Graph`] on a wgpu adapter.
pub struct WgpuExecutor {
    ctx: Arc<GpuContext>,
    graph: Graph,
    plan: MemoryPlan,
    params: wgpu::Buffer,
    arenas: Vec<wgpu::Buffer>,
    grads: wgpu::Buffer,
    opt_state: wgpu::Buffer,
    uniforms: wgpu::Buffer,
    /// Index of the optimizer's dispatch (its uniform slot is rewritten each step).
    optimizer_dispatch: Option<usize>,
    step: u64,
    recorded: Vec<Recorded>,
    staging: wgpu::Buffer,
    param_staging: wgpu::Buffer,
    /// (byte offset in staging, byte offset in its buffer, region, bytes) per graph output.
    output_copies: Vec<(u64, u64, Region, u64)>,
}

fn storage_buffer(ctx: &GpuContext, label: &str, elems: usize) -> Result<wgpu::Buffer> {
    let bytes = (elems.max(64) * 4) as u64;
    if bytes > ctx.limits.max_storage_buffer_binding_size || bytes > ctx.limits.max_buffer_size {
        return Err(EngineError::Limit(format!(
            "the {label} needs {} MiB, more than adapter `{}` binds in one buffer ({} MiB): use a smaller --batch-size",
            bytes >> 20,
            ctx.info.name,
            ctx.limits.max_storage_buffer_binding_size >> 20
        )));
    }
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    }))
}

/// Choices that override the executor's automatic ones (tests and tuning).
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecOptions {
    /// Use this matrix-product tile shape for every product.
    pub matmul_tile: Option<matmul::TileConfig>,
    /// Split the activation arena into buffers of at most this many elements (default and ceiling:
    /// the adapter's storage-binding limit); tests use small values to exercise the splitting.
    pub arena_chunk_elems: Option<usize>,
}

impl WgpuExecutor {
    /// Compiles `graph` for the device: plans memory, lowers every node, builds every pipeline and
    /// bind group, and uploads parameters and constants.
    pub fn new(ctx: Arc<GpuContext>, graph: Graph, cache: &mut PipelineCache) -> Result<Self> {
        Self::with_options(ctx, graph, cache, ExecOptions::default())
    }

    /// [`WgpuExecutor::new`] with explicit choices.
    pub fn with_options(
        ctx: Arc<GpuContext>,
        graph: Graph,
        cache: &mut PipelineCache,
        options: ExecOptions,
    ) -> Result<Self> {
        let binding_elems = (ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size) / 4) as usize;
        let chunk = options.arena_chunk_elems.unwrap_or(binding_elems).min(binding_elems);
        let plan = plan_memory(&graph, |i| lower::scratch_len(&graph, i), chunk).map_err(|e| {
            EngineError::Limit(format!("{e} of adapter `{}`: use a smaller --batch-size", ctx.info.name))
        })?;
        let target = Target {
            max_groups: ctx.limits.max_compute_workgroups_per_dimension,
            cpu_adapter: ctx.is_cpu(),
            matmul_tile: options.matmul_tile,
        };
        let mut dispatches: Vec<Dispatch> = Vec::new();
        for i in 0..graph.nodes.len() {
            dispatches.extend(lower_node(&graph, &plan, i, target)?);
        }
        let trainable = graph.layout.trainable_len();
        let optimizer_dispatch = graph.optimizer.as_ref().map(|o| {
            dispatches.push(lower::optimizer_dispatch(target, o, trainable));
            dispatches.len() - 1
        });
        let params = storage_buffer(&ctx, "parameter buffer", graph.layout.total_len())?;
        let arenas: Vec<wgpu::Buffer> =
            plan.arena_lens.iter().map(|&len| storage_buffer(&ctx, "activation arena", len)).collect::<Result<_>>()?;
        let grads = storage_buffer(&ctx, "gradient buffer", trainable)?;
        let initial_state = initial_optimizer_state(&graph);
        let opt_state = storage_buffer(&ctx, "optimizer state", initial_state.slots.len())?;
        ctx.queue.write_buffer(&opt_state, 0, bytemuck::cast_slice(&initial_state.slots));
        ctx.queue.write_buffer(&params, 0, bytemuck::cast_slice(&graph.initial_params));
        for (v, info) in graph.values.iter().enumerate() {
            if let ValueKind::Constant(data) = &info.kind {
                let loc = plan.locations[v];
                let Region::Arena(k) = loc.region else { continue };
                ctx.queue.write_buffer(&arenas[k as usize], loc.offset as u64 * 4, bytemuck::cast_slice(data));
            }
        }
        let mut words = vec![0u32; dispatches.len().max(1) * (UNIFORM_STRIDE as usize / 4)];
        for (i, d) in dispatches.iter().enumerate() {
            if d.uniforms.len() > UNIFORM_WORDS {
                return Err(EngineError::Unsupported("kernel uniform block too large".into()));
            }
            let at = i * UNIFORM_STRIDE as usize / 4;
            words[at..at + d.uniforms.len()].copy_from_slice(&d.uniforms);
        }
        let uniforms = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("kernel uniforms"),
            size: (words.len() * 4) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.queue.write_buffer(&uniforms, 0, bytemuck::cast_slice(&words));
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
        let mut recorded = Vec::with_capacity(dispatches.len());
        for (i, d) in dispatches.iter().enumerate() {
            if d.workgroups.iter().any(|&g| g > max_groups) {
                return Err(EngineError::Limit(format!(
                    "a dispatch needs {:?} workgroups, more than adapter `{}` allows ({max_groups} per dimension): use a smaller --batch-size",
                    d.workgroups, ctx.info.name
                )));
            }
            let pipeline = cache.get(&ctx, &d.shader.source)?;
            let layout = pipeline.get_bind_group_layout(0);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniforms,
                    offset: i as u64 * UNIFORM_STRIDE,
                    size: wgpu::BufferSize::new(UNIFORM_STRIDE),
                }),
            }];
            for (b, r) in d.shader.regions.iter().enumerate() {
                let buffer = match r {
                    Region::Params => &params,
                    Region::Arena(k) => &arenas[*k as usize],
                    Region::Grads => &grads,
                    Region::OptState => &opt_state,
                };
                entries.push(wgpu::BindGroupEntry { binding: b as u32 + 1, resource: buffer.as_entire_binding() });
            }
            let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &layout,
                entries: &entries,
            });
            recorded.push(Recorded { pipeline, bind_group, workgroups: d.workgroups });
        }
        let mut output_copies = Vec::new();
        let mut at = 0u64;
        for &o in &graph.outputs {
            let loc = plan.locations[o];
            let bytes = (numel(graph.shape(o)) * 4) as u64;
            output_copies.push((at, loc.offset as u64 * 4, loc.region, bytes));
            at += bytes.div_ceil(256) * 256;
        }
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("output staging"),
            size: at.max(256),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let param_staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("parameter staging"),
            size: params.size(),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(WgpuExecutor {
            ctx,
            graph,
            plan,
            params,
            arenas,
            grads,
            opt_state,
            uniforms,
            optimizer_dispatch,
            step: 0,
            recorded,
            staging,
            param_staging,
            output_copies,
        })
    }

    /// Number of buffers the activation arena is split into.
    pub fn arena_buffer_count(&self) -> usize {
        self.arenas.len()
    }

    /// Records the graph's dispatches `repeats` times into one command buffer, without input upload
    /// or output readback, and waits for it: the device time of the kernels alone (benchmarks).
    pub fn run_kernels_only(&mut self, repeats: usize) -> Result<std::time::Duration> {
        let start = std::time::Instant::now();
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("bench") });
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("bench"), timestamp_writes: None });
            for _ in 0..repeats {
                for r in &self.recorded {
                    pass.set_pipeline(&r.pipeline);
                    pass.set_bind_group(0, &r.bind_group, &[]);
                    pass.dispatch_workgroups(r.workgroups[0], r.workgroups[1], r.workgroups[2]);
                }
            }
        }
        self.ctx.queue.submit([enc.finish()]);
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| EngineError::Device(format!("waiting for the GPU failed: {e}")))?;
        Ok(start.elapsed())
    }

    fn region(&self, r: Region) -> &wgpu::Buffer {
        match r {
            Region::Params => &self.params,
            Region::Arena(k) => &self.arenas[k as usize],
            Region::Grads => &self.grads,
            Region::OptState => &self.opt_state,
        }
    }

    fn read_back(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<f32>> {
        let slice = buffer.slice(..bytes.max(4));
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.ctx
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| EngineError::Device(format!("waiting for the GPU failed: {e}")))?;
        rx.recv()
            .map_err(|_| EngineError::Device("buffer map callback never ran".into()))?
            .map_err(|e| EngineError::Device(format!("mapping a buffer failed: {e}")))?;
        let data = {
            let view = slice.get_mapped_range().map_err(|e| EngineError::Device(format!("mapped range: {e}")))?;
            bytemuck::cast_slice::<u8, f32>(&view[..bytes as usize]).to_vec()
        };
        buffer.unmap();
        Ok(data)
    }
}

impl Executor for WgpuExecutor {
    fn run(&mut self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        check_inputs(&self.graph, inputs)?;
        for (i, data) in inputs.iter().enumerate() {
            let loc = self.plan.locations[self.graph.inputs[i]];
            self.ctx.queue.write_buffer(self.region(loc.region), loc.offset as u64 * 4, bytemuck::cast_slice(data));
        }
        if let (Some(d), Some(o)) = (self.optimizer_dispatch, self.graph.optimizer) {
            self.step += 1;
            let words: Vec<u32> = o.uniform_scalars(self.step).iter().map(|x| x.to_bits()).collect();
            self.ctx.queue.write_buffer(&self.uniforms, d as u64 * UNIFORM_STRIDE + 8, bytemuck::cast_slice(&words));
        }
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        {
            let mut pass =
                enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("graph"), timestamp_writes: None });
            for r in &self.recorded {
                pass.set_pipeline(&r.pipeline);
                pass.set_bind_group(0, &r.bind_group, &[]);
                pass.dispatch_workgroups(r.workgroups[0], r.workgroups[1], r.workgroups[2]);
            }
        }
        for &(slot, v) in &self.graph.state_updates {
            let s = &self.graph.layout.slots[slot];
            let loc = self.plan.locations[v];
            enc.copy_buffer_to_buffer(
                self.region(loc.region),
                loc.offset as u64 * 4,
                &self.params,
                s.offset as u64 * 4,
                s.len as u64 * 4,
            );
        }
        for &(dst, src, region, bytes) in &self.output_copies {
            enc.copy_buffer_to_buffer(self.region(region), src, &self.staging, dst, bytes);
        }
        self.ctx.queue.submit([enc.finish()]);
        let total = self.output_copies.last().map_or(0, |&(at, _, _, b)| at + b);
        let all = self.read_back(&self.staging, total)?;
        Ok(self
            .output_copies
            .iter()
            .map(|&(at, _, _, b)| all[(at / 4) as usize..((at + b) / 4) as usize].to_vec())
            .collect())
    }

    fn read_params(&mut self, out: &mut [f32]) -> Result<()> {
        let n = self.graph.layout.total_len();
        if out.len() != n {
            return Err(EngineError::BadInput(format!("parameter buffer has {n} values, {} asked", out.len())));
        }
        let mut enc =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read params") });
        enc.copy_buffer_to_buffer(&self.params, 0, &self.param_staging, 0, (n * 4) as u64);
        self.ctx.queue.submit([enc.finish()]);
        out.copy_from_slice(&self.read_back(&self.param_staging, (n * 4) as u64)?[..n]);
        Ok(())
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        let n = self.graph.layout.total_len();
        if params.len() != n {
            return Err(EngineError::BadInput(format!("parameter buffer has {n} values, {} given", params.len())));
        }
        self.ctx.queue.write_buffer(&self.params, 0, bytemuck::cast_slice(params));
        Ok(())
    }

    fn graph(&self) -> &Graph {
        &self.graph
    }

    fn describe(&self) -> String {
        format!("wgpu {} ({:?}, {:?})", self.ctx.info.name, self.ctx.info.backend, self.ctx.info.device_type)
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        let n = initial_optimizer_state(&self.graph).slots.len();
        if n == 0 {
            return Ok(OptimizerState { step: self.step, slots: Vec::new() });
        }
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("optimizer state staging"),
            size: (n * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("read state") });
        enc.copy_buffer_to_buffer(&self.opt_state, 0, &staging, 0, (n * 4) as u64);
        self.ctx.queue.submit([enc.finish()]);
        let slots = self.read_back(&staging, (n * 4) as u64)?;
        Ok(OptimizerState { step: self.step, slots })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        let n = initial_optimizer_state(&self.graph).slots.len();
        if state.slots.len() != n {
            return Err(EngineError::BadInput(format!(
                "optimizer state has {} values, this optimizer keeps {n}",
                state.slots.len()
            )));
        }
        self.ctx.queue.write_buffer(&self.opt_state, 0, bytemuck::cast_slice(&state.slots));
        self.step = state.step;
        Ok(())
    }
}
