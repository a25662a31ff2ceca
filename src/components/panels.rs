//! The chart grid. Each panel has its place, title and latest values now; the plotters
//! charts are drawn into these places by the charts work.

use crate::analysis::format::{loss, metric, thousands};
use crate::charts::spec::ChartSpec;
use crate::components::chart::{Chart, SharedView, ViewToolbar};
use crate::components::share::ExportLinks;
use crate::model::{Dashboard, RoutingCharts, Step};
use leptos::prelude::*;

#[component]
pub fn ChartPanels(
    /// The shown run's data; the panels follow it in place as the live feed extends it.
    data: Signal<Dashboard>,
    /// Offer the loss smoothing slider.
    #[prop(optional)]
    smoothing: bool,
) -> impl IntoView {
    let loss_line = move || {
        data.with(|d| {
            let latest = d.recent_steps.first();
            let value = |f: fn(&Step) -> Option<f64>| latest.and_then(f);
            let spikes = d
                .charts
                .as_ref()
                .map(|c| c.spikes.len())
                .filter(|n| *n > 0)
                .map(|n| format!(" · {n} spike(s)"))
                .unwrap_or_default();
            // Files without EMAs (the trainer's log and diagnostics file): the ones drawn.
            let computed = |i: usize| d.charts.as_ref().and_then(|c| c.ema[i].last()).map(|p| p.1);
            let eval = d
                .charts
                .as_ref()
                .and_then(|c| {
                    let latest = c.eval.last()?;
                    let best = c.eval.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
                    Some(format!(
                        " · eval {} (best {} @ {})",
                        loss(Some(latest.1)),
                        loss(Some(best.1)),
                        thousands(best.0)
                    ))
                })
                .unwrap_or_default();
            format!(
                "latest {} · EMA short {} · medium {} · long {}{eval}{spikes}",
                loss(value(|s| s.loss_total)),
                loss(value(|s| s.ema_short).or(computed(0))),
                loss(value(|s| s.ema_medium).or(computed(1))),
                loss(value(|s| s.ema_long).or(computed(2))),
            )
        })
    };
    let lr_line = move || {
        data.with(|d| {
            let controller = d
                .charts
                .as_ref()
                .map(|c| &c.adaptive_lr)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    let patience = c
                        .patience
                        .last()
                        .map(|p| format!(" · patience {:.0}", p.1))
                        .unwrap_or_default();
                    format!(
                        " · adaptive LR: {} cooldown(s){patience}",
                        c.cooldowns.len()
                    )
                })
                .unwrap_or_default();
            format!(
                "latest {}{controller}",
                metric(d.recent_steps.first().and_then(|s| s.lr))
            )
        })
    };
    let grad_line = move || {
        data.with(|d| {
            let latest = d.recent_steps.first();
            let clipped = d
                .charts
                .as_ref()
                .and_then(|c| c.clipped_share)
                .map(|share| format!(" · clipped {:.1}% of steps", share * 100.0))
                .unwrap_or_default();
            format!(
                "pre-clip {} · post-clip {}{clipped}",
                metric(latest.and_then(|s| s.grad_norm_pre_clip)),
                metric(latest.and_then(|s| s.grad_norm)),
            )
        })
    };
    let perf_line = move || {
        data.with(|d| {
            d.gauges
                .as_ref()
                .map(|g| {
                    format!(
                        "VRAM zones {:.0} / {:.0} of {:.0} GB",
                        g.vram_warn_gb, g.vram_danger_gb, g.vram_total_gb
                    )
                })
                .unwrap_or_default()
        })
    };
    let mod_line = move || {
        data.with(|d| {
            d.routing
                .as_ref()
                .and_then(|r| r.mod_capacity)
                .map(|c| format!("target capacity {c}"))
                .unwrap_or_default()
        })
    };
    let mor_line = move || {
        data.with(|d| {
            d.routing
                .as_ref()
                .map(|r| {
                    let strip = if r.mor_shares.is_empty() {
                        ""
                    } else {
                        " · below: share of tokens per depth"
                    };
                    format!(
                        "{} layers · solid avg, dashed expected{strip}",
                        r.layers.len()
                    )
                })
                .unwrap_or_default()
        })
    };
    let moe_line = move || {
        data.with(|d| {
            d.routing
                .as_ref()
                .and_then(moe_summary)
                .unwrap_or_else(|| "this run has no MoE routing".into())
        })
    };
    // Which panels have a chart is decided once, from the data the page loaded with.
    let initial = data.get_untracked();
    let spec = |present: bool, make: fn(&Dashboard) -> Option<ChartSpec>| {
        present.then(|| Signal::derive(move || data.with(|d| make(d).unwrap_or_default())))
    };
    let has_charts = initial.charts.is_some();
    let has_routing = initial.routing.is_some();
    let has_moe = initial
        .routing
        .as_ref()
        .is_some_and(|r| !r.moe_util.is_empty());
    let routing = Signal::derive(move || data.with(|d| d.routing.clone()));
    let run_id = initial.run.as_ref().map(|r| r.run_id.clone());
    let shared = use_context::<SharedView>().unwrap_or_default();
    view! {
        <section class="panels" aria-label="Charts">
            <CollapseWarning routing/>
            <ViewToolbar smoothing/>
            <Panel run_id=run_id.clone() id="loss" title="Loss" line=loss_line wide=true spec=spec(has_charts, |d| ChartSpec::of("loss", d))/>
            <Panel run_id=run_id.clone() id="lr" title="Learning rate" line=lr_line wide=false spec=spec(has_charts, |d| ChartSpec::of("lr", d))/>
            <Panel run_id=run_id.clone() id="grad" title="Gradient norm" line=grad_line wide=false spec=spec(has_charts, |d| ChartSpec::of("grad", d))/>
            <Panel run_id=run_id.clone() id="throughput" title="Throughput & VRAM" line=perf_line wide=false spec=spec(initial.gauges.is_some(), |d| ChartSpec::of("gauges", d))/>
            <Panel run_id=run_id.clone() id="mod" title="MoD routing: selected fraction per layer" line=mod_line wide=false spec=spec(has_routing, |d| ChartSpec::of("mod", d))/>
            <Panel run_id=run_id.clone() id="mor" title="MoR depth per layer" line=mor_line wide=false spec=spec(has_routing, |d| ChartSpec::of("mor", d))>
                <LayerKey routing=initial.routing.clone() shared=shared/>
            </Panel>
            <Panel run_id=run_id.clone() id="moe" title="MoE experts" line=moe_line wide=false spec=spec(has_moe, |d| ChartSpec::of("moe", d)) empty="no MoE routing in this run"/>
        </section>
    }
}

