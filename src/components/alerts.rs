//! The header's bell: how many alerts are open across every run, and a panel listing them
//! (open first, then the newest resolved), each linking to its run zoomed to its step.
//! Fresh over the live feed when one is open (it passes on every alert), and every
//! [`REFRESH_MS`] otherwise. Desktop notifications once the person allowed them — asked
//! only when they click.

use crate::analysis::alerts::link;
use crate::analysis::format::thousands;
use crate::api::get_alerts;
use crate::model::{Alert, AlertList};
use leptos::prelude::*;

/// How often the bell asks when no live feed tells it.
pub const REFRESH_MS: u64 = 15_000;

/// Bumped by the live feed whenever an alert is raised or resolved: the bell asks again.
#[derive(Clone, Copy)]
pub struct AlertPulse(pub RwSignal<u64>);

#[component]
pub fn AlertBell() -> impl IntoView {
    let pulse = use_context::<AlertPulse>().map_or_else(|| RwSignal::new(0), |p| p.0);
    let refresh = RwSignal::new(0_u64);
    let list: Resource<_, crate::api::Json> = Resource::new_with_options(
        move || (pulse.get(), refresh.get()),
        |_| get_alerts(),
        false,
    );
    let open = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || refresh.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
        desktop::notify_fresh(list);
    }
    let count = Signal::derive(move || {
        list.get()
            .and_then(Result::ok)
            .map_or(0, |l: AlertList| l.open)
    });
    view! {
        <div class="bell">
            <button
                class="bell-button"
                class=("ringing", move || count.get() > 0)
                aria-haspopup="true"
                aria-expanded=move || open.get().to_string()
                title="alerts: what the dashboard found wrong with any run"
                on:click=move |_| open.update(|o| *o = !*o)
            >
                <svg class="bell-icon" viewBox="0 0 24 24" width="14" height="14" aria-hidden="true">
                    <path fill="currentColor" d="M12 2a6 6 0 0 0-6 6v4l-2 3v1h16v-1l-2-3V8a6 6 0 0 0-6-6zm0 20a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22z"/>
                </svg>
                <span class="bell-count" data-open=move || count.get().to_string()>{count}</span>
            </button>
            <Show when=move || open.get()>
                <div class="bell-panel" role="dialog" aria-label="alerts">
                    <div class="bell-head">
                        <strong>"Alerts"</strong>
                        {desktop::AskButton}
                    </div>
                    <Transition fallback=|| view! { <p class="bell-empty">"reading…"</p> }>
                        {move || list.get().map(|answer| match answer {
                            Ok(l) => panel(l, open).into_any(),
                            Err(e) => view! { <p class="bell-empty" role="alert">{e.to_string()}</p> }.into_any(),
                        })}
                    </Transition>
                </div>
            </Show>
        </div>
    }
}

fn panel(l: AlertList, open: RwSignal<bool>) -> impl IntoView {
    let failing: Vec<String> = l
        .webhooks
        .iter()
        .filter_map(|w| {
            w.last_error
                .as_ref()
                .filter(|_| w.waiting > 0 || w.given_up > 0)
                .map(|e| format!("webhook {}: {e} ({} waiting)", w.url, w.waiting))
        })
        .collect();
    let pending = (l.pending_runs > 0)
        .then(|| format!("still reading the history of {} runs", l.pending_runs));
    view! {
        {failing.into_iter().map(|f| view! { <p class="bell-warn" role="alert">{f}</p> }).collect_view()}
        {pending.map(|p| view! { <p class="bell-empty">{p}</p> })}
        {if l.alerts.is_empty() {
            view! { <p class="bell-empty">"No alerts: every run looks healthy."</p> }.into_any()
        } else {
            view! {
                <ul class="bell-list">
                    {l.alerts.into_iter().map(|a| item(a, open)).collect_view()}
                </ul>
            }
            .into_any()
        }}
    }
}

