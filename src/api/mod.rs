//! Server functions the page calls. Thin: each takes its arguments, calls the one store
//! that also serves REST, and maps the error.

use crate::model::Dashboard;
use leptos::prelude::*;

/// Everything the dashboard shows for a run (or the newest run of a model, or of the most
/// recently active model when neither is given).
#[server(prefix = "/_sfn")]
pub async fn get_dashboard(
    run_id: Option<String>,
    model_id: Option<String>,
) -> Result<Dashboard, ServerFnError> {
    let store = use_context::<crate::server::store::Store>()
        .ok_or_else(|| ServerFnError::new("the dashboard has no database open"))?;
    let gauges = use_context::<crate::model::GaugeSettings>().unwrap_or_default();
    store
        .dashboard(run_id.as_deref(), model_id.as_deref(), &gauges)
        .await
        .map_err(crate::server::error::AppError::into_server_error)
}
