//! The store against real-format databases written by the independent fixture writer.

mod common;
use common::*;
use hydra_dashboard::model::{NonFinite, RoutingMod, RoutingMoe, RoutingMor, Run};
use hydra_dashboard::server::error::AppError;
use hydra_dashboard::server::store::Store;
use std::collections::BTreeSet;

async fn runs(store: &Store) -> Vec<Run> {
    store.runs("500m").await.unwrap()
}

/// Reads a run's steps page by page the way a client would, following `next_start_step`.
async fn all_steps(store: &Store, run_id: &str, limit: i64) -> Vec<i64> {
    let mut steps = Vec::new();
    let mut start = None;
    loop {
        let page = store.steps(run_id, start, limit).await.unwrap();
        assert_eq!(page.count, page.steps.len());
        assert!(page.count as i64 <= limit);
        steps.extend(page.steps.iter().map(|s| s.step));
        match page.next_start_step {
            Some(next) => start = Some(next),
            None => return steps,
        }
    }
}

#[tokio::test]
async fn paging_returns_every_step_of_a_run_once_in_order() {
    let dir = temp_dir("paging");
    let db = make_db(&dir, &[]);
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    assert_eq!(runs.len(), 2, "the fixture resumes once");
    assert_eq!(
        (runs[0].start_step, runs[1].start_step),
        (Some(0), Some(10_000))
    );

    let first = all_steps(&store, &runs[0].run_id, 333).await;
    assert_eq!(first, (0..10_000).step_by(10).collect::<Vec<i64>>());
    let second = all_steps(&store, &runs[1].run_id, 10_000).await;
    assert_eq!(second, (10_000..20_000).step_by(10).collect::<Vec<i64>>());

    let page = store.steps(&runs[0].run_id, Some(9_000), 5).await.unwrap();
    assert_eq!(
        page.max_step,
        Some(9_990),
        "max_step is the run's, not the page's"
    );
    assert_eq!(
        page.next_start_step,
        Some(9_041),
        "the last step of the page + 1"
    );
    assert_eq!(page.steps[0].run_id, runs[0].run_id);
}

#[tokio::test]
async fn nan_and_inf_losses_are_marked_and_never_reach_json_as_numbers() {
    let dir = temp_dir("nan");
    let db = make_db(&dir, &["--nan"]);
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    let page = store.steps(&runs[0].run_id, Some(6_660), 2).await.unwrap();
    let (nan, inf) = (&page.steps[0], &page.steps[1]);
    assert_eq!(nan.step, 6_660);
    assert_eq!(nan.loss_total, None, "SQLite stores NaN as NULL");
    assert_eq!(nan.nonfinite.get("loss_total"), Some(&NonFinite::Nan));
    assert_eq!(inf.loss_total, Some(f64::INFINITY));
    assert_eq!(inf.nonfinite.get("loss_total"), Some(&NonFinite::Inf));

    let json = serde_json::to_string(&page).unwrap();
    assert!(
        !json.contains("NaN") && !json.contains("Infinity"),
        "strict JSON only"
    );
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(value["steps"][1]["loss_total"].is_null());
    assert_eq!(value["steps"][1]["nonfinite"]["loss_total"], "inf");

    let summary = store.run_summary(&runs[0]).await.unwrap();
    assert_eq!(summary.nonfinite_losses, 2);
    assert!(summary.best_loss.unwrap().is_finite());

    // The all-NULL row the fixture writes in the second run reads as a step, not an error.
    let page = store.steps(&runs[1].run_id, Some(10_001), 1).await.unwrap();
    assert_eq!(page.steps[0].step, 10_001);
    assert_eq!(page.steps[0].timestamp, None);
}

