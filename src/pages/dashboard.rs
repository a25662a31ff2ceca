//! The dashboard of one run: `/` (the newest run of the most recently active model, or of
//! `?model=`) and `/run/{run_id}`; and `/model/{model_id}`, a model's runs as one lineage.

use crate::analysis::format::decode_path_segment;
use crate::api::{get_dashboard, get_zoom_charts};
use crate::components::cards::StatsCards;
use crate::components::chart::SharedView;
use crate::components::header::Header;
use crate::components::live::use_live_feed;
use crate::components::panels::ChartPanels;
use crate::components::sidebar::Sidebar;
use crate::components::steps_table::RecentSteps;
use crate::model::Dashboard;
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

/// Bumping it reads the shown run again.
#[derive(Clone, Copy)]
struct Reload(RwSignal<u64>);

/// The run a page shows and the zoom its link asked for: either changing starts the view afresh.
type ShownAs = (Option<String>, Option<(i64, i64)>);

#[component]
pub fn DashboardPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    // An id from the path, percent-decoded; an empty one is none.
    let segment = move |name: &str| {
        params
            .read()
            .get(name)
            .filter(|id| !id.is_empty())
            .map(|id| decode_path_segment(&id))
    };
    let run_id = move || segment("run_id");
    // `/model/{model_id}`: the lineage of that model.
    let lineage = move || segment("model_id");
    let model_id =
        move || lineage().or_else(|| query.read().get("model").filter(|id| !id.is_empty()));
    let refresh = RwSignal::new(0_u64);
    // One zoom and scale for every chart, kept across re-reads; a different run (or link) starts
    // fresh.
    let shared = SharedView::new();
    // `?start=&end=`: a link (an alert's) opens the charts zoomed to those steps.
    let linked_zoom = move || {
        query.with(|q| {
            let step = |name| q.get(name).and_then(|v| v.trim().parse::<i64>().ok());
            step("start").zip(step("end")).filter(|(a, b)| a < b)
        })
    };
    shared.range.set(untrack(linked_zoom));
    // `?smoothing=W`: the slider's weight, as a link (or the slider, see `SmoothingSlider`)
    // left it.
    let linked_weight = query.with_untracked(|q| {
        q.get("smoothing")
            .and_then(|s| crate::analysis::smoothing::linked_weight(&s))
    });
    shared.smoothing.set(linked_weight.unwrap_or(0.0));
    provide_context(shared);
    Effect::new(move |previous: Option<ShownAs>| {
        let current = (run_id(), linked_zoom());
        if previous.is_some_and(|p| p != current) {
            shared.range.set(current.1);
        }
        current
    });
    let data: Resource<_, crate::api::Json> = Resource::new_with_options(
        move || (run_id(), model_id(), lineage().is_some(), refresh.get()),
        |(run_id, model_id, lineage, _)| get_dashboard(run_id, model_id, lineage),
        false,
    );

    // A zoom asks the server for that range at full detail; an answer for a range that is
    // no longer shown is dropped.
    Effect::new(move |_| {
        let range = shared.range.get();
        let run = data.with(|d| match d {
            Some(Ok(d)) => d.run.as_ref().map(|r| r.run_id.clone()),
            _ => None,
        });
        let of_lineage = lineage();
        match (range, run) {
            (Some((start, end)), Some(run_id)) => {
                leptos::task::spawn_local(async move {
                    if let Ok(zoom) = get_zoom_charts(run_id, start, end, of_lineage).await {
                        if shared.range.get_untracked() == Some(zoom.range) {
                            shared.detail.set(Some(zoom));
                        }
                    }
                });
            }
            _ => shared.detail.set(None),
        }
    });

    // The live feed asks for a fresh read when the trainer re-logged steps already drawn.
    provide_context(Reload(refresh));

    view! {
        <Transition fallback=|| view! { <div class="empty-state">"Loading the run…"</div> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! { <DashboardView data=d lineage=lineage().is_some()/> }.into_any(),
                    Err(e) => {
                        view! { <ErrorState message=super::server_message(&e) retry=refresh/> }
                            .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
pub fn DashboardView(
    data: Dashboard,
    /// The charts show all of the model's runs end to end.
    #[prop(optional)]
    lineage: bool,
) -> impl IntoView {
    // What the page shows now: the loaded data, extended in place by the live feed.
    let current = RwSignal::new(data.clone());
    let reload = use_context::<Reload>().map_or_else(|| RwSignal::new(0), |r| r.0);
    let feed = use_live_feed(current, reload);
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
        (Some(_), Some(_)) => {
            let recent = move || current.with(|d| view! { <RecentSteps steps=d.recent_steps.clone()/> });
            let of_lineage = data.model.as_ref().filter(|_| lineage).map(|m| m.model_id.clone());
            follow_smoothing(current, of_lineage);
            view! {
                <StatsCards data=current.into()/>
                <ChartPanels data=current.into() smoothing=true/>
                {recent}
            }
            .into_any()
        }
    };
    view! {
        <div class="app">
            <Header data=data.clone() feed lineage/>
            <div class="layout">
                <main class="content">{body}</main>
                <Sidebar data=data/>
            </div>
        </div>
    }
    .into_any()
}

/// How long the smoothed loss may lag the live feed before it is asked for again: each ask
/// smooths every step of the run on the server (a few milliseconds for a million).
const SMOOTHED_LAG_MS: f64 = 2_000.0;

/// Keeps the smoothed loss current: asked for when the slider moves or the zoom changes, and
/// again as the live feed adds steps, at most every [`SMOOTHED_LAG_MS`]. An answer for
/// another weight or range than the one shown by then is kept but not drawn. `lineage`: the
/// model whose runs the charts show end to end.
fn follow_smoothing(current: RwSignal<Dashboard>, lineage: Option<String>) {
    let shared = use_context::<SharedView>().unwrap_or_default();
    let asked = StoredValue::new((f64::NAN, None::<(i64, i64)>, 0.0_f64));
    Effect::new(move |_| {
        let weight = shared.smoothing.get();
        let range = shared.range.get();
        // Read whole, so every step the live feed adds is seen here.
        let run_id = current.with(|d| d.run.as_ref().map(|r| r.run_id.clone()));
        let Some(run_id) = run_id.filter(|_| weight > 0.0) else {
            return;
        };
        let now = crate::components::now_ms();
        let (was_weight, was_range, at) = asked.get_value();
        let moved = was_weight != weight || was_range != range;
        // Only the live feed moved it: wait out the lag.
        if !moved && now - at < SMOOTHED_LAG_MS {
            return;
        }
        asked.set_value((weight, range, now));
        let lineage = lineage.clone();
        leptos::task::spawn_local(async move {
            if let Ok(s) = crate::api::get_smoothed_loss(run_id, range, weight, lineage).await {
                shared.smoothed.set(Some(s));
            }
        });
    });
}

/// How often a page showing an error asks again: a missing, busy or replaced file is
/// usually fixed by the trainer within seconds, and nobody should have to reload.
const RETRY_MS: u64 = 3_000;

#[component]
fn ErrorState(
    message: String,
    /// Bumped to read the run again while the error lasts.
    #[prop(optional)]
    retry: Option<RwSignal<u64>>,
) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    if let Some(refresh) = retry {
        if let Ok(handle) = set_interval_with_handle(
            move || refresh.update(|n| *n += 1),
            std::time::Duration::from_millis(RETRY_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (retry, RETRY_MS);
    view! {
        <div class="app">
            <header class="header">
                <a class="brand" href="/">"HYDRA"</a>
            </header>
            <div class="empty-state error" role="alert">
                <h2>"Cannot show this"</h2>
                <p class="error-message">{message}</p>
                {retry.map(|_| view! { <p class="muted">"Trying again every few seconds."</p> })}
                <p><a href="/">"Go to the newest run"</a></p>
            </div>
        </div>
    }
}
