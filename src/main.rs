//! `distk-gpu`: train and run imported ONNX models on GPUs through WGSL.

use std::process::ExitCode;

use clap::Parser;

use distk_gpu::cli::{Cli, Command};
use distk_gpu::commands;

/// Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set" on every start when
/// the variable is missing (containers, CI, ssh sessions), which reads like one of our errors. Give
/// them a private runtime directory instead.
fn quiet_mesa_runtime_dir() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("distk-gpu-runtime-{user}"));
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        // SAFETY: called first thing in `main`, before any thread is spawned, so no other thread
        // can read or write the environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}

fn main() -> ExitCode {
    quiet_mesa_runtime_dir();
    let cli = Cli::parse();
    if let Some(bytes) = cli.max_memory.or_else(|| distk_gpu::runtime::machine_memory().map(|m| m / 10 * 9)) {
        distk_engine::memory::set_budget(bytes);
    }
    distk_engine::memory::set_on_devices(cli.max_memory.is_some());
    let result = match cli.command {
        Command::Devices(a) => commands::devices::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Predict(a) => commands::predict::run(a),
        Command::Run(a) => commands::run::run(*a),
        Command::Ps(a) => commands::ps::run(*a),
        Command::Worker(a) => commands::worker::run(*a),
        Command::Secret(a) => commands::secret::run(a),
        Command::Punchcard(a) => commands::punchcard::run(*a),
        Command::PunchcardJob(a) => distk_gpu::punchcard::job_process::run_job_process(&a.job_dir),
        Command::Submit(a) => commands::submit::run(*a),
        Command::Job(a) => commands::job::run(*a),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Transform(a) => commands::transform::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A run that wrote its model but lost a worker (or was interrupted) says so with 3.
            if e.downcast_ref::<distk_gpu::distributed::PartialRun>().is_some() {
                ExitCode::from(3)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
