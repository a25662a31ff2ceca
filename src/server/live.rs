//! The live feed, `/ws/{run_id}`: new rows pushed the moment the trainer commits them.
//!
//! One watcher per followed run (not per client) asks the file every [`POLL`] whether any
//! table grew — one statement of a few b-tree descents — and when one did, reads the run's
//! new rows by rowid and broadcasts them, serialised once, to every follower. A follower
//! first catches up from its own cursor (`?after_step=N`) in short pages, then forwards the
//! broadcast, skipping what its catch-up already covered: no gaps, no duplicates. A client
//! that stops reading is dropped once the broadcast ring laps it or a send stalls, so memory
//! is bounded whatever the number of clients; it reconnects with its cursor and loses
//! nothing.

use super::error::AppError;
use super::params::Query;
use super::source::{LiveRows, Reach};
use super::sources::Marks;
use super::store::Store;
use super::AppState;
use crate::model::{EvalPoint, LiveMessage, Run};
use axum::extract::rejection::PathRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How often a watcher asks the file for new rows.
pub const POLL: Duration = Duration::from_millis(200);
/// Longest silence before a heartbeat (the original UI expects one at least every 5 s).
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Messages a run's broadcast ring holds; a follower further behind is dropped.
const RING: usize = 64;
/// Rows per table per message, catch-up or live.
pub const PAGE: usize = 1_000;
/// A send that cannot complete in this long means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Open sockets at most; more get 503 until some close.
pub const MAX_FOLLOWERS: usize = 1_000;
/// Largest frame a client may send (it has nothing to say beyond a few bytes).
pub const MAX_INCOMING: usize = 4 * 1024;
/// Re-read the model's runs at least this often (an `UPDATE runs` changes no rowid).
const RUNS_EVERY: u32 = 25;

/// What a run's watcher broadcasts.
#[derive(Debug)]
pub enum Event {
    /// Rows one source gained between two of its reaches, and the message carrying them,
    /// serialised once.
    Rows {
        from: Reach,
        to: Reach,
        rows: LiveRows,
        text: Utf8Bytes,
    },
    /// A message every follower gets as is (`run`, `error`).
    Notice(Utf8Bytes),
}

/// A followed run: its broadcast and its newest step.
struct Follow {
    events: broadcast::Sender<Arc<Event>>,
    last_step: watch::Receiver<Option<i64>>,
}

/// Every followed run's watcher, shared by all connections.
#[derive(Clone)]
pub struct Hub {
    store: Store,
    /// Turns for catch-up page reads, shared by every follower.
    catch_ups: Arc<tokio::sync::Semaphore>,
    runs: Arc<Mutex<HashMap<String, Follow>>>,
    sockets: Arc<AtomicUsize>,
    /// Set when the server shuts down: every follower sends a close frame and ends.
    closing: Arc<watch::Sender<bool>>,
    /// Every run's alerts, passed on to every follower.
    alerts: Option<super::alerts::Alerts>,
}

/// A follower's end of a run's feed.
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<Event>>,
    pub last_step: watch::Receiver<Option<i64>>,
    pub closing: watch::Receiver<bool>,
}

