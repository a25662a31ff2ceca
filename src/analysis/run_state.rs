//! Everything the charts and stats cards need about one run, folded in step by step: the
//! chart metrics column by column with a min/max pyramid each, the summary, spikes,
//! divergence and clipping counts. Built once by paging through the run, extended with the
//! rows the trainer adds, so a request costs what it draws, not the run's length.

use super::charts::RunColumns;
use super::clock::ClockBuilder;
use super::loss::{ema_missing, SpikeEvents, EMA_ALPHAS};
use super::series::{m4_range, Pyramid, Window};
use super::summary::SummaryBuilder;
use crate::model::{
    ClockMark, Metric, NonFinite, Points, Run, RunCharts, RunConfig, RunSummary, Step,
};

/// The metrics kept in memory, in [`column`] order.
pub const CACHED_METRICS: [Metric; 7] = Metric::CACHED;

/// What [`RunState::push`] made of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// A new step after the last one.
    Appended,
    /// A step already held with the same values (read twice across a page boundary).
    Same,
    /// An earlier step with other values, or one that fills a gap: the state must be
    /// rebuilt.
    Rewritten,
}

#[derive(Clone, Debug)]
pub struct RunState {
    config: RunConfig,
    /// Full-resolution columns; NULL as NaN, ±Inf kept. EMAs the trainer did not record
    /// (0.0) hold the dashboard's own, continued step by step.
    columns: RunColumns,
    pyramids: [Pyramid; 7],
    summary: SummaryBuilder,
    /// Spike events at their peaks.
    spikes: SpikeEvents,
    diverged: Vec<(i64, NonFinite)>,
    ema: [Option<f64>; 3],
    ema_recorded: bool,
    /// Recorded EMAs are not drawn (see [`RunState::drawing_own_emas`]).
    own_emas: bool,
    /// Where recorded EMAs stopped and ours took over (see `RunCharts::ema_computed_from`).
    ema_computed_from: Option<i64>,
    pre_clip_recorded: bool,
    /// Pre-clip norms above `grad_clip`, and finite pre-clip norms.
    clipped: (u64, u64),
    grad_clip: Option<f64>,
    /// Wall time and tokens, sampled.
    clock: ClockBuilder,
}

/// Clock marks per chart: enough to label an axis and read a tooltip's time.
const CLOCK_MARKS: usize = 300;

impl RunState {
    pub fn new(config: RunConfig) -> Self {
        Self {
            summary: SummaryBuilder::new(&config),
            grad_clip: config.number("grad_clip").filter(|c| *c > 0.0),
            config,
            columns: RunColumns::default(),
            pyramids: Default::default(),
            spikes: SpikeEvents::default(),
            diverged: Vec::new(),
            ema: [None; 3],
            ema_recorded: false,
            own_emas: false,
            ema_computed_from: None,
            pre_clip_recorded: false,
            clipped: (0, 0),
            clock: ClockBuilder::default(),
        }
    }

    /// Draws EMAs computed over every step, whatever the steps record. For a run read
    /// from its log: only its diagnostics records (one step in four or more) carry the
    /// loader's EMAs, which move once per record, and they arrive up to 500 steps after the
    /// line of their step; a line between two records has none. One EMA over every logged
    /// step is the line that tracks the loss, the same live and after a reload.
    pub fn drawing_own_emas(mut self) -> Self {
        self.own_emas = true;
        self
    }

    pub fn len(&self) -> usize {
        self.columns.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.steps.is_empty()
    }

    pub fn first_step(&self) -> Option<i64> {
        self.columns.steps.first().copied()
    }

    pub fn last_step(&self) -> Option<i64> {
        self.columns.steps.last().copied()
    }

