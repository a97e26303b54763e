//! `distk-gpu job status|wait|fetch|cancel|delete|list`: follow jobs on a Punchcard job server.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hyper::Method;

use crate::cli::JobCmdArgs;
use crate::commands::object_paths::require_local;
use crate::data::atomic::write_atomically;
use crate::punchcard::client::JobClient;

fn valid_id(id: &str) -> Result<&str> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("`{id}` is not a job id");
    }
    Ok(id)
}

/// Polls job `id` until it ends, printing its progress on stderr; returns its record.
pub fn wait_for(client: &JobClient, id: &str, timeout_s: u64) -> Result<serde_json::Value> {
    let start = Instant::now();
    let mut last = String::new();
    loop {
        let r = client.send(Method::GET, &format!("/api/jobs/{id}"), Vec::new())?.json()?;
        let p = &r["progress"];
        let line = format!(
            "job {id}: {} (epochs {}, updates {}{})",
            r["state"].as_str().unwrap_or("?"),
            p["epochs_done"],
            p["clock"],
            p["val_accuracy"].as_f64().map_or(String::new(), |a| format!(", val_accuracy {a:.4}"))
        );
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if matches!(r["state"].as_str(), Some("succeeded" | "failed" | "cancelled")) {
            if let Some(e) = r["error"].as_str() {
                eprintln!("job {id}: {e}");
            }
            return Ok(r);
        }
        if start.elapsed() > Duration::from_secs(timeout_s) {
            bail!("job {id} did not end within {timeout_s} s");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs one action.
pub fn run(args: JobCmdArgs) -> Result<()> {
    let client = JobClient::new(&args.server.access())?;
    let id = || -> Result<&str> { valid_id(args.id.as_deref().context("give the job id")?) };
    match args.action.as_str() {
        "list" => {
            let jobs = client.send(Method::GET, "/api/jobs", Vec::new())?.json()?;
            println!("{:<18} {:<24} {:<10} {:>7} {:>9}", "id", "name", "state", "epochs", "updates");
            for j in jobs.as_array().into_iter().flatten() {
                println!(
                    "{:<18} {:<24} {:<10} {:>7} {:>9}",
                    j["id"].as_str().unwrap_or(""),
                    j["name"].as_str().unwrap_or(""),
                    j["state"].as_str().unwrap_or(""),
                    j["progress"]["epochs_done"],
                    j["progress"]["clock"]
                );
            }
        }
        "status" => {
            let r = client.send(Method::GET, &format!("/api/jobs/{}", id()?), Vec::new())?.json()?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        "wait" => {
            let r = wait_for(&client, id()?, args.timeout)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if r["state"] == "failed" {
                bail!("job {} failed", id()?);
            }
        }
        "cancel" => {
            client.send(Method::POST, &format!("/api/jobs/{}/cancel", id()?), Vec::new())?.json()?;
            eprintln!("job {}: cancelling", id()?);
        }
        "delete" => {
            client.send(Method::DELETE, &format!("/api/jobs/{}", id()?), Vec::new())?.bytes()?;
            eprintln!("job {}: deleted", id()?);
        }
        "fetch" => {
            let id = id()?;
            let r = client.send(Method::GET, &format!("/api/jobs/{id}"), Vec::new())?.json()?;
            let name = r["name"].as_str().unwrap_or("job");
            let model = client.send(Method::GET, &format!("/api/jobs/{id}/model"), Vec::new())?.bytes()?;
            let history = client.send(Method::GET, &format!("/api/jobs/{id}/history"), Vec::new())?;
            require_local("--out-dir", Some(&args.out_dir), "the results are downloaded here")?;
            std::fs::create_dir_all(&args.out_dir)?;
            let mp = args.out_dir.join(format!("{name}-{id}.onnx"));
            write_atomically(&mp, |f| Ok(std::io::Write::write_all(f, &model)?))?;
            eprintln!("wrote {}", mp.display());
            if history.status.is_success() {
                let hp = args.out_dir.join(format!("{name}-{id}.history.json"));
                write_atomically(&hp, |f| Ok(std::io::Write::write_all(f, &history.body)?))?;
                eprintln!("wrote {}", hp.display());
            }
        }
        other => bail!("unknown action {other}"),
    }
    Ok(())
}