impl Hub {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            catch_ups: Arc::new(tokio::sync::Semaphore::new(CATCH_UPS_AT_ONCE)),
            runs: Arc::default(),
            sockets: Arc::default(),
            closing: Arc::new(watch::channel(false).0),
            alerts: None,
        }
    }

    /// Followers are told each alert raised or resolved, of any run.
    pub fn with_alerts(mut self, alerts: super::alerts::Alerts) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Tells every follower the server is going away (close code 1001).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Joins `run`'s broadcast, starting its watcher when nobody followed it yet.
    pub async fn subscribe(&self, run: &Run) -> Result<Subscription, AppError> {
        if let Some(sub) = self.join(&run.run_id) {
            return Ok(sub);
        }
        // Read where the watcher starts outside the lock; a second caller racing here just
        // joins the watcher the first one registered.
        let marks = self.store.live_marks().await?;
        let last = self.store.recent_steps(&run.run_id, 1).await?;
        let last_step = last.first().map(|s| s.step);
        let evals = self.store.evals(&run.run_id).await?.points.pop();
        let mut map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(&run.run_id) {
            return Ok(Subscription {
                events: f.events.subscribe(),
                last_step: f.last_step.clone(),
                closing: self.closing.subscribe(),
            });
        }
        let (events, rx) = broadcast::channel(RING);
        let (step_tx, step_rx) = watch::channel(last_step);
        map.insert(
            run.run_id.clone(),
            Follow {
                events: events.clone(),
                last_step: step_rx.clone(),
            },
        );
        let watcher = Watcher {
            store: self.store.clone(),
            runs: self.runs.clone(),
            run: run.clone(),
            cursor: marks,
            events,
            last_step: step_tx,
            evals,
            alerts: self.alerts.as_ref().map(super::alerts::Alerts::subscribe),
        };
        tokio::spawn(watcher.run());
        Ok(Subscription {
            events: rx,
            last_step: step_rx,
            closing: self.closing.subscribe(),
        })
    }

    fn join(&self, run_id: &str) -> Option<Subscription> {
        let map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        map.get(run_id).map(|f| Subscription {
            events: f.events.subscribe(),
            last_step: f.last_step.clone(),
            closing: self.closing.subscribe(),
        })
    }

    /// Runs being watched now (for tests and the benchmark).
    pub fn watched(&self) -> usize {
        self.runs.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Polls the file for one run and broadcasts what is new, until nobody follows.
struct Watcher {
    store: Store,
    runs: Arc<Mutex<HashMap<String, Follow>>>,
    run: Run,
    cursor: Marks,
    events: broadcast::Sender<Arc<Event>>,
    last_step: watch::Sender<Option<i64>>,
    /// The newest evaluation sent (or there when the watcher started).
    evals: Option<EvalPoint>,
    alerts: Option<broadcast::Receiver<Arc<super::alerts::Notice>>>,
}

impl Watcher {
    async fn run(mut self) {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known_runs = self.store.runs_with_state(&self.run.model_id).await.ok();
        let mut failing: Option<String> = None;
        let mut polls = 0_u32;
        loop {
            tick.tick().await;
            if self.nobody_follows() {
                return;
            }
            self.send_alerts();
            polls = polls.wrapping_add(1);
            match self
                .poll(polls.is_multiple_of(RUNS_EVERY), &mut known_runs)
                .await
            {
                Ok(()) => failing = None,
                Err(e) => {
                    let error = e.to_string();
                    if failing.as_deref() != Some(&error) {
                        self.notice(&LiveMessage::Error {
                            error: error.clone(),
                        });
                        failing = Some(error);
                    }
                }
            }
        }
    }

    /// Removes this run from the hub when its last follower left. Under the hub's lock, so
    /// a follower joining at this moment either gets this watcher or starts a new one.
    fn nobody_follows(&self) -> bool {
        let mut map = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        if self.events.receiver_count() > 0 {
            return false;
        }
        map.remove(&self.run.run_id);
        true
    }

    async fn poll(
        &mut self,
        check_runs: bool,
        known: &mut Option<Vec<Run>>,
    ) -> Result<(), AppError> {
        let marks = self.store.live_marks().await?;
        let grew = marks != self.cursor;
        if grew {
            if self.cursor.replaced_by(&marks) {
                // A source was replaced (or shrank): start over from here and tell the
                // pages, which reload.
                self.cursor = marks.clone();
                *known = None;
            }
            // Catch up in pages without waiting for the next tick when far behind.
            while self.cursor != marks {
                let (pages, reached) = self
                    .store
                    .live_rows(&self.run, &self.cursor, &marks, PAGE)
                    .await?;
                self.send_rows(pages, reached.with_runs_of(&marks));
            }
        }
        // An evaluation line moves no mark: looked for when rows arrive, and on the periodic
        // check in case it came alone.
        if grew || check_runs {
            self.send_evals().await?;
        }
        if grew || check_runs || known.is_none() {
            // The run rows are cheap to read; judging their states reads each run's newest
            // steps. New rows (a commit) do not need a new judgement unless the rows changed:
            // states are judged again on the periodic check.
            let rows = self.store.runs(&self.run.model_id).await?;
            let same_rows = known.as_ref().is_some_and(|k| {
                k.len() == rows.len()
                    && k.iter().zip(&rows).all(|(a, b)| {
                        let unjudged = Run {
                            state: None,
                            ..a.clone()
                        };
                        unjudged == *b
                    })
            });
            if same_rows && !check_runs {
                return Ok(());
            }
            let runs = self.store.judged(rows).await?;
            if known.as_ref() != Some(&runs) {
                if let Some(run) = runs.iter().find(|r| r.run_id == self.run.run_id) {
                    self.run = run.clone();
                    self.notice(&LiveMessage::Run {
                        run: run.clone(),
                        runs: runs.clone(),
                    });
                }
                *known = Some(runs);
            }
        }
        Ok(())
    }

    fn send_rows(&mut self, pages: Vec<LiveRows>, reached: Marks) {
        let from = std::mem::replace(&mut self.cursor, reached.clone());
        for rows in pages.into_iter().filter(|r| !r.is_empty()) {
            if let Some(newest) = rows.steps.iter().map(|(_, s)| s.step).max() {
                self.last_step.send_if_modified(|last| {
                    let newer = last.is_none_or(|l| newest > l);
                    if newer {
                        *last = Some(newest);
                    }
                    newer
                });
            }
            let text = update_text(&rows, *self.last_step.borrow());
            // No receiver is not an error: the last follower may have just left.
            let _ = self.events.send(Arc::new(Event::Rows {
                from: from.reach(rows.source),
                to: reached.reach(rows.source),
                rows,
                text,
            }));
        }
    }

    /// Evaluations newer than the last sent, or the last one changed (its components come
    /// in a line of their own): a handful per run, read only when the files grew.
    async fn send_evals(&mut self) -> Result<(), AppError> {
        let points = self.store.evals(&self.run.run_id).await?.points;
        // Compared as sent: a NaN loss is never equal to itself, its JSON `null` is.
        let as_sent = |p: &EvalPoint| serde_json::to_value(p).ok();
        let sent = self.evals.as_ref();
        let fresh: Vec<EvalPoint> = points
            .into_iter()
            .filter(|p| {
                sent.is_none_or(|s| {
                    p.step > s.step || (p.step == s.step && as_sent(p) != as_sent(s))
                })
            })
            .collect();
        if let Some(newest) = fresh.last() {
            self.evals = Some(newest.clone());
            self.notice(&LiveMessage::Evals { points: fresh });
        }
        Ok(())
    }

    /// Alerts raised or resolved since the last tick, of any run.
    fn send_alerts(&mut self) {
        let Some(rx) = self.alerts.as_mut() else {
            return;
        };
        let mut told = Vec::new();
        loop {
            match rx.try_recv() {
                Ok(n) => told.push(n),
                // Fell behind: the page refetches the list on the next one anyway.
                Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                Err(_) => break,
            }
        }
        // History read at start is listed in the bell, not news to pass on.
        for n in told.into_iter().filter(|n| n.fresh) {
            self.notice(&LiveMessage::Alert {
                change: n.change,
                alert: n.alert.clone(),
            });
        }
    }

    fn notice(&self, message: &LiveMessage) {
        let _ = self.events.send(Arc::new(Event::Notice(to_text(message))));
    }
}

fn to_text(message: &LiveMessage) -> Utf8Bytes {
    serde_json::to_string(message)
        .unwrap_or_else(|e| format!(r#"{{"type":"error","error":"{e}"}}"#))
        .into()
}

/// The `update` message for `rows`.
pub fn update_text(rows: &LiveRows, last_step: Option<i64>) -> Utf8Bytes {
    fn strip<T: Clone>(v: &[(i64, T)]) -> Vec<T> {
        v.iter().map(|(_, r)| r.clone()).collect()
    }
    to_text(&LiveMessage::Update {
        steps: strip(&rows.steps),
        routing_mod: strip(&rows.routing_mod),
        routing_mor: strip(&rows.routing_mor),
        routing_moe: strip(&rows.routing_moe),
        last_step,
    })
}

// ---- one follower ---------------------------------------------------------------------

/// What the socket loop sends: the transport (axum, or a channel in tests) maps it.
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    Text(Utf8Bytes),
    /// Close with a code and a reason the client can act on.
    Close(u16, &'static str),
}

/// What the socket loop hears from the client; everything but a close is ignored.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    Frame,
    Close,
}

/// Close code for a follower that fell too far behind: reconnect with `after_step`.
pub const CLOSE_LAGGED: u16 = 4000;
/// Close code when the feed cannot be read; reconnect later.
pub const CLOSE_UNAVAILABLE: u16 = 1011;
/// Close code when the server shuts down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// Catch-up pages for one follower, then nothing.
pub trait CatchUp {
    /// The next page's message and the marks it was read at; `None` once caught up.
    fn next_page(
        &mut self,
    ) -> impl std::future::Future<Output = Result<Option<(Utf8Bytes, Marks)>, AppError>> + Send;
}

/// The store's catch-up from a step cursor.
pub struct StoreCatchUp {
    pub store: Store,
    pub run: Run,
    pub after_step: Option<i64>,
    pub last_step: watch::Receiver<Option<i64>>,
    /// Catch-up pages read at once across all followers (see [`CATCH_UPS_AT_ONCE`]).
    turns: Arc<tokio::sync::Semaphore>,
    done: bool,
    /// The cursor the follower came with, and whether its evaluations were sent.
    from_step: i64,
    evals_sent: bool,
}

/// Catch-up pages read at the same time, across every follower. Reads share two connections
/// to the file; a burst of followers catching up from the start would otherwise queue
/// hundreds of pages ahead of every other request (issue 13: `/api/models` unanswered for
/// minutes after 150 followers connected and left). With a few turns, a page request waits
/// for at most a few pages.
pub const CATCH_UPS_AT_ONCE: usize = 2;

impl StoreCatchUp {
    pub fn new(
        store: Store,
        run: Run,
        after_step: i64,
        last_step: watch::Receiver<Option<i64>>,
        turns: Arc<tokio::sync::Semaphore>,
    ) -> Self {
        Self {
            store,
            run,
            after_step: Some(after_step),
            last_step,
            turns,
            done: false,
            from_step: after_step,
            evals_sent: false,
        }
    }
}

impl CatchUp for StoreCatchUp {
    async fn next_page(&mut self) -> Result<Option<(Utf8Bytes, Marks)>, AppError> {
        if self.done {
            return self.evals_page().await;
        }
        let after = self.after_step.unwrap_or(i64::MIN);
        // The semaphore is never closed; without a turn, read anyway rather than fail.
        let _turn = self.turns.acquire().await.ok();
        let (rows, marks, next) = self.store.live_catch_up(&self.run, after, PAGE).await?;
        self.done = next.is_none();
        self.after_step = next;
        let newest = rows.steps.iter().map(|(_, s)| s.step).max();
        let last = match (newest, *self.last_step.borrow()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(Some((update_text(&rows, last), marks)))
    }
}

impl StoreCatchUp {
    /// After the steps: the evaluations after the follower's cursor, and the one at or
    /// before it (a page loaded just after a `Step` line has not seen its `[EVAL]` line).
    /// The page replaces by step, so sending one it has costs nothing.
    async fn evals_page(&mut self) -> Result<Option<(Utf8Bytes, Marks)>, AppError> {
        if std::mem::replace(&mut self.evals_sent, true) {
            return Ok(None);
        }
        let points = self.store.evals(&self.run.run_id).await?.points;
        let start = points
            .partition_point(|p| p.step <= self.from_step)
            .saturating_sub(1);
        let points = points[start..].to_vec();
        if points.is_empty() {
            return Ok(None);
        }
        let text = to_text(&LiveMessage::Evals { points });
        Ok(Some((text, Marks::default())))
    }
}

/// One follower's socket, from catch-up to close. Generic over the transport so it is
/// tested with channels; the axum handler adapts a `WebSocket` to it.
pub async fn follow<Tx, Rx>(
    mut sink: Tx,
    mut incoming: Rx,
    mut catch_up: impl CatchUp,
    mut sub: Subscription,
) where
    Tx: Sink<Outgoing> + Unpin,
    Rx: Stream<Item = Incoming> + Unpin,
{
    async fn send<Tx: Sink<Outgoing> + Unpin>(sink: &mut Tx, out: Outgoing) -> bool {
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, sink.send(out)).await,
            Ok(Ok(()))
        )
    }
    // The subscription was taken before the catch-up reads, so nothing falls between them.
    let mut seen = Marks::default();
    loop {
        // A follower that leaves mid catch-up stops its reads there: a burst of pages that
        // connected and closed must not keep the file busy for everyone else.
        let page = {
            let read = catch_up.next_page();
            tokio::pin!(read);
            loop {
                tokio::select! {
                    page = &mut read => break Some(page),
                    frame = incoming.next() => match frame {
                        Some(Incoming::Frame) => {}
                        Some(Incoming::Close) | None => break None,
                    },
                }
            }
        };
        let Some(page) = page else { return };
        match page {
            Ok(Some((text, marks))) => {
                seen = seen.max(&marks);
                if !send(&mut sink, Outgoing::Text(text)).await {
                    return;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let text = to_text(&LiveMessage::Error {
                    error: e.to_string(),
                });
                if send(&mut sink, Outgoing::Text(text)).await {
                    send(
                        &mut sink,
                        Outgoing::Close(CLOSE_UNAVAILABLE, "cannot read the database"),
                    )
                    .await;
                }
                return;
            }
        }
    }
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        if *sub.closing.borrow_and_update() {
            let reason = "the server is shutting down";
            send(&mut sink, Outgoing::Close(CLOSE_GOING_AWAY, reason)).await;
            return;
        }
        tokio::select! {
            changed = sub.closing.changed() => {
                // The hub is gone only when the server is: go away too.
                if changed.is_err() {
                    send(&mut sink, Outgoing::Close(CLOSE_GOING_AWAY, "the server stopped")).await;
                    return;
                }
            }
            event = sub.events.recv() => {
                heartbeat.reset();
                let out = match event.as_deref() {
                    Ok(Event::Rows { from, to, rows, text }) => {
                        let had = seen.reach(rows.source);
                        let text = if to.within(&had) {
                            None
                        } else if had.within(from) {
                            Some(text.clone())
                        } else {
                            let rest = rows.after(&had);
                            (!rest.is_empty()).then(|| update_text(&rest, *sub.last_step.borrow()))
                        };
                        seen.advance(rows.source, to);
                        text.map(Outgoing::Text)
                    }
                    Ok(Event::Notice(text)) => Some(Outgoing::Text(text.clone())),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        send(&mut sink, Outgoing::Close(CLOSE_LAGGED, "fell behind; reconnect with after_step")).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        send(&mut sink, Outgoing::Close(CLOSE_GOING_AWAY, "the feed stopped")).await;
                        return;
                    }
                };
                if let Some(out) = out {
                    if !send(&mut sink, out).await {
                        return;
                    }
                }
            }
            frame = incoming.next() => match frame {
                Some(Incoming::Frame) => {}
                Some(Incoming::Close) | None => return,
            },
            _ = heartbeat.tick() => {
                let text = to_text(&LiveMessage::Heartbeat { last_step: *sub.last_step.borrow() });
                if !send(&mut sink, Outgoing::Text(text)).await {
                    return;
                }
            }
        }
    }
}