/// One alert; following its link closes the panel.
fn item(a: Alert, open: RwSignal<bool>) -> impl IntoView {
    let state = if a.kind.informational() {
        "info"
    } else if a.is_open() {
        "open"
    } else {
        "resolved"
    };
    let resolved = a.resolved_step.map(|s| {
        format!(
            "resolved at step {}: {}",
            thousands(s),
            a.resolved_detail.clone().unwrap_or_default()
        )
    });
    let when = a
        .time
        .as_deref()
        .map(crate::analysis::format::short_time)
        .unwrap_or_default();
    view! {
        <li class=format!("bell-item {state}") data-kind=a.kind.name()>
            <a href=link(&a) on:click=move |_| open.set(false)>
                <span class="bell-kind">{a.kind.words()}</span>
                <span class="bell-run">{a.run_id.clone()}</span>
                <span class="bell-step">{format!("step {}", thousands(a.step))}</span>
                <span class="bell-time">{when}</span>
            </a>
            <div class="bell-detail">{a.detail.clone()}</div>
            {resolved.map(|r| view! { <div class="bell-detail resolved">{r}</div> })}
        </li>
    }
}

/// The browser's notifications: a button that asks (only on a click), and a notification for
/// each alert raised after the page opened.
#[cfg(feature = "hydrate")]
mod desktop {
    use super::*;
    use web_sys::{Notification, NotificationOptions, NotificationPermission};

    #[component]
    pub fn AskButton() -> impl IntoView {
        let permission = RwSignal::new(Notification::permission());
        let ask = move |_| {
            if let Ok(promise) = Notification::request_permission() {
                leptos::task::spawn_local(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                    permission.set(Notification::permission());
                });
            }
        };
        move || match permission.get() {
            NotificationPermission::Default => view! {
                <button class="bell-ask" on:click=ask>"notify me on this computer"</button>
            }
            .into_any(),
            NotificationPermission::Granted => {
                view! { <span class="bell-note">"desktop notifications on"</span> }.into_any()
            }
            _ => view! { <span class="bell-note">"notifications blocked by the browser"</span> }
                .into_any(),
        }
    }

    /// Shows a notification for every open alert that was not in the list when the page
    /// opened (nor already shown), once permission is granted.
    pub fn notify_fresh(list: Resource<Result<AlertList, ServerFnError>, crate::api::Json>) {
        let seen = StoredValue::new(None::<std::collections::HashSet<(String, String, i64)>>);
        Effect::new(move |_| {
            let Some(Ok(l)) = list.get() else {
                return;
            };
            let keys = l
                .alerts
                .iter()
                .filter(|a| a.is_open())
                .map(|a| (a.run_id.clone(), a.kind.name().to_string(), a.step));
            let first = seen.with_value(Option::is_none);
            let fresh: Vec<&Alert> = seen
                .try_update_value(|s| {
                    let s = s.get_or_insert_with(Default::default);
                    let new: Vec<_> = keys.filter(|k| s.insert(k.clone())).collect();
                    l.alerts
                        .iter()
                        .filter(|a| {
                            new.contains(&(a.run_id.clone(), a.kind.name().to_string(), a.step))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if first || Notification::permission() != NotificationPermission::Granted {
                return;
            }
            for a in fresh {
                let options = NotificationOptions::new();
                options.set_body(&format!("step {} — {}", thousands(a.step), a.detail));
                options.set_tag(&format!("{}-{}-{}", a.run_id, a.kind.name(), a.step));
                let _ = Notification::new_with_options(
                    &format!("{}: {}", a.run_id, a.kind.words()),
                    &options,
                );
            }
        });
    }
}

/// The server renders no notification button: whether notifications are allowed is the
/// browser's to say.
#[cfg(not(feature = "hydrate"))]
mod desktop {
    use leptos::prelude::*;

    #[component]
    pub fn AskButton() -> impl IntoView {}
}
