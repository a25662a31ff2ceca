//! The newest logged steps as a table: the numbers behind the cards, exact.

use crate::analysis::format::{loss, metric, short_time, thousands};
use crate::model::Step;
use leptos::prelude::*;

#[component]
pub fn RecentSteps(steps: Vec<Step>) -> impl IntoView {
    if steps.is_empty() {
        return view! {
            <section class="panel wide recent">
                <div class="panel-head"><h3>"Recent steps"</h3></div>
                <p class="muted">"This run has logged no steps yet."</p>
            </section>
        }
        .into_any();
    }
    view! {
        <section class="panel wide recent">
            <div class="panel-head"><h3>"Recent steps"</h3></div>
            <table class="steps-table">
                <thead>
                    <tr>
                        <th>"step"</th>
                        <th>"time (UTC)"</th>
                        <th>"loss"</th>
                        <th>"EMA short"</th>
                        <th>"lr"</th>
                        <th>"grad (pre → post)"</th>
                        <th>"tok/s"</th>
                        <th>"VRAM GB"</th>
                        <th>"seq"</th>
                    </tr>
                </thead>
                <tbody>
                    {steps
                        .into_iter()
                        .map(|s| {
                            let diverged = s.nonfinite.contains_key("loss_total");
                            // A NULL loss is how SQLite stores a NaN (see Step::mark_nonfinite).
                            let shown_loss = match s.nonfinite.get("loss_total") {
                                Some(crate::model::NonFinite::Nan) => "NaN".to_string(),
                                Some(crate::model::NonFinite::Inf) => "Inf".to_string(),
                                Some(crate::model::NonFinite::NegInf) => "-Inf".to_string(),
                                None => loss(s.loss_total),
                            };
                            view! {
                                <tr class:diverged=diverged>
                                    <td>{thousands(s.step)}</td>
                                    <td>{s.timestamp.as_deref().map(short_time).unwrap_or_default()}</td>
                                    <td>{shown_loss}</td>
                                    <td>{loss(s.ema_short)}</td>
                                    <td>{metric(s.lr)}</td>
                                    <td>
                                        {format!("{} → {}", metric(s.grad_norm_pre_clip), metric(s.grad_norm))}
                                    </td>
                                    <td>{s.tokens_per_sec.map(|t| thousands(t.round() as i64)).unwrap_or_else(|| "—".into())}</td>
                                    <td>{metric(s.vram_gb)}</td>
                                    <td>{s.seq_len.map(thousands).unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
    }
    .into_any()
}
