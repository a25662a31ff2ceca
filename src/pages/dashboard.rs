//! The dashboard of one run: `/` (the newest run of the most recently active model, or of
//! `?model=`) and `/run/{run_id}`.

use crate::analysis::format::decode_path_segment;
use crate::api::{get_dashboard, get_zoom_charts};
use crate::components::cards::StatsCards;
use crate::components::chart::SharedView;
use crate::components::header::Header;
use crate::components::panels::ChartPanels;
use crate::components::sidebar::Sidebar;
use crate::components::steps_table::RecentSteps;
use crate::model::Dashboard;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

/// How often an open page re-reads a run that is still training. The live feed (WebSocket)
/// will replace this polling.
const REFRESH: Duration = Duration::from_secs(5);

#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let run_id = move || {
        params
            .read()
            .get("run_id")
            .filter(|id| !id.is_empty())
            .map(|id| decode_path_segment(&id))
    };
    let model_id = move || query.read().get("model").filter(|id| !id.is_empty());
    let refresh = RwSignal::new(0_u64);
    // One zoom and scale for every chart, kept across re-reads; a different run starts fresh.
    let shared = SharedView::new();
    provide_context(shared);
    Effect::new(move |previous: Option<Option<String>>| {
        let current = run_id();
        if previous.is_some_and(|p| p != current) {
            shared.range.set(None);
        }
        current
    });
    let data = Resource::new(
        move || (run_id(), model_id(), refresh.get()),
        |(run_id, model_id, _)| get_dashboard(run_id, model_id),
    );

    // A zoom asks the server for that range at full detail; an answer for a range that is
    // no longer shown is dropped.
    Effect::new(move |_| {
        let range = shared.range.get();
        let run = data.with(|d| match d {
            Some(Ok(d)) => d.run.as_ref().map(|r| r.run_id.clone()),
            _ => None,
        });
        match (range, run) {
            (Some((start, end)), Some(run_id)) => {
                leptos::task::spawn_local(async move {
                    if let Ok(zoom) = get_zoom_charts(run_id, start, end).await {
                        if shared.range.get_untracked() == Some(zoom.range) {
                            shared.detail.set(Some(zoom));
                        }
                    }
                });
            }
            _ => shared.detail.set(None),
        }
    });

    // Effects run only in the browser: re-read while the shown run is still training.
    Effect::new(move |_| {
        let handle = set_interval_with_handle(
            move || {
                let running = data.with_untracked(
                    |d| matches!(d, Some(Ok(d)) if d.run.as_ref().is_some_and(|r| r.is_running())),
                );
                if running {
                    refresh.update(|n| *n += 1);
                }
            },
            REFRESH,
        )
        .ok();
        on_cleanup(move || {
            if let Some(h) = handle {
                h.clear();
            }
        });
    });

    view! {
        <Transition fallback=|| view! { <div class="empty-state">"Loading the run…"</div> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <DashboardView data=d/> }.into_any(),
                    Err(e) => view! { <ErrorState message=server_message(&e)/> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The message a person should read, without the framework's wrapping.
fn server_message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[component]
fn DashboardView(data: Dashboard) -> impl IntoView {
    let body = match (&data.model, &data.run) {
        (None, _) => view! {
            <div class="empty-state">
                <h2>"No models in this database yet"</h2>
                <p>"The trainer writes its first rows when training starts; this page fills in then."</p>
            </div>
        }
        .into_any(),
        (Some(model), None) => view! {
            <div class="empty-state">
                <h2>{format!("Model {} has no runs yet", model.model_id)}</h2>
                <p>"A run appears here as soon as the trainer starts one."</p>
            </div>
        }
        .into_any(),
        (Some(_), Some(run)) => {
            let summary = data.summary.clone().unwrap_or_default();
            view! {
                <StatsCards run=run.clone() summary=summary.clone() live=data.is_live()/>
                <ChartPanels
                    recent=data.recent_steps.clone()
                    charts=data.charts.clone()
                    routing=data.routing.clone()
                    gauges=data.gauges.clone()
                />
                <RecentSteps steps=data.recent_steps.clone()/>
            }
            .into_any()
        }
    };
    view! {
        <div class="app">
            <Header data=data.clone()/>
            <div class="layout">
                <main class="content">{body}</main>
                <Sidebar data=data/>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn ErrorState(message: String) -> impl IntoView {
    view! {
        <div class="app">
            <header class="header">
                <a class="brand" href="/">"HYDRA"</a>
            </header>
            <div class="empty-state error" role="alert">
                <h2>"Cannot show this"</h2>
                <p class="error-message">{message}</p>
                <p><a href="/">"Go to the newest run"</a></p>
            </div>
        </div>
    }
}
