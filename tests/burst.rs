//! Issue 13: a burst of live followers must not lock the dashboard up. 150 followers of a
//! 10k-step run connect with `after_step=0` and all close at once, on a machine whose cores
//! are busy (as a training box's are); the API must keep answering — before the fix
//! `/api/models` went unanswered for minutes, the pool's one connection queued behind the
//! catch-ups of sockets already gone. Alone in its file: the CPU load would slow other tests.

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_followers_that_leave_does_not_lock_the_api_up() {
    let dir = temp_dir("burst");
    let db = make_db(&dir, &["--steps", "10000", "--every", "1", "--runs", "1"]);
    let server = Server::start(&db);
    let (_, runs) = server.json("/api/runs/500m");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();

    // Both cores busy, as on a training box.
    let busy = Arc::new(AtomicBool::new(true));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                let mut x = 0_u64;
                while busy.load(Ordering::Relaxed) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                }
                x
            })
        })
        .collect();

    for round in 0..3 {
        let url = format!("ws://{}/ws/{run_id}?after_step=0", server.addr);
        let connects: Vec<_> = (0..150)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { tokio_tungstenite::connect_async(url).await })
            })
            .collect();
        let mut sockets = Vec::new();
        for c in connects {
            if let Ok(Ok((socket, _))) = c.await {
                sockets.push(socket);
            }
        }
        assert!(
            sockets.len() >= 100,
            "round {round}: {} connected",
            sockets.len()
        );
        drop(sockets);
        // Every request answers, none says the file "stayed busy".
        let addr = server.addr.clone();
        let statuses = tokio::task::spawn_blocking(move || {
            (0..20)
                .map(|_| http(&addr, "GET", "/api/models").0)
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
    }
    busy.store(false, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
}
