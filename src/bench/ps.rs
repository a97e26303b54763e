//! `distk-gpu bench ps`: the parameter server's commit path on loopback (commits/s and GB/s for
//! models of 10k, 1M and 10M parameters with 1, 2 and 4 clients), the time to apply a 10M-parameter
//! delta beside a plain memory copy of the same size, and the commit path beside raw quinn stream
//! throughput with the same endpoint settings, all in one process and sitting; then the cost of
//! durability: commits/s with the write-ahead log (group commit, with the checkpoints `ps` takes)
//! beside without, at 1M and 10M parameters, runs interleaved, and the time to recover (snapshot +
//! replay) from the longest log the checkpoint policy lets grow.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use distk_net::auth::{SecretEntry, Secrets};
use distk_net::client::{ConnectOptions, PsClient};
use distk_net::durable::{self, CheckpointPolicy};
use distk_net::endpoint::{client_endpoint, server_endpoint};
use distk_net::host::{Host, HostConfig, serve};
use distk_net::journal::Op;
use distk_net::membership::Membership;
use distk_net::rules::Add;
use distk_net::server::ServerCore;
use distk_net::state::PsState;
use distk_net::tls::{Identity, Trust};
use distk_net::wal::{Wal, WalOptions};
use distk_net::wire::ANY_WORKER;
use serde::Serialize;

use crate::bench::median;

/// Commits over loopback.
#[derive(Clone, Debug, Serialize)]
pub struct CommitResult {
    /// Parameters per commit.
    pub params: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Commits applied and acknowledged per second (all clients).
    pub commits_per_s: f64,
    /// Payload GB/s (all clients).
    pub gb_per_s: f64,
}

/// Commits/s with the write-ahead log beside without, same sitting, runs interleaved.
#[derive(Clone, Debug, Serialize)]
pub struct WalResult {
    /// Parameters per commit.
    pub params: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Median commits/s without the log.
    pub no_wal_commits_per_s: f64,
    /// Median commits/s with the log (fsync before every acknowledgement, checkpoints included).
    pub wal_commits_per_s: f64,
    /// with / without.
    pub ratio: f64,
    /// Snapshots written during the runs with the log.
    pub snapshots: u64,
}

/// Recovery from the longest log the checkpoint policy allows.
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryResult {
    /// Parameters.
    pub params: usize,
    /// Commits replayed.
    pub replayed_commits: u64,
    /// MB of log replayed.
    pub log_mb: f64,
    /// Seconds to read the snapshot and replay the log (page cache dropped is not attempted: the
    /// files were just written).
    pub seconds: f64,
}

/// Everything `bench ps` measured.
#[derive(Clone, Debug, Serialize)]
pub struct PsBenchReport {
    /// Commit throughput rows.
    pub commits: Vec<CommitResult>,
    /// Applying a 10M delta to the centre, GB/s of delta.
    pub apply_gb_per_s: f64,
    /// Copying 10M floats, GB/s.
    pub memcpy_gb_per_s: f64,
    /// apply / memcpy.
    pub apply_vs_memcpy: f64,
    /// Raw quinn: one 10M-float message per stream, one client, GB/s.
    pub raw_quinn_gb_per_s: f64,
    /// The commit path (10M, one client) / raw quinn.
    pub commit_vs_raw_quinn: f64,
    /// Where the write-ahead log was written.
    pub wal_dir: String,
    /// With and without the write-ahead log.
    pub wal: Vec<WalResult>,
    /// Recovery times.
    pub recovery: Vec<RecoveryResult>,
}

const SECRET: &str = "bench-secret-0123456789abcdef";

fn options(addr: std::net::SocketAddr, pin: [u8; 32]) -> ConnectOptions {
    ConnectOptions {
        addr,
        server_name: "localhost".into(),
        trust: Trust::Pinned(pin),
        secret: SECRET.into(),
        worker: ANY_WORKER,
        max_frame: 1 << 30,
        request_timeout: Duration::from_secs(60),
        pull_timeout: Duration::from_secs(60),
        incarnation: 1,
    }
}

/// Takes checkpoints of `host` into `dir` by `ps`'s policy until `stop`; returns how many.
fn checkpointer(
    host: Arc<Host>,
    dir: std::path::PathBuf,
    policy: CheckpointPolicy,
    stop: Arc<AtomicBool>,
) -> Result<u64> {
    let (mut last, mut n) = (0u64, 0u64);
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let clock = host.lock().core.clock();
        let bytes = host.wal().map_or(0, |w| w.bytes_since_rotation());
        if policy.due(clock - last, bytes) {
            let snap = host.capture("bench", || {})?;
            durable::write_checkpoint(&dir, host.wal(), &snap)?;
            last = snap.clock;
            n += 1;
        }
    }
    Ok(n)
}

