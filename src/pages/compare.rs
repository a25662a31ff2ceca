//! `/compare?runs=A,B,…`: up to twenty runs side by side — loss (with eval), learning rate,
//! gradient norm, throughput and VRAM, a colour per run, one toggle per run in the legend,
//! x by step, tokens or time since each run's start, smoothing computed on the server over
//! every step (`s` focuses the slider), drag to zoom (the server sends every run's detail),
//! log scale; then the config keys that differ and the runs' table rows.

use crate::analysis::format::{duration, listed, path_segment, thousands};
use crate::api::get_compare;
use crate::charts::compare::{run_css, run_dash, CompareChart};
use crate::charts::spec::ChartSpec;
use crate::components::chart::{Chart, LogScaleToggle, SharedView, SmoothingSlider};
use crate::components::share::ShareButton;
use crate::model::{
    CompareView, CompareX, ConfigRow, Metric, RoutingHealth, ShareRequest, COMPARED_METRICS,
};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// TensorBoard's default.
const DEFAULT_SMOOTHING: f64 = 0.6;

#[component]
pub fn ComparePage() -> impl IntoView {
    let query = use_query_map();
    // `runs=A,B` or `runs=A&runs=B` (the runs table's form without JavaScript).
    let runs = move || query.read().get_all("runs").unwrap_or_default().join(",");
    let initial = query.read_untracked();
    let x = RwSignal::new(
        initial
            .get("x")
            .and_then(|x| CompareX::parse(&x))
            .unwrap_or_default(),
    );
    let smoothing = RwSignal::new(
        initial
            .get("smoothing")
            .and_then(|s| crate::analysis::smoothing::linked_weight(&s))
            .unwrap_or(DEFAULT_SMOOTHING),
    );
    let shared = SharedView::new();
    provide_context(shared);
    // A new axis has other units: the zoom does not carry over.
    Effect::new(move |previous: Option<CompareX>| {
        let now = x.get();
        if previous.is_some_and(|p| p != now) {
            shared.range.set(None);
        }
        now
    });
    let data: Resource<_, crate::api::Json> = Resource::new_with_options(
        move || (runs(), x.get(), smoothing.get(), shared.range.get()),
        |(runs, x, smoothing, range)| {
            let weight = (smoothing > 0.0).then_some(smoothing);
            get_compare(
                runs,
                x.name().to_string(),
                weight,
                range.map(|r| r.0 as f64),
                range.map(|r| r.1 as f64),
            )
        },
        false,
    );
    let hidden = RwSignal::new(Vec::<String>::new());
    // Share freezes what is on screen: the runs, axis, smoothing, zoom, scale and the runs
    // switched off.
    let share = Callback::new(move |()| {
        let runs = query.read_untracked().get_all("runs").unwrap_or_default();
        let smoothing = smoothing.get_untracked();
        let (start, end) = shared.range.get_untracked().unzip();
        ShareRequest {
            runs: crate::model::parse_run_list(runs.iter().map(String::as_str)).unwrap_or_default(),
            x: Some(x.get_untracked()),
            smoothing: (smoothing > 0.0).then_some(smoothing),
            start: start.map(|v| v as f64),
            end: end.map(|v| v as f64),
            hidden: hidden.get_untracked(),
            log_scale: shared.log_y.get_untracked(),
            ..ShareRequest::default()
        }
    });
    view! {
        <div class="app compare-page">
            <header class="header">
                <a class="brand" href="/">"HYDRA"<span class="brand-sub">" training"</span></a>
                <h1 class="page-title">"Compare runs"</h1>
                <a class="header-link" href="/runs">"runs"</a>
                <ShareButton request=share/>
                <crate::components::alerts::AlertBell/>
            </header>
            <main class="content">
                <Toolbar x smoothing/>
                <Transition fallback=|| view! { <p class="muted">"Reading the runs…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(view) => view! { <Compared data=view hidden/> }.into_any(),
                            Err(e) => view! {
                                <div class="empty-state error" role="alert">
                                    <h2>"Cannot compare these"</h2>
                                    <p class="error-message">{super::server_message(&e)}</p>
                                    <p><a href="/runs">"Pick runs in the runs table"</a></p>
                                </div>
                            }
                            .into_any(),
                        }
                    })}
                </Transition>
            </main>
        </div>
    }
}

