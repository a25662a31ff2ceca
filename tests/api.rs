//! The REST API and the SSR page, against the real binary on loopback.

mod common;
use common::*;
use serde_json::Value;

const ODD_RUN: &str = "odd/run ?ü #2";
const ODD_RUN_PATH: &str = "odd%2Frun%20%3F%C3%BC%20%232";

/// A real-format database with the awkward cases: NaN and Inf losses, MoE, a run id that
/// needs percent-encoding, a run without steps, a model without runs, broken config JSON.
fn odd_db() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir("api");
    let db = make_db(&dir, &["--nan", "--moe", "--collapse"]);
    sql(
        &db,
        &format!(
            "UPDATE steps SET run_id = '{ODD_RUN}' WHERE run_id = (SELECT run_id FROM runs WHERE start_step = 10000);
             UPDATE routing_mod SET run_id = '{ODD_RUN}' WHERE step >= 10000;
             UPDATE routing_mor SET run_id = '{ODD_RUN}' WHERE step >= 10000;
             UPDATE routing_moe SET run_id = '{ODD_RUN}' WHERE step >= 10000;
             UPDATE runs SET run_id = '{ODD_RUN}' WHERE start_step = 10000;
             UPDATE runs SET config_json = '{{broken' WHERE start_step = 0;
             INSERT INTO runs (run_id, model_id, start_step, end_step, start_time) VALUES ('empty run', '500m', 20000, 0, '2026-01-10T00:00:00');
             INSERT INTO models (model_id, name) VALUES ('lonely', 'no runs yet');"
        ),
    );
    (dir, db)
}

fn error_of(v: &Value) -> &str {
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {v}"))
}

