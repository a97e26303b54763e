//! The fault trials of `scripts/chaos.sh` with real processes on loopback: 5 trials in which the
//! parameter server and random workers are killed with SIGKILL at random moments (the server is
//! restarted with --resume, some workers with their id). The script fails when an acknowledged
//! commit was lost or a trial hung; its summary is checked here too.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn chaos_trials_lose_no_acknowledged_commit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(root.join("scripts/chaos.sh"))
        .arg("5")
        .env("DISTK_BIN", env!("CARGO_BIN_EXE_distk-gpu"))
        .env("CHAOS_TRIAL_LIMIT", "90")
        .current_dir(root)
        .output()
        .expect("run scripts/chaos.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert!(out.status.success(), "chaos.sh failed:\n{text}");
    let summary = text.lines().rev().find(|l| l.starts_with("chaos: trials")).expect("a summary line");
    assert!(summary.contains("hangs 0,"), "{summary}");
    assert!(summary.contains("lost commits 0,"), "{summary}");
    // Every trial ran to a server clock, and acknowledgements were counted.
    assert_eq!(text.lines().filter(|l| l.starts_with("trial ") && !l.contains("clock ?")).count(), 5, "{text}");
    let acked: u64 = summary
        .split("acknowledged commits ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.trim().parse().ok())
        .expect("acknowledged count");
    assert!(acked > 0, "{summary}");
    // Bounded: 5 trials of at most 90 s each and their cleanup.
    assert!(started.elapsed() < Duration::from_secs(5 * 100), "took {:?}", started.elapsed());
}
