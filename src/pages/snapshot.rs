//! A snapshot page: one run's dashboard as a single self-contained HTML document — inline
//! CSS, every chart as inline SVG drawn by the same `draw` functions as the live page, no
//! scripts and no external references — readable offline, with JavaScript off, next week.
//! Server only: the data comes from `server::snapshot`, frozen or taken now.

use crate::components::chart::SharedView;
use crate::model::{Dashboard, GaugeSettings};
use crate::pages::dashboard::DashboardView;
use crate::server::error::AppError;
use crate::server::snapshot::{describe, escape, freeze, Page, Preview};
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
) -> Result<String, AppError> {
    let data = freeze(store, run_id, range, settings).await?;
    let page = Page {
        standalone: true,
        ..Page::taken_now()
    };
    Ok(render(data, &page))
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
        provide_context(crate::components::Frozen);
        if page.standalone {
            provide_context(crate::components::Standalone);
        }
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
    crate::server::share::show(&state, &file, &headers, render).await
}
