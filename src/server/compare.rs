//! Runs side by side: the runs table's rows and a comparison's series, from the sources
//! through the compare cache. The REST handlers and the pages both ask here.

use super::error::AppError;
use super::local_time;
use super::source::Fields;
use super::store::Store;
use crate::analysis::gauges::{mean, recent_throughputs, THROUGHPUT_WINDOW};
use crate::analysis::summary::SummaryBuilder;
use crate::analysis::time::parse_iso8601;
use crate::model::*;

/// What a comparison asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareAsk {
    pub runs: Vec<String>,
    pub metrics: Vec<Metric>,
    pub max_points: usize,
    pub x: CompareX,
    /// In units of `x`; an open end is the run's own.
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub smoothing: Option<f64>,
}

impl CompareAsk {
    /// What the compare page shows: its five metrics at the charts' width, open or infinite
    /// ends of the zoom as the runs' own.
    pub fn page(
        runs: Vec<String>,
        x: CompareX,
        smoothing: Option<f64>,
        start: Option<f64>,
        end: Option<f64>,
    ) -> Self {
        Self {
            runs,
            metrics: COMPARED_METRICS.to_vec(),
            max_points: super::views::CHART_BUCKETS,
            x,
            start: start.filter(|v| v.is_finite()),
            end: end.filter(|v| v.is_finite()),
            smoothing,
        }
    }
}

/// A comparison's answer as sent: its JSON, and the JSON gzipped.
#[derive(Clone)]
pub struct SentAnswer {
    pub json: axum::body::Bytes,
    pub gzip: axum::body::Bytes,
}

/// How far back from its newest step a run's routing is read for its health: enough
/// records per layer for the collapse rule (ten in a row) at any record interval up to 500.
const HEALTH_STEPS: i64 = 5_000;
/// The most routing records of each kind read for one run's health.
const HEALTH_RECORDS: usize = 100_000;

/// How long a training run's summary (best loss, tokens) in the runs table may be old.
const DIGEST_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Turns at the CPU for the runs of a comparison being downsampled, one per core.
static CORES: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

/// Answers kept: a page's charts ask the same comparison again and again (each viewer, each
/// reload), and twenty long runs take tens of milliseconds to downsample and more to
/// compress. Until the data changes (the marks) the same bytes go out.
const KEPT_ANSWERS: usize = 8;

