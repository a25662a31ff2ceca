//! The seam between where runs come from and everything that shows them.
//!
//! A [`Source`] is one place runs are read from: the trainer's SQLite file today
//! (`server::sqlite`), the trainer's log and diagnostics files or a team's PostgreSQL
//! tomorrow. It answers a few plain questions — its models and runs, a run's steps and
//! routing records in a step range, how far it reaches now and what a run gained since, facts
//! about itself — and nothing else: the run cache, the page and zoom views, the REST API,
//! server functions, exports, snapshots and the live feed all read through here
//! (`server::sources` puts several sources together), never a file directly.
//!
//! Sources only read. Each keeps its own reads short and its own errors named
//! ([`AppError`]); what it cannot answer it leaves to the defaults below.

use super::error::AppError;
use crate::model::{
    AdaptiveLr, DbInfo, EvalPoint, Metric, Milestones, Model, ModelStats, RoutingMod, RoutingMoe,
    RoutingMor, Run, Step,
};

/// Rows per read when a default below pages through a source.
const DEFAULT_PAGE: usize = 10_000;

/// How far each of a source's feeds reaches: positions that only grow while the source is
/// appended to (for the SQLite file, each table's highest rowid), and the source's epoch,
/// which changes when it was replaced (a file deleted and written anew). "New" is everything
/// between two reaches of the same epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Reach {
    pub epoch: u64,
    pub steps: i64,
    pub routing_mod: i64,
    pub routing_mor: i64,
    pub routing_moe: i64,
    /// Run records: a change here is a new or rewritten run row.
    pub runs: i64,
}

impl Reach {
    /// Every feed of `self` is at or below `other`'s, in the same epoch.
    pub fn within(&self, other: &Reach) -> bool {
        self.epoch == other.epoch
            && self.steps <= other.steps
            && self.routing_mod <= other.routing_mod
            && self.routing_mor <= other.routing_mor
            && self.routing_moe <= other.routing_moe
    }

    /// Each feed as far as the further of the two reaches it (same epoch assumed).
    pub fn max(&self, other: &Reach) -> Reach {
        Reach {
            epoch: self.epoch.max(other.epoch),
            steps: self.steps.max(other.steps),
            routing_mod: self.routing_mod.max(other.routing_mod),
            routing_mor: self.routing_mor.max(other.routing_mor),
            routing_moe: self.routing_moe.max(other.routing_moe),
            runs: self.runs.max(other.runs),
        }
    }

    /// `now` cannot follow on from `self`: the source was replaced, or shrank.
    pub fn replaced_by(&self, now: &Reach) -> bool {
        self.epoch != now.epoch
            || now.steps < self.steps
            || now.routing_mod < self.routing_mod
            || now.routing_mor < self.routing_mor
            || now.routing_moe < self.routing_moe
    }
}

/// A run's records for the live feed and the run cache, each with its position in its feed
/// (0 in a catch-up page, which is read below a reach and needs none), from one source.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveRows {
    /// Which source they came from: its place in `Sources`.
    pub source: usize,
    pub steps: Vec<(i64, Step)>,
    pub routing_mod: Vec<(i64, RoutingMod)>,
    pub routing_mor: Vec<(i64, RoutingMor)>,
    pub routing_moe: Vec<(i64, RoutingMoe)>,
}

impl LiveRows {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
            && self.routing_mod.is_empty()
            && self.routing_mor.is_empty()
            && self.routing_moe.is_empty()
    }

    /// The rows beyond `seen`: what a reader whose catch-up reached `seen` still needs.
    pub fn after(&self, seen: &Reach) -> LiveRows {
        fn above<T: Clone>(v: &[(i64, T)], mark: i64) -> Vec<(i64, T)> {
            v.iter().filter(|(at, _)| *at > mark).cloned().collect()
        }
        LiveRows {
            source: self.source,
            steps: above(&self.steps, seen.steps),
            routing_mod: above(&self.routing_mod, seen.routing_mod),
            routing_mor: above(&self.routing_mor, seen.routing_mor),
            routing_moe: above(&self.routing_moe, seen.routing_moe),
        }
    }
}

