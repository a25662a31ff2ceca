//! Runs side by side: `GET /api/compare` and `GET /api/runs` against the real binary, on a
//! real-format database with two models.

mod common;
use common::*;
use serde_json::Value;

/// `(step, value)` of the finite values of `metric` in an `/api/metrics` answer.
fn finite_points(page: &Value, metric: &str) -> Vec<(i64, f64)> {
    page["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| Some((s["step"].as_i64()?, s[metric].as_f64()?)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

fn points(series: &Value, field: &str) -> Vec<(i64, f64)> {
    series[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {series}"))
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
        .collect()
}

/// Asks every run of `ids` compared over `range` and checks each series against the run's
/// own `/api/metrics` answer; the points shown.
fn each_run_as_alone(s: &Server, ids: &[String], range: &str, max_points: usize) -> usize {
    let list = ids.join(",");
    let (status, c) = s.json(&format!(
        "/api/compare?runs={list}&metrics=loss_total,lr,grad_norm&max_points={max_points}{range}"
    ));
    assert_eq!(status, 200, "{c}");
    let runs = c["runs"].as_array().unwrap();
    assert_eq!(runs.len(), ids.len());
    let mut shown = 0;
    for (run, id) in runs.iter().zip(ids) {
        assert_eq!(run["run_id"], id.as_str(), "in the order asked");
        if run["steps"].is_null() {
            // None of its steps in the range: no series, as it has none alone.
            assert!(run["series"].as_array().unwrap().is_empty());
            let (_, own) = s.json(&format!(
                "/api/metrics/{id}?max_points={max_points}&metrics=loss_total{range}"
            ));
            assert!(own["steps"].as_array().unwrap().is_empty(), "{own}");
            continue;
        }
        assert_eq!(run["series"].as_array().unwrap().len(), 3);
        for series in run["series"].as_array().unwrap() {
            let metric = series["metric"].as_str().unwrap();
            let (status, own) = s.json(&format!(
                "/api/metrics/{id}?max_points={max_points}&metrics={metric}{range}"
            ));
            assert_eq!(status, 200);
            assert!(!range.is_empty() || !points(series, "points").is_empty());
            shown += points(series, "points").len();
            assert_eq!(
                points(series, "points"),
                finite_points(&own, metric),
                "run {id} {metric} {range}"
            );
            assert_eq!(series["downsampled"], own["downsampled"]);
        }
    }
    shown
}

#[test]
fn a_long_run_held_on_disk_answers_as_its_own_metrics_request() {
    // 150k logged steps: past the 64k values a compared column keeps in memory, so most
    // of each column is read back from its spill file.
    let dir = temp_dir("compare-long");
    let db = make_db(&dir, &["--nan", "--steps", "150000", "--every", "1"]);
    let s = Server::start(&db);
    let ids = run_ids(&s);
    for (range, max_points) in [
        ("", 2000),
        ("&start_step=70000&end_step=71000", 2000),
        ("&start_step=1000&end_step=149000", 300),
    ] {
        let shown = each_run_as_alone(&s, &ids, range, max_points);
        assert!(shown > 300, "{shown} points in {range:?}");
    }
}

#[test]
fn each_runs_series_is_what_its_own_metrics_request_answers() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let ids = run_ids(&s);
    assert_eq!(ids.len(), 4, "{ids:?}");
    let list = ids.join(",");
    for (range, max_points) in [("", 200), ("&start_step=12000&end_step=12900", 50)] {
        let shown = each_run_as_alone(&s, &ids, range, max_points);
        assert!(shown > 100, "{shown} points in {range:?}");
    }
    // The NaN and Inf losses of the first model's runs are marked, not dropped.
    let (_, c) = s.json(&format!("/api/compare?runs={list}"));
    let marked: usize = c["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["series"][0]["nonfinite"].as_array().unwrap().len())
        .sum();
    assert!(marked >= 2, "{marked} non-finite markers");
}

#[test]
fn the_smoothed_line_is_the_same_at_every_zoom_and_differs_from_the_data() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let id = run_ids(&s)[2].clone();
    let ask = |range: &str| {
        let (status, c) = s.json(&format!(
            "/api/compare?runs={id}&max_points=100&smoothing=0.9{range}"
        ));
        assert_eq!(status, 200, "{c}");
        (
            points(&c["runs"][0]["series"][0], "smoothed"),
            points(&c["runs"][0]["series"][0], "points"),
        )
    };
    let (wide, raw) = ask("");
    let (zoom, zoom_raw) = ask("&start_step=5000&end_step=5200");
    assert_eq!(zoom.len(), zoom_raw.len(), "a short range has every step");
    let wide: std::collections::HashMap<i64, f64> = wide.into_iter().collect();
    let shared: Vec<_> = zoom
        .iter()
        .filter(|(st, _)| wide.contains_key(st))
        .collect();
    assert!(!shared.is_empty());
    for (step, v) in shared {
        assert_eq!(wide[step], *v, "step {step}");
    }
    let moved = raw
        .iter()
        .filter(|(st, v)| wide.get(st).is_some_and(|w| w != v))
        .count();
    assert!(moved > raw.len() / 2, "smoothing changed the line");
}

#[test]
fn a_bad_run_list_is_refused_with_the_problem_named() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let id = run_ids(&s)[0].clone();
    let many: Vec<String> = (0..21).map(|i| format!("r{i}")).collect();
    for (query, says) in [
        (format!("runs={id},nope"), "no run \\\"nope\\\""),
        (format!("runs={id},{id}"), "listed twice"),
        (format!("runs={}", many.join(",")), "at most 20"),
        ("runs=".to_string(), "name the runs"),
        (String::new(), "name the runs"),
        (format!("runs={id}&x=epochs"), "step, tokens or time"),
        (format!("runs={id}&smoothing=1.5"), "between 0 and 0.999"),
        (format!("runs={id}&smoothing=NaN"), "must be a number"),
        (format!("runs={id}&metrics=loss_totl"), "unknown metric"),
        (
            format!("runs={id}&metrics=loss_ce"),
            "loss_ce cannot be compared",
        ),
        (
            format!("runs={id}&start=9&end=3"),
            "ends (3) before it starts (9)",
        ),
        (format!("runs={id}&max_points=0"), "between 1 and"),
    ] {
        let (status, body) = s.get(&format!("/api/compare?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
}

#[test]
fn the_runs_list_has_every_run_of_every_model_with_the_tables_columns() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let (status, rows) = s.json("/api/runs");
    assert_eq!(status, 200);
    let rows = rows.as_array().unwrap();
    let models: Vec<&str> = rows
        .iter()
        .map(|r| r["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["500m", "500m", "626m", "626m"]);
    for row in rows {
        let id = row["run_id"].as_str().unwrap();
        let (_, newest) = s.json(&format!("/api/metrics/{id}?limit=1&start_step=0"));
        assert_eq!(row["step"], newest["max_step"], "{row}");
        assert!(row["best_loss"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["started"].is_string() && row["duration"].as_f64().unwrap() > 0.0);
        assert!(row["tokens"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["config"].as_array().unwrap().len() > 3, "{row}");
        assert!(row["state"].is_string(), "{row}");
    }
}

#[test]
fn an_axis_of_time_or_tokens_picks_each_runs_own_steps() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let ids = run_ids(&s);
    let list = format!("{},{}", ids[0], ids[2]);
    let (status, c) = s.json(&format!(
        "/api/compare?runs={list}&x=time&start=0&end=600&max_points=50"
    ));
    assert_eq!(status, 200, "{c}");
    for run in c["runs"].as_array().unwrap() {
        let first = run["first_step"].as_i64().unwrap();
        let (a, b) = (
            run["steps"][0].as_i64().unwrap(),
            run["steps"][1].as_i64().unwrap(),
        );
        assert!(a <= first + 1 && b > a, "{}: {a}..{b}", run["run_id"]);
        let shown = points(&run["series"][0], "points");
        assert!(shown.iter().all(|(st, _)| (a..=b).contains(st)));
        assert!(run["clock"].as_array().unwrap().len() > 10);
    }
    // A range the runs never reach: no steps, no points, not their last one.
    let (_, c) = s.json(&format!(
        "/api/compare?runs={list}&x=time&start=1e9&end=2e9&max_points=50"
    ));
    for run in c["runs"].as_array().unwrap() {
        assert!(run["steps"].is_null(), "{}", run["steps"]);
        assert!(run["series"].as_array().unwrap().is_empty());
    }
    // By step, `steps` is the run's own first and last step in the range.
    let (_, c) = s.json(&format!(
        "/api/compare?runs={list}&start_step=0&end_step=1000000"
    ));
    for run in c["runs"].as_array().unwrap() {
        assert_eq!(run["steps"][0], run["first_step"]);
        assert_eq!(run["steps"][1], run["max_step"]);
    }
}

#[test]
fn a_comparison_is_sent_gzipped_to_a_browser_and_the_same_again_until_the_data_moves() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let list = run_ids(&s).join(",");
    let path = format!("/api/compare?runs={list}&smoothing=0.6");
    let plain = s.get(&path).1;
    let (first, text) = gzipped(&s.addr, &path);
    assert_eq!(text, plain, "the same JSON");
    assert!(
        first.body.len() * 2 < plain.len(),
        "{} of {}",
        first.body.len(),
        plain.len()
    );
    let (again, _) = gzipped(&s.addr, &path);
    assert_eq!(again.body, first.body, "kept, not made again");
}

#[test]
fn the_compared_series_download_as_csv_a_column_per_run() {
    let (_dir, db) = two_models();
    let s = Server::start(&db);
    let ids = run_ids(&s);
    let list = format!("{},{}", ids[0], ids[2]);
    let reply = send(
        &s.addr,
        "GET",
        &format!("/api/compare.csv?runs={list}&metric=lr&max_points=100"),
        b"",
    );
    assert_eq!(reply.status, 200);
    assert!(reply.head.contains("text/csv"), "{}", reply.head);
    assert!(reply.head.contains("compare-lr.csv"), "{}", reply.head);
    let text = reply.text();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(format!("step,{},{}", ids[0], ids[2]).as_str())
    );
    // Every value is the run's own, at its step, as its series answers it.
    let (_, c) = s.json(&format!(
        "/api/compare?runs={list}&metrics=lr&max_points=100"
    ));
    let expected: usize = c["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| points(&r["series"][0], "points").len())
        .sum();
    let cells: usize = lines
        .map(|l| l.split(',').skip(1).filter(|v| !v.is_empty()).count())
        .sum();
    assert_eq!(cells, expected);
    let (status, _) = s.get(&format!("/api/compare.csv?runs={list}&metric=nope"));
    assert_eq!(status, 400);
}

/// The kept runs' headers in a state directory, by name.
fn kept_headers(state: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut held: Vec<_> = std::fs::read_dir(state.join("compared"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    held.retain(|p| p.extension().is_some_and(|e| e == "held"));
    held.sort();
    held
}

/// Marks every kept header as used long ago: a header a server takes up is used again.
/// Returns each one's inode: a run kept again is a new file, one taken up the same.
fn age(headers: &[std::path::PathBuf]) -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30);
    headers
        .iter()
        .map(|h| {
            let f = std::fs::File::options().write(true).open(h).unwrap();
            f.set_modified(long_ago).unwrap();
            f.metadata().unwrap().ino()
        })
        .collect()
}

/// Whether every header was taken up since [`age`] gave its inodes: used again, and
/// still the same file.
fn taken_up(headers: &[std::path::PathBuf], inodes: &[u64]) -> bool {
    use std::os::unix::fs::MetadataExt;
    headers
        .iter()
        .zip(inodes)
        .all(|(h, ino)| used_since_aged(h) && std::fs::metadata(h).is_ok_and(|m| m.ino() == *ino))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("not within 30 s: {what}");
}

fn used_since_aged(header: &std::path::Path) -> bool {
    let modified = std::fs::metadata(header).unwrap().modified().unwrap();
    modified.elapsed().unwrap() < std::time::Duration::from_secs(3600)
}

/// The compare page's metrics, as the alerts' replay keeps them: a server's two ways of
/// keeping a run keep the same, so neither replaces the other's.
const COMPARED: &str = "loss_total,lr,grad_norm,tokens_per_sec,vram_gb";

#[test]
fn a_long_run_compared_once_is_taken_up_by_the_next_server_while_its_source_agrees() {
    // Two runs of 75k steps: long enough to be kept.
    let dir = temp_dir("compare-kept");
    let db = make_db(&dir, &["--nan", "--steps", "150000", "--every", "1"]);
    let state = dir.join("state");
    let flags = ["--state-dir", state.to_str().unwrap()];
    let ask = |s: &Server| {
        let list = run_ids(s).join(",");
        let (status, c) = s.json(&format!(
            "/api/compare?runs={list}&metrics={COMPARED}&max_points=500&smoothing=0.9"
        ));
        assert_eq!(status, 200, "{c}");
        c
    };
    let s = Server::start_with(&db, &flags);
    let first = ask(&s);
    // Kept after the answer, off its path.
    wait_until("both runs kept", || kept_headers(&state).len() == 2);
    drop(s);
    let headers = kept_headers(&state);
    let inodes = age(&headers);

    // The next server takes both up and answers alike, zoomed in too.
    let s = Server::start_with(&db, &flags);
    assert_eq!(ask(&s), first);
    assert!(taken_up(&headers, &inodes), "taken up");
    let ids = run_ids(&s);
    let shown = each_run_as_alone(&s, &ids, "&start_step=70000&end_step=71000", 2000);
    assert!(shown > 500, "{shown}");
    // A metric not kept: read from the source, and kept again with it.
    let (status, _) = s.json(&format!(
        "/api/compare?runs={}&metrics=grad_norm_pre_clip",
        ids.join(",")
    ));
    assert_eq!(status, 200);
    wait_until("kept with the gradient norm before clipping", || {
        std::fs::read_dir(state.join("compared"))
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(".grad_norm_pre_clip.values")
            })
            .count()
            == 2
    });
    drop(s);

    // A step changed under the same run record: the sample sees it, the run is read again.
    let run = ids[0].clone();
    sql(
        &db,
        &format!(
            "UPDATE steps SET loss_total = 123.0 WHERE run_id = '{run}' AND step = \
             (SELECT min(step) FROM steps WHERE run_id = '{run}');"
        ),
    );
    let inodes = age(&headers);
    let s = Server::start_with(&db, &flags);
    let changed = ask(&s);
    let points = &changed["runs"][0]["series"][0]["points"];
    assert_eq!(
        points[0][1].as_f64(),
        Some(123.0),
        "{:.200}",
        points.to_string()
    );
    assert_eq!(
        changed["runs"][1], first["runs"][1],
        "the other run is as it was"
    );
    // The changed run is kept anew (another file), the other taken up (the same).
    wait_until("the changed run kept again, the other taken up", || {
        use std::os::unix::fs::MetadataExt;
        headers.iter().zip(&inodes).all(|(h, ino)| {
            let changed = h
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{run}-"));
            let same = std::fs::metadata(h).is_ok_and(|m| m.ino() == *ino);
            used_since_aged(h) && same != changed
        })
    });
    drop(s);

    // A damaged header is read from the source again, and nobody notices.
    let kept = kept_headers(&state);
    let bytes = std::fs::read(&kept[0]).unwrap();
    std::fs::write(&kept[0], &bytes[..bytes.len() / 2]).unwrap();
    let s = Server::start_with(&db, &flags);
    assert_eq!(ask(&s), changed);
}

#[test]
fn the_alerts_replay_keeps_finished_runs_for_the_first_comparison() {
    let dir = temp_dir("compare-replay-kept");
    let db = make_db(&dir, &["--steps", "150000", "--every", "1"]);
    let state = dir.join("state");
    let s = Server::start_with(&db, &["--state-dir", state.to_str().unwrap()]);
    // Nothing compared yet: the alerts' replay read both runs' history, and kept them with
    // the compare page's five metrics.
    let vram_files = || {
        std::fs::read_dir(state.join("compared"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".vram_gb.values"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_until("both runs kept by the replay", || {
        kept_headers(&state).len() == 2 && vram_files() == 2
    });
    let headers = kept_headers(&state);
    let inodes = age(&headers);
    // The first comparison takes them up, and each series is the run's own.
    let ids = run_ids(&s);
    let shown = each_run_as_alone(&s, &ids, "", 2000);
    assert!(shown > 1000, "{shown}");
    assert!(taken_up(&headers, &inodes), "taken up");
}
