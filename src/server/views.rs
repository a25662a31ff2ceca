//! What the page, a zoom, a lineage and a chart's API request show, put together from the
//! run cache and the analysis: the only place that assembles those answers.

use super::error::AppError;
use super::run_cache::CachedRun;
use super::source::Fields;
use super::store::Store;
use crate::analysis::downsample::M4Stream;
use crate::analysis::gauges::THROUGHPUT_WINDOW;
use crate::model::*;
use std::sync::Arc;

/// Buckets per chart series on the page (M4 keeps at most four points per bucket): about
/// two pixels each on the widest chart.
pub const CHART_BUCKETS: usize = 600;
/// Step columns of the routing charts (heatmap cells, buckets per layer series).
const ROUTING_COLUMNS: usize = 150;
/// Rows in the page's recent-steps table.
const RECENT_STEPS: usize = 8;
/// Rows per read when a range is scanned for metrics the run cache does not keep.
const SCAN_PAGE: usize = 5_000;

/// One run of a lineage as its charts show it: its place among the model's runs, its steps
/// in the range shown, and its share of the chart's buckets and routing columns.
struct LineagePart {
    place: usize,
    run: (Run, usize),
    steps: (i64, i64),
    width: usize,
    columns: usize,
}

/// The time-series charts and routing charts of a held run over `range`, at `width` and
/// `columns` buckets; the routing charts carry the run's clock (from its steps), so their
/// x axis can read time or tokens.
fn charts_of(
    cached: &CachedRun,
    range: Option<(i64, i64)>,
    width: usize,
    columns: usize,
) -> Result<(RunCharts, RoutingCharts), AppError> {
    let state = cached.state.as_ref().ok_or(AppError::Busy)?;
    let routing = cached.routing.as_ref().ok_or(AppError::Busy)?;
    let mut routing = routing.charts(range, columns);
    routing.clock = state.clock(range);
    let mut charts = state.charts(range, width);
    if let Some((_, extras)) = &cached.extras {
        charts.adaptive_lr = extras.adaptive_lr.charts(range, width);
        (charts.eval, charts.eval_components) = crate::analysis::eval::series(&extras.evals, range);
    }
    Ok((charts, routing))
}

/// Later start wins; ties go to the later start step.
fn run_recency(r: &Run) -> (i64, i64) {
    let t = r
        .start_time
        .as_deref()
        .and_then(crate::analysis::time::parse_iso8601)
        .unwrap_or(f64::MIN);
    (t as i64, r.start_step.unwrap_or(0))
}