#[tokio::test]
async fn an_old_file_has_absent_metrics_and_empty_series() {
    let dir = temp_dir("legacy");
    let db = make_db(&dir, &["--legacy"]);
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    let page = store.steps(&runs[0].run_id, None, 3).await.unwrap();
    assert_eq!(page.count, 3);
    assert_eq!(page.steps[0].tokens_per_sec, None);
    assert_eq!(page.steps[0].seq_len, None);
    assert!(page.steps[0].loss_total.is_some());
    let json = serde_json::to_value(&page.steps[0]).unwrap();
    assert!(
        json.get("tokens_per_sec").is_none(),
        "absent column, absent key"
    );

    let moe = store
        .routing::<RoutingMoe>(&runs[0].run_id, None, 100)
        .await
        .unwrap();
    assert!(moe.data.is_empty());
    let info = store.db_info().await.unwrap();
    assert!(
        info.missing.contains(&"table routing_moe".to_string()),
        "{:?}",
        info.missing
    );
    assert!(info.missing.contains(&"steps.vram_gb".to_string()));
    let summary = store.run_summary(&runs[0]).await.unwrap();
    assert_eq!(summary.tokens_estimate, None);
    assert_eq!(summary.step_count, 1000);
}

#[tokio::test]
async fn routing_pages_never_split_a_step_and_keep_every_layer() {
    let dir = temp_dir("routing");
    let db = make_db(&dir, &["--collapse", "--moe", "--layers", "24"]);
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    let mut seen = BTreeSet::new();
    let mut start = None;
    loop {
        // 100 is not a multiple of 24 layers: pages must end on whole steps.
        let page = store
            .routing::<RoutingMod>(&runs[1].run_id, start, 100)
            .await
            .unwrap();
        for r in &page.data {
            assert!(
                seen.insert((r.step, r.layer)),
                "duplicate {:?}",
                (r.step, r.layer)
            );
        }
        match page.next_start_step {
            Some(n) => start = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 200 * 24, "200 routing steps × 24 layers");

    let mor = store
        .routing::<RoutingMor>(&runs[1].run_id, Some(15_000), 24)
        .await
        .unwrap();
    assert_eq!(mor.data.len(), 24);
    let layer0 = mor.data.iter().find(|r| r.layer == 0).unwrap();
    assert_eq!(layer0.status.as_deref(), Some("collapsed"));
    assert!((layer0.avg_depth.unwrap() - 1.0).abs() < 0.05);

    let moe = store
        .routing::<RoutingMoe>(&runs[0].run_id, None, 10)
        .await
        .unwrap();
    assert_eq!(moe.data.len(), 10);
    let util: f64 = [
        moe.data[0].util_expert_0,
        moe.data[0].util_expert_1,
        moe.data[0].util_expert_2,
        moe.data[0].util_expert_3,
    ]
    .iter()
    .map(|u| u.unwrap())
    .sum();
    assert!((util - 100.0).abs() < 1e-6);
}

async fn read_everything(db: &std::path::Path) {
    let store = Store::open(db).await.unwrap();
    let runs = runs(&store).await;
    store
        .dashboard(None, None, &Default::default())
        .await
        .unwrap();
    store.model_stats("500m").await.unwrap();
    store.milestones("500m", 1000).await.unwrap();
    store
        .routing::<RoutingMod>(&runs[0].run_id, None, 1000)
        .await
        .unwrap();
    store.steps(&runs[1].run_id, None, 10_000).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn the_users_file_is_byte_identical_and_nothing_is_left_beside_it() {
    // The trainer's default: rollback journal. Not one byte or file changes.
    let dir = temp_dir("readonly");
    let db = make_db(&dir, &[]);
    let before = snapshot(&dir);
    read_everything(&db).await;
    assert_eq!(snapshot(&dir), before);
}

#[tokio::test]
async fn a_wal_file_is_byte_identical_and_only_sqlites_own_index_files_appear() {
    // In WAL mode every SQLite reader, read-only or not, needs the `-shm` index and opens
    // the `-wal`; with no writer attached it creates them (empty) and, being read-only,
    // cannot remove them. Deleting them ourselves could corrupt a trainer attaching at that
    // moment, so we leave them: the main file stays byte-identical, the WAL holds no frames.
    let dir = temp_dir("wal");
    let db = make_db(&dir, &["--wal"]);
    let before = snapshot(&dir);
    read_everything(&db).await;
    let after = snapshot(&dir);
    assert_eq!(after[0], before[0], "training.db itself is unchanged");
    let extra: Vec<_> = after[1..]
        .iter()
        .map(|(name, size, _)| (name.as_str(), *size))
        .collect();
    for (name, size) in &extra {
        assert!(
            (*name == "training.db-wal" && *size == 0) || *name == "training.db-shm",
            "unexpected file beside the database: {name} ({size} bytes)"
        );
    }
}

/// Whether this process has `path` open.
fn held_open(path: &std::path::Path) -> bool {
    let path = path.canonicalize().unwrap();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| p == path))
}

