//! Finding adapters and opening a device on one of them.

use crate::error::{EngineError, Result};

/// What the user sees of an adapter in `devices`.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Index to pass as `--adapter`.
    pub index: usize,
    /// The adapter's name.
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl...
    pub backend: String,
    /// DiscreteGpu, IntegratedGpu, Cpu...
    pub device_type: String,
    /// The driver and its version.
    pub driver: String,
    /// Largest storage buffer binding, in bytes.
    pub max_storage_binding: u64,
    /// Largest buffer, in bytes.
    pub max_buffer: u64,
    /// Largest workgroup count per dimension.
    pub max_workgroups_per_dim: u32,
    /// Largest number of invocations per workgroup.
    pub max_invocations: u32,
    /// Workgroup shared memory, in bytes.
    pub max_shared_memory: u32,
    /// True for software adapters such as lavapipe.
    pub is_cpu: bool,
}

/// A device opened on an adapter, with what the kernels need to know of it.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The adapter's description.
    pub info: wgpu::AdapterInfo,
    /// The limits granted (the adapter's own).
    pub limits: wgpu::Limits,
}

impl GpuContext {
    /// True when the adapter is a CPU implementation (lavapipe, llvmpipe, WARP).
    pub fn is_cpu(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn adapters() -> Vec<wgpu::Adapter> {
    let mut list = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
    // Vulkan/Metal/DX12 before GL, real GPUs before software ones, for a stable and useful order.
    list.sort_by_key(|a| {
        let i = a.get_info();
        (rank_type(i.device_type), i.backend == wgpu::Backend::Gl)
    });
    list
}

fn rank_type(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Lists the adapters wgpu finds, best first.
pub fn list_adapters() -> Vec<AdapterSummary> {
    adapters()
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let i = a.get_info();
            let l = a.limits();
            AdapterSummary {
                index,
                name: i.name.clone(),
                backend: format!("{:?}", i.backend),
                device_type: format!("{:?}", i.device_type),
                driver: format!("{} {}", i.driver, i.driver_info).trim().to_string(),
                max_storage_binding: l.max_storage_buffer_binding_size,
                max_buffer: l.max_buffer_size,
                max_workgroups_per_dim: l.max_compute_workgroups_per_dimension,
                max_invocations: l.max_compute_invocations_per_workgroup,
                max_shared_memory: l.max_compute_workgroup_storage_size,
                is_cpu: i.device_type == wgpu::DeviceType::Cpu,
            }
        })
        .collect()
}

/// The advice shown when no adapter is found.
pub const NO_ADAPTER_HELP: &str = "no GPU adapter found: install a Vulkan driver (on Debian: \
`apt-get install -y mesa-vulkan-drivers libvulkan1` gives lavapipe, a CPU Vulkan driver), or run with --device cpu";

/// Opens a device on adapter `index` (from [`list_adapters`]), or on the best adapter when `None`.
pub fn open(index: Option<usize>) -> Result<GpuContext> {
    let list = adapters();
    if list.is_empty() {
        return Err(EngineError::Device(NO_ADAPTER_HELP.to_string()));
    }
    let adapter = match index {
        Some(i) => list.into_iter().nth(i).ok_or_else(|| {
            EngineError::Device(format!("no adapter with index {i}: `distk-gpu devices` lists the adapters"))
        })?,
        None => list.into_iter().next().ok_or_else(|| EngineError::Device(NO_ADAPTER_HELP.to_string()))?,
    };
    let info = adapter.get_info();
    let limits = adapter.limits();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("distk"),
        required_features: wgpu::Features::empty(),
        required_limits: limits.clone(),
        ..Default::default()
    }))
    .map_err(|e| EngineError::Device(format!("adapter `{}` refused a device: {e}", info.name)))?;
    Ok(GpuContext { device, queue, info, limits })
}

/// True when a real (non-CPU) GPU adapter is present.
pub fn has_real_gpu() -> bool {
    adapters().iter().any(|a| a.get_info().device_type != wgpu::DeviceType::Cpu)
}
