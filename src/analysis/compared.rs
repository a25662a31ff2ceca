//! A run as the compare view holds it: only the metrics a comparison asked for, each a
//! full-resolution column with its min/max pyramid, so twenty long runs fit where the run
//! cache holds two or three (a run cache entry keeps seven metrics, EMAs and the routing).
//! Extended with the rows that arrive, like the run cache. Given a [`Spiller`], a long
//! column keeps only its pyramid in memory and its values in the spill (`analysis::spill`).
//!
//! Each series is downsampled exactly as `/api/metrics?max_points` downsamples it, and the
//! smoothed series is smoothed over every step and then downsampled, so it is the same line
//! at every zoom.

use super::clock::ClockBuilder;
use super::loss::SpikeEvents;
use super::push_lean;
use super::run_state::Pushed;
use super::series::{m4_range, Pyramid, Window};
use super::smoothing::Smoother;
use super::spill::{Spiller, Values, SPILL_AT};
use super::summary::SummaryBuilder;
use crate::model::{
    ClockMark, CompareX, ComparedSeries, Metric, NonFinite, Points, RunConfig, Step,
};

/// Clock marks sent per run: enough to map steps to tokens or time along a chart.
const CLOCK_MARKS: usize = 300;
/// Values between two kept states of a smoothed column.
const SMOOTHED_EVERY: usize = 64;

