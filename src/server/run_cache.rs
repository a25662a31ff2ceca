//! Runs held in memory for the charts: each run's folded state (`RunState`, and its routing
//! as `RoutingState`), read once from its source and then extended with only what arrived
//! since, so most requests never touch the source. One cache serves the page, zooms, REST,
//! server functions, exports and snapshots; least recently used runs are dropped beyond a
//! memory budget.

use super::error::AppError;
use super::held::{Held, Weighed};
use super::source::Fields;
use super::sources::{Marks, Sources};
use crate::analysis::adaptive_lr::AdaptiveLrSeries;
use crate::analysis::routing::RoutingState;
use crate::analysis::run_state::{Pushed, RunState};
use crate::model::{EvalPoint, RoutingMod, RoutingMoe, RoutingMor, Run, Step};
use std::time::Instant;

/// What the run cache may hold unless told otherwise (`--cache-mb`).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;
/// Rows per read when a whole run is scanned or caught up with.
const SCAN_PAGE: usize = 5_000;
/// Routing rows per read when a run's routing is folded in.
const ROUTING_PAGE: usize = 10_000;
/// Adaptive-LR records read for a run: one per diagnostics record (every 100 steps), so a
/// 10M-step run's; a longer one shows its first 100,000.
const ADAPTIVE_LR_RECORDS: usize = 100_000;

/// One run in memory: its folded state and how far into its source it reaches.
pub struct CachedRun {
    pub state: Option<RunState>,
    /// Read only when a page or zoom first needs it: a chart request does not wait for it.
    pub routing: Option<RoutingState>,
    /// What is read beside the steps: the adaptive-LR controller and the evaluations, read
    /// with the routing and again once the sources moved. A record every 100 or 500 steps,
    /// a short read; the live feed does not carry them, so a live page shows them as of its
    /// last load or zoom.
    pub extras: Option<(Marks, Extras)>,
    /// Where the sources stood when rows up to here were folded in.
    marks: Marks,
    /// The run row it was built for: a changed config rebuilds it.
    config_json: Option<String>,
    /// The steps the run's rows can lie in, as its source said: a new end rebuilds it.
    span: (i64, i64),
    last_used: Instant,
    bytes: usize,
}

/// A run's sparse series, held beside its steps.
#[derive(Default)]
pub struct Extras {
    pub adaptive_lr: AdaptiveLrSeries,
    pub evals: Vec<EvalPoint>,
}

/// Every run held in memory, by run id.
pub type RunCache = Held<CachedRun>;

impl Default for CachedRun {
    fn default() -> Self {
        Self {
            state: None,
            routing: None,
            extras: None,
            marks: Marks::default(),
            config_json: None,
            span: (i64::MIN, i64::MIN),
            last_used: Instant::now(),
            bytes: 0,
        }
    }
}

impl Weighed for CachedRun {
    fn bytes(&self) -> usize {
        self.bytes
    }
    fn last_used(&self) -> Instant {
        self.last_used
    }
}

impl Held<CachedRun> {
    /// The run's state in memory, brought up to its source: built on first use by paging
    /// through the run, then extended with the rows that arrived since (the cost is the new
    /// rows). A re-logged step, a replaced source, a new config or end rebuilds it. Callers
    /// for the same run wait for one build instead of each reading the run.
    pub async fn get(
        &self,
        sources: &Sources,
        run: &(Run, usize),
        with_routing: bool,
    ) -> Result<tokio::sync::OwnedMutexGuard<CachedRun>, AppError> {
        let run_id = &run.0.run_id;
        let entry = self.entry(run_id);
        let mut cached = entry.lock_owned().await;
        let marks = sources.marks().await?;
        let span = sources.span(run).await?;
        let stale = cached.state.is_none()
            || cached.config_json != run.0.config_json
            || cached.span != span
            || cached.marks.replaced_by(&marks);
        if !stale && cached.marks != marks && !extend(&mut cached, sources, run, &marks).await? {
            cached.state = None;
        }
        let mut read = false;
        if cached.state.is_none() || stale {
            read = true;
            // Marks first: rows that arrive during the reads below come again next time and
            // are recognised as already held.
            // A run read from its log (it has a last sign of life) draws its own EMAs.
            let fresh = match run.0.last_seen {
                Some(_) => RunState::new(run.0.config()).drawing_own_emas(),
                None => RunState::new(run.0.config()),
            };
            let mut state = scan(
                sources,
                run,
                Fields::RunCache,
                fresh,
                |state, s| {
                    state.push(s);
                },
                RunState::index,
            )
            .await?;
            state.shrink_to_fit();
            cached.state = Some(state);
            cached.routing = None;
            cached.extras = None;
            cached.marks = marks.clone();
            cached.config_json = run.0.config_json.clone();
            cached.span = span;
        }
        if with_routing && cached.routing.is_none() {
            // Rows that arrived after `marks` may be read here and again by the next
            // extension; a step already held is skipped there (a step's layers arrive
            // together).
            let mut routing = RoutingState::new(&run.0.config());
            fold_routing(sources, run, &mut routing).await?;
            routing.shrink_to_fit();
            cached.routing = Some(routing);
            read = true;
        }
        if with_routing && cached.extras.as_ref().is_none_or(|(at, _)| *at != marks) {
            let records = sources
                .adaptive_lr(run, (i64::MIN, i64::MAX), ADAPTIVE_LR_RECORDS)
                .await?;
            let mut adaptive_lr = AdaptiveLrSeries::new(&records);
            adaptive_lr.shrink_to_fit();
            let evals = sources.evals(run).await?;
            cached.extras = Some((marks, Extras { adaptive_lr, evals }));
        }
        cached.last_used = Instant::now();
        cached.bytes = cached.state.as_ref().map_or(0, RunState::heap_bytes)
            + cached.routing.as_ref().map_or(0, RoutingState::heap_bytes)
            + cached.extras.as_ref().map_or(0, |(_, e)| {
                e.adaptive_lr.heap_bytes() + e.evals.len() * std::mem::size_of::<EvalPoint>()
            });
        if read {
            super::memory::after_big_work();
            tracing::info!(
                "run {run_id}: {} steps{} held in {:.1} MB",
                cached.state.as_ref().map_or(0, RunState::len),
                if cached.routing.is_some() {
                    " and their routing"
                } else {
                    ""
                },
                cached.bytes as f64 / 1e6
            );
        }
        self.evict(run_id, cached.bytes);
        Ok(cached)
    }
}