// ---- the HTTP edge --------------------------------------------------------------------

/// `GET /ws/{run_id}?after_step=N`: checks the run and the cursor before upgrading, so a bad
/// request is a JSON 4xx like the rest of the API.
pub async fn ws_handler(
    State(state): State<AppState>,
    run_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let run_id = run_id
        .map(|Path(v)| v)
        .map_err(|e| AppError::bad_param("path", e.body_text()))?;
    let after_step = Query::parse(raw.as_deref()).int("after_step")?;
    let run = state.store.run(&run_id).await?;
    let upgrade = upgrade.map_err(|e| {
        AppError::bad_param(
            "upgrade",
            format!("{}; /ws/{{run_id}} is a WebSocket", e.body_text()),
        )
    })?;
    let hub = state.live.clone();
    let Some(slot) = SocketSlot::take(&hub.sockets) else {
        return Err(AppError::Busy);
    };
    let sub = hub.subscribe(&run).await?;
    // Without a cursor, the feed starts at the run's newest step, as the original did: its
    // UI appends every update, and a replay of the whole run drew it twice. (Our page always
    // sends its cursor.)
    let after_step = after_step.unwrap_or_else(|| sub.last_step.borrow().unwrap_or(i64::MIN));
    let catch_up = StoreCatchUp::new(
        state.store.clone(),
        run,
        after_step,
        sub.last_step.clone(),
        hub.catch_ups.clone(),
    );
    Ok(upgrade
        .max_message_size(MAX_INCOMING)
        .max_frame_size(MAX_INCOMING)
        .on_upgrade(move |socket| serve_socket(socket, catch_up, sub, slot))
        .into_response())
}

async fn serve_socket(
    socket: WebSocket,
    catch_up: StoreCatchUp,
    sub: Subscription,
    _slot: SocketSlot,
) {
    let (sink, stream) = socket.split();
    let sink = sink.with(|out: Outgoing| async move {
        Ok::<_, axum::Error>(match out {
            Outgoing::Text(t) => Message::Text(t),
            Outgoing::Close(code, reason) => Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })),
        })
    });
    // A transport error ends the stream like a close does.
    let incoming = stream
        .take_while(|m| std::future::ready(m.is_ok()))
        .map(|m| match m {
            Ok(Message::Close(_)) | Err(_) => Incoming::Close,
            Ok(_) => Incoming::Frame,
        });
    follow(Box::pin(sink), Box::pin(incoming), catch_up, sub).await;
}

/// One of [`MAX_FOLLOWERS`] socket slots, given back on drop.
struct SocketSlot(Arc<AtomicUsize>);

impl SocketSlot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Self> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_FOLLOWERS).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count.clone()))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests;
