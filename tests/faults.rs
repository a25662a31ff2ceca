//! Faults in the trainer's file, injected while the real binary serves it: each gets a clear
//! message in the API and the page, and the dashboard recovers without a restart.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` until it holds, for at most `secs` seconds.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("not within {secs} s: {what}");
}

fn models(s: &Server) -> (u16, Value) {
    s.json("/api/models")
}

fn model_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|m| m["model_id"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A database written elsewhere and moved into place in one step, as a trainer's
/// `os.replace` would leave it.
fn replace_with(db: &Path, args: &[&str]) {
    let aside = temp_dir("faults-aside");
    let fresh = make_db(&aside, args);
    std::fs::rename(fresh, db).unwrap();
}

#[test]
fn a_file_missing_at_start_is_explained_then_read_when_it_appears() {
    let dir = temp_dir("faults-missing");
    let db = dir.join("training.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hydra-dashboard"))
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split("http://").nth(1).unwrap().trim().to_string();

    let (status, body) = http(&addr, "GET", "/api/models");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("does not exist") && body.contains("--db"),
        "{body}"
    );
    let (status, page) = http(&addr, "GET", "/");
    assert_eq!(status, 200);
    assert!(page.contains("does not exist"), "the page explains");
    assert!(!db.exists(), "nothing created in its place");

    make_db(&dir, &[]);
    eventually(10, "the new file is read", || {
        let (status, body) = http(&addr, "GET", "/api/models");
        status == 200 && body.contains("500m")
    });
    let (_, page) = http(&addr, "GET", "/");
    assert!(
        page.contains("data-card=\"step\""),
        "the page shows the run"
    );

    let _ = child.kill();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let _ = child.wait();
    assert!(
        err.contains("warning") && err.contains("Serving anyway"),
        "one warning at start: {err}"
    );
}

#[test]
fn a_file_deleted_then_recreated_by_the_trainer_is_followed() {
    let dir = temp_dir("faults-replaced");
    let db = make_db(&dir, &[]);
    let s = Server::start(&db);
    assert_eq!(model_ids(&models(&s).1), vec!["500m"]);
    // Warm the run cache, so stale state would show.
    assert_eq!(s.get("/").0, 200);

    std::fs::remove_file(&db).unwrap();
    eventually(5, "the deletion is noticed", || {
        let (status, body) = models(&s);
        status == 503 && body["error"].as_str().unwrap().contains("does not exist")
    });

    replace_with(&db, &["--model", "7b", "--steps", "3000", "--runs", "1"]);
    eventually(5, "the new file is read", || {
        model_ids(&models(&s).1) == vec!["7b".to_string()]
    });
    let (status, page) = s.get("/");
    assert_eq!(status, 200);
    assert!(
        page.contains("7b") && !page.contains("500m_"),
        "nothing of the old file"
    );

    // Replaced in one rename, with no gap: followed too.
    replace_with(&db, &["--model", "13b", "--steps", "2000", "--runs", "1"]);
    eventually(5, "the swapped file is read", || {
        model_ids(&models(&s).1) == vec!["13b".to_string()]
    });
}

#[test]
fn a_truncated_or_foreign_file_is_named_and_a_repaired_one_read() {
    let dir = temp_dir("faults-corrupt");
    let db = make_db(&dir, &[]);
    let whole = std::fs::read(&db).unwrap();
    let s = Server::start(&db);
    assert_eq!(models(&s).0, 200);
    let run = newest_run(&db);

    // Cut in half where it lies, as a full disk or a bad copy leaves it.
    let f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.set_len(whole.len() as u64 / 2).unwrap();
    drop(f);
    eventually(5, "the damage is reported", || {
        let (status, body) = s.get(&format!("/api/metrics/{run}?max_points=100"));
        status == 503 && body.contains("corrupt or truncated")
    });
    let (status, page) = s.get(&format!("/run/{run}"));
    assert_eq!(status, 200);
    assert!(page.contains("corrupt or truncated"), "the page says so");

    std::fs::write(&db, b"this is a text file, not a database\n".repeat(200)).unwrap();
    eventually(5, "a foreign file is named", || {
        let (status, body) = models(&s);
        status == 503
            && body["error"]
                .as_str()
                .unwrap()
                .contains("not an SQLite database")
    });

    std::fs::write(&db, &whole).unwrap();
    eventually(5, "the repaired file is read", || {
        let (status, _) = s.get(&format!("/api/metrics/{run}?max_points=100"));
        status == 200
    });
}

#[test]
fn a_writer_holding_the_file_delays_reads_but_never_breaks_them() {
    let dir = temp_dir("faults-writer");
    let db = make_db(&dir, &[]);
    let s = Server::start(&db);
    assert_eq!(models(&s).0, 200);
    let hold = |mode: &str, secs: u32| {
        Command::new("python3")
            .args([
                "-c",
                &format!(
                    "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); \
                     c.execute('BEGIN {mode}'); \
                     c.execute(\"INSERT INTO models (model_id, name) VALUES ('held', 'x')\"); \
                     print('holding', flush=True); time.sleep({secs}); c.execute('ROLLBACK')"
                ),
            ])
            .arg(&db)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait_for_hold = |child: &mut std::process::Child| {
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "holding");
    };

    // A write transaction that has not started committing: reads go on, seeing the last
    // commit.
    let mut writer = hold("IMMEDIATE", 4);
    wait_for_hold(&mut writer);
    let (status, body) = models(&s);
    assert_eq!(status, 200);
    assert_eq!(
        model_ids(&body),
        vec!["500m"],
        "uncommitted rows are not shown"
    );
    assert!(
        writer.try_wait().unwrap().is_none(),
        "answered while the writer still held its transaction"
    );
    writer.wait().unwrap();

    // A writer holding the whole file past our patience: a clear "busy", then recovery.
    let mut writer = hold("EXCLUSIVE", 9);
    wait_for_hold(&mut writer);
    let (status, body) = s.get("/api/runs/500m");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("stayed busy"), "{body}");
    writer.wait().unwrap();
    assert_eq!(models(&s).0, 200);
}

#[test]
fn a_newer_schema_with_more_tables_and_columns_reads_the_same() {
    let dir = temp_dir("faults-newer");
    let db = make_db(&dir, &["--moe"]);
    let s = Server::start(&db);
    let run = newest_run(&db);
    let before = s.json(&format!("/api/metrics/{run}?limit=5")).1;
    sql(
        &db,
        "ALTER TABLE steps ADD COLUMN loss_z REAL DEFAULT 1.5;
         ALTER TABLE runs ADD COLUMN git_sha TEXT DEFAULT 'abc';
         CREATE TABLE checkpoints (step INTEGER PRIMARY KEY, path TEXT);
         INSERT INTO checkpoints VALUES (100, '/ckpt/100.pt');",
    );
    eventually(5, "the new schema is read", || {
        let (status, after) = s.json(&format!("/api/metrics/{run}?limit=5"));
        status == 200 && after == before
    });
    for path in [
        "/api/models".to_string(),
        "/api/runs/500m".to_string(),
        format!("/api/run/{run}"),
        format!("/api/routing/moe/{run}"),
        format!("/run/{run}"),
    ] {
        assert_eq!(s.get(&path).0, 200, "{path}");
    }
}
