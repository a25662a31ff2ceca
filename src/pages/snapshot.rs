//! A snapshot page: one run's dashboard, or a comparison of runs, as a single self-contained HTML document — inline
//! CSS, every chart as inline SVG drawn by the same `draw` functions as the live page, no
//! scripts and no external references — readable offline, with JavaScript off, next week.
//! Server only: the data comes from `server::snapshot`, frozen or taken now.

use crate::components::chart::SharedView;
use crate::model::{CompareView, Dashboard, GaugeSettings, ShareRequest};
use crate::pages::compare::FrozenComparison;
use crate::pages::dashboard::DashboardView;
use crate::server::error::AppError;
use crate::server::share::{Frozen, FrozenView};
use crate::server::snapshot::{
    describe, describe_compare, escape, freeze, freeze_compare, Page, Preview,
};
use crate::server::store::Store;
use leptos::prelude::*;

/// The page's own stylesheet, baked in.
const STYLE: &str = include_str!("../../style/main.css");

/// A snapshot document of `run_id` (or the newest run), taken now.
pub async fn snapshot(
    store: &Store,
    run_id: Option<&str>,
    range: Option<(i64, i64)>,
    settings: &GaugeSettings,
    log_scale: bool,
) -> Result<String, AppError> {
    let data = freeze(store, run_id, range, settings).await?;
    let page = Page {
        standalone: true,
        log_scale,
        ..Page::taken_now()
    };
    Ok(render(data, &page))
}

/// A snapshot document of the comparison `request` asks for, taken now.
pub async fn snapshot_compare(store: &Store, request: &ShareRequest) -> Result<String, AppError> {
    let data = freeze_compare(store, request).await?;
    let page = Page {
        standalone: true,
        log_scale: request.log_scale,
        ..Page::taken_now()
    };
    Ok(render_compare(data, request.hidden.clone(), &page))
}

/// The whole snapshot document for `data`.
pub fn render(data: Dashboard, page: &Page) -> String {
    let title = data
        .run
        .as_ref()
        .map(|r| format!("HYDRA run {} — snapshot", r.run_id))
        .unwrap_or_else(|| "HYDRA snapshot".into());
    let about = describe(&data);
    let body = frozen_body(page, move || view! { <DashboardView data/> });
    document(&title, &about, page, "", &body)
}

/// The whole snapshot document of a comparison, runs in `hidden` switched off as they were.
pub fn render_compare(data: CompareView, hidden: Vec<String>, page: &Page) -> String {
    let runs = data.comparison.runs.len();
    let title = format!("HYDRA: {runs} runs compared — snapshot");
    let about = describe_compare(&data);
    let axis = data.comparison.x.name();
    let smoothing = match data.comparison.smoothing {
        Some(w) => format!(" Smoothing {w}."),
        None => String::new(),
    };
    let zoom = match (data.comparison.start, data.comparison.end) {
        (None, None) => String::new(),
        (a, b) => format!(
            " Zoomed to {axis} {} – {}.",
            a.map(|v| v.to_string()).unwrap_or_default(),
            b.map(|v| v.to_string()).unwrap_or_default()
        ),
    };
    let dressing = format!(" x axis: {axis}.{smoothing}{zoom}");
    let body = frozen_body(page, move || {
        view! { <FrozenComparison data hidden/> }
    });
    document(&title, &about, page, &dressing, &body)
}

/// A shared snapshot, whichever kind it is.
pub fn render_frozen(frozen: Frozen, page: &Page) -> String {
    match frozen.view {
        FrozenView::Run(data) => render(*data, page),
        FrozenView::Compare(data) => render_compare(*data, frozen.request.hidden, page),
    }
}

/// `content` rendered as a frozen page: nothing live, no way back to the server when the
/// page is a file of its own.
fn frozen_body<V: IntoView + 'static>(
    page: &Page,
    content: impl FnOnce() -> V + Send + 'static,
) -> String {
    let log_scale = page.log_scale;
    let standalone = page.standalone;
    let owner = Owner::new();
    owner.with(move || {
        provide_context(leptos_router::location::RequestUrl::new("/"));
        let shared = SharedView::new();
        shared.log_y.set(log_scale);
        provide_context(shared);
        provide_context(crate::components::Frozen);
        if standalone {
            provide_context(crate::components::Standalone);
        }
        view! {
            <leptos_router::components::Router>
                {content()}
            </leptos_router::components::Router>
        }
        .to_html()
    })
}

/// The document around a frozen `body`: its title, link preview, stylesheet and the banner
/// saying when it was taken (`dressing` adds to the banner).
fn document(title: &str, about: &str, page: &Page, dressing: &str, body: &str) -> String {
    let preview = page
        .preview
        .as_ref()
        .map(|p| preview_tags(p, title, about))
        .unwrap_or_default();
    let scale = if page.log_scale { " Log scale." } else { "" };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"dark\"><title>{}</title>{preview}\
         <style>{STYLE}</style></head><body class=\"snapshot\"><div class=\"snapshot-banner\">\
         Snapshot taken {} UTC — a static copy of the dashboard; the charts show the data as \
         it was then.{scale}{}</div>{body}</body></html>",
        escape(title),
        crate::analysis::time::format_iso8601(page.taken_at).replace('T', " "),
        escape(dressing),
    )
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

/// `GET /s/{id}` and `GET /s/{id}.png`: a shared snapshot, rendered here.
pub async fn shared_snapshot(
    axum::extract::State(state): axum::extract::State<crate::server::AppState>,
    axum::extract::Path(file): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    crate::server::share::show(&state, &file, &headers, render_frozen).await
}
