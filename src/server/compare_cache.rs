//! Runs held in memory for comparisons, in their lean form (`analysis::compared`): only the
//! metrics a comparison asked for, so twenty long runs side by side cost what two cost in
//! the run cache. Read once from the sources, extended with what arrives, least recently
//! used runs dropped beyond the same memory budget as the run cache's.

use super::error::AppError;
use super::held::{Held, Weighed};
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
    /// The run with at least `metrics` held, brought up to its sources.
    pub async fn get(
        &self,
        sources: &Sources,
        run: &(Run, usize),
        metrics: &[Metric],
    ) -> Result<tokio::sync::OwnedMutexGuard<HeldRun>, AppError> {
        let entry = self.entry(&run.0.run_id);
        let mut held = entry.lock_owned().await;
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
            // Marks first: rows that arrive during the read come again and are recognised.
            let fields = Fields::Metrics(MetricSet::of(&wanted));
            let fresh = ComparedColumns::new(&run.0.config(), &wanted)
                .spilling_to(super::spill::in_temp_dir());
            let push = |c: &mut ComparedColumns, s: &crate::model::Step| {
                c.push(s);
            };
            let mut columns =
                super::run_cache::scan(sources, run, fields, fresh, push, ComparedColumns::index)
                    .await?;
            columns.shrink_to_fit();
            tracing::info!(
                "run {}: {} steps of {} held for comparing",
                run.0.run_id,
                columns.len(),
                wanted
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", ")
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
