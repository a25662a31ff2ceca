//! The stats cards along the top: step and progress, loss, elapsed time, tokens, throughput.

use crate::analysis::format::{duration, loss, short_time, thousands, tokens};
use crate::model::{Run, RunSummary};
use leptos::prelude::*;

#[component]
pub fn StatsCards(run: Run, summary: RunSummary, live: bool) -> impl IntoView {
    let config = run.config();
    let max_steps = config.count("max_steps");
    let progress = match (summary.last_step, max_steps) {
        (Some(step), Some(max)) => Some((step as f64 / max as f64).clamp(0.0, 1.0)),
        _ => None,
    };
    let step_sub = match max_steps {
        Some(max) => format!("of {}", thousands(max)),
        None => "max_steps not in config".to_string(),
    };
    let best = match (summary.best_loss, summary.best_loss_step) {
        (Some(b), Some(s)) => format!("best {} @ step {}", loss(Some(b)), thousands(s)),
        _ => "no finite loss yet".to_string(),
    };
    let (token_value, token_sub) =
        match (run.total_tokens.filter(|t| *t > 0), summary.tokens_estimate) {
            (Some(t), _) => (tokens(t as f64), "recorded by the trainer".to_string()),
            (None, Some(est)) => (
                format!("≈{}", tokens(est)),
                "estimated: batch × seq_len × accumulation".to_string(),
            ),
            (None, None) => ("—".to_string(), "not recorded".to_string()),
        };
    let elapsed_sub = if live {
        "since the run started".to_string()
    } else {
        format!(
            "ended {} UTC",
            short_time(run.end_time.as_deref().unwrap_or_default())
        )
    };
    let (eta_value, eta_sub) = match (
        run.is_running(),
        summary.eta_seconds,
        summary.steps_per_second,
    ) {
        (false, _, _) => (
            "finished".to_string(),
            "the trainer closed this run".to_string(),
        ),
        (true, Some(eta), Some(rate)) => (
            duration(eta),
            format!("at {rate:.2} steps/s over the last 5 min"),
        ),
        (true, _, _) => (
            "—".to_string(),
            "needs max_steps and timestamps".to_string(),
        ),
    };
    let throughput = summary
        .last_tokens_per_sec
        .map(|t| format!("{} tok/s", thousands(t.round() as i64)))
        .unwrap_or_else(|| "—".into());
    let vram = summary
        .last_vram_gb
        .map(|v| format!("VRAM {v:.1} GB"))
        .unwrap_or_else(|| "VRAM not recorded".into());

    view! {
        <section class="cards" aria-label="Run statistics">
            <Card key="step" label="Step" value=summary.last_step.map(thousands).unwrap_or_else(|| "—".into()) sub=step_sub>
                {progress.map(|p| view! {
                    <div class="progress" title=format!("{:.1}% of max_steps", p * 100.0)>
                        <div class="progress-bar" style=format!("width:{:.2}%", p * 100.0)></div>
                    </div>
                })}
            </Card>
            <Card key="loss" label="Loss" value=loss(summary.last_loss) sub=best>
                {(summary.nonfinite_losses > 0).then(|| view! {
                    <div class="card-warning">
                        {format!("{} step(s) with NaN/Inf loss", thousands(summary.nonfinite_losses))}
                    </div>
                })}
            </Card>
            <Card key="elapsed" label="Elapsed" value=summary.elapsed_seconds.map(duration).unwrap_or_else(|| "—".into()) sub=elapsed_sub/>
            <Card key="eta" label="ETA" value=eta_value sub=eta_sub/>
            <Card key="tokens" label="Tokens" value=token_value sub=token_sub/>
            <Card key="throughput" label="Throughput" value=throughput sub=vram/>
        </section>
    }
}

#[component]
fn Card(
    key: &'static str,
    label: &'static str,
    value: String,
    sub: String,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    view! {
        <div class="card" data-card=key>
            <div class="card-label">{label}</div>
            <div class="card-value">{value}</div>
            <div class="card-sub">{sub}</div>
            {children.map(|c| c())}
        </div>
    }
}
