//! Exports, `GET /api/export/{run_id}/{file}`: any series as CSV — the range at full
//! resolution, read and sent page by page so a 10-million-step run never sits in memory and
//! the trainer never waits on one long read — and any chart as SVG or PNG, drawn by the
//! same `draw` functions as the page. The URLs are in docs/api.md.

use super::error::AppError;
use super::params::Query;
use super::rest::segment;
use super::source::RoutingTable;
use super::store::{Store, MAX_PAGE};
use super::AppState;
use crate::charts::spec::ChartSpec;
use crate::charts::{View, XAxis};
use crate::model::{RoutingMod, RoutingMoe, RoutingMor, Step};
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;

/// The charts that export, by the ids the page uses.
pub const CHARTS: [&str; 7] = ["loss", "lr", "grad", "gauges", "mod", "mor", "moe"];

/// The largest chart an export draws, per side: a poster, not a memory bomb.
const MAX_SIDE: i64 = 4096;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/export/{run_id}/{file}", get(export))
}

async fn export(
    State(s): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let (run_id, file) = segment(path)?;
    let q = Query::parse(raw.as_deref());
    let asked = q.step_range()?;
    let range = asked.unwrap_or((i64::MIN, i64::MAX));
    let (name, kind) = file.rsplit_once('.').unwrap_or((file.as_str(), ""));
    match (name, kind) {
        ("steps", "csv") => {
            let metrics = q.metrics("metrics")?;
            steps_csv(s.store, run_id, range, metrics).await
        }
        ("mod", "csv") => routing_csv::<RoutingMod>(s.store, run_id, range).await,
        ("mor", "csv") => routing_csv::<RoutingMor>(s.store, run_id, range).await,
        ("moe", "csv") => routing_csv::<RoutingMoe>(s.store, run_id, range).await,
        ("eval", "csv") => eval_csv(s.store, run_id, range).await,
        (chart, "svg" | "png") if CHARTS.contains(&chart) => {
            chart_file(&s, &run_id, chart, kind, asked, &q).await
        }
        _ => {
            let shown: String = file.chars().take(60).collect();
            Err(AppError::bad_param(
                "file",
                format!(
                    "no export {shown:?}; there are steps.csv, mod.csv, mor.csv, moe.csv, \
                     eval.csv, and \
                     {{chart}}.svg or {{chart}}.png for the charts {}",
                    CHARTS.join(", ")
                ),
            ))
        }
    }
}

/// One chart of the run (of `range`, at a zoom's detail) as an SVG or PNG file.
async fn chart_file(
    s: &AppState,
    run_id: &str,
    chart: &str,
    kind: &str,
    range: Option<(i64, i64)>,
    q: &Query,
) -> Result<Response, AppError> {
    let data = super::snapshot::freeze(&s.store, Some(run_id), range, &s.gauges).await?;
    let spec = ChartSpec::of(chart, &data).unwrap_or_default();
    let (w, h) = spec.size();
    let width = q.int_in("width", w as i64, 64, MAX_SIDE)? as u32;
    let height = q.int_in("height", h as i64, 64, MAX_SIDE)? as u32;
    let view = View {
        range: None,
        log_y: matches!(q.text("log"), Some("1" | "true" | "yes" | "on")),
        x_axis: XAxis::ALL
            .into_iter()
            .find(|a| Some(a.name()) == q.text("x"))
            .unwrap_or_default(),
    };
    let filename = format!("{}-{chart}.{kind}", file_stem(run_id));
    let (mime, body) = match kind {
        "svg" => (
            "image/svg+xml",
            crate::charts::to_svg(width, height, |root| spec.draw(root, &view)).into_bytes(),
        ),
        _ => {
            let png = crate::charts::png::to_png(width, height, |root| spec.draw(root, &view))
                .map_err(|why| {
                    tracing::error!("{chart} PNG: {why}");
                    AppError::Busy
                })?;
            ("image/png", png)
        }
    };
    Ok(download(mime, &filename, Body::from(body)))
}