/// Which of a step's fields a read needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    /// Every field: API pages, exports, the recent-steps table.
    All,
    /// Only what the run cache folds in (`Metric::FOR_RUN_CACHE`, the timestamp, batch size
    /// and sequence length): the one full read a run costs is kept lean.
    RunCache,
    /// The loss and these metrics, with the timestamp, batch size and sequence length: what
    /// a comparison holds, a third of the run cache's columns for one metric.
    Metrics(MetricSet),
}

/// Some of [`Metric::ALL`], as bits by position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricSet(u32);

impl MetricSet {
    pub fn of(metrics: &[Metric]) -> Self {
        Self(metrics.iter().fold(0, |bits, &m| bits | 1 << m as u32))
    }

    /// The metrics in the set, in [`Metric::ALL`]'s order.
    pub fn metrics(self) -> impl Iterator<Item = Metric> {
        Metric::ALL
            .into_iter()
            .filter(move |&m| self.0 & 1 << m as u32 != 0)
    }
}

/// The three routers' records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingKind {
    Mod,
    Mor,
    Moe,
}

/// Routing records of one kind, in step order (then layer).
#[derive(Clone, Debug, PartialEq)]
pub enum RoutingRows {
    Mod(Vec<RoutingMod>),
    Mor(Vec<RoutingMor>),
    Moe(Vec<RoutingMoe>),
}

impl RoutingRows {
    /// No records of `kind`: a table the source does not have, a run it does not know.
    pub fn empty(kind: RoutingKind) -> Self {
        match kind {
            RoutingKind::Mod => Self::Mod(Vec::new()),
            RoutingKind::Mor => Self::Mor(Vec::new()),
            RoutingKind::Moe => Self::Moe(Vec::new()),
        }
    }
}

/// A routing record type as the readers page through it.
pub trait RoutingTable: Sized + Send + 'static {
    const KIND: RoutingKind;
    /// One record per layer and step (MoD, MoR), ordered by layer within a step.
    const PER_LAYER: bool;
    fn step(&self) -> i64;
    /// The records of this type in `rows` (none when they are another kind's).
    fn take(rows: RoutingRows) -> Vec<Self>;
}

impl RoutingTable for RoutingMod {
    const KIND: RoutingKind = RoutingKind::Mod;
    const PER_LAYER: bool = true;
    fn step(&self) -> i64 {
        self.step
    }
    fn take(rows: RoutingRows) -> Vec<Self> {
        match rows {
            RoutingRows::Mod(v) => v,
            _ => Vec::new(),
        }
    }
}

impl RoutingTable for RoutingMor {
    const KIND: RoutingKind = RoutingKind::Mor;
    const PER_LAYER: bool = true;
    fn step(&self) -> i64 {
        self.step
    }
    fn take(rows: RoutingRows) -> Vec<Self> {
        match rows {
            RoutingRows::Mor(v) => v,
            _ => Vec::new(),
        }
    }
}

impl RoutingTable for RoutingMoe {
    const KIND: RoutingKind = RoutingKind::Moe;
    const PER_LAYER: bool = false;
    fn step(&self) -> i64 {
        self.step
    }
    fn take(rows: RoutingRows) -> Vec<Self> {
        match rows {
            RoutingRows::Moe(v) => v,
            _ => Vec::new(),
        }
    }
}

/// A catch-up page: a run's records after a step, the reach they were read at (so the live
/// feed neither repeats nor misses what follows), and the step to continue after (`None`:
/// caught up).
pub type CatchUpPage = (LiveRows, Reach, Option<i64>);

