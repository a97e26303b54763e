//! `distk-gpu devices`.

use anyhow::Result;
use distk_engine::wgpu_exec::device::{NO_ADAPTER_HELP, list_adapters};
use serde_json::json;

use crate::cli::DevicesArgs;

/// Lists adapters; says which one `--device auto` and `--device wgpu` would use.
pub fn run(args: DevicesArgs) -> Result<()> {
    let list = list_adapters();
    let real = list.iter().position(|a| !a.is_cpu);
    let auto = match real {
        Some(i) => format!("adapter {i} (wgpu)"),
        None => "the CPU executor (no real GPU found)".to_string(),
    };
    if args.json {
        let adapters: Vec<_> = list
            .iter()
            .map(|a| {
                json!({"index": a.index, "name": a.name, "backend": a.backend, "device_type": a.device_type,
                       "driver": a.driver, "max_storage_buffer_binding_size": a.max_storage_binding,
                       "max_buffer_size": a.max_buffer, "max_compute_workgroups_per_dimension": a.max_workgroups_per_dim,
                       "max_compute_invocations_per_workgroup": a.max_invocations,
                       "max_compute_workgroup_storage_size": a.max_shared_memory})
            })
            .collect();
        let out = json!({"adapters": adapters, "auto": real.map(|i| json!({"wgpu": i})).unwrap_or(json!("cpu")),
                         "wgpu": if list.is_empty() { json!(null) } else { json!(0) }});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("{NO_ADAPTER_HELP}");
        println!("--device auto uses {auto}");
        return Ok(());
    }
    for a in &list {
        println!("[{}] {} ({}, {}) driver: {}", a.index, a.name, a.backend, a.device_type, a.driver);
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, {} workgroups/dim, {} invocations/workgroup, {} KiB shared",
            a.max_storage_binding >> 20,
            a.max_buffer >> 20,
            a.max_workgroups_per_dim,
            a.max_invocations,
            a.max_shared_memory >> 10
        );
    }
    println!("--device auto uses {auto}; --device wgpu uses adapter 0 unless --adapter N is given");
    Ok(())
}
