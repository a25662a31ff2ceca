//! The live feed on loopback, fed by the independent fixture writer in `--live` mode: every
//! step arrives once and in order, and a reconnect with a cursor loses nothing.

mod common;
use common::*;
use futures::StreamExt;
use hydra_dashboard::model::LiveMessage;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The fixture writer appending like a running trainer; killed on drop.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const STEPS: i64 = 300;

/// A live writer of one run of `STEPS` steps at 50 steps/s in batches of 5, and the
/// dashboard serving its file once the run exists.
fn live_run(tag: &str) -> (Writer, Server, String) {
    let dir = temp_dir(tag);
    let db = dir.join("training.db");
    let writer = Writer(
        Command::new("python3")
            .arg(fixture_script())
            .arg(&db)
            .args(["--model", "live", "--live", "--rate", "50", "--batch", "5"])
            .args(["--steps", &STEPS.to_string(), "--every", "1", "--runs", "1"])
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !db.exists() {
        assert!(
            Instant::now() < deadline,
            "the writer never created the file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let server = Server::start(&db);
    let run_id = loop {
        let (status, runs) = server.json("/api/runs/live");
        if status == 200 {
            if let Some(id) = runs[0]["run_id"].as_str() {
                break id.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no run appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    (writer, server, run_id)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server, run_id: &str, after: Option<i64>) -> Socket {
    let cursor = after.map_or(String::new(), |a| format!("?after_step={a}"));
    let url = format!("ws://{}/ws/{run_id}{cursor}", server.addr);
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Steps of `update` messages until `until` returns true for the steps so far, or 30 s.
async fn read_steps(socket: &mut Socket, got: &mut Vec<i64>, until: impl Fn(&[i64]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !until(got) {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("timed out with {} steps, last {:?}", got.len(), got.last()))
            .expect("the socket stayed open")
            .unwrap();
        if let Message::Text(text) = frame {
            match serde_json::from_str::<LiveMessage>(&text).unwrap() {
                LiveMessage::Update { steps, .. } => got.extend(steps.iter().map(|s| s.step)),
                LiveMessage::Error { error } => panic!("feed error: {error}"),
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_arrives_once_and_in_order_while_the_trainer_writes() {
    let (_writer, server, run_id) = live_run("live-once");
    let mut socket = connect(&server, &run_id, Some(-1)).await;
    let mut got = Vec::new();
    read_steps(&mut socket, &mut got, |g| g.last() == Some(&(STEPS - 1))).await;
    assert_eq!(got, (0..STEPS).collect::<Vec<_>>());
    // The writer then closes the run (an UPDATE, no new row): a `run` message says so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a run message within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            if let LiveMessage::Run { run, runs } = serde_json::from_str(&text).unwrap() {
                if run.end_time.is_some() {
                    assert_eq!(run.end_step, Some(STEPS - 1));
                    assert_eq!(runs.len(), 1);
                    break;
                }
            }
        }
    }
    socket.close(None).await.unwrap();
}

/// Issue 13: the original UI connects without a cursor and appends every update; a replay
/// of the whole run drew it twice. Without a cursor the feed starts at the newest step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cursor_the_feed_starts_at_the_newest_step_and_repeats_nothing() {
    let (_writer, server, run_id) = live_run("live-no-cursor");
    let path = format!("/api/metrics/{run_id}?start_step=100&limit=1");
    while server.json(&path).1["count"] != 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut socket = connect(&server, &run_id, None).await;
    let mut got = Vec::new();
    read_steps(&mut socket, &mut got, |g| g.last() == Some(&(STEPS - 1))).await;
    assert!(
        got[0] >= 100,
        "no replay from the start: first step {}",
        got[0]
    );
    let mut once = got.clone();
    once.dedup();
    assert_eq!(once, got, "no step twice");
    let first = got[0];
    assert_eq!(
        got,
        (first..STEPS).collect::<Vec<_>>(),
        "every new step, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_a_cursor_loses_nothing_and_repeats_nothing() {
    let (_writer, server, run_id) = live_run("live-resume");
    // A cursor in the past, as a page loaded a moment ago has.
    let path = format!("/api/metrics/{run_id}?start_step=49&limit=1");
    while server.json(&path).1["count"] != 1 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = Vec::new();
    let mut socket = connect(&server, &run_id, Some(49)).await;
    read_steps(&mut socket, &mut got, |g| g.len() >= 60).await;
    drop(socket);
    // Gone for a while, as a laptop sleeps, then back with the last step it has.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut socket = connect(&server, &run_id, got.last().copied()).await;
    read_steps(&mut socket, &mut got, |g| g.last() == Some(&(STEPS - 1))).await;
    assert_eq!(got, (50..STEPS).collect::<Vec<_>>());
}

#[test]
fn a_bad_cursor_or_run_is_a_json_error_before_any_upgrade() {
    let dir = temp_dir("live-bad");
    let db = make_db(&dir, &["--steps", "100"]);
    let server = Server::start(&db);
    let (status, body) = server.json("/ws/nope");
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.json("/ws/nope?after_step=abc");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("after_step"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_the_trainer_logs_again_is_sent_again_with_its_new_value() {
    let dir = temp_dir("live-relog");
    let db = make_db(&dir, &["--steps", "2000", "--runs", "1"]);
    let server = Server::start(&db);
    let (_, runs) = server.json("/api/runs/500m");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let mut socket = connect(&server, &run_id, Some(-1)).await;
    let mut got = Vec::new();
    read_steps(&mut socket, &mut got, |g| g.last() == Some(&1990)).await;
    // A rollback re-logs step 500 with a different loss (`INSERT OR REPLACE`, a new row).
    sql(
        &db,
        "CREATE TEMP TABLE again AS SELECT * FROM steps WHERE step = 500; \
         UPDATE again SET loss_total = 9.5; \
         INSERT OR REPLACE INTO steps SELECT * FROM again;",
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the re-logged step within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            if let LiveMessage::Update { steps, .. } = serde_json::from_str(&text).unwrap() {
                assert_eq!(steps.len(), 1, "only the re-logged row");
                assert_eq!((steps[0].step, steps[0].loss_total), (500, Some(9.5)));
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_followers_and_oversized_frames_do_not_hurt_the_server() {
    use futures::SinkExt;
    let dir = temp_dir("live-abuse");
    let db = make_db(&dir, &["--steps", "2000", "--runs", "1"]);
    let server = Server::start(&db);
    let (_, runs) = server.json("/api/runs/500m");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();

    // 300 followers at once, none of which reads: the server keeps answering.
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect(&server, &run_id, Some(1000)).await);
    }
    let addr = server.addr.clone();
    let status = tokio::task::spawn_blocking(move || http(&addr, "GET", "/api/models").0)
        .await
        .unwrap();
    assert_eq!(status, 200, "still serving with 300 idle followers");
    // And each still gets its catch-up when it does read.
    let mut got = Vec::new();
    read_steps(&mut idle[299], &mut got, |g| g.last() == Some(&1990)).await;
    assert_eq!(got.first(), Some(&1010));

    // A follower sending a 64 KB frame is cut off; its neighbours are not.
    let mut rude = connect(&server, &run_id, None).await;
    let _ = rude.send(Message::Text("x".repeat(64 * 1024).into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rude.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the oversized sender is disconnected");
    let mut polite = connect(&server, &run_id, Some(1900)).await;
    let mut got = Vec::new();
    read_steps(&mut polite, &mut got, |g| g.last() == Some(&1990)).await;
    drop(idle);
}
