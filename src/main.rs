//! `distk-gpu`: train and run imported ONNX models on GPUs through WGSL.

use std::process::ExitCode;

use clap::Parser;

use distk_gpu::cli::{Cli, Command};
use distk_gpu::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Devices(a) => commands::devices::run(a),
        Command::Inspect(a) => commands::inspect::run(a),
        Command::Predict(a) => commands::predict::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