/// A comparison frozen into a snapshot: what the page showed, with nothing live — no
/// controls, and no link to the server when it is a file of its own.
#[component]
pub fn FrozenComparison(data: CompareView, hidden: Vec<String>) -> impl IntoView {
    let home = (!crate::components::standalone()).then(|| {
        view! {
            <a class="header-link" href="/runs">"runs"</a>
        }
    });
    view! {
        <div class="app compare-page">
            <header class="header">
                <span class="brand">"HYDRA"<span class="brand-sub">" training"</span></span>
                <h1 class="page-title">"Compare runs"</h1>
                {home}
            </header>
            <main class="content">
                <Compared data hidden=RwSignal::new(hidden)/>
            </main>
        </div>
    }
}

/// Axis, smoothing, log scale and zoom.
#[component]
fn Toolbar(x: RwSignal<CompareX>, smoothing: RwSignal<f64>) -> impl IntoView {
    let shared = use_context::<SharedView>().unwrap_or_default();
    #[cfg(feature = "hydrate")]
    {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if !crate::components::chart::page_command(&ev) {
                return;
            }
            match ev.key().as_str() {
                "s" => crate::components::chart::focus_smoothing(&ev),
                "r" => shared.range.set(None),
                "l" => shared.log_y.update(|l| *l = !*l),
                _ => {}
            }
        });
        on_cleanup(move || handle.remove());
    }
    let axes = [CompareX::Step, CompareX::Tokens, CompareX::Time];
    view! {
        <div class="view-toolbar" data-toolbar="compare">
            <SmoothingSlider smoothing/>
            <label class="toggle" title="what the x axes count">
                "x axis"
                <select
                    id="compare-x"
                    on:change=move |ev| {
                        if let Some(a) = CompareX::parse(&event_target_value(&ev)) {
                            // The zoom is in the old axis's units: drop it first.
                            shared.range.set(None);
                            x.set(a);
                        }
                    }
                >
                    {axes
                        .into_iter()
                        .map(|a| view! {
                            <option value=a.name() selected=move || x.get() == a>{a.name()}</option>
                        })
                        .collect_view()}
                </select>
            </label>
            <LogScaleToggle/>
            {move || match shared.range.get() {
                Some(_) => view! {
                    <button class="reset" on:click=move |_| shared.range.set(None) title="r or double-click">
                        "reset zoom"
                    </button>
                }
                .into_any(),
                None => view! {
                    <span class="muted hint">"drag across a chart to zoom · r resets · l log scale · s smoothing"</span>
                }
                .into_any(),
            }}
        </div>
    }
}

#[component]
fn Compared(data: CompareView, hidden: RwSignal<Vec<String>>) -> impl IntoView {
    let axis = data.comparison.x;
    let runs = data.comparison.runs.clone();
    let charts = COMPARED_METRICS
        .into_iter()
        .map(|metric: Metric| {
            let runs = runs.clone();
            let spec = Signal::derive(move || {
                ChartSpec::Compare(Box::new(CompareChart::new(
                    &runs,
                    metric,
                    axis,
                    &hidden.get(),
                )))
            });
            // The download is the server's; a file opened on its own has none.
            let csv = (!crate::components::standalone()).then(|| {
                let href = csv_href(&data.comparison, metric);
                view! { <a class="csv-link" href=href download>"CSV"</a> }
            });
            view! {
                <section class="panel compare-chart" data-panel=metric.name()>
                    {csv}
                    <Chart spec/>
                </section>
            }
        })
        .collect_view();
    let names: Vec<String> = data.rows.iter().map(|r| r.run_id.clone()).collect();
    view! {
        <Legend data=data.clone() hidden/>
        {charts}
        <RoutingSideBySide routing=data.routing.clone()/>
        <ConfigDiff rows=data.config.clone() names/>
    }
}

