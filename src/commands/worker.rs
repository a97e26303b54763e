//! `distk-gpu worker`: one worker of a multi-host run. Needs only the server's address, a secret,
//! a way to trust the server, and its rows; the model and hyper-parameters come from the server.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use distk_net::auth::read_secret_file;
use distk_net::client::{ConnectOptions, new_incarnation};
use distk_net::tls::{Trust, parse_sha256};
use distk_net::wire::ANY_WORKER;

use crate::cli::WorkerArgs;
use crate::commands::object_paths::{Staging, require_local};
use crate::distributed::worker::{WorkerData, WorkerRun, run_worker};

/// Runs one worker.
pub fn run(mut args: WorkerArgs) -> Result<()> {
    require_local("--ack-log", args.ack_log.as_deref(), "the acknowledgement log needs append and fsync")?;
    require_local("--secret-file", Some(&args.secret_file), "secrets stay on this machine")?;
    let mut staging = Staging::default();
    staging.input(&mut args.data)?;
    let addr = args
        .connect
        .to_socket_addrs()
        .with_context(|| format!("--connect {}: not a HOST:PORT address", args.connect))?
        .next()
        .with_context(|| format!("--connect {}: the name resolves to no address", args.connect))?;
    let host = args.connect.rsplit_once(':').map_or(args.connect.as_str(), |(h, _)| h).trim_matches(['[', ']']);
    let trust = match (&args.server_cert_sha256, &args.ca) {
        (Some(h), _) => Trust::Pinned(parse_sha256(h)?),
        (None, Some(ca)) => Trust::ca_file(ca)?,
        (None, None) => {
            bail!("say how to trust the server: --server-cert-sha256 HEX (printed by `distk-gpu ps`) or --ca FILE")
        }
    };
    let secret = read_secret_file(&args.secret_file)?;
    let shard = match &args.shard {
        None => None,
        Some(s) => {
            let parsed = s
                .split_once('/')
                .and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
            match parsed {
                Some((i, n)) if i < n => Some((i, n)),
                _ => bail!("--shard {s}: expected I/N with 0 <= I < N, e.g. --shard 2/8"),
            }
        }
    };
    if !args.data.exists() {
        bail!("--data {}: no such file", args.data.display());
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    }
    let net = crate::distributed::net_runtime()?;
    let run = WorkerRun {
        connect: ConnectOptions {
            addr,
            server_name: args.server_name.clone().unwrap_or_else(|| host.to_string()),
            trust,
            secret,
            worker: args.worker_id.unwrap_or(ANY_WORKER),
            max_frame: usize::MAX / 2,
            request_timeout: Duration::from_secs(60),
            pull_timeout: Duration::from_secs(24 * 3600),
            incarnation: new_incarnation()?,
        },
        reconnect_timeout: Duration::from_secs(args.reconnect_timeout),
        ack_log: args.ack_log.clone(),
        data: WorkerData::File(args.data.clone(), shard),
        device: args.device.device,
        adapter: args.device.adapter,
        stop: stop.clone(),
        verbose: true,
        start_epoch: 0,
    };
    let h = run_worker(run, net.handle())?;
    eprintln!(
        "worker {} {}: {} steps, {} commits acknowledged, {:.1}% of {:.1} s waiting on the network",
        h.worker,
        h.stopped,
        h.steps.len(),
        h.commits_acknowledged,
        100.0 * h.net_wait_fraction,
        h.seconds
    );
    if stop.load(Ordering::SeqCst) {
        bail!("interrupted: the partial window was committed");
    }
    Ok(())
}
