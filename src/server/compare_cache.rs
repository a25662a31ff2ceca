//! Runs held in memory for comparisons, in their lean form (`analysis::compared`): only the
//! metrics a comparison asked for, so twenty long runs side by side cost what two cost in
//! the run cache. Read once from the sources, extended with what arrives, least recently
//! used runs dropped beyond the same memory budget as the run cache's.

use super::error::AppError;
use super::held::{Held, Weighed};
use super::kept::KeptRuns;
use super::source::{Fields, MetricSet};
use super::sources::{Marks, Sources};
use crate::analysis::compared::ComparedColumns;
use crate::analysis::run_state::Pushed;
use crate::model::{Metric, Run};
use std::time::Instant;

/// Rows per read when a run is extended.
const SCAN_PAGE: usize = 10_000;

/// One run held for comparisons.
pub struct HeldRun {
    pub columns: Option<ComparedColumns>,
    marks: Marks,
    config_json: Option<String>,
    span: (i64, i64),
    last_used: Instant,
    bytes: usize,
}

impl Default for HeldRun {
    fn default() -> Self {
        Self {
            columns: None,
            marks: Marks::default(),
            config_json: None,
            span: (i64::MIN, i64::MIN),
            last_used: Instant::now(),
            bytes: 0,
        }
    }
}

impl Weighed for HeldRun {
    fn bytes(&self) -> usize {
        self.bytes
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
}

/// Every run held for comparing, by run id.
pub type CompareCache = Held<HeldRun>;

impl Held<HeldRun> {
    /// The run with at least `metrics` held, brought up to its sources: taken up from
    /// `kept` when a server before this one kept it and it still agrees with the source,
    /// else read whole (and kept, when worth it).
    pub async fn get(
        &self,
        sources: &Sources,
        kept: Option<&KeptRuns>,
        run: &(Run, usize),
        metrics: &[Metric],
    ) -> Result<tokio::sync::OwnedMutexGuard<HeldRun>, AppError> {
        let entry = self.entry(&run.0.run_id);
        let mut held = entry.clone().lock_owned().await;
        let marks = sources.marks().await?;
        let span = sources.span(run).await?;
        let mut wanted = held
            .columns
            .as_ref()
            .map(ComparedColumns::metrics)
            .unwrap_or_default();
        let missing = metrics.iter().any(|m| !wanted.contains(m));
        wanted.extend(
            metrics
                .iter()
                .filter(|m| !wanted.contains(m))
                .collect::<Vec<_>>(),
        );
        let stale = held.columns.is_none()
            || missing
            || held.config_json != run.0.config_json
            || held.span != span
            || held.marks.replaced_by(&marks);
        if !stale && held.marks != marks && !extend(&mut held, sources, run, &marks).await? {
            held.columns = None;
        }
        if stale || held.columns.is_none() {
            let identity = super::kept::identity(&run.0, span);
            let taken_up = match kept {
                Some(kept) => take_up(kept, sources, run, &identity, &wanted).await?,
                None => None,
            };
            let from_source = taken_up.is_none();
            let columns = match taken_up {
                Some(columns) => columns,
                None => read_whole(sources, run, &wanted).await?,
            };
            if let Some(kept) = kept.filter(|_| from_source) {
                if super::kept::worth_keeping(&run.0, columns.len()) {
                    keep_later(
                        entry,
                        kept.clone(),
                        run.0.run_id.clone(),
                        identity,
                        marks.clone(),
                    );
                }
            }
            tracing::info!(
                "run {}: {} steps of {} held for comparing{}",
                run.0.run_id,
                columns.len(),
                wanted
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                if from_source {
                    ""
                } else {
                    ", taken up as kept"
                }
            );
            held.columns = Some(columns);
            held.marks = marks;
            held.config_json = run.0.config_json.clone();
            held.span = span;
            super::memory::after_big_work();
        }
        held.last_used = Instant::now();
        held.bytes = held.columns.as_ref().map_or(0, ComparedColumns::heap_bytes);
        self.evict(&run.0.run_id, held.bytes);
        Ok(held)
    }
}

/// Keeps the run held in `entry` for the next server once the request that read it lets
/// go, off the request's path (it writes the run's values, tens of megabytes, and waits
/// for the disk); as read at `marks` only, since the identity says what was read.
fn keep_later(
    entry: super::held::Entry<HeldRun>,
    kept: KeptRuns,
    run_id: String,
    identity: String,
    marks: Marks,
) {
    tokio::spawn(async move {
        let turn = kept.turn_to_save().await;
        let held = entry.lock_owned().await;
        let saved = tokio::task::spawn_blocking(move || {
            let _turn = turn; // until the run is written
            match &held.columns {
                Some(columns) if held.marks == marks => kept
                    .save(&run_id, identity, columns)
                    .map_err(|e| (run_id, e)),
                _ => Ok(()),
            }
        });
        if let Ok(Err((run_id, e))) = saved.await {
            tracing::warn!("run {run_id}: not kept for the next server: {e}");
        }
    });
}

/// A run's history read for someone else — the alerts' start-up replay reads every step of
/// every run anyway — folded as a comparison holds it and kept at its end: the first
/// comparison after a start takes it up instead of reading the run again. Only for a run
/// not training and not kept already with the compare page's metrics.
pub struct Keeping {
    kept: KeptRuns,
    run: Run,
    identity: String,
    columns: ComparedColumns,
}

impl Keeping {
    /// Ready to fold `run`'s history, when it is worth it.
    pub async fn start(
        sources: &Sources,
        kept: Option<&KeptRuns>,
        run: &(Run, usize),
    ) -> Result<Option<Self>, AppError> {
        let Some(kept) = kept else { return Ok(None) };
        let identity = super::kept::identity(&run.0, sources.span(run).await?);
        let metrics = crate::model::COMPARED_METRICS;
        if kept.holds(&run.0.run_id, &identity, &metrics) {
            return Ok(None);
        }
        Ok(Some(Self {
            kept: kept.clone(),
            run: run.0.clone(),
            identity,
            columns: ComparedColumns::new(&run.0.config(), &metrics)
                .spilling_to(super::spill::in_temp_dir()),
        }))
    }