#[test]
fn every_endpoint_answers_with_the_seed_shapes() {
    let (dir, db) = odd_db();
    let before = snapshot(&dir);
    let s = Server::start(&db);

    let (status, models) = s.json("/api/models");
    assert_eq!(status, 200);
    let ids: Vec<&str> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    // Newest first, as the original API (issue 13: its UI opens `models[0]`).
    assert_eq!(ids, vec!["lonely", "500m"]);
    assert_eq!(models[1]["params_millions"], 512.3);

    let (status, runs) = s.json("/api/runs/500m");
    assert_eq!(status, 200);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1]["run_id"], ODD_RUN, "oldest first");
    let first = runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(s.json("/api/runs/lonely"), (200, Value::Array(vec![])));

    let (status, stats) = s.json("/api/stats/500m");
    assert_eq!(status, 200);
    for key in [
        "model_id",
        "step_count",
        "min_step",
        "max_step",
        "best_loss",
        "avg_loss",
        "run_count",
    ] {
        assert!(stats.get(key).is_some(), "stats lacks {key}");
    }
    assert_eq!(stats["run_count"], 3);
    assert_eq!(stats["max_step"], 19_990);

    let (status, page) = s.json(&format!("/api/metrics/{first}?limit=5"));
    assert_eq!(status, 200);
    assert_eq!(page["count"], 5);
    assert_eq!(page["max_step"], 9_990);
    assert_eq!(page["next_start_step"], 41, "the last step of the page + 1");
    assert_eq!(page["run_id"], first.as_str());
    assert_eq!(page["model_id"], "500m");
    let row = &page["steps"][0];
    for key in [
        "step",
        "run_id",
        "model_id",
        "timestamp",
        "loss_total",
        "loss_ce",
        "lr",
        "grad_norm",
        "grad_norm_pre_clip",
        "ema_short",
        "ema_medium",
        "ema_long",
        "tokens_per_sec",
        "vram_gb",
        "batch_size",
        "seq_len",
    ] {
        assert!(row.get(key).is_some(), "step row lacks {key}");
    }

    let (_, page) = s.json(&format!("/api/metrics/{first}?start_step=6660&limit=2"));
    assert!(page["steps"][0]["loss_total"].is_null());
    assert_eq!(page["steps"][0]["nonfinite"]["loss_total"], "nan");
    assert_eq!(page["steps"][1]["nonfinite"]["loss_total"], "inf");

    let (status, page) = s.json(&format!("/api/metrics/{ODD_RUN_PATH}?limit=10000"));
    assert_eq!(status, 200);
    assert_eq!(page["count"], 1001);
    assert_eq!(page["run_id"], ODD_RUN);
    assert!(page["next_start_step"].is_null());

    let (status, page) = s.json("/api/metrics/empty%20run");
    assert_eq!(status, 200);
    assert_eq!(page["count"], 0);
    assert!(page["max_step"].is_null());

    // `limit` counts whole steps, as the original (issue 13): two steps of eight layers.
    let (status, r) = s.json(&format!("/api/routing/mod/{first}?limit=2"));
    assert_eq!(status, 200);
    assert_eq!(r["data"].as_array().unwrap().len(), 16);
    assert_eq!(r["data"][15]["layer"], 7);
    let third = r["next_start_step"].as_i64().unwrap();
    assert!(third > r["data"][15]["step"].as_i64().unwrap());
    let (_, r) = s.json(&format!(
        "/api/routing/mod/{first}?limit=1&start_step={third}"
    ));
    assert_eq!(r["data"][0]["step"], third);
    assert_eq!(r["data"].as_array().unwrap().len(), 8);
    assert_eq!(
        s.json(&format!("/api/routing/mod/{first}?limit=5001")).0,
        400
    );
    let (_, r) = s.json(&format!(
        "/api/routing/mor/{ODD_RUN_PATH}?start_step=15000&limit=8"
    ));
    assert_eq!(r["data"][0]["status"], "collapsed");
    let (_, r) = s.json(&format!("/api/routing/moe/{first}"));
    assert_eq!(r["data"].as_array().unwrap().len(), 200);

    let (status, run) = s.json(&format!("/api/run/{ODD_RUN_PATH}"));
    assert_eq!(status, 200);
    assert_eq!(run["config"]["max_steps"], 20_000);
    assert!(run["config_json"].is_string());
    let (status, run) = s.json(&format!("/api/run/{first}"));
    assert_eq!(status, 200);
    assert!(run["config"].is_null());
    assert!(run["config_error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));

    let (status, m) = s.json("/api/milestones/500m?interval=5000");
    assert_eq!(status, 200);
    // Buckets 0, 5k, 10k, 15k of steps 0..19,990, each with its own best (issue 13).
    assert_eq!(m["milestones"].as_object().unwrap().len(), 4);
    assert!(m["milestones"]["0"].is_f64() && m["milestones"]["10000"].is_f64());

    drop(s);
    assert_eq!(
        snapshot(&dir),
        before,
        "the database and its directory are unchanged"
    );
}

#[test]
fn client_mistakes_are_4xx_json_naming_what_is_wrong() {
    let (_dir, db) = odd_db();
    let s = Server::start(&db);
    let cases: &[(&str, u16, &str)] = &[
        ("/api/runs/nope", 404, "no model \"nope\""),
        ("/api/stats/nope", 404, "no model"),
        ("/api/milestones/nope", 404, "no model"),
        ("/api/metrics/nope", 404, "no run \"nope\""),
        ("/api/run/nope", 404, "no run"),
        ("/api/routing/mod/nope", 404, "no run"),
        ("/api/routing/xyz/nope", 404, "mod, mor and moe"),
        ("/api/nope", 404, "docs/api.md"),
        ("/api/", 404, "docs/api.md"),
        ("/api/metrics/empty%20run?limit=0", 400, "limit"),
        (
            "/api/metrics/empty%20run?limit=10001",
            400,
            "between 1 and 10000",
        ),
        (
            "/api/metrics/empty%20run?limit=abc",
            400,
            "must be an integer",
        ),
        ("/api/metrics/empty%20run?start_step=1.5", 400, "start_step"),
        (
            "/api/metrics/empty%20run?start_step=99999999999999999999",
            400,
            "start_step",
        ),
        ("/api/metrics/empty%20run?start_step=%00", 400, "start_step"),
        ("/api/routing/moe/empty%20run?limit=-1", 400, "limit"),
        ("/api/milestones/500m?interval=0", 400, "interval"),
        ("/api/milestones/500m?interval=ten", 400, "interval"),
        ("/api/metrics/%FF%FE", 400, "path"),
        ("/api/runs/'%20OR%201=1--", 404, "no model"),
    ];
    for (path, want, says) in cases {
        let (status, body) = s.json(path);
        assert_eq!(status, *want, "{path}: {body}");
        assert!(error_of(&body).contains(says), "{path}: {body}");
        if *want == 400 {
            assert!(
                body["parameter"].is_string(),
                "{path}: names the parameter: {body}"
            );
        }
    }
    // Refused as the original refuses them (issue 13): a negative start, an empty limit.
    for path in [
        "/api/metrics/empty%20run?start_step=-5",
        "/api/routing/mod/empty%20run?start_step=-1",
        "/api/metrics/empty%20run?limit=",
    ] {
        let (status, body) = s.json(path);
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["parameter"].is_string(), "{path}: {body}");
    }
}

