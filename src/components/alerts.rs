//! The header's bell: how many alerts are open across every run, and a panel listing them
//! (open first, then the newest resolved), each linking to its run zoomed to its step.
//! Fresh over the live feed when one is open (it passes on every alert), and every
//! [`REFRESH_MS`] otherwise. Desktop notifications once the person allowed them — asked
//! only when they click.

use crate::analysis::alerts::link;
use crate::analysis::format::thousands;
use crate::model::{Alert, AlertList};
use leptos::prelude::*;

/// How often the bell asks when no live feed tells it.
pub const REFRESH_MS: u64 = 15_000;

/// Bumped by the live feed whenever an alert is raised or resolved: the bell asks again.
#[derive(Clone, Copy)]
pub struct AlertPulse(pub RwSignal<u64>);

#[component]
pub fn AlertBell() -> impl IntoView {
    // Asked for in the browser only: the server renders an empty bell, the same one the
    // page hydrates, and the answer fills it in (no resource read outside a suspense).
    let latest = RwSignal::new(None::<Result<AlertList, String>>);
    let open = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        use crate::api::get_alerts;
        let pulse = use_context::<AlertPulse>().map_or_else(|| RwSignal::new(0), |p| p.0);
        let refresh = RwSignal::new(0_u64);
        // Answers that arrive out of order: only the newest question's answer is shown.
        let asked = StoredValue::new(0_u64);
        Effect::new(move |_| {
            pulse.track();
            refresh.track();
            let n = asked.get_value() + 1;
            asked.set_value(n);
            leptos::task::spawn_local(async move {
                let answer = get_alerts().await.map_err(|e| e.to_string());
                if asked.get_value() == n {
                    latest.set(Some(answer));
                }
            });
        });
        if let Ok(handle) = set_interval_with_handle(
            move || refresh.update(|n| *n += 1),
            std::time::Duration::from_millis(REFRESH_MS),
        ) {
            on_cleanup(move || handle.clear());
        }
        desktop::notify_fresh(latest);
    }
    let count = Signal::derive(move || {
        latest.with(|l| match l {
            Some(Ok(l)) => l.open,
            _ => 0,
        })
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
                    {move || match latest.get() {
                        None => view! { <p class="bell-empty">"reading…"</p> }.into_any(),
                        Some(Ok(l)) => panel(l, open).into_any(),
                        Some(Err(e)) => view! { <p class="bell-empty" role="alert">{e}</p> }.into_any(),
                    }}
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
    let pending = match (l.history_read, l.pending_runs) {
        (true, _) => None,
        (false, 0) => Some("still reading the runs' history".to_string()),
        (false, 1) => Some("still reading the history of 1 run".to_string()),
        (false, n) => Some(format!("still reading the history of {n} runs")),
    };
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
        if !supported() {
            return view! { <span class="bell-note">"this browser has no notifications"</span> }
                .into_any();
        }
        let permission = RwSignal::new(Notification::permission());
        let ask = move |_| {
            if let Ok(promise) = Notification::request_permission() {
                leptos::task::spawn_local(async move {
                    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
                    permission.set(Notification::permission());
                });
            }
        };
        let shown = move || match permission.get() {
            NotificationPermission::Default => view! {
                <button class="bell-ask" on:click=ask>"notify me on this computer"</button>
            }
            .into_any(),
            NotificationPermission::Granted => {
                view! { <span class="bell-note">"desktop notifications on"</span> }.into_any()
            }
            _ => view! { <span class="bell-note">"notifications blocked by the browser"</span> }
                .into_any(),
        };
        shown.into_any()
    }

    /// Whether this browser has notifications at all (iOS Safari outside a home-screen app
    /// and some webviews do not: asking there would throw).
    fn supported() -> bool {
        web_sys::window().is_some_and(|w| {
            js_sys::Reflect::has(&w, &wasm_bindgen::JsValue::from_str("Notification"))
                .unwrap_or(false)
        })
    }

    /// Shows a notification for every open alert that was not in the list when the page
    /// opened (nor already shown), once permission is granted.
    pub fn notify_fresh(latest: RwSignal<Option<Result<AlertList, String>>>) {
        let seen = StoredValue::new(None::<std::collections::HashSet<(String, String, i64)>>);
        Effect::new(move |_| {
            let fresh: Vec<Alert> = latest.with(|l| {
                let Some(Ok(l)) = l else {
                    return Vec::new();
                };
                seen.try_update_value(|s| {
                    let first = s.is_none();
                    let s = s.get_or_insert_with(Default::default);
                    let new: Vec<Alert> = l
                        .alerts
                        .iter()
                        .filter(|a| a.is_open())
                        .filter(|a| s.insert((a.run_id.clone(), a.kind.name().to_string(), a.step)))
                        .cloned()
                        .collect();
                    // What was open when the page opened is not news.
                    if first {
                        Vec::new()
                    } else {
                        new
                    }
                })
                .unwrap_or_default()
            });
            if fresh.is_empty()
                || !supported()
                || Notification::permission() != NotificationPermission::Granted
            {
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

#[cfg(not(feature = "hydrate"))]
mod desktop {
    use leptos::prelude::*;

    #[component]
    pub fn AskButton() -> impl IntoView {}
}
