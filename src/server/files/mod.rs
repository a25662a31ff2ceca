//! The trainer's own files as a source: its logs, its diagnostics files and its reports,
//! read while it trains (the database is written only when a run ends; see
//! `../shared/spec/hydra-run-files.md`). A run is known by its run id across them; its steps
//! are the log's lines and the diagnostics file's records together (`run.rs`).
//!
//! Files are looked at again when asked how far the source reaches (the live feed asks
//! several times a second), at most every [`LOOK_EVERY`]: a directory listing and a `stat`
//! per file, and a read only of what grew (`follow.rs`). Polling rather than inotify: it is
//! as prompt at this rate, costs a few system calls, and works the same on network file
//! systems, where training directories often live and inotify says nothing.

pub mod diagnostics;
mod follow;
pub mod log;
mod report;
pub mod run;

use self::follow::{DiagFollow, DiagLook, LogFollow};
use self::run::{Ending, FileRun};
use super::error::AppError;
use super::source::{CatchUpPage, Fields, LiveRows, Reach, RoutingKind, RoutingRows, Source};
use crate::model::{AdaptiveLr, DbInfo, Model, Run, TrainingState};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The least time between two looks at the files.
pub const LOOK_EVERY: Duration = Duration::from_millis(100);

/// Where the trainer writes each kind of file.
#[derive(Clone, Debug)]
pub struct Dirs {
    pub diagnostics: PathBuf,
    pub logs: PathBuf,
    pub reports: PathBuf,
}

impl Dirs {
    /// The trainer's defaults under its working directory.
    pub fn under(root: &Path) -> Self {
        Self {
            diagnostics: root.join("checkpoints"),
            logs: root.join("logs"),
            reports: root.join("reports"),
        }
    }
}

/// A file as last seen: its size and time, to tell whether it changed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Seen {
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Default)]
struct State {
    runs: BTreeMap<String, FileRun>,
    logs: HashMap<PathBuf, (Seen, LogFollow)>,
    diags: HashMap<PathBuf, (Seen, DiagFollow)>,
    reports: HashMap<PathBuf, (Seen, Option<Run>)>,
    /// Feed positions handed out so far.
    seq: i64,
    /// Bumped when a run appears, ends or gets a report: the run list changed.
    runs_version: i64,
    /// Bumped when a file shrank or was replaced and everything was read anew.
    epoch: u64,
    looked: Option<Instant>,
}

/// The trainer's files under [`Dirs`].
#[derive(Clone)]
pub struct FilesSource {
    dirs: Dirs,
    state: Arc<Mutex<State>>,
}

impl FilesSource {
    pub fn new(dirs: Dirs) -> Self {
        Self {
            dirs,
            state: Arc::default(),
        }
    }

    /// Looks at the files if the last look is old enough; reads what grew.
    async fn look(&self) -> Result<(), AppError> {
        let (dirs, state) = (self.dirs.clone(), self.state.clone());
        tokio::task::spawn_blocking(move || {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            if state.looked.is_some_and(|t| t.elapsed() < LOOK_EVERY) {
                return;
            }
            look_at(&dirs, &mut state);
            state.looked = Some(Instant::now());
        })
        .await
        .map_err(|_| AppError::Busy)
    }

