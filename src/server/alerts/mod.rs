//! Alerts, server side: every run watched in the background, whether or not a page is open,
//! at the cadence its files grow; what the detectors raise and resolve kept in one book that
//! `/api/alerts` and the page read, and told to whoever subscribed (webhooks, the feed).

pub mod follow;
pub mod journal;
pub mod webhooks;

use super::error::AppError;
use super::local_time;
use super::store::Store;
use crate::analysis::alerts::Rules;
use crate::analysis::time::parse_iso8601;
use crate::model::{Alert, AlertChange, AlertList, Run, TrainingState};
use follow::Followed;
use journal::{Journal, Message};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use webhooks::Webhooks;

/// How often the watcher asks the sources whether anything grew (one cheap statement).
pub const POLL: Duration = Duration::from_millis(250);
/// How often every run's state is judged again even when nothing grew (a stall is silence).
const JUDGE_EVERY: Duration = Duration::from_secs(5);
/// Changes a slow subscriber may fall behind by before it misses some.
const RING: usize = 1_024;

/// An alert raised or resolved, as the watcher tells it.
#[derive(Clone, Debug)]
pub struct Notice {
    pub change: AlertChange,
    pub alert: Alert,
    /// Happened while watched, not found in the history read at start: worth telling people.
    pub fresh: bool,
}

/// Every run's alerts, shared by the watcher (which writes) and the handlers (which read).
#[derive(Clone)]
pub struct Alerts {
    book: Arc<Mutex<Book>>,
    notices: broadcast::Sender<Arc<Notice>>,
    webhooks: Arc<Mutex<Webhooks>>,
}

/// Where the watcher keeps what it said, and whom it tells.
pub struct Telling {
    pub journal: Arc<Mutex<Journal>>,
    pub webhooks: Webhooks,
}

impl Telling {
    /// The memory in `state_dir` of the runs in `watched` (each directory of runs has its
    /// own: run ids repeat across them), and a task per webhook URL (refused when one is not
    /// an http(s) URL).
    pub fn new(
        state_dir: &std::path::Path,
        watched: &std::path::Path,
        webhook_urls: &[String],
        public_url: Option<String>,
    ) -> Result<Self, String> {
        let journal = Arc::new(Mutex::new(Journal::open(&memory_dir(state_dir, watched))));
        let webhooks = Webhooks::start(webhook_urls, public_url, journal.clone())?;
        Ok(Self { journal, webhooks })
    }
}

#[derive(Default)]
struct Book {
    /// Per run, its alerts in the order raised.
    runs: BTreeMap<String, Vec<Alert>>,
    /// Runs whose history is still being read; `None` until the watcher first listed the
    /// runs (right after start every run's history is unread, how many is not known yet).
    pending: Option<usize>,
}

/// What `/api/alerts` asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertFilter {
    pub run_id: Option<String>,
    /// Only alerts raised or resolved at or after this time (seconds, the trainer's clock).
    pub since: Option<f64>,
    pub state: StateFilter,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateFilter {
    #[default]
    All,
    Open,
    Resolved,
}

impl Default for Alerts {
    fn default() -> Self {
        Self::new()
    }
}

impl Alerts {
    /// An empty book; [`Alerts::start`] sets a watcher filling it.
    pub fn new() -> Self {
        Self {
            book: Arc::default(),
            notices: broadcast::channel(RING).0,
            webhooks: Arc::default(),
        }
    }

    /// Watches every run of `store` until the server stops, keeping what it said in
    /// `telling`'s journal and telling its webhooks.
    pub fn start(
        &self,
        store: Store,
        rules: Rules,
        telling: Option<Telling>,
    ) -> tokio::task::JoinHandle<()> {
        let mut watcher = Watcher::new(store, rules, self.clone());
        if let Some(t) = telling {
            *lock(&self.webhooks) = t.webhooks.clone();
            watcher.telling = Some(t);
        }
        tokio::spawn(watcher.run())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.notices.subscribe()
    }

    /// The alerts asked for, newest first, and how many of them are open.
    pub fn list(&self, filter: &AlertFilter) -> AlertList {
        let book = lock(&self.book);
        let mut alerts: Vec<Alert> = book
            .runs
            .iter()
            .filter(|(run, _)| filter.run_id.as_ref().is_none_or(|r| r == *run))
            .flat_map(|(_, alerts)| alerts.iter())
            .filter(|a| match filter.state {
                StateFilter::All => true,
                StateFilter::Open => a.is_open(),
                StateFilter::Resolved => a.resolved_step.is_some(),
            })
            .filter(|a| {
                filter.since.is_none_or(|since| {
                    [&a.time, &a.resolved_time]
                        .into_iter()
                        .flatten()
                        .filter_map(|t| parse_iso8601(t))
                        .any(|t| t >= since)
                })
            })
            .cloned()
            .collect();
        alerts.sort_by(newest_first);
        AlertList {
            open: alerts.iter().filter(|a| a.is_open()).count(),
            alerts,
            pending_runs: book.pending.unwrap_or(0),
            history_read: book.pending == Some(0),
            webhooks: lock(&self.webhooks).status(),
        }
    }