impl Store {
    /// `ask`'s answer as JSON and gzipped JSON, kept until the sources move.
    pub async fn compare_sent(&self, ask: &CompareAsk) -> Result<SentAnswer, AppError> {
        let key = format!("{ask:?}");
        let marks = self.sources().marks().await?;
        {
            let kept = self.sent().lock().unwrap_or_else(|e| e.into_inner());
            if let Some((_, _, answer)) = kept.iter().find(|(k, m, _)| *k == key && *m == marks) {
                return Ok(answer.clone());
            }
        }
        let comparison = self.compare(ask).await?;
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let json = serde_json::to_vec(&comparison).unwrap_or_default();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = gz.write_all(&json);
            SentAnswer {
                json: json.into(),
                gzip: gz.finish().unwrap_or_default().into(),
            }
        })
        .await
        .map_err(|_| AppError::Busy)?;
        let mut kept = self.sent().lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|(k, _, _)| *k != key);
        kept.push_back((key, marks, answer.clone()));
        while kept.len() > KEPT_ANSWERS {
            kept.pop_front();
        }
        Ok(answer)
    }

    /// Each run of `ask` over its range: per metric the M4 series and, when asked, the
    /// smoothed one. The runs are read together; a run no source knows is a 400 naming it.
    pub async fn compare(&self, ask: &CompareAsk) -> Result<Comparison, AppError> {
        let mut located = Vec::with_capacity(ask.runs.len());
        for id in &ask.runs {
            match self.located(id).await {
                Ok(run) => located.push(run),
                Err(AppError::NotFound { .. }) => {
                    return Err(AppError::bad_param("runs", format!("no run {id:?} here")))
                }
                Err(e) => return Err(e),
            }
        }
        let runs = futures::future::try_join_all(located.iter().map(|run| self.compared(run, ask)))
            .await?;
        Ok(Comparison {
            x: ask.x,
            max_points: ask.max_points,
            smoothing: ask.smoothing,
            start: ask.start,
            end: ask.end,
            runs,
        })
    }

    async fn compared(
        &self,
        run: &(Run, usize),
        ask: &CompareAsk,
    ) -> Result<ComparedRun, AppError> {
        let mut held = self
            .compare_cache()
            .get(self.sources(), self.kept(), run, &ask.metrics)
            .await?;
        let columns = held.columns.as_mut().ok_or(AppError::Busy)?;
        let (lo, hi) = (
            ask.start.unwrap_or(f64::NEG_INFINITY),
            ask.end.unwrap_or(f64::INFINITY),
        );
        let range = match (ask.x, ask.start, ask.end) {
            (_, None, None) | (CompareX::Step, _, _) => {
                let clamp = |v: f64| v.clamp(i64::MIN as f64, i64::MAX as f64);
                let (a, b) = (clamp(lo.ceil()) as i64, clamp(hi.floor()) as i64);
                (a <= b).then_some((a, b))
            }
            (x, _, _) => columns.steps_within(x, lo, hi),
        };
        // The run's own steps within the range, `None` when it has none there.
        let steps = range.and_then(|r| columns.steps_in(r));
        let evals: Points = match steps {
            Some(range) => self
                .sources()
                .evals(run)
                .await?
                .iter()
                .filter(|e| (range.0..=range.1).contains(&e.step) && e.eval_loss.is_finite())
                .map(|e| (e.step, e.eval_loss))
                .collect(),
            None => Points::default(),
        };
        // Downsampling and smoothing on the blocking pool, as many runs at once as there are
        // cores: inline they took turns on this task's thread; all twenty at once would hold
        // every run's column read back from disk at the same time.
        let _turn = CORES.acquire().await.map_err(|_| AppError::Busy)?;
        let (metrics, max_points, smoothing) = (ask.metrics.clone(), ask.max_points, ask.smoothing);
        let (run_id, model_id) = (run.0.run_id.clone(), run.0.model_id.clone());
        tokio::task::spawn_blocking(move || {
            let columns = held.columns.as_mut().ok_or(AppError::Busy)?;
            let mut answer = ComparedRun {
                run_id,
                model_id,
                first_step: columns.first_step(),
                max_step: columns.last_step(),
                steps,
                clock: columns.clock(),
                evals,
                ..Default::default()
            };
            if let Some(range) = steps {
                answer.spikes = columns.spikes(range);
                for m in metrics {
                    match columns.series(m, range, max_points, smoothing) {
                        Ok(series) => answer.series.extend(series),
                        Err(e) => {
                            held.columns = None; // read again from the sources next time
                            return Err(AppError::Spill {
                                run: answer.run_id,
                                why: e.to_string(),
                            });
                        }
                    }
                }
            }
            Ok(answer)
        })
        .await
        // Only a panic ends the task early (a bug; the panic itself is in the server log).
        .map_err(|e| AppError::Spill {
            run: run.0.run_id.clone(),
            why: format!("downsampling them stopped: {e}"),
        })?
    }

    /// What the compare page shows for `ask`: the series, the runs' rows and their config
    /// side by side (the model's facts first).
    pub async fn compare_view(&self, ask: &CompareAsk) -> Result<CompareView, AppError> {
        let comparison = self.compare(ask).await?;
        // Only the compared runs' rows: each costs reads, and this runs on every zoom.
        let all = self.rows_of(Some(&ask.runs)).await?;
        let rows: Vec<RunRow> = ask
            .runs
            .iter()
            .filter_map(|id| all.iter().find(|r| &r.run_id == id).cloned())
            .collect();
        let models = self.models().await?;
        let described: Vec<Vec<(String, String)>> = rows
            .iter()
            .map(|r| {
                let model = models.iter().find(|m| m.model_id == r.model_id);
                let mut entries = vec![("model".to_string(), r.model_id.clone())];
                if let Some(p) = model.and_then(|m| m.params_millions) {
                    entries.push(("model params (M)".into(), format!("{p}")));
                }
                entries.extend(r.config.iter().cloned());
                entries
            })
            .collect();
        let slices: Vec<&[(String, String)]> = described.iter().map(Vec::as_slice).collect();
        let mut config = crate::analysis::runs_table::config_diff(&slices);
        // The model's facts lead the table.
        config.sort_by_key(|row| !row.key.starts_with("model"));
        let mut routing = Vec::with_capacity(ask.runs.len());
        for id in &ask.runs {
            routing.push(self.routing_health(&self.located(id).await?).await?);
        }
        Ok(CompareView {
            comparison,
            rows,
            config,
            routing,
        })
    }

    /// A run's routing at its end, from its records of the last [`HEALTH_STEPS`] steps.
    async fn routing_health(&self, run: &(Run, usize)) -> Result<RoutingHealth, AppError> {
        let sources = self.sources();
        let mut health = RoutingHealth {
            run_id: run.0.run_id.clone(),
            ..Default::default()
        };
        let Some(last) = sources.last_step(run).await? else {
            return Ok(health);
        };
        let range = (last.saturating_sub(HEALTH_STEPS), i64::MAX);
        let mods = sources
            .routing::<RoutingMod>(run, range, HEALTH_RECORDS)
            .await?;
        let mors = sources
            .routing::<RoutingMor>(run, range, HEALTH_RECORDS)
            .await?;
        let moes = sources
            .routing::<RoutingMoe>(run, range, HEALTH_RECORDS)
            .await?;
        health = crate::analysis::routing::health(&run.0.config(), &mods, &mors, &moes);
        health.run_id = run.0.run_id.clone();
        Ok(health)
    }

    /// Every run of every model, with the runs table's columns, oldest first.
    pub async fn run_rows(&self) -> Result<Vec<RunRow>, AppError> {
        self.rows_of(None).await
    }

    /// The rows of the runs in `only` (every run when `None`). A run's state is judged
    /// among its model's runs, so each model's list is still read whole.
    async fn rows_of(&self, only: Option<&[String]>) -> Result<Vec<RunRow>, AppError> {
        let (utc_now, local_now) = local_time::now();
        let mut rows = Vec::new();
        for model in self.models().await? {
            for run in self.runs_with_state(&model.model_id).await? {
                if only.is_some_and(|ids| !ids.contains(&run.run_id)) {
                    continue;
                }
                let Ok(located) = self.located(&run.run_id).await else {
                    continue;
                };
                let mut row = self.run_row(&located).await?;
                row.state = run.state;
                row.last_seen_ago = row.last_seen.as_deref().and_then(|t| {
                    let now = if local_time::has_zone(t) {
                        utc_now
                    } else {
                        local_now
                    };
                    parse_iso8601(t).map(|seen| (now - seen).max(0.0))
                });
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// One run's row. A run the trainer's database finished has its best loss and tokens
    /// in its run row; otherwise one pass over its steps finds them (kept until it changes).
    /// Its throughput is the gauge's mean of the newest logged steps: one step's can be an
    /// eval's or a checkpoint's pause (the trainer's last step often is).
    async fn run_row(&self, run: &(Run, usize)) -> Result<RunRow, AppError> {
        let sources = self.sources();
        let recent = sources
            .steps(
                run,
                (i64::MIN, i64::MAX),
                true,
                THROUGHPUT_WINDOW,
                Fields::All,
            )
            .await?;
        let first = sources
            .steps(run, (i64::MIN, i64::MAX), false, 1, Fields::RunCache)
            .await?;
        let (newest, first) = (recent.first(), first.first());
        let r = &run.0;
        let config = r.config();
        let mut row = RunRow {
            run_id: r.run_id.clone(),
            model_id: r.model_id.clone(),
            step: newest.map(|s| s.step),
            max_steps: config.count("max_steps"),
            last_seen: r
                .last_seen
                .clone()
                .or_else(|| newest.and_then(|s| s.timestamp.clone())),
            best_loss: r.best_loss,
            best_loss_step: r.best_loss_step,
            eval_loss: sources.evals(run).await?.last().map(|e| e.eval_loss),
            tokens: r.total_tokens.map(|t| t as f64),
            tokens_per_sec: mean(&recent_throughputs(&recent)),
            started: first.and_then(|s| s.timestamp.clone()),
            config: config.entries(),
            node: r.node.clone(),
            ..Default::default()
        };
        let time = |s: Option<&Step>| s?.timestamp.as_deref().and_then(parse_iso8601);
        row.duration = time(newest).zip(time(first)).map(|(b, a)| (b - a).max(0.0));
        if row.best_loss.is_none() || row.tokens.is_none() {
            let summary = self.digest(run).await?;
            row.best_loss = row.best_loss.or(summary.best_loss);
            row.best_loss_step = row.best_loss_step.or(summary.best_loss_step);
            if row.tokens.is_none() {
                row.tokens = summary.tokens_estimate;
                row.tokens_estimated = row.tokens.is_some();
            }
        }
        Ok(row)
    }

    /// A run's summary from one pass over its steps, kept with the marks it was made at.
    async fn digest(&self, run: &(Run, usize)) -> Result<RunSummary, AppError> {
        let marks = self.sources().marks().await?;
        if let Some((at, (made, summary))) = self
            .digests()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&run.0.run_id)
        {
            // A training run moves the marks every step: its summary is made again at most
            // every DIGEST_AGE, not on every look at the table.
            if *at == marks || made.elapsed() < DIGEST_AGE {
                return Ok(summary.clone());
            }
        }
        let mut summary = SummaryBuilder::new(&run.0.config());
        let mut from = i64::MIN;
        const PAGE: usize = 10_000;
        loop {
            let page = self
                .sources()
                .steps(run, (from, i64::MAX), false, PAGE, Fields::RunCache)
                .await?;
            page.iter().for_each(|s| summary.push(s));
            match page.last().and_then(|s| s.step.checked_add(1)) {
                Some(next) if page.len() == PAGE => from = next,
                _ => break,
            }
        }
        let summary = summary.finish(&run.0);
        self.digests()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                run.0.run_id.clone(),
                (marks, (std::time::Instant::now(), summary.clone())),
            );
        Ok(summary)
    }
}
