//! Each Punchcard job trains in its own process, apart from the server: the server starts
//! `distk-gpu punchcard-job <job folder>` (the same binary) with the job's launch file, and the
//! process limits its own memory and CPU before it reads the model. It reports its progress as JSON
//! lines on standard output, stops when its standard input closes (a cancel), and ends with a line
//! saying how the job ended. A job that aborts, runs out of memory or is killed fails alone: the
//! server records why, from the exit status and the last lines of the job's log (`job.log`).
//!
//! The process dies with the server thread that watches it (`PR_SET_PDEATHSIG`), so a server that
//! is killed leaves no job behind, and the restarted server resumes the job from its checkpoint
//! folder (every acknowledged commit is in its write-ahead log).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::data::atomic::write_private;
use crate::distributed::PartialRun;
use crate::distributed::launch::{LocalRun, train_local};
use crate::distributed::ps::RunProgress;
use crate::job_spec::JobSpec;
use crate::punchcard::jobs::{JobRequest, JobState};
use crate::runtime::DeviceChoice;
use crate::trainers::TrainerKind;

/// The launch file in a job's folder.
pub const LAUNCH_FILE: &str = "launch.json";
/// The job process's standard error, in the job's folder.
pub const LOG_FILE: &str = "job.log";
/// The job's checkpoint folder (snapshots and write-ahead log of its parameter server).
pub const CHECKPOINT_DIR: &str = "checkpoints";

/// Limits a job's process sets on itself before it reads anything the user sent.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobLimits {
    /// Most bytes of data memory (`RLIMIT_DATA`: heap and private mappings).
    pub memory_bytes: Option<u64>,
    /// Most CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: Option<u64>,
}

/// What the server hands a job's process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobLaunch {
    /// The uploaded model.
    pub model: PathBuf,
    /// Training rows (uploaded, or under the data root).
    pub data: PathBuf,
    /// Validation rows.
    pub validation: Option<PathBuf>,
    /// What the client asked.
    pub request: JobRequest,
    /// `--device` of the server.
    pub device: String,
    /// `--adapter` of the server.
    pub adapter: Option<usize>,
    /// Continue from the job's checkpoint folder.
    pub resume: bool,
    /// Its limits.
    pub limits: JobLimits,
    /// The server's process id: a process whose parent is another one ends at once.
    pub server_pid: u32,
}

/// A line of the job process's standard output.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Report {
    /// How far it is.
    Progress(RunProgress),
    /// How it ended.
    Ended { state: JobState, error: Option<String> },
}

/// The end of a job as the server records it.
#[derive(Debug)]
pub struct JobEnd {
    /// Succeeded, failed or cancelled.
    pub state: JobState,
    /// Why it failed, or what went wrong in a run that still produced a model.
    pub error: Option<String>,
}

/// How long a cancelled job may take to stop before it is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(120);

/// A job process the server started: closing its input cancels it.
pub struct JobProcess {
    stdin: Mutex<Option<ChildStdin>>,
    cancelled: AtomicBool,
    pid: u32,
    /// Set once the process was waited for (its pid may then belong to another process).
    reaped: Arc<AtomicBool>,
}

