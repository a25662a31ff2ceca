//! The header: brand, model and run selectors, and whether the run is still training.

use crate::analysis::format::{path_segment, thousands};
use crate::components::alerts::AlertBell;
use crate::components::live::{LiveFeed, LiveIndicator};
use crate::components::share::{run_view, ShareButton};
use crate::model::{Dashboard, Run};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

#[component]
pub fn Header(
    data: Dashboard,
    /// The live feed, while the run trains.
    #[prop(optional)]
    feed: Option<LiveFeed>,
    /// The charts show the model's whole lineage.
    #[prop(optional)]
    lineage: bool,
) -> impl IntoView {
    let navigate = use_navigate();
    let current_model = data.model.as_ref().map(|m| m.model_id.clone());
    let current_run = data.run.as_ref().map(|r| r.run_id.clone());
    let latest_runs: Vec<(String, Option<String>)> = data
        .models
        .iter()
        .map(|c| (c.model.model_id.clone(), c.latest_run_id.clone()))
        .collect();

    let go = navigate.clone();
    let on_model = move |ev: leptos::ev::Event| {
        let model_id = event_target_value(&ev);
        let target = match latest_runs.iter().find(|(m, _)| *m == model_id) {
            Some((_, Some(run_id))) => format!("/run/{}", path_segment(run_id)),
            _ => format!("/?model={}", path_segment(&model_id)),
        };
        go(&target, Default::default());
    };
    let lineage_of = current_model.clone();
    let on_run = move |ev: leptos::ev::Event| {
        let run_id = event_target_value(&ev);
        let target = match (run_id.as_str(), &lineage_of) {
            (LINEAGE, Some(model)) => format!("/model/{}", path_segment(model)),
            _ => format!("/run/{}", path_segment(&run_id)),
        };
        navigate(&target, Default::default());
    };
    let resumed = data.runs.len() > 1;

    let live = data.is_live();
    let newest = data.runs.last().map(|r| r.run_id.clone());
    let status = data.run.as_ref().map(|r| {
        if let Some(state) = r.state {
            // Judged from evidence by the server.
            let class = match state {
                crate::model::TrainingState::Training => "badge running",
                crate::model::TrainingState::Crashed => "badge crashed",
                crate::model::TrainingState::Stalled => "badge stalled",
                _ => "badge finished",
            };
            let dot = if live { "● " } else { "" };
            return view! { <span class=class data-state=state.word()>{format!("{dot}{}", state.word())}</span> }
                .into_any();
        }
        if live {
            view! { <span class="badge running" title="end_time not written yet">"● training"</span> }
                .into_any()
        } else if r.is_running() {
            view! { <span class="badge finished" title="no end_time, but a later run resumed">"stopped"</span> }
                .into_any()
        } else {
            view! { <span class="badge finished">"finished"</span> }.into_any()
        }
    });

    view! {
        <header class="header">
            {if super::standalone() {
                view! { <span class="brand">"HYDRA"<span class="brand-sub">" training"</span></span> }.into_any()
            } else {
                view! { <a class="brand" href="/">"HYDRA"<span class="brand-sub">" training"</span></a> }.into_any()
            }}
            <label class="selector">
                <span>"Model"</span>
                <select id="model-select" on:change=on_model disabled=data.models.is_empty()>
                    {data
                        .models
                        .iter()
                        .map(|c| {
                            let id = c.model.model_id.clone();
                            let selected = current_model.as_deref() == Some(id.as_str());
                            let label = match &c.model.name {
                                Some(name) if name != &id => format!("{id} — {name}"),
                                _ => id.clone(),
                            };
                            view! { <option value=id selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="selector">
                <span>"Run"</span>
                <select id="run-select" on:change=on_run disabled=data.runs.is_empty()>
                    {resumed.then(|| view! {
                        <option value=LINEAGE selected=lineage>
                            {format!("all {} runs, end to end", data.runs.len())}
                        </option>
                    })}
                    {data
                        .runs
                        .iter()
                        .enumerate()
                        .map(|(i, r)| {
                            let selected = !lineage && current_run.as_deref() == Some(r.run_id.as_str());
                            view! {
                                <option value=r.run_id.clone() selected=selected>
                                    {run_label(i, r, newest.as_deref() == Some(r.run_id.as_str()))}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            {status}
            {feed.filter(|_| live).map(|feed| view! { <LiveIndicator feed/> })}
            {current_run.clone().map(|run_id| view! { <ShareButton request=run_view(run_id)/> })}
            {(!super::frozen()).then(|| view! { <AlertBell/> })}
            {(!super::standalone()).then(|| view! { <a class="header-link" href="/runs" title="every run; tick some to compare">"runs"</a> })}
        </header>
    }
    .into_any()
}

/// The run selector's value for "the whole lineage" (no run id is empty).
const LINEAGE: &str = "";

/// `#2 500m_20260109_144733 · from step 10,000 · training`.
fn run_label(index: usize, run: &Run, newest: bool) -> String {
    let mut label = format!("#{} {}", index + 1, run.run_id);
    if let Some(start) = run.start_step {
        label.push_str(&format!(" · from step {}", thousands(start)));
    }
    match run.state {
        Some(state) => {
            label.push_str(" · ");
            label.push_str(state.word());
        }
        None if run.is_running() && newest => label.push_str(" · training"),
        None => {}
    }
    label
}