/// Pages through the run reading only what the cache keeps (`fields`), folding
/// each page into `state` with `push` and calling `done` at the end: the one full read a run
/// costs, so it is kept lean. Folding the rows in costs about as much as reading them, so it
/// runs on a thread of its own, a page behind the reads.
pub(super) async fn scan<S: Send + 'static>(
    sources: &Sources,
    run: &(Run, usize),
    fields: Fields,
    state: S,
    push: fn(&mut S, &Step),
    done: fn(&mut S),
) -> Result<S, AppError> {
    let _waiting = sources.someone_waits();
    let (pages, mut arriving) = tokio::sync::mpsc::channel::<Vec<Step>>(2);
    let fold = tokio::task::spawn_blocking(move || {
        let mut state = state;
        while let Some(page) = arriving.blocking_recv() {
            page.iter().for_each(|s| push(&mut state, s));
        }
        done(&mut state);
        state
    });
    let read = async {
        let mut from = i64::MIN;
        loop {
            let rows = sources
                .steps(run, (from, i64::MAX), false, SCAN_PAGE, fields)
                .await?;
            let next = match rows.last().map(|s| s.step.checked_add(1)) {
                Some(Some(next)) if rows.len() == SCAN_PAGE => Some(next),
                _ => None,
            };
            if pages.send(rows).await.is_err() {
                return Ok(()); // the fold ended early: its outcome says why
            }
            match next {
                Some(next) => from = next,
                None => return Ok::<(), AppError>(()),
            }
        }
    };
    let read = read.await;
    drop(pages);
    let state = match fold.await {
        Ok(state) => state,
        // A bug in the fold surfaces as it would have on this task.
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => return Err(AppError::Busy), // the runtime is shutting down
    };
    read.map(|()| state)
}

/// Folds every routing record of a run (MoD, MoR, MoE) into `routing`, page by page: a long
/// run has millions, so they are never all held as records.
async fn fold_routing(
    sources: &Sources,
    run: &(Run, usize),
    routing: &mut RoutingState,
) -> Result<(), AppError> {
    sources
        .each_routing::<RoutingMod>(run, ROUTING_PAGE, |r| routing.push_mod(&r))
        .await?;
    sources
        .each_routing::<RoutingMor>(run, ROUTING_PAGE, |r| routing.push_mor(&r))
        .await?;
    sources
        .each_routing::<RoutingMoe>(run, ROUTING_PAGE, |r| routing.push_moe(&r))
        .await
}

/// Folds in the run's rows that arrived after `cached.marks`; false when one rewrote an
/// earlier step and the state must be rebuilt.
async fn extend(
    cached: &mut CachedRun,
    sources: &Sources,
    run: &(Run, usize),
    marks: &Marks,
) -> Result<bool, AppError> {
    let high = cached.span.1;
    let CachedRun { state, routing, .. } = cached;
    let Some(state) = state.as_mut() else {
        return Ok(false);
    };
    let mut from = cached.marks.with_runs_of(marks);
    // Rows past the run's end belong to no one shown here (a new end rebuilds).
    let ours = |step: i64| step <= high;
    while &from != marks {
        let (pages, reached) = sources.changes(&run.0, &from, marks, SCAN_PAGE).await?;
        for rows in &pages {
            for (_, step) in rows.steps.iter().filter(|(_, s)| ours(s.step)) {
                if state.push(step) == Pushed::Rewritten {
                    return Ok(false);
                }
            }
            // Routing records come step by step, all layers of a step together: the step
            // last held is complete (a record of it again was read twice), an earlier one is
            // a re-log.
            if let Some(routing) = routing.as_mut() {
                let (last_mod, last_mor, last_moe) = routing.last_steps();
                let fate = |last: Option<i64>, step: i64| match last {
                    Some(l) if step < l => Err(()),
                    Some(l) if step == l => Ok(false),
                    _ => Ok(true),
                };
                for (_, r) in rows.routing_mod.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_mod, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_mod(r),
                        Ok(false) => {}
                    }
                }
                for (_, r) in rows.routing_mor.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_mor, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_mor(r),
                        Ok(false) => {}
                    }
                }
                for (_, r) in rows.routing_moe.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_moe, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_moe(r),
                        Ok(false) => {}
                    }
                }
            }
        }
        from = reached.with_runs_of(marks);
    }
    state.index();
    cached.marks = marks.clone();
    Ok(true)
}
