//! The trainer never waits on us: a writer committing like the trainer (rollback journal, a
//! connection per commit, Python's 5 s busy timeout) while clients hammer the heaviest
//! endpoints. The reduced, CI-sized form of the harness in `bench/perf.mjs`; both run
//! `bench/trainer_writer.py`.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn the_trainer_commits_while_every_heavy_endpoint_is_hammered() {
    let dir = temp_dir("trainer");
    let db = make_db(&dir, &["--steps", "200000", "--every", "1", "--runs", "1"]);
    let server = Server::start(&db);
    let (_, runs) = server.json("/api/runs/500m");
    let run = runs[0]["run_id"].as_str().unwrap().to_string();
    let paths = [
        "/api/stats/500m".to_string(),
        format!("/api/metrics/{run}?max_points=2000"),
        format!("/api/metrics/{run}?start_step=0&limit=10000"),
        "/api/milestones/500m".to_string(),
        format!("/run/{run}"),
        format!("/api/routing/mor/{run}?limit=1250"),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let (addr, paths, stop, served) = (
                server.addr.clone(),
                paths.clone(),
                stop.clone(),
                served.clone(),
            );
            std::thread::spawn(move || {
                let mut k = i;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = http(&addr, "GET", &paths[k % paths.len()]);
                    assert!(status < 500, "{} answered {status}", paths[k % paths.len()]);
                    served.fetch_add(1, Ordering::Relaxed);
                    k += 1;
                }
            })
        })
        .collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/trainer_writer.py");
    let mut writer = Command::new("python3")
        .arg(script)
        .arg(&db)
        .arg("8")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut waits, mut locked) = (Vec::new(), None);
    let output = writer.stdout.take().unwrap();
    for line in BufReader::new(output).lines() {
        let line = line.unwrap();
        match line.split_once(' ') {
            Some(("commit", ms)) => waits.push(ms.parse::<f64>().unwrap()),
            Some(("locked", n)) => locked = Some(n.parse::<usize>().unwrap()),
            _ => {}
        }
    }
    writer.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    waits.sort_by(f64::total_cmp);
    eprintln!(
        "{} commits, slowest {:.0} ms, {} requests served",
        waits.len(),
        waits.last().copied().unwrap_or(0.0),
        served.load(Ordering::Relaxed)
    );
    assert_eq!(locked, Some(0), "a commit failed with `database is locked`");
    // Not a performance figure (those are in docs/performance.md): a commit that waits most
    // of the trainer's 5 s timeout is a run that nearly crashed. Normal waits are ~10 ms.
    assert!(
        waits.iter().all(|w| *w < 4_000.0),
        "a commit waited {:.0} ms of the trainer's 5 s",
        waits.last().unwrap()
    );
    assert!(!waits.is_empty());
}
