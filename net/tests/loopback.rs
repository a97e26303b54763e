//! The QUIC parameter server on loopback: authenticated commits and pulls from concurrent workers,
//! a wrong secret and a wrong certificate pin refused, a malformed and an oversized frame closing only
//! the offending connection, a vanished worker reported lost, an averaging round over the wire.

use std::sync::Arc;
use std::time::Duration;

use distk_net::auth::Secrets;
use distk_net::averaging::RoundBarrier;
use distk_net::client::{ConnectOptions, PsClient};
use distk_net::endpoint::server_endpoint;
use distk_net::host::{Event, Host, HostConfig, serve};
use distk_net::membership::Membership;
use distk_net::rules::Add;
use distk_net::server::ServerCore;
use distk_net::state::PsState;
use distk_net::tls::{Identity, Trust};
use distk_net::wire::{ANY_WORKER, Header, Kind};
use tokio::sync::mpsc::UnboundedReceiver;

const MAX: usize = 1 << 20;
const SECRET: &str = "s3cret-alice-0123456789";

struct Server {
    opts: ConnectOptions,
    host: Arc<Host>,
    events: UnboundedReceiver<Event>,
}

async fn start(len: usize, workers: u32, averaging: bool) -> Server {
    let id = Identity::self_signed(&[]).unwrap();
    let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), &id).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let state = PsState::new(
        ServerCore::new(vec![0.0; len], Box::new(Add)),
        Membership::new(workers),
        averaging.then(|| RoundBarrier::new(len)),
    );
    let config = HostConfig {
        max_frame: MAX,
        job: Arc::new(b"the job".to_vec()),
        round_timeout: Duration::from_secs(20),
        hello_timeout: Duration::from_secs(5),
    };
    let (host, events) = Host::new(state, config, None);
    let secrets = Arc::new(Secrets::from_json(&format!(r#"[{{"secret": "{SECRET}", "identity": "alice"}}]"#)).unwrap());
    tokio::spawn(serve(endpoint, host.clone(), secrets));
    let opts = ConnectOptions {
        addr,
        server_name: "localhost".into(),
        trust: Trust::Pinned(id.sha256),
        secret: SECRET.into(),
        worker: ANY_WORKER,
        max_frame: MAX,
        request_timeout: Duration::from_secs(10),
        pull_timeout: Duration::from_secs(20),
        incarnation: 1,
    };
    Server { opts, host, events }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_commit_and_pull_over_quic() {
    let s = start(1000, 4, false).await;
    let mut handles = Vec::new();
    for _ in 0..4 {
        let opts = s.opts.clone();
        handles.push(tokio::spawn(async move {
            let c = PsClient::connect(opts, false).await.unwrap();
            assert_eq!(c.fetch_job().await.unwrap(), b"the job");
            let mut centre = Vec::new();
            c.pull(0, &mut centre).await.unwrap();
            for seq in 1..=5u64 {
                c.commit(seq, 0, &vec![1.0; 1000]).await.unwrap();
            }
            // A retry of an applied commit is acknowledged but not applied again.
            c.commit(5, 0, &vec![1.0; 1000]).await.unwrap();
            c.epoch_done(0).await.unwrap();
            c.report(b"{}").await.unwrap();
            c.done(&[]).await.unwrap();
            c.worker
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.sort();
    assert_eq!(ids, vec![0, 1, 2, 3], "the server assigned every place once");
    let st = s.host.lock();
    assert_eq!(st.core.clock(), 20);
    assert!(st.core.centre().iter().all(|&v| v == 20.0));
    assert!(st.members.all_finished());
    assert_eq!(st.members.epochs_done_by_all(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_and_pins_are_refused() {
    let s = start(10, 2, false).await;
    let e = PsClient::connect(ConnectOptions { secret: "a-guess-of-some-length".into(), ..s.opts.clone() }, false)
        .await
        .err()
        .unwrap();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("secret was not accepted"), "{e}");
    let mut other = match s.opts.trust {
        Trust::Pinned(p) => p,
        _ => unreachable!(),
    };
    other[0] ^= 1;
    let e =
        PsClient::connect(ConnectOptions { trust: Trust::Pinned(other), ..s.opts.clone() }, false).await.err().unwrap();
    assert!(e.to_string().contains("not the one we trust"), "{e}");
    let e = PsClient::connect(ConnectOptions { worker: 7, ..s.opts.clone() }, false).await.err().unwrap();
    assert!(e.to_string().contains("outside this run's 2 workers"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let s = start(10, 5, false).await;
    let good = PsClient::connect(s.opts.clone(), false).await.unwrap();
    let bad = PsClient::connect(s.opts.clone(), false).await.unwrap();
    assert!(bad.send_raw(b"not a frame at all".to_vec()).await.is_err());
    let huge = PsClient::connect(s.opts.clone(), false).await.unwrap();
    assert!(huge.send_raw(vec![0u8; MAX + 10]).await.is_err());
    // A commit claiming another worker's id is refused too.
    let liar = PsClient::connect(s.opts.clone(), false).await.unwrap();
    let h = Header { seq: 9, ..Header::new(Kind::Commit, good.worker) };
    assert!(liar.send_raw(distk_net::wire::encode(&h, &[1.0; 10]).unwrap()).await.is_err());
    // A commit of the wrong length.
    let short = PsClient::connect(s.opts.clone(), false).await.unwrap();
    assert!(short.commit(1, 0, &[1.0; 3]).await.is_err());
    good.commit(1, 0, &[2.0; 10]).await.unwrap();
    let mut c = Vec::new();
    good.pull(0, &mut c).await.unwrap();
    assert_eq!(c, vec![2.0; 10]);
    assert_eq!(s.host.lock().core.clock(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_worker_is_reported_lost_within_seconds() {
    let mut s = start(4, 2, false).await;
    let a = PsClient::connect(s.opts.clone(), false).await.unwrap();
    a.commit(1, 0, &[1.0; 4]).await.unwrap();
    // Worker b lives on its own runtime; shutting that down stops its endpoint without a close frame,
    // as a killed process would: the server hears nothing more and times the worker out.
    let opts = s.opts.clone();
    let lost_id = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let id = rt.block_on(async {
            let b = PsClient::connect(opts, false).await.unwrap();
            b.commit(1, 0, &[1.0; 4]).await.unwrap();
            let id = b.worker;
            std::mem::forget(b);
            id
        });
        rt.shutdown_background();
        id
    })
    .join()
    .unwrap();
    let started = std::time::Instant::now();
    let lost = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match s.events.recv().await {
                Some(Event::Lost { worker, reason }) => return (worker, reason),
                Some(_) => {}
                None => panic!("the event channel closed"),
            }
        }
    })
    .await
    .expect("the lost worker was reported");
    assert_eq!(lost.0, lost_id);
    assert!(started.elapsed() < Duration::from_secs(12), "detected in {:?}", started.elapsed());
    // The other worker goes on.
    a.commit(2, 0, &[1.0; 4]).await.unwrap();
    a.done(&[]).await.unwrap();
    assert!(s.host.lock().members.all_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn averaging_rounds_wait_for_every_live_worker() {
    let s = start(2, 2, true).await;
    let a = PsClient::connect(s.opts.clone(), false).await.unwrap();
    let b = PsClient::connect(s.opts.clone(), false).await.unwrap();
    a.commit(1, 0, &[1.0, 2.0]).await.unwrap();
    let pull_a = tokio::spawn(async move {
        let mut c = Vec::new();
        a.pull(0, &mut c).await.unwrap();
        (a, c)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pull_a.is_finished(), "round 0 waits for worker b");
    b.commit(1, 0, &[3.0, 6.0]).await.unwrap();
    let (a, centre) = pull_a.await.unwrap();
    assert_eq!(centre, vec![2.0, 4.0]);
    // Round 1: b finishes its data (done) without committing; a's round closes without it.
    b.done(&[]).await.unwrap();
    a.commit(2, 1, &[5.0, 5.0]).await.unwrap();
    let mut c = Vec::new();
    a.pull(1, &mut c).await.unwrap();
    assert_eq!(c, vec![5.0, 5.0]);
}

/// A server whose certificate chains to a CA: a worker given the CA file connects under the
/// certificate's name and is refused under another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_trust_a_ca_file() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["ps.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &Issuer::new(ca_params, &ca_key))
        .unwrap();
    let id = Identity::from_pem(format!("{}{}", leaf.pem(), ca.pem()).as_bytes(), leaf_key.serialize_pem().as_bytes())
        .unwrap();
    let ca_file = std::env::temp_dir().join(format!("distk-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let trust = Trust::ca_file(&ca_file).unwrap();
    std::fs::remove_file(&ca_file).ok();

    let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), &id).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let state = PsState::new(ServerCore::new(vec![0.0; 4], Box::new(Add)), Membership::new(2), None);
    let config = HostConfig {
        max_frame: MAX,
        job: Arc::new(Vec::new()),
        round_timeout: Duration::from_secs(5),
        hello_timeout: Duration::from_secs(5),
    };
    let (host, _events) = Host::new(state, config, None);
    let secrets = Arc::new(Secrets::from_json(&format!(r#"[{{"secret": "{SECRET}", "identity": "alice"}}]"#)).unwrap());
    tokio::spawn(serve(endpoint, host, secrets));
    let opts = ConnectOptions {
        addr,
        server_name: "ps.example".into(),
        trust,
        secret: SECRET.into(),
        worker: ANY_WORKER,
        max_frame: MAX,
        request_timeout: Duration::from_secs(10),
        pull_timeout: Duration::from_secs(10),
        incarnation: 1,
    };
    let c = PsClient::connect(opts.clone(), false).await.unwrap();
    c.commit(1, 0, &[1.0; 4]).await.unwrap();
    let e =
        PsClient::connect(ConnectOptions { server_name: "other.example".into(), ..opts }, false).await.err().unwrap();
    assert!(e.to_string().contains("not the one we trust"), "{e}");
}

/// Two worker processes asking for the same id: the second is refused while the first is
/// connected, the first's reconnect supersedes its old connection (whose requests are then
/// refused), and a new process taking the id over after the first left numbers its commits after
/// the last one applied; an older number is never acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_belongs_to_one_process_at_a_time() {
    let s = start(4, 1, false).await;
    let first = ConnectOptions { worker: 0, incarnation: 11, ..s.opts.clone() };
    let a = PsClient::connect(first.clone(), false).await.unwrap();
    for seq in 1..=3 {
        a.commit(seq, 0, &[1.0; 4]).await.unwrap();
    }
    let second = ConnectOptions { worker: 0, incarnation: 22, ..s.opts.clone() };
    let e = PsClient::connect(second.clone(), false).await.err().unwrap();
    assert!(matches!(&e, distk_net::NetError::InUse(m) if m.contains("in use by another worker process")), "{e}");
    // The first process reconnects while its old connection is still open: the old one is fenced.
    let a2 = PsClient::connect(first.clone(), true).await.unwrap();
    assert_eq!(a2.last_seq, 3);
    let e = a.commit(4, 0, &[1.0; 4]).await.err().unwrap();
    assert!(e.to_string().contains("superseded"), "{e}");
    a2.commit(4, 0, &[1.0; 4]).await.unwrap();
    assert_eq!(s.host.lock().core.clock(), 4);
    // The first process goes away; a new one takes the id over and numbers after commit 4.
    drop(a);
    drop(a2);
    let b = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match PsClient::connect(second.clone(), false).await {
                Ok(b) => return b,
                Err(distk_net::NetError::InUse(_)) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the id became free once the first process's connections closed");
    assert_eq!(b.last_seq, 4, "the new process continues after the last applied commit");
    let e = b.commit(2, 0, &[1.0; 4]).await.err().unwrap();
    assert!(e.to_string().contains("not acknowledged"), "{e}");
    let b = PsClient::connect(second.clone(), true).await.unwrap();
    b.commit(5, 0, &[1.0; 4]).await.unwrap();
    // The first process may not come back under the id it lost.
    let e = PsClient::connect(first, true).await.err().unwrap();
    assert!(matches!(e, distk_net::NetError::InUse(_)), "{e}");
    let st = s.host.lock();
    assert_eq!((st.core.clock(), st.core.commits_of(0), st.core.last_seq(0)), (5, 5, Some(5)));
    assert!(st.core.centre().iter().all(|&v| v == 5.0), "every acknowledged commit applied once");
}

/// A server writing ahead to a log in `dir`; `known` (id, incarnation) pairs are members already
/// (as after a restart), so their processes rejoin without a log record.
async fn start_logged(dir: &std::path::Path, len: usize, known: &[(u32, u64)]) -> (ConnectOptions, Arc<Host>) {
    let id = Identity::self_signed(&[]).unwrap();
    let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), &id).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let mut state = PsState::new(ServerCore::new(vec![0.0; len], Box::new(Add)), Membership::new(2), None);
    for &(worker, incarnation) in known {
        state.members.set_owner(worker, "alice", incarnation);
    }
    let (wal, _) = distk_net::wal::Wal::open(dir, 0, Default::default(), |_, _| Ok(())).unwrap();
    let config = HostConfig {
        max_frame: MAX,
        job: Arc::new(Vec::new()),
        round_timeout: Duration::from_secs(5),
        hello_timeout: Duration::from_secs(5),
    };
    let (host, _events) = Host::new(state, config, Some(wal));
    let secrets = Arc::new(Secrets::from_json(&format!(r#"[{{"secret": "{SECRET}", "identity": "alice"}}]"#)).unwrap());
    tokio::spawn(serve(endpoint, host.clone(), secrets));
    let opts = ConnectOptions {
        addr,
        server_name: "localhost".into(),
        trust: Trust::Pinned(id.sha256),
        secret: SECRET.into(),
        worker: 0,
        max_frame: MAX,
        request_timeout: Duration::from_secs(10),
        pull_timeout: Duration::from_secs(10),
        incarnation: 5,
    };
    (opts, host)
}

/// A log that cannot be written (a full disk: /dev/full fails every write with ENOSPC) refuses
/// the join of a new worker and every commit and pull with an error the worker sees; nothing is
/// applied or acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_requests_instead_of_acknowledging_them() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("00000000000000000001.wal")).unwrap();
    // Worker 0's process is known from before a restart: it rejoins without a log record.
    let (opts, host) = start_logged(dir.path(), 4, &[(0, 5)]).await;
    let e = PsClient::connect(ConnectOptions { worker: 1, ..opts.clone() }, false).await.err().unwrap();
    assert!(e.to_string().contains("No space left on device"), "{e}");
    assert!(!e.is_retryable());
    let c = PsClient::connect(opts, true).await.unwrap();
    for attempt in 0..2 {
        let e = c.commit(1, 0, &[1.0; 4]).await.err().unwrap();
        assert!(
            matches!(&e, distk_net::NetError::Rejected(m) if m.contains("No space left on device")),
            "attempt {attempt}: {e}"
        );
    }
    let mut centre = Vec::new();
    assert!(matches!(c.pull(0, &mut centre).await, Err(distk_net::NetError::Rejected(_))));
    let st = host.lock();
    assert_eq!((st.core.clock(), st.core.last_seq(0)), (0, None), "nothing was applied");
    assert!(st.core.centre().iter().all(|&v| v == 0.0));
    assert!(!st.members.members().contains_key(&1), "the refused join was not applied either");
}

/// Every request that changed the state was on disk before its answer: a server that stops at any
/// point after the answers (nothing written at shutdown) recovers exactly what it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_acknowledged_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (opts, host) = start_logged(dir.path(), 3, &[]).await;
    let c = PsClient::connect(opts, false).await.unwrap();
    let mut centre = Vec::new();
    for seq in 1..=20u64 {
        c.pull(0, &mut centre).await.unwrap();
        c.commit(seq, 0, &[seq as f32, 1.0, -1.0]).await.unwrap();
    }
    c.epoch_done(0).await.unwrap();
    let (want, clock) = {
        let st = host.lock();
        (st.core.records(), st.core.clock())
    };
    // Replay the log as a crash recovery would (the live server keeps its log open: replay reads
    // only what was written, which is everything acknowledged).
    let mut state = PsState::new(ServerCore::new(vec![0.0; 3], Box::new(Add)), Membership::new(2), None);
    let mut n = 0;
    let (_copy, replayed) =
        distk_net::wal::Wal::open(&dir.path().join("copy"), 0, Default::default(), |_, _| Ok(())).unwrap();
    assert_eq!(replayed.records, 0);
    for (_, seg) in distk_net::wal::segments(dir.path()).unwrap() {
        std::fs::copy(&seg, dir.path().join("copy").join(seg.file_name().unwrap())).unwrap();
    }
    drop(_copy);
    let (_w, _) = distk_net::wal::Wal::open(&dir.path().join("copy"), 0, Default::default(), |_, body| {
        n += 1;
        state.apply(&distk_net::journal::Op::decode(body)?).map(|_| ())
    })
    .unwrap();
    assert_eq!(n, 1 + 20 + 20 + 1, "join, 20 pulls, 20 commits, the epoch");
    assert_eq!(state.core.clock(), clock);
    assert_eq!(state.core.records(), want);
    assert_eq!(state.members.members()[&0].epochs_done, 1);
}

/// A commit and the pull after it in one request: applied once (a retry is acknowledged again
/// without applying it), answered with the centre after it; refused for averaging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_and_its_pull_travel_together() {
    let s = start(2, 1, false).await;
    let c = PsClient::connect(s.opts.clone(), false).await.unwrap();
    let mut centre = Vec::new();
    let a = c.commit_pull(1, &[1.0, 2.0], &mut centre).await.unwrap();
    assert_eq!((a.clock, centre.clone()), (1, vec![1.0, 2.0]));
    let a = c.commit_pull(1, &[1.0, 2.0], &mut centre).await.unwrap();
    assert_eq!((a.clock, centre.clone()), (1, vec![1.0, 2.0]), "a retry is not applied twice");
    c.commit_pull(2, &[1.0, 1.0], &mut centre).await.unwrap();
    assert_eq!(centre, vec![2.0, 3.0]);
    let avg = start(2, 1, true).await;
    let c = PsClient::connect(avg.opts.clone(), false).await.unwrap();
    assert!(c.commit_pull(1, &[1.0, 2.0], &mut centre).await.is_err());
}

/// A worker started before its server: `join` retries with backoff and gets in once the server
/// listens; with nobody listening it gives up at its deadline with a retryable error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_retries_until_the_server_listens() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let id = Identity::self_signed(&[]).unwrap();
    let opts = ConnectOptions {
        addr,
        server_name: "localhost".into(),
        trust: Trust::Pinned(id.sha256),
        secret: SECRET.into(),
        worker: ANY_WORKER,
        max_frame: MAX,
        request_timeout: Duration::from_secs(10),
        pull_timeout: Duration::from_secs(10),
        incarnation: 3,
    };
    let started = std::time::Instant::now();
    let e = distk_net::client::join(opts.clone(), Duration::from_millis(1500)).await.err().unwrap();
    assert!(e.is_retryable(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up at its deadline: {:?}", started.elapsed());
    let joining = tokio::spawn(distk_net::client::join(opts, Duration::from_secs(30)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!joining.is_finished(), "nobody listens yet");
    let endpoint = server_endpoint(addr, &id).unwrap();
    let state = PsState::new(ServerCore::new(vec![0.0; 2], Box::new(Add)), Membership::new(1), None);
    let config = HostConfig {
        max_frame: MAX,
        job: Arc::new(Vec::new()),
        round_timeout: Duration::from_secs(5),
        hello_timeout: Duration::from_secs(5),
    };
    let (host, _events) = Host::new(state, config, None);
    let secrets = Arc::new(Secrets::from_json(&format!(r#"[{{"secret": "{SECRET}", "identity": "alice"}}]"#)).unwrap());
    tokio::spawn(serve(endpoint, host, secrets));
    let c = tokio::time::timeout(Duration::from_secs(20), joining).await.expect("joined in time").unwrap().unwrap();
    c.commit(1, 0, &[1.0, 1.0]).await.unwrap();
}
