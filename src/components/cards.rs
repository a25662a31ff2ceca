//! The stats cards along the top: step and progress, loss, elapsed time, tokens, throughput.

use crate::analysis::format::{duration, loss, short_time, thousands, tokens};
use crate::model::{Dashboard, Run, RunSummary};
use leptos::prelude::*;

#[component]
pub fn StatsCards(
    /// The shown run; each card's text follows it as the live feed extends it.
    data: Signal<Dashboard>,
) -> impl IntoView {
    let text = move |f: fn(&Run, &RunSummary, bool) -> String| {
        Signal::derive(move || {
            data.with(|d| match &d.run {
                Some(run) => f(
                    run,
                    d.summary.as_ref().unwrap_or(&RunSummary::default()),
                    d.is_live(),
                ),
                None => String::new(),
            })
        })
    };
    let progress = move || {
        data.with(|d| {
            let max = d.run.as_ref().and_then(|r| r.config().count("max_steps"));
            match (d.summary.as_ref().and_then(|s| s.last_step), max) {
                (Some(step), Some(max)) => Some((step as f64 / max as f64).clamp(0.0, 1.0)),
                _ => None,
            }
        })
    };
    let nonfinite = move || data.with(|d| d.summary.as_ref().map_or(0, |s| s.nonfinite_losses));

    view! {
        <section class="cards" aria-label="Run statistics">
            <Card key="step" label="Step" value=text(step_value) sub=text(step_sub)>
                <div class="progress" class:hidden=move || progress().is_none()
                    title=move || format!("{:.1}% of max_steps", progress().unwrap_or(0.0) * 100.0)>
                    <div class="progress-bar" style=move || format!("width:{:.2}%", progress().unwrap_or(0.0) * 100.0)></div>
                </div>
            </Card>
            <Card key="loss" label="Loss" value=text(|_, s, _| loss(s.last_loss)) sub=text(best)>
                <div class="card-warning" class:hidden=move || nonfinite() == 0>
                    {move || format!("{} step(s) with NaN/Inf loss", thousands(nonfinite()))}
                </div>
            </Card>
            <Card key="elapsed" label="Elapsed" value=text(|_, s, _| s.elapsed_seconds.map(duration).unwrap_or_else(|| "—".into())) sub=text(elapsed_sub)/>
            <Card key="eta" label="ETA" value=text(|r, s, _| eta(r, s).0) sub=text(|r, s, _| eta(r, s).1)/>
            <Card key="tokens" label="Tokens" value=text(|r, s, _| token_text(r, s).0) sub=text(|r, s, _| token_text(r, s).1)/>
            <Card key="throughput" label="Throughput" value=text(throughput) sub=text(vram)/>
        </section>
    }
}

fn step_value(_: &Run, s: &RunSummary, _: bool) -> String {
    s.last_step.map(thousands).unwrap_or_else(|| "—".into())
}

fn step_sub(run: &Run, _: &RunSummary, _: bool) -> String {
    match run.config().count("max_steps") {
        Some(max) => format!("of {}", thousands(max)),
        None => "max_steps not in config".to_string(),
    }
}

fn best(_: &Run, s: &RunSummary, _: bool) -> String {
    match (s.best_loss, s.best_loss_step) {
        (Some(b), Some(step)) => format!("best {} @ step {}", loss(Some(b)), thousands(step)),
        _ => "no finite loss yet".to_string(),
    }
}

/// What a token count without the trainer's own is made of.
pub const TOKENS_ESTIMATED: &str = "estimated: batch × seq_len × accumulation";

/// A token count as shown, `≈` before one [`TOKENS_ESTIMATED`].
pub fn token_count(t: f64, estimated: bool) -> String {
    let about = if estimated { "≈" } else { "" };
    format!("{about}{}", tokens(t))
}

fn token_text(run: &Run, s: &RunSummary) -> (String, String) {
    match (run.total_tokens.filter(|t| *t > 0), s.tokens_estimate) {
        (Some(t), _) => (
            token_count(t as f64, false),
            "recorded by the trainer".to_string(),
        ),
        (None, Some(est)) => (token_count(est, true), TOKENS_ESTIMATED.to_string()),
        (None, None) => ("—".to_string(), "not recorded".to_string()),
    }
}

fn elapsed_sub(run: &Run, s: &RunSummary, live: bool) -> String {
    if live {
        return "since the run started".to_string();
    }
    match run.end_time.as_deref().filter(|t| !t.is_empty()) {
        Some(end) => format!("ended {} UTC", short_time(end)),
        // The trainer never writes an end time: its last logged step is the evidence.
        None => match s.last_timestamp.as_deref() {
            Some(last) => format!("last step {}", short_time(last)),
            None => "no time logged".to_string(),
        },
    }
}

fn eta(run: &Run, s: &RunSummary) -> (String, String) {
    use crate::model::TrainingState;
    match (run.is_running(), s.eta_seconds, s.steps_per_second) {
        (false, _, _)
            if matches!(
                run.state,
                Some(TrainingState::Stopped | TrainingState::Crashed)
            ) =>
        {
            let word = if run.state == Some(TrainingState::Crashed) {
                "crashed"
            } else {
                "stopped"
            };
            ("—".to_string(), format!("{word} before max_steps"))
        }
        (false, _, _) if run.state == Some(TrainingState::Stalled) => (
            "—".to_string(),
            "stalled: nothing logged for longer than the run ever pauses".to_string(),
        ),
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
    }
}

fn throughput(_: &Run, s: &RunSummary, _: bool) -> String {
    s.last_tokens_per_sec
        .map(|t| format!("{} tok/s", thousands(t.round() as i64)))
        .unwrap_or_else(|| "—".into())
}

fn vram(_: &Run, s: &RunSummary, _: bool) -> String {
    s.last_vram_gb
        .map(|v| format!("VRAM {v:.1} GB"))
        .unwrap_or_else(|| "VRAM not recorded".into())
}

#[component]
fn Card(
    key: &'static str,
    label: &'static str,
    value: Signal<String>,
    sub: Signal<String>,
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
