//! Issue 13: the real trainer's data shown right. Databases made the way the HYDRA trainer
//! makes them (`../shared/fixtures/hydra_trainer.py`: its config through `json.dumps`, the
//! loader's rows), served by the real binary.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

#[test]
fn a_config_written_by_python_with_infinity_is_read() {
    let dir = temp_dir("real-config");
    let db = train(&dir, &["--steps", "2000"]);
    let raw = query(&db, "SELECT config_json FROM runs LIMIT 1");
    assert!(
        raw.contains("Infinity"),
        "the fixture writes what json.dumps writes"
    );
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (status, detail) = s.json(&format!("/api/run/{run_id}"));
    assert_eq!(status, 200);
    assert_eq!(detail["config_error"], Value::Null, "{detail}");
    assert_eq!(detail["config"]["max_steps"], 2000);
    assert_eq!(detail["config"]["grad_clip"], 1.0);
    assert_eq!(detail["config"]["moe_capacity_factor"], "Infinity");
    // The page's sidebar shows it, and the ETA knows max_steps.
    let (status, page) = s.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("moe_capacity_factor"),
        "the config panel lists every key"
    );
    assert!(!page.contains("needs max_steps"));
}

#[test]
fn a_model_without_moe_shows_no_moe_and_no_imbalance() {
    let dir = temp_dir("real-no-moe");
    let db = train(&dir, &["--steps", "2000"]);
    let zero_rows = query(
        &db,
        "SELECT COUNT(*) FROM routing_moe WHERE util_expert_0 = 0 AND util_expert_1 = 0",
    );
    assert_ne!(
        zero_rows, "0",
        "the loader writes all-zero MoE rows without MoE"
    );
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (status, moe) = s.json(&format!("/api/routing/moe/{run_id}?max_points=100"));
    assert_eq!(status, 200);
    assert_eq!(moe["experts"], Value::Array(Vec::new()), "{moe}");
    let (_, page) = s.get(&format!("/run/{run_id}"));
    assert!(!page.contains("imbalanced"));

    // With MoE, its records are drawn as before.
    let dir = temp_dir("real-moe");
    let db = train(&dir, &["--steps", "2000", "--moe"]);
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (_, moe) = s.json(&format!("/api/routing/moe/{run_id}?max_points=100"));
    assert_eq!(moe["experts"].as_array().map(Vec::len), Some(4), "{moe}");
}

#[test]
fn models_come_newest_first() {
    let dir = temp_dir("real-models");
    let db = train(&dir, &["--steps", "1000", "--model", "100m"]);
    train(&dir, &["--steps", "1000", "--model", "626m"]);
    sql(
        &db,
        "UPDATE models SET created_at = '2026-01-01 00:00:00' WHERE model_id = '100m';
         UPDATE models SET created_at = '2026-02-01 00:00:00' WHERE model_id = '626m';",
    );
    let s = Server::start(&db);
    let (_, models) = s.json("/api/models");
    let ids: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["626m", "100m"]);
}

