//! The sources seam is real: a source that is not SQLite — a few runs held in memory, made
//! up here — is served by the real router, and the page, `/api/metrics`, a zoom (the server
//! function the page calls) and the live feed `/ws` all answer from it, including steps it
//! gains while a follower listens. Nothing here touches a file.

mod common;
use common::*;
use futures::StreamExt;
use hydra_dashboard::model::{
    DbInfo, GaugeSettings, LiveMessage, Model, RoutingMod, RoutingMoe, RoutingMor, Run, Step,
};
use hydra_dashboard::server::error::AppError;
use hydra_dashboard::server::source::{
    CatchUpPage, Fields, LiveRows, Reach, RoutingKind, RoutingRows, Source,
};
use hydra_dashboard::server::store::Store;
use hydra_dashboard::server::{self, AppState};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const RUN: &str = "mem_20260101_000000";

/// One model, one run, its steps and MoR records in memory; steps can be added while it is
/// served. A step's position in its feed is its index + 1.
#[derive(Clone, Default)]
struct MemorySource {
    steps: Arc<Mutex<Vec<Step>>>,
    mor: Arc<Mutex<Vec<RoutingMor>>>,
}

impl MemorySource {
    fn with_steps(n: i64) -> Self {
        let source = Self::default();
        for step in 0..n {
            source.add(step);
        }
        source
    }

    /// Logs step `step`: a loss falling slowly, with one spike at step 500, and a MoR
    /// record for two layers every 10 steps.
    fn add(&self, step: i64) {
        let loss = if step == 500 {
            9.0
        } else {
            4.0 - step as f64 / 1_000.0
        };
        self.steps.lock().unwrap().push(Step {
            step,
            run_id: RUN.into(),
            model_id: "mem".into(),
            timestamp: Some(format!(
                "2026-01-01T00:{:02}:{:02}",
                step / 60 % 60,
                step % 60
            )),
            loss_total: Some(loss),
            lr: Some(3e-4),
            grad_norm: Some(0.5),
            grad_norm_pre_clip: Some(0.7),
            tokens_per_sec: Some(40_000.0),
            ..Default::default()
        });
        if step % 10 == 0 {
            for layer in 0..2 {
                self.mor.lock().unwrap().push(RoutingMor {
                    step,
                    run_id: RUN.into(),
                    model_id: "mem".into(),
                    layer,
                    avg_depth: Some(2.0),
                    expected_depth: Some(2.1),
                    router_probs_mean: Some(0.5),
                    status: Some("OK".into()),
                    depth_histogram: None,
                });
            }
        }
    }

    fn run() -> Run {
        Run {
            run_id: RUN.into(),
            model_id: "mem".into(),
            start_step: Some(0),
            start_time: Some("2026-01-01T00:00:00".into()),
            config_json: Some(r#"{"max_steps": 100000, "grad_clip": 1.0}"#.into()),
            ..Default::default()
        }
    }
}

fn within(step: i64, range: (i64, i64)) -> bool {
    range.0 <= step && step <= range.1
}

#[async_trait::async_trait]
impl Source for MemorySource {
    async fn check(&self) -> Result<(), AppError> {
        Ok(())
    }

    async fn models(&self) -> Result<Vec<Model>, AppError> {
        Ok(vec![Model {
            model_id: "mem".into(),
            name: Some("in memory".into()),
            ..Default::default()
        }])
    }

    async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError> {
        Ok(match model_id {
            None | Some("mem") => vec![Self::run()],
            Some(_) => Vec::new(),
        })
    }

    async fn steps(
        &self,
        _run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        _fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        let steps = self.steps.lock().unwrap();
        let inside = steps.iter().filter(|s| within(s.step, range)).cloned();
        Ok(if newest_first {
            inside.rev().take(limit).collect()
        } else {
            inside.take(limit).collect()
        })
    }

    async fn routing(
        &self,
        _run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        Ok(match kind {
            RoutingKind::Mor => RoutingRows::Mor(
                self.mor
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|r| within(r.step, range))
                    .take(limit)
                    .cloned()
                    .collect(),
            ),
            RoutingKind::Mod => RoutingRows::Mod(Vec::<RoutingMod>::new()),
            RoutingKind::Moe => RoutingRows::Moe(Vec::<RoutingMoe>::new()),
        })
    }

    async fn reach(&self) -> Result<Reach, AppError> {
        Ok(Reach {
            steps: self.steps.lock().unwrap().len() as i64,
            routing_mor: self.mor.lock().unwrap().len() as i64,
            ..Default::default()
        })
    }

