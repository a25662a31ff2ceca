//! The chart grid. Each panel has its place, title and latest values now; the plotters
//! charts are drawn into these places by the charts work.

use crate::analysis::format::{loss, metric, thousands};
use crate::components::chart::{Chart, ChartKind};
use crate::model::{RunCharts, RunSummary, Step};
use leptos::prelude::*;

#[component]
pub fn ChartPanels(
    recent: Vec<Step>,
    summary: RunSummary,
    charts: Option<RunCharts>,
) -> impl IntoView {
    let latest = recent.first().cloned();
    let value = |f: fn(&Step) -> Option<f64>| latest.as_ref().and_then(f);
    let loss_line = format!(
        "latest {} · EMA short {} · medium {} · long {}",
        loss(value(|s| s.loss_total)),
        loss(value(|s| s.ema_short)),
        loss(value(|s| s.ema_medium)),
        loss(value(|s| s.ema_long)),
    );
    let lr_line = format!("latest {}", metric(value(|s| s.lr)));
    let clipped = charts
        .as_ref()
        .and_then(|c| c.clipped_share)
        .map(|share| format!(" · clipped {:.1}% of steps", share * 100.0))
        .unwrap_or_default();
    let grad_line = format!(
        "pre-clip {} · post-clip {}{clipped}",
        metric(value(|s| s.grad_norm_pre_clip)),
        metric(value(|s| s.grad_norm)),
    );
    let spikes = charts
        .as_ref()
        .map(|c| c.spikes.len())
        .filter(|n| *n > 0)
        .map(|n| format!(" · {n} spike(s)"))
        .unwrap_or_default();
    let loss_line = format!("{loss_line}{spikes}");
    let perf_line = format!(
        "{} tok/s · {} GB",
        summary
            .last_tokens_per_sec
            .map(|t| thousands(t.round() as i64))
            .unwrap_or_else(|| "—".into()),
        metric(summary.last_vram_gb),
    );
    view! {
        <section class="panels" aria-label="Charts">
            <Panel id="loss" title="Loss" line=loss_line wide=true chart=Some(ChartKind::Loss) data=charts.clone()/>
            <Panel id="lr" title="Learning rate" line=lr_line wide=false chart=Some(ChartKind::LearningRate) data=charts.clone()/>
            <Panel id="grad" title="Gradient norm" line=grad_line wide=false chart=Some(ChartKind::GradNorm) data=charts.clone()/>
            <Panel id="throughput" title="Throughput & VRAM" line=perf_line wide=false/>
            <Panel id="mod" title="MoD routing (selected fraction per layer)" line=String::new() wide=false/>
            <Panel id="mor" title="MoR depth per layer" line=String::new() wide=false/>
            <Panel id="moe" title="MoE experts" line=String::new() wide=false/>
        </section>
    }
}

#[component]
fn Panel(
    id: &'static str,
    title: &'static str,
    line: String,
    wide: bool,
    #[prop(default = None)] chart: Option<ChartKind>,
    #[prop(default = None)] data: Option<RunCharts>,
) -> impl IntoView {
    let body = match (chart, data) {
        (Some(kind), Some(data)) => view! { <Chart kind data/> }.into_any(),
        _ => view! {
            <div class="chart-slot" data-chart=id>
                <span>"chart not drawn yet"</span>
            </div>
        }
        .into_any(),
    };
    view! {
        <div class="panel" class:wide=wide data-panel=id>
            <div class="panel-head">
                <h3>{title}</h3>
                <span class="panel-values">{line}</span>
            </div>
            {body}
        </div>
    }
}
