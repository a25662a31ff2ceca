//! The command line: clear one-line errors and a non-zero exit for what a user gets wrong.

mod common;
use common::*;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hydra-dashboard snapshot --db DB --out OUT` and more flags.
fn snapshot_cmd(db: &std::path::Path, out: &std::path::Path, flags: &[&str]) -> (i32, String) {
    let mut args = vec![
        "snapshot",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    run(&args)
}

#[test]
fn a_missing_database_says_how_to_point_at_one() {
    let dir = temp_dir("cli-missing");
    let db = dir.join("checkpoints/training.db");
    let out = dir.join("out.html");
    let (code, err) = snapshot_cmd(&db, &out, &[]);
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("does not exist") && err.contains("--db") && err.contains("demo"),
        "{err}"
    );
    assert!(!dir.join("checkpoints").exists(), "nothing created");
    assert!(!out.exists());
}

#[test]
fn a_file_that_is_not_a_hydra_database_is_named() {
    let dir = temp_dir("cli-nothydra");
    let out = dir.join("out.html");
    let notes = dir.join("notes.txt");
    std::fs::write(&notes, "hello ".repeat(1000)).unwrap();
    let snapshot_of = |db: &std::path::Path| snapshot_cmd(db, &out, &[]);
    let (code, err) = snapshot_of(&notes);
    assert_eq!(code, 1);
    assert!(err.contains("not an SQLite database"), "{err}");

    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (code, err) = snapshot_of(&empty);
    assert_eq!(code, 1);
    assert!(err.contains("no tables yet"), "{err}");
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "still untouched"
    );
}

#[test]
fn an_address_in_use_is_one_clear_line() {
    let dir = temp_dir("cli-addr");
    let db = make_db(&dir, &["--steps", "500"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["serve", "--addr", &addr, "--db", db.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("already in use") && err.contains("--addr"),
        "{err}"
    );
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--db",
        "HYDRA_DB",
        "--addr",
        "HYDRA_ADDR",
        "read-only",
        "--target-tps",
        "--vram-warn",
        "--vram-danger",
        "--vram-total",
    ] {
        assert!(help.contains(needle), "serve --help lacks {needle}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
        .args(["demo", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["--addr", "--dir", "--rate"] {
        assert!(help.contains(needle), "demo --help lacks {needle}: {help}");
    }
}

#[test]
fn the_demo_trains_like_the_trainer_while_serving_it() {
    /// The demo, killed on drop: a failed assertion must not leave it training.
    struct Demo(std::process::Child);
    impl Drop for Demo {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = temp_dir("demo");
    let mut child = Demo(
        Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
            .args(["demo", "--addr", "127.0.0.1:0", "--rate", "20", "--dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .expect("URL line")
        .trim()
        .to_string();
    let json = |path: &str| -> serde_json::Value {
        serde_json::from_str(&http(&addr, "GET", path).1).unwrap()
    };
    let models = json("/api/models");
    let model = models[0]["model_id"].as_str().unwrap().to_string();
    let runs = json(&format!("/api/runs/{model}"));
    let states: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        states,
        ["finished", "crashed", "training"],
        "a finished run, one that crashed, and its resume training now: {runs}"
    );
    let live = runs[2]["run_id"].as_str().unwrap().to_string();
    // The files the trainer writes, where it writes them.
    assert!(
        dir.join("checkpoints/training.db").exists(),
        "the finished run's"
    );
    assert!(dir.join(format!("logs/training_{live}.log")).exists());
    let (_, eval) = http(&addr, "GET", &format!("/api/eval/{live}"));
    assert!(eval.contains("\"points\""), "{eval}");
    let newest = |json: &dyn Fn(&str) -> serde_json::Value| {
        json(&format!("/api/metrics/{live}?limit=1"))["max_step"]
            .as_i64()
            .unwrap_or(0)
    };
    let first = newest(&json);
    // It keeps training: wait (bounded) until a newer step is visible.
    let mut advanced = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if newest(&json) > first {
            advanced = true;
            break;
        }
    }
    // Its routing arrives with its first diagnostics save (every 500 steps: 50 lines).
    let mut moe = String::new();
    for _ in 0..150 {
        moe = http(&addr, "GET", &format!("/api/routing/moe/{live}")).1;
        if moe.contains("util_expert_0") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    drop(child);
    assert!(advanced, "the demo trainer appends steps");
    assert!(moe.contains("util_expert_0"), "the demo writes MoE routing");
}

#[test]
fn gauge_zones_that_do_not_rise_are_refused() {
    let dir = temp_dir("cli-gauges");
    let db = make_db(&dir, &["--steps", "500"]);
    let (code, err) = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--vram-warn",
        "30",
        "--vram-danger",
        "28",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("VRAM zones must rise"), "{err}");
    let (code, err) = run(&[
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--target-tps",
        "0",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("positive"), "{err}");
}

#[test]
fn a_comparison_snapshot_is_one_offline_file_of_the_runs_side_by_side() {
    let (dir, db) = two_models();
    let ids: Vec<String> = query(&db, "SELECT group_concat(run_id, char(10)) FROM runs")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(ids.len() >= 2, "{ids:?}");
    let runs = ids.join(",");
    let before = snapshot(&dir);
    let out = dir.join("compare.html");
    let (code, err) = snapshot_cmd(
        &db,
        &out,
        &["--runs", &runs, "--x", "tokens", "--smoothing", "0.8"],
    );
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        5,
        "the compare page's five charts"
    );
    for id in &ids {
        assert!(
            html.contains(&format!("data-run=\"{id}\"")),
            "{id} in the legend"
        );
    }
    assert!(html.contains("x axis: tokens. Smoothing 0.8."));
    assert!(!html.contains("<script"), "readable with JavaScript off");
    let to_server = html.matches("href=\"/").count() + html.matches("src=\"/").count();
    assert_eq!(
        to_server, 0,
        "no link that needs the server (the CSV, the runs)"
    );
    let mut after = snapshot(&dir);
    after.retain(|f| f.0 != "compare.html");
    assert_eq!(after, before, "the user's file is untouched");

    for (flags, exit, says) in [
        (vec!["--runs", "nope,also-nope"], 1, "no run \"nope\""),
        (
            vec!["--runs", &runs, "--run", &ids[0]],
            2,
            "cannot be used with",
        ),
        (vec!["--x", "tokens"], 2, "--runs"),
        (vec!["--runs", &runs, "--x", "epochs"], 2, "epochs"),
        (vec!["--runs", &runs, "--smoothing", "3"], 1, "smoothing"),
    ] {
        let (code, err) = snapshot_cmd(&db, &dir.join("x.html"), &flags);
        assert_eq!(code, exit, "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
}

#[test]
fn a_snapshot_of_a_trainers_directory_has_the_crashed_run_from_its_log() {
    let dir = temp_dir("cli-snapshot-root");
    let db = train(
        &dir,
        &[
            "--run-id",
            "crashed",
            "--model",
            "100m",
            "--steps",
            "3000",
            "--crash-at",
            "2345",
        ],
    );
    assert!(!db.exists(), "a crashed run never reaches the database");
    let before = snapshot(&dir);
    let out = std::env::temp_dir().join(format!("hydra-crashed-{}.html", std::process::id()));
    let (code, err) = run(&[
        "snapshot",
        "--root",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(html.contains("crashed"), "the run read from its log");
    assert!(html.contains("2,3"), "its last steps");
    assert_eq!(snapshot(&dir), before, "the trainer's files are untouched");
}

#[test]
fn a_snapshot_is_one_offline_file_and_a_bad_run_is_named() {
    let dir = temp_dir("cli-snapshot");
    let db = make_db(&dir, &["--nan", "--collapse", "--moe"]);
    let before = snapshot(&dir);
    let out = dir.join("share.html");
    let (code, err) = snapshot_cmd(&db, &out, &["--start-step", "12000", "--end-step", "15000"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("<svg").count(), 7, "every panel's chart");
    assert!(!html.contains("<script"), "readable with JavaScript off");
    for external in [
        "src=\"http",
        "href=\"http",
        "src=\"/",
        "href=\"/pkg",
        "url(http",
    ] {
        assert!(
            !html.contains(external),
            "no external reference: {external}"
        );
    }
    // Issue 13: no link back to a server the file does not have (it had 22: the brand,
    // every chart's CSV, SVG and PNG).
    let to_server = html.matches("href=\"/").count() + html.matches("href='/").count();
    assert_eq!(to_server, 0, "links that need the server");
    assert!(html.contains("MoR collapse") && html.contains("Snapshot taken"));
    // The zoomed range: the step axis ticks every 500 between 12k and 15k.
    assert!(html.contains("12.5k") && html.contains("14.5k"));
    assert!(!html.contains("17.5k"));
    assert!(html.len() < 5_000_000);
    let mut after = snapshot(&dir);
    after.retain(|f| f.0 != "share.html");
    assert_eq!(after, before, "the user's file is untouched");

    let (code, err) = snapshot_cmd(&db, &dir.join("x.html"), &["--run", "no such run"]);
    assert_eq!(code, 1);
    assert!(err.contains("no run \"no such run\""), "{err}");
}