impl Store {
    /// `/api/metrics/{run_id}?max_points=N`: the rows holding each bucket's first, last,
    /// lowest and highest value of every requested metric, and the latest row; raw rows
    /// when the range holds no more than `max_points`.
    pub async fn steps_downsampled(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_points: usize,
        metrics: &[&'static str],
    ) -> Result<DownsampledSteps, AppError> {
        let run = self.located(run_id).await?;
        let (from, to) = (start_step.unwrap_or(i64::MIN), end_step.unwrap_or(i64::MAX));
        let answer = |steps: Vec<Step>, downsampled, max_step| DownsampledSteps {
            run_id: run.0.run_id.clone(),
            model_id: run.0.model_id.clone(),
            max_points,
            downsampled,
            count: steps.len(),
            max_step,
            steps,
        };
        let asked: Vec<Option<Metric>> = metrics.iter().map(|m| Metric::parse(m)).collect();
        // The charts' metrics are in memory: choose and build the rows there.
        let cached: Option<Vec<usize>> = asked.iter().map(|m| m.and_then(Metric::cached)).collect();
        if let Some(columns) = cached.filter(|c| !c.is_empty()) {
            let held = self.cache().get(self.sources(), &run, false).await?;
            let state = held.state.as_ref().ok_or(AppError::Busy)?;
            let (keep, downsampled) = state.downsample(Some((from, to)), max_points, &columns);
            let rows = keep.iter().map(|&i| state.row(i, &columns)).collect();
            return Ok(answer(rows, downsampled, state.last_step()));
        }
        // Metrics the cache does not keep: one pass over the range, keeping only each
        // bucket's candidate rows, so memory follows the buckets on a run of any length.
        let sources = self.sources();
        let first = sources
            .steps(&run, (from, to), false, 1, Fields::All)
            .await?;
        let last = sources
            .steps(&run, (from, to), true, 1, Fields::All)
            .await?;
        let max_step = sources.last_step(&run).await?;
        let (Some(first), Some(last)) = (first.first(), last.first()) else {
            return Ok(answer(Vec::new(), false, max_step));
        };
        let mut stream = M4Stream::new(first.step, last.step, max_points);
        let mut values = vec![f64::NAN; metrics.len()];
        let mut next = first.step;
        loop {
            let page = sources
                .steps(&run, (next, last.step), false, SCAN_PAGE, Fields::All)
                .await?;
            let more = match page.last().and_then(|s| s.step.checked_add(1)) {
                Some(n) if page.len() == SCAN_PAGE => Some(n),
                _ => None,
            };
            for s in page {
                for (v, m) in values.iter_mut().zip(&asked) {
                    *v = m.and_then(|m| m.of(&s)).unwrap_or(f64::NAN);
                }
                stream.push(s.step, &values, Arc::new(s));
            }
            match more {
                Some(n) => next = n,
                None => break,
            }
        }
        let (kept, downsampled) = stream.finish();
        let rows = kept
            .into_iter()
            .map(|row| {
                let mut row = Arc::unwrap_or_clone(row);
                row.mark_nonfinite();
                row
            })
            .collect();
        Ok(answer(rows, downsampled, max_step))
    }

    /// The stats-card summary of a run, from the run cache.
    pub async fn run_summary(&self, run: &Run) -> Result<RunSummary, AppError> {
        let run = self.located(&run.run_id).await?;
        let held = self.cache().get(self.sources(), &run, false).await?;
        let state = held.state.as_ref().ok_or(AppError::Busy)?;
        Ok(state.summary(&run.0))
    }

    /// The charts' data for steps `start..=end` of a run, at the same point budget as the
    /// page: what a zoom asks for, so detail appears as the range narrows. Spikes and
    /// collapses are the run's own (judged over the whole run), its points in the range.
    pub async fn zoom(&self, run_id: &str, start: i64, end: i64) -> Result<ZoomCharts, AppError> {
        let run = self.located(run_id).await?;
        let held = self.cache().get(self.sources(), &run, true).await?;
        let (charts, routing) =
            charts_of(&held, Some((start, end)), CHART_BUCKETS, ROUTING_COLUMNS)?;
        Ok(ZoomCharts {
            run_id: run.0.run_id.clone(),
            range: (start, end),
            run: charts,
            routing,
        })
    }

    /// A run's loss smoothed by `weight` at the steps its loss chart shows for `range`.
    pub async fn smoothed_loss(
        &self,
        run_id: &str,
        range: Option<(i64, i64)>,
        weight: f64,
    ) -> Result<SmoothedLoss, AppError> {
        let run = self.located(run_id).await?;
        // With its routing, as the page holds it: no second read of a run on screen.
        let held = self.cache().get(self.sources(), &run, true).await?;
        let state = held.state.as_ref().ok_or(AppError::Busy)?;
        Ok(SmoothedLoss {
            run_id: run.0.run_id.clone(),
            weight,
            range,
            last_step: state.last_step(),
            points: state.smoothed_loss(range, CHART_BUCKETS, weight),
        })
    }

    /// A run's routing series over `range` in `columns` step buckets per layer, as the
    /// charts draw them (M4 per layer series, the worst cell per bucket for MoD).
    pub async fn routing_downsampled(
        &self,
        run_id: &str,
        range: Option<(i64, i64)>,
        columns: usize,
    ) -> Result<RoutingCharts, AppError> {
        let run = self.located(run_id).await?;
        let held = self.cache().get(self.sources(), &run, true).await?;
        let routing = held.routing.as_ref().ok_or(AppError::Busy)?;
        Ok(routing.charts(range, columns))
    }

    /// The charts of a model's runs laid end to end, resume points marked (see
    /// `analysis::lineage`), over steps `range` when given.
    pub async fn lineage(
        &self,
        model_id: &str,
        range: Option<(i64, i64)>,
    ) -> Result<(RunCharts, RoutingCharts), AppError> {
        use crate::analysis::lineage::{merge, Part};
        let mut parts = Vec::new();
        for part in self.lineage_parts(model_id, range).await? {
            let held = self.cache().get(self.sources(), &part.run, true).await?;
            let (charts, routing) = charts_of(&held, Some(part.steps), part.width, part.columns)?;
            parts.push(Part {
                label: format!("resume #{}", part.place + 1),
                start: part.run.0.start_step,
                run: charts,
                routing,
            });
        }
        Ok(merge(parts))
    }

    /// The loss of a model's runs laid end to end, each run smoothed by `weight` over every
    /// one of its steps, at the steps the lineage's loss chart shows for `range`. Each run's
    /// smoothing starts at its own first step, as TensorBoard smooths each run of a resumed
    /// directory: a resume's loss is not averaged with the steps it replaced.
    pub async fn lineage_smoothed_loss(
        &self,
        model_id: &str,
        range: Option<(i64, i64)>,
        weight: f64,
    ) -> Result<SmoothedLoss, AppError> {
        let mut smoothed = SmoothedLoss {
            run_id: model_id.to_string(),
            weight,
            range,
            ..SmoothedLoss::default()
        };
        for part in self.lineage_parts(model_id, range).await? {
            let held = self.cache().get(self.sources(), &part.run, false).await?;
            let state = held.state.as_ref().ok_or(AppError::Busy)?;
            smoothed
                .points
                .extend(state.smoothed_loss(Some(part.steps), part.width, weight));
            smoothed.last_step = smoothed.last_step.max(state.last_step());
        }
        Ok(smoothed)
    }

    /// The runs of a model's lineage with steps in `range`, oldest first. Each gets buckets
    /// in proportion to its share of the steps shown, so the lineage costs what one run does.
    async fn lineage_parts(
        &self,
        model_id: &str,
        range: Option<(i64, i64)>,
    ) -> Result<Vec<LineagePart>, AppError> {
        let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
        let mut shown = Vec::new();
        for (place, run) in self.runs(model_id).await?.into_iter().enumerate() {
            let run = self.located(&run.run_id).await?;
            let held = self.cache().get(self.sources(), &run, false).await?;
            let Some(state) = held.state.as_ref() else {
                continue;
            };
            if let (Some(first), Some(last)) = (state.first_step(), state.last_step()) {
                let (a, b) = (first.max(lo), last.min(hi));
                if a <= b {
                    shown.push(LineagePart {
                        place,
                        run,
                        steps: (a, b),
                        width: 0,
                        columns: 0,
                    });
                }
            }
        }
        let total: f64 = shown
            .iter()
            .map(|p| (p.steps.1 - p.steps.0 + 1) as f64)
            .sum();
        for part in &mut shown {
            let share = (part.steps.1 - part.steps.0 + 1) as f64 / total.max(1.0);
            part.width = ((CHART_BUCKETS as f64 * share).round() as usize).max(16);
            part.columns = ((ROUTING_COLUMNS as f64 * share).round() as usize).max(8);
        }
        Ok(shown)
    }

    /// The dashboard of a model's newest run with the charts of its whole lineage.
    pub async fn lineage_dashboard(
        &self,
        model_id: &str,
        settings: &GaugeSettings,
    ) -> Result<Dashboard, AppError> {
        let mut d = self.dashboard(None, Some(model_id), settings).await?;
        if d.run.is_some() {
            let (mut run, routing) = self.lineage(model_id, None).await?;
            run.target_loss = run.target_loss.or(settings.target_loss);
            d.charts = Some(run);
            d.routing = Some(routing);
        }
        Ok(d)
    }

    /// Reads the run `/` shows into memory: its steps first (what chart requests need), then
    /// its routing rows, so a chart request waits for the first part only.
    pub async fn warm(&self, settings: &GaugeSettings) -> Result<(), AppError> {
        // `/` shows the model whose latest run is the most recent: that run.
        let runs = self.all_runs().await?;
        let Some(run) = runs.iter().max_by_key(|r| run_recency(r)) else {
            return Ok(());
        };
        let located = self.located(&run.run_id).await?;
        drop(self.cache().get(self.sources(), &located, false).await?);
        self.dashboard(Some(&run.run_id), None, settings).await?;
        Ok(())
    }

    /// Everything the dashboard page shows, for `run_id`, or else the latest run of
    /// `model_id`, or else the latest run of the most recently active model.
    pub async fn dashboard(
        &self,
        run_id: Option<&str>,
        model_id: Option<&str>,
        settings: &GaugeSettings,
    ) -> Result<Dashboard, AppError> {
        // A page of megabytes is about to be built and rendered.
        super::memory::after_big_work();
        let models = self.models().await?;
        let all_runs = self.all_runs().await?;
        let run = match run_id {
            Some(id) => Some(self.run(id).await?),
            None => None,
        };
        if let Some(id) = model_id.filter(|_| run.is_none()) {
            self.model(id).await?;
        }
        let latest_of = |model_id: &str| {
            all_runs
                .iter()
                .filter(|r| r.model_id == model_id)
                .max_by(|a, b| run_recency(a).cmp(&run_recency(b)))
        };
        let choices: Vec<ModelChoice> = models
            .iter()
            .map(|m| ModelChoice {
                model: m.clone(),
                run_count: all_runs.iter().filter(|r| r.model_id == m.model_id).count() as i64,
                latest_run_id: latest_of(&m.model_id).map(|r| r.run_id.clone()),
            })
            .collect();
        let model = match (&run, model_id) {
            (Some(r), _) => models.iter().find(|m| m.model_id == r.model_id).cloned(),
            (None, Some(id)) => models.iter().find(|m| m.model_id == id).cloned(),
            (None, None) => models
                .iter()
                .max_by(|a, b| {
                    let key = |m: &Model| {
                        (
                            latest_of(&m.model_id).map(run_recency),
                            m.created_at.clone(),
                        )
                    };
                    key(a).cmp(&key(b))
                })
                .cloned(),
        };
        let run = run.or_else(|| model.as_ref().and_then(|m| latest_of(&m.model_id).cloned()));
        let runs: Vec<Run> = match (&model, &run) {
            (Some(m), _) => all_runs
                .iter()
                .filter(|r| r.model_id == m.model_id)
                .cloned()
                .collect(),
            (None, Some(r)) => vec![r.clone()],
            (None, None) => Vec::new(),
        };
        // Each run's state, for the header and the run selector.
        let runs = self.judged(runs).await?;
        let run = run.map(|r| {
            runs.iter()
                .find(|j| j.run_id == r.run_id)
                .cloned()
                .unwrap_or(r)
        });
        let (summary, charts, routing, mut recent_steps) = match &run {
            Some(r) => {
                let located = self.located(&r.run_id).await?;
                let (summary, (mut charts, routing)) = {
                    let held = self.cache().get(self.sources(), &located, true).await?;
                    let state = held.state.as_ref().ok_or(AppError::Busy)?;
                    (
                        state.summary(r),
                        charts_of(&held, None, CHART_BUCKETS, ROUTING_COLUMNS)?,
                    )
                };
                charts.target_loss = charts.target_loss.or(settings.target_loss);
                (
                    Some(summary),
                    Some(charts),
                    Some(routing),
                    self.recent_steps(&r.run_id, THROUGHPUT_WINDOW as i64)
                        .await?,
                )
            }
            None => (None, None, None, Vec::new()),
        };
        let gauges = run.as_ref().map(|r| {
            let mut g = crate::analysis::gauges::compute(&recent_steps, &r.config(), settings);
            // Older than the newest steps read here (a log line has none; the diagnostics
            // record, every 100 steps, has): the run's newest measured, from its one pass.
            g.vram_gb = g.vram_gb.or(summary.as_ref().and_then(|s| s.last_vram_gb));
            g
        });
        recent_steps.truncate(RECENT_STEPS);
        Ok(Dashboard {
            models: choices,
            model,
            runs,
            run,
            summary,
            recent_steps,
            charts,
            routing,
            gauges,
            db: self.db_info().await?,
        })
    }
}
