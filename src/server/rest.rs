//! The REST API, path- and shape-compatible with the seed's backend (`docs/api.md`).
//! Each handler parses, calls one store function and answers; errors become JSON with a
//! proper status.

use super::error::AppError;
use super::params::Query;
use super::store::MAX_PAGE;
use super::AppState;
use crate::model::{RoutingMod, RoutingMoe, RoutingMor};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

type ApiResult<T> = Result<Json<T>, AppError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/models", get(models_list))
        .route("/api/runs", get(all_runs_list))
        .route("/api/runs/{model_id}", get(runs_list))
        .route("/api/compare", get(compare_get))
        .route("/api/compare.csv", get(compare_csv_get))
        .route("/api/stats/{model_id}", get(stats_get))
        .route("/api/metrics/{run_id}", get(metrics_get))
        .route("/api/routing/{kind}/{run_id}", get(routing_get))
        .route("/api/run/{run_id}", get(run_get))
        .route("/api/milestones/{model_id}", get(milestones_get))
        .route("/api/ema/{model_id}", get(ema_get))
        .route("/api/adaptive_lr/{run_id}", get(adaptive_lr_get))
        .route("/api/eval/{run_id}", get(eval_get))
        .route("/api/alerts", get(alerts_get))
        .route("/health", get(health_get))
        .route("/api", get(api_not_found))
        .route("/api/", get(api_not_found))
        .route("/api/{*rest}", get(api_not_found))
        // The live feed's address without a run is an API mistake too, answered in JSON.
        .route("/ws", get(api_not_found))
        .route("/ws/", get(api_not_found))
        .method_not_allowed_fallback(method_not_allowed)
}

/// `GET /api/ema/{model_id}?start_step=&end_step=`: the original's EMA series, the loss and
/// the three EMAs as stored, over the model's steps in the range.
async fn ema_get(
    State(s): State<AppState>,
    model_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<crate::model::EmaSeries> {
    let model_id = segment(model_id)?;
    let q = Query::parse(raw.as_deref());
    let start = q.start_step()?.unwrap_or(0);
    let end = q.int("end_step")?.unwrap_or(i64::MAX);
    crate::model::step_range(Some(start), Some(end))
        .map_err(|why| AppError::bad_param("end_step", why))?;
    Ok(Json(s.store.ema(&model_id, (start, end)).await?))
}

/// `GET /api/adaptive_lr/{run_id}?start_step=&limit=`: the adaptive-LR controller's records.
async fn adaptive_lr_get(
    State(s): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<crate::model::AdaptiveLrPage> {
    let run_id = segment(run_id)?;
    let q = Query::parse(raw.as_deref());
    let start = q.start_step()?;
    let limit = q.int_in("limit", 500, 1, 5_000)?;
    Ok(Json(
        s.store.adaptive_lr(&run_id, start, limit as usize).await?,
    ))
}

/// `GET /api/eval/{run_id}`: the run's evaluations (`[EVAL]` lines of its log).
async fn eval_get(
    State(s): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
) -> ApiResult<crate::model::EvalPage> {
    let run_id = segment(run_id)?;
    Ok(Json(s.store.evals(&run_id).await?))
}

/// `GET /api/alerts?run_id=&since=&state=open|resolved|all`: every run's alerts, newest
/// first, with how many are open. `since` is an ISO 8601 time or seconds since the epoch.
async fn alerts_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<crate::model::AlertList> {
    use super::alerts::{AlertFilter, StateFilter};
    let q = Query::parse(raw.as_deref());
    let run_id = q
        .text("run_id")
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if let Some(run_id) = &run_id {
        s.store.run(run_id).await?;
    }
    let since = match q.text("since").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .or_else(|| crate::analysis::time::parse_iso8601(t))
                .ok_or_else(|| {
                    AppError::bad_param(
                        "since",
                        format!("{t:?} is not a time (ISO 8601, or seconds since 1970)"),
                    )
                })?,
        ),
    };
    let state = match q.text("state").unwrap_or("") {
        "" | "all" => StateFilter::All,
        "open" => StateFilter::Open,
        "resolved" => StateFilter::Resolved,
        other => {
            return Err(AppError::bad_param(
                "state",
                format!("{other:?} is not one of open, resolved, all"),
            ))
        }
    };
    Ok(Json(s.alerts.list(&AlertFilter {
        run_id,
        since,
        state,
    })))
}

