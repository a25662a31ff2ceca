//! The sidebar: model info, the run's whole config, and facts about the database file.

use crate::analysis::format::{bytes, thousands};
use crate::model::{Dashboard, RunConfig};
use leptos::prelude::*;

#[component]
pub fn Sidebar(data: Dashboard) -> impl IntoView {
    let model = data.model.clone().map(|m| {
        let architecture = RunConfig::parse(m.architecture_json.as_deref());
        view! {
            <section class="side-section" data-section="model">
                <h3>"Model"</h3>
                <dl class="kv">
                    <dt>"model_id"</dt><dd>{m.model_id.clone()}</dd>
                    <dt>"name"</dt><dd>{m.name.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"parameters"</dt>
                    <dd>{m.params_millions.map(|p| format!("{p:.1} M")).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"created"</dt><dd>{m.created_at.clone().unwrap_or_else(|| "—".into())}</dd>
                    {architecture
                        .entries()
                        .into_iter()
                        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                        .collect_view()}
                </dl>
            </section>
        }
    });
    let run = data.run.clone().map(|r| {
        let config = r.config();
        let config_body = match &config {
            RunConfig::Missing => view! { <p class="muted">"This run has no config_json."</p> }.into_any(),
            RunConfig::Malformed { text, error } => view! {
                <p class="card-warning">{format!("config_json is not valid JSON ({error}); shown as written:")}</p>
                <pre class="raw">{text.clone()}</pre>
            }
            .into_any(),
            RunConfig::Parsed(_) => view! {
                <dl class="kv config">
                    {config
                        .entries()
                        .into_iter()
                        .map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> })
                        .collect_view()}
                </dl>
            }
            .into_any(),
        };
        view! {
            <section class="side-section" data-section="run">
                <h3>"Run"</h3>
                <dl class="kv">
                    <dt>"run_id"</dt><dd class="run-id">{r.run_id.clone()}</dd>
                    {r.node.clone().map(|node| view! { <dt>"node"</dt><dd class="node">{node}</dd> })}
                    <dt>"start_step"</dt><dd>{r.start_step.map(thousands).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"end_step"</dt><dd>{r.end_step.filter(|e| *e > 0).map(thousands).unwrap_or_else(|| "—".into())}</dd>
                    <dt>"start_time"</dt><dd>{r.start_time.clone().unwrap_or_else(|| "—".into())}</dd>
                    <dt>"end_time"</dt><dd>{r.end_time.clone().unwrap_or_else(|| "not written".into())}</dd>
                </dl>
            </section>
            <section class="side-section" data-section="config">
                <h3>"Run config"</h3>
                {config_body}
            </section>
        }
    });
    let db = data.db.clone();
    view! {
        <aside class="sidebar">
            {model}
            {run}
            <section class="side-section" data-section="database">
                <h3>{if db.postgres { "Team database" } else { "Database" }}</h3>
                <dl class="kv">
                    <dt>{if db.postgres { "at" } else { "file" }}</dt><dd class="path">{db.path.clone()}</dd>
                    <dt>"size"</dt><dd>{bytes(db.file_size_bytes)}</dd>
                    <dt>{if db.postgres { "server" } else { "journal" }}</dt><dd>{db.journal_mode.clone()}</dd>
                    <dt>"newest step"</dt><dd>{db.newest_step_time.clone().unwrap_or_else(|| "—".into())}</dd>
                    {db.tables
                        .iter()
                        .map(|t| view! { <dt>{t.table.clone()}</dt><dd>{format!("{} rows", thousands(t.rows))}</dd> })
                        .collect_view()}
                </dl>
                {(!db.missing.is_empty()).then(|| view! {
                    <p class="muted">{format!("Older file, not present: {}", db.missing.join(", "))}</p>
                })}
                <p class="muted">
                    {if db.postgres {
                        "Runs shipped here by each training node's hydra-dashboard sync; the dashboard only reads."
                    } else {
                        "Opened read-only; the dashboard never writes to this file."
                    }}
                </p>
            </section>
        </aside>
    }
    .into_any()
}
