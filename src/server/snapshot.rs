//! Snapshots: one run's dashboard as a single self-contained HTML document — inline CSS,
//! every chart as inline SVG drawn by the same `draw` functions as the live page, no scripts
//! and no external references — readable offline, with JavaScript off, next week. The
//! `snapshot` command writes one to a file; shared snapshots (`share.rs`) keep the data and
//! render it here on each visit.

use crate::components::chart::SharedView;
use crate::model::{Dashboard, GaugeSettings};
use crate::pages::dashboard::DashboardView;
use crate::server::error::AppError;
use crate::server::store::Store;
use leptos::prelude::*;

/// The page's own stylesheet, baked in.
const STYLE: &str = include_str!("../../style/main.css");

/// What is frozen: the dashboard of `run_id` (or the newest run), its charts limited to
/// `range` when given — at the same detail a zoom shows.
pub async fn freeze(
    store: &Store,
    run_id: Option<&str>,
    range: Option<(i64, i64)>,
    settings: &GaugeSettings,
) -> Result<Dashboard, AppError> {
    let mut data = store.dashboard(run_id, None, settings).await?;
    if let (Some((a, b)), Some(run)) = (range, data.run.as_ref()) {
        let zoom = store.zoom(&run.run_id, a, b).await?;
        data.charts = Some(zoom.run);
        data.routing = Some(zoom.routing);
    }
    Ok(data)
}

/// A snapshot document of `run_id` (or the newest run), taken now.
pub async fn snapshot(
    store: &Store,
    run_id: Option<&str>,
    range: Option<(i64, i64)>,
    settings: &GaugeSettings,
) -> Result<String, AppError> {
    let data = freeze(store, run_id, range, settings).await?;
    Ok(render(data, &Page::taken_now()))
}

/// How a snapshot document is dressed around the dashboard.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// When the data was frozen, in seconds since the Unix epoch.
    pub taken_at: f64,
    /// The charts' y axes on a log scale, as the person who froze it saw them.
    pub log_scale: bool,
    /// Link-preview tags, for a snapshot that has a URL.
    pub preview: Option<Preview>,
}

impl Page {
    pub fn taken_now() -> Self {
        Self {
            taken_at: now(),
            ..Self::default()
        }
    }
}

/// Open Graph tags: what a chat app shows for a pasted link.
#[derive(Clone, Debug)]
pub struct Preview {
    pub url: String,
    pub image_url: String,
    pub image_size: (u32, u32),
}

/// The whole snapshot document for `data`.
pub fn render(data: Dashboard, page: &Page) -> String {
    let title = data
        .run
        .as_ref()
        .map(|r| format!("HYDRA run {} — snapshot", r.run_id))
        .unwrap_or_else(|| "HYDRA snapshot".into());
    let preview = page
        .preview
        .as_ref()
        .map(|p| preview_tags(p, &title, &describe(&data)))
        .unwrap_or_default();
    let log_scale = page.log_scale;
    let owner = Owner::new();
    let body = owner.with(|| {
        provide_context(leptos_router::location::RequestUrl::new("/"));
        let shared = SharedView::new();
        shared.log_y.set(log_scale);
        provide_context(shared);
        view! {
            <leptos_router::components::Router>
                <DashboardView data/>
            </leptos_router::components::Router>
        }
        .to_html()
    });
    let scale = if log_scale { " Log scale." } else { "" };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"dark\"><title>{}</title>{preview}\
         <style>{STYLE}</style></head><body class=\"snapshot\"><div class=\"snapshot-banner\">\
         Snapshot taken {} UTC — a static copy of the dashboard; the charts show the data as \
         it was then.{scale}</div>{body}</body></html>",
        escape(&title),
        crate::analysis::time::format_iso8601(page.taken_at).replace('T', " "),
    )
}

/// One line about the run for a link preview: where it is and how it is doing.
pub fn describe(data: &Dashboard) -> String {
    use crate::analysis::format::{metric, thousands};
    let Some(run) = &data.run else {
        return "No runs in this database yet.".into();
    };
    let mut parts = vec![format!("Model {}", run.model_id)];
    if let Some(s) = &data.summary {
        if let Some(step) = s.last_step {
            parts.push(format!("step {}", thousands(step)));
        }
        if s.last_loss.is_some() {
            parts.push(format!("loss {}", metric(s.last_loss)));
        }
        if s.best_loss.is_some() {
            parts.push(format!("best {}", metric(s.best_loss)));
        }
        if s.nonfinite_losses > 0 {
            parts.push(format!("{} NaN/Inf losses", s.nonfinite_losses));
        }
    }
    if let Some(c) = &data.charts {
        if !c.spikes.is_empty() {
            parts.push(plural(c.spikes.len(), "loss spike"));
        }
    }
    if let Some(r) = &data.routing {
        if !r.collapses.is_empty() {
            parts.push(format!(
                "MoR collapse in {}",
                plural(r.collapses.len(), "layer")
            ));
        }
    }
    parts.join(" · ")
}

/// `1 layer`, `3 layers`.
fn plural(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn preview_tags(p: &Preview, title: &str, description: &str) -> String {
    let tag = |property: &str, content: &str| {
        format!(
            "<meta property=\"{property}\" content=\"{}\">",
            escape(content)
        )
    };
    [
        tag("og:type", "website"),
        tag("og:site_name", "HYDRA training dashboard"),
        tag("og:title", title),
        tag("og:description", description),
        tag("og:url", &p.url),
        tag("og:image", &p.image_url),
        tag("og:image:type", "image/png"),
        tag("og:image:width", &p.image_size.0.to_string()),
        tag("og:image:height", &p.image_size.1.to_string()),
        tag("og:image:alt", &format!("Loss chart: {description}")),
        "<meta name=\"twitter:card\" content=\"summary_large_image\">".to_string(),
        format!(
            "<meta name=\"description\" content=\"{}\">",
            escape(description)
        ),
    ]
    .concat()
}

/// Text safe inside an element or a double-quoted attribute.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Now, in seconds since the Unix epoch.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