    /// Folds one row in. Rows must come in step order; call [`Self::index`] after a batch.
    pub fn push(&mut self, s: &Step) -> Pushed {
        if let Some(last) = self.last_step() {
            if s.step <= last {
                let at = self.columns.steps.partition_point(|x| *x < s.step);
                let same = self.columns.steps.get(at) == Some(&s.step) && self.row_matches(at, s);
                return if same {
                    Pushed::Same
                } else {
                    Pushed::Rewritten
                };
            }
        }
        let i = self.len();
        self.summary.push(s);
        self.clock.push(ClockMark {
            step: s.step,
            time: self.summary.last_time(),
            tokens: self.summary.tokens_so_far(),
        });
        self.columns.push(s);
        let loss = self.columns.loss[i];
        match loss {
            l if l.is_finite() => self.spikes.push(i, s.step, l),
            l => self
                .diverged
                .push((s.step, NonFinite::of(l).unwrap_or(NonFinite::Nan))),
        }
        for ((state, column), a) in self
            .ema
            .iter_mut()
            .zip(&mut self.columns.ema)
            .zip(EMA_ALPHAS)
        {
            if self.own_emas || ema_missing(&[column[i]]) {
                // Not recorded here: continue our own, from the trainer's last value when
                // it recorded one (a NaN loss leaves every later EMA of its load NULL).
                if loss.is_finite() {
                    *state = Some(state.map_or(loss, |e| a * e + (1.0 - a) * loss));
                }
                column[i] = state.unwrap_or(f64::NAN);
                if self.ema_recorded && self.ema_computed_from.is_none() {
                    self.ema_computed_from = Some(s.step);
                }
            } else {
                self.ema_recorded = true;
                *state = Some(column[i]);
            }
        }
        let pre = self.columns.grad_pre_clip[i];
        if pre.is_finite() {
            self.pre_clip_recorded |= pre != 0.0;
            self.clipped.1 += 1;
            if self.grad_clip.is_some_and(|c| pre > c) {
                self.clipped.0 += 1;
            }
        }
        Pushed::Appended
    }

    fn row_matches(&self, i: usize, s: &Step) -> bool {
        let same = |a: f64, b: Option<f64>| {
            let b = b.unwrap_or(f64::NAN);
            a == b || (a.is_nan() && b.is_nan())
        };
        same(self.columns.loss[i], s.loss_total)
            && same(self.columns.lr[i], s.lr)
            && same(self.columns.grad[i], s.grad_norm)
    }

    /// Brings the pyramids up to the rows pushed so far.
    pub fn index(&mut self) {
        for (k, p) in self.pyramids.iter_mut().enumerate() {
            p.extend(column(&self.columns, k));
        }
    }

    pub fn summary(&self, run: &Run) -> RunSummary {
        self.summary.clone().finish(run)
    }

    /// Indices `a..b` of the steps in `start..=end`.
    fn span(&self, range: Option<(i64, i64)>) -> (usize, usize) {
        let steps = &self.columns.steps;
        match range {
            None => (0, steps.len()),
            Some((lo, hi)) => (
                steps.partition_point(|s| *s < lo),
                steps.partition_point(|s| *s <= hi),
            ),
        }
    }

    /// Indices of the rows M4 keeps for `metrics` (indices into [`CACHED_METRICS`]) in the
    /// range, and whether there were more rows than `max_points`.
    pub fn downsample(
        &self,
        range: Option<(i64, i64)>,
        max_points: usize,
        metrics: &[usize],
    ) -> (Vec<usize>, bool) {
        let (a, b) = self.span(range);
        if b - a <= max_points {
            return ((a..b).collect(), false);
        }
        let mut keep: Vec<usize> = metrics
            .iter()
            .flat_map(|&k| {
                m4_range(
                    &self.columns.steps,
                    Window::whole(column(&self.columns, k)),
                    &self.pyramids[k],
                    a,
                    b,
                    max_points,
                )
            })
            .collect();
        keep.sort_unstable();
        keep.dedup();
        (keep, true)
    }

    /// Row `i` with `metrics` (indices into [`CACHED_METRICS`]) only, and without run or
    /// model id: what a chart's slim request returns. NULL and ±Inf as the store reads them.
    /// Only the asked-for columns are touched: on a long run each is a cache miss.
    pub fn row(&self, i: usize, metrics: &[usize]) -> Step {
        let c = &self.columns;
        let mut s = Step {
            step: c.steps[i],
            ..Default::default()
        };
        for &k in metrics {
            let x = column(c, k)[i];
            CACHED_METRICS[k].set(&mut s, (!x.is_nan()).then_some(x));
        }
        s.mark_nonfinite();
        if !metrics.contains(&0) {
            // An absent loss is not a NaN loss.
            s.nonfinite.remove("loss_total");
        }
        s
    }