#[tokio::test]
async fn the_file_is_let_go_when_nobody_reads_and_opened_again_when_someone_does() {
    // In WAL mode the trainer's final checkpoint needs the last reader gone.
    let dir = temp_dir("idle");
    let db = make_db(&dir, &["--wal"]);
    let store = Store::open(&db).await.unwrap();
    let runs = store.models().await.unwrap();
    assert!(held_open(&db));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while held_open(&db) {
        assert!(
            std::time::Instant::now() < deadline,
            "still open after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(store.models().await.unwrap(), runs, "read again alike");
    assert!(held_open(&db));
    store.close().await;
}

#[tokio::test]
async fn what_is_not_a_hydra_database_is_named() {
    let dir = temp_dir("nothydra");
    let missing = Store::open(&dir.join("nope.db")).await.err().unwrap();
    assert!(matches!(missing, AppError::DbMissing { .. }));
    assert!(missing.to_string().contains("demo"), "{missing}");

    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, it is a note about one\n".repeat(200),
    )
    .unwrap();
    let e = Store::open(&text).await.err().unwrap();
    assert!(e.to_string().contains("not an SQLite database"), "{e}");

    let other = dir.join("other.db");
    sql(
        &other,
        "CREATE TABLE models (model_id TEXT); CREATE TABLE foo (x);",
    );
    let e = Store::open(&other).await.err().unwrap();
    let message = e.to_string();
    assert!(
        message.contains("no table `runs`") && message.contains("no table `steps`"),
        "{message}"
    );

    let e = Store::open(&dir).await.err().unwrap();
    assert!(e.to_string().contains("directory"), "{e}");
}

#[tokio::test]
async fn stats_milestones_and_the_dashboard_agree_with_the_file() {
    let dir = temp_dir("stats");
    let db = make_db(&dir, &["--nan"]);
    sql(
        &db,
        "UPDATE runs SET config_json = '{broken' WHERE start_step = 0;",
    );
    let store = Store::open(&db).await.unwrap();
    let stats = store.model_stats("500m").await.unwrap();
    assert_eq!(stats.step_count, 2001, "2000 logged steps and the NULL row");
    assert_eq!((stats.min_step, stats.max_step), (Some(0), Some(19_990)));
    assert_eq!(stats.run_count, 2);
    assert!(
        stats.avg_loss.unwrap().is_finite(),
        "NaN and Inf do not poison the mean"
    );
    assert!(stats.best_loss.unwrap() < stats.avg_loss.unwrap());

    // Issue 13, the original's meaning: each bucket of 5,000 steps (key 0 included) with
    // the best loss within it.
    let m = store.milestones("500m", 5_000).await.unwrap();
    let steps: Vec<i64> = m.milestones.keys().copied().collect();
    assert_eq!(steps, vec![0, 5_000, 10_000, 15_000]);
    assert!(
        m.milestones[&0] > stats.best_loss.unwrap(),
        "the first bucket's own best, not the best so far"
    );
    assert!(matches!(
        store.milestones("nope", 10).await,
        Err(AppError::NotFound { .. })
    ));

    let runs = runs(&store).await;
    let detail = store.run_detail(&runs[0].run_id).await.unwrap();
    assert!(detail.config.is_null());
    assert!(detail.config_error.unwrap().contains("not valid JSON"));
    let detail = store.run_detail(&runs[1].run_id).await.unwrap();
    assert_eq!(detail.config["max_steps"], 20_000);

    let d = store
        .dashboard(None, None, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        d.run.as_ref().unwrap().run_id,
        runs[1].run_id,
        "newest run by default"
    );
    let summary = d.summary.unwrap();
    assert_eq!(summary.last_step, Some(19_990));
    assert_eq!(summary.step_count, 1001);
    assert_eq!(d.recent_steps[0].step, 19_990, "newest first");
    assert_eq!(d.db.journal_mode, "delete");
    let d = store
        .dashboard(Some(&runs[0].run_id), None, &Default::default())
        .await
        .unwrap();
    assert_eq!(d.summary.unwrap().last_step, Some(9_990));
}

#[tokio::test]
async fn a_busy_file_is_waited_for_not_an_error() {
    let dir = temp_dir("busy");
    let db = make_db(&dir, &[]);
    let store = Store::open(&db).await.unwrap();
    // A writer holds an exclusive lock for a second, as a long trainer commit would.
    let mut writer = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]); c.execute('BEGIN EXCLUSIVE'); \
             print('locked', flush=True); time.sleep(1.0); c.commit(); c.close()",
        ])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(writer.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let models = store.models().await.expect("waited for the writer");
    assert_eq!(models.len(), 1);
    assert!(writer.wait().unwrap().success());
}