/// Latest entropy and divergence, and an imbalance flag when one expert gets more than
/// twice the tokens of another.
fn moe_summary(r: &RoutingCharts) -> Option<String> {
    let latest: Vec<f64> = r
        .moe_util
        .iter()
        .filter_map(|s| s.last().map(|p| p.1))
        .collect();
    if latest.is_empty() {
        return None;
    }
    let (lo, hi) = latest
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), u| (lo.min(*u), hi.max(*u)));
    let imbalance = if lo <= 0.0 || hi / lo > 2.0 {
        " · ⚠ imbalanced"
    } else {
        ""
    };
    Some(format!(
        "entropy {} · divergence {}{imbalance}",
        metric(r.moe_entropy.last().map(|p| p.1)),
        metric(r.moe_divergence.last().map(|p| p.1)),
    ))
}

/// Names every collapsed MoR layer and the step its collapse began.
#[component]
fn CollapseWarning(routing: Signal<Option<RoutingCharts>>) -> impl IntoView {
    move || collapse_warning(routing.get())
}

fn collapse_warning(routing: Option<RoutingCharts>) -> Option<impl IntoView> {
    let collapses = routing.map(|r| r.collapses).unwrap_or_default();
    let ongoing: Vec<_> = collapses
        .iter()
        .filter(|c| c.recovered_step.is_none())
        .collect();
    (!ongoing.is_empty()).then(|| {
        let names = ongoing
            .iter()
            .map(|c| {
                format!(
                    "layer {} since step {} ({})",
                    c.layer,
                    thousands(c.since_step),
                    c.kind.describe()
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        view! {
            <div class="panel wide warning" role="alert" data-warning="collapse">
                <strong>"MoR collapse: "</strong>
                {format!("{names}.")}
            </div>
        }
    })
}

/// The colour of each MoR layer's line, collapsed layers flagged.
#[component]
fn LayerKey(routing: Option<RoutingCharts>, shared: SharedView) -> impl IntoView {
    let Some(r) = routing.filter(|r| !r.mor_depth.is_empty()) else {
        return ().into_any();
    };
    let theme = crate::charts::theme::DARK;
    view! {
        <div class="layer-key" title="click a layer to hide or show it">
            {r.mor_depth
                .iter()
                .map(|l| {
                    let layer = l.layer;
                    let i = r.layers.iter().position(|x| *x == layer).unwrap_or(0);
                    let collapsed = r
                        .collapses
                        .iter()
                        .any(|c| c.layer == layer && c.recovered_step.is_none());
                    let hidden = move || shared.hidden_layers.with(|h| h.contains(&layer));
                    let toggle = move |_| {
                        shared.hidden_layers.update(|h| {
                            if let Some(at) = h.iter().position(|x| *x == layer) {
                                h.remove(at);
                            } else {
                                h.push(layer);
                            }
                        })
                    };
                    view! {
                        <button
                            class="layer-chip"
                            class:collapsed=collapsed
                            class:hidden=hidden
                            data-layer=layer
                            aria-pressed=move || (!hidden()).to_string()
                            on:click=toggle
                        >
                            <i style=format!("background:{}", theme.layer_css(i))></i>
                            {format!("L{layer}")}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}

#[component]
fn Panel(
    id: &'static str,
    title: &'static str,
    #[prop(into)] line: Signal<String>,
    wide: bool,
    #[prop(default = None)] spec: Option<Signal<ChartSpec>>,
    /// What the panel says when it has no chart.
    #[prop(default = "chart not drawn yet")]
    empty: &'static str,
    /// The run, for the chart's export links.
    run_id: Option<String>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let export = run_id.zip(spec).map(|(run_id, spec)| {
        let chart = spec.with_untracked(ChartSpec::id);
        view! { <ExportLinks run_id chart/> }
    });
    let body = match spec {
        Some(spec) => view! { <Chart spec/> }.into_any(),
        None => view! {
            <div class="chart-slot" data-chart=id>
                <span>{empty}</span>
            </div>
        }
        .into_any(),
    };
    view! {
        <div class="panel" class:wide=wide data-panel=id>
            <div class="panel-head">
                <h3>{title}</h3>
                <span class="panel-values">{line}</span>
                {export}
            </div>
            {body}
            {children.map(|c| c())}
        </div>
    }
}