/// `GET /health`: 200 while the process serves, whatever the state of the runs' sources;
/// `database` says whether they can be read now and, when not, why.
async fn health_get(State(s): State<AppState>) -> Json<serde_json::Value> {
    let (status, database) = match s.store.check().await {
        Ok(()) => ("healthy", serde_json::json!({ "readable": true })),
        Err(e) => (
            "unhealthy",
            serde_json::json!({ "readable": false, "error": e.to_string() }),
        ),
    };
    // The original's `status` words, so its checks keep working; 200 either way, because
    // the process is serving.
    Json(serde_json::json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "database": database,
    }))
}

async fn method_not_allowed(method: axum::http::Method) -> AppError {
    AppError::MethodNotAllowed {
        method: method.to_string(),
    }
}

/// Path segments arrive percent-decoded; one that does not decode to UTF-8 is the
/// client's mistake.
pub(super) fn segment<T>(path: Result<Path<T>, PathRejection>) -> Result<T, AppError> {
    path.map(|Path(v)| v)
        .map_err(|e| AppError::bad_param("path", e.body_text()))
}

/// Newest first, as the original API answered (its UI opens `models[0]`).
async fn models_list(State(s): State<AppState>) -> ApiResult<Vec<crate::model::Model>> {
    let mut models = s.store.models().await?;
    models.reverse();
    Ok(Json(models))
}

async fn runs_list(
    State(s): State<AppState>,
    model_id: Result<Path<String>, PathRejection>,
) -> ApiResult<Vec<crate::model::Run>> {
    Ok(Json(s.store.runs_with_state(&segment(model_id)?).await?))
}

/// `GET /api/runs`: every run of every model, with the runs table's columns.
async fn all_runs_list(State(s): State<AppState>) -> ApiResult<Vec<crate::model::RunRow>> {
    Ok(Json(s.store.run_rows().await?))
}

/// `GET /api/compare?runs=A,B&metrics=&max_points=&x=&start_step=&end_step=&smoothing=`.
/// The answer goes out as kept (`Store::compare_sent`): gzipped when the client accepts it.
async fn compare_get(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    use axum::http::header;
    let q = Query::parse(raw.as_deref());
    let sent = s.store.compare_sent(&compare_ask(&q)?).await?;
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            // `gzip`, unless refused with `q=0`.
            let mut parts = e.split(';').map(str::trim);
            parts.next() == Some("gzip")
                && !parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        .is_some_and(|q| q <= 0.0)
                })
        });
    let json = (header::CONTENT_TYPE, "application/json");
    let vary = (header::VARY, "accept-encoding");
    Ok(if gzip {
        ([json, vary, (header::CONTENT_ENCODING, "gzip")], sent.gzip).into_response()
    } else {
        ([json, vary], sent.json).into_response()
    })
}

/// `GET /api/compare.csv?runs=…&metric=loss_total[&max_points=][&x=][&start=&end=][&smoothing=]`:
/// one metric of the compared runs, a column per run, as a file to download.
async fn compare_csv_get(
    State(s): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    use axum::http::header;
    let q = Query::parse(raw.as_deref());
    let metric = match q.text("metric").filter(|m| !m.is_empty()) {
        None => crate::model::Metric::LossTotal,
        Some(m) => crate::model::Metric::parse(m).ok_or_else(|| {
            AppError::bad_param("metric", format!("unknown metric {m:?}; see docs/api.md"))
        })?,
    };
    comparable(&[metric], "metric")?;
    let mut ask = compare_ask(&q)?;
    ask.metrics = vec![metric];
    if !q.has("max_points") {
        ask.max_points = MAX_PAGE as usize;
    }
    let comparison = s.store.compare(&ask).await?;
    let csv = crate::analysis::compare_csv::to_csv(&comparison, metric);
    let disposition = format!("attachment; filename=\"compare-{}.csv\"", metric.name());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response())
}