/// A response the browser saves as `filename`.
fn download(mime: &'static str, filename: &str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// A run id as a file name: anything beyond letters, digits, `-`, `_` and `.` becomes `_`.
fn file_stem(run_id: &str) -> String {
    run_id
        .chars()
        .take(100)
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

/// `steps.csv`: `step,timestamp,` and the asked-for metrics, one row per logged step.
/// NaN and ±Inf are written as `NaN`, `inf`, `-inf` (what pandas and numpy read back).
async fn steps_csv(
    store: Store,
    run_id: String,
    range: (i64, i64),
    metrics: Vec<&'static str>,
) -> Result<Response, AppError> {
    // The first page before answering: a wrong run is a 404, not an empty file.
    let first = store.steps(&run_id, Some(range.0), MAX_PAGE).await?;
    let mut head = String::from("step,timestamp");
    for m in &metrics {
        head.push(',');
        head.push_str(m);
    }
    head.push('\n');
    let positions: Vec<Option<usize>> = metrics
        .iter()
        .map(|m| crate::model::metric_position(m))
        .collect();
    let rows = move |page: &[Step], out: &mut String| {
        for step in page.iter().filter(|s| s.step <= range.1) {
            let _ = write!(out, "{},", step.step);
            field(out, step.timestamp.as_deref().unwrap_or(""));
            let values = step.metrics();
            for (m, at) in metrics.iter().zip(&positions) {
                out.push(',');
                let value = at.and_then(|i| values[i].1);
                match (value, step.nonfinite.get(*m)) {
                    (Some(v), _) => {
                        let _ = write!(out, "{v}");
                    }
                    (None, Some(mark)) => out.push_str(match mark {
                        crate::model::NonFinite::Nan => "NaN",
                        crate::model::NonFinite::Inf => "inf",
                        crate::model::NonFinite::NegInf => "-inf",
                    }),
                    (None, None) => {}
                }
            }
            out.push('\n');
        }
    };
    let mut chunk = head;
    rows(&first.steps, &mut chunk);
    let page = move |from| -> CsvPage {
        let (store, run_id, rows) = (store.clone(), run_id.clone(), rows.clone());
        Box::pin(async move {
            let page = store.steps(&run_id, Some(from), MAX_PAGE).await?;
            let mut chunk = String::new();
            rows(&page.steps, &mut chunk);
            Ok((chunk, page.next_start_step))
        })
    };
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("{}-steps.csv", file_stem(&first.run_id)),
        csv_body(chunk, first.next_start_step, range.1, page),
    ))
}

/// A page of CSV text and where the next page starts.
type CsvPage = futures::future::BoxFuture<'static, Result<(String, Option<i64>), AppError>>;

/// A CSV body: `first`, then page after page read by `page` from `cursor` on, until the
/// cursor passes `end`. Each page is one short read, so the trainer never waits on an export.
fn csv_body(
    first: String,
    cursor: Option<i64>,
    end: i64,
    page: impl Fn(i64) -> CsvPage + Send + Sync + 'static,
) -> Body {
    let within = move |c: Option<i64>| c.filter(|n| *n <= end);
    let page = std::sync::Arc::new(page);
    let stream = futures::stream::unfold((Some(first), within(cursor)), move |(ready, cursor)| {
        let page = page.clone();
        async move {
            if let Some(chunk) = ready {
                return Some((Ok(Bytes::from(chunk)), (None, cursor)));
            }
            match page(cursor?).await {
                Ok((chunk, next)) => Some((Ok(Bytes::from(chunk)), (None, within(next)))),
                // Breaking the stream tells the client the file is incomplete, rather
                // than letting a short file pass for the whole run.
                Err(e) => {
                    e.log();
                    Some((Err(std::io::Error::other(e.to_string())), (None, None)))
                }
            }
        }
    });
    // Fused: a body wrapper may ask again after the end (the compression layer does), and
    // an unfold stream panics when polled past it.
    Body::from_stream(futures::StreamExt::fuse(stream))
}

/// A routing table's rows as CSV.
trait RoutingCsv: RoutingTable + Send + 'static {
    /// The file's name without `.csv`.
    const NAME: &'static str;
    const HEADER: &'static str;
    /// The row after its step: its layer (MoD and MoR rows have one), its numbers, and its
    /// status (MoD and MoR).
    fn fields(&self) -> (Option<i64>, Vec<Option<f64>>, Option<Option<&str>>);

    fn write(&self, out: &mut String) {
        let (layer, numbers, status) = self.fields();
        let _ = write!(out, "{}", self.step());
        if let Some(layer) = layer {
            let _ = write!(out, ",{layer}");
        }
        for v in numbers {
            number(out, v);
        }
        if let Some(status) = status {
            out.push(',');
            field(out, status.unwrap_or(""));
        }
        out.push('\n');
    }
}

