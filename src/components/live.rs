//! The page's end of the live feed: a hook that owns the WebSocket, reconnects with backoff
//! from the last step the page has, and folds updates into the shown data once per animation
//! frame; and the header's Live toggle with its state dot.

use crate::model::Dashboard;
use leptos::prelude::*;

/// Where the feed stands, as the dot in the header shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedState {
    /// Switched off, or the run is not training.
    Off,
    Connecting,
    Live,
    /// The socket closed; trying again.
    Reconnecting,
    /// Connected, but nothing (not even a heartbeat) for longer than a heartbeat allows.
    Stale,
}

impl FeedState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
            Self::Stale => "stale",
        }
    }
}

/// No message for this long (a heartbeat comes every 15 s) means the feed is stale.
pub const STALE_AFTER_MS: f64 = 20_000.0;

/// The feed's signals, for the header.
#[derive(Clone, Copy)]
pub struct LiveFeed {
    pub state: RwSignal<FeedState>,
    /// Wall time (ms since the epoch) of the last message; 0 before the first.
    pub last_message_ms: RwSignal<f64>,
    /// Wall time now, ticking every second, for "updated N s ago".
    pub now_ms: RwSignal<f64>,
    pub enabled: RwSignal<bool>,
    /// A newer run of the same model (a resume) the person may want to follow.
    pub newer_run: RwSignal<Option<String>>,
    /// The feed's own complaint (the file cannot be read), shown beside the dot.
    pub error: RwSignal<Option<String>>,
}

