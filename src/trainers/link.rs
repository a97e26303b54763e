//! A worker's link to the parameter server, as the worker policies see it: requests are queued and
//! answered in order (so a worker's commit is applied before its next pull is answered), pulls are
//! taken when the worker is ready for them (communication overlaps the local steps), and the time
//! the worker spent blocked on the network is counted.
//!
//! [`QuicLink`] runs the requests on a tokio runtime beside the engine thread, reconnecting (same
//! worker id, same sequence numbers, so a retried commit is applied once) when the connection is
//! lost; [`MemoryLink`] applies them to an in-process [`ServerCore`] (tests of the policies).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use distk_net::NetError;
use distk_net::client::{ConnectOptions, PsClient, attempt_timeout};
use distk_net::server::ServerCore;

/// What a link observed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// The server clock at the last answer.
    pub clock: u64,
    /// The staleness of the last acknowledged commit.
    pub staleness: u64,
    /// Commits acknowledged.
    pub commits: u64,
    /// Pulls answered.
    pub pulls: u64,
    /// Seconds the worker was blocked waiting on the network.
    pub wait_s: f64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
}

/// The parameter server as a worker policy sees it.
pub trait Link {
    /// Queues a commit (for averaging: whole weights of `round`).
    fn commit(&mut self, payload: Vec<f32>, round: u64) -> Result<()>;
    /// Queues a pull (for averaging: the mean of `round`, once it closed).
    fn request_pull(&mut self, round: u64) -> Result<()>;
    /// Queues a commit and a pull of the centre after it.
    fn commit_and_pull(&mut self, payload: Vec<f32>, round: u64) -> Result<()> {
        self.commit(payload, round)?;
        self.request_pull(round)
    }
    /// The centre of the oldest queued pull; `None` when it has not arrived and `wait` is false.
    fn take_pull(&mut self, wait: bool) -> Result<Option<Vec<f32>>>;
    /// Waits until every queued request is answered.
    fn flush(&mut self) -> Result<()>;
    /// What the link observed.
    fn stats(&self) -> LinkStats;
}

/// A link to an in-process server core; a pull becomes visible after `delay` non-blocking looks
/// (to test the overlap of communication and local steps).
pub struct MemoryLink {
    core: Arc<Mutex<ServerCore>>,
    worker: u32,
    seq: u64,
    delay: usize,
    pulls: VecDeque<(Vec<f32>, usize)>,
    stats: LinkStats,
}

impl MemoryLink {
    /// Worker `worker` of `core`.
    pub fn new(core: Arc<Mutex<ServerCore>>, worker: u32, delay: usize) -> Self {
        MemoryLink { core, worker, seq: 0, delay, pulls: VecDeque::new(), stats: LinkStats::default() }
    }
}

impl Link for MemoryLink {
    fn commit(&mut self, payload: Vec<f32>, _round: u64) -> Result<()> {
        self.seq += 1;
        let mut core = self.core.lock().map_err(|_| anyhow!("poisoned"))?;
        let o = core.commit(self.worker, self.seq, &payload)?;
        self.stats.clock = o.clock;
        self.stats.staleness = o.staleness;
        self.stats.commits += 1;
        Ok(())
    }
    fn request_pull(&mut self, _round: u64) -> Result<()> {
        let mut core = self.core.lock().map_err(|_| anyhow!("poisoned"))?;
        let (clock, centre) = core.pull(self.worker);
        self.stats.clock = clock;
        self.pulls.push_back((centre.to_vec(), self.delay));
        Ok(())
    }
    fn take_pull(&mut self, wait: bool) -> Result<Option<Vec<f32>>> {
        let Some(front) = self.pulls.front_mut() else { bail!("take_pull without a pull in flight") };
        if !wait && front.1 > 0 {
            front.1 -= 1;
            return Ok(None);
        }
        self.stats.pulls += 1;
        Ok(self.pulls.pop_front().map(|p| p.0))
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn stats(&self) -> LinkStats {
        self.stats
    }
}

enum Request {
    Commit { seq: u64, round: u64, payload: Vec<f32> },
    CommitPull { seq: u64, payload: Vec<f32> },
    Pull { round: u64 },
    Epoch(u64),
    Report(Vec<u8>),
    Done(Vec<f32>),
}

enum Response {
    Acked { clock: u64, staleness: u64 },
    Pulled { clock: u64, centre: Vec<f32> },
    AckedPulled { clock: u64, staleness: u64, centre: Vec<f32> },
    Ok,
    Reconnected,
    Failed(String),
}

/// A connection that reconnects (same worker id, same process) while the server is unreachable,
/// for up to `reconnect_timeout`, then retries the request.
pub struct Reconnecting {
    opts: ConnectOptions,
    client: Option<PsClient>,
    reconnect_timeout: Duration,
    first_seq: u64,
    ack_log: Option<std::fs::File>,
}

impl Reconnecting {
    /// Wraps a connected client; its commits are numbered after the last one the server applied
    /// under its id.
    pub fn new(client: PsClient, mut opts: ConnectOptions, reconnect_timeout: Duration) -> Self {
        opts.worker = client.worker;
        let first_seq = client.last_seq;
        Reconnecting { opts, client: Some(client), reconnect_timeout, first_seq, ack_log: None }
    }

