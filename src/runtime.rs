//! Choosing where a model runs (`--device auto|wgpu|cpu`, `--adapter N`) and compiling graphs there.

use std::sync::Arc;

use anyhow::Result;
use distk_engine::Executor;
use distk_engine::cpu::CpuExecutor;
use distk_engine::wgpu_exec::{GpuContext, PipelineCache, WgpuExecutor, device};

/// Which executor runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A real GPU if there is one, else the CPU executor.
    Auto,
    /// The WGSL executor on the chosen (or best) adapter, software ones such as lavapipe included.
    Wgpu,
    /// The CPU executor.
    Cpu,
}

impl DeviceChoice {
    /// Every choice.
    pub const ALL: [DeviceChoice; 3] = [DeviceChoice::Auto, DeviceChoice::Wgpu, DeviceChoice::Cpu];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Auto => "auto",
            DeviceChoice::Wgpu => "wgpu",
            DeviceChoice::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        DeviceChoice::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| format!("unknown device `{s}`: auto, wgpu or cpu"))
    }
}

/// A device on which graphs are compiled; pipelines are shared between the graphs it compiles.
pub struct Runtime {
    gpu: Option<(Arc<GpuContext>, PipelineCache)>,
}

impl Runtime {
    /// Opens the device the user chose.
    pub fn open(choice: DeviceChoice, adapter: Option<usize>) -> Result<Self> {
        let use_gpu = match choice {
            DeviceChoice::Cpu => false,
            DeviceChoice::Wgpu => true,
            DeviceChoice::Auto => adapter.is_some() || device::has_real_gpu(),
        };
        let gpu = if use_gpu { Some((Arc::new(device::open(adapter)?), PipelineCache::default())) } else { None };
        Ok(Runtime { gpu })
    }

    /// Compiles a graph on this device.
    pub fn compile(&mut self, graph: distk_engine::Graph) -> Result<Box<dyn Executor>> {
        // Refused before any buffer is allocated when it needs more than --max-memory (on a GPU
        // only when the user gave it: the default is measured on the host's memory).
        if self.gpu.is_none() || distk_engine::memory::on_devices() {
            distk_engine::memory::check(&graph, 4)?;
        }
        Ok(match &mut self.gpu {
            Some((ctx, cache)) => Box::new(WgpuExecutor::new(ctx.clone(), graph, cache)?),
            None => Box::new(CpuExecutor::new(graph)),
        })
    }

    /// A description of the device.
    pub fn describe(&self) -> String {
        match &self.gpu {
            Some((ctx, _)) => format!("wgpu: {} ({:?}, {:?})", ctx.info.name, ctx.info.backend, ctx.info.device_type),
            None => "cpu".to_string(),
        }
    }
}

/// This machine's physical memory in bytes, when the system says.
pub fn machine_memory() -> Option<u64> {
    // SAFETY: sysconf takes a name by value and returns a number (-1 when unknown).
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages > 0 && size > 0).then(|| (pages as u64).saturating_mul(size as u64))
}