    /// Reads `f` of the run `run_id` after a look.
    async fn with_run<T>(
        &self,
        run_id: &str,
        f: impl FnOnce(&FileRun) -> T,
    ) -> Result<Option<T>, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.runs.get(run_id).map(f))
    }

    fn reach_of(state: &State) -> Reach {
        Reach {
            epoch: state.epoch,
            steps: state.seq,
            routing_mod: state.seq,
            routing_mor: state.seq,
            routing_moe: state.seq,
            runs: state.runs_version,
        }
    }

    /// Every run, as its files tell it, in start order.
    fn run_rows(state: &State) -> Vec<Run> {
        let mut runs: Vec<Run> = state
            .runs
            .values()
            .filter_map(|r| Self::row_of(state, r))
            .collect();
        runs.sort_by(|a, b| {
            (a.start_time.as_deref(), &a.run_id).cmp(&(b.start_time.as_deref(), &b.run_id))
        });
        runs
    }

    /// One run's row: the report's when there is one, else what its log and diagnostics
    /// file say; its state when the files say how it ended. `None` before its first step:
    /// until then its log holds only its header, and nothing says where it stands among its
    /// model's runs.
    fn row_of(state: &State, r: &FileRun) -> Option<Run> {
        r.first_step()?;
        let report = state
            .reports
            .values()
            .filter_map(|(_, run)| run.as_ref())
            .filter(|run| run.run_id == r.run_id)
            .max_by(|a, b| a.start_time.cmp(&b.start_time));
        let mut row = r.run_row();
        if let Some(report) = report {
            // The report's facts, but the run starts where its rows do.
            row = Run {
                start_step: report.start_step.or(row.start_step),
                start_time: row.start_time.or(report.start_time.clone()),
                last_seen: row.last_seen,
                ..report.clone()
            };
        }
        if row.config_json.is_none() {
            row.config_json = r.config_json();
        }
        row.state = match (r.ending, report.is_some()) {
            (Ending::Complete, _) | (Ending::None, true) => Some(TrainingState::Finished),
            (Ending::Error, _) => Some(TrainingState::Crashed),
            (Ending::None, false) => None,
        };
        Some(row)
    }
}

/// One look at every file: new files are found, changed ones read from where they were
/// left. A file that cannot be read now is tried again next time.
fn look_at(dirs: &Dirs, state: &mut State) {
    let listed = |dir: &Path, prefix: &str, suffix: &str| -> Vec<(PathBuf, String, Seen)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<_> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_prefix(prefix)?.strip_suffix(suffix)?.to_string();
                let meta = e.metadata().ok().filter(|m| m.is_file())?;
                let seen = Seen {
                    len: meta.len(),
                    modified: meta.modified().ok(),
                };
                Some((e.path(), id, seen))
            })
            .filter(|(_, id, _)| !id.is_empty())
            .collect();
        found.sort_by(|a, b| a.1.cmp(&b.1));
        found
    };
    for (path, run_id, seen) in listed(&dirs.logs, "training_", ".log") {
        let known = state.logs.get(&path).map(|(s, _)| *s);
        if known == Some(seen) {
            continue;
        }
        let (_, follow) = state.logs.entry(path.clone()).or_default();
        match follow.read(&path, seen.len) {
            Ok(Some(lines)) => {
                // A long log is read over several looks: until then it is not seen as is.
                if let Some(entry) = state.logs.get_mut(&path).filter(|e| e.1.read_to(seen.len)) {
                    entry.0 = seen;
                }
                let (run, is_new) = run_of(&mut state.runs, &run_id);
                let ending = run.ending;
                for (line, time) in lines {
                    run.push_line(line, time.as_deref(), &mut state.seq);
                }
                if is_new || run.ending != ending {
                    state.runs_version += 1;
                }
            }
            Ok(None) => start_over(state),
            Err(e) => tracing::debug!("{}: {e}", path.display()),
        }
    }
    for (path, run_id, seen) in listed(&dirs.diagnostics, "diagnostics_", ".json") {
        let known = state.diags.get(&path).map(|(s, _)| *s);
        if known == Some(seen) {
            continue;
        }
        let (_, follow) = state.diags.entry(path.clone()).or_default();
        match follow.look(&path, seen.len) {
            Ok(DiagLook::New(records)) => {
                if let Some(entry) = state.diags.get_mut(&path) {
                    entry.0 = seen;
                }
                let (run, is_new) = run_of(&mut state.runs, &run_id);
                for r in records {
                    run.push_record(r, &mut state.seq);
                }
                if is_new {
                    state.runs_version += 1;
                }
            }
            Ok(DiagLook::Replaced) => start_over(state),
            Err(e) => tracing::debug!("{}: {e}", path.display()),
        }
    }
    for (path, _, seen) in listed(&dirs.reports, "training_report_", ".json") {
        if state.reports.get(&path).map(|(s, _)| *s) == Some(seen) {
            continue;
        }
        let run = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| report::run_of_report(&t));
        state.reports.insert(path, (seen, run));
        state.runs_version += 1;
    }
    settle_emas(state);
}

