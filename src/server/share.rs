//! Shared snapshots: a view of a run, or a comparison of runs, frozen into the dashboard's own state directory
//! (`--state-dir`; never beside or inside the trainer's file) and served at `/s/{id}` as a
//! static page, with `/s/{id}.png` — its loss chart — for link previews. The frozen data is
//! the page's own (`Dashboard`, `CompareView`), so a snapshot renders the same next week,
//! after the runs moved on or their files were deleted.

use super::error::AppError;
use super::snapshot::{self, Page, Preview};
use super::AppState;
use crate::charts::compare::CompareChart;
use crate::charts::spec::ChartSpec;
use crate::charts::View;
use crate::model::{CompareView, Dashboard, GaugeSettings, Metric, ShareRequest, SharedLink};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::path::{Path as FsPath, PathBuf};

/// The preview image's size: what chat apps crop large previews to (1.91 : 1).
pub const PREVIEW_SIZE: (u32, u32) = (1200, 630);

/// A share request is a few fields; anything bigger is not one.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Where shared snapshots live: `{state_dir}/snapshots/{id}.json`. The directory is made
/// when the first snapshot is taken, so a dashboard nobody shares from writes nothing.
#[derive(Clone, Debug)]
pub struct Shares {
    dir: PathBuf,
}

/// One snapshot.
pub struct Frozen {
    pub id: String,
    /// When it was taken, in seconds since the Unix epoch.
    pub taken_at: f64,
    pub request: ShareRequest,
    pub view: FrozenView,
}

/// What a snapshot shows.
pub enum FrozenView {
    /// One run's dashboard.
    Run(Box<Dashboard>),
    /// Runs side by side, as `/compare` showed them.
    Compare(Box<CompareView>),
}

/// A snapshot as kept on disk: one run under `data` (as the first snapshots were kept), a
/// comparison under `compare`. Not an enum flattened into the struct: serde's flatten
/// buffers the data and then cannot read the number-keyed maps inside a `Dashboard`.
#[derive(Serialize, Deserialize)]
struct Kept {
    id: String,
    taken_at: f64,
    request: ShareRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Box<Dashboard>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compare: Option<Box<CompareView>>,
}

impl Frozen {
    fn kept(self) -> Kept {
        let (data, compare) = match self.view {
            FrozenView::Run(d) => (Some(d), None),
            FrozenView::Compare(c) => (None, Some(c)),
        };
        Kept {
            id: self.id,
            taken_at: self.taken_at,
            request: self.request,
            data,
            compare,
        }
    }

    fn from_kept(kept: Kept) -> Result<Self, &'static str> {
        let view = match (kept.data, kept.compare) {
            (Some(d), None) => FrozenView::Run(d),
            (None, Some(c)) => FrozenView::Compare(c),
            _ => return Err("it holds neither one run nor one comparison"),
        };
        Ok(Self {
            id: kept.id,
            taken_at: kept.taken_at,
            request: kept.request,
            view,
        })
    }
}

impl Shares {
    pub fn new(state_dir: &FsPath) -> Self {
        Self {
            dir: state_dir.join("snapshots"),
        }
    }

    pub fn dir(&self) -> &FsPath {
        &self.dir
    }

    /// Freezes what `request` asks for and keeps it; the link is `/s/{id}`.
    pub async fn create(
        &self,
        store: &super::store::Store,
        settings: &GaugeSettings,
        request: ShareRequest,
    ) -> Result<SharedLink, AppError> {
        if let Some((field, why)) = request.misplaced() {
            return Err(AppError::bad_param(field, why.to_string()));
        }
        let view = if request.is_comparison() {
            FrozenView::Compare(Box::new(snapshot::freeze_compare(store, &request).await?))
        } else {
            let range = request
                .step_range()
                .map_err(|why| AppError::bad_param("end_step", why))?;
            let data = snapshot::freeze(store, request.run_id.as_deref(), range, settings).await?;
            if data.run.is_none() {
                return Err(AppError::NotFound {
                    what: "run",
                    id: request.run_id.clone().unwrap_or_default(),
                });
            }
            FrozenView::Run(Box::new(data))
        };
        let frozen = Frozen {
            id: new_id().map_err(|why| self.unavailable(why))?,
            taken_at: snapshot::now(),
            request,
            view,
        }
        .kept();
        let json = serde_json::to_vec(&frozen).map_err(|e| self.unavailable(e.to_string()))?;
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        // Written aside and renamed: a reader never sees half a snapshot.
        let path = self.path(&frozen.id);
        let partial = path.with_extension("json.partial");
        tokio::fs::write(&partial, &json)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| self.unavailable(e.to_string()))?;
        tracing::info!("snapshot {} taken ({} KB)", frozen.id, json.len() / 1024);
        Ok(SharedLink::new(&frozen.id))
    }

    /// The snapshot `id`, if there is one by that name.
    pub async fn load(&self, id: &str) -> Result<Frozen, AppError> {
        let missing = || AppError::NoSnapshot { id: id.into() };
        if !is_id(id) {
            return Err(missing());
        }
        let bytes = match tokio::fs::read(self.path(id)).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(self.unavailable(e.to_string())),
        };
        let unreadable =
            |why: String| self.unavailable(format!("snapshot {id} is unreadable: {why}"));
        let kept: Kept = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
        Frozen::from_kept(kept).map_err(|why| unreadable(why.into()))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn unavailable(&self, why: String) -> AppError {
        AppError::StateDir {
            dir: self.dir.display().to_string(),
            why,
        }
    }
}

