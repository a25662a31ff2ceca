//! The one store behind REST, server functions, exports, snapshots, the page and the live
//! feed: the sources (`sources.rs`), the run cache (`run_cache.rs`) and whole-model answers
//! kept until the data changes. This file answers the plain reads — models, runs, pages of
//! steps and routing records, stats, what is new; `views.rs` puts analysis results together
//! into what the page, a zoom and a lineage show.

use super::compare_cache::CompareCache;
use super::error::AppError;
use super::kept::KeptRuns;
use super::run_cache::RunCache;
use super::source::{Fields, LiveRows, RoutingTable, Source};
use super::sources::{Marks, Sources};
use super::sqlite::SqliteSource;
use crate::model::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Most rows one API page may ask for.
pub const MAX_PAGE: i64 = 10_000;
/// Most steps one `/api/ema` answer carries (the original had no cap: 1M steps would be
/// tens of megabytes).
pub const MAX_EMA_STEPS: usize = 100_000;

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    sources: Sources,
    cache: RunCache,
    /// Model stats and milestones with the marks they were computed at: a finished run's
    /// are computed once, a training run's once per change at most.
    stats: Kept<String, ModelStats>,
    milestones: Kept<(String, i64), Milestones>,
    /// Runs held in their lean form for comparisons.
    compare: CompareCache,
    /// Where runs held for comparisons are kept for the next server, once a state
    /// directory is given.
    kept: std::sync::OnceLock<KeptRuns>,
    /// Each run's summary from one pass, for the runs table.
    digests: Digests,
    /// Comparisons as last sent, with the marks they were made at.
    sent: SentAnswers,
}

/// Run summaries for the runs table, with when they were made.
type Digests = Kept<String, (std::time::Instant, RunSummary)>;

type SentAnswers = Mutex<std::collections::VecDeque<(String, Marks, super::compare::SentAnswer)>>;

/// Whole-model answers worth keeping until the data changes, with the marks they were
/// computed at.
pub(super) type Kept<K, T> = Mutex<HashMap<K, (Marks, T)>>;

impl Store {
    /// A store reading `sources`.
    pub fn new(sources: Sources) -> Self {
        Self {
            inner: Arc::new(Inner {
                sources,
                cache: RunCache::default(),
                stats: Mutex::default(),
                milestones: Mutex::default(),
                compare: CompareCache::default(),
                kept: std::sync::OnceLock::new(),
                digests: Mutex::default(),
                sent: Mutex::default(),
            }),
        }
    }

    /// A store reading one source.
    pub fn of(source: impl Source) -> Self {
        Self::new(Sources::new(vec![Arc::new(source)]))
    }

    /// A store for the trainer's database at `path`, opened when it is first read and
    /// again whenever it appears, is replaced or recovers.
    pub fn watch(path: &Path) -> Self {
        Self::of(SqliteSource::watch(path))
    }

    /// A store for a trainer's working directory: its database at `db` (read once it
    /// exists) and its logs, diagnostics files and reports under `dirs`, while it trains.
    pub fn watch_trainer(db: &Path, dirs: super::files::Dirs) -> Self {
        // The files first: a run the trainer is writing is read from them, and stays read
        // from them when its database rows arrive at the end (its log and diagnostics file
        // hold every step the database gets, and more). A run only in the database is read
        // from it.
        Self::new(Sources::new(vec![
            Arc::new(super::files::FilesSource::new(dirs)),
            Arc::new(SqliteSource::watch(db)),
        ]))
    }

    /// Opens the database at `path` and checks that it is a HYDRA database; an error if it
    /// is missing or something else (for one-shot commands).
    pub async fn open(path: &Path) -> Result<Self, AppError> {
        let store = Self::watch(path);
        store.check().await?;
        Ok(store)
    }

    /// Whether the sources can be read now; the reason when one cannot.
    pub async fn check(&self) -> Result<(), AppError> {
        self.inner.sources.check().await
    }

    /// Lets go of every source, so nothing of ours keeps the trainer's files open.
    pub async fn close(&self) {
        self.inner.sources.close().await
    }