    /// Takes in the next page of the run's steps, in step order.
    pub fn push(&mut self, steps: &[crate::model::Step]) {
        for s in steps {
            self.columns.push(s);
        }
        self.columns.index();
    }

    /// Keeps the run, when worth it, after any other run being kept.
    pub async fn finish(mut self) {
        if !super::kept::worth_keeping(&self.run, self.columns.len()) {
            return;
        }
        self.columns.shrink_to_fit();
        let turn = self.kept.turn_to_save().await;
        let saved = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            self.kept
                .save(&self.run.run_id, self.identity, &self.columns)
                .map_err(|e| (self.run.run_id, e))
        });
        if let Ok(Err((run_id, e))) = saved.await {
            tracing::warn!("run {run_id}: not kept for comparing: {e}");
        }
    }
}

/// The run's steps of `wanted`, read whole from its source.
async fn read_whole(
    sources: &Sources,
    run: &(Run, usize),
    wanted: &[Metric],
) -> Result<ComparedColumns, AppError> {
    // Marks first (the caller's): rows that arrive during the read come again and are
    // recognised.
    let fields = Fields::Metrics(MetricSet::of(wanted));
    let fresh =
        ComparedColumns::new(&run.0.config(), wanted).spilling_to(super::spill::in_temp_dir());
    let push = |c: &mut ComparedColumns, s: &crate::model::Step| {
        c.push(s);
    };
    let mut columns =
        super::run_cache::scan(sources, run, fields, fresh, push, ComparedColumns::index).await?;
    columns.shrink_to_fit();
    Ok(columns)
}

/// Steps of a kept run compared with the source before it is taken up, evenly spread.
const SAMPLED: usize = 8;

/// The run as `kept` holds it with every metric of `wanted`, when its source agrees.
async fn take_up(
    kept: &KeptRuns,
    sources: &Sources,
    run: &(Run, usize),
    identity: &str,
    wanted: &[Metric],
) -> Result<Option<ComparedColumns>, AppError> {
    let Some(columns) = kept.load(&run.0.run_id, identity, wanted) else {
        return Ok(None);
    };
    // A few reads, but someone waits for them: the alerts' replay steps aside.
    let _waiting = sources.someone_waits();
    if !agrees(&columns, sources, run).await? {
        return Ok(None);
    }
    kept.used(&run.0.run_id);
    Ok(Some(columns.spilling_to(super::spill::in_temp_dir())))
}

/// Whether the source holds what `columns` holds, as far as a few reads can tell: the
/// same first and last step, and [`SAMPLED`] steps across the run (those two among them)
/// with the same values. The run record and span already matched (`kept::identity`); this
/// catches a file replaced by another whose run has the same record.
async fn agrees(
    columns: &ComparedColumns,
    sources: &Sources,
    run: &(Run, usize),
) -> Result<bool, AppError> {
    let steps = columns.steps();
    let n = steps.len();
    if n == 0 {
        return Ok(false);
    }
    let metrics = columns.metrics();
    let fields = Fields::Metrics(MetricSet::of(&metrics));
    for k in 0..SAMPLED {
        let i = k * (n - 1) / (SAMPLED - 1);
        // The first sample reads from the run's start and the last down from its end, so
        // each also finds a step the kept run does not have before or after it.
        let (range, descending) = match k {
            0 => ((i64::MIN, steps[i]), false),
            _ if k == SAMPLED - 1 => ((steps[i], i64::MAX), true),
            _ => ((steps[i], steps[i]), false),
        };
        let got = sources.steps(run, range, descending, 1, fields).await?;
        let Some(step) = got.first().filter(|s| s.step == steps[i]) else {
            return Ok(false);
        };
        for m in &metrics {
            let held = columns.values(*m).map(|v| v.get(i));
            let Some(Ok(held)) = held else {
                return Ok(false);
            };
            let source = m.of(step).unwrap_or(f64::NAN);
            if !(held == source || held.is_nan() && source.is_nan()) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Takes in the run's rows that arrived after the marks it was read at; false when one
/// rewrote an earlier step and the run must be read again.
async fn extend(
    held: &mut HeldRun,
    sources: &Sources,
    run: &(Run, usize),
    marks: &Marks,
) -> Result<bool, AppError> {
    let high = held.span.1;
    let Some(columns) = held.columns.as_mut() else {
        return Ok(false);
    };
    let mut from = held.marks.with_runs_of(marks);
    while &from != marks {
        let (pages, reached) = sources.changes(&run.0, &from, marks, SCAN_PAGE).await?;
        for rows in &pages {
            for (_, step) in rows.steps.iter().filter(|(_, s)| s.step <= high) {
                if columns.push(step) == Pushed::Rewritten {
                    return Ok(false);
                }
            }
        }
        from = reached.with_runs_of(marks);
    }
    columns.index();
    held.marks = marks.clone();
    Ok(true)
}