    /// The alerts of `runs` as chart marks, in step order.
    pub fn marks(&self, runs: &[&str]) -> Vec<crate::model::AlertMark> {
        let book = lock(&self.book);
        let mut marks: Vec<crate::model::AlertMark> = runs
            .iter()
            .filter_map(|r| book.runs.get(*r))
            .flatten()
            .filter(|a| !a.kind.informational())
            .map(|a| crate::model::AlertMark {
                step: a.step,
                kind: a.kind,
                open: a.is_open(),
            })
            .collect();
        marks.sort_by_key(|m| m.step);
        marks
    }

    fn record(&self, run_id: &str, alerts: &[Alert], notices: Vec<Notice>) {
        lock(&self.book)
            .runs
            .insert(run_id.to_string(), alerts.to_vec());
        for notice in notices {
            // Nobody listening is fine.
            let _ = self.notices.send(Arc::new(notice));
        }
    }

    fn set_pending(&self, pending: usize) {
        lock(&self.book).pending = Some(pending);
    }
}

/// Newest first: by the trainer's time (alerts without one last), then step, then run. One
/// key for all, so the order is total whatever mix of times there is.
fn newest_first(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    let time = |x: &Alert| {
        x.time
            .as_deref()
            .and_then(parse_iso8601)
            .unwrap_or(f64::NEG_INFINITY)
    };
    time(b)
        .total_cmp(&time(a))
        .then_with(|| b.step.cmp(&a.step))
        .then_with(|| a.run_id.cmp(&b.run_id))
        .then_with(|| a.kind.cmp(&b.kind))
}

/// The background task: follows every run through the store.
struct Watcher {
    store: Store,
    rules: Rules,
    alerts: Alerts,
    runs: HashMap<String, Followed>,
    marks: Option<super::sources::Marks>,
    judged_at: Option<Instant>,
    /// The history present at start has been read.
    started: bool,
    telling: Option<Telling>,
    /// A run that cannot be read fails the look (a replay must not say "nothing open" of a
    /// run it could not read); watching carries on with the others instead.
    strict: bool,
}

impl Watcher {
    fn new(store: Store, rules: Rules, alerts: Alerts) -> Self {
        Self {
            store,
            rules,
            alerts,
            runs: HashMap::new(),
            marks: None,
            judged_at: None,
            started: false,
            telling: None,
            strict: false,
        }
    }