    pub(super) fn sources(&self) -> &Sources {
        &self.inner.sources
    }

    pub(super) fn cache(&self) -> &RunCache {
        &self.inner.cache
    }

    pub(super) fn compare_cache(&self) -> &CompareCache {
        &self.inner.compare
    }

    /// Keeps runs held for comparisons in `state_dir` for the next server, and takes up
    /// those a server before kept there. Set once; a second call is ignored.
    pub fn keep_compared_in(&self, state_dir: &Path) {
        let _ = self.inner.kept.set(KeptRuns::new(state_dir));
    }

    pub(super) fn kept(&self) -> Option<&KeptRuns> {
        self.inner.kept.get()
    }

    pub(super) fn digests(&self) -> &Digests {
        &self.inner.digests
    }

    pub(super) fn sent(&self) -> &SentAnswers {
        &self.inner.sent
    }

    /// Caps the memory the run cache holds, and the compare cache apart from it; least
    /// recently used runs go first.
    pub fn set_cache_budget(&self, bytes: usize) {
        self.inner.cache.set_budget(bytes);
        self.inner.compare.set_budget(bytes);
    }

    /// Bytes the run cache holds now.
    pub fn cache_bytes(&self) -> usize {
        self.inner.cache.bytes()
    }

    // ---- models and runs -------------------------------------------------------------

    /// Every model, oldest first.
    pub async fn models(&self) -> Result<Vec<Model>, AppError> {
        self.inner.sources.models().await
    }

    pub async fn model(&self, model_id: &str) -> Result<Model, AppError> {
        self.models()
            .await?
            .into_iter()
            .find(|m| m.model_id == model_id)
            .ok_or_else(|| AppError::NotFound {
                what: "model",
                id: model_id.into(),
            })
    }

    /// A model's runs, oldest first. Unknown model → 404.
    pub async fn runs(&self, model_id: &str) -> Result<Vec<Run>, AppError> {
        self.model(model_id).await?;
        self.inner.sources.runs(Some(model_id)).await
    }

    /// A model's runs, oldest first, each with its `state` judged (`run_states.rs`): what the
    /// API and the live feed give. Unknown model → 404.
    pub async fn runs_with_state(&self, model_id: &str) -> Result<Vec<Run>, AppError> {
        let runs = self.runs(model_id).await?;
        self.judged(runs).await
    }

    /// Every run of every model, oldest first.
    pub async fn all_runs(&self) -> Result<Vec<Run>, AppError> {
        self.inner.sources.runs(None).await
    }

    pub async fn run(&self, run_id: &str) -> Result<Run, AppError> {
        Ok(self.inner.sources.run(run_id).await?.0)
    }

    /// The run and the source it is read from.
    pub(super) async fn located(&self, run_id: &str) -> Result<(Run, usize), AppError> {
        self.inner.sources.run(run_id).await
    }

    pub async fn run_detail(&self, run_id: &str) -> Result<RunDetail, AppError> {
        let mut run = self.run(run_id).await?;
        if let Ok(runs) = self.runs_with_state(&run.model_id).await {
            if let Some(judged) = runs.into_iter().find(|r| r.run_id == run.run_id) {
                run = judged;
            }
        }
        let config = run.config();
        Ok(RunDetail {
            config: config.to_json(),
            config_error: config.error(),
            run,
        })
    }

    // ---- steps -----------------------------------------------------------------------

    /// One page of a run's steps from `start_step` on, at most `limit` rows.
    pub async fn steps(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        limit: i64,
    ) -> Result<StepPage, AppError> {
        let run = self.located(run_id).await?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let from = start_step.unwrap_or(i64::MIN);
        let sources = &self.inner.sources;
        let mut steps = sources
            .steps(&run, (from, i64::MAX), false, limit, Fields::All)
            .await?;
        let max_step = sources.last_step(&run).await?;
        let next_start_step = (steps.len() == limit)
            .then(|| steps.last().and_then(|s| s.step.checked_add(1)))
            .flatten()
            .filter(|next| max_step.is_some_and(|m| *next <= m));
        for s in &mut steps {
            s.mark_nonfinite();
        }
        Ok(StepPage {
            run_id: run.0.run_id,
            model_id: run.0.model_id,
            count: steps.len(),
            steps,
            max_step,
            next_start_step,
        })
    }