#[test]
fn the_page_is_server_rendered_with_real_data() {
    let (_dir, db) = odd_db();
    let s = Server::start(&db);
    let (status, html) = s.get("/");
    assert_eq!(status, 200);
    // `/` shows the newest run: here the run without steps, with its empty state.
    assert!(html.contains("empty run"), "{html:.500}");
    assert!(html.contains("This run has logged no steps yet"));

    let (status, html) = s.get(&format!("/run/{ODD_RUN_PATH}"));
    assert_eq!(status, 200);
    assert!(html.contains(ODD_RUN), "the odd run id is shown as written");
    assert!(html.contains("19,990"), "current step card");
    assert!(html.contains("of 20,000"), "max_steps from config");
    assert!(
        html.contains("mod_capacity"),
        "every config key in the sidebar"
    );
    assert!(html.contains("journal"), "database facts in the sidebar");

    let (status, html) = s.get("/run/nope");
    assert!(status < 500);
    assert!(
        html.contains("no run \"nope\"") || html.contains("no run &quot;nope&quot;"),
        "{html:.2000}"
    );

    let (status, html) = s.get("/?model=lonely");
    assert_eq!(status, 200);
    assert!(html.contains("has no runs yet"));

    for path in [
        "/pkg/../../Cargo.toml",
        "/pkg/..%2F..%2FCargo.toml",
        "/.git/config",
        "/etc/passwd",
    ] {
        assert_eq!(s.get(path).0, 404, "{path}");
    }
}

#[test]
fn extreme_steps_and_wrong_methods_are_answered_not_crashed_on() {
    let dir = temp_dir("api-extreme");
    let db = make_db(&dir, &["--steps", "2000", "--runs", "1"]);
    // A row at the very top of i64 (the review found `step + 1` overflowed there) and one
    // far away, which would make `interval=1` produce a billion milestones.
    sql(
        &db,
        "INSERT INTO steps (step, run_id, model_id, loss_total) SELECT 1000000000, run_id, model_id, 2.0 FROM runs;
         INSERT INTO steps (step, run_id, model_id, loss_total) SELECT 9223372036854775807, run_id, model_id, 2.0 FROM runs;
         UPDATE runs SET end_time = NULL, end_step = 0;",
    );
    let s = Server::start(&db);
    let (_, runs) = s.json("/api/runs/500m");
    let run = runs[0]["run_id"].as_str().unwrap().to_string();
    let (status, page) = s.json(&format!(
        "/api/metrics/{run}?start_step=9223372036854775807&limit=1"
    ));
    assert_eq!(status, 200);
    assert_eq!(page["steps"][0]["step"], i64::MAX);
    assert!(
        page["next_start_step"].is_null(),
        "nothing after the last step: {page}"
    );
    let (status, body) = s.json("/api/milestones/500m?interval=1000");
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("at most 100000"), "{body}");
    // Below 1,000 is refused as the original refuses it.
    let (status, body) = s.json("/api/milestones/500m?interval=1");
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("between 1000"), "{body}");
    assert_eq!(
        s.json("/api/milestones/500m?interval=1000000000000000000")
            .0,
        200
    );

    for method in ["POST", "PUT", "DELETE"] {
        let (status, body) = http(&s.addr, method, "/api/models");
        assert_eq!(status, 405, "{method}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(error_of(&body).contains("only reads"), "{body}");
    }
}