    async fn run(mut self) {
        loop {
            if let Err(e) = self.tick().await {
                tracing::debug!("watching runs for alerts: {e}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One look: when any source grew, read what every run still going gained; every
    /// [`JUDGE_EVERY`], judge each run's state (a stall is the absence of growth).
    async fn tick(&mut self) -> Result<(), AppError> {
        let marks = self.store.live_marks().await?;
        let grew = self.marks.as_ref() != Some(&marks);
        let judge = self.judged_at.is_none_or(|t| t.elapsed() >= JUDGE_EVERY);
        if !grew && !judge {
            return Ok(());
        }
        let runs = self.judged_runs().await?;
        self.alerts.set_pending(self.unread(&runs));
        let (utc_now, local_now) = local_time::now();
        for (run, resumed_by) in &runs {
            let state = run.state.unwrap_or(TrainingState::Training);
            let started = self.started;
            let followed = self
                .runs
                .entry(run.run_id.clone())
                .or_insert_with(|| Followed::new(run, &self.rules, started));
            let first = !followed.read;
            let due = if followed.stopped() {
                judge
            } else {
                grew || judge
            };
            if first || (!followed.ended() && due) {
                let done = state != TrainingState::Training;
                if let Err(e) = followed.catch_up(&self.store, &run.run_id, done).await {
                    if self.strict {
                        return Err(e);
                    }
                    // Tried again next time; its history is still unread, so still not news.
                    tracing::debug!("reading {} for alerts: {e}", run.run_id);
                    continue;
                }
            }
            let zoned = run.last_seen.as_deref().is_some_and(local_time::has_zone);
            let now = if zoned { utc_now } else { local_now };
            // A later run of the model took over only if it started after this one's last
            // step: runs of a sweep train side by side, none resuming another.
            let resumed_by = resumed_by
                .as_ref()
                .filter(|next| {
                    let began = next.start_time.as_deref().and_then(parse_iso8601);
                    match (began, followed.watch.last_time()) {
                        (Some(began), Some(last)) => began >= last,
                        _ => true,
                    }
                })
                .map(|next| next.run_id.as_str());
            followed.watch.state(state, now, resumed_by);
            followed.state = Some(state);
            // What the first read of a run present at start finds is its history.
            let news = followed.born_watching || !first;
            followed.read = true;
            let changes = followed.watch.take_changes();
            let notices = tell(self.telling.as_ref(), run, changes, news);
            if let (Some(t), Some(last)) = (&self.telling, followed.watch.last_step()) {
                lock(&t.journal).set_watermark(&run.run_id, last);
            }
            if !notices.is_empty() || first {
                self.alerts
                    .record(&run.run_id, followed.watch.alerts(), notices);
            }
        }
        if let Some(t) = &self.telling {
            lock(&t.journal).save_watermarks((utc_now, local_now));
        }
        // A run that could not be read is tried again next look: its history is still unread.
        self.alerts.set_pending(self.unread(&runs));
        self.started = true;
        self.marks = Some(marks);
        if judge {
            self.judged_at = Some(Instant::now());
        }
        Ok(())
    }

    /// How many of `runs` have not had their history read yet.
    fn unread(&self, runs: &[(Run, Option<Run>)]) -> usize {
        runs.iter()
            .filter(|(r, _)| !self.runs.get(&r.run_id).is_some_and(|f| f.read))
            .count()
    }

    /// Every run with its state judged and the run that resumed it (the next of its model),
    /// runs still going first so a long history read at start does not hold them up.
    async fn judged_runs(&self) -> Result<Vec<(Run, Option<Run>)>, AppError> {
        let mut by_model: BTreeMap<String, Vec<Run>> = BTreeMap::new();
        for run in self.store.all_runs().await? {
            by_model.entry(run.model_id.clone()).or_default().push(run);
        }
        let mut out = Vec::new();
        for runs in by_model.into_values() {
            let judged = self.store.judged(runs).await?;
            let next: Vec<Option<Run>> = judged
                .iter()
                .skip(1)
                .cloned()
                .map(Some)
                .chain([None])
                .collect();
            out.extend(judged.into_iter().zip(next));
        }
        out.sort_by_key(|(r, _)| {
            !matches!(
                r.state,
                None | Some(TrainingState::Training | TrainingState::Stalled)
            )
        });
        Ok(out)
    }
}

/// `{state_dir}/alerts/{name}-{digest}`: named after the directory of runs watched, told
/// apart by a digest of its full path.
pub fn memory_dir(state_dir: &std::path::Path, watched: &std::path::Path) -> std::path::PathBuf {
    let full = std::fs::canonicalize(watched).unwrap_or_else(|_| watched.to_path_buf());
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    state_dir
        .join("alerts")
        .join(crate::server::digest::file_name(
            &name,
            "-.",
            40,
            &full.to_string_lossy(),
        ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which of `run`'s changes are news — not in the journal, and either found while watching
/// or in a run watched before (it happened while the dashboard was down) — noted in the
/// journal and handed to the webhooks. A run's history the first time it is seen is listed,
/// not told.
fn tell(
    telling: Option<&Telling>,
    run: &Run,
    changes: Vec<(AlertChange, Alert)>,
    watching: bool,
) -> Vec<Notice> {
    let Some(t) = telling else {
        return changes
            .into_iter()
            .map(|(change, alert)| Notice {
                change,
                alert,
                fresh: watching,
            })
            .collect();
    };
    let mut journal = lock(&t.journal);
    // Watched before, or begun after the last dashboard on this memory stopped watching: what
    // it holds that the journal does not know happened while no one watched.
    let began_unwatched = match (journal.last_alive(), run.start_time.as_deref()) {
        (Some((utc, local)), Some(start)) => parse_iso8601(start).is_some_and(|s| {
            s >= if local_time::has_zone(start) {
                utc
            } else {
                local
            }
        }),
        _ => false,
    };
    let watched_before = journal.watermark(&run.run_id).is_some() || began_unwatched;
    changes
        .into_iter()
        .map(|(change, alert)| {
            let key = journal::key(change, &alert);
            let fresh = !journal.knows(&key) && (watching || watched_before);
            let message = (fresh && !t.webhooks.is_empty()).then(|| Message {
                change,
                alert: alert.clone(),
                at: local_time::now().0,
            });
            journal.know(key.clone(), message.clone());
            if let Some(m) = &message {
                t.webhooks.send(&key, m);
            }
            Notice {
                change,
                alert,
                fresh,
            }
        })
        .collect()
}

/// Every run's alerts from its whole history, as the watcher would find them: what
/// `hydra-dashboard alerts` prints. Run `only` alone when given.
pub async fn replay(
    store: &Store,
    rules: &Rules,
    only: Option<&str>,
) -> Result<Vec<Alert>, AppError> {
    let alerts = Alerts::new();
    let mut watcher = Watcher::new(store.clone(), rules.clone(), alerts.clone());
    watcher.strict = true;
    if let Some(run_id) = only {
        store.run(run_id).await?;
    }
    watcher.tick().await?;
    let order: HashMap<String, usize> = store
        .all_runs()
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, r)| (r.run_id, i))
        .collect();
    let mut list = alerts
        .list(&AlertFilter {
            run_id: only.map(str::to_string),
            ..Default::default()
        })
        .alerts;
    // Run by run, oldest first, each in step order: reads as the runs' story.
    list.sort_by_key(|a| (order.get(&a.run_id).copied(), a.step, a.kind));
    Ok(list)
}
