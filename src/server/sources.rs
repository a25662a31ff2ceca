//! Every [`Source`] the dashboard serves, as one: models and runs are the union of theirs,
//! a run is read from the first source that knows it, and "what is new" is followed per
//! source. Adding a place runs come from is adding it to the list (see `main.rs`).
//!
//! A run known to several sources is read from the first for now; combining them field by
//! field (database, then diagnostics file, then log) is the next step and belongs here.

use super::error::AppError;
use super::source::{CatchUpPage, Fields, LiveRows, Reach, RoutingRows, RoutingTable, Source};
use crate::model::{
    AdaptiveLr, DbInfo, EvalPoint, Milestones, Model, ModelStats, RoutingPage, Run, Step,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The most records one step of a routing table is read with when a page must carry it
/// whole (one per layer).
const MAX_LAYERS: usize = 10_000;

/// How far every source reaches, in the order of [`Sources`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Marks(pub Vec<Reach>);

impl Marks {
    /// Source `i`'s reach (nothing yet when unknown).
    pub fn reach(&self, i: usize) -> Reach {
        self.0.get(i).copied().unwrap_or_default()
    }

    /// Every source of `self` is within `other`.
    pub fn within(&self, other: &Marks) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, r)| r.within(&other.reach(i)))
    }

    /// Each source's further reach of the two.
    pub fn max(&self, other: &Marks) -> Marks {
        let n = self.0.len().max(other.0.len());
        Marks(
            (0..n)
                .map(|i| match (self.0.get(i), other.0.get(i)) {
                    (Some(a), Some(b)) if a.epoch == b.epoch => a.max(b),
                    // Another epoch: the later reading wins.
                    (Some(_), Some(b)) => *b,
                    (a, b) => a.or(b).copied().unwrap_or_default(),
                })
                .collect(),
        )
    }

    /// Source `i` has seen as far as `reach` (or further).
    pub fn advance(&mut self, i: usize, reach: &Reach) {
        if self.0.len() <= i {
            self.0.resize(i + 1, Reach::default());
        }
        let had = self.0[i];
        self.0[i] = if had.epoch == reach.epoch {
            had.max(reach)
        } else {
            *reach
        };
    }

    /// Some source of `now` cannot follow on from `self`: it was replaced or shrank.
    pub fn replaced_by(&self, now: &Marks) -> bool {
        self.0.len() != now.0.len()
            || self
                .0
                .iter()
                .zip(&now.0)
                .any(|(was, is)| was.replaced_by(is))
    }

    /// `self` with each source's run records as far as `now`'s: a rewritten run row is
    /// noticed by reading the runs again, not by reading rows.
    pub fn with_runs_of(&self, now: &Marks) -> Marks {
        Marks(
            self.0
                .iter()
                .enumerate()
                .map(|(i, r)| Reach {
                    runs: now.reach(i).runs,
                    ..*r
                })
                .collect(),
        )
    }
}

/// The sources, in the order they win for a run known to several.
#[derive(Clone)]
pub struct Sources {
    list: Vec<Arc<dyn Source>>,
    /// Whole-run reads someone is waiting for now ([`Waiting`]).
    waiting: Arc<AtomicUsize>,
}

