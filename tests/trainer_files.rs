//! Issue 14: a run watched while it trains, from the trainer's own files (its log and its
//! diagnostics file; the database is written only when a run ends). Files made by
//! `../shared/fixtures/hydra_trainer.py`, served by the real binary with `--root`.

mod common;
use common::*;
use futures::StreamExt;
use hydra_dashboard::model::LiveMessage;
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The steps of the log's `Step` lines, the later line of a step winning, in step order.
fn logged_steps(dir: &Path, run_id: &str) -> Vec<i64> {
    let log = std::fs::read_to_string(dir.join(format!("logs/training_{run_id}.log"))).unwrap();
    let mut steps: Vec<i64> = log
        .lines()
        .filter_map(|l| l.split(" - Step ").nth(1))
        .filter_map(|rest| rest.split('/').next()?.trim().parse().ok())
        .collect();
    steps.sort_unstable();
    steps.dedup();
    steps
}

fn only_run(dir: &Path) -> String {
    let name = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .flatten()
        .next()
        .expect("a log")
        .file_name();
    let name = name.to_str().unwrap();
    name["training_".len()..name.len() - ".log".len()].to_string()
}

fn steps_of(s: &Server, run_id: &str) -> Vec<i64> {
    let (status, page) = s.json(&format!("/api/metrics/{run_id}?limit=5000"));
    assert_eq!(status, 200, "{page}");
    step_numbers(&page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_followed_from_its_files_while_it_trains() {
    let dir = temp_dir("files-live");
    let trainer = Training::start(
        &dir,
        &["--rate", "50", "--steps", "1500", "--log-interval", "5"],
    );
    let server = Server::watching(&dir, &[]);
    // The log appears at once; the database only at the end.
    let mut run_id = None;
    for _ in 0..100 {
        let (_, runs) = server.json("/api/runs/500m");
        if let Some(id) = runs.get(0).and_then(|r| r["run_id"].as_str()) {
            assert_eq!(runs[0]["state"], "training", "{runs}");
            run_id = Some(id.to_string());
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let run_id = run_id.expect("the training run is listed");
    assert!(
        !dir.join("checkpoints/training.db").exists(),
        "no database yet"
    );
    let url = format!("ws://{}/ws/{run_id}?after_step=0", server.addr);
    let mut socket = tokio_tungstenite::connect_async(url).await.unwrap().0;
    let mut got: Vec<i64> = Vec::new();
    let mut evals: std::collections::BTreeMap<i64, f64> = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.last() != Some(&1500) {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .unwrap_or_else(|_| panic!("timed out at {:?}", got.last()))
            .expect("open")
            .unwrap();
        if let Message::Text(text) = frame {
            match serde_json::from_str::<LiveMessage>(&text).unwrap() {
                LiveMessage::Update { steps, .. } => got.extend(steps.iter().map(|s| s.step)),
                LiveMessage::Evals { points } => {
                    evals.extend(points.iter().map(|p| (p.step, p.eval_loss)))
                }
                LiveMessage::Error { error } => panic!("feed error: {error}"),
                _ => {}
            }
        }
    }
    // The trainer ends by itself: its last save, `Training complete!`, report, database.
    let mut trainer = trainer;
    for _ in 0..300 {
        if trainer.0.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        trainer.0.try_wait().unwrap().is_some(),
        "the trainer finished"
    );
    // Read once more after the last save (the look is throttled to every 100 ms).
    std::thread::sleep(Duration::from_millis(300));
    let logged = logged_steps(&dir, &run_id);
    assert_eq!(logged.len(), 300, "a line every 5 steps");
    assert_eq!(got, logged, "every logged step once, in order, over /ws");
    // The API has the same steps (the diagnostics records fall on logged steps).
    assert_eq!(steps_of(&server, &run_id), logged);
    // The evaluations came over /ws as the log wrote them (every 500 steps).
    let (_, page) = server.json(&format!("/api/eval/{run_id}"));
    let served: Vec<(i64, f64)> = page["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["step"].as_i64().unwrap(),
                p["eval_loss"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(
        evals.contains_key(&500) && evals.contains_key(&1000),
        "{evals:?}"
    );
    for (step, loss) in &evals {
        assert!(served.contains(&(*step, *loss)), "eval at {step} as served");
    }
    let (_, page) = server.json(&format!("/api/metrics/{run_id}?start_step=1000&limit=1"));
    let step = &page["steps"][0];
    assert!(
        step["vram_gb"].as_f64().is_some(),
        "from the diagnostics record: {step}"
    );
    // Finished: the log says so.
    let (_, run) = server.json(&format!("/api/run/{run_id}"));
    assert_eq!(run["state"], "finished", "{run}");
    let (status, routing) = server.json(&format!("/api/routing/mor/{run_id}?limit=5000"));
    assert_eq!(status, 200);
    assert_eq!(
        routing["data"].as_array().unwrap().len(),
        15 * 12,
        "a record every 100 steps"
    );
    // Now in the database too: it reads the same as it did from the files.
    reads_the_same_from_files_and_database(&dir, &run_id);
}

/// The run `run_id` read from `dir`'s files alone and from its database alone: at every step
/// the database holds, the same numbers (EMAs within 1e-9, the loader's) and routing.
fn reads_the_same_from_files_and_database(dir: &Path, run_id: &str) {
    let root = dir.to_str().unwrap();
    let files = Server::start_with(&dir.join("no-database-here.db"), &["--root", root]);
    let db = Server::start(&dir.join("checkpoints/training.db"));
    let page = |s: &Server, path: &str| {
        let (status, page) = s.json(path);
        assert_eq!(status, 200, "{path}: {page}");
        page
    };
    let from_db = page(&db, &format!("/api/metrics/{run_id}?limit=5000"));
    let from_files = page(&files, &format!("/api/metrics/{run_id}?limit=5000"));
    let by_step: std::collections::HashMap<i64, &serde_json::Value> = from_files["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_i64().unwrap(), s))
        .collect();
    let rows = from_db["steps"].as_array().unwrap();
    assert!(rows.len() >= 5, "{from_db}");
    for row in rows {
        let step = row["step"].as_i64().unwrap();
        let mine = by_step
            .get(&step)
            .unwrap_or_else(|| panic!("step {step} from files"));
        assert_eq!(row["timestamp"], mine["timestamp"], "step {step}");
        for key in [
            "loss_total",
            "loss_ce",
            "lr",
            "grad_norm",
            "grad_norm_pre_clip",
            "tokens_per_sec",
            "vram_gb",
            "ema_short",
            "ema_medium",
            "ema_long",
        ] {
            let (a, b) = (row[key].as_f64(), mine[key].as_f64());
            let close = match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                (a, b) => a == b,
            };
            assert!(close, "step {step} {key}: database {a:?}, files {b:?}");
        }
    }
    for kind in ["mod", "mor", "moe"] {
        let path = format!("/api/routing/{kind}/{run_id}?limit=5000");
        let mut from_files = page(&files, &path)["data"].take();
        // The depth histogram is in the diagnostics file only: the loader drops it.
        for row in from_files.as_array_mut().unwrap() {
            let histogram = row.as_object_mut().unwrap().remove("depth_histogram");
            assert_eq!(histogram.is_some(), kind == "mor", "{row}");
        }
        assert_eq!(page(&db, &path)["data"], from_files, "{kind} routing");
    }
}

/// Each run's EMAs start where the loader starts them: from the newest EMA its model has in
/// the database, that of the run loaded before it.
#[test]
fn a_runs_emas_continue_from_its_models_run_loaded_before_it() {
    let dir = temp_dir("files-emas");
    let (first, second) = ("500m_20260109_144733", "500m_20260110_090000");
    train(&dir, &["--steps", "800", "--run-id", first]);
    train(&dir, &["--steps", "800", "--run-id", second, "--seed", "7"]);
    reads_the_same_from_files_and_database(&dir, second);
    // Not from its own first loss: the seed is the first run's last EMA.
    let db = Server::start(&dir.join("checkpoints/training.db"));
    let (_, page) = db.json(&format!("/api/metrics/{second}?limit=1"));
    let s = &page["steps"][0];
    assert_ne!(s["ema_long"], s["loss_total"], "{s}");
}

#[test]
fn a_crashed_run_is_listed_crashed_with_its_steps_from_its_files() {
    let dir = temp_dir("files-crash");
    train(&dir, &["--steps", "3000", "--crash-at", "1234"]);
    let run_id = only_run(&dir);
    let log = std::fs::read_to_string(dir.join(format!("logs/training_{run_id}.log"))).unwrap();
    assert!(
        log.contains("Traceback"),
        "the fixture dies as the trainer does"
    );
    let server = Server::watching(&dir, &[]);
    let (status, runs) = server.json("/api/runs/500m");
    assert_eq!(status, 200);
    assert_eq!(runs[0]["run_id"], run_id.as_str());
    assert_eq!(runs[0]["state"], "crashed", "{runs}");
    let steps = steps_of(&server, &run_id);
    assert_eq!(
        steps.last(),
        Some(&1225),
        "the log's last line before the crash"
    );
    assert_eq!(steps, logged_steps(&dir, &run_id));
    let (status, html) = server.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(html.contains("crashed"));
}

#[test]
fn the_runs_table_counts_a_crashed_runs_tokens_as_a_report_would_and_throughput_over_steps() {
    let dir = temp_dir("files-tokens");
    train(&dir, &["--run-id", "500m_done", "--steps", "2000"]);
    train(
        &dir,
        &[
            "--run-id",
            "500m_died",
            "--steps",
            "3000",
            "--crash-at",
            "2000",
        ],
    );
    // The trainer says a step's size at start-up (hydra/training/trainer.py); the fixture
    // writes other start-up lines, so these go where the trainer writes them, after the
    // run id. A crashed run has no report, so they are all that tells the accumulation.
    let log = dir.join("logs/training_500m_died.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let (head, rest) = text.split_once('\n').unwrap();
    let at = &head[..19];
    std::fs::write(
        &log,
        format!(
            "{head}\n{at} - HYDRA - INFO - Batch: 8 micro × 4 accum = 32 effective\n\
             {at} - HYDRA - INFO - Sequence length: 2048\n{rest}"
        ),
    )
    .unwrap();
    let server = Server::watching(&dir, &[]);
    let (status, runs) = server.json("/api/runs");
    assert_eq!(status, 200);
    let run = |id: &str| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {runs}"))
            .clone()
    };
    let per_step =
        |r: &serde_json::Value| r["tokens"].as_f64().unwrap() / r["step"].as_f64().unwrap();
    // The report's count: 8 × 4 × 2048 a step.
    assert_eq!(per_step(&run("500m_done")), 65_536.0);
    assert_eq!(run("500m_done").get("tokens_estimated"), None);
    // Counted from the files: the steps before the first record with the batch size
    // (every 100 steps) are not counted, so a little less — not a quarter.
    let died = run("500m_died");
    assert_eq!(died["state"], "crashed");
    assert!(
        (0.9 * 65_536.0..=65_536.0).contains(&per_step(&died)),
        "{died}"
    );
    // Counted, not recorded: the table marks it.
    assert_eq!(died["tokens_estimated"], true);
    // Throughput is the mean over the newest logged steps, as the gauge's: the fixture's
    // every 2,000th step is a pause at 0.4 × 41k tokens/s, its last step here among them.
    let tps = run("500m_done")["tokens_per_sec"].as_f64().unwrap();
    assert!((0.9 * 41_000.0..1.1 * 41_000.0).contains(&tps), "{tps}");
}

#[test]
fn a_resume_replaces_the_steps_it_logs_again() {
    let dir = temp_dir("files-resume");
    train(&dir, &["--steps", "2000", "--crash-at", "1234"]);
    let run_id = only_run(&dir);
    let before = std::fs::read_to_string(dir.join(format!("logs/training_{run_id}.log"))).unwrap();
    train(&dir, &["--steps", "2000", "--resume-from", "1000"]);
    let server = Server::watching(&dir, &[]);
    let steps = steps_of(&server, &run_id);
    assert_eq!(steps, logged_steps(&dir, &run_id), "each step once");
    assert_eq!(steps.last(), Some(&2000));
    // Step 1100 was logged before the crash and again after the resume: the later wins.
    let line = |log: &str| -> f64 {
        let l = log.lines().rfind(|l| l.contains("Step  1100/")).unwrap();
        l.split("Loss: ").nth(1).unwrap()[..6].parse().unwrap()
    };
    let after = std::fs::read_to_string(dir.join(format!("logs/training_{run_id}.log"))).unwrap();
    let (_, page) = server.json(&format!("/api/metrics/{run_id}?start_step=1100&limit=1"));
    let served = page["steps"][0]["loss_total"].as_f64().unwrap();
    // The diagnostics record of step 1100 (full floats) is the resumed one too.
    assert!(
        (served - line(&after)).abs() < 1e-4,
        "{served} vs {}",
        line(&after)
    );
    assert_ne!(
        line(&before),
        line(&after),
        "the fixture logs other numbers after a resume"
    );
}

#[test]
fn a_run_with_only_a_log_draws_what_the_log_has() {
    let dir = temp_dir("files-plain");
    train(
        &dir,
        &["--steps", "1000", "--no-mod-mor", "--crash-at", "800"],
    );
    let run_id = only_run(&dir);
    assert!(std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .next()
        .is_none());
    let server = Server::watching(&dir, &[]);
    let (status, html) = server.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(
        html.contains("no MoR routing logged") || html.contains("no MoR"),
        "routing says why"
    );
    let (_, page) = server.json(&format!("/api/metrics/{run_id}?limit=1"));
    let s = &page["steps"][0];
    for key in [
        "loss_total",
        "lr",
        "grad_norm",
        "grad_norm_pre_clip",
        "tokens_per_sec",
    ] {
        assert!(s[key].as_f64().is_some(), "{key} from the log: {s}");
    }
}

#[test]
fn eval_loss_from_the_log_is_served_drawn_and_exported() {
    let dir = temp_dir("files-eval");
    train(&dir, &["--steps", "2000"]);
    let run_id = only_run(&dir);
    let server = Server::watching(&dir, &[]);
    let (status, page) = server.json(&format!("/api/eval/{run_id}"));
    assert_eq!(status, 200, "{page}");
    let points = page["points"].as_array().unwrap();
    let steps: Vec<i64> = points.iter().map(|p| p["step"].as_i64().unwrap()).collect();
    assert_eq!(
        steps,
        [500, 1000, 1500, 2000],
        "an [EVAL] line every 500 steps"
    );
    assert!(points[0]["eval_loss"].as_f64().is_some());
    assert!(points[0]["train_loss"].as_f64().is_some());
    assert!(
        points[0]["components"]["fineweb"].as_f64().is_some(),
        "{}",
        points[0]
    );
    // On the page's loss panel and its chart.
    let (_, html) = server.get(&format!("/run/{run_id}"));
    assert!(html.contains(" · eval "), "the loss panel's line");
    let (_, svg) = server.get(&format!("/api/export/{run_id}/loss.svg"));
    assert!(
        svg.contains(">eval<") || svg.contains(">\neval\n<"),
        "the legend"
    );
    assert!(svg.contains("eval fineweb"), "a component in the legend");
    // As CSV, a column per component.
    let (status, csv) = server.get(&format!("/api/export/{run_id}/eval.csv"));
    assert_eq!(status, 200);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("step,eval_loss,train_loss,code,fineweb,math")
    );
    assert_eq!(lines.count(), 4);
    // A run only in a database has none, and says so plainly.
    let (status, page) = server.json("/api/eval/no_such_run");
    assert_eq!(status, 404, "{page}");
}

/// A diagnostics file read while the trainer rewrites it slowly (`--slow-save 1`: each
/// rewrite takes a second, written in pieces): what was read is never taken back, and no
/// request fails.
#[test]
fn a_slow_rewrite_never_takes_records_back_or_fails_a_request() {
    let dir = temp_dir("files-slow");
    let _trainer = Training::start(
        &dir,
        &["--rate", "200", "--steps", "4000", "--slow-save", "1"],
    );
    let server = Server::watching(&dir, &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut steps_seen, mut records_seen, mut asked) = (0, 0, 0);
    let mut run_id = None;
    while std::time::Instant::now() < deadline && records_seen < 35 {
        let Some(id) = run_id.clone() else {
            let (_, runs) = server.json("/api/runs/500m");
            run_id = runs
                .get(0)
                .and_then(|r| r["run_id"].as_str())
                .map(str::to_string);
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let (status, page) = server.json(&format!("/api/metrics/{id}?limit=5000"));
        assert_eq!(status, 200, "{page}");
        let steps = page["steps"].as_array().unwrap().len();
        let (status, mor) = server.json(&format!("/api/routing/mor/{id}?limit=5000"));
        assert_eq!(status, 200, "{mor}");
        let records = mor["data"].as_array().unwrap().len() / 12;
        assert!(
            steps >= steps_seen,
            "steps went back from {steps_seen} to {steps}"
        );
        assert!(
            records >= records_seen,
            "records went back from {records_seen} to {records}"
        );
        (steps_seen, records_seen) = (steps, records);
        asked += 1;
    }
    assert!(
        records_seen >= 35,
        "the rewrites were read: {records_seen} records"
    );
    assert!(asked > 50, "the reader hammered ({asked} rounds)");
}

/// Issue 14: a run whose log went quiet long ago without a word of how it ended (the
/// process was killed, or hangs) is stalled, with the time of its last sign of life; the
/// same run with a traceback is crashed.
#[test]
fn a_run_quiet_without_an_end_in_its_log_is_stalled() {
    let dir = temp_dir("files-stalled");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let log = dir.join("logs/training_500m_20260109_100000.log");
    let mut text = String::new();
    for (i, step) in [25, 50, 75, 100].iter().enumerate() {
        text.push_str(&format!(
            "2026-01-09 10:00:{:02} - HYDRA - INFO - Step {step:>5}/20000 | Loss: 3.5000 (EMA: 3.5) | LR: 1.00e-04\n",
            i * 10
        ));
    }
    text.push_str("2026-01-09 10:00:45 - HYDRA - WARNING - data loader slow\n");
    std::fs::write(&log, &text).unwrap();
    let server = Server::watching(&dir, &[]);
    let (_, runs) = server.json("/api/runs/500m");
    assert_eq!(runs[0]["state"], "stalled", "{runs}");
    assert_eq!(
        runs[0]["last_seen"], "2026-01-09T10:00:45",
        "any line is a sign of life"
    );
    drop(server);
    text.push_str("2026-01-09 10:00:50 - HYDRA - ERROR - Traceback (most recent call last):\n");
    std::fs::write(&log, &text).unwrap();
    let server = Server::watching(&dir, &[]);
    let (_, runs) = server.json("/api/runs/500m");
    assert_eq!(runs[0]["state"], "crashed", "{runs}");
}