    /// The run's newest rows, newest first.
    pub async fn recent_steps(&self, run_id: &str, n: i64) -> Result<Vec<Step>, AppError> {
        let run = self.located(run_id).await?;
        let n = usize::try_from(n).unwrap_or(0);
        let mut steps = self
            .inner
            .sources
            .steps(&run, (i64::MIN, i64::MAX), true, n, Fields::All)
            .await?;
        for s in &mut steps {
            s.mark_nonfinite();
        }
        Ok(steps)
    }

    // ---- routing ---------------------------------------------------------------------

    /// A page of a routing table's rows for a run, from `start_step`, at most `limit`, whole
    /// steps only: a page never ends in the middle of a step's layers, so `next_start_step`
    /// loses nothing.
    pub async fn routing<T: RoutingTable>(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        limit: i64,
    ) -> Result<RoutingPage<T>, AppError> {
        let run = self.located(run_id).await?;
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        self.inner
            .sources
            .routing_page(&run, start_step, limit)
            .await
    }

    /// `/api/eval/{run_id}`: the run's evaluations.
    pub async fn evals(&self, run_id: &str) -> Result<EvalPage, AppError> {
        let run = self.located(run_id).await?;
        let points = self.inner.sources.evals(&run).await?;
        Ok(EvalPage {
            run_id: run.0.run_id,
            points,
        })
    }

    /// `/api/adaptive_lr/{run_id}`: up to `limit` controller records from `start_step`.
    pub async fn adaptive_lr(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        limit: usize,
    ) -> Result<AdaptiveLrPage, AppError> {
        let run = self.located(run_id).await?;
        let from = start_step.unwrap_or(i64::MIN);
        let data = self
            .inner
            .sources
            .adaptive_lr(&run, (from, i64::MAX), limit.max(1))
            .await?;
        Ok(AdaptiveLrPage {
            run_id: run.0.run_id,
            data,
        })
    }

    /// `/api/ema/{model_id}`: the loss and the three EMAs as stored, over the model's steps
    /// in `range` (every run of it), at most [`MAX_EMA_STEPS`] steps an answer.
    pub async fn ema(&self, model_id: &str, range: (i64, i64)) -> Result<EmaSeries, AppError> {
        let mut steps: Vec<Step> = Vec::new();
        for run in self.runs(model_id).await? {
            let run = self.located(&run.run_id).await?;
            let mut from = range.0;
            // One more than fits tells whether the answer is cut short.
            while steps.len() <= MAX_EMA_STEPS {
                let page = self
                    .inner
                    .sources
                    .steps(&run, (from, range.1), false, 10_000, Fields::RunCache)
                    .await?;
                let next = page.last().and_then(|s| s.step.checked_add(1));
                let full = page.len() == 10_000;
                steps.extend(page);
                match next {
                    Some(n) if full => from = n,
                    _ => break,
                }
            }
        }
        steps.sort_by_key(|s| s.step);
        let next_start_step = (steps.len() > MAX_EMA_STEPS).then(|| steps[MAX_EMA_STEPS].step);
        steps.truncate(MAX_EMA_STEPS);
        let pairs = |f: fn(&Step) -> Option<f64>| -> Vec<(i64, Option<f64>)> {
            steps
                .iter()
                .map(|s| (s.step, f(s).filter(|v| v.is_finite())))
                .collect()
        };
        Ok(EmaSeries {
            raw: pairs(|s| s.loss_total),
            short: pairs(|s| s.ema_short),
            medium: pairs(|s| s.ema_medium),
            long: pairs(|s| s.ema_long),
            next_start_step,
        })
    }