/// A whole-run read someone waits for — a page, a chart, a comparison — while this lives.
/// Reads of history in the background (the alerts' replay at start) step aside for it: on
/// two connections to the file and two cores they would double the wait of the person
/// looking.
pub struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Sources {
    pub fn new(list: Vec<Arc<dyn Source>>) -> Self {
        Self {
            list,
            waiting: Arc::default(),
        }
    }

    /// Says a whole-run read is being waited for until the guard is dropped.
    pub fn someone_waits(&self) -> Waiting {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self.waiting.clone())
    }

    /// Returns once no whole-run read is waited for: background reads call this between
    /// their pages.
    pub async fn after_those_waiting(&self) {
        while self.waiting.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Whether the sources can be read now: one that can is enough (the database is
    /// missing until a run ends, the files may be elsewhere); the first reason when none can.
    pub async fn check(&self) -> Result<(), AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            answers.push(i, s.check().await);
        }
        answers.finish().map(|_| ())
    }

    pub async fn close(&self) {
        for s in &self.list {
            s.close().await;
        }
    }

    /// Every model, oldest first per source; a model known to several is listed once.
    pub async fn models(&self) -> Result<Vec<Model>, AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            answers.push(i, s.models().await);
        }
        let mut models: Vec<Model> = Vec::new();
        for (_, listed) in answers.finish()? {
            for m in listed {
                if models.iter().all(|k| k.model_id != m.model_id) {
                    models.push(m);
                }
            }
        }
        Ok(models)
    }

    /// Every run (of `model_id`, or all), oldest first; a run known to several sources is
    /// listed once, as the first knows it.
    pub async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            answers.push(i, s.runs(model_id).await);
        }
        let mut runs: Vec<Run> = Vec::new();
        for (_, listed) in answers.finish()? {
            for r in listed {
                if runs.iter().all(|k| k.run_id != r.run_id) {
                    runs.push(r);
                }
            }
        }
        if self.list.len() > 1 {
            // Each source's own order is by start; merged, by start again (stable).
            runs.sort_by(|a, b| {
                (a.start_step.unwrap_or(0), &a.start_time)
                    .cmp(&(b.start_step.unwrap_or(0), &b.start_time))
            });
        }
        Ok(runs)
    }

    /// The run `run_id` and the source it is read from. Unknown → 404.
    pub async fn run(&self, run_id: &str) -> Result<(Run, usize), AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            match s.run(run_id).await {
                Ok(Some(run)) => return Ok((run, i)),
                other => answers.push(i, other),
            }
        }
        answers.finish()?;
        Err(AppError::NotFound {
            what: "run",
            id: run_id.into(),
        })
    }

    fn source(&self, i: usize) -> &dyn Source {
        self.list[i].as_ref()
    }

    /// See [`Source::span`].
    pub async fn span(&self, (run, at): &(Run, usize)) -> Result<(i64, i64), AppError> {
        self.source(*at).span(run).await
    }

    /// See [`Source::steps`].
    pub async fn steps(
        &self,
        (run, at): &(Run, usize),
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        self.source(*at)
            .steps(run, range, newest_first, limit, fields)
            .await
    }

    /// The run's newest step.
    pub async fn last_step(&self, run: &(Run, usize)) -> Result<Option<i64>, AppError> {
        let newest = self
            .steps(run, (i64::MIN, i64::MAX), true, 1, Fields::RunCache)
            .await?;
        Ok(newest.first().map(|s| s.step))
    }

    /// Up to `limit` routing records of type `T` within `range`.
    pub async fn routing<T: RoutingTable>(
        &self,
        (run, at): &(Run, usize),
        range: (i64, i64),
        limit: usize,
    ) -> Result<Vec<T>, AppError> {
        let rows: RoutingRows = self.source(*at).routing(run, T::KIND, range, limit).await?;
        Ok(T::take(rows))
    }

    /// A page of a run's routing records of type `T` from `start_step`, at most `limit`,
    /// whole steps only: a page never ends in the middle of a step's layers, so
    /// `next_start_step` loses nothing.
    pub async fn routing_page<T: RoutingTable>(
        &self,
        run: &(Run, usize),
        start_step: Option<i64>,
        limit: usize,
    ) -> Result<RoutingPage<T>, AppError> {
        let page = |data, next_start_step| RoutingPage {
            run_id: run.0.run_id.clone(),
            data,
            next_start_step,
        };
        let limit = limit.max(1);
        let from = start_step.unwrap_or(i64::MIN);
        // One record more than asked tells whether the page ends between two steps.
        let mut rows: Vec<T> = self.routing(run, (from, i64::MAX), limit + 1).await?;
        if rows.len() <= limit {
            return Ok(page(rows, None));
        }
        let following = rows[limit].step();
        rows.truncate(limit);
        let (first, last) = (rows[0].step(), rows[rows.len() - 1].step());
        if !T::PER_LAYER || last != following {
            return Ok(page(rows, Some(following)));
        }
        if first != last {
            // The trailing step's other layers did not fit: leave it for the next page.
            rows.retain(|r| r.step() != last);
            return Ok(page(rows, Some(last)));
        }
        // One step has more layers than `limit`: a cursor by step cannot split it, so this
        // page carries that whole step (bounded by the layer count).
        let whole = self.routing(run, (first, first), MAX_LAYERS).await?;
        Ok(page(whole, first.checked_add(1)))
    }

    /// Hands every routing record of type `T` of the run to `visit`, a page at a time.
    pub async fn each_routing<T: RoutingTable>(
        &self,
        run: &(Run, usize),
        page_size: usize,
        mut visit: impl FnMut(T),
    ) -> Result<(), AppError> {
        let mut next = None;
        loop {
            let page = self.routing_page::<T>(run, next, page_size).await?;
            page.data.into_iter().for_each(&mut visit);
            match page.next_start_step {
                Some(n) => next = Some(n),
                None => return Ok(()),
            }
        }
    }

    /// See [`Source::adaptive_lr`].
    pub async fn adaptive_lr(
        &self,
        (run, at): &(Run, usize),
        range: (i64, i64),
        limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        self.source(*at).adaptive_lr(run, range, limit).await
    }

    /// See [`Source::evals`].
    pub async fn evals(&self, (run, at): &(Run, usize)) -> Result<Vec<EvalPoint>, AppError> {
        self.source(*at).evals(run).await
    }

    /// How far every source reaches now.
    pub async fn marks(&self) -> Result<Marks, AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            answers.push(i, s.reach().await);
        }
        // A source that cannot be read now reaches nowhere yet.
        let mut marks = vec![Reach::default(); self.list.len()];
        for (i, reach) in answers.finish()? {
            marks[i] = reach;
        }
        Ok(Marks(marks))
    }

    /// The run's records that arrived after `from` up to `to`, a page per source at most
    /// `limit` rows a feed, each stamped with its source; and how far they reach.
    pub async fn changes(
        &self,
        run: &Run,
        from: &Marks,
        to: &Marks,
        limit: usize,
    ) -> Result<(Vec<LiveRows>, Marks), AppError> {
        let mut pages = Vec::new();
        let mut reached = Vec::with_capacity(self.list.len());
        for (i, s) in self.list.iter().enumerate() {
            let (a, b) = (from.reach(i), to.reach(i));
            if a == b {
                reached.push(b);
                continue;
            }
            let (mut rows, reach) = s.changes(run, &a, &b, limit).await?;
            rows.source = i;
            rows.steps.iter_mut().for_each(|(_, s)| s.mark_nonfinite());
            pages.push(rows);
            reached.push(reach);
        }
        Ok((pages, Marks(reached)))
    }

    /// A catch-up page from the source the run is read from; the other sources' reach as
    /// of before the read (they hold none of the run's records yet; see the module doc).
    pub async fn catch_up(
        &self,
        (run, at): &(Run, usize),
        after_step: i64,
        limit: usize,
    ) -> Result<(LiveRows, Marks, Option<i64>), AppError> {
        let mut marks = self.marks().await?;
        let (mut rows, reach, next): CatchUpPage =
            self.source(*at).catch_up(run, after_step, limit).await?;
        rows.source = *at;
        rows.steps.iter_mut().for_each(|(_, s)| s.mark_nonfinite());
        marks.0[*at] = reach;
        Ok((rows, marks, next))
    }

    /// What the sidebar says about where the runs come from: the last source that can say
    /// (the database, when the trainer's files come first), for now.
    pub async fn info(&self) -> Result<DbInfo, AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate().rev() {
            answers.push(i, s.info().await);
        }
        Ok(answers
            .finish()?
            .into_iter()
            .next()
            .map(|a| a.1)
            .unwrap_or_default())
    }

    /// A model's stats from the first source that knows it.
    pub async fn model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        self.by_model(model_id).await?.model_stats(model_id).await
    }

    /// A model's milestones from the first source that knows it.
    pub async fn milestones(&self, model_id: &str, interval: i64) -> Result<Milestones, AppError> {
        self.by_model(model_id)
            .await?
            .milestones(model_id, interval)
            .await
    }

    async fn by_model(&self, model_id: &str) -> Result<&dyn Source, AppError> {
        let mut answers = Answers::default();
        for (i, s) in self.list.iter().enumerate() {
            match s.models().await {
                Ok(models) if models.iter().any(|m| m.model_id == model_id) => {
                    return Ok(s.as_ref())
                }
                other => answers.push(i, other),
            }
        }
        answers.finish()?;
        Err(AppError::NotFound {
            what: "model",
            id: model_id.into(),
        })
    }
}

/// The sources' answers to one question: those that answered, and the first reason one
/// could not. Unanswered is an error only when no source answered.
struct Answers<T> {
    answered: Vec<(usize, T)>,
    first_error: Option<AppError>,
}

impl<T> Default for Answers<T> {
    fn default() -> Self {
        Self {
            answered: Vec::new(),
            first_error: None,
        }
    }
}

impl<T> Answers<T> {
    fn push(&mut self, i: usize, answer: Result<T, AppError>) {
        match answer {
            Ok(a) => self.answered.push((i, a)),
            Err(e) => {
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn finish(self) -> Result<Vec<(usize, T)>, AppError> {
        match self.first_error {
            Some(e) if self.answered.is_empty() => Err(e),
            _ => Ok(self.answered),
        }
    }
}