    /// The three time-series charts for the steps in `range` (the whole run when `None`),
    /// at `width` buckets per series.
    /// The loss smoothed by `weight` over every step from the run's first, at the steps the
    /// loss chart keeps for `range` at `width`: the same curve at every zoom.
    pub fn smoothed_loss(&self, range: Option<(i64, i64)>, width: usize, weight: f64) -> Points {
        let (a, b) = self.span(range);
        let steps = &self.columns.steps;
        let values = column(&self.columns, 0);
        let kept = m4_range(steps, Window::whole(values), &self.pyramids[0], a, b, width);
        let mut smoother = super::smoothing::Smoother::new(weight);
        let mut next = 0;
        let mut points = Points::with_capacity(kept.len());
        for i in kept {
            let mut v = f64::NAN;
            while next <= i {
                v = smoother.push(values[next]);
                next += 1;
            }
            if v.is_finite() {
                points.push((steps[i], v));
            }
        }
        points
    }

    pub fn charts(&self, range: Option<(i64, i64)>, width: usize) -> RunCharts {
        let (a, b) = self.span(range);
        let steps = &self.columns.steps;
        let points = |k: usize| -> Points {
            let values = column(&self.columns, k);
            m4_range(steps, Window::whole(values), &self.pyramids[k], a, b, width)
                .into_iter()
                .filter(|&i| values[i].is_finite())
                .map(|i| (steps[i], values[i]))
                .collect()
        };
        let inside = |s: i64| a < b && s >= steps[a] && s <= steps[b - 1];
        RunCharts {
            first_step: steps.get(a).copied().unwrap_or(0),
            last_step: if b > a { steps[b - 1] } else { 0 },
            loss: points(0),
            ema: [points(1), points(2), points(3)],
            ema_computed: !self.ema_recorded,
            ema_computed_from: self.ema_computed_from,
            spikes: self
                .spikes
                .events
                .iter()
                .copied()
                .filter(|p| inside(p.0))
                .collect(),
            diverged: self
                .diverged
                .iter()
                .copied()
                .filter(|p| inside(p.0))
                .collect(),
            lr: points(4),
            grad_post_clip: points(5),
            grad_pre_clip: if self.pre_clip_recorded {
                points(6)
            } else {
                Vec::new()
            },
            grad_clip: self.grad_clip,
            clipped_share: match (self.grad_clip, self.pre_clip_recorded, self.clipped) {
                (Some(_), true, (over, n)) if n > 0 => Some(over as f64 / n as f64),
                _ => None,
            },
            warmup_steps: self.config.count("warmup_steps"),
            target_loss: self.config.number("target_loss"),
            clock: self.clock_marks(a, b),
            resumes: Vec::new(),
            recent_losses: self.spikes.recent_losses(),
            // Kept beside the run's state (the run cache reads them): added by the caller.
            adaptive_lr: Default::default(),
            alerts: Vec::new(),
            smoothed: None,
            eval: Vec::new(),
            eval_components: Vec::new(),
        }
    }

    /// The clock over rows `a..b`.
    fn clock_marks(&self, a: usize, b: usize) -> Vec<ClockMark> {
        let steps = &self.columns.steps;
        match (steps.get(a), b.checked_sub(1).and_then(|l| steps.get(l))) {
            (Some(&first), Some(&last)) if b > a => self.clock.marks(first, last, CLOCK_MARKS),
            _ => Vec::new(),
        }
    }

    /// The clock over steps `range` (the whole run when `None`), for the routing charts.
    pub fn clock(&self, range: Option<(i64, i64)>) -> Vec<ClockMark> {
        let (a, b) = self.span(range);
        self.clock_marks(a, b)
    }

    /// Gives back the room left for growth (after a run's first read, which may be most
    /// of the run); the live feed's appends grow it again by an eighth at a time.
    pub fn shrink_to_fit(&mut self) {
        let c = &mut self.columns;
        c.steps.shrink_to_fit();
        for v in [&mut c.loss, &mut c.lr, &mut c.grad, &mut c.grad_pre_clip]
            .into_iter()
            .chain(c.ema.iter_mut())
        {
            v.shrink_to_fit();
        }
        self.pyramids.iter_mut().for_each(Pyramid::shrink_to_fit);
    }

    /// Memory held, for the cache's budget.
    pub fn heap_bytes(&self) -> usize {
        let c = &self.columns;
        let f = |v: &Vec<f64>| v.capacity() * 8;
        c.steps.capacity() * 8
            + f(&c.loss)
            + c.ema.iter().map(f).sum::<usize>()
            + f(&c.lr)
            + f(&c.grad)
            + f(&c.grad_pre_clip)
            + self.pyramids.iter().map(Pyramid::heap_bytes).sum::<usize>()
            + (self.spikes.events.capacity() + self.diverged.capacity()) * 16
            + self.clock.heap_bytes()
    }
}