#[tokio::test]
async fn a_crashed_run_is_bounded_by_its_resume_and_is_not_live() {
    // The trainer died without writing end_time, and a resume started the next run.
    let dir = temp_dir("crashed");
    let db = make_db(&dir, &[]);
    sql(&db, "UPDATE runs SET end_time = NULL, end_step = 0 WHERE start_step = 0; UPDATE runs SET end_time = NULL, end_step = 0 WHERE start_step = 10000;");
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    let first = all_steps(&store, &runs[0].run_id, 400).await;
    assert_eq!(first.len(), 1000);
    assert_eq!(*first.last().unwrap(), 9_990);
    let page = store.steps(&runs[0].run_id, Some(9_990), 10).await.unwrap();
    assert_eq!(page.max_step, Some(9_990));
    let settings = Default::default();
    let crashed = store
        .dashboard(Some(&runs[0].run_id), None, &settings)
        .await
        .unwrap();
    assert!(!crashed.is_live(), "a later run resumed it");
    assert_eq!(
        crashed.run.unwrap().state,
        Some(hydra_dashboard::model::TrainingState::Stopped)
    );
    // Issue 13: without an end_time the newest run used to be "training" for ever; it
    // reached its max_steps, so it finished.
    let newest = store
        .dashboard(Some(&runs[1].run_id), None, &settings)
        .await
        .unwrap();
    assert!(!newest.is_live());
    assert_eq!(
        newest.run.unwrap().state,
        Some(hydra_dashboard::model::TrainingState::Finished)
    );
}

#[tokio::test]
async fn a_file_with_the_tables_but_not_the_columns_is_named() {
    let dir = temp_dir("columns");
    let db = dir.join("other.db");
    sql(&db, "CREATE TABLE models (model_id TEXT); CREATE TABLE runs (run_id TEXT, model_id TEXT); CREATE TABLE steps (step INTEGER, model_id TEXT);");
    let e = Store::open(&db).await.err().unwrap();
    assert!(
        e.to_string()
            .contains("table `steps` has no column `run_id`"),
        "{e}"
    );
}