impl JobProcess {
    /// Asks the job to stop: it commits what it has, writes its model and ends as cancelled. One
    /// that has not ended after [`CANCEL_GRACE`] (still loading its data, or stuck) is killed.
    pub fn cancel(&self) {
        if self.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        // Dropping the pipe's end closes the process's standard input.
        drop(self.stdin.lock().unwrap_or_else(|p| p.into_inner()).take());
        let (pid, reaped) = (self.pid, self.reaped.clone());
        std::thread::spawn(move || {
            std::thread::sleep(CANCEL_GRACE);
            if !reaped.load(Ordering::SeqCst)
                && let Ok(pid) = libc::pid_t::try_from(pid)
            {
                // SAFETY: kill takes a pid and a signal by value; the process was not reaped, so
                // the pid is still the job's.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
    }
}

/// Writes the launch file of a job into its folder `dir`.
pub fn write_launch(dir: &Path, launch: &JobLaunch) -> Result<()> {
    write_private(&dir.join(LAUNCH_FILE), |f| Ok(serde_json::to_writer_pretty(f, launch)?))
}

/// Starts the process of the job in `dir` (whose launch file is written) from a thread that
/// watches it to its end: progress goes into `progress`, and `on_end` hears how the job ended.
pub fn start(
    dir: &Path,
    limits: JobLimits,
    progress: Arc<Mutex<RunProgress>>,
    on_end: impl FnOnce(JobEnd) + Send + 'static,
) -> Result<Arc<JobProcess>> {
    // This very binary, also when its file was replaced (upgraded) while the server runs.
    let exe = Path::new("/proc/self/exe");
    let log_path = dir.join(LOG_FILE);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("punchcard-job").arg(dir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(log);
    let (tx, rx) = std::sync::mpsc::channel();
    // The process is started by the thread that waits for it: PR_SET_PDEATHSIG fires when the
    // starting thread ends, which is then never before the process itself.
    std::thread::Builder::new()
        .name("job-process".into())
        .spawn(move || {
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(anyhow::anyhow!("cannot start the job's process: {e}")));
                    return;
                }
            };
            let reaped = Arc::new(AtomicBool::new(false));
            let process = Arc::new(JobProcess {
                stdin: Mutex::new(child.stdin.take()),
                cancelled: AtomicBool::new(false),
                pid: child.id(),
                reaped: reaped.clone(),
            });
            let _ = tx.send(Ok(process.clone()));
            let mut ended = None;
            if let Some(out) = child.stdout.take() {
                // Lines that are not reports (a library printing, bytes that are not UTF-8) are
                // skipped, not taken for the end of the output.
                let mut out = BufReader::new(out);
                let mut line = Vec::new();
                while out.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                    match serde_json::from_str::<Report>(String::from_utf8_lossy(&line).trim()) {
                        Ok(Report::Progress(p)) => *progress.lock().unwrap_or_else(|e| e.into_inner()) = p,
                        Ok(Report::Ended { state, error }) => ended = Some(JobEnd { state, error }),
                        Err(_) => {}
                    }
                    line.clear();
                }
            }
            let status = child.wait();
            reaped.store(true, Ordering::SeqCst);
            let cancelled = process.cancelled.load(Ordering::SeqCst);
            let end = match (ended, status) {
                // A job its owner cancelled is cancelled, even when it had finished its work.
                (Some(JobEnd { state: JobState::Succeeded, error }), _) if cancelled => {
                    JobEnd { state: JobState::Cancelled, error }
                }
                (Some(end), _) => end,
                (None, status) => {
                    let why = match status {
                        Ok(s) => describe_exit(s, &limits, &log_path),
                        Err(e) => format!("cannot wait for the job's process: {e}"),
                    };
                    let state = if cancelled { JobState::Cancelled } else { JobState::Failed };
                    JobEnd { state, error: Some(why) }
                }
            };
            on_end(end);
        })
        .context("cannot start the thread that watches the job")?;
    rx.recv().context("the job's watching thread ended before starting it")?
}

/// Why a job process that said nothing of its end ended: its exit status and the end of its log.
fn describe_exit(status: ExitStatus, limits: &JobLimits, log: &Path) -> String {
    let tail = log_tail(log, 6);
    let mib = |b: u64| b >> 20;
    let why = match status.signal() {
        Some(libc::SIGABRT) if tail.contains("memory allocation of") => match limits.memory_bytes {
            Some(b) => format!("the job ran out of memory: it may use {} MiB (--job-max-memory-mb)", mib(b)),
            None => "the job ran out of memory".to_string(),
        },
        Some(libc::SIGXCPU) => match limits.cpu_seconds {
            Some(s) => format!("the job used up its CPU time of {s} s (--job-max-cpu-hours)"),
            None => "the job used up its CPU time".to_string(),
        },
        Some(libc::SIGKILL) => {
            "the job's process was killed (SIGKILL: the machine's out-of-memory killer, its CPU limit or an operator)"
                .to_string()
        }
        Some(s) => format!("the job's process ended by signal {s}"),
        None => format!("the job's process exited with status {} without a result", status.code().unwrap_or(-1)),
    };
    if tail.is_empty() { why } else { format!("{why}; its log ends: {tail}") }
}