/// The column of cached metric `k` (its place in [`CACHED_METRICS`]).
fn column(c: &RunColumns, k: usize) -> &[f64] {
    match CACHED_METRICS[k] {
        Metric::LossTotal => &c.loss,
        Metric::EmaShort => &c.ema[0],
        Metric::EmaMedium => &c.ema[1],
        Metric::EmaLong => &c.ema[2],
        Metric::Lr => &c.lr,
        Metric::GradNorm => &c.grad,
        _ => &c.grad_pre_clip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::oracle::prepare;

    fn step(n: i64) -> Step {
        let noise = ((n as f64) * 1.3).sin() * 0.03;
        let loss = match n {
            3_000 | 3_001 | 7_777 => 9.0 + n as f64 * 1e-4,
            5_000 => f64::NAN,
            6_000 => f64::INFINITY,
            _ => 3.0 - n as f64 * 1e-4 + noise,
        };
        Step {
            step: n * 10,
            loss_total: (!loss.is_nan()).then_some(loss),
            lr: Some(1e-4),
            grad_norm: Some(1.0),
            grad_norm_pre_clip: Some(if n % 10 == 0 { 2.0 } else { 0.5 }),
            ema_short: Some(0.0),
            ema_medium: Some(0.0),
            ema_long: Some(0.0),
            timestamp: Some(format!("2026-01-09T10:{:02}:{:02}", n / 60 % 60, n % 60)),
            ..Default::default()
        }
    }

    #[test]
    fn the_smoothed_loss_is_the_full_runs_curve_at_the_charts_steps_at_every_zoom() {
        let mut state = RunState::new(RunConfig::Missing);
        let rows: Vec<Step> = (0..10_000).map(step).collect();
        rows.iter().for_each(|s| {
            state.push(s);
        });
        state.index();
        let losses: Vec<f64> = rows
            .iter()
            .map(|s| s.loss_total.unwrap_or(f64::NAN))
            .collect();
        let full = crate::analysis::smoothing::smooth(&losses, 0.9);
        let charts = state.charts(None, 300);
        let wide = state.smoothed_loss(None, 300, 0.9);
        let zoom = state.smoothed_loss(Some((60_000, 61_000)), 300, 0.9);
        // The steps the loss line has; NaN and Inf steps are gaps in both.
        let finite = |p: &Points| p.iter().map(|(s, _)| *s).collect::<Vec<_>>();
        assert_eq!(finite(&wide), finite(&charts.loss));
        // Every step of a narrow zoom but the Inf loss at 60,000.
        assert_eq!(zoom.len(), 100);
        for (step, v) in wide.iter().chain(&zoom) {
            assert_eq!(*v, full[(*step / 10) as usize], "step {step}");
        }
        assert_ne!(wide, charts.loss, "smoothed, not the data");
    }

    #[test]
    fn the_state_draws_what_a_full_pass_draws() {
        let config = RunConfig::parse(Some(r#"{"grad_clip": 1.0, "warmup_steps": 100}"#));
        let mut state = RunState::new(config.clone());
        let mut columns = RunColumns::default();
        for n in 0..10_000 {
            let s = step(n);
            columns.push(&s);
            assert_eq!(state.push(&s), Pushed::Appended);
            if n % 777 == 0 {
                state.index();
            }
        }
        state.index();
        let full = prepare(&columns, &config, 600);
        let cached = state.charts(None, 600);
        assert_eq!(cached.loss, full.loss);
        assert_eq!(cached.ema, full.ema, "the EMAs the trainer did not record");
        assert!(cached.ema_computed);
        assert_eq!(cached.spikes, full.spikes);
        assert_eq!(cached.spikes.len(), 2, "3000–3001 is one event");
        assert_eq!(cached.diverged, full.diverged);
        assert_eq!(cached.lr, full.lr);
        assert_eq!(cached.grad_pre_clip, full.grad_pre_clip);
        assert_eq!(cached.clipped_share, full.clipped_share);
        assert_eq!(cached.recent_losses, full.recent_losses);

        // A zoom: the run's spikes inside it, its points at full detail.
        let zoom = state.charts(Some((29_000, 31_000)), 600);
        assert_eq!(zoom.spikes, vec![(30_010, 9.3001)], "the event's peak");
        assert_eq!(
            zoom.loss.len(),
            201,
            "every step of a range narrower than the width"
        );
    }

    /// Issue 14: a run read from its log has the loader's EMAs at its records only; drawn
    /// as they are they would jump between ours and the loader's at every record.
    #[test]
    fn a_run_read_from_its_log_draws_its_own_emas_over_every_step() {
        let mut state = RunState::new(RunConfig::Missing).drawing_own_emas();
        let mut losses = Vec::new();
        for n in 0..1_000 {
            let mut s = step(n);
            s.loss_total = Some(3.0 - n as f64 * 1e-3);
            let record = n % 4 == 3;
            s.ema_short = record.then_some(9.0);
            s.ema_medium = record.then_some(9.0);
            s.ema_long = record.then_some(9.0);
            losses.push(s.loss_total.unwrap());
            state.push(&s);
        }
        state.index();
        let charts = state.charts(None, 10_000);
        assert!(charts.ema_computed, "the legend says computed");
        assert_eq!(charts.ema_computed_from, None);
        let ours = crate::analysis::loss::ema(&losses, EMA_ALPHAS[0]);
        let drawn: Vec<f64> = charts.ema[0].iter().map(|p| p.1).collect();
        assert_eq!(drawn, ours, "not the records' 9.0");
    }

    /// Issue 13: the trainer's loader stores NULL for every EMA after a NaN loss; the EMAs
    /// continue from the trainer's last value, skipping the NaN, and the legend says where.
    #[test]
    fn emas_poisoned_by_a_nan_loss_are_continued_from_the_trainers_last() {
        let config = RunConfig::parse(None);
        let mut state = RunState::new(config.clone());
        let mut columns = RunColumns::default();
        let mut ema = 3.0;
        for n in 0..2_000 {
            let mut s = step(n);
            s.loss_total = Some(3.0 - n as f64 * 1e-4);
            if n == 1_000 {
                s.loss_total = None;
            }
            let recorded = n < 1_000;
            if recorded {
                ema = 0.99 * ema + 0.01 * s.loss_total.unwrap();
            }
            s.ema_short = recorded.then_some(ema);
            s.ema_medium = recorded.then_some(ema + 0.1);
            s.ema_long = recorded.then_some(ema + 0.2);
            columns.push(&s);
            state.push(&s);
        }
        state.index();
        let charts = state.charts(None, 10_000);
        assert!(!charts.ema_computed);
        assert_eq!(charts.ema_computed_from, Some(10_000));
        let short = &charts.ema[0];
        assert_eq!(short.len(), 2_000, "no gap where the file holds NULL");
        let before = short[999].1;
        let after = short[1_000].1;
        assert_eq!(after, before, "the NaN step leaves the EMA where it was");
        assert!((short[1_001].1 - (0.99 * before + 0.01 * (3.0 - 0.1001))).abs() < 1e-12);
        let full = prepare(&columns, &config, 10_000);
        assert_eq!(charts.ema, full.ema);
        assert_eq!(charts.ema_computed_from, full.ema_computed_from);
    }

    #[test]
    fn a_row_read_twice_is_ignored_and_a_changed_one_asks_for_a_rebuild() {
        let mut state = RunState::new(RunConfig::Missing);
        for n in 0..100 {
            state.push(&step(n));
        }
        assert_eq!(state.push(&step(50)), Pushed::Same);
        let mut changed = step(50);
        changed.loss_total = Some(1.0);
        assert_eq!(state.push(&changed), Pushed::Rewritten);
        let mut between = step(50);
        between.step = 505;
        assert_eq!(state.push(&between), Pushed::Rewritten);
        assert_eq!(state.len(), 100);
    }

    #[test]
    fn slim_rows_carry_the_values_and_their_divergence_markers() {
        let mut state = RunState::new(RunConfig::Missing);
        for n in 4_999..=5_000 {
            state.push(&step(n));
        }
        state.index();
        let nan = state.row(1, &[0, 4]);
        assert_eq!(nan.loss_total, None);
        assert_eq!(nan.nonfinite.get("loss_total"), Some(&NonFinite::Nan));
        assert_eq!(state.row(0, &[4]).lr, Some(1e-4));
        assert!(
            state.row(1, &[4]).nonfinite.is_empty(),
            "no loss asked, no loss marker"
        );
        let (keep, downsampled) = state.downsample(None, 10, &[0]);
        assert_eq!((keep, downsampled), (vec![0, 1], false));
    }
}