/// 128 random bits from the OS, as 32 hex digits: a link nobody can guess.
fn new_id() -> Result<String, String> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::try_from_os_rng().map_err(|e| e.to_string())?;
    let mut bytes = [0_u8; 16];
    rng.fill_bytes(&mut bytes);
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Only names `new_id` makes are looked up, so no path can be built from a URL.
pub fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/snapshots",
        post(create).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)),
    )
}

/// `POST /api/snapshots` with a JSON `ShareRequest`: 201 and the link.
async fn create(State(s): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    let request: ShareRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ShareRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| AppError::bad_param("body", e.to_string()))?
    };
    let link = s.shares.create(&s.store, &s.gauges, request).await?;
    let location = HeaderValue::from_str(&link.url).ok();
    let mut response = (StatusCode::CREATED, Json(link)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /s/{id}` (the page, as `render` draws it) and `GET /s/{id}.png` (its loss chart).
/// The route is the site's (`pages::snapshot`): the page is rendered by the pages layer.
pub async fn show(
    s: &AppState,
    file: &str,
    headers: &HeaderMap,
    render: fn(Frozen, &Page) -> String,
) -> Response {
    let (id, png) = match file.strip_suffix(".png") {
        Some(id) => (id, true),
        None => (file, false),
    };
    let frozen = match s.shares.load(id).await {
        Ok(f) => f,
        Err(e) => return error_page(e),
    };
    if png {
        return match preview_png(&frozen) {
            Ok(bytes) => (
                [
                    (header::CONTENT_TYPE, "image/png"),
                    // A snapshot never changes.
                    (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                ],
                bytes,
            )
                .into_response(),
            Err(why) => error_page(AppError::StateDir {
                dir: s.shares.dir().display().to_string(),
                why,
            }),
        };
    }
    let base = base_url(headers);
    let page = Page {
        taken_at: frozen.taken_at,
        log_scale: frozen.request.log_scale,
        preview: Some(Preview {
            url: format!("{base}/s/{id}"),
            image_url: format!("{base}/s/{id}.png"),
            image_size: PREVIEW_SIZE,
        }),
        // Served by the dashboard: its export links and the way home work.
        standalone: false,
    };
    let html = render(frozen, &page);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // A static page: no script of any kind runs in it.
            (header::CONTENT_SECURITY_POLICY, STATIC_PAGE_POLICY),
        ],
        html,
    )
        .into_response()
}

/// What a snapshot page may load: its inline styles and our own images; nothing runs.
const STATIC_PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The loss chart of a snapshot at the preview size, as the person saw it.
pub fn preview_png(frozen: &Frozen) -> Result<Vec<u8>, String> {
    let (spec, title, about) = match &frozen.view {
        FrozenView::Run(data) => {
            let spec = data.charts.clone().map(ChartSpec::Loss).unwrap_or_default();
            let run = data.run.as_ref().map(|r| r.run_id.as_str());
            let title = format!("HYDRA · {}", run.unwrap_or("no run"));
            (spec, title, snapshot::describe(data))
        }
        FrozenView::Compare(data) => {
            let chart = CompareChart::new(
                &data.comparison.runs,
                Metric::LossTotal,
                data.comparison.x,
                &frozen.request.hidden,
            );
            let title = format!("HYDRA · {} runs compared", data.comparison.runs.len());
            (
                ChartSpec::Compare(Box::new(chart)),
                title,
                snapshot::describe_compare(data),
            )
        }
    };
    let view = View {
        log_y: frozen.request.log_scale,
        ..View::default()
    };
    let (w, h) = PREVIEW_SIZE;
    crate::charts::png::to_png(w, h, |root| {
        use plotters::prelude::*;
        let theme = &crate::charts::theme::DARK;
        // A caption over the chart: in a chat app the preview stands alone.
        let (caption, chart) = root.split_vertically(64);
        caption.fill(&theme.background)?;
        caption.draw(&Text::new(
            title.clone(),
            (18, 10),
            theme.font(26).color(&theme.text),
        ))?;
        caption.draw(&Text::new(
            about.clone(),
            (18, 40),
            theme.font(18).color(&theme.muted),
        ))?;
        spec.draw(&chart, &view)
    })
}

/// `http://host` as the browser addressed us, for the absolute URLs Open Graph wants; the
/// scheme a TLS-terminating proxy reports wins. A Host header with anything beyond a host
/// name and port is ignored (relative URLs then).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    match host {
        Some(host) => format!("{}://{host}", if https { "https" } else { "http" }),
        None => String::new(),
    }
}

/// A snapshot link that leads nowhere gets a page a person can read, not JSON.
fn error_page(e: AppError) -> Response {
    e.log();
    let status = e.status_code();
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Snapshot \
         unavailable</title></head><body style=\"font-family:sans-serif;background:#0d1117;\
         color:#c9d1d9;padding:2rem\"><h1>Snapshot unavailable</h1><p>{}</p><p><a \
         style=\"color:#58a6ff\" href=\"/\">Go to the dashboard</a></p></body></html>",
        snapshot::escape(&e.to_string())
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, STATIC_PAGE_POLICY),
        ],
        html,
    )
        .into_response()
}