thread_local! {
    /// Where a query reads a spilled window back to, kept for the thread's next query: a
    /// new buffer's pages are zeroed and faulted in again each time (8 MB a 1M-step run).
    static SCRATCH: std::cell::Cell<Vec<f64>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Values (16 MB) a thread keeps for its next query at most: a longer window is let go.
const SCRATCH_KEPT: usize = 2 << 20;

/// One metric, every step.
#[derive(Debug)]
struct Column {
    metric: Metric,
    values: Values,
    pyramid: Pyramid,
    /// The smoothed column for the weight asked last.
    smoothed: Option<Smoothed>,
}

/// A smoothed column, as the smoother's state every [`SMOOTHED_EVERY`] values: a value is
/// made again from the state before it, at most 63 steps of the average away. It is shown
/// at the steps the data's M4 keeps (four or five a pixel), where a curve this smooth
/// cannot hide anything between them; the same steps at the same zoom, the same values at
/// every zoom.
#[derive(Clone, Debug)]
struct Smoothed {
    weight: f64,
    /// The state after every value taken in.
    smoother: Smoother,
    /// `states[k]`: the state before value `k · SMOOTHED_EVERY`.
    states: Vec<Smoother>,
    len: usize,
}

pub struct ComparedColumns {
    steps: Vec<i64>,
    columns: Vec<Column>,
    spikes: SpikeEvents,
    clock: ClockBuilder,
    summary: SummaryBuilder,
    spiller: Option<Spiller>,
}

/// A held run as kept between servers (`server::kept`): all of it but the values, which
/// are written out a column at a time, and the smoothed columns, made again when asked.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Frozen {
    steps: Vec<i64>,
    columns: Vec<FrozenColumn>,
    spikes: SpikeEvents,
    clock: ClockBuilder,
    summary: SummaryBuilder,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct FrozenColumn {
    /// The metric's API name: the enum's order may change between versions, its names not.
    metric: String,
    /// Values before this index were in the spill, the rest in memory.
    spilled: usize,
    pyramid: Pyramid,
}

impl Frozen {
    pub fn steps(&self) -> &[i64] {
        &self.steps
    }

    /// The metrics kept, in column order; `None` when a name is not a metric.
    pub fn metrics(&self) -> Option<Vec<Metric>> {
        self.columns
            .iter()
            .map(|c| Metric::parse(&c.metric))
            .collect()
    }

    /// Where each column's values were in memory from (see [`Values::resumed`]).
    pub fn spilled(&self) -> Vec<usize> {
        self.columns.iter().map(|c| c.spilled).collect()
    }
}

impl ComparedColumns {
    pub fn new(config: &RunConfig, metrics: &[Metric]) -> Self {
        let mut held: Vec<Metric> = Vec::new();
        for m in metrics {
            if !held.contains(m) {
                held.push(*m);
            }
        }
        Self {
            steps: Vec::new(),
            columns: held
                .into_iter()
                .map(|metric| Column {
                    metric,
                    values: Values::default(),
                    pyramid: Pyramid::default(),
                    smoothed: None,
                })
                .collect(),
            spikes: SpikeEvents::default(),
            clock: ClockBuilder::default(),
            summary: SummaryBuilder::new(config),
            spiller: None,
        }
    }

    /// Everything but the values, for keeping on disk.
    pub fn freeze(&self) -> Frozen {
        Frozen {
            steps: self.steps.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| FrozenColumn {
                    metric: c.metric.name().to_string(),
                    spilled: c.values.spilled(),
                    pyramid: c.pyramid.clone(),
                })
                .collect(),
            spikes: self.spikes.clone(),
            clock: self.clock.clone(),
            summary: self.summary.clone(),
        }
    }

    /// The values of `metric`'s column, when held.
    pub fn values(&self, metric: Metric) -> Option<&Values> {
        self.columns
            .iter()
            .find(|c| c.metric == metric)
            .map(|c| &c.values)
    }

    /// The run made again from what [`freeze`](Self::freeze) kept and each column's
    /// values, in the frozen column order; `None` when they do not fit together (a file
    /// from another version, or damaged), so that no query can index past what is held.
    pub fn thaw(frozen: Frozen, values: Vec<Values>) -> Option<Self> {
        let n = frozen.steps.len();
        let metrics = frozen.metrics()?;
        let fits = values.len() == frozen.columns.len()
            && frozen.steps.windows(2).all(|w| w[0] < w[1])
            && frozen
                .columns
                .iter()
                .zip(&values)
                .all(|(c, v)| v.len() == n && c.pyramid.fits(n) && v.spilled() == c.spilled)
            && frozen
                .spikes
                .events
                .iter()
                .all(|(s, _)| frozen.steps.binary_search(s).is_ok());
        fits.then(|| Self {
            steps: frozen.steps,
            columns: frozen
                .columns
                .into_iter()
                .zip(metrics)
                .zip(values)
                .map(|((c, metric), values)| Column {
                    metric,
                    values,
                    pyramid: c.pyramid,
                    smoothed: None,
                })
                .collect(),
            spikes: frozen.spikes,
            clock: frozen.clock,
            summary: frozen.summary,
            spiller: None,
        })
    }

    /// Long columns keep their values in spills from `spiller`, not in memory.
    pub fn spilling_to(mut self, spiller: Spiller) -> Self {
        self.spiller = Some(spiller);
        self
    }

    /// The metrics held.
    pub fn metrics(&self) -> Vec<Metric> {
        self.columns.iter().map(|c| c.metric).collect()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Every step held, ascending.
    pub fn steps(&self) -> &[i64] {
        &self.steps
    }

    pub fn first_step(&self) -> Option<i64> {
        self.steps.first().copied()
    }

    pub fn last_step(&self) -> Option<i64> {
        self.steps.last().copied()
    }

    /// Takes in the next row; call [`index`](Self::index) after a batch of them.
    pub fn push(&mut self, s: &Step) -> Pushed {
        if let Some(last) = self.last_step() {
            if s.step <= last {
                let at = self.steps.partition_point(|x| *x < s.step);
                // A value that cannot be read back counts as changed: the run is read again.
                let same = self.steps.get(at) == Some(&s.step)
                    && self.columns.iter().all(|c| {
                        let b = c.metric.of(s).unwrap_or(f64::NAN);
                        c.values
                            .get(at)
                            .is_ok_and(|a| a == b || (a.is_nan() && b.is_nan()))
                    });
                return if same {
                    Pushed::Same
                } else {
                    Pushed::Rewritten
                };
            }
        }
        let i = self.steps.len();
        push_lean(&mut self.steps, s.step);
        for c in &mut self.columns {
            c.values.push(c.metric.of(s).unwrap_or(f64::NAN));
        }
        if let Some(loss) = s.finite_loss() {
            self.spikes.push(i, s.step, loss);
        }
        self.summary.push(s);
        self.clock.push(ClockMark {
            step: s.step,
            time: self.summary.last_time(),
            tokens: self.summary.tokens_so_far(),
        });
        // A long read is taken in a spill's worth at a time, not held whole until it ends.
        if self.spiller.is_some() && (i + 1).is_multiple_of(SPILL_AT) {
            self.index();
        }
        Pushed::Appended
    }

    /// Brings the pyramids (and the smoothed columns) up to the rows pushed.
    pub fn index(&mut self) {
        for c in &mut self.columns {
            c.pyramid.extend_window(c.values.in_memory());
            if let Some(s) = &mut c.smoothed {
                s.extend(c.values.in_memory());
            }
            c.values.spill_some(self.spiller.as_ref());
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.steps.shrink_to_fit();
        for c in &mut self.columns {
            c.values.shrink_to_fit();
            c.pyramid.shrink_to_fit();
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.steps.capacity() * 8
            + self
                .columns
                .iter()
                .map(|c| {
                    c.values.heap_bytes()
                        + c.pyramid.heap_bytes()
                        + c.smoothed.as_ref().map_or(0, Smoothed::heap_bytes)
                })
                .sum::<usize>()
            + self.clock.heap_bytes()
            + self.spikes.events.capacity() * 16
    }

    /// Indices `a..b` of the steps in `lo..=hi`.
    fn span(&self, (lo, hi): (i64, i64)) -> (usize, usize) {
        (
            self.steps.partition_point(|s| *s < lo),
            self.steps.partition_point(|s| *s <= hi),
        )
    }

    /// `metric` over steps `range`, M4-downsampled to `max_points` buckets; with the series
    /// smoothed by `smoothing` when asked. `None` when the metric is not held; an error when
    /// spilled values cannot be read back.
    pub fn series(
        &mut self,
        metric: Metric,
        range: (i64, i64),
        max_points: usize,
        smoothing: Option<f64>,
    ) -> std::io::Result<Option<ComparedSeries>> {
        let mut scratch = SCRATCH.take();
        let series = self.series_in(metric, range, max_points, smoothing, &mut scratch);
        if scratch.capacity() <= SCRATCH_KEPT {
            SCRATCH.set(scratch);
        }
        series
    }

    fn series_in(
        &mut self,
        metric: Metric,
        range: (i64, i64),
        max_points: usize,
        smoothing: Option<f64>,
        scratch: &mut Vec<f64>,
    ) -> std::io::Result<Option<ComparedSeries>> {
        let (a, b) = self.span(range);
        let steps = &self.steps;
        let Some(column) = self.columns.iter_mut().find(|c| c.metric == metric) else {
            return Ok(None);
        };
        // From the smoothed column's kept state before `a`, when it is asked for.
        let from = match smoothing {
            Some(_) => a / SMOOTHED_EVERY * SMOOTHED_EVERY,
            None => a,
        };
        let values = column.values.window(from, b, scratch)?;
        if let Some(weight) = smoothing {
            smooth_with(&mut column.smoothed, &column.values, weight, values)?;
        }
        let downsampled = b.saturating_sub(a) > max_points;
        let kept = if downsampled {
            m4_range(steps, values, &column.pyramid, a, b, max_points)
        } else {
            (a..b.max(a)).collect()
        };
        let mut points = Points::new();
        let mut nonfinite = Vec::new();
        for &i in &kept {
            let v = values.get(i);
            match NonFinite::of(v) {
                None => points.push((steps[i], v)),
                // A NULL loss is a NaN loss; another NULL column is just unrecorded.
                Some(NonFinite::Nan) if metric != Metric::LossTotal => {}
                Some(kind) => nonfinite.push((steps[i], kind)),
            }
        }
        let smoothed = column
            .smoothed
            .as_ref()
            .filter(|_| smoothing.is_some())
            .map(|s| {
                kept.iter()
                    .zip(s.at(&values, &kept))
                    .filter(|(_, v)| v.is_finite())
                    .map(|(&i, v)| (steps[i], v))
                    .collect()
            });
        Ok(Some(ComparedSeries {
            metric: metric.name().to_string(),
            downsampled,
            points,
            nonfinite,
            smoothed,
        }))
    }

    /// The loss spikes within steps `range`, at their peaks.
    pub fn spikes(&self, (lo, hi): (i64, i64)) -> Points {
        self.spikes
            .events
            .iter()
            .copied()
            .filter(|(s, _)| (lo..=hi).contains(s))
            .collect()
    }

    /// The run's clock, sampled.
    pub fn clock(&self) -> Vec<ClockMark> {
        match (self.first_step(), self.last_step()) {
            (Some(a), Some(b)) => self.clock.marks(a, b, CLOCK_MARKS),
            _ => Vec::new(),
        }
    }

    /// The steps whose `x` lies in `lo..=hi`; `None` when the run has no such axis (no
    /// times or token counts) or no step there.
    pub fn steps_within(&self, x: CompareX, lo: f64, hi: f64) -> Option<(i64, i64)> {
        if x == CompareX::Step {
            return Some((lo.ceil() as i64, hi.floor() as i64));
        }
        let get: fn(&ClockMark) -> Option<f64> = match x {
            CompareX::Tokens => |m| m.tokens,
            _ => |m| m.time,
        };
        let known: Vec<(i64, f64)> = self
            .clock()
            .iter()
            .filter_map(|m| Some((m.step, get(m)?)))
            .collect();
        // Time counts from the run's first timed step, as the charts place it (`x_of`).
        let origin = match x {
            CompareX::Time => known.first()?.1,
            _ => 0.0,
        };
        let (first, last) = (known.first()?, known.last()?);
        if hi < first.1 - origin || lo > last.1 - origin {
            return None; // the range misses the run
        }
        let step_at = |x: f64, up: bool| -> i64 {
            let x = x + origin;
            let i = known.partition_point(|(_, v)| *v < x);
            match (i.checked_sub(1).map(|j| known[j]), known.get(i)) {
                (Some((s0, v0)), Some(&(s1, v1))) if v1 > v0 => {
                    let at = s0 as f64 + (s1 as f64 - s0 as f64) * (x - v0) / (v1 - v0);
                    if up {
                        at.ceil() as i64
                    } else {
                        at.floor() as i64
                    }
                }
                (_, Some(&(s, _))) | (Some((s, _)), None) => s,
                (None, None) => first.0,
            }
        };
        // Steps between two marks are read as evenly spaced in x: rounded outwards, so a
        // step on the edge is never left out.
        let (a, b) = (step_at(lo, false), step_at(hi, true));
        (a <= b).then_some((a, b))
    }

    /// The first and last step held within `range`; `None` when none is.
    pub fn steps_in(&self, range: (i64, i64)) -> Option<(i64, i64)> {
        let (a, b) = self.span(range);
        (a < b).then(|| (self.steps[a], self.steps[b - 1]))
    }
}

/// Makes the smoothed column for `weight` over every value of `values`, when the weight
/// changed. `read`, values the caller already read, is used where it can be: a whole-run
/// view's window starts at the first value, so the column is read once, not twice.
fn smooth_with(
    smoothed: &mut Option<Smoothed>,
    values: &Values,
    weight: f64,
    read: Window,
) -> std::io::Result<()> {
    if smoothed.as_ref().is_some_and(|s| s.weight == weight) {
        return Ok(());
    }
    let mut s = Smoothed {
        weight,
        smoother: Smoother::new(weight),
        states: Vec::with_capacity(values.len() / SMOOTHED_EVERY + 1),
        len: 0,
    };
    let start = match read.offset {
        0 => {
            s.extend(read);
            s.len
        }
        _ => 0,
    };
    values.each_chunk_from(start, |w| s.extend(w))?;
    *smoothed = Some(s);
    Ok(())
}

impl Smoothed {
    /// Takes in the values from `self.len` on; `values` must hold them.
    fn extend(&mut self, values: Window) {
        for i in self.len.max(values.offset)..values.end() {
            if i.is_multiple_of(SMOOTHED_EVERY) {
                push_lean(&mut self.states, self.smoother);
            }
            self.smoother.push(values.get(i));
        }
        self.len = self.len.max(values.end());
    }

    /// The smoothed values at `kept` (ascending), from `values`, which must hold every
    /// index from the kept state before the first of them.
    fn at(&self, values: &Window, kept: &[usize]) -> Vec<f64> {
        let mut out = Vec::with_capacity(kept.len());
        let (mut smoother, mut next) = (self.smoother, usize::MAX);
        for &i in kept {
            let state = i / SMOOTHED_EVERY * SMOOTHED_EVERY;
            if next > i || next < state {
                smoother = self.states[i / SMOOTHED_EVERY];
                next = state;
            }
            let mut v = f64::NAN;
            while next <= i {
                v = smoother.push(values.get(next));
                next += 1;
            }
            out.push(v);
        }
        out
    }

    fn heap_bytes(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<Smoother>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::downsample::m4_indices;
    use crate::analysis::smoothing::smooth;
    use crate::analysis::spill::{MemorySpill, Spiller};

    fn run(n: i64) -> Vec<Step> {
        (1..=n)
            .map(|i| Step {
                step: i * 10,
                loss_total: Some(if i == 4000 {
                    f64::NAN
                } else if i == 7000 {
                    40.0
                } else {
                    5.0 / (1.0 + i as f64 / 1000.0) + ((i * 7919) % 97) as f64 / 300.0
                }),
                lr: (i % 3 != 0).then_some(1e-4),
                timestamp: Some(format!(
                    "2026-11-30T{:02}:{:02}:{:02}",
                    i / 3600,
                    i / 60 % 60,
                    i % 60
                )),
                ..Default::default()
            })
            .collect()
    }

    fn held(rows: &[Step]) -> ComparedColumns {
        held_in(rows, None)
    }

    fn held_in(rows: &[Step], spiller: Option<Spiller>) -> ComparedColumns {
        let mut c = ComparedColumns::new(&RunConfig::Missing, &[Metric::LossTotal, Metric::Lr]);
        if let Some(spiller) = spiller {
            c = c.spilling_to(spiller);
        }
        for s in rows {
            c.push(s);
        }
        c.index();
        c
    }

    #[test]
    fn a_series_is_downsampled_as_the_single_run_api_does_it() {
        let rows = run(10_000);
        let mut c = held(&rows);
        let steps: Vec<i64> = rows.iter().map(|s| s.step).collect();
        let loss: Vec<f64> = rows.iter().map(|s| s.loss_total.unwrap()).collect();
        let s = c
            .series(Metric::LossTotal, (i64::MIN, i64::MAX), 300, None)
            .unwrap()
            .unwrap();
        assert!(s.downsampled);
        let expected: Vec<(i64, f64)> = m4_indices(&steps, &loss, 300)
            .into_iter()
            .filter(|&i| loss[i].is_finite())
            .map(|i| (steps[i], loss[i]))
            .collect();
        assert_eq!(s.points, expected);
        assert_eq!(s.nonfinite, vec![(40_000, NonFinite::Nan)]);
        assert!(s.points.contains(&(70_000, 40.0)), "the spike survives");
        assert_eq!(c.spikes((0, i64::MAX)).first(), Some(&(70_000, 40.0)));
        // An unrecorded learning rate is no divergence.
        let lr = c.series(Metric::Lr, (0, 1000), 300, None).unwrap().unwrap();
        assert!(!lr.downsampled && lr.nonfinite.is_empty());
        assert_eq!(lr.points.len(), 67);
        assert!(c
            .series(Metric::GradNorm, (0, 10), 10, None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_smoothed_line_is_the_same_at_every_zoom() {
        let rows = run(10_000);
        let mut c = held(&rows);
        let loss: Vec<f64> = rows.iter().map(|s| s.loss_total.unwrap()).collect();
        let full = smooth(&loss, 0.9);
        let wide = c
            .series(Metric::LossTotal, (0, i64::MAX), 200, Some(0.9))
            .unwrap()
            .unwrap();
        let zoom = c
            .series(Metric::LossTotal, (50_000, 50_990), 200, Some(0.9))
            .unwrap()
            .unwrap();
        // Every point either answer has is the full-resolution smoothed value at its step.
        for (step, v) in wide
            .smoothed
            .unwrap()
            .iter()
            .chain(&zoom.smoothed.clone().unwrap())
        {
            assert_eq!(*v, full[(*step / 10 - 1) as usize], "step {step}");
        }
        // The zoom holds every step of its range: smoothing began at the run's start.
        assert_eq!(zoom.smoothed.unwrap().len(), 100);
        // A new weight asked first at a zoom, or over the run's first part (whose values
        // are read once for both), is the same line.
        for (range, weight) in [
            ((50_000, 50_990), 0.8),
            ((0, 40_000), 0.7),
            ((0, i64::MAX), 0.6),
        ] {
            let full = smooth(&loss, weight);
            let got = c
                .series(Metric::LossTotal, range, 200, Some(weight))
                .unwrap()
                .unwrap()
                .smoothed
                .unwrap();
            assert!(got.len() > 50, "{range:?}");
            for (step, v) in got {
                assert_eq!(v, full[(step / 10 - 1) as usize], "{range:?} step {step}");
            }
        }
    }

    #[test]
    fn a_held_run_grown_row_by_row_answers_as_one_read_at_once() {
        let rows = run(5_000);
        let whole = held(&rows)
            .series(Metric::LossTotal, (0, i64::MAX), 100, Some(0.6))
            .unwrap();
        let mut grown = held(&rows[..1234]);
        grown
            .series(Metric::LossTotal, (0, i64::MAX), 100, Some(0.6))
            .unwrap();
        for s in &rows[1000..] {
            grown.push(s);
        }
        grown.index();
        assert_eq!(
            grown
                .series(Metric::LossTotal, (0, i64::MAX), 100, Some(0.6))
                .unwrap(),
            whole
        );
        let mut changed = rows[10].clone();
        changed.loss_total = Some(1.0);
        assert_eq!(grown.push(&changed), Pushed::Rewritten);
        assert_eq!(grown.push(&rows[10]), Pushed::Same);
    }

    #[test]
    fn a_range_of_time_or_tokens_becomes_the_steps_within_it() {
        let rows = run(3_600);
        let c = held(&rows);
        // One row a second, from step 10: seconds 100..=200 are rows 101..=201.
        let (a, b) = c.steps_within(CompareX::Time, 100.0, 200.0).unwrap();
        assert!(
            (1000..=1010).contains(&a) && (2010..=2020).contains(&b),
            "{a}..{b}"
        );
        assert_eq!(c.steps_within(CompareX::Step, 5.5, 20.2), Some((6, 20)));
        assert_eq!(
            c.steps_within(CompareX::Tokens, 0.0, 1.0),
            None,
            "no token counts"
        );
    }

    /// Each column of `held` as the keeper takes it up again: every value in a spill, the
    /// ones that were in memory in memory again.
    fn taken_up(held: &ComparedColumns, frozen: &Frozen) -> Vec<Values> {
        let metrics = frozen.metrics().unwrap();
        metrics
            .iter()
            .zip(frozen.spilled())
            .map(|(m, at)| {
                let mut all = Vec::new();
                let values = held.values(*m).unwrap();
                values
                    .each_chunk(|w| all.extend_from_slice(w.values))
                    .unwrap();
                let tail = all[at..].to_vec();
                Values::resumed(Box::new(MemorySpill(all)), at, tail)
            })
            .collect()
    }

    #[test]
    fn a_frozen_run_thaws_into_one_that_answers_and_grows_alike() {
        let rows = run(3 * SPILL_AT as i64 + 999);
        let more: Vec<Step> = run(3 * SPILL_AT as i64 + 70_000)[rows.len()..].to_vec();
        let mut held = held_in(&rows, Some(crate::analysis::spill::in_memory()));
        let frozen = held.freeze();
        let values = taken_up(&held, &frozen);
        let mut thawed = ComparedColumns::thaw(frozen, values).expect("fits");
        thawed = thawed.spilling_to(crate::analysis::spill::in_memory());
        for round in 0..2 {
            for (range, points, smoothing) in [
                ((i64::MIN, i64::MAX), 2000, None),
                ((i64::MIN, i64::MAX), 700, Some(0.9)),
                ((12_345, 500_000), 300, Some(0.99)),
            ] {
                for m in [Metric::LossTotal, Metric::Lr] {
                    assert_eq!(
                        thawed.series(m, range, points, smoothing).unwrap(),
                        held.series(m, range, points, smoothing).unwrap(),
                        "round {round}: {m:?} {range:?} {points} {smoothing:?}"
                    );
                }
            }
            assert_eq!(thawed.spikes((0, i64::MAX)), held.spikes((0, i64::MAX)));
            assert_eq!(thawed.clock(), held.clock());
            // Rows that arrive later (past another spill's worth) extend both alike.
            for c in [&mut held, &mut thawed].into_iter().filter(|_| round == 0) {
                for s in &more {
                    assert_eq!(c.push(s), Pushed::Appended);
                }
                c.index();
            }
        }
        assert_eq!(thawed.push(&rows[10]), Pushed::Same);
    }

    #[test]
    fn a_frozen_run_that_does_not_fit_its_values_is_refused() {
        let rows = run(2_000);
        let held = held(&rows);
        let frozen = held.freeze();
        let mut values = taken_up(&held, &frozen);
        values[1] = Values::resumed(Box::new(MemorySpill(vec![1.0; 64])), 64, vec![2.0]);
        assert!(
            ComparedColumns::thaw(frozen, values).is_none(),
            "a short column"
        );
        let frozen = held.freeze();
        assert!(
            ComparedColumns::thaw(frozen, Vec::new()).is_none(),
            "no columns"
        );
        let mut frozen = held.freeze();
        frozen.steps.swap(3, 4);
        let values = taken_up(&held, &frozen);
        assert!(
            ComparedColumns::thaw(frozen, values).is_none(),
            "steps out of order"
        );
        let mut frozen = held.freeze();
        frozen.columns[0].metric = "loss_of_what".into();
        let values = taken_up(&held, &held.freeze());
        assert!(
            ComparedColumns::thaw(frozen, values).is_none(),
            "an unknown metric"
        );
    }

    #[test]
    fn a_spilled_run_answers_as_one_held_in_memory() {
        let rows = run(3 * SPILL_AT as i64 + 999);
        let mut memory = held(&rows);
        let mut spilled = held_in(&rows, Some(crate::analysis::spill::in_memory()));
        memory.shrink_to_fit();
        spilled.shrink_to_fit();
        // Both columns' values, but for the last ones, are out of memory.
        let out = memory.heap_bytes() - spilled.heap_bytes();
        assert!(out >= 2 * 3 * SPILL_AT * 8, "{out} bytes");
        let last = rows.last().unwrap().step;
        for (range, points, smoothing) in [
            ((i64::MIN, i64::MAX), 2000, None),
            ((i64::MIN, i64::MAX), 2000, Some(0.6)),
            ((12_345, 500_000), 300, Some(0.99)),
            ((last - 5_000, last), 2000, Some(0.99)),
            ((640, 1_290), 2000, Some(0.6)),
            // A new weight over the run's first part: the rest is read from where it ends.
            ((0, 100_000), 2000, Some(0.3)),
            ((i64::MIN, i64::MAX), 2000, Some(0.3)),
        ] {
            for m in [Metric::LossTotal, Metric::Lr] {
                assert_eq!(
                    spilled.series(m, range, points, smoothing).unwrap(),
                    memory.series(m, range, points, smoothing).unwrap(),
                    "{m:?} {range:?} {points} {smoothing:?}"
                );
            }
        }
        // Rows arriving after a smoothing weight was asked extend both alike.
        let more: Vec<Step> = run(3 * SPILL_AT as i64 + 1_999)[rows.len()..].to_vec();
        for c in [&mut memory, &mut spilled] {
            for s in &more {
                c.push(s);
            }
            c.index();
        }
        assert_eq!(
            spilled
                .series(Metric::LossTotal, (0, i64::MAX), 500, Some(0.99))
                .unwrap(),
            memory
                .series(Metric::LossTotal, (0, i64::MAX), 500, Some(0.99))
                .unwrap()
        );
        // An early step rewritten is told from one sent again, from the spill too.
        assert_eq!(spilled.push(&rows[10]), Pushed::Same);
        let mut changed = rows[10].clone();
        changed.loss_total = Some(1.0);
        assert_eq!(spilled.push(&changed), Pushed::Rewritten);
    }
}