#[test]
fn max_points_keeps_every_extreme_divergence_and_the_latest_step() {
    let dir = temp_dir("api-m4");
    let db = make_db(
        &dir,
        &["--nan", "--steps", "20000", "--every", "1", "--runs", "1"],
    );
    let s = Server::start(&db);
    let (_, runs) = s.json("/api/runs/500m");
    let run = runs[0]["run_id"].as_str().unwrap().to_string();
    // Every raw row, for the truth.
    let mut raw: Vec<Value> = Vec::new();
    let mut next = Some(0);
    while let Some(start) = next {
        let (_, page) = s.json(&format!(
            "/api/metrics/{run}?start_step={start}&limit=10000"
        ));
        raw.extend(page["steps"].as_array().unwrap().iter().cloned());
        next = page["next_start_step"].as_i64();
    }
    // With --every 1 the fixture's NULL row at 10,001 is replaced by the real step 10,001.
    assert_eq!(raw.len(), 20_000);
    let tallest = raw
        .iter()
        .filter_map(|r| r["loss_total"].as_f64())
        .fold(f64::MIN, f64::max);

    let (status, page) = s.json(&format!(
        "/api/metrics/{run}?max_points=200&metrics=loss_total"
    ));
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["downsampled"], true);
    let rows = page["steps"].as_array().unwrap();
    assert!(rows.len() <= 5 * 200 + 1, "bounded: {}", rows.len());
    assert!(rows.len() > 200);
    let keys: std::collections::BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
        .collect();
    assert_eq!(
        keys,
        ["loss_total", "nonfinite", "step"].into_iter().collect(),
        "only what was asked"
    );
    let kept_tallest = rows
        .iter()
        .filter_map(|r| r["loss_total"].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(
        kept_tallest, tallest,
        "the tallest spike survives at full height"
    );
    assert_eq!(
        rows.last().unwrap()["step"],
        19_999,
        "the latest step is always there"
    );
    // NaN at 6,666 and Inf at 6,667 share a bucket: its first divergence is kept…
    let marks: Vec<(i64, &str)> = rows
        .iter()
        .filter_map(|r| Some((r["step"].as_i64()?, r["nonfinite"]["loss_total"].as_str()?)))
        .collect();
    assert_eq!(marks, vec![(6_666, "nan")]);
    // …and zooming in shows both.
    let (_, zoom) = s.json(&format!(
        "/api/metrics/{run}?max_points=500&start_step=6600&end_step=6700&metrics=loss_total"
    ));
    let zoomed: Vec<&str> = zoom["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["nonfinite"]["loss_total"].as_str())
        .collect();
    assert_eq!(zoomed, vec!["nan", "inf"]);

    // Without `metrics=`: every metric's extremes in whole rows, read in one pass over the
    // file (most metrics are not in the run cache) — a superset of the loss-only rows, and
    // every metric's highest and lowest value is in it.
    let (status, all) = s.json(&format!("/api/metrics/{run}?max_points=200"));
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["downsampled"], true);
    let all_rows = all["steps"].as_array().unwrap();
    assert!(all_rows.len() <= 13 * 4 * 200 + 1, "{}", all_rows.len());
    assert_eq!(all_rows.last().unwrap()["step"], 19_999);
    let steps_of = |rows: &[Value]| -> std::collections::BTreeSet<i64> {
        rows.iter().map(|r| r["step"].as_i64().unwrap()).collect()
    };
    assert!(steps_of(rows).is_subset(&steps_of(all_rows)));
    for metric in [
        "loss_total",
        "lr",
        "grad_norm_pre_clip",
        "tokens_per_sec",
        "vram_gb",
    ] {
        let extremes = |rows: &[Value]| {
            let v: Vec<f64> = rows.iter().filter_map(|r| r[metric].as_f64()).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        };
        assert_eq!(extremes(all_rows), extremes(&raw), "{metric}");
    }
    assert!(all_rows[0]["lr"].is_f64(), "whole rows");

    // A zoomed range below the budget comes back raw, whole rows.
    let (_, page) = s.json(&format!(
        "/api/metrics/{run}?max_points=1000&start_step=5000&end_step=5499"
    ));
    assert_eq!(page["downsampled"], false);
    assert_eq!(page["count"], 500);
    assert_eq!(page["steps"][0]["step"], 5000);
    assert!(
        page["steps"][0]["lr"].is_f64(),
        "every column without metrics="
    );

    for (query, name) in [
        ("max_points=0", "max_points"),
        ("max_points=10001", "max_points"),
        ("max_points=10&metrics=loss_total,bogus", "metrics"),
        ("max_points=10&start_step=500&end_step=100", "end_step"),
    ] {
        let (status, body) = s.json(&format!("/api/metrics/{run}?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["parameter"], name, "{query}: {body}");
    }
}

#[test]
fn every_response_carries_the_security_headers() {
    let dir = temp_dir("api-headers");
    let db = make_db(&dir, &["--steps", "500"]);
    let server = Server::start(&db);
    for path in [
        "/",
        "/api/models",
        "/api/nope",
        "/no/such/file.css",
        "/ws/nope",
    ] {
        let head = head_of(&server.addr, path);
        for header in [
            "x-content-type-options: nosniff",
            "x-frame-options: deny",
            "referrer-policy: no-referrer",
            "frame-ancestors 'none'",
        ] {
            assert!(head.contains(header), "{path} lacks {header}: {head}");
        }
        assert_eq!(
            head.matches("content-security-policy:").count(),
            1,
            "{path}"
        );
    }
}

/// GET `path` accepting gzip: the reply, which must say gzip, and its body decoded.
/// Issue 15: answers and pages compressed with gzip when the client accepts it, the same
/// JSON once decoded; a client that accepts nothing gets them as they are.
#[test]
fn answers_are_compressed_as_the_client_accepts() {
    let dir = temp_dir("api-compressed");
    let db = make_db(&dir, &["--steps", "5000"]);
    let server = Server::start(&db);
    let run = newest_run(&db);
    let path = format!("/api/metrics/{run}?max_points=2000");
    let plain = send(&server.addr, "GET", &path, b"");
    assert_eq!(plain.status, 200);
    assert!(!plain.head.contains("content-encoding"), "{}", plain.head);
    let (gzip, text) = gzipped(&server.addr, &path);
    assert_eq!(text, plain.text(), "the same answer");
    assert!(
        gzip.body.len() * 2 < plain.body.len(),
        "{} of {} bytes",
        gzip.body.len(),
        plain.body.len()
    );
    let page = send_raw(
        &server.addr,
        "GET",
        &format!("/run/{run}"),
        "Accept-Encoding: br, gzip\r\n",
        b"",
    );
    assert_eq!(page.status, 200);
    assert!(
        page.head.contains("content-encoding: gzip"),
        "{}",
        page.head
    );
    // A streamed export, every page of it, compressed: the stream once panicked when the
    // compression asked for more after its end.
    let csv = format!("/api/export/{run}/steps.csv?metrics=loss_total");
    let plain = send(&server.addr, "GET", &csv, b"");
    let (_, text) = gzipped(&server.addr, &csv);
    assert_eq!(text, plain.text(), "the whole file");
    assert!(text.lines().count() > 200, "{} rows", text.lines().count());
}

#[test]
fn a_page_runs_only_scripts_that_carry_its_nonce() {
    let dir = temp_dir("api-csp");
    let db = make_db(&dir, &["--steps", "500"]);
    let server = Server::start(&db);
    let reply = send(&server.addr, "GET", "/", b"");
    let policy = reply
        .head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .expect("a policy")
        .to_string();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .expect("a nonce in script-src");
    let script_src = policy
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe-inline"), "{policy}");
    let html = reply.text();
    let scripts = html.matches("<script").count();
    assert!(scripts >= 1);
    // Header lines were lower-cased; the page keeps the nonce's case.
    let tagged = html
        .to_lowercase()
        .matches(&format!("nonce=\"{nonce}\""))
        .count();
    assert_eq!(tagged, scripts, "every inline script carries the nonce");
    let again = send(&server.addr, "GET", "/", b"");
    assert!(!again.head.contains(nonce), "a fresh nonce per page");
}

#[test]
fn routing_series_downsample_per_layer_keeping_extremes() {
    let dir = temp_dir("api-routing-ds");
    let db = make_db(
        &dir,
        &[
            "--steps",
            "20000",
            "--every",
            "1",
            "--routing-every",
            "1",
            "--runs",
            "1",
            "--collapse",
            "--moe",
            "--layers",
            "4",
        ],
    );
    let s = Server::start(&db);
    let run = query(&db, "SELECT run_id FROM runs LIMIT 1");
    let (status, mor) = s.json(&format!("/api/routing/mor/{run}?max_points=50"));
    assert_eq!(status, 200, "{mor}");
    assert_eq!(mor["downsampled"], true);
    let layers = mor["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4);
    for l in layers {
        let points = l["avg_depth"].as_array().unwrap();
        assert!(points.len() <= 4 * 50 + 1, "bounded: {}", points.len());
        let layer = l["layer"].as_i64().unwrap();
        // The layer's true extremes survive.
        let (lo, hi): (f64, f64) = (
            query(
                &db,
                &format!("SELECT MIN(avg_depth) FROM routing_mor WHERE layer = {layer}"),
            )
            .parse()
            .unwrap(),
            query(
                &db,
                &format!("SELECT MAX(avg_depth) FROM routing_mor WHERE layer = {layer}"),
            )
            .parse()
            .unwrap(),
        );
        let values: Vec<f64> = points.iter().map(|p| p[1].as_f64().unwrap()).collect();
        let (min, max) = (
            values.iter().copied().fold(f64::MAX, f64::min),
            values.iter().copied().fold(f64::MIN, f64::max),
        );
        // serde_json parses floats to within an ULP (without `float_roundtrip`).
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
        assert!(
            near(min, lo) && near(max, hi),
            "layer {layer}: {min} {max} vs {lo} {hi}"
        );
        assert_eq!(points.last().unwrap()[0], 19_999, "the latest step");
    }
    assert!(!mor["collapses"].as_array().unwrap().is_empty());

    let (_, zoom) = s.json(&format!(
        "/api/routing/mor/{run}?max_points=5000&start_step=100&end_step=199"
    ));
    let first = &zoom["layers"][0]["avg_depth"];
    assert_eq!(
        first.as_array().unwrap().len(),
        100,
        "raw when the range holds fewer"
    );

    let (_, moe) = s.json(&format!("/api/routing/moe/{run}?max_points=20"));
    assert_eq!(moe["experts"].as_array().unwrap().len(), 4);
    let (_, m) = s.json(&format!("/api/routing/mod/{run}?max_points=20"));
    assert!(m["cells"].as_array().unwrap().len() <= 4 * 21);
    let (status, _) = s.json(&format!("/api/routing/mor/{run}?max_points=0"));
    assert_eq!(status, 400);
    let (status, _) = s.json(&format!(
        "/api/routing/mor/{run}?max_points=5&start_step=9&end_step=1"
    ));
    assert_eq!(status, 400);
}
