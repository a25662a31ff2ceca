//! Sharing, against the real binary on loopback: snapshots kept in the dashboard's own
//! state directory that outlive the trainer's file, their PNG previews, and the CSV, SVG
//! and PNG exports.

mod common;
use common::*;
use serde_json::Value;

fn png_size_and_colours(bytes: &[u8]) -> ((u32, u32), usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).expect("a decodable frame");
    let step = info.color_type.samples();
    let colours: std::collections::HashSet<&[u8]> =
        pixels[..info.buffer_size()].chunks(step).collect();
    ((info.width, info.height), colours.len())
}

#[test]
fn a_shared_snapshot_outlives_the_trainers_file_and_previews_as_png() {
    let dir = temp_dir("share");
    let db = make_db(&dir, &["--nan", "--collapse", "--moe", "--layers", "24"]);
    let state = temp_dir("share-state");
    let s = Server::start_with(&db, &["--state-dir", state.to_str().unwrap()]);
    let before = snapshot(&dir);
    let run = newest_run(&db);

    let body = format!(
        r#"{{"run_id": "{run}", "start_step": 12000, "end_step": 16000, "log_scale": true}}"#
    );
    let created = send(&s.addr, "POST", "/api/snapshots", body.as_bytes());
    assert_eq!(created.status, 201, "{}", created.text());
    let link = created.json();
    let url = link["url"].as_str().unwrap().to_string();
    let id = link["id"].as_str().unwrap().to_string();
    assert_eq!(url, format!("/s/{id}"));
    assert!(created.head.contains(&format!("location: /s/{id}")));
    assert_eq!(
        snapshot(&dir),
        before,
        "the trainer's directory is untouched"
    );
    let kept: Vec<_> = std::fs::read_dir(state.join("snapshots"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1, "one snapshot file in the state directory");

    let page = send(&s.addr, "GET", &url, b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    for chart in ["loss", "lr", "grad", "gauges", "mod", "mor", "moe"] {
        assert!(
            html.contains(&format!("data-chart=\"{chart}\"")),
            "the {chart} chart is in the page"
        );
    }
    assert!(
        html.matches("<svg").count() >= 7,
        "every chart is inline SVG"
    );
    assert!(!html.contains("<script"), "a static page");
    assert!(html.contains("steps 12,000 – 16,000") || html.contains("12,000"));
    assert!(html.contains("Log scale."), "the scale it was shared with");
    assert!(html.contains(&format!(
        "<meta property=\"og:image\" content=\"http://{}/s/{id}.png\">",
        s.addr
    )));
    assert!(html.contains("property=\"og:description\" content=\"Model 500m"));
    assert!(page
        .head
        .contains("content-security-policy: default-src 'none'"));

    // The trainer's file goes away; the snapshot does not.
    std::fs::remove_file(&db).unwrap();
    let again = send(&s.addr, "GET", &url, b"");
    assert_eq!(again.status, 200);
    assert_eq!(
        again.text().matches("<svg").count(),
        html.matches("<svg").count()
    );

    let png = send(&s.addr, "GET", &format!("/s/{id}.png"), b"");
    assert_eq!(png.status, 200);
    assert!(png.head.contains("content-type: image/png"));
    let (size, colours) = png_size_and_colours(&png.body);
    assert_eq!(size, (1200, 630), "the Open Graph size");
    assert!(
        colours > 20,
        "a drawn chart, not a blank ({colours} colours)"
    );
}

#[test]
fn bad_share_requests_and_links_get_clear_answers() {
    let dir = temp_dir("share-bad");
    let db = make_db(&dir, &[]);
    let state = temp_dir("share-bad-state");
    let s = Server::start_with(&db, &["--state-dir", state.to_str().unwrap()]);

    for (body, status, mentions) in [
        (&b"{not json"[..], 400, "body"),
        (br#"{"run_id": "nope"}"#, 404, "nope"),
        (br#"{"start_step": 10, "end_step": 5}"#, 400, "below"),
        (br#"{"start_step": "ten"}"#, 400, "body"),
        (br#"{"surprise": 1}"#, 400, "surprise"),
    ] {
        let r = send(&s.addr, "POST", "/api/snapshots", body);
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(body));
        assert!(r.text().contains(mentions), "{} names {mentions}", r.text());
        let _: Value = r.json();
    }
    let big = vec![b' '; 64 * 1024];
    assert_eq!(send(&s.addr, "POST", "/api/snapshots", &big).status, 413);
    assert_eq!(send(&s.addr, "GET", "/api/snapshots", b"").status, 405);

    for path in [
        "/s/0123456789abcdef0123456789abcdef",
        "/s/0123456789abcdef0123456789abcdef.png",
        "/s/short",
        "/s/..%2F..%2Fetc%2Fpasswd",
        "/s/%00",
        "/s/ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ",
    ] {
        let r = send(&s.addr, "GET", path, b"");
        assert_eq!(r.status, 404, "{path}");
        assert!(r.text().contains("Snapshot unavailable"), "{path}");
    }
    assert!(
        !state.join("snapshots").exists(),
        "nothing is written until a snapshot is taken"
    );

    // An empty request shares the newest run.
    let r = send(&s.addr, "POST", "/api/snapshots", b"");
    assert_eq!(r.status, 201, "{}", r.text());
}

#[test]
fn a_state_directory_that_cannot_be_written_is_named() {
    let dir = temp_dir("share-ro");
    let db = make_db(&dir, &[]);
    // A file where the directory should be: nothing can be made inside it.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let s = Server::start_with(&db, &["--state-dir", blocker.to_str().unwrap()]);
    let r = send(&s.addr, "POST", "/api/snapshots", b"{}");
    assert_eq!(r.status, 503);
    assert!(r.text().contains("--state-dir"), "{}", r.text());
}

#[test]
fn csv_exports_hold_exactly_the_rows_of_the_range() {
    let dir = temp_dir("export");
    let db = make_db(&dir, &["--nan", "--moe"]);
    let s = Server::start(&db);
    let run = newest_run(&db);
    let count = |sql: &str| query(&db, sql).parse::<usize>().unwrap();

    let r = send(
        &s.addr,
        "GET",
        &format!(
            "/api/export/{run}/steps.csv?start_step=11000&end_step=13995&metrics=loss_total,lr"
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.head.contains("content-type: text/csv"));
    assert!(r.head.contains("content-disposition: attachment"));
    let text = r.text();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,timestamp,loss_total,lr"));
    let rows: Vec<&str> = lines.collect();
    let expected = count(&format!(
        "SELECT COUNT(*) FROM steps WHERE run_id = '{run}' AND step BETWEEN 11000 AND 13995"
    ));
    assert_eq!(rows.len(), expected, "every logged step of the range, once");
    assert!(rows[0].starts_with("11000,"));
    assert!(rows.last().unwrap().starts_with("13990,"));
    assert!(rows.iter().all(|r| r.split(',').count() == 4));

    // The whole run at full resolution, NaN and Inf as numpy writes them.
    let all = send(&s.addr, "GET", &format!("/api/export/{run}/steps.csv"), b"").text();
    let rows = all.lines().count() - 1;
    assert_eq!(
        rows,
        count(&format!(
            "SELECT COUNT(*) FROM steps WHERE run_id = '{run}'"
        ))
    );
    assert!(
        all.contains(",NaN,") || all.contains(",inf,"),
        "non-finite losses are marked"
    );
    assert_eq!(all.lines().next().unwrap().split(',').count(), 15);

    let moe = send(
        &s.addr,
        "GET",
        &format!("/api/export/{run}/moe.csv?start_step=12000&end_step=14000"),
        b"",
    )
    .text();
    assert_eq!(
        moe.lines().count() - 1,
        count(&format!(
            "SELECT COUNT(*) FROM routing_moe WHERE run_id = '{run}' AND step BETWEEN 12000 AND 14000"
        ))
    );
    let mor = send(&s.addr, "GET", &format!("/api/export/{run}/mor.csv"), b"").text();
    assert_eq!(
        mor.lines().count() - 1,
        count(&format!(
            "SELECT COUNT(*) FROM routing_mor WHERE run_id = '{run}'"
        ))
    );
    assert!(mor.starts_with("step,layer,avg_depth,expected_depth,router_probs_mean,status\n"));

    for (path, status) in [
        (format!("/api/export/{run}/nope.csv"), 400),
        (format!("/api/export/{run}/steps.csv?metrics=bogus"), 400),
        (
            format!("/api/export/{run}/steps.csv?start_step=9&end_step=2"),
            400,
        ),
        (format!("/api/export/{run}/steps.csv?start_step=x"), 400),
        ("/api/export/no-such-run/steps.csv".to_string(), 404),
        ("/api/export/no-such-run/mod.csv".to_string(), 404),
        (format!("/api/export/{run}/loss.png?width=100000"), 400),
        (format!("/api/export/{run}/secrets.svg"), 400),
    ] {
        let r = send(&s.addr, "GET", &path, b"");
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let _: Value = r.json();
    }
}

#[test]
fn charts_export_as_svg_and_png_of_the_asked_size() {
    let dir = temp_dir("export-img");
    let db = make_db(&dir, &["--collapse"]);
    let s = Server::start(&db);
    let run = newest_run(&db);
    let svg = send(
        &s.addr,
        "GET",
        &format!("/api/export/{run}/loss.svg?start_step=10000&end_step=12000&log=1"),
        b"",
    );
    assert_eq!(svg.status, 200);
    assert!(svg.head.contains("content-type: image/svg+xml"));
    let text = svg.text();
    assert!(text.starts_with("<svg") && text.contains("<polyline"));
    assert!(
        text.contains("\n10k\n") && text.contains("\n12k\n"),
        "the x axis spans the range"
    );
    assert!(!text.contains("\n14k\n"), "and not beyond it");

    for chart in ["loss", "lr", "grad", "gauges", "mod", "mor", "moe"] {
        let r = send(
            &s.addr,
            "GET",
            &format!("/api/export/{run}/{chart}.png?width=800&height=300"),
            b"",
        );
        assert_eq!(r.status, 200, "{chart}");
        let (size, colours) = png_size_and_colours(&r.body);
        assert_eq!(size, (800, 300), "{chart}");
        assert!(colours > 5, "{chart} is drawn ({colours} colours)");
    }
}

#[test]
fn a_shared_comparison_is_the_compare_page_frozen_as_it_was_seen() {
    let (dir, db) = two_models();
    let state = temp_dir("share-compare-state");
    let s = Server::start_with(&db, &["--state-dir", state.to_str().unwrap()]);
    let ids = run_ids(&s);
    assert!(ids.len() >= 3, "{ids:?}");
    let (a, b, c) = (&ids[0], &ids[1], ids.last().unwrap());
    let before = snapshot(&dir);

    let body = serde_json::json!({
        "runs": [a, b, c], "x": "step", "smoothing": 0.9, "start": 2000.0, "end": 20000.0,
        "hidden": [b], "log_scale": true,
    });
    let created = send(
        &s.addr,
        "POST",
        "/api/snapshots",
        body.to_string().as_bytes(),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();
    assert_eq!(snapshot(&dir), before, "the trainer's files are untouched");
    let kept: Value =
        serde_json::from_slice(&std::fs::read(state.join(format!("snapshots/{id}.json"))).unwrap())
            .unwrap();
    assert!(kept.get("compare").is_some() && kept.get("data").is_none());

    let page = send(&s.addr, "GET", &format!("/s/{id}"), b"");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(!html.contains("<script"), "a static page");
    for metric in ["loss_total", "lr", "grad_norm", "tokens_per_sec", "vram_gb"] {
        assert!(
            html.contains(&format!("data-panel=\"{metric}\"")),
            "the {metric} chart is in the page"
        );
    }
    assert!(
        html.matches("<svg").count() >= 5,
        "every chart is inline SVG"
    );
    for run in [a, b, c] {
        assert!(
            html.contains(&format!("data-run=\"{run}\"")),
            "{run} is in the legend"
        );
    }
    // The run switched off stays off; the others are on.
    let legend_of = |run: &str| {
        let at = html.find(&format!("data-run=\"{run}\"")).unwrap();
        let open = html[..at].rfind("<button").unwrap();
        html[open..at].to_string()
    };
    assert!(
        legend_of(b).contains("aria-pressed=\"false\""),
        "{}",
        legend_of(b)
    );
    assert!(
        legend_of(a).contains("aria-pressed=\"true\""),
        "{}",
        legend_of(a)
    );
    assert!(html.contains("x axis: step. Smoothing 0.9. Zoomed to step 2000 – 20000."));
    assert!(html.contains("Log scale."));
    assert!(html.contains("keys differ") || html.contains("1 key differs"));
    assert!(html.contains("property=\"og:description\" content=\"3 runs compared: "));
    // The zoom: the step axis ends by 20k, not at the runs' 30k.
    assert!(html.contains("20k") && !html.contains(">30k<"));

    // The trainer's file goes away; the snapshot does not.
    std::fs::remove_file(&db).unwrap();
    let again = send(&s.addr, "GET", &format!("/s/{id}"), b"");
    assert_eq!(again.status, 200);
    assert_eq!(
        again.text().matches("<svg").count(),
        html.matches("<svg").count()
    );
    let png = send(&s.addr, "GET", &format!("/s/{id}.png"), b"");
    assert_eq!(png.status, 200);
    let (size, colours) = png_size_and_colours(&png.body);
    assert_eq!(size, (1200, 630));
    assert!(
        colours > 20,
        "a drawn chart, not a blank ({colours} colours)"
    );
}

#[test]
fn a_comparison_share_names_what_is_wrong_with_it() {
    let (_dir, db) = two_models();
    let state = temp_dir("share-compare-bad-state");
    let s = Server::start_with(&db, &["--state-dir", state.to_str().unwrap()]);
    let ids = run_ids(&s);
    let (a, b) = (&ids[0], &ids[1]);
    for (body, mentions) in [
        (serde_json::json!({"runs": [a, a]}), "listed twice"),
        (
            serde_json::json!({"runs": [a, "no-such-run"]}),
            "no-such-run",
        ),
        (serde_json::json!({"runs": [a, b], "run_id": a}), "run_id"),
        (
            serde_json::json!({"runs": [a, b], "start_step": 5}),
            "start_step",
        ),
        (
            serde_json::json!({"runs": [a, b], "smoothing": 1.5}),
            "smoothing",
        ),
        (
            serde_json::json!({"runs": [a, b], "hidden": ["zzz"]}),
            "zzz",
        ),
        (
            serde_json::json!({"runs": [a, b], "start": 9.0, "end": 1.0}),
            "below",
        ),
        (serde_json::json!({"x": "tokens"}), "only a comparison"),
        (serde_json::json!({"runs": [a, b], "x": "epochs"}), "body"),
    ] {
        let r = send(
            &s.addr,
            "POST",
            "/api/snapshots",
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert!(
            r.text().contains(mentions),
            "{body}: {} names {mentions}",
            r.text()
        );
    }
    assert!(!state.join("snapshots").exists(), "nothing was kept");
    // A run's snapshot is kept as it always was: under `data`.
    let r = send(&s.addr, "POST", "/api/snapshots", b"{}");
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let kept: Value =
        serde_json::from_slice(&std::fs::read(state.join(format!("snapshots/{id}.json"))).unwrap())
            .unwrap();
    assert!(kept.get("data").is_some() && kept.get("compare").is_none());
    assert_eq!(send(&s.addr, "GET", &format!("/s/{id}"), b"").status, 200);
}