#[test]
fn health_answers_while_the_process_serves_and_says_whether_the_file_reads() {
    let dir = temp_dir("real-health");
    let db = dir.join("checkpoints").join("training.db");
    let s = Server::start(&db);
    let (status, health) = s.json("/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "unhealthy", "the original's word");
    assert_eq!(health["database"]["readable"], false);
    assert!(
        health["database"]["error"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{health}"
    );
    train(&dir, &["--steps", "500"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, health) = s.json("/health");
        assert_eq!(status, 200);
        if health["database"]["readable"] == true {
            assert_eq!(health["status"], "healthy");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{health}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn emas_after_a_nan_loss_are_drawn_and_said_to_be_computed() {
    let dir = temp_dir("real-nan");
    let db = train(&dir, &["--steps", "3000", "--nan"]);
    let nulls = query(
        &db,
        "SELECT COUNT(*) FROM steps WHERE ema_short IS NULL AND loss_total IS NOT NULL",
    );
    assert_ne!(nulls, "0", "the loader leaves the EMAs after a NaN NULL");
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (status, page) = s.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("(computed from"),
        "the legend says where ours begin"
    );
}

#[test]
fn a_sustained_collapse_is_one_collapse_named_by_its_kind() {
    let dir = temp_dir("real-collapse");
    let db = train(&dir, &["--steps", "4000", "--collapse"]);
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (status, mor) = s.json(&format!("/api/routing/mor/{run_id}?max_points=100"));
    assert_eq!(status, 200);
    let collapses = mor["collapses"].as_array().unwrap();
    assert_eq!(collapses.len(), 1, "{collapses:?}");
    assert_eq!(collapses[0]["layer"], 0);
    assert_eq!(collapses[0]["kind"], "early_exit");
    let (_, page) = s.get(&format!("/run/{run_id}"));
    assert!(page.contains("early exit"), "the banner names the kind");
}

#[test]
fn the_originals_ema_and_adaptive_lr_endpoints_answer_in_its_shapes() {
    let dir = temp_dir("real-ema");
    let db = train(&dir, &["--steps", "3000"]);
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let rows: usize = query(&db, "SELECT COUNT(*) FROM steps").parse().unwrap();

    let (status, ema) = s.json("/api/ema/500m");
    assert_eq!(status, 200, "{ema}");
    for key in ["raw", "short", "medium", "long"] {
        assert_eq!(ema[key].as_array().unwrap().len(), rows, "{key}");
    }
    let first_short: f64 = query(&db, "SELECT ema_short FROM steps ORDER BY step LIMIT 1")
        .parse()
        .unwrap();
    assert_eq!(ema["short"][0][1], first_short, "as stored");
    let (_, part) = s.json("/api/ema/500m?start_step=1000&end_step=1999");
    let steps: Vec<i64> = part["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_i64().unwrap())
        .collect();
    assert!(steps.iter().all(|s| (1000..=1999).contains(s)) && !steps.is_empty());
    assert_eq!(s.json("/api/ema/nope").0, 404);

    let (status, lr) = s.json(&format!("/api/adaptive_lr/{run_id}?limit=5"));
    assert_eq!(status, 200, "{lr}");
    assert_eq!(lr["run_id"], run_id.as_str());
    let data = lr["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    for key in [
        "step",
        "loss_ema_short",
        "loss_ema_long",
        "patience_counter",
        "cooldown_triggered",
    ] {
        assert!(!data[0][key].is_null(), "{key}: {lr}");
    }
    for bad in ["?limit=", "?limit=5001", "?start_step=-1"] {
        assert_eq!(
            s.json(&format!("/api/adaptive_lr/{run_id}{bad}")).0,
            400,
            "{bad}"
        );
    }
}

/// Issue 13: the trainer never writes `end_time`; a run's state comes from evidence.
#[test]
fn a_runs_state_comes_from_evidence_not_from_end_time() {
    let dir = temp_dir("real-state");
    let db = train(&dir, &["--steps", "2000"]);
    assert_eq!(
        query(&db, "SELECT IFNULL(end_time, 'none') FROM runs"),
        "none"
    );
    let s = Server::start(&db);
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (_, runs) = s.json("/api/runs/500m");
    assert_eq!(runs[0]["state"], "finished", "it reached max_steps: {runs}");
    let (_, run) = s.json(&format!("/api/run/{run_id}"));
    assert_eq!(run["state"], "finished");
    let (_, page) = s.get(&format!("/run/{run_id}"));
    assert!(
        page.contains(r#"data-state="finished""#),
        "the header says so"
    );

    // Short of its plan, and its newest step long ago (the fixture's clock is January).
    sql(&db, "DELETE FROM steps WHERE step > 1000");
    let (_, runs) = s.json("/api/runs/500m");
    assert_eq!(runs[0]["state"], "stopped", "{runs}");
}

#[test]
fn a_run_written_right_now_is_training() {
    struct Writer(std::process::Child);
    impl Drop for Writer {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = temp_dir("real-training");
    let db = dir.join("training.db");
    let _writer = Writer(
        Command::new("python3")
            .arg(fixture_script())
            .arg(&db)
            .args(["--model", "live", "--live", "--rate", "50", "--batch", "5"])
            .args(["--steps", "100000", "--every", "1", "--runs", "1"])
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !db.exists() {
        assert!(std::time::Instant::now() < deadline, "no file");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let s = Server::start(&db);
    loop {
        let (status, runs) = s.json("/api/runs/live");
        if status == 200 && runs[0]["state"].is_string() {
            assert_eq!(runs[0]["state"], "training", "{runs}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no run appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Issue 13: the trainer writes a run's row only from its report; a crashed run backfilled
/// into the database has steps and no row, and was a 404.
#[test]
fn a_run_without_a_runs_row_is_a_run() {
    let dir = temp_dir("real-crash");
    train(&dir, &["--steps", "3000", "--crash-at", "1234"]);
    let db = train(&dir, &["--backfill"]);
    assert_eq!(query(&db, "SELECT COUNT(*) FROM runs"), "0");
    let run_id = query(&db, "SELECT run_id FROM steps LIMIT 1");
    let s = Server::start(&db);
    let (status, runs) = s.json("/api/runs/500m");
    assert_eq!(status, 200);
    assert_eq!(runs[0]["run_id"], run_id.as_str(), "{runs}");
    assert_eq!(runs[0]["state"], "stopped", "short of its plan, long quiet");
    let (status, run) = s.json(&format!("/api/run/{run_id}"));
    assert_eq!(status, 200, "{run}");
    let (status, page) = s.json(&format!("/api/metrics/{run_id}?limit=5"));
    assert_eq!(status, 200);
    assert_eq!(page["steps"].as_array().unwrap().len(), 5);
    let (status, html) = s.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(html.contains(&run_id));
    // Not "finished", and nothing says it is still training.
    assert!(html.contains("stopped before max_steps"), "the ETA card");
    assert!(!html.contains("still training"));
    let (_, stats) = s.json("/api/stats/500m");
    assert_eq!(stats["run_count"], 1);
}

/// Issue 13: a run's rows are found by their own `run_id`, not from `start_step`. The real
/// trainer writes its configuration's `start_step`: the checkpoint step for a resume, whether
/// the run id stays (its rows from before the resume were hidden) or is new (the run before
/// it lost its last row, at that checkpoint step, and that step's routing).
#[test]
fn a_runs_rows_are_found_by_their_run_id_not_by_start_step() {
    let dir = temp_dir("real-resume");
    let first = "500m_20260109_100000";
    let second = "500m_20260109_120000";
    // The first run dies at 3,456 and resumes, same id, from its checkpoint at 3,000.
    train(
        &dir,
        &["--run-id", first, "--steps", "4000", "--crash-at", "3456"],
    );
    train(
        &dir,
        &[
            "--run-id",
            first,
            "--steps",
            "4000",
            "--resume-from",
            "3000",
        ],
    );
    // A new run id starts from that run's checkpoint at 2,000 and finishes at 6,000.
    train(
        &dir,
        &[
            "--run-id",
            second,
            "--steps",
            "6000",
            "--resume-from",
            "2000",
        ],
    );
    let db = train(&dir, &["--backfill"]);
    assert_eq!(
        query(
            &db,
            &format!("SELECT start_step FROM runs WHERE run_id = '{first}'")
        ),
        "3000"
    );
    assert_eq!(
        query(
            &db,
            &format!("SELECT MIN(step) || ',' || MAX(step) FROM steps WHERE run_id = '{first}'")
        ),
        "100,2000",
        "the second run rewrote the first's steps after 2,000"
    );
    let s = Server::start(&db);
    let (status, page) = s.json(&format!("/api/metrics/{first}?limit=100"));
    assert_eq!(status, 200, "{page}");
    let steps: Vec<i64> = step_numbers(&page);
    assert_eq!(steps.len(), 20, "every record from 100 to 2,000: {steps:?}");
    assert_eq!((steps[0], steps[19]), (100, 2000));
    assert_eq!(page["max_step"], 2000, "{page}");
    let (_, mor) = s.json(&format!("/api/routing/mor/{first}?start_step=2000"));
    let rows = mor["data"].as_array().expect("routing rows");
    assert_eq!(
        rows.len(),
        12,
        "every layer at the first run's last step: {mor}"
    );
    assert!(rows
        .iter()
        .all(|r| r["step"] == 2000 && r["run_id"] == first));
    let (_, page) = s.json(&format!("/api/metrics/{second}?limit=100"));
    let steps = page["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 40, "2,100 to 6,000");
    assert_eq!(steps[0]["step"], 2100);
    assert_eq!(page["max_step"], 6000);
}

/// Issue 13: the adaptive-LR controller's records were read nowhere. The learning-rate
/// panel shows its loss EMAs and patience, and marks each cooldown where it began.
#[test]
fn the_adaptive_lr_controller_is_drawn_on_the_learning_rate_panel() {
    let dir = temp_dir("real-adaptive");
    let db = train(&dir, &["--steps", "4000"]);
    // The fixture's controller never cools down: two cooldowns, the first lasting 5 records.
    sql(
        &db,
        "UPDATE adaptive_lr SET cooldown_triggered = 1 \
         WHERE step BETWEEN 1500 AND 1900 OR step = 3200;",
    );
    let run_id = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let s = Server::start(&db);
    let (status, page) = s.get(&format!("/run/{run_id}"));
    assert_eq!(status, 200);
    assert!(
        page.contains("adaptive LR: 2 cooldown(s)"),
        "the LR panel's line"
    );
    let (status, svg) = s.get(&format!("/api/export/{run_id}/lr.svg"));
    assert_eq!(status, 200);
    assert!(
        svg.contains("adaptive-LR controller"),
        "the controller strip"
    );
    assert!(svg.contains("cooldown"));

    // A run without the controller's table draws the rate alone.
    sql(&db, "DROP TABLE adaptive_lr;");
    let s = Server::start(&db);
    let (_, svg) = s.get(&format!("/api/export/{run_id}/lr.svg"));
    assert!(svg.contains("learning rate"));
    assert!(!svg.contains("controller"));
}