/// A 400 for a metric a comparison does not offer.
fn comparable(metrics: &[crate::model::Metric], name: &'static str) -> Result<(), AppError> {
    use crate::model::COMPARABLE_METRICS;
    match metrics.iter().find(|m| !COMPARABLE_METRICS.contains(m)) {
        None => Ok(()),
        Some(m) => Err(AppError::bad_param(
            name,
            format!(
                "{} cannot be compared; these can: {}",
                m.name(),
                COMPARABLE_METRICS.map(|m| m.name()).join(", ")
            ),
        )),
    }
}

/// A comparison's parameters, each checked: the first mistake is a 400 naming it.
fn compare_ask(q: &Query) -> Result<super::compare::CompareAsk, AppError> {
    use crate::model::{CompareX, Metric};
    let runs = crate::model::parse_run_list(q.text("runs"))
        .map_err(|why| AppError::bad_param("runs", why))?;
    let metrics: Vec<Metric> = if q.text("metrics").is_some_and(|m| !m.is_empty()) {
        q.metrics("metrics")?
            .into_iter()
            .filter_map(Metric::parse)
            .collect()
    } else {
        vec![Metric::LossTotal]
    };
    comparable(&metrics, "metrics")?;
    let max_points = q.int_in("max_points", 500, 1, MAX_PAGE)? as usize;
    let x = match q.text("x").filter(|x| !x.is_empty()) {
        None => CompareX::Step,
        Some(x) => CompareX::parse(x).ok_or_else(|| {
            AppError::bad_param("x", format!("must be step, tokens or time, got {x:?}"))
        })?,
    };
    // The step range by its usual names; `start`/`end` in units of `x` for any axis.
    let step = |name| Ok::<_, AppError>(q.int(name)?.map(|v| v as f64));
    let start = q.float("start")?.or(step("start_step")?);
    let end = q.float("end")?.or(step("end_step")?);
    if let (Some(a), Some(b)) = (start, end) {
        if a > b {
            return Err(AppError::bad_param(
                "end",
                format!("the range ends ({b}) before it starts ({a})"),
            ));
        }
    }
    let smoothing = match q.float("smoothing")? {
        None => None,
        Some(w) => Some(
            crate::analysis::smoothing::checked_weight(w)
                .map_err(|why| AppError::bad_param("smoothing", why))?,
        ),
    };
    Ok(super::compare::CompareAsk {
        runs,
        metrics,
        max_points,
        x,
        start,
        end,
        smoothing,
    })
}

async fn stats_get(
    State(s): State<AppState>,
    model_id: Result<Path<String>, PathRejection>,
) -> ApiResult<crate::model::ModelStats> {
    Ok(Json(s.store.model_stats(&segment(model_id)?).await?))
}

async fn metrics_get(
    State(s): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let run_id = segment(run_id)?;
    let q = Query::parse(raw.as_deref());
    let start_step = q.start_step()?;
    let Some(max_points) = q.int("max_points")? else {
        let limit = q.int_in("limit", 1000, 1, MAX_PAGE)?;
        return Ok(Json(s.store.steps(&run_id, start_step, limit).await?).into_response());
    };
    if !(1..=MAX_PAGE).contains(&max_points) {
        return Err(AppError::bad_param(
            "max_points",
            format!("must be between 1 and {MAX_PAGE}, got {max_points}"),
        ));
    }
    q.step_range()?;
    let end_step = q.int("end_step")?;
    let metrics = q.metrics("metrics")?;
    let page = s
        .store
        .steps_downsampled(&run_id, start_step, end_step, max_points as usize, &metrics)
        .await?;
    if q.has("metrics") {
        // Only `step` and the asked-for columns: a chart's request stays small.
        return Ok(Json(SlimPage {
            page: &page,
            metrics: &metrics,
        })
        .into_response());
    }
    Ok(Json(page).into_response())
}