/// Commits/s over loopback; with `wal_dir`, every commit is written ahead (and checkpoints taken)
/// there. Returns the result and the snapshots taken.
async fn commit_point(
    params: usize,
    clients: usize,
    seconds: f64,
    wal_dir: Option<&Path>,
) -> Result<(CommitResult, u64)> {
    let id = Identity::self_signed(&[])?;
    let endpoint = server_endpoint(([127, 0, 0, 1], 0).into(), &id)?;
    let addr = endpoint.local_addr()?;
    let state = PsState::new(ServerCore::new(vec![0.0; params], Box::new(Add)), Membership::new(clients as u32), None);
    let config = HostConfig {
        max_frame: params * 4 + (1 << 20),
        job: Arc::new(Vec::new()),
        round_timeout: Duration::from_secs(60),
        hello_timeout: Duration::from_secs(10),
    };
    let policy = CheckpointPolicy::new(500, params);
    let wal = match wal_dir {
        Some(dir) => durable::start(
            dir,
            &state,
            "bench",
            Some(WalOptions::for_records(params as u64 * 4 + 64, policy.log_bytes)),
        )?,
        None => None,
    };
    let (host, _events) = Host::new(state, config, wal);
    let stop = Arc::new(AtomicBool::new(false));
    let ckpt = wal_dir.map(|dir| {
        let (host, dir, stop) = (host.clone(), dir.to_path_buf(), stop.clone());
        std::thread::spawn(move || checkpointer(host, dir, policy, stop))
    });
    let secrets = Secrets(vec![SecretEntry { secret: SECRET.into(), identity: "bench".into() }]);
    tokio::spawn(serve(endpoint.clone(), host, Arc::new(secrets)));
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(PsClient::connect(options(addr, id.sha256), false).await?);
    }
    let delta = vec![1e-6f32; params];
    // One warm-up commit each.
    for c in &conns {
        c.commit(1, 0, &delta).await?;
    }
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for c in conns {
        let delta = delta.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let t = Instant::now();
            while t.elapsed() < deadline || n < 3 {
                c.commit(n + 2, 0, &delta).await?;
                n += 1;
            }
            Ok::<u64, distk_net::NetError>(n)
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await.context("a bench client panicked")??;
    }
    let secs = start.elapsed().as_secs_f64();
    endpoint.close(0u32.into(), b"bench done");
    stop.store(true, Ordering::SeqCst);
    let snapshots = match ckpt {
        Some(t) => t.join().map_err(|_| anyhow::anyhow!("the checkpoint thread panicked"))??,
        None => 0,
    };
    let r = CommitResult {
        params,
        clients,
        commits_per_s: total as f64 / secs,
        gb_per_s: total as f64 * params as f64 * 4.0 / secs / 1e9,
    };
    Ok((r, snapshots))
}

/// Recovery from a snapshot and the longest log the checkpoint policy lets grow at `params`.
fn recovery_point(params: usize, dir: &Path) -> Result<RecoveryResult> {
    let fresh = || PsState::new(ServerCore::new(vec![0.0; params], Box::new(Add)), Membership::new(1), None);
    let state = fresh();
    drop(durable::start(dir, &state, "bench", None)?);
    let policy = CheckpointPolicy::new(u64::MAX, params);
    let options = WalOptions::for_records(params as u64 * 4 + 64, policy.log_bytes);
    let (wal, _) = Wal::open(&durable::wal_dir(dir), 0, options, |_, _| Ok(()))?;
    let delta = vec![1e-6f32; params];
    let mut seq = 0u64;
    while wal.bytes_since_rotation() < policy.log_bytes {
        seq += 1;
        let (head, payload) = Op::Commit { worker: 0, seq, payload: &delta }.encode();
        wal.append(&[&head, payload])?;
    }
    wal.durable_blocking(wal.appended())?;
    let log_mb = wal.bytes_since_rotation() as f64 / 1e6;
    drop(wal);
    let mut state = fresh();
    let t = Instant::now();
    let (_, r) = durable::recover(dir, &mut state, "bench", Some(options))?;
    let seconds = t.elapsed().as_secs_f64();
    if state.core.clock() != seq {
        anyhow::bail!("recovery replayed to clock {}, expected {seq}", state.core.clock());
    }
    Ok(RecoveryResult { params, replayed_commits: r.replayed_commits, log_mb, seconds })
}

