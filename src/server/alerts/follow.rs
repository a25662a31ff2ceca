//! One run's alerts kept current: what the run gained since it was last read — steps, router
//! records, evals — fed to its [`RunWatch`] in step order, through the same sources every
//! page reads.

use crate::analysis::alerts::{Rules, RunWatch};
use crate::model::{RoutingMod, RoutingMor, Run, TrainingState};
use crate::server::compare_cache::Keeping;
use crate::server::error::AppError;
use crate::server::source::{Fields, RoutingTable};
use crate::server::store::Store;

/// Steps per read: well within the step times a watch keeps (`TIMES_KEPT`), so the router
/// records and evals read after a page find their steps' times.
const PAGE: usize = 2_048;

/// A run being watched, and how far it was read.
#[derive(Debug)]
pub struct Followed {
    pub watch: RunWatch,
    next_mod: Option<i64>,
    next_mor: Option<i64>,
    last_eval: Option<i64>,
    /// The state it was last judged in.
    pub state: Option<TrainingState>,
    /// First seen while watching (a new run): everything it says is news. Otherwise its
    /// first read is its history.
    pub born_watching: bool,
    /// Read once at least.
    pub read: bool,
}

impl Followed {
    pub fn new(run: &Run, rules: &Rules, born_watching: bool) -> Self {
        Self {
            watch: RunWatch::new(&run.run_id, &run.model_id, &run.config(), rules),
            next_mod: None,
            next_mor: None,
            last_eval: None,
            state: None,
            born_watching,
            read: false,
        }
    }

    /// Done with: it finished or crashed, and that was said. Its files do not grow again.
    pub fn ended(&self) -> bool {
        matches!(
            self.state,
            Some(TrainingState::Finished | TrainingState::Crashed)
        )
    }

    /// Judged stopped: resumed into a later run of its model, or quiet. Rarely growing (a
    /// sweep of several runs of one model trains them side by side), so read only when
    /// states are judged, not at every growth of the files.
    pub fn stopped(&self) -> bool {
        self.state == Some(TrainingState::Stopped)
    }

    /// Reads everything `run` gained since the last call into the watch, router records
    /// interleaved with the steps they belong to, so each is judged with its step's time
    /// at hand.
    ///
    /// The history of a run done training is also kept for comparing (`Keeping`), when
    /// `done` says so: read once for both.
    pub async fn catch_up(
        &mut self,
        store: &Store,
        run_id: &str,
        done: bool,
    ) -> Result<(), AppError> {
        let run = store.located(run_id).await?;
        let sources = store.sources();
        let mut evals: std::collections::VecDeque<_> = sources
            .evals(&run)
            .await?
            .into_iter()
            .filter(|e| self.last_eval.is_none_or(|last| e.step > last))
            .collect();
        // A run's history, read at start, waits for anyone waiting for a page; what a run
        // says while watched is news and is read at once.
        let history = !self.read && !self.born_watching;
        let mut keeping = match history && done {
            true => Keeping::start(sources, store.kept(), &run).await?,
            false => None,
        };
        loop {
            if history {
                sources.after_those_waiting().await;
            }
            let from = self
                .watch
                .last_step()
                .map_or(i64::MIN, |s| s.saturating_add(1));
            let page = sources
                .steps(&run, (from, i64::MAX), false, PAGE, Fields::RunCache)
                .await?;
            page.iter().for_each(|s| self.watch.step(s));
            if let Some(k) = keeping.as_mut() {
                k.push(&page);
            }
            let full = page.len() == PAGE;
            // The last page takes every router record there is, even ahead of the log.
            let until = page
                .last()
                .map(|s| s.step)
                .filter(|_| full)
                .unwrap_or(i64::MAX);
            self.routing(store, &run, until).await?;
            while let Some(e) = evals.pop_front_if(|e| e.step <= until) {
                self.watch.eval(&e);
                self.last_eval = Some(e.step);
            }
            if !full {
                break;
            }
        }
        if let Some(k) = keeping {
            k.finish().await;
        }
        Ok(())
    }

    /// Feeds the router records up to step `until`.
    async fn routing(
        &mut self,
        store: &Store,
        run: &(Run, usize),
        until: i64,
    ) -> Result<(), AppError> {
        let watch = &mut self.watch;
        feed::<RoutingMod>(store, run, &mut self.next_mod, until, |r| {
            watch.mod_record(r)
        })
        .await?;
        feed::<RoutingMor>(store, run, &mut self.next_mor, until, |r| {
            watch.mor_record(r)
        })
        .await
    }
}

/// Hands `visit` a router table's records from `*next` up to step `until`, in step order,
/// and moves `*next` past them; records a page read beyond `until` are read again next time.
async fn feed<T: RoutingTable>(
    store: &Store,
    run: &(Run, usize),
    next: &mut Option<i64>,
    until: i64,
    mut visit: impl FnMut(&T),
) -> Result<(), AppError> {
    while next.is_none_or(|n| n <= until) {
        let page = store.sources().routing_page::<T>(run, *next, PAGE).await?;
        for r in page.data.iter().filter(|r| r.step() <= until) {
            visit(r);
            *next = r.step().checked_add(1);
        }
        if page.next_start_step.is_none() || page.data.iter().any(|r| r.step() > until) {
            return Ok(());
        }
    }
    Ok(())
}