/// One place runs come from. Every method only reads; errors say what is wrong in the
/// user's words (a missing file, a busy writer, not a HYDRA database).
#[async_trait::async_trait]
pub trait Source: Send + Sync + 'static {
    /// Whether it can be read now; the reason when it cannot.
    async fn check(&self) -> Result<(), AppError>;

    /// Its models, oldest first.
    async fn models(&self) -> Result<Vec<Model>, AppError>;

    /// Its runs (of `model_id`, or all), oldest first.
    async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError>;

    /// The run `run_id`, if this source knows it.
    async fn run(&self, run_id: &str) -> Result<Option<Run>, AppError> {
        Ok(self
            .runs(None)
            .await?
            .into_iter()
            .find(|r| r.run_id == run_id))
    }

    /// The steps a run's records can lie in (its model's step numbering is shared by its
    /// runs). A change means the run's records must be read again.
    async fn span(&self, _run: &Run) -> Result<(i64, i64), AppError> {
        Ok((i64::MIN, i64::MAX))
    }

    /// Up to `limit` of the run's steps within `range` (inclusive): from the low end up,
    /// or from the high end down when `newest_first`.
    async fn steps(
        &self,
        run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError>;

    /// Up to `limit` of the run's routing records of `kind` within `range`, in step order
    /// (then layer).
    async fn routing(
        &self,
        run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError>;

    /// Up to `limit` of the run's adaptive-LR controller records within `range`, in step
    /// order. A source without them has none.
    async fn adaptive_lr(
        &self,
        _run: &Run,
        _range: (i64, i64),
        _limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        Ok(Vec::new())
    }

    /// The run's evaluations, in step order. Only the trainer's log has them.
    async fn evals(&self, _run: &Run) -> Result<Vec<EvalPoint>, AppError> {
        Ok(Vec::new())
    }

    /// How far it reaches now: cheap, asked several times a second by the live feed.
    async fn reach(&self) -> Result<Reach, AppError>;

    /// The run's records that arrived after `from` and up to `to`, in arrival order, at most
    /// `limit` per feed; and how far they reach (`to`, or less when a feed hit `limit`).
    async fn changes(
        &self,
        run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError>;

    /// The run's steps after `after_step` (at most `limit`) and its routing records up to
    /// the last of them, read together with the reach: see [`CatchUpPage`].
    async fn catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError>;

    /// Facts about itself for the sidebar.
    async fn info(&self) -> Result<DbInfo, AppError>;

    /// Counts and losses over a model's whole lineage. The default reads every step of the
    /// model's runs; a source that can aggregate where the data is does better.
    async fn model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        let runs = self.runs(Some(model_id)).await?;
        let mut stats = crate::analysis::milestones::StatsBuilder::default();
        for run in &runs {
            self.each_loss(run, &mut |step, loss| stats.push(step, loss))
                .await?;
        }
        Ok(stats.finish(model_id, runs.len() as i64))
    }

    /// For each bucket of `interval` steps (keyed by its first step), the best finite loss
    /// within it. The default reads every step of the model's runs.
    async fn milestones(&self, model_id: &str, interval: i64) -> Result<Milestones, AppError> {
        use crate::analysis::milestones::MilestoneBuilder;
        if self.models().await?.iter().all(|m| m.model_id != model_id) {
            return Err(AppError::NotFound {
                what: "model",
                id: model_id.into(),
            });
        }
        let mut builder = MilestoneBuilder::new(interval);
        for run in self.runs(Some(model_id)).await? {
            self.each_loss(&run, &mut |step, loss| builder.push(step, loss))
                .await?;
        }
        builder
            .finish(model_id)
            .map_err(|why| AppError::bad_param("interval", why))
    }

    /// Calls `visit` with every step of `run` and its loss (NaN when not a finite number).
    async fn each_loss(
        &self,
        run: &Run,
        visit: &mut (dyn FnMut(i64, f64) + Send),
    ) -> Result<(), AppError> {
        let mut from = i64::MIN;
        loop {
            let page = self
                .steps(run, (from, i64::MAX), false, DEFAULT_PAGE, Fields::RunCache)
                .await?;
            for s in &page {
                visit(s.step, s.finite_loss().unwrap_or(f64::NAN));
            }
            match page.last().and_then(|s| s.step.checked_add(1)) {
                Some(next) if page.len() == DEFAULT_PAGE => from = next,
                _ => return Ok(()),
            }
        }
    }

    /// Lets go of whatever it holds open (files, connections).
    async fn close(&self) {}
}