/// Follows the shown run while it trains: opens `/ws/{run_id}?after_step=…`, merges each
/// update into `current`, and asks for `reload` when the trainer re-logged steps the page
/// already drew.
pub fn use_live_feed(current: RwSignal<Dashboard>, reload: RwSignal<u64>) -> LiveFeed {
    let training = current.with_untracked(Dashboard::is_live);
    let feed = LiveFeed {
        state: RwSignal::new(if training {
            FeedState::Connecting
        } else {
            FeedState::Off
        }),
        last_message_ms: RwSignal::new(0.0),
        now_ms: RwSignal::new(0.0),
        enabled: RwSignal::new(training),
        newer_run: RwSignal::new(None),
        error: RwSignal::new(None),
    };
    #[cfg(feature = "hydrate")]
    if training {
        socket::start(feed, current, reload);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = reload;
    feed
}

#[cfg(feature = "hydrate")]
mod socket {
    use super::*;
    use crate::analysis::format::path_segment;
    use crate::analysis::live::{merge, Merge};
    use crate::model::LiveMessage;
    use std::time::Duration;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    use web_sys::{CloseEvent, MessageEvent, WebSocket};

    /// The open socket and the callbacks it calls, dropped together.
    struct Connection {
        socket: WebSocket,
        _on_open: Closure<dyn FnMut()>,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_close: Closure<dyn FnMut(CloseEvent)>,
    }

    impl Drop for Connection {
        fn drop(&mut self) {
            self.socket.set_onopen(None);
            self.socket.set_onmessage(None);
            self.socket.set_onclose(None);
            let _ = self.socket.close();
        }
    }

    #[derive(Clone, Copy)]
    struct Parts {
        feed: LiveFeed,
        current: RwSignal<Dashboard>,
        reload: RwSignal<u64>,
        connection: StoredValue<Option<Connection>, LocalStorage>,
        pending: StoredValue<Vec<LiveMessage>, LocalStorage>,
        flush_scheduled: StoredValue<bool>,
        attempt: StoredValue<u32>,
        alive: StoredValue<bool>,
        /// The header's bell, told of every alert the feed passes on.
        pulse: Option<crate::components::alerts::AlertPulse>,
    }

    pub fn start(feed: LiveFeed, current: RwSignal<Dashboard>, reload: RwSignal<u64>) {
        let parts = Parts {
            feed,
            current,
            reload,
            connection: StoredValue::new_local(None),
            pending: StoredValue::new_local(Vec::new()),
            flush_scheduled: StoredValue::new(false),
            attempt: StoredValue::new(0),
            alive: StoredValue::new(true),
            pulse: use_context(),
        };
        // The toggle opens and closes the socket.
        Effect::new(move |_| {
            if feed.enabled.get() {
                connect(parts);
            } else {
                parts.connection.set_value(None);
                feed.state.set(FeedState::Off);
            }
        });
        // The clock behind "updated N s ago" and the stale check.
        let tick = set_interval_with_handle(
            move || {
                let now = crate::components::now_ms();
                feed.now_ms.set(now);
                let last = feed.last_message_ms.get_untracked();
                if feed.state.get_untracked() == FeedState::Live
                    && last > 0.0
                    && now - last > STALE_AFTER_MS
                {
                    feed.state.set(FeedState::Stale);
                }
            },
            Duration::from_secs(1),
        )
        .ok();
        on_cleanup(move || {
            parts.alive.set_value(false);
            parts.connection.set_value(None);
            if let Some(t) = tick {
                t.clear();
            }
        });
    }

    fn connect(p: Parts) {
        if !p.alive.get_value() || !p.feed.enabled.get_untracked() {
            return;
        }
        let (run_id, after) = p.current.with_untracked(|d| {
            (
                d.run.as_ref().map(|r| r.run_id.clone()),
                d.summary.as_ref().and_then(|s| s.last_step),
            )
        });
        let Some(run_id) = run_id else { return };
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let host = location.host().unwrap_or_default();
        // Always a cursor: without one the server starts at the newest step, and a run with
        // no steps yet must get its first ones.
        let cursor = format!("?after_step={}", after.unwrap_or(i64::MIN));
        let url = format!("{scheme}://{host}/ws/{}{cursor}", path_segment(&run_id));
        let Ok(socket) = WebSocket::new(&url) else {
            retry(p);
            return;
        };
        let on_open = Closure::<dyn FnMut()>::new(move || {
            p.attempt.set_value(0);
            p.feed.state.set(FeedState::Live);
            p.feed.last_message_ms.set(crate::components::now_ms());
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let Some(text) = e.data().as_string() else {
                return;
            };
            let Ok(message) = LiveMessage::from_json(text.as_bytes()) else {
                leptos::logging::warn!("live feed: a message this page does not understand");
                return;
            };
            p.feed.last_message_ms.set(crate::components::now_ms());
            if p.feed.state.get_untracked() != FeedState::Live {
                p.feed.state.set(FeedState::Live);
            }
            p.pending.update_value(|q| q.push(message));
            if !p.flush_scheduled.get_value() {
                p.flush_scheduled.set_value(true);
                request_animation_frame(move || flush(p));
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_e: CloseEvent| {
            // Whatever arrived before the close is drawn first, so the cursor is current.
            flush(p);
            p.connection.set_value(None);
            retry(p);
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        p.connection.set_value(Some(Connection {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        }));
    }

    /// Tries again after 0.5 s, 1 s, 2 s … up to 15 s.
    fn retry(p: Parts) {
        if !p.alive.get_value() || !p.feed.enabled.get_untracked() {
            return;
        }
        p.feed.state.set(FeedState::Reconnecting);
        let attempt = p.attempt.get_value();
        p.attempt.set_value(attempt.saturating_add(1));
        let delay = (500_u64 << attempt.min(5)).min(15_000);
        set_timeout(move || connect(p), Duration::from_millis(delay));
    }

    /// Folds every message that arrived since the last frame into the shown data at once.
    fn flush(p: Parts) {
        p.flush_scheduled.set_value(false);
        let messages = p
            .pending
            .try_update_value(std::mem::take)
            .unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        let mut reload = false;
        p.current.update(|d| {
            for m in &messages {
                match m {
                    LiveMessage::Update {
                        steps,
                        routing_mod,
                        routing_mor,
                        routing_moe,
                        ..
                    } => {
                        if merge(d, steps, routing_mod, routing_mor, routing_moe) == Merge::Reload {
                            reload = true;
                        }
                    }
                    LiveMessage::Run { run, runs } => {
                        let shown = d.run.as_ref().map(|r| r.run_id.clone());
                        if shown.as_deref() == Some(run.run_id.as_str()) {
                            d.run = Some(run.clone());
                        }
                        d.runs = runs.clone();
                        let newest = runs.last().map(|r| r.run_id.clone());
                        if newest.is_some() && newest != shown {
                            p.feed.newer_run.set(newest);
                        }
                    }
                    LiveMessage::Evals { points } => {
                        if let Some(c) = d.charts.as_mut() {
                            crate::analysis::eval::merge(
                                &mut c.eval,
                                &mut c.eval_components,
                                points,
                            );
                        }
                    }
                    LiveMessage::Error { error } => p.feed.error.set(Some(error.clone())),
                    LiveMessage::Heartbeat { .. } => {}
                    LiveMessage::Alert { change, alert } => {
                        if let Some(pulse) = p.pulse {
                            pulse.0.update(|n| *n += 1);
                        }
                        // The shown run's, as the server marks them.
                        let ours = d.run.as_ref().is_some_and(|r| r.run_id == alert.run_id);
                        if let (true, Some(c)) = (ours, d.charts.as_mut()) {
                            crate::analysis::alerts::mark(&mut c.alerts, *change, alert);
                        }
                    }
                }
            }
        });
        if messages
            .iter()
            .any(|m| matches!(m, LiveMessage::Update { .. }))
        {
            p.feed.error.set(None);
        }
        if reload {
            p.reload.update(|n| *n += 1);
        }
    }
}

/// The header's Live toggle: a dot for the feed's state and how long since it spoke.
#[component]
pub fn LiveIndicator(feed: LiveFeed) -> impl IntoView {
    let state = move || feed.state.get();
    let ago = move || {
        let (now, last) = (feed.now_ms.get(), feed.last_message_ms.get());
        (state() != FeedState::Off && now > 0.0 && last > 0.0)
            .then(|| format!("updated {} s ago", ((now - last) / 1000.0).max(0.0).round()))
    };
    let toggle = move |_| feed.enabled.update(|on| *on = !*on);
    view! {
        <div class="live-feed" data-state=move || state().label()>
            <button
                class="live-toggle"
                aria-pressed=move || feed.enabled.get().to_string()
                title="follow new steps as the trainer writes them"
                on:click=toggle
            >
                <i class="live-dot"></i>
                "Live"
            </button>
            <span class="live-state">{move || state().label()}</span>
            <span class="live-ago">{ago}</span>
            {move || feed.error.get().map(|e| view! { <span class="live-error" role="status">{e}</span> })}
            {move || {
                feed.newer_run.get().map(|id| {
                    let href = format!("/run/{}", crate::analysis::format::path_segment(&id));
                    view! { <a class="live-newer" href=href>"a newer run started: follow it"</a> }
                })
            }}
        </div>
    }
}