/// The download of one chart's series as the view shows them, a column per run.
fn csv_href(c: &crate::model::Comparison, metric: Metric) -> String {
    let runs: Vec<&str> = c.runs.iter().map(|r| r.run_id.as_str()).collect();
    let mut href = format!(
        "/api/compare.csv?runs={}&metric={}&x={}",
        path_segment(&runs.join(",")),
        metric.name(),
        c.x.name()
    );
    for (name, v) in [
        ("smoothing", c.smoothing),
        ("start", c.start),
        ("end", c.end),
    ] {
        if let Some(v) = v {
            href.push_str(&format!("&{name}={v}"));
        }
    }
    href
}

/// A key per run: its colour (and dash), name, model, state and newest step; clicking it
/// hides or shows the run on every chart.
#[component]
fn Legend(data: CompareView, hidden: RwSignal<Vec<String>>) -> impl IntoView {
    // A snapshot's legend shows what was switched off; nothing toggles.
    let frozen = crate::components::frozen();
    let keys = data
        .comparison
        .runs
        .iter()
        .enumerate()
        .map(|(slot, run)| {
            let id = run.run_id.clone();
            let row = data.rows.iter().find(|r| r.run_id == id).cloned().unwrap_or_default();
            let shown = {
                let id = id.clone();
                Signal::derive(move || !hidden.with(|h| h.contains(&id)))
            };
            let toggle = {
                let id = id.clone();
                move |_| {
                    hidden.update(|h| match h.iter().position(|x| x == &id) {
                        Some(i) => {
                            h.remove(i);
                        }
                        None => h.push(id.clone()),
                    })
                }
            };
            let dash = ["solid", "dashed", "dotted"][run_dash(slot)];
            let state = row.state.map(|s| s.word()).unwrap_or("");
            let step = run.max_step.map(thousands).unwrap_or_default();
            view! {
                <button
                    type="button"
                    class="legend-run"
                    class:off=move || !shown.get()
                    aria-pressed=move || shown.get().to_string()
                    disabled=frozen
                    data-run=id.clone()
                    on:click=toggle
                >
                    <i style=format!("border-top: 3px {dash} {}", run_css(slot))></i>
                    <span class="run-id">{id.clone()}</span>
                    <span class="muted">{format!(" {} · {state} · step {step}", run.model_id)}</span>
                    {row.duration.map(|d| view! { <span class="muted">{format!(" · {}", duration(d))}</span> })}
                </button>
            }
        })
        .collect_view();
    view! { <div class="compare-legend" role="group" aria-label="runs shown">{keys}</div> }
}

