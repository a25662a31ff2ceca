//! Issue 16: alerts found by watching the trainer's own files — replayed by
//! `hydra-dashboard alerts`, and raised live by the server with no page open. Files made by
//! `../shared/fixtures/hydra_trainer.py`; the expected steps are read from its log.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// `hydra-dashboard alerts --root DIR` with `flags`: exit code and the JSON alerts.
fn alerts_cli(dir: &Path, flags: &[&str]) -> (i32, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
        .args(["alerts", "--json", "--root"])
        .arg(dir)
        .args(flags)
        .output()
        .unwrap();
    let alerts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out.status.code().unwrap_or(-1), alerts)
}

/// The log's `Step` lines: the step and the rest of the line.
fn step_lines(dir: &Path, run_id: &str) -> Vec<(i64, String)> {
    let log = std::fs::read_to_string(dir.join(format!("logs/training_{run_id}.log"))).unwrap();
    log.lines()
        .filter_map(|l| {
            let (step, rest) = l.split(" - Step ").nth(1)?.split_once('/')?;
            Some((step.trim().parse().ok()?, rest.to_string()))
        })
        .collect()
}

/// The steps whose logged loss is not a finite number.
fn non_finite_steps(dir: &Path, run_id: &str) -> Vec<i64> {
    step_lines(dir, run_id)
        .into_iter()
        .filter(|(_, l)| l.contains("| Loss: nan") || l.contains("| Loss: inf"))
        .map(|(s, _)| s)
        .collect()
}

fn last_logged_step(dir: &Path, run_id: &str) -> i64 {
    step_lines(dir, run_id)
        .into_iter()
        .map(|(s, _)| s)
        .max()
        .unwrap()
}

fn kinds_of(alerts: &[serde_json::Value], run_id: &str) -> Vec<(String, i64)> {
    alerts
        .iter()
        .filter(|a| a["run_id"] == run_id)
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["step"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_alerts_command_replays_a_crash_and_its_nans_and_exits_1_while_one_is_open() {
    let dir = temp_dir("alerts-cli");
    train(
        &dir,
        &[
            "--run-id",
            "500m_crash",
            "--steps",
            "8000",
            "--crash-at",
            "4321",
            "--nan",
        ],
    );
    let nans = non_finite_steps(&dir, "500m_crash");
    assert_eq!(
        nans.len(),
        2,
        "the fixture logs a NaN and an Inf loss: {nans:?}"
    );

    let (code, alerts) = alerts_cli(&dir, &[]);
    assert_eq!(code, 1, "a crash is open");
    let kinds = kinds_of(&alerts, "500m_crash");
    // The Inf comes within the 30-minute cooldown of the NaN: one alert for both.
    let nan: Vec<_> = kinds.iter().filter(|(k, _)| k == "nan").collect();
    assert_eq!(nan, vec![&("nan".to_string(), nans[0])], "{kinds:?}");
    let crashed = alerts
        .iter()
        .find(|a| a["kind"] == "crashed")
        .expect("crashed");
    assert_eq!(crashed["step"], last_logged_step(&dir, "500m_crash"));
    assert_eq!(crashed["resolved_step"], serde_json::Value::Null);

    // Without a cooldown, the Inf is an alert of its own.
    let (_, alerts) = alerts_cli(&dir, &["--alert-cooldown-minutes", "0"]);
    let steps: Vec<i64> = kinds_of(&alerts, "500m_crash")
        .into_iter()
        .filter(|(k, _)| k == "nan")
        .map(|(_, s)| s)
        .collect();
    assert_eq!(steps, nans);

    // Replaying twice tells the same story.
    assert_eq!(alerts_cli(&dir, &[]).1, alerts_cli(&dir, &[]).1);
}

#[test]
fn a_finished_run_has_no_open_alert_and_the_command_exits_0() {
    let dir = temp_dir("alerts-finished");
    train(
        &dir,
        &["--run-id", "500m_done", "--steps", "3000", "--collapse"],
    );
    let (code, alerts) = alerts_cli(&dir, &[]);
    assert_eq!(code, 0, "{alerts:?}");
    let kinds = kinds_of(&alerts, "500m_done");
    assert!(kinds.iter().any(|(k, _)| k == "mor_collapse"), "{kinds:?}");
    assert_eq!(kinds.last().map(|(k, _)| k.as_str()), Some("finished"));
    assert!(alerts
        .iter()
        .all(|a| a["kind"] == "finished" || !a["resolved_step"].is_null()));
}

#[test]
fn the_alerts_command_says_what_is_wrong_with_exit_code_2() {
    let dir = temp_dir("alerts-bad");
    let (code, _) = alerts_cli(&dir, &[]);
    assert_eq!(code, 2, "no run files: cannot tell");
    train(&dir, &["--run-id", "500m_x", "--steps", "1000"]);
    assert_eq!(alerts_cli(&dir, &["--run", "nope"]).0, 2);
    assert_eq!(alerts_cli(&dir, &["--alert-throughput-drop", "1.5"]).0, 2);
}

#[test]
fn the_server_raises_alerts_while_a_run_trains_with_no_page_open() {
    let dir = temp_dir("alerts-live");
    let server = Server::start_with(
        &dir.join("checkpoints/training.db"),
        &["--root", dir.to_str().unwrap()],
    );
    let _training = Training::start(
        &dir,
        &[
            "--run-id",
            "500m_live",
            "--steps",
            "4000",
            "--rate",
            "200",
            "--nan",
            "--crash-at",
            "2500",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let list = loop {
        let (status, list) = server.json("/api/alerts");
        assert_eq!(status, 200, "{list}");
        if list["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "crashed")
        {
            break list;
        }
        assert!(Instant::now() < deadline, "no crash seen in 120 s: {list}");
        std::thread::sleep(Duration::from_millis(250));
    };
    let nans = non_finite_steps(&dir, "500m_live");
    let alerts = list["alerts"].as_array().unwrap();
    let kinds = kinds_of(alerts, "500m_live");
    assert!(kinds.contains(&("nan".to_string(), nans[0])), "{kinds:?}");
    assert_eq!(kinds.iter().filter(|(k, _)| k == "nan").count(), 1);
    assert_eq!(list["open"], 1, "the crash: {list}");
    // Newest first.
    assert_eq!(alerts[0]["kind"], "crashed");

    // The same as the command finds afterwards.
    let (_, replayed) = alerts_cli(&dir, &[]);
    let mut live: Vec<_> = alerts
        .iter()
        .map(|a| (a["kind"].clone(), a["step"].clone()))
        .collect();
    let mut again: Vec<_> = replayed
        .iter()
        .map(|a| (a["kind"].clone(), a["step"].clone()))
        .collect();
    live.sort_by_key(|(k, s)| (k.to_string(), s.as_i64()));
    again.sort_by_key(|(k, s)| (k.to_string(), s.as_i64()));
    assert_eq!(live, again);

    let (_, open) = server.json("/api/alerts?state=open&run_id=500m_live");
    assert_eq!(open["alerts"].as_array().unwrap().len(), 1);
    let (_, none) = server.json("/api/alerts?since=2999-01-01T00:00:00");
    assert_eq!(none["alerts"], serde_json::json!([]));
    for (path, status) in [
        ("/api/alerts?state=loud", 400),
        ("/api/alerts?since=yesterday", 400),
        ("/api/alerts?run_id=nope", 404),
    ] {
        assert_eq!(server.get(path).0, status, "{path}");
    }
}
