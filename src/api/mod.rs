//! Server functions the page calls. Thin: each takes its arguments, calls the one store
//! that also serves REST, and maps the error.

use crate::model::{Dashboard, ZoomCharts};
use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};

/// How a resource's data travels inside the page for hydration: JSON, as with Leptos'
/// default, but read from bytes the way server functions read their answers, so each
/// type's deserializer is compiled into the browser's WASM once rather than twice.
pub struct Json;

impl<T: serde::Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: serde::de::DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// Everything the dashboard shows for a run (or the newest run of a model, or of the most
/// recently active model when neither is given). With `lineage`, the charts show all of
/// the model's runs end to end.
#[server(prefix = "/_sfn")]
pub async fn get_dashboard(
    run_id: Option<String>,
    model_id: Option<String>,
    lineage: bool,
) -> Result<Dashboard, ServerFnError> {
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    let gauges = use_context::<crate::model::GaugeSettings>().unwrap_or_default();
    let dashboard = match (&model_id, lineage) {
        (Some(model), true) => store.lineage_dashboard(model, &gauges).await,
        _ => {
            store
                .dashboard(run_id.as_deref(), model_id.as_deref(), &gauges)
                .await
        }
    };
    let mut dashboard = dashboard.map_err(crate::server::error::AppError::into_server_error)?;
    if let (Some(alerts), Some(charts)) = (
        use_context::<crate::server::alerts::Alerts>(),
        dashboard.charts.as_mut(),
    ) {
        let runs: Vec<&str> = match (lineage, &dashboard.run) {
            (false, Some(run)) => vec![run.run_id.as_str()],
            _ => dashboard.runs.iter().map(|r| r.run_id.as_str()).collect(),
        };
        charts.alerts = alerts.marks(&runs);
    }
    Ok(dashboard)
}

/// Every run's alerts, newest first, with how many are open: the header's bell.
#[server(prefix = "/_sfn")]
pub async fn get_alerts() -> Result<crate::model::AlertList, ServerFnError> {
    let alerts = use_context::<crate::server::alerts::Alerts>()
        .ok_or_else(|| ServerFnError::new("this dashboard watches no runs"))?;
    let mut list = alerts.list(&Default::default());
    // The bell's panel: every open one, and the newest of the rest.
    let mut resolved = 0;
    list.alerts.retain(|a| {
        a.is_open() || {
            resolved += 1;
            resolved <= BELL_RESOLVED
        }
    });
    Ok(list)
}

/// Resolved or informational alerts the bell's panel lists besides the open ones.
pub const BELL_RESOLVED: usize = 30;

/// The charts' data for steps `start_step..=end_step` of a run (or of the whole lineage of
/// the model `lineage`), for a zoom.
#[server(prefix = "/_sfn")]
pub async fn get_zoom_charts(
    run_id: String,
    start_step: i64,
    end_step: i64,
    lineage: Option<String>,
) -> Result<ZoomCharts, ServerFnError> {
    use crate::server::error::AppError;
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    crate::model::step_range(Some(start_step), Some(end_step))
        .map_err(|why| AppError::bad_param("end_step", why).into_server_error())?;
    let Some(model) = lineage else {
        return store
            .zoom(&run_id, start_step, end_step)
            .await
            .map_err(AppError::into_server_error);
    };
    let (run, routing) = store
        .lineage(&model, Some((start_step, end_step)))
        .await
        .map_err(AppError::into_server_error)?;
    Ok(ZoomCharts {
        run_id,
        range: (start_step, end_step),
        run,
        routing,
    })
}

/// A run's loss smoothed by `weight` (0–0.999) over every step, at the steps its loss chart
/// shows for `range` (the whole run when `None`): the dashboard's smoothing slider. With
/// `lineage`, that model's runs end to end, each smoothed over its own steps.
#[server(prefix = "/_sfn")]
pub async fn get_smoothed_loss(
    run_id: String,
    range: Option<(i64, i64)>,
    weight: f64,
    lineage: Option<String>,
) -> Result<crate::model::SmoothedLoss, ServerFnError> {
    use crate::server::error::AppError;
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    let weight = crate::analysis::smoothing::checked_weight(weight)
        .map_err(|why| AppError::bad_param("weight", why).into_server_error())?;
    if let Some((a, b)) = range {
        crate::model::step_range(Some(a), Some(b))
            .map_err(|why| AppError::bad_param("range", why).into_server_error())?;
    }
    let smoothed = match lineage {
        Some(model) => store.lineage_smoothed_loss(&model, range, weight).await,
        None => store.smoothed_loss(&run_id, range, weight).await,
    };
    smoothed.map_err(AppError::into_server_error)
}

/// Freezes the view the person is looking at into a shared snapshot; the link to it.
#[server(prefix = "/_sfn")]
pub async fn share_view(
    request: crate::model::ShareRequest,
) -> Result<crate::model::SharedLink, ServerFnError> {
    use crate::server::error::AppError;
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    let shares = use_context::<crate::server::share::Shares>()
        .ok_or_else(|| ServerFnError::new("this dashboard does not keep snapshots"))?;
    let gauges = use_context::<crate::model::GaugeSettings>().unwrap_or_default();
    shares
        .create(&store, &gauges, request)
        .await
        .map_err(AppError::into_server_error)
}

/// Every run of every model, with the runs table's columns.
#[server(prefix = "/_sfn")]
pub async fn get_runs() -> Result<Vec<crate::model::RunRow>, ServerFnError> {
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    store
        .run_rows()
        .await
        .map_err(crate::server::error::AppError::into_server_error)
}

/// The compare page's data for `runs` (comma-separated ids) on axis `x`, over `start..=end`
/// (in units of `x`) when zoomed, smoothed by `smoothing` when asked.
#[server(prefix = "/_sfn")]
pub async fn get_compare(
    runs: String,
    x: String,
    smoothing: Option<f64>,
    start: Option<f64>,
    end: Option<f64>,
) -> Result<crate::model::CompareView, ServerFnError> {
    use crate::model::CompareX;
    use crate::server::error::AppError;
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    let bad = |name, why: String| AppError::bad_param(name, why).into_server_error();
    let smoothing = match smoothing {
        None => None,
        Some(w) => Some(
            crate::analysis::smoothing::checked_weight(w).map_err(|why| bad("smoothing", why))?,
        ),
    };
    let ask = crate::server::compare::CompareAsk::page(
        crate::model::parse_run_list([runs.as_str()]).map_err(|why| bad("runs", why))?,
        CompareX::parse(&x).ok_or_else(|| bad("x", format!("no axis {x:?}")))?,
        smoothing,
        start,
        end,
    );
    store
        .compare_view(&ask)
        .await
        .map_err(AppError::into_server_error)
}