/// Each run's routing at its end, a row per run: MoD selection against its target, the MoR
/// layers collapsed, the MoE imbalance. Left out when no run has routing records.
#[component]
fn RoutingSideBySide(routing: Vec<RoutingHealth>) -> impl IntoView {
    let any = routing.iter().any(|h| {
        h.mod_selected.is_some() || h.mor_layers > 0 || h.moe_imbalance.is_some() || h.moe_starved
    });
    let percent = |v: f64| format!("{:.1}%", v * 100.0);
    let rows = routing
        .into_iter()
        .enumerate()
        .map(|(slot, h)| {
            let selected = match (h.mod_selected, h.mod_capacity) {
                (Some(s), Some(c)) => format!("{} (target {})", percent(s), percent(c)),
                (Some(s), None) => percent(s),
                _ => "—".into(),
            };
            let collapsed = match (h.mor_layers, h.mor_collapsed.is_empty()) {
                (0, _) => "—".to_string(),
                (n, true) => format!("none of {n} layers"),
                (n, false) => {
                    let named: Vec<String> = h
                        .mor_collapsed
                        .iter()
                        .map(|(l, since)| format!("L{l} since {}", thousands(*since)))
                        .collect();
                    format!("{} of {n}: {}", named.len(), named.join(", "))
                }
            };
            let imbalance = match (h.moe_imbalance, h.moe_starved) {
                (_, true) => "an expert gets nothing".to_string(),
                (Some(r), _) => format!("{r:.2}× max/min"),
                (None, _) => "—".into(),
            };
            let warn = !h.mor_collapsed.is_empty()
                || h.moe_starved
                || h.moe_imbalance.is_some_and(|r| r > 2.0);
            view! {
                <tr class:warn=warn data-run=h.run_id.clone()>
                    <td style=format!("color:{}", run_css(slot))>{h.run_id.clone()}</td>
                    <td>{selected}</td>
                    <td>{collapsed}</td>
                    <td>{imbalance}</td>
                </tr>
            }
        })
        .collect_view();
    any.then(|| {
        view! {
            <section class="panel config-panel" id="routing-health">
                <h2>"Routing at each run's end"</h2>
                <table class="config-diff">
                    <thead>
                        <tr>
                            <th>"run"</th>
                            <th>"MoD selected"</th>
                            <th>"MoR collapsed layers"</th>
                            <th>"MoE expert shares"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </section>
        }
    })
}

/// The keys whose values differ, a column per run; every key behind "show all keys".
#[component]
fn ConfigDiff(rows: Vec<ConfigRow>, names: Vec<String>) -> impl IntoView {
    let standalone = crate::components::standalone();
    let table = move |rows: Vec<ConfigRow>, names: Vec<String>| {
        view! {
            <table class="config-diff">
                <thead>
                    <tr>
                        <th>"key"</th>
                        {names
                            .iter()
                            .enumerate()
                            .map(|(slot, n)| {
                                let style = format!("color:{}", run_css(slot));
                                match standalone {
                                    true => view! { <th style=style>{n.clone()}</th> }.into_any(),
                                    false => view! {
                                        <th><a href=format!("/run/{}", path_segment(n)) style=style>{n.clone()}</a></th>
                                    }
                                    .into_any(),
                                }
                            })
                            .collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| view! {
                            <tr class:differs=r.differs data-key=r.key.clone()>
                                <td class="key">{r.key.clone()}</td>
                                {r.values
                                    .into_iter()
                                    .map(|v| view! { <td>{v.unwrap_or_else(|| "—".into())}</td> })
                                    .collect_view()}
                            </tr>
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
    };
    // Keys whose stated values differ first; keys only some runs state (a run without a
    // report yet states what its log says, a few keys) after, named in one line.
    let (differing, unstated): (Vec<ConfigRow>, Vec<ConfigRow>) = rows
        .iter()
        .filter(|r| r.differs)
        .cloned()
        .partition(ConfigRow::values_differ);
    let heading = match (differing.len(), unstated.is_empty()) {
        (0, true) => "Config: every key the same".to_string(),
        (0, false) => "Config: no value differs where runs state it".to_string(),
        (1, _) => "Config: 1 key differs".to_string(),
        (n, _) => format!("Config: {n} keys differ"),
    };
    let unstated_line = format!(
        "{} only some runs state: {}",
        match unstated.len() {
            1 => "1 key".to_string(),
            n => format!("{n} keys"),
        },
        listed(unstated.iter().map(|r| r.key.as_str()), 6)
    );
    view! {
        <section class="panel config-panel" id="config-diff">
            <h2>{heading}</h2>
            {(!differing.is_empty()).then(|| table(differing, names.clone()))}
            {(!unstated.is_empty()).then(|| view! {
                <details class="config-unstated">
                    <summary>{unstated_line}</summary>
                    {table(unstated, names.clone())}
                </details>
            })}
            <details>
                <summary>{format!("show all {} keys", rows.len())}</summary>
                {table(rows, names)}
            </details>
        </section>
    }
}