/// Brings every run's EMAs up to date, each seeded as the loader seeds it: from the newest
/// EMA in the database of its model when it is loaded, that is, of the model's run reaching
/// the highest step among those loaded before it. Runs are taken in the order they started
/// (their first step's time), as they finish and are loaded; a crashed run is never loaded.
/// An EMA the loader stored as NULL (after a NaN) reads back as nothing: the next run starts
/// afresh. Runs only in the database are not seen here; a model's runs all come from the
/// same directory.
fn settle_emas(state: &mut State) {
    let reported: HashSet<&str> = state
        .reports
        .values()
        .filter_map(|(_, run)| run.as_ref().map(|r| r.run_id.as_str()))
        .collect();
    let mut order: Vec<(String, Option<String>, String, bool)> = state
        .runs
        .values()
        .filter(|r| r.first_step().is_some())
        .map(|r| {
            let loaded = r.ending == Ending::Complete || reported.contains(r.run_id.as_str());
            (r.model_id.clone(), r.first_time(), r.run_id.clone(), loaded)
        })
        .collect();
    order.sort();
    let mut newest: HashMap<String, (i64, [f64; 3])> = HashMap::new();
    for (model_id, _, run_id, loaded) in order {
        let Some(run) = state.runs.get_mut(&run_id) else {
            continue;
        };
        run.set_ema_seed(newest.get(&model_id).map_or([0.0; 3], |(_, e)| *e));
        run.settle_emas();
        if let (true, Some((step, emas))) = (loaded, run.last_emas()) {
            if newest.get(&model_id).is_none_or(|(s, _)| step > *s) {
                let stored = emas.map(|e| if e.is_finite() { e } else { 0.0 });
                newest.insert(model_id, (step, stored));
            }
        }
    }
}

/// The run `run_id` as its files told it so far, and whether it is new.
fn run_of<'a>(runs: &'a mut BTreeMap<String, FileRun>, run_id: &str) -> (&'a mut FileRun, bool) {
    let is_new = !runs.contains_key(run_id);
    let run = runs
        .entry(run_id.to_string())
        .or_insert_with(|| FileRun::new(run_id));
    (run, is_new)
}

/// A file shrank or holds something else now: forget everything and read it all again, in
/// a new epoch (readers see the source replaced and read its runs anew).
fn start_over(state: &mut State) {
    let epoch = state.epoch + 1;
    *state = State {
        epoch,
        runs_version: state.runs_version + 1,
        ..Default::default()
    };
}