#[tokio::test]
async fn a_zoom_has_full_detail_the_same_spikes_and_only_its_range() {
    let dir = temp_dir("zoom");
    let db = make_db(&dir, &["--steps", "20000", "--every", "1", "--runs", "1"]);
    let store = Store::open(&db).await.unwrap();
    let run = runs(&store).await.remove(0);
    let whole = store
        .dashboard(Some(&run.run_id), None, &Default::default())
        .await
        .unwrap()
        .charts
        .unwrap();
    // The fixture (seeded) spikes at 5648: eight rows into the range, too few to judge by
    // without the rows before it.
    let (start, end) = (5_640, 6_999);
    let zoom = store.zoom(&run.run_id, start, end).await.unwrap();
    assert_eq!(zoom.range, (start, end));

    let in_range = |s: i64| (start..=end).contains(&s);
    let whole_points = whole.loss.iter().filter(|p| in_range(p.0)).count();
    assert!(zoom.run.loss.iter().all(|p| in_range(p.0)));
    assert!(
        zoom.run.loss.len() > 2 * whole_points,
        "the zoom has detail the whole-run chart cannot: {} vs {whole_points}",
        zoom.run.loss.len()
    );
    let whole_spikes: Vec<_> = whole.spikes.iter().filter(|p| in_range(p.0)).collect();
    assert!(whole_spikes.iter().any(|p| p.0 < start + 32));
    let zoom_spikes: Vec<_> = zoom.run.spikes.iter().collect();
    assert_eq!(
        zoom_spikes, whole_spikes,
        "the trailing window starts before the range"
    );

    let routing = &zoom.routing;
    assert!(!routing.mod_cells.is_empty() && !routing.mor_depth.is_empty());
    assert!(routing
        .mod_cells
        .iter()
        .all(|c| c.step_lo >= start && c.step_hi <= end));
    assert!(routing
        .mor_depth
        .iter()
        .flat_map(|l| &l.avg_depth)
        .all(|p| in_range(p.0)));
    assert!(matches!(
        store.zoom("no such run", 0, 10).await,
        Err(AppError::NotFound { .. })
    ));
}

#[tokio::test]
async fn the_run_cache_follows_the_file_as_it_grows_and_rewrites() {
    let dir = temp_dir("cache");
    let db = make_db(&dir, &["--steps", "3000", "--every", "1", "--runs", "1"]);
    // Still training: no end yet.
    sql(&db, "UPDATE runs SET end_time = NULL, end_step = 0;");
    let store = Store::open(&db).await.unwrap();
    let run = runs(&store).await.remove(0);
    let all: Vec<i64> = all_steps(&store, &run.run_id, 10_000).await;

    // The chart request: chosen in memory, the same rows a full pass chooses.
    let fast = store
        .steps_downsampled(&run.run_id, None, None, 200, &["loss_total"])
        .await
        .unwrap();
    let mut losses = Vec::new();
    let mut start = None;
    loop {
        let page = store.steps(&run.run_id, start, 10_000).await.unwrap();
        losses.extend(page.steps.iter().map(|s| s.loss_total.unwrap_or(f64::NAN)));
        match page.next_start_step {
            Some(n) => start = Some(n),
            None => break,
        }
    }
    let expected: Vec<i64> = hydra_dashboard::analysis::downsample::m4_indices(&all, &losses, 200)
        .into_iter()
        .map(|i| all[i])
        .collect();
    assert!(fast.downsampled);
    assert_eq!(
        fast.steps.iter().map(|s| s.step).collect::<Vec<_>>(),
        expected
    );

    // The trainer appends 100 steps: the next read has them, without a rebuild's cost.
    sql(
        &db,
        "CREATE TEMP TABLE more AS SELECT * FROM steps WHERE step >= 2900; \
         UPDATE more SET step = step + 100; \
         INSERT INTO steps SELECT * FROM more;",
    );
    let d = store
        .dashboard(Some(&run.run_id), None, &Default::default())
        .await
        .unwrap();
    assert_eq!(d.summary.unwrap().last_step, Some(3_099));
    assert_eq!(d.charts.as_ref().unwrap().last_step, 3_099);

    // It re-logs step 500 with a loss far above the rest: the chart shows the new value.
    sql(
        &db,
        "CREATE TEMP TABLE again AS SELECT * FROM steps WHERE step = 500; \
         UPDATE again SET loss_total = 99.0; \
         INSERT OR REPLACE INTO steps SELECT * FROM again;",
    );
    let d = store
        .dashboard(Some(&run.run_id), None, &Default::default())
        .await
        .unwrap();
    assert!(d.charts.unwrap().loss.contains(&(500, 99.0)));
    assert_eq!(d.summary.unwrap().step_count, 3_100);
    assert!(store.cache_bytes() > 0);
}