    /// Appends a line per acknowledged commit (`unix_ms worker seq clock`) to `path`.
    pub fn with_ack_log(mut self, path: &std::path::Path) -> Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow!("cannot open the acknowledgement log {}: {e}", path.display()))?;
        self.ack_log = Some(f);
        Ok(self)
    }

    fn log_ack(&mut self, seq: u64, clock: u64) {
        if let Some(f) = &mut self.ack_log {
            use std::io::Write;
            let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
            // One write per line: a worker killed right after it leaves whole lines behind.
            let _ = f.write_all(format!("{ms} {} {seq} {clock}\n", self.opts.worker).as_bytes());
        }
    }

    /// The worker id.
    pub fn worker(&self) -> u32 {
        self.opts.worker
    }

    async fn run(&mut self, req: &Request, reconnects: &mut u64) -> Result<Response, NetError> {
        let mut first_failure: Option<Instant> = None;
        let mut attempt = 0u32;
        loop {
            if self.client.is_none() {
                // A server that went away is usually back within seconds: short handshakes first,
                // so one sent while it was down is not waited on; longer ones if it stays slow.
                let handshake = attempt_timeout(attempt.saturating_sub(10), self.opts.request_timeout);
                attempt += 1;
                match PsClient::connect_within(self.opts.clone(), true, handshake).await {
                    Ok(c) => {
                        self.client = Some(c);
                        *reconnects += 1;
                    }
                    Err(e) if e.is_retryable() => {
                        let since = *first_failure.get_or_insert_with(Instant::now);
                        if since.elapsed() > self.reconnect_timeout {
                            return Err(NetError::Connection(format!(
                                "the parameter server stayed unreachable for {:?}: {e}",
                                self.reconnect_timeout
                            )));
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        continue;
                    }
                    Err(NetError::Refused(m)) if matches!(req, Request::Done(_)) && m.contains("already finished") => {
                        return Ok(Response::Ok);
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(c) = self.client.as_ref() else { continue };
            let r = match req {
                Request::Commit { seq, round, payload } => c
                    .commit(*seq, *round, payload)
                    .await
                    .map(|a| Response::Acked { clock: a.clock, staleness: a.staleness }),
                Request::CommitPull { seq, payload } => {
                    let mut centre = Vec::new();
                    c.commit_pull(*seq, payload, &mut centre).await.map(|a| Response::AckedPulled {
                        clock: a.clock,
                        staleness: a.staleness,
                        centre,
                    })
                }
                Request::Pull { round } => {
                    let mut centre = Vec::new();
                    c.pull(*round, &mut centre).await.map(|clock| Response::Pulled { clock, centre })
                }
                Request::Epoch(e) => c.epoch_done(*e).await.map(|_| Response::Ok),
                Request::Report(j) => c.report(j).await.map(|_| Response::Ok),
                Request::Done(w) => c.done(w).await.map(|_| Response::Ok),
            };
            match r {
                Ok(resp) => {
                    match (req, &resp) {
                        (Request::Commit { seq, .. }, Response::Acked { clock, .. })
                        | (Request::CommitPull { seq, .. }, Response::AckedPulled { clock, .. }) => {
                            self.log_ack(*seq, *clock)
                        }
                        _ => {}
                    }
                    return Ok(resp);
                }
                // A retried `Done` whose first try was applied (its acknowledgement was lost).
                Err(NetError::Refused(m)) if matches!(req, Request::Done(_)) && m.contains("already finished") => {
                    return Ok(Response::Ok);
                }
                Err(e) if e.is_retryable() => {
                    self.client = None;
                    let since = *first_failure.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.reconnect_timeout {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A link over QUIC: requests run in order on a tokio task while the engine thread goes on. With
/// `merge` (asynchronous trainers), [`Link::commit_and_pull`] travels as one request (one round
/// trip, one sync of the server's log).
pub struct QuicLink {
    tx: tokio::sync::mpsc::UnboundedSender<Request>,
    rx: std::sync::mpsc::Receiver<Response>,
    outstanding: usize,
    pulls: VecDeque<Vec<f32>>,
    stats: LinkStats,
    seq: u64,
    merge: bool,
}

impl QuicLink {
    /// Starts the network task for `conn` on `runtime`; `merge` lets a commit and the pull after
    /// it travel together (not for averaging, whose pulls wait for a round).
    pub fn start(runtime: &tokio::runtime::Handle, mut conn: Reconnecting, merge: bool) -> Self {
        let (tx, mut req_rx) = tokio::sync::mpsc::unbounded_channel::<Request>();
        let (resp_tx, rx) = std::sync::mpsc::channel();
        let seq = conn.first_seq;
        runtime.spawn(async move {
            let mut reconnects = 0u64;
            while let Some(req) = req_rx.recv().await {
                let before = reconnects;
                let resp = conn.run(&req, &mut reconnects).await;
                if reconnects > before {
                    let _ = resp_tx.send(Response::Reconnected);
                }
                match resp {
                    Ok(r) => {
                        if resp_tx.send(r).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = resp_tx.send(Response::Failed(e.to_string()));
                        return;
                    }
                }
            }
        });
        QuicLink { tx, rx, outstanding: 0, pulls: VecDeque::new(), stats: LinkStats::default(), seq, merge }
    }

    fn send(&mut self, r: Request) -> Result<()> {
        self.tx.send(r).map_err(|_| anyhow!("the network task ended"))?;
        self.outstanding += 1;
        Ok(())
    }

    fn absorb(&mut self, r: Response) -> Result<()> {
        match r {
            Response::Reconnected => {
                self.stats.reconnects += 1;
                return Ok(());
            }
            Response::Acked { clock, staleness } => {
                self.stats.clock = clock;
                self.stats.staleness = staleness;
                self.stats.commits += 1;
            }
            Response::Pulled { clock, centre } => {
                self.stats.clock = clock;
                self.stats.pulls += 1;
                self.pulls.push_back(centre);
            }
            Response::AckedPulled { clock, staleness, centre } => {
                self.stats.clock = clock;
                self.stats.staleness = staleness;
                self.stats.commits += 1;
                self.stats.pulls += 1;
                self.pulls.push_back(centre);
            }
            Response::Ok => {}
            Response::Failed(e) => bail!("parameter server: {e}"),
        }
        self.outstanding -= 1;
        Ok(())
    }

    /// Takes every answer that has arrived; with `block`, waits for one first.
    fn pump(&mut self, block: bool) -> Result<()> {
        if block && self.outstanding > 0 {
            let t = Instant::now();
            let r = self.rx.recv().map_err(|_| anyhow!("the network task ended"))?;
            self.stats.wait_s += t.elapsed().as_secs_f64();
            self.absorb(r)?;
        }
        while let Ok(r) = self.rx.try_recv() {
            self.absorb(r)?;
        }
        Ok(())
    }

    /// Queues "epoch `e` done".
    pub fn epoch_done(&mut self, epoch: u64) -> Result<()> {
        self.send(Request::Epoch(epoch))
    }

    /// Sends the history and says done (with final weights, or none), and waits for both.
    pub fn finish(&mut self, history: Vec<u8>, final_weights: Vec<f32>) -> Result<()> {
        self.send(Request::Report(history))?;
        self.send(Request::Done(final_weights))?;
        self.flush()
    }
}

impl Link for QuicLink {
    fn commit(&mut self, payload: Vec<f32>, round: u64) -> Result<()> {
        self.seq += 1;
        let seq = self.seq;
        self.send(Request::Commit { seq, round, payload })?;
        self.pump(false)
    }
    fn commit_and_pull(&mut self, payload: Vec<f32>, round: u64) -> Result<()> {
        if !self.merge {
            self.commit(payload, round)?;
            return self.request_pull(round);
        }
        self.seq += 1;
        let seq = self.seq;
        self.send(Request::CommitPull { seq, payload })?;
        self.pump(false)
    }
    fn request_pull(&mut self, round: u64) -> Result<()> {
        self.send(Request::Pull { round })?;
        self.pump(false)
    }
    fn take_pull(&mut self, wait: bool) -> Result<Option<Vec<f32>>> {
        self.pump(false)?;
        while wait && self.pulls.is_empty() {
            if self.outstanding == 0 {
                bail!("take_pull without a pull in flight");
            }
            self.pump(true)?;
        }
        Ok(self.pulls.pop_front())
    }
    fn flush(&mut self) -> Result<()> {
        while self.outstanding > 0 {
            self.pump(true)?;
        }
        Ok(())
    }
    fn stats(&self) -> LinkStats {
        self.stats
    }
}