    /// `/api/routing/{kind}/{run_id}?limit=N`: the records of up to `steps` whole steps
    /// from `start_step` (every layer of each), as the original API counted its `limit`.
    /// Read a bounded page of records at a time.
    pub async fn routing_steps<T: RoutingTable>(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        steps: usize,
    ) -> Result<RoutingPage<T>, AppError> {
        let run = self.located(run_id).await?;
        let sources = &self.inner.sources;
        let mut data: Vec<T> = Vec::new();
        let (mut next, mut counted) = (start_step, 0_usize);
        loop {
            let page = sources
                .routing_page::<T>(&run, next, MAX_PAGE as usize)
                .await?;
            for row in page.data {
                if data.last().is_none_or(|last| last.step() != row.step()) {
                    counted += 1;
                    if counted > steps.max(1) {
                        return Ok(RoutingPage {
                            run_id: run.0.run_id,
                            data,
                            next_start_step: Some(row.step()),
                        });
                    }
                }
                data.push(row);
            }
            match page.next_start_step {
                Some(n) => next = Some(n),
                None => {
                    return Ok(RoutingPage {
                        run_id: run.0.run_id,
                        data,
                        next_start_step: None,
                    })
                }
            }
        }
    }

    // ---- whole-model answers ---------------------------------------------------------

    /// `/api/stats/{model_id}`: counts and losses over the whole lineage.
    pub async fn model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        let compute = self.inner.sources.model_stats(model_id);
        self.unless_changed(&self.inner.stats, model_id.to_string(), compute)
            .await
    }

    /// `/api/milestones/{model_id}`: for each bucket of `interval` steps, keyed by its first
    /// step, the best finite loss within it (the original API's meaning).
    pub async fn milestones(&self, model_id: &str, interval: i64) -> Result<Milestones, AppError> {
        let interval = interval.max(1);
        let compute = self.inner.sources.milestones(model_id, interval);
        self.unless_changed(
            &self.inner.milestones,
            (model_id.to_string(), interval),
            compute,
        )
        .await
    }

    /// The answer kept for `key` if the sources have not changed since (nothing added,
    /// re-logged or rewritten: the same marks), else `compute`'s, kept.
    async fn unless_changed<K, T, F>(
        &self,
        kept: &Kept<K, T>,
        key: K,
        compute: F,
    ) -> Result<T, AppError>
    where
        K: std::hash::Hash + Eq,
        T: Clone,
        F: std::future::Future<Output = Result<T, AppError>>,
    {
        let marks = self.live_marks().await?;
        let kept_now = kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|(at, _)| *at == marks)
            .map(|(_, a)| a.clone());
        if let Some(a) = kept_now {
            return Ok(a);
        }
        let fresh = compute.await?;
        let mut map = kept.lock().unwrap_or_else(|e| e.into_inner());
        // A handful of models and intervals; a client cycling through intervals cannot
        // grow it without bound.
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(key, (marks, fresh.clone()));
        Ok(fresh)
    }

    // ---- the live feed ---------------------------------------------------------------

    /// How far every source reaches now: cheap enough to ask several times a second.
    pub async fn live_marks(&self) -> Result<Marks, AppError> {
        self.inner.sources.marks().await
    }

    /// A run's records that arrived after `from` and up to `to`, a page per source with at
    /// most `limit` rows a feed; and how far they reach (the rest comes next time).
    pub async fn live_rows(
        &self,
        run: &Run,
        from: &Marks,
        to: &Marks,
        limit: usize,
    ) -> Result<(Vec<LiveRows>, Marks), AppError> {
        self.inner.sources.changes(run, from, to, limit).await
    }

    /// One page of a follower's catch-up: the run's steps after `after_step` (at most
    /// `limit`) and its routing records up to the last of them, with the marks they were
    /// read at, so that what the feed sends next neither repeats nor misses a row. `None` as
    /// the next cursor: caught up.
    pub async fn live_catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<(LiveRows, Marks, Option<i64>), AppError> {
        let run = self.located(&run.run_id).await?;
        self.inner.sources.catch_up(&run, after_step, limit).await
    }

    // ---- where the runs come from ----------------------------------------------------

    /// What the sidebar says about the sources.
    pub async fn db_info(&self) -> Result<DbInfo, AppError> {
        self.inner.sources.info().await
    }
}
