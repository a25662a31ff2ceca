//! Snapshots: one run's dashboard as a single self-contained HTML file — inline CSS, every
//! chart as inline SVG drawn by the same `draw` functions as the live page, no scripts and
//! no external references — readable offline, with JavaScript off, next week.

use crate::model::{Dashboard, GaugeSettings};
use crate::pages::dashboard::DashboardView;
use crate::server::error::AppError;
use crate::server::store::Store;
use leptos::prelude::*;

/// The page's own stylesheet, baked in.
const STYLE: &str = include_str!("../../style/main.css");

/// A snapshot of `run_id` (or the newest run), its charts limited to `range` when given.
pub async fn snapshot(
    store: &Store,
    run_id: Option<&str>,
    range: Option<(i64, i64)>,
    settings: &GaugeSettings,
) -> Result<String, AppError> {
    let mut data = store.dashboard(run_id, None, settings).await?;
    if let (Some((a, b)), Some(run)) = (range, data.run.as_ref()) {
        let zoom = store.zoom(&run.run_id, a, b).await?;
        data.charts = Some(zoom.run);
        data.routing = Some(zoom.routing);
    }
    Ok(render(data))
}

/// The whole snapshot document for `data`.
pub fn render(data: Dashboard) -> String {
    let title = data
        .run
        .as_ref()
        .map(|r| format!("HYDRA run {} — snapshot", r.run_id))
        .unwrap_or_else(|| "HYDRA snapshot".into());
    let owner = Owner::new();
    let body = owner.with(|| {
        provide_context(leptos_router::location::RequestUrl::new("/"));
        view! {
            <leptos_router::components::Router>
                <DashboardView data/>
            </leptos_router::components::Router>
        }
        .to_html()
    });
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"dark\"><title>{}</title><style>{STYLE}</style>\
         </head><body class=\"snapshot\"><div class=\"snapshot-banner\">Snapshot taken {} UTC \
         — a static copy of the dashboard; the charts show the data as it was then.</div>\
         {body}</body></html>",
        escape(&title),
        taken_at()
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Now, as `YYYY-MM-DD HH:MM:SS`, from the system clock.
fn taken_at() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    crate::analysis::time::format_iso8601(secs).replace('T', " ")
}