#[async_trait::async_trait]
impl Source for FilesSource {
    async fn check(&self) -> Result<(), AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.runs.is_empty() {
            return Err(AppError::NoRunFiles {
                dirs: format!(
                    "{}, {}",
                    self.dirs.logs.display(),
                    self.dirs.diagnostics.display()
                ),
            });
        }
        Ok(())
    }

    async fn models(&self) -> Result<Vec<Model>, AppError> {
        let runs = self.runs(None).await?;
        let mut models: Vec<Model> = Vec::new();
        for r in runs {
            if models.iter().all(|m| m.model_id != r.model_id) {
                models.push(Model {
                    model_id: r.model_id.clone(),
                    name: Some(r.model_id.clone()),
                    created_at: r.start_time.clone(),
                    ..Default::default()
                });
            }
        }
        Ok(models)
    }

    async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Self::run_rows(&state)
            .into_iter()
            .filter(|r| model_id.is_none_or(|m| r.model_id == m))
            .collect())
    }

    /// Every request finds its run first: this builds that one run's row, not all of them.
    async fn run(&self, run_id: &str) -> Result<Option<Run>, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.runs.get(run_id).and_then(|r| Self::row_of(&state, r)))
    }

    async fn steps(
        &self,
        run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        _fields: Fields,
    ) -> Result<Vec<crate::model::Step>, AppError> {
        Ok(self
            .with_run(&run.run_id, |r| r.steps(range, newest_first, limit))
            .await?
            .unwrap_or_default())
    }

    async fn routing(
        &self,
        run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        let rows = self
            .with_run(&run.run_id, |r| match kind {
                RoutingKind::Mod => RoutingRows::Mod(r.mod_rows(range, limit)),
                RoutingKind::Mor => RoutingRows::Mor(r.mor_rows(range, limit)),
                RoutingKind::Moe => RoutingRows::Moe(r.moe_rows(range, limit)),
            })
            .await?;
        Ok(rows.unwrap_or(RoutingRows::empty(kind)))
    }

    async fn adaptive_lr(
        &self,
        run: &Run,
        range: (i64, i64),
        limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        Ok(self
            .with_run(&run.run_id, |r| r.adaptive_lr(range, limit))
            .await?
            .unwrap_or_default())
    }

    async fn evals(&self, run: &Run) -> Result<Vec<crate::model::EvalPoint>, AppError> {
        Ok(self
            .with_run(&run.run_id, |r| r.evals.values().cloned().collect())
            .await?
            .unwrap_or_default())
    }

    async fn reach(&self) -> Result<Reach, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Self::reach_of(&state))
    }

    async fn changes(
        &self,
        run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows = LiveRows::default();
        let mut reached = *to;
        if let Some(r) = state.runs.get(&run.run_id) {
            let (steps, at) = r.step_changes(from.steps, to.steps, limit);
            rows.steps = steps;
            reached.steps = at;
            let (routing, at) = r.routing_changes(from.routing_mod, to.routing_mod, limit);
            for (pos, record) in routing {
                let (run_id, model_id) = (&r.run_id, &r.model_id);
                rows.routing_mod.extend(
                    record
                        .mod_rows(run_id, model_id)
                        .into_iter()
                        .map(|m| (pos, m)),
                );
                rows.routing_mor.extend(
                    record
                        .mor_rows(run_id, model_id)
                        .into_iter()
                        .map(|m| (pos, m)),
                );
                rows.routing_moe
                    .extend(record.moe_row(run_id, model_id).map(|m| (pos, m)));
            }
            (
                reached.routing_mod,
                reached.routing_mor,
                reached.routing_moe,
            ) = (at, at, at);
        }
        Ok((rows, reached))
    }

    async fn catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let reach = Self::reach_of(&state);
        let Some(r) = state.runs.get(&run.run_id) else {
            return Ok((LiveRows::default(), reach, None));
        };
        let from = after_step.saturating_add(1);
        let steps = r.steps((from, i64::MAX), false, limit);
        let full = steps.len() >= limit;
        let upto = match steps.last() {
            Some(last) if full => last.step,
            _ => i64::MAX,
        };
        let next = steps.last().filter(|_| full).map(|s| s.step);
        let rows = LiveRows {
            source: 0,
            steps: steps.into_iter().map(|s| (0, s)).collect(),
            routing_mod: r
                .mod_rows((from, upto), usize::MAX)
                .into_iter()
                .map(|m| (0, m))
                .collect(),
            routing_mor: r
                .mor_rows((from, upto), usize::MAX)
                .into_iter()
                .map(|m| (0, m))
                .collect(),
            routing_moe: r
                .moe_rows((from, upto), usize::MAX)
                .into_iter()
                .map(|m| (0, m))
                .collect(),
        };
        Ok((rows, reach, next))
    }

    /// The sidebar's facts, for when the database is not there yet: the files read, their
    /// size, the runs and steps in them, the newest line's time.
    async fn info(&self) -> Result<DbInfo, AppError> {
        self.look().await?;
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let count = |name: &str, rows: usize| crate::model::TableRows {
            table: name.into(),
            rows: rows as i64,
        };
        let bytes = state.logs.values().map(|(s, _)| s.len).sum::<u64>()
            + state.diags.values().map(|(s, _)| s.len).sum::<u64>();
        Ok(DbInfo {
            path: format!(
                "{} and {}",
                self.dirs.logs.display(),
                self.dirs.diagnostics.display()
            ),
            file_size_bytes: bytes,
            journal_mode: "the trainer's log and diagnostics files".into(),
            tables: vec![
                count("logs", state.logs.len()),
                count("diagnostics files", state.diags.len()),
                count("reports", state.reports.len()),
                count("runs", state.runs.len()),
                count(
                    "steps",
                    state.runs.values().map(|r| r.step_count()).sum::<usize>(),
                ),
            ],
            newest_step_time: state
                .runs
                .values()
                .filter_map(|r| r.last_time.clone())
                .max(),
            missing: Vec::new(),
            postgres: false,
        })
    }
}