/// The last `lines` lines of the file at `path` (read from its last 16 KB), backtrace frames left
/// out, joined by ` | `.
fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map_or(0, |m| m.len());
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(len.saturating_sub(16 << 10))).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let frame = |l: &str| {
        l.starts_with("at ")
            || l.starts_with("stack backtrace:")
            || l.starts_with("note: ")
            || l.split_once(": ").is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let all: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !frame(l)).collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

/// The job's process (`distk-gpu punchcard-job DIR`): trains the job of `dir/launch.json` and
/// reports on standard output.
pub fn run_job_process(dir: &Path) -> Result<()> {
    let path = dir.join(LAUNCH_FILE);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let launch: JobLaunch =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is not a job launch file", path.display()))?;
    die_with_server(launch.server_pid)?;
    apply_limits(&launch.limits)?;
    // A model whose buffers alone exceed the job's memory is refused by name, not aborted.
    if let Some(bytes) = launch.limits.memory_bytes {
        distk_engine::memory::set_budget(distk_engine::memory::budget().min(bytes));
    }
    let device: DeviceChoice = launch.device.parse().map_err(anyhow::Error::msg)?;
    let kind = launch.request.trainer.trainer.unwrap_or(TrainerKind::Adag);
    let spec = JobSpec::resolve(&launch.request.job, &launch.request.trainer, kind)?;

    // Standard input closes when the server cancels the job (or is gone): stop.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            stop.store(true, Ordering::SeqCst);
        });
    }
    let progress = Arc::new(Mutex::new(RunProgress::default()));
    let finished = Arc::new(AtomicBool::new(false));
    let reporter = {
        let (progress, finished) = (progress.clone(), finished.clone());
        std::thread::spawn(move || {
            let mut last = None;
            loop {
                let done = finished.load(Ordering::SeqCst);
                let now = progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
                if last.as_ref() != Some(&now) {
                    report(&Report::Progress(now.clone()));
                    last = Some(now);
                }
                if done {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let run = LocalRun {
        model: launch.model.clone(),
        data: launch.data.clone(),
        validation: launch.validation.clone(),
        spec,
        workers: launch.request.workers,
        out: dir.join("trained.onnx"),
        history: Some(dir.join("history.json")),
        history_csv: None,
        plot: None,
        checkpoint_dir: Some(dir.join(CHECKPOINT_DIR)),
        checkpoint_every: 500,
        wal: true,
        resume: launch.resume,
        snapshot_copy: None,
        device,
        adapter: launch.adapter,
        stop: stop.clone(),
        verbose: false,
        progress: Some(progress),
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| train_local(run)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the training crashed (a bug: please report it)")));
    finished.store(true, Ordering::SeqCst);
    let _ = reporter.join();
    let (state, error) = match result {
        Ok(()) => (JobState::Succeeded, None),
        Err(e) if stop.load(Ordering::SeqCst) => (JobState::Cancelled, Some(format!("{e:#}"))),
        Err(e) if e.downcast_ref::<PartialRun>().is_some() => (JobState::Succeeded, Some(format!("{e:#}"))),
        Err(e) => (JobState::Failed, Some(format!("{e:#}"))),
    };
    if let Some(e) = &error {
        eprintln!("{e}");
    }
    report(&Report::Ended { state, error });
    Ok(())
}

/// Writes one report line (a closed pipe means the server is gone: nothing to tell).
fn report(r: &Report) {
    if let Ok(line) = serde_json::to_string(r) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Makes this process end with the server thread that started it, and refuses to run when that
/// server is already gone.
fn die_with_server(server_pid: u32) -> Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes a signal number by value and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot tie the job's process to the server");
    }
    // SAFETY: getppid has no arguments and cannot fail.
    let parent = unsafe { libc::getppid() };
    if u32::try_from(parent).ok() != Some(server_pid) {
        bail!("the job server that started this job (process {server_pid}) is gone");
    }
    Ok(())
}

/// Sets the job's limits on this process (no core files: a job that aborts must not fill the
/// disk) and lowers its priority below the server's.
fn apply_limits(limits: &JobLimits) -> Result<()> {
    set_limit(libc::RLIMIT_CORE, 0, 0).context("cannot turn off the job's core files")?;
    if let Some(bytes) = limits.memory_bytes {
        set_limit(libc::RLIMIT_DATA, bytes, bytes).context("cannot limit the job's memory")?;
    }
    if let Some(secs) = limits.cpu_seconds {
        // SIGXCPU at the soft limit, SIGKILL 5 s later.
        set_limit(libc::RLIMIT_CPU, secs, secs.saturating_add(5)).context("cannot limit the job's CPU time")?;
    }
    // SAFETY: getpriority and setpriority take their arguments by value; getpriority's -1 is
    // also a valid priority, and a failed setpriority only leaves the priority as it was.
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        libc::setpriority(libc::PRIO_PROCESS, 0, (now + 10).min(19));
    }
    Ok(())
}

/// Sets `resource` to `soft` and `hard`, each at most the present hard limit (which an
/// unprivileged process cannot raise).
fn set_limit(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> std::io::Result<()> {
    let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one `rlimit` through the valid, exclusive pointer it is given.
    if unsafe { libc::getrlimit(resource, &mut now) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let cap = |v: u64| (v as libc::rlim_t).min(now.rlim_max);
    let limit = libc::rlimit { rlim_cur: cap(soft), rlim_max: cap(hard) };
    // SAFETY: setrlimit reads one `rlimit` through the valid pointer it is given.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Half of this machine's memory: the default memory limit of a job.
pub fn default_job_memory() -> Option<u64> {
    crate::runtime::machine_memory().map(|m| m / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_abort_for_memory_names_the_limit_and_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(LOG_FILE);
        let frames =
            "stack backtrace:\n   0: std::alloc::rust_oom\n             at /rustc/library/std/src/alloc.rs:1\n";
        let log_text = format!("training with 2 workers\n\nmemory allocation of 393216000 bytes failed\n{frames}");
        std::fs::write(&log, log_text).unwrap();
        let limits = JobLimits { memory_bytes: Some(300 << 20), cpu_seconds: None };
        let why = describe_exit(ExitStatus::from_raw(libc::SIGABRT), &limits, &log);
        assert!(why.starts_with("the job ran out of memory: it may use 300 MiB (--job-max-memory-mb)"), "{why}");
        assert!(why.ends_with("training with 2 workers | memory allocation of 393216000 bytes failed"), "{why}");
        let why =
            describe_exit(ExitStatus::from_raw(libc::SIGXCPU), &JobLimits { cpu_seconds: Some(60), ..limits }, &log);
        assert!(why.starts_with("the job used up its CPU time of 60 s"), "{why}");
        let why = describe_exit(ExitStatus::from_raw(3 << 8), &limits, &dir.path().join("none"));
        assert_eq!(why, "the job's process exited with status 3 without a result");
    }

    #[test]
    fn report_lines_read_back() {
        let line = serde_json::to_string(&Report::Ended { state: JobState::Failed, error: Some("x".into()) }).unwrap();
        assert!(matches!(serde_json::from_str(&line).unwrap(), Report::Ended { state: JobState::Failed, .. }));
        let p = RunProgress { epochs_done: 2, ..Default::default() };
        let line = serde_json::to_string(&Report::Progress(p.clone())).unwrap();
        assert!(matches!(serde_json::from_str(&line).unwrap(), Report::Progress(q) if q == p));
    }
}