    async fn changes(
        &self,
        _run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError> {
        let pick = |n_from: i64, n_to: i64, len: usize| {
            let a = (n_from.max(0) as usize).min(len);
            let b = (n_to.max(0) as usize).min(len).min(a + limit);
            (a, b)
        };
        let steps = self.steps.lock().unwrap();
        let mor = self.mor.lock().unwrap();
        let (sa, sb) = pick(from.steps, to.steps, steps.len());
        let (ma, mb) = pick(from.routing_mor, to.routing_mor, mor.len());
        let rows = LiveRows {
            steps: (sa..sb).map(|i| (i as i64 + 1, steps[i].clone())).collect(),
            routing_mor: (ma..mb).map(|i| (i as i64 + 1, mor[i].clone())).collect(),
            ..Default::default()
        };
        let reached = Reach {
            steps: sb as i64,
            routing_mor: mb as i64,
            ..*to
        };
        Ok((rows, reached))
    }

    async fn catch_up(
        &self,
        _run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError> {
        let reach = self.reach().await?;
        let steps: Vec<Step> = self
            .steps
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.step > after_step)
            .take(limit)
            .cloned()
            .collect();
        let full = steps.len() == limit;
        let upto = if full {
            steps.last().map_or(i64::MAX, |s| s.step)
        } else {
            i64::MAX
        };
        let mor = self
            .mor
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.step > after_step && r.step <= upto)
            .map(|r| (0, r.clone()))
            .collect();
        let next = if full {
            steps.last().map(|s| s.step)
        } else {
            None
        };
        let rows = LiveRows {
            steps: steps.into_iter().map(|s| (0, s)).collect(),
            routing_mor: mor,
            ..Default::default()
        };
        Ok((rows, reach, next))
    }

    async fn info(&self) -> Result<DbInfo, AppError> {
        Ok(DbInfo {
            path: "memory".into(),
            journal_mode: "none".into(),
            ..Default::default()
        })
    }
}

/// The real router on an ephemeral loopback port, serving `source`, on a runtime of its own
/// (the test talks to it with blocking requests).
fn serve(source: MemorySource) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let store = Store::of(source);
        let state = AppState {
            leptos_options: server::leptos_options(local),
            store: store.clone(),
            gauges: GaugeSettings::default(),
            live: server::live::Hub::new(store.clone()),
            shares: server::share::Shares::new(&temp_dir("seam-state")),
            access: server::auth::Access::new(None, None).unwrap(),
            alerts: server::alerts::Alerts::new(),
        };
        tokio::spawn(async move {
            axum::serve(listener, hydra_dashboard::site::router(state))
                .await
                .unwrap()
        });
        local.to_string()
    });
    (rt, addr)
}

/// A server function called as the page calls it: a form-encoded POST.
fn server_fn(addr: &str, path: &str, form: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

#[test]
fn a_source_that_is_not_sqlite_serves_the_page_the_api_a_zoom_and_the_live_feed() {
    let source = MemorySource::with_steps(2_000);
    let (rt, addr) = serve(source.clone());

    // The page, rendered on the server from the source.
    let (status, page) = http(&addr, "GET", "/");
    assert_eq!(status, 200, "{page:.500}");
    assert!(page.contains(RUN), "the page names the run");
    assert!(page.contains("memory"), "the sidebar describes the source");
    assert!(page.contains("<svg"), "charts drawn");

    // /api/metrics: paged and downsampled, from the source's rows.
    let (status, body) = http(&addr, "GET", &format!("/api/metrics/{RUN}?limit=5"));
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let steps: Vec<i64> = step_numbers(&page);
    assert_eq!(steps, [0, 1, 2, 3, 4]);
    assert_eq!(page["max_step"], 1_999);
    assert_eq!(page["next_start_step"], 5);
    let (status, body) = http(
        &addr,
        "GET",
        &format!("/api/metrics/{RUN}?max_points=50&metrics=loss_total"),
    );
    assert_eq!(status, 200, "{body}");
    let down: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(down["downsampled"], true);
    let losses: Vec<f64> = down["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["loss_total"].as_f64().unwrap())
        .collect();
    assert!(losses.len() <= 200 && losses.len() > 50, "{}", losses.len());
    assert!(losses.contains(&9.0), "the spike survives downsampling");

    // A zoom through the server function the page calls.
    use leptos::server_fn::ServerFn;
    let (status, body) = server_fn(
        &addr,
        hydra_dashboard::api::GetZoomCharts::PATH,
        &format!("run_id={RUN}&start_step=400&end_step=600"),
    );
    assert_eq!(status, 200, "{body:.500}");
    let zoom: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(zoom["range"], serde_json::json!([400, 600]));
    let loss = zoom["run"]["loss"].as_array().unwrap();
    assert_eq!(loss.len(), 201, "every step of a 201-step zoom");
    assert_eq!(zoom["run"]["spikes"], serde_json::json!([[500, 9.0]]));
    assert_eq!(zoom["routing"]["layers"], serde_json::json!([0, 1]));

    // The live feed: caught up from a cursor, then the steps the source gains.
    rt.block_on(async {
        let url = format!("ws://{addr}/ws/{RUN}?after_step=1994");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut seen: Vec<i64> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut added = false;
        while seen.last() != Some(&2_009) {
            let frame = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("the feed sent the new steps in time")
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            if let LiveMessage::Update { steps, .. } =
                LiveMessage::from_json(text.as_bytes()).unwrap()
            {
                seen.extend(steps.iter().map(|s| s.step));
            }
            if !added && seen.last() == Some(&1_999) {
                for step in 2_000..2_010 {
                    source.add(step);
                }
                added = true;
            }
        }
        assert_eq!(
            seen,
            (1_995..2_010).collect::<Vec<_>>(),
            "every step once, in order"
        );
    });

    // The run cache followed the source too: the API sees the new steps.
    let (_, body) = http(
        &addr,
        "GET",
        &format!("/api/metrics/{RUN}?max_points=10000&metrics=loss_total"),
    );
    let all: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(all["max_step"], 2_009);
    assert_eq!(all["count"], 2_010);
}
