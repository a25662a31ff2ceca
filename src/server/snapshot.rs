//! Snapshots' data: one run's dashboard frozen as the page would show it, and how the
//! document around it is dressed. The HTML is rendered by `pages::snapshot`; the `snapshot`
//! command writes one to a file, shared snapshots (`share.rs`) keep the data and render it
//! on each visit.

use crate::model::{parse_run_list, CompareView, Dashboard, GaugeSettings, ShareRequest};
use crate::server::compare::CompareAsk;
use crate::server::error::AppError;
use crate::server::store::Store;

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

/// What is frozen of a comparison: the compare page's data for `request`'s runs, axis,
/// smoothing and zoom; the mistakes in it are 400s naming the field.
pub async fn freeze_compare(
    store: &Store,
    request: &ShareRequest,
) -> Result<CompareView, AppError> {
    let runs = parse_run_list(request.runs.iter().map(String::as_str))
        .map_err(|why| AppError::bad_param("runs", why))?;
    if let Some(id) = request.hidden.iter().find(|id| !runs.contains(id)) {
        return Err(AppError::bad_param(
            "hidden",
            format!("run {id:?} is not among the compared runs"),
        ));
    }
    let smoothing = match request.smoothing {
        None => None,
        Some(w) => Some(
            crate::analysis::smoothing::checked_weight(w)
                .map_err(|why| AppError::bad_param("smoothing", why))?,
        ),
    };
    if let (Some(a), Some(b)) = (request.start, request.end) {
        if a > b {
            return Err(AppError::bad_param(
                "end",
                format!("must not be below start ({b} < {a})"),
            ));
        }
    }
    let ask = CompareAsk::page(
        runs,
        request.x.unwrap_or_default(),
        smoothing,
        request.start,
        request.end,
    );
    store.compare_view(&ask).await
}

/// One line about a comparison for a link preview: its runs and their best losses.
pub fn describe_compare(data: &CompareView) -> String {
    use crate::analysis::format::metric;
    let runs: Vec<String> = data
        .rows
        .iter()
        .map(|r| match r.best_loss {
            Some(_) => format!(
                "{} ({}, best {})",
                r.run_id,
                r.model_id,
                metric(r.best_loss)
            ),
            None => format!("{} ({})", r.run_id, r.model_id),
        })
        .collect();
    format!(
        "{} compared: {}",
        plural(runs.len(), "run"),
        runs.join(" · ")
    )
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
    /// A file that opens on its own (`hydra-dashboard snapshot`): no links to the server.
    pub standalone: bool,
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
