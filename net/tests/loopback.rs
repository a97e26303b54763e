//! The QUIC parameter server on loopback: authenticated commits and pulls from concurrent workers,
//! a wrong secret and a wrong certificate pin refused, a malformed and an oversized frame closing only
//! the offending connection.

use std::sync::{Arc, Mutex};

use distk_net::rules::Add;
use distk_net::server::ServerCore;
use distk_net::transport::{Identity, PsClient, Secrets, serve, server_endpoint};

const MAX: usize = 1 << 20;

async fn start(len: usize) -> (std::net::SocketAddr, [u8; 32], Arc<Mutex<ServerCore>>) {
    let id = Identity::self_signed(&[]).unwrap();
    let endpoint = server_endpoint("127.0.0.1:0".parse().unwrap(), &id).unwrap();
    let addr = endpoint.local_addr().unwrap();
    let core = Arc::new(Mutex::new(ServerCore::new(vec![0.0; len], Box::new(Add))));
    let secrets = Arc::new(Secrets::from_json(r#"[{"secret": "s3cret-alice", "identity": "alice"}]"#).unwrap());
    tokio::spawn(serve(endpoint, core.clone(), secrets, MAX));
    (addr, id.sha256, core)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_commit_and_pull_over_quic() {
    let (addr, pin, core) = start(1000).await;
    let mut handles = Vec::new();
    for w in 0..4u32 {
        handles.push(tokio::spawn(async move {
            let c = PsClient::connect(addr, pin, "s3cret-alice", w, MAX).await.unwrap();
            let mut centre = Vec::new();
            c.pull(&mut centre).await.unwrap();
            for seq in 1..=5u64 {
                c.commit(seq, 0, &vec![1.0; 1000]).await.unwrap();
            }
            // A retry of an applied commit is acknowledged but not applied again.
            c.commit(5, 0, &vec![1.0; 1000]).await.unwrap();
            c.pull(&mut centre).await.unwrap()
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let core = core.lock().unwrap();
    assert_eq!(core.clock(), 20);
    assert!(core.centre().iter().all(|&v| v == 20.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secrets_and_pins_are_refused() {
    let (addr, pin, _) = start(10).await;
    let e = PsClient::connect(addr, pin, "guess", 0, MAX).await.err().unwrap().to_string();
    assert!(e.contains("refused the secret"), "{e}");
    let mut other = pin;
    other[0] ^= 1;
    let e = PsClient::connect(addr, other, "s3cret-alice", 0, MAX).await.err().unwrap().to_string();
    assert!(e.contains("connecting to"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let (addr, pin, core) = start(10).await;
    let good = PsClient::connect(addr, pin, "s3cret-alice", 1, MAX).await.unwrap();
    let bad = PsClient::connect(addr, pin, "s3cret-alice", 2, MAX).await.unwrap();
    assert!(bad.send_raw(b"not a frame at all".to_vec()).await.is_err());
    let huge = PsClient::connect(addr, pin, "s3cret-alice", 3, MAX).await.unwrap();
    assert!(huge.send_raw(vec![0u8; MAX + 10]).await.is_err());
    // A commit claiming another worker's id is refused too.
    let h = distk_net::wire::Header {
        version: 1,
        kind: distk_net::wire::Kind::Commit,
        worker: 1,
        seq: 9,
        clock: 0,
        payload_len: 10,
    };
    let liar = PsClient::connect(addr, pin, "s3cret-alice", 4, MAX).await.unwrap();
    assert!(liar.send_raw(distk_net::wire::encode(&h, &[1.0; 10]).unwrap()).await.is_err());
    good.commit(1, 0, &[2.0; 10]).await.unwrap();
    let mut c = Vec::new();
    good.pull(&mut c).await.unwrap();
    assert_eq!(c, vec![2.0; 10]);
    assert_eq!(core.lock().unwrap().clock(), 1);
}
