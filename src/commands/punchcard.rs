//! `distk-gpu punchcard`: the job server.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use distk_net::auth::Secrets;
use distk_net::tls::{Identity, hex};

use crate::cli::PunchcardArgs;
use crate::commands::object_paths::require_local;
use crate::distributed::ps::persistent_identity;
use crate::punchcard::api::{Api, ApiConfig, router};
use crate::punchcard::job_process::{JobLimits, default_job_memory};
use crate::punchcard::jobs::JobStore;

/// Runs the job server until the process is stopped.
pub fn run(args: PunchcardArgs) -> Result<()> {
    if args.max_workers == 0 || args.max_upload_mb == 0 || args.max_stored_mb_per_identity == 0 {
        bail!("--max-workers, --max-upload-mb and --max-stored-mb-per-identity must be at least 1");
    }
    let local = "the job server's records need append, fsync and rename";
    require_local("--state-dir", Some(&args.state_dir), local)?;
    require_local("--data-root", args.data_root.as_deref(), "jobs read their data from this machine's disk")?;
    require_local("--secrets", Some(&args.secrets), "secrets stay on this machine")?;
    let secrets = Secrets::load(&args.secrets)?;
    if secrets.0.is_empty() {
        bail!("the secrets file {} lists no secret: add one with `distk-gpu secret`", args.secrets.display());
    }
    let open_files = match crate::punchcard::raise_open_files_limit() {
        Ok(n) => {
            eprintln!("open files limit: {n}");
            n
        }
        Err(e) => {
            eprintln!("cannot raise the open files limit: {e} (many idle connections may exhaust it)");
            1024
        }
    };
    // Connections are held below the open-files limit, with room for job files and logs.
    let max_connections = args.max_connections.unwrap_or((open_files.saturating_sub(256) as usize).clamp(16, 16384));
    if max_connections == 0 || args.max_connections_per_address == 0 {
        bail!("--max-connections and --max-connections-per-address must be at least 1");
    }
    let limits_of_connections =
        crate::punchcard::connection_limits::ConnectionLimits::new(max_connections, args.max_connections_per_address);
    eprintln!("at most {max_connections} connections, {} from one address", args.max_connections_per_address);
    // Only the server's user may read its state: records, uploads, trained models.
    crate::data::atomic::private_dir_if_missing(&args.state_dir)?;
    // One server per state directory: a second would resume the first one's running jobs.
    let _state_lock = lock_state_dir(&args.state_dir)?;
    let data_root = match &args.data_root {
        Some(d) => Some(d.canonicalize().with_context(|| format!("--data-root {}: no such folder", d.display()))?),
        None => None,
    };
    let identity = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Identity::from_pem_files(c, k)?,
        _ => persistent_identity(&args.state_dir)?,
    };
    let store = JobStore::open(&args.state_dir)?;
    let limits = JobLimits {
        memory_bytes: match args.job_max_memory_mb {
            Some(0) => bail!("--job-max-memory-mb must be at least 1"),
            Some(mb) => Some(mb << 20),
            None => default_job_memory(),
        },
        cpu_seconds: match args.job_max_cpu_hours {
            Some(h) if !(h > 0.0 && h.is_finite()) => bail!("--job-max-cpu-hours must be a positive number"),
            Some(h) => Some((h * 3600.0).ceil() as u64),
            None => None,
        },
    };
    let config = ApiConfig {
        data_root,
        max_workers: args.max_workers,
        max_upload: (args.max_upload_mb as u64) << 20,
        device: args.device.device,
        adapter: args.device.adapter,
        limits,
        max_uploads_per_identity: args.max_uploads_per_identity.max(1),
        max_stored_per_identity: args.max_stored_mb_per_identity.saturating_mul(1 << 20),
    };
    eprintln!(
        "jobs run in their own processes, each with at most {} MiB of memory{}",
        limits.memory_bytes.map_or("unlimited".to_string(), |b| (b >> 20).to_string()),
        limits.cpu_seconds.map_or(String::new(), |s| format!(" and {s} CPU seconds"))
    );
    let api = Arc::new(Api::new(store, secrets, config));
    let app = router(api.clone());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        // Jobs are taken up only by a server that holds its state and its address.
        let listener = crate::punchcard::bind(args.listen).await?;
        api.resume_interrupted();
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout();
        writeln!(out, "listening on https://{addr}")?;
        writeln!(out, "certificate sha256 {}", hex(&identity.sha256))?;
        out.flush()?;
        eprintln!("punchcard: state in {}", args.state_dir.display());
        crate::punchcard::serve_tls(listener, &identity, app, limits_of_connections).await
    })
}

/// Holds an exclusive lock on `state_dir/server.lock` for as long as the returned file is open.
fn lock_state_dir(state_dir: &std::path::Path) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("server.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock takes an open descriptor (the file outlives the call) and flags by value.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        bail!(
            "another job server uses the state directory {} (it holds {}): stop it first, or give this one its own --state-dir",
            state_dir.display(),
            path.display()
        );
    }
    Ok(file)
}