impl RoutingCsv for RoutingMod {
    const NAME: &'static str = "mod";
    const HEADER: &'static str =
        "step,layer,selected_frac,compute_savings_pct,probs_mean,probs_std,status\n";
    fn fields(&self) -> (Option<i64>, Vec<Option<f64>>, Option<Option<&str>>) {
        let numbers = vec![
            self.selected_frac,
            self.compute_savings_pct,
            self.probs_mean,
            self.probs_std,
        ];
        (Some(self.layer), numbers, Some(self.status.as_deref()))
    }
}

impl RoutingCsv for RoutingMor {
    const NAME: &'static str = "mor";
    const HEADER: &'static str = "step,layer,avg_depth,expected_depth,router_probs_mean,status\n";
    fn fields(&self) -> (Option<i64>, Vec<Option<f64>>, Option<Option<&str>>) {
        let numbers = vec![self.avg_depth, self.expected_depth, self.router_probs_mean];
        (Some(self.layer), numbers, Some(self.status.as_deref()))
    }
}

impl RoutingCsv for RoutingMoe {
    const NAME: &'static str = "moe";
    const HEADER: &'static str = "step,entropy,divergence,util_expert_0,util_expert_1,\
                                  util_expert_2,util_expert_3\n";
    fn fields(&self) -> (Option<i64>, Vec<Option<f64>>, Option<Option<&str>>) {
        let numbers = vec![
            self.entropy,
            self.divergence,
            self.util_expert_0,
            self.util_expert_1,
            self.util_expert_2,
            self.util_expert_3,
        ];
        (None, numbers, None)
    }
}

/// `mod.csv`, `mor.csv`, `moe.csv`: the routing rows of the range, paged like the steps.
async fn routing_csv<T: RoutingCsv>(
    store: Store,
    run_id: String,
    range: (i64, i64),
) -> Result<Response, AppError> {
    // Checks the run first: its routing tables may be empty or absent, the run may not be.
    let run = store.run(&run_id).await?;
    let first = store.routing::<T>(&run_id, Some(range.0), MAX_PAGE).await?;
    let (first, cursor) = (first.data, first.next_start_step);
    let rows = move |page: &[T], out: &mut String| {
        for row in page.iter().filter(|r| r.step() <= range.1) {
            row.write(out);
        }
    };
    let mut chunk = String::from(T::HEADER);
    rows(&first, &mut chunk);
    let page = move |from| -> CsvPage {
        let (store, run_id) = (store.clone(), run_id.clone());
        Box::pin(async move {
            let page = store.routing::<T>(&run_id, Some(from), MAX_PAGE).await?;
            let mut chunk = String::new();
            rows(&page.data, &mut chunk);
            Ok((chunk, page.next_start_step))
        })
    };
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("{}-{}.csv", file_stem(&run.run_id), T::NAME),
        csv_body(chunk, cursor, range.1, page),
    ))
}

/// `eval.csv`: `step,eval_loss,train_loss`, then a column per eval component (by name,
/// empty where an evaluation lacks it). Evaluations are few: one body.
async fn eval_csv(store: Store, run_id: String, range: (i64, i64)) -> Result<Response, AppError> {
    let page = store.evals(&run_id).await?;
    let points: Vec<_> = page
        .points
        .iter()
        .filter(|p| (range.0..=range.1).contains(&p.step))
        .collect();
    let mut names: Vec<&String> = points.iter().flat_map(|p| p.components.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = String::from("step,eval_loss,train_loss");
    for name in &names {
        out.push(',');
        field(&mut out, name);
    }
    out.push('\n');
    for p in points {
        let _ = write!(out, "{}", p.step);
        number(&mut out, Some(p.eval_loss));
        number(&mut out, p.train_loss);
        for name in &names {
            number(&mut out, p.components.get(*name).copied());
        }
        out.push('\n');
    }
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("{}-eval.csv", file_stem(&page.run_id)),
        Body::from(out),
    ))
}

/// `,` and the value (empty when missing; `NaN`/`inf` as Rust writes them).
fn number(out: &mut String, v: Option<f64>) {
    out.push(',');
    if let Some(v) = v {
        let _ = write!(out, "{v}");
    }
}

/// A text field, quoted when it holds a comma, quote or line break (RFC 4180).
fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        field(&mut out, "ok");
        out.push('|');
        field(&mut out, "collapsed, layer 3");
        out.push('|');
        field(&mut out, "say \"hi\"");
        assert_eq!(out, "ok|\"collapsed, layer 3\"|\"say \"\"hi\"\"\"");
    }

    #[test]
    fn run_ids_become_safe_file_names() {
        assert_eq!(file_stem("500m_2026.01"), "500m_2026.01");
        assert_eq!(file_stem("a/../b\"c"), "a_.._b_c");
    }
}
