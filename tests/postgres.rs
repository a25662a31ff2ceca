//! `hydra-dashboard sync` against a real PostgreSQL: the throwaway cluster that
//! `scripts/pg-test-cluster.sh` starts (`make test` starts and stops it and passes its URL in
//! HYDRA_TEST_PG; run alone, a test starts it, and `scripts/pg-test-cluster.sh stop` stops
//! it). Every test works in a database of its own. What PostgreSQL ends up holding is checked
//! against what the dashboard reads from the node's files, record for record.

mod common;

use common::{temp_dir, train, Training};
use hydra_dashboard::model::{RoutingMod, RoutingMoe, RoutingMor};
use hydra_dashboard::server::files::Dirs;
use hydra_dashboard::server::postgres::chunks::Column;
use hydra_dashboard::server::postgres::{connect, read};
use hydra_dashboard::server::store::Store;
use serde_json::Value;
use sqlx::{Connection, PgPool};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_hydra-dashboard");

/// One test at a time: the fault test restarts the server every test shares.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn cluster() -> String {
    if let Ok(url) = std::env::var("HYDRA_TEST_PG") {
        return url;
    }
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-cluster.sh"))
        .arg("start")
        .output()
        .expect("bash runs the cluster script");
    assert!(
        out.status.success(),
        "pg-test-cluster.sh start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A new, empty database for one test; its URL.
fn fresh_database(tag: &str) -> String {
    let base = cluster();
    let name = format!("hydra_{tag}_{}", std::process::id());
    runtime().block_on(async {
        let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
    });
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn sync_once(dir: &Path, url: &str, node: &str) -> Output {
    Command::new(BIN)
        .args(["sync", "--once", "--node", node, "--to", url, "--root"])
        .arg(dir)
        .output()
        .unwrap()
}

/// A `sync` following `dir`, stopped when dropped: a failing test leaves none behind.
struct Syncing(Child);

impl Drop for Syncing {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn follow(dir: &Path, url: &str, node: &str) -> Syncing {
    Syncing(
        Command::new(BIN)
            .args(["sync", "--node", node, "--to", url, "--root"])
            .arg(dir)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Every step, routing record, LR record and evaluation of every run in `dir`, as the
/// dashboard reads them from the files, beside the same from PostgreSQL. Empty when equal;
/// otherwise what differs.
async fn differences(dir: &Path, pool: &PgPool) -> Vec<String> {
    let store = Store::watch_trainer(&dir.join("checkpoints/training.db"), Dirs::under(dir));
    let mut found = Vec::new();
    for run in store.all_runs().await.unwrap() {
        let id = &run.run_id;
        let mut local = Vec::new();
        let mut next = None;
        loop {
            let page = store.steps(id, next, 10_000).await.unwrap();
            local.extend(page.steps);
            match page.next_start_step {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        let all: Vec<Column> = Column::all().collect();
        let mut shipped = read::steps(
            &mut pool.acquire().await.unwrap(),
            id,
            &run.model_id,
            (i64::MIN, i64::MAX),
            false,
            usize::MAX,
            &all,
        )
        .await
        .unwrap();
        shipped.iter_mut().for_each(|s| s.mark_nonfinite());
        if json(&local) != json(&shipped) {
            found.push(format!(
                "run {id}: {} steps in the files, {} shipped, or different values",
                local.len(),
                shipped.len()
            ));
        }
        let count: Option<i64> = sqlx::query_scalar("SELECT steps FROM runs WHERE run_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .unwrap();
        if count != Some(local.len() as i64) {
            found.push(format!(
                "run {id}: runs.steps is {count:?}, the files hold {}",
                local.len()
            ));
        }
        let records = [
            (
                "routing_mod",
                json(
                    &store
                        .routing::<RoutingMod>(id, None, 1_000_000)
                        .await
                        .unwrap()
                        .data,
                ),
            ),
            (
                "routing_mor",
                json(
                    &store
                        .routing::<RoutingMor>(id, None, 1_000_000)
                        .await
                        .unwrap()
                        .data,
                ),
            ),
            (
                "routing_moe",
                json(
                    &store
                        .routing::<RoutingMoe>(id, None, 1_000_000)
                        .await
                        .unwrap()
                        .data,
                ),
            ),
            (
                "adaptive_lr",
                json(&store.adaptive_lr(id, None, 1_000_000).await.unwrap().data),
            ),
        ];
        for (kind, local) in records {
            let chunks: Vec<Value> = sqlx::query_scalar(
                "SELECT data FROM record_chunks WHERE run_id = $1 AND kind = $2 ORDER BY chunk",
            )
            .bind(id)
            .bind(kind)
            .fetch_all(pool)
            .await
            .unwrap();
            let shipped: Vec<Value> = chunks
                .into_iter()
                .flat_map(|c| c.as_array().cloned().unwrap_or_default())
                .collect();
            if Value::Array(shipped.clone()) != local {
                found.push(format!(
                    "run {id}: {kind}: {} records in the files, {} shipped, or different",
                    local.as_array().map_or(0, Vec::len),
                    shipped.len()
                ));
            }
        }
        let evals: Value = sqlx::query_scalar("SELECT evals FROM runs WHERE run_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
        if evals != json(&store.evals(id).await.unwrap().points) {
            found.push(format!("run {id}: evaluations differ"));
        }
    }
    store.close().await;
    found
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[test]
fn finished_crashed_and_resumed_runs_ship_whole_and_shipping_again_changes_nothing() {
    let _one = one_at_a_time();
    let dir = temp_dir("pg-once");
    // A finished run (in the database), and a run that crashed and was resumed from an
    // earlier checkpoint: its log and diagnostics file hold steps twice, the later current.
    train(
        &dir,
        &[
            "--run-id",
            "fin",
            "--steps",
            "30000",
            "--log-interval",
            "5",
            "--seed",
            "1",
        ],
    );
    train(
        &dir,
        &[
            "--run-id",
            "again",
            "--steps",
            "30000",
            "--log-interval",
            "5",
            "--crash-at",
            "21234",
            "--seed",
            "2",
        ],
    );
    train(
        &dir,
        &[
            "--run-id",
            "again",
            "--steps",
            "24000",
            "--log-interval",
            "5",
            "--resume-from",
            "18000",
            "--seed",
            "3",
        ],
    );
    let url = fresh_database("once");
    let out = sync_once(&dir, &url, "alpha");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "sync --once failed: {said}");
    assert!(said.contains("shipped"), "progress on stderr: {said}");
    runtime().block_on(async {
        let pool = connect(&url).await.unwrap();
        assert_eq!(differences(&dir, &pool).await, Vec::<String>::new());
        let nodes: Vec<(String, String)> =
            sqlx::query_as("SELECT run_id, node FROM runs ORDER BY run_id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            nodes,
            [
                ("again".into(), "alpha".into()),
                ("fin".into(), "alpha".into())
            ]
        );
        // 6,000 logged steps: several chunks, so the chunking is exercised.
        assert!(
            count(
                &pool,
                "SELECT count(*) FROM step_chunks WHERE run_id = 'fin' AND col = 'step'"
            )
            .await
                >= 5
        );
        let batches = count(&pool, "SELECT count(*) FROM batches").await;
        let out = sync_once(&dir, &url, "alpha");
        assert!(out.status.success());
        assert_eq!(
            count(&pool, "SELECT count(*) FROM batches").await,
            batches,
            "shipping again wrote batches"
        );
        assert_eq!(differences(&dir, &pool).await, Vec::<String>::new());
        pool.close().await;
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// A node's directory wiped and the same run id trained again, shorter: PostgreSQL holds
/// the new run only, none of the old one's later chunks.
#[test]
fn a_run_whose_files_were_replaced_is_shipped_again_whole() {
    let _one = one_at_a_time();
    let dir = temp_dir("pg-replaced");
    let args = |steps: &'static str, seed: &'static str| {
        [
            "--run-id",
            "same",
            "--steps",
            steps,
            "--log-interval",
            "5",
            "--seed",
            seed,
        ]
    };
    train(&dir, &args("30000", "7"));
    let url = fresh_database("replaced");
    assert!(sync_once(&dir, &url, "alpha").status.success());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    train(&dir, &args("9000", "8"));
    let out = sync_once(&dir, &url, "alpha");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    runtime().block_on(async {
        let pool = connect(&url).await.unwrap();
        assert_eq!(differences(&dir, &pool).await, Vec::<String>::new());
        pool.close().await;
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// Waits until PostgreSQL holds what `dir`'s files say, and returns the store's epoch.
fn shipped_all_of(dir: &Path, url: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    runtime().block_on(async {
        let pool = connect(url).await.unwrap();
        loop {
            let left = differences(dir, &pool).await;
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{left:?}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let epoch = count(&pool, "SELECT epoch FROM feed_positions").await;
        pool.close().await;
        epoch
    })
}

#[test]
fn refined_steps_are_not_news_and_steps_trained_again_are() {
    let _one = one_at_a_time();
    let dir = temp_dir("pg-refined");
    let url = fresh_database("refined");
    let sync = follow(&dir, &url, "alpha");
    // Lines every 5 steps, shipped within a pass; each save (every 500 steps, every half
    // second here) refines the 500 steps before it with their records' full floats.
    let mut training = Training::start(
        &dir,
        &[
            "--run-id",
            "r",
            "--steps",
            "3000",
            "--rate",
            "1000",
            "--log-interval",
            "5",
            "--crash-at",
            "2600",
            "--seed",
            "3",
        ],
    );
    training.0.wait().unwrap();
    assert_eq!(
        shipped_all_of(&dir, &url),
        0,
        "refinements moved the epoch: every open page would reload"
    );
    // Resumed from the checkpoint at 2000: steps 2001-2600 are trained again, and pages
    // that drew them must read them again. It crashes too: no database at its end, whose
    // loading would be news of its own.
    let mut resumed = Training::start(
        &dir,
        &[
            "--resume-from",
            "2000",
            "--steps",
            "3000",
            "--rate",
            "1000",
            "--log-interval",
            "5",
            "--crash-at",
            "2900",
            "--seed",
            "4",
        ],
    );
    resumed.0.wait().unwrap();
    assert!(shipped_all_of(&dir, &url) > 0, "a resume is news");
    drop(sync);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_unreachable_server_is_one_clear_line_and_a_failing_exit() {
    let dir = temp_dir("pg-unreachable");
    // Port 1 on loopback: nothing listens there.
    let out = sync_once(&dir, "postgres://hydra@127.0.0.1:1/runs", "alpha");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("cannot reach PostgreSQL at hydra@127.0.0.1:1/runs"),
        "{said}"
    );
    assert!(said.contains("is the server running"), "{said}");
    let out = sync_once(&dir, "mysql://nope", "alpha");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a PostgreSQL URL"));
    std::fs::remove_dir_all(&dir).ok();
}

/// Kills `sync` with SIGKILL at random moments while the run trains, and restarts
/// PostgreSQL under it and a dashboard serving from it once: nothing is lost or doubled,
/// and the dashboard carries on to the run's last step.
#[test]
fn sync_killed_mid_batch_and_postgres_restarted_lose_and_double_nothing() {
    let _one = one_at_a_time();
    let dir = temp_dir("pg-faults");
    let url = fresh_database("faults");
    let training = Training::start(
        &dir,
        &[
            "--run-id",
            "live",
            "--steps",
            "40000",
            "--rate",
            "2500",
            "--log-interval",
            "5",
            "--seed",
            "4",
        ],
    );
    let mut seed = std::process::id() as u64;
    let mut random_ms = move |below: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    let mut sync = follow(&dir, &url, "alpha");
    let team = common::Server::on_store(&url);
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(800 + random_ms(1500)));
        if round == 2 {
            let restarted = Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-cluster.sh"))
                .arg("restart")
                .status()
                .unwrap();
            assert!(restarted.success());
            continue;
        }
        sync.0.kill().unwrap(); // SIGKILL
        sync.0.wait().unwrap();
        sync = follow(&dir, &url, "alpha");
    }
    // Let the run end, then give the follower time to ship its last records.
    let mut training = training;
    training.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = runtime().block_on(async {
        let pool = connect(&url).await.unwrap();
        loop {
            let found = differences(&dir, &pool).await;
            if found.is_empty() || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    drop(sync);
    assert_eq!(found, Vec::<String>::new());
    // The dashboard lived through the restart: it shows the run up to its last step.
    let local = common::Server::watching(&dir, &[]);
    let step = |server: &common::Server| server.json("/api/runs").1[0]["step"].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while step(&team) != step(&local) {
        assert!(
            Instant::now() < deadline,
            "the dashboard on PostgreSQL shows step {}, the files {}",
            step(&team),
            step(&local)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Strips what only a team's store adds (the node a run came from), so answers compare.
fn without_node(mut v: Value) -> Value {
    match &mut v {
        Value::Object(map) => {
            map.remove("node");
            for (_, x) in map.iter_mut() {
                *x = without_node(x.take());
            }
        }
        Value::Array(items) => {
            for x in items.iter_mut() {
                *x = without_node(x.take());
            }
        }
        _ => {}
    }
    v
}

/// An alert reduced to what it is: which run, what kind, at which step, resolved at which.
/// An alert is told once, with the values as first read: the dashboard on the store
/// watched the runs train and read each step first from its log line (four decimals, time
/// to the second), while the dashboard on the files, started after the runs ended, reads
/// the same steps from the database (full floats, microseconds). Compared as a set: each
/// dashboard lists them newest first by those times, and two alerts a second apart in one
/// are in the same second in the other (then ordered by step), so the order may differ.
fn what_alerts_say(mut v: Value) -> Value {
    if let Some(alerts) = v.get_mut("alerts").and_then(Value::as_array_mut) {
        for alert in alerts.iter_mut() {
            *alert = serde_json::json!([
                alert["run_id"],
                alert["kind"],
                alert["step"],
                alert["resolved_step"]
            ]);
        }
        alerts.sort_by_key(|a| a.to_string());
    }
    v
}

/// The endpoints that answer about one run of one model, with the answer's text.
fn answers(server: &common::Server, run: &str, model: &str) -> Vec<(String, String)> {
    let paths = [
        "/api/models".to_string(),
        format!("/api/runs/{model}"),
        format!("/api/stats/{model}"),
        format!("/api/milestones/{model}?interval=1000"),
        format!("/api/ema/{model}"),
        format!("/api/run/{run}"),
        format!("/api/metrics/{run}?limit=5000"),
        format!("/api/metrics/{run}?start_step=2000&limit=100"),
        format!("/api/metrics/{run}?max_points=300"),
        format!(
            "/api/metrics/{run}?max_points=200&start_step=3000&end_step=9000&metrics=loss_total,lr"
        ),
        format!("/api/routing/mod/{run}"),
        format!("/api/routing/mor/{run}?limit=100"),
        format!("/api/routing/moe/{run}"),
        format!("/api/eval/{run}"),
        format!("/api/adaptive_lr/{run}"),
        format!("/api/alerts?run_id={run}&state=all"),
        format!(
            "/api/compare?runs={run}&metrics=loss_total,lr,grad_norm&max_points=400&smoothing=0.6"
        ),
        format!("/api/compare.csv?runs={run}"),
        format!("/api/export/{run}/steps.csv"),
        format!("/api/export/{run}/mod.csv"),
        format!("/api/export/{run}/mor.csv"),
        format!("/api/export/{run}/eval.csv"),
        format!("/api/export/{run}/loss.svg"),
    ];
    paths
        .into_iter()
        .map(|p| {
            let (status, body) = server.get(&p);
            let mut answer = format!("{status} {body}");
            if p == "/api/models" {
                // The team's store lists every node's models: compare this one.
                let models: Vec<Value> = serde_json::from_str(&body).unwrap();
                let mine: Vec<Value> = models
                    .into_iter()
                    .filter(|m| m["model_id"] == model)
                    .collect();
                answer = format!("{status} {}", Value::Array(mine));
            }
            (p, answer)
        })
        .collect()
}

fn comparable(answer: &str) -> Value {
    let (status, body) = answer.split_once(' ').unwrap();
    match serde_json::from_str::<Value>(body) {
        Ok(v) => serde_json::json!([status, what_alerts_say(without_node(v))]),
        Err(_) => serde_json::json!([status, body]),
    }
}

/// Two nodes train and ship into one PostgreSQL; one dashboard on it shows both runs, and
/// answers every endpoint for each run exactly as a dashboard on that node's files does.
#[test]
fn two_nodes_in_one_store_answer_as_their_own_files_do() {
    let _one = one_at_a_time();
    let url = fresh_database("nodes");
    let (a, b) = (temp_dir("pg-node-a"), temp_dir("pg-node-b"));
    let train_a = Training::start(
        &a,
        &[
            "--run-id",
            "run_a",
            "--model",
            "500m",
            "--steps",
            "12000",
            "--rate",
            "3000",
            "--log-interval",
            "5",
            "--seed",
            "5",
        ],
    );
    let train_b = Training::start(
        &b,
        &[
            "--run-id",
            "run_b",
            "--model",
            "100m",
            "--steps",
            "9000",
            "--rate",
            "3000",
            "--log-interval",
            "5",
            "--moe",
            "--seed",
            "6",
        ],
    );
    let sync_a = follow(&a, &url, "node-a");
    let sync_b = follow(&b, &url, "node-b");
    let team = common::Server::on_store(&url);
    // Both runs appear while they train.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, runs) = team.json("/api/runs");
        let text = runs.to_string();
        if text.contains("run_a") && text.contains("run_b") {
            assert!(text.contains("node-a") && text.contains("node-b"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "both runs never showed: {text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    for (mut t, dir) in [(train_a, &a), (train_b, &b)] {
        t.0.wait().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        runtime().block_on(async {
            let pool = connect(&url).await.unwrap();
            while !differences(dir, &pool).await.is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "{:?}",
                    differences(dir, &pool).await
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
    }
    let mut mismatched = Vec::new();
    for (dir, run, model) in [(&a, "run_a", "500m"), (&b, "run_b", "100m")] {
        let local = common::Server::watching(dir, &[]);
        // A fresh server's alerts replay every run's history first (the team's ran as
        // the runs trained): compare what both tell once both have read it all.
        local.alerts_settled();
        team.alerts_settled();
        for ((path, here), (_, there)) in answers(&local, run, model)
            .into_iter()
            .zip(answers(&team, run, model))
        {
            if comparable(&here) != comparable(&there) {
                let (here, there) = (
                    comparable(&here).to_string(),
                    comparable(&there).to_string(),
                );
                // Where they part, with a little before it.
                let same = here
                    .bytes()
                    .zip(there.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                let from = same.saturating_sub(120);
                let part = |s: &str| {
                    s.get(from..s.len().min(same + 200))
                        .unwrap_or("")
                        .to_string()
                };
                mismatched.push(format!(
                    "{path} (from byte {from}):\n  files:    {}\n  postgres: {}",
                    part(&here),
                    part(&there)
                ));
            }
        }
    }
    // A second dashboard on the same database (a team behind a load balancer) answers the
    // same.
    let other = common::Server::on_store(&url);
    other.alerts_settled();
    for (run, model) in [("run_a", "500m"), ("run_b", "100m")] {
        for ((path, one), (_, two)) in answers(&team, run, model)
            .into_iter()
            .zip(answers(&other, run, model))
        {
            if comparable(&one) != comparable(&two) {
                mismatched.push(format!("{path}: two dashboards on one store differ"));
            }
        }
    }
    drop((sync_a, sync_b));
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
    std::fs::remove_dir_all(&a).ok();
    std::fs::remove_dir_all(&b).ok();
}