fn median_f64(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

async fn raw_quinn(params: usize, seconds: f64) -> Result<f64> {
    let id = Identity::self_signed(&[])?;
    let server = server_endpoint(([127, 0, 0, 1], 0).into(), &id)?;
    let addr = server.local_addr()?;
    let max = params * 4 + 1024;
    let srv = server.clone();
    tokio::spawn(async move {
        while let Some(incoming) = srv.accept().await {
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    if recv.read_to_end(max).await.is_err() {
                        return;
                    }
                    let _ = send.write_all(&[1]).await;
                    let _ = send.finish();
                }
            });
        }
    });
    let client = client_endpoint(addr, &Trust::Pinned(id.sha256))?;
    let conn = client.connect(addr, "localhost")?.await?;
    let payload = vec![0u8; params * 4];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds || n < 3 {
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&payload).await?;
        send.finish()?;
        recv.read_to_end(16).await?;
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    server.close(0u32.into(), b"bench done");
    Ok(n as f64 * payload.len() as f64 / secs / 1e9)
}

fn apply_vs_memcpy(params: usize, repeats: usize) -> Result<(f64, f64)> {
    let mut core = ServerCore::new(vec![0.0; params], Box::new(Add));
    let delta = vec![1e-6f32; params];
    let mut apply = Vec::new();
    for seq in 0..repeats as u64 {
        let t = Instant::now();
        core.commit(0, seq + 1, std::hint::black_box(&delta))?;
        apply.push(t.elapsed());
    }
    let src = vec![1.0f32; params];
    let mut dst = vec![0.0f32; params];
    let mut copy = Vec::new();
    for _ in 0..repeats {
        let t = Instant::now();
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
        copy.push(t.elapsed());
    }
    let gb = params as f64 * 4.0 / 1e9;
    Ok((gb / median(apply).as_secs_f64().max(1e-12), gb / median(copy).as_secs_f64().max(1e-12)))
}

/// Runs every measurement (`seconds` per throughput point), printing progress when `verbose`; the
/// write-ahead log goes to a temporary folder in `wal_parent`.
pub fn ps_bench(seconds: f64, repeats: usize, verbose: bool, wal_parent: &Path) -> Result<PsBenchReport> {
    let rt = crate::distributed::net_runtime()?;
    let mut commits = Vec::new();
    for params in [10_000usize, 1_000_000, 10_000_000] {
        for clients in [1usize, 2, 4] {
            let (r, _) = rt.block_on(commit_point(params, clients, seconds, None))?;
            if verbose {
                eprintln!(
                    "commits {:>9} params x {} clients: {:>9.1} commits/s {:>6.3} GB/s",
                    params, clients, r.commits_per_s, r.gb_per_s
                );
            }
            commits.push(r);
        }
    }
    let (apply_gb_per_s, memcpy_gb_per_s) = apply_vs_memcpy(10_000_000, repeats.max(3))?;
    let raw_quinn_gb_per_s = rt.block_on(raw_quinn(10_000_000, seconds))?;
    let commit_10m = commits.iter().find(|c| c.params == 10_000_000 && c.clients == 1).map_or(0.0, |c| c.gb_per_s);
    let tmp = tempfile::Builder::new()
        .prefix("distk-bench-wal-")
        .tempdir_in(wal_parent)
        .with_context(|| format!("cannot make a folder for the log in {}", wal_parent.display()))?;
    let mut wal = Vec::new();
    for params in [1_000_000usize, 10_000_000] {
        for clients in [1usize, 4] {
            let (mut without, mut with, mut snapshots) = (Vec::new(), Vec::new(), 0);
            for _ in 0..repeats.max(1) {
                without.push(rt.block_on(commit_point(params, clients, seconds, None))?.0.commits_per_s);
                let (r, n) = rt.block_on(commit_point(params, clients, seconds, Some(tmp.path())))?;
                with.push(r.commits_per_s);
                snapshots += n;
            }
            let (a, b) = (median_f64(without), median_f64(with));
            let r = WalResult {
                params,
                clients,
                no_wal_commits_per_s: a,
                wal_commits_per_s: b,
                ratio: b / a.max(1e-9),
                snapshots,
            };
            if verbose {
                eprintln!(
                    "wal {:>9} params x {} clients: {:>7.1} commits/s without, {:>7.1} with: {:.2}x ({} snapshots)",
                    params, clients, a, b, r.ratio, snapshots
                );
            }
            wal.push(r);
        }
    }
    let mut recovery = Vec::new();
    for params in [1_000_000usize, 10_000_000] {
        let r = recovery_point(params, tmp.path())?;
        if verbose {
            eprintln!(
                "recovery {:>9} params: {} commits ({:.0} MB of log) in {:.3} s",
                params, r.replayed_commits, r.log_mb, r.seconds
            );
        }
        recovery.push(r);
    }
    Ok(PsBenchReport {
        commits,
        apply_gb_per_s,
        memcpy_gb_per_s,
        apply_vs_memcpy: apply_gb_per_s / memcpy_gb_per_s,
        raw_quinn_gb_per_s,
        commit_vs_raw_quinn: commit_10m / raw_quinn_gb_per_s,
        wal_dir: wal_parent.display().to_string(),
        wal,
        recovery,
    })
}