#[tokio::test]
async fn a_snapshot_is_one_file_with_every_chart_and_no_script() {
    let dir = temp_dir("snapshot");
    let db = make_db(&dir, &["--nan", "--collapse", "--moe", "--layers", "24"]);
    let store = Store::open(&db).await.unwrap();
    let d = store
        .dashboard(None, None, &Default::default())
        .await
        .unwrap();
    let html = hydra_dashboard::pages::snapshot::render(d, &Default::default());
    std::fs::write(dir.join("snap.html"), &html).unwrap();
    assert_eq!(html.matches("<svg").count(), 7, "every panel's chart");
    assert!(!html.contains("<script"));
    assert!(html.contains("MoR collapse"));
}

#[tokio::test]
async fn a_lineage_lays_a_models_runs_end_to_end_with_the_resumes_marked() {
    let dir = temp_dir("lineage");
    let db = make_db(&dir, &["--runs", "3", "--nan", "--collapse", "--moe"]);
    let store = Store::open(&db).await.unwrap();
    let runs = runs(&store).await;
    assert_eq!(runs.len(), 3);
    let settings = Default::default();
    let d = store.lineage_dashboard("500m", &settings).await.unwrap();
    let charts = d.charts.unwrap();
    assert_eq!(charts.first_step, 0);
    assert_eq!(charts.last_step, 19_990);
    assert!(charts.loss.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        charts.loss.len() <= 4 * 620,
        "about one page's worth of points"
    );
    let resumes: Vec<i64> = charts.resumes.iter().map(|r| r.0).collect();
    let starts: Vec<i64> = runs[1..].iter().map(|r| r.start_step.unwrap()).collect();
    assert_eq!(resumes, starts, "a marker where each resumed run begins");
    assert!(
        !charts.diverged.is_empty(),
        "the first run's NaN losses are in it"
    );
    let routing = d.routing.unwrap();
    assert!(
        !routing.collapses.is_empty(),
        "and the later runs' collapse"
    );
    assert_eq!(
        d.run.unwrap().run_id,
        runs[2].run_id,
        "cards show the newest run"
    );

    // A zoom across a resume reads both runs, at full detail.
    let (zoomed, _) = store.lineage("500m", Some((6_000, 7_000))).await.unwrap();
    assert_eq!(zoomed.loss.first().map(|p| p.0), Some(6_000));
    assert_eq!(zoomed.loss.last().map(|p| p.0), Some(7_000));
    let finite = query(
        &db,
        "SELECT COUNT(*) FROM steps WHERE model_id = '500m' AND step BETWEEN 6000 AND 7000 \
         AND loss_total IS NOT NULL AND abs(loss_total) < 1e308",
    );
    assert_eq!(
        zoomed.loss.len().to_string(),
        finite,
        "every finite loss of the range"
    );
    assert_eq!(zoomed.resumes.len(), 1);

    // Smoothed, each run over its own steps, at the steps the lineage's chart shows: the
    // runs' own smoothed lines laid end to end, the same at every zoom.
    let smoothed = store
        .lineage_smoothed_loss("500m", None, 0.9)
        .await
        .unwrap();
    assert!(smoothed.points.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(smoothed.last_step, Some(19_990));
    let mut own = Vec::new();
    for run in &runs {
        own.extend(
            store
                .smoothed_loss(&run.run_id, None, 0.9)
                .await
                .unwrap()
                .points,
        );
    }
    let at = |points: &[(i64, f64)], step: i64| points.iter().find(|p| p.0 == step).map(|p| p.1);
    let mut compared = 0;
    for &(step, value) in &smoothed.points {
        if let Some(alone) = at(&own, step) {
            assert_eq!(value, alone, "step {step}");
            compared += 1;
        }
    }
    assert!(
        compared > 100,
        "{compared} steps in common with the runs' own lines"
    );
    let zoomed = store
        .lineage_smoothed_loss("500m", Some((6_000, 7_000)), 0.9)
        .await
        .unwrap();
    // Every logged step of the range (one per 10 steps), from both runs.
    assert!(zoomed.points.len() >= 90, "{}", zoomed.points.len());
    for &(step, value) in &zoomed.points {
        if let Some(wide) = at(&smoothed.points, step) {
            assert_eq!(value, wide, "step {step} moved with the zoom");
        }
    }
    let first = runs[1].start_step.unwrap();
    assert!(
        zoomed.points.iter().any(|p| p.0 < first) && zoomed.points.iter().any(|p| p.0 >= first)
    );
}

#[tokio::test]
async fn stats_and_milestones_equal_what_sqlite_itself_computes() {
    let dir = temp_dir("stats-oracle");
    let db = make_db(
        &dir,
        &["--nan", "--runs", "3", "--steps", "120000", "--every", "1"],
    );
    let store = Store::open(&db).await.unwrap();
    let finite =
        "typeof(loss_total) IN ('real', 'integer') AND abs(loss_total) <= 1.7976931348623157e308";
    let stats = store.model_stats("500m").await.unwrap();
    let q = |select: &str| query(&db, select);
    assert_eq!(
        stats.step_count.to_string(),
        q("SELECT COUNT(*) FROM steps WHERE model_id = '500m'")
    );
    assert_eq!(
        stats.max_step.unwrap().to_string(),
        q("SELECT MAX(step) FROM steps WHERE model_id = '500m'")
    );
    let best: f64 = q(&format!(
        "SELECT MIN(loss_total) FROM steps WHERE model_id = '500m' AND {finite}"
    ))
    .parse()
    .unwrap();
    assert!((stats.best_loss.unwrap() - best).abs() <= 1e-12 * best);
    let avg: f64 = q(&format!(
        "SELECT AVG(loss_total) FROM steps WHERE model_id = '500m' AND {finite}"
    ))
    .parse()
    .unwrap();
    assert!((stats.avg_loss.unwrap() - avg).abs() <= 1e-9 * avg);

    // Milestones across page boundaries (50,000 rows) and resumes: the best loss within
    // each bucket of 7,000 steps (issue 13: the original's meaning).
    let m = store.milestones("500m", 7_000).await.unwrap();
    let keys: Vec<i64> = m.milestones.keys().copied().collect();
    assert_eq!(keys, (0..=17).map(|k| k * 7_000).collect::<Vec<_>>());
    for (step, value) in &m.milestones {
        let expected: f64 = q(&format!(
            "SELECT MIN(loss_total) FROM steps WHERE model_id = '500m' AND step >= {step} \
             AND step < {step} + 7000 AND {finite}"
        ))
        .parse()
        .unwrap();
        assert!(
            (value - expected).abs() <= 1e-12 * expected,
            "milestone {step}"
        );
    }

    // Answers are kept until the file changes; a new row is seen at once.
    let by_thousand = store.milestones("500m", 1_000).await.unwrap();
    assert_eq!(by_thousand.milestones.keys().last(), Some(&119_000));
    assert_eq!(store.model_stats("500m").await.unwrap(), stats);
    sql(
        &db,
        "INSERT INTO steps (step, run_id, model_id, loss_total) \
         SELECT MAX(step) + 1, run_id, model_id, 0.5 FROM steps WHERE model_id = '500m';",
    );
    let after = store.model_stats("500m").await.unwrap();
    assert_eq!(after.step_count, stats.step_count + 1);
    assert_eq!(after.best_loss, Some(0.5));
    let by_thousand = store.milestones("500m", 1_000).await.unwrap();
    assert_eq!(by_thousand.milestones.get(&120_000), Some(&0.5));
}
