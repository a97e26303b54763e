//! `distk-gpu submit`: sends a training job to a Punchcard job server; progress on stderr, the job id
//! alone on the last line of stdout.

use anyhow::{Result, bail};

use crate::cli::SubmitArgs;
use crate::commands::job::wait_for;
use crate::commands::object_paths::require_local;
use crate::punchcard::client::JobClient;
use crate::punchcard::jobs::JobRequest;

/// Submits (and with `--wait`, follows) a job.
pub fn run(args: SubmitArgs) -> Result<()> {
    if args.data.is_none() && args.upload_data.is_none() {
        bail!("say where the data is: --data PATH (under the server's data root) or --upload-data FILE");
    }
    require_local("MODEL", Some(&args.model), "it is uploaded from this machine to the job server")?;
    require_local("--upload-data", args.upload_data.as_deref(), "it is uploaded from this machine to the job server")?;
    if !args.model.is_file() {
        bail!("{}: no such model file", args.model.display());
    }
    if let Some(u) = &args.upload_data
        && !u.is_file()
    {
        bail!("--upload-data {}: no such file", u.display());
    }
    let request = JobRequest {
        name: args.job_name.clone(),
        workers: args.workers,
        trainer: args.trainer.options(),
        job: args.job.options(),
        data: args.data.clone(),
        validation_data: args.validation_data.clone(),
    };
    let client = JobClient::new(&args.server.access())?;
    eprintln!("submitting `{}` to {}", args.job_name, args.server.server);
    let record = client.submit(&serde_json::to_string(&request)?, &args.model, args.upload_data.as_deref())?.json()?;
    let id = record["id"].as_str().unwrap_or_default().to_string();
    eprintln!("job {id} accepted ({})", record["state"].as_str().unwrap_or("?"));
    let mut failed = false;
    if args.wait {
        let r = wait_for(&client, &id, 86_400)?;
        failed = r["state"] == "failed";
    }
    println!("{id}");
    if failed {
        bail!("job {id} failed");
    }
    Ok(())
}