async fn routing_get(
    State(s): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let (kind, run_id) = segment(path)?;
    if !matches!(kind.as_str(), "mod" | "mor" | "moe") {
        return Err(AppError::NoRoute {
            path: format!(
                "/api/routing/{}/… (the kinds are mod, mor and moe)",
                kind.chars().take(40).collect::<String>()
            ),
        });
    }
    let q = Query::parse(raw.as_deref());
    let start_step = q.start_step()?;
    fn json<T: Serialize>(v: T) -> Response {
        Json(v).into_response()
    }
    if q.has("max_points") {
        let max_points = q.int_in("max_points", 1, 1, MAX_PAGE)?;
        let range = q.step_range()?;
        let r = s
            .store
            .routing_downsampled(&run_id, range, max_points as usize)
            .await?;
        let mut body = serde_json::json!({
            "run_id": run_id,
            "kind": kind,
            "max_points": max_points,
            "downsampled": true,
            "first_step": r.first_step,
            "last_step": r.last_step,
        });
        match kind.as_str() {
            "mod" => {
                body["capacity"] = serde_json::json!(r.mod_capacity);
                body["cells"] = serde_json::json!(r.mod_cells);
            }
            "mor" => {
                body["min_depth"] = serde_json::json!(r.mor_min_depth);
                body["layers"] = serde_json::json!(r.mor_depth);
                body["collapses"] = serde_json::json!(r.collapses);
                body["flickers"] = serde_json::json!(r.flickers);
                body["shares"] = serde_json::json!(r.mor_shares);
            }
            _ => {
                body["experts"] = serde_json::json!(r.moe_util);
                body["entropy"] = serde_json::json!(r.moe_entropy);
                body["divergence"] = serde_json::json!(r.moe_divergence);
            }
        }
        return Ok(json(body));
    }
    // Whole steps, every layer of each, as the original counted: default 500, at most 5000.
    let limit = q.int_in("limit", 500, 1, 5_000)? as usize;
    Ok(match kind.as_str() {
        "mod" => json(
            s.store
                .routing_steps::<RoutingMod>(&run_id, start_step, limit)
                .await?,
        ),
        "mor" => json(
            s.store
                .routing_steps::<RoutingMor>(&run_id, start_step, limit)
                .await?,
        ),
        _ => json(
            s.store
                .routing_steps::<RoutingMoe>(&run_id, start_step, limit)
                .await?,
        ),
    })
}

async fn run_get(
    State(s): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
) -> ApiResult<crate::model::RunDetail> {
    Ok(Json(s.store.run_detail(&segment(run_id)?).await?))
}

async fn milestones_get(
    State(s): State<AppState>,
    model_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<crate::model::Milestones> {
    let model_id = segment(model_id)?;
    // The original refuses intervals below 1,000.
    let interval = Query::parse(raw.as_deref()).int_in("interval", 10_000, 1_000, i64::MAX)?;
    Ok(Json(s.store.milestones(&model_id, interval).await?))
}

async fn api_not_found(uri: axum::http::Uri) -> AppError {
    let path: String = uri.path().chars().take(200).collect();
    AppError::NoRoute { path }
}

/// A downsampled page whose rows carry `step` and the asked-for metrics only (with their
/// `nonfinite` markers), written straight out rather than through a JSON tree.
struct SlimPage<'a> {
    page: &'a crate::model::DownsampledSteps,
    metrics: &'a [&'static str],
}

struct SlimRow<'a> {
    row: &'a crate::model::Step,
    metrics: &'a [&'static str],
}

impl serde::Serialize for SlimPage<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let p = self.page;
        let mut map = s.serialize_map(Some(7))?;
        map.serialize_entry("run_id", &p.run_id)?;
        map.serialize_entry("model_id", &p.model_id)?;
        map.serialize_entry("max_points", &p.max_points)?;
        map.serialize_entry("downsampled", &p.downsampled)?;
        map.serialize_entry("count", &p.count)?;
        map.serialize_entry("max_step", &p.max_step)?;
        let rows: Vec<SlimRow> = p
            .steps
            .iter()
            .map(|row| SlimRow {
                row,
                metrics: self.metrics,
            })
            .collect();
        map.serialize_entry("steps", &rows)?;
        map.end()
    }
}

impl serde::Serialize for SlimRow<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let values = self.row.metrics();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("step", &self.row.step)?;
        for m in self.metrics {
            let v = values.iter().find(|(n, _)| n == m).and_then(|(_, v)| *v);
            // NaN and ±Inf are `null` in JSON; the marker below says which.
            map.serialize_entry(m, &v.filter(|x| x.is_finite()))?;
        }
        let marks: std::collections::BTreeMap<&str, &crate::model::NonFinite> = self
            .row
            .nonfinite
            .iter()
            .filter(|(k, _)| self.metrics.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        if !marks.is_empty() {
            map.serialize_entry("nonfinite", &marks)?;
        }
        map.end()
    }
}
