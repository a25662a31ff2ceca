//! The detectors, one per kind of trouble. Each is fed one stream of a run (losses, norms,
//! tokens/s, step times, evals, router records) in step order and says when trouble starts
//! and when it clears; [`super::RunWatch`] turns that into alerts.

use super::super::format::{duration, metric, thousands};
use super::super::loss::SpikeWindow;
use super::super::routing::{mod_zone, ModZone};
use super::Rules;
use crate::model::{AlertKind, CollapseDetector, RoutingMod, RoutingMor};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a detector saw.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// Trouble began at `step`.
    Raise {
        kind: AlertKind,
        step: i64,
        value: Option<f64>,
        detail: String,
    },
    /// It cleared at `step`.
    Clear {
        kind: AlertKind,
        step: i64,
        detail: String,
    },
}

/// A spike in a stream (the loss, the gradient norm): the charts' detector (a value more
/// than `spike_sigmas` robust σ above the median of the last 128, σ = 1.4826 × MAD), raised
/// at the first flagged value. It clears when the value is back under the band it broke —
/// the band as it was then, so a loss that settles at a new, higher level is not called
/// recovered because the window got used to it.
#[derive(Clone, Debug)]
pub struct SpikeDetector {
    kind: AlertKind,
    /// "loss", "gradient norm".
    what: &'static str,
    window: SpikeWindow,
    recovery_steps: i64,
    /// The step it rose at and the band it broke.
    open: Option<(i64, f64)>,
}

impl SpikeDetector {
    pub fn new(kind: AlertKind, what: &'static str, rules: &Rules) -> Self {
        Self {
            kind,
            what,
            window: SpikeWindow::with_sigmas(rules.spike_sigmas),
            recovery_steps: rules.spike_recovery_steps,
            open: None,
        }
    }

    pub fn push(&mut self, step: i64, x: f64) -> Option<Signal> {
        if !x.is_finite() {
            return None;
        }
        if let Some((since, band)) = self.open {
            self.window.judge(x);
            if x > band {
                return None;
            }
            self.open = None;
            let after = step - since;
            let late = if after > self.recovery_steps {
                format!(", later than {} steps", thousands(self.recovery_steps))
            } else {
                String::new()
            };
            return Some(Signal::Clear {
                kind: self.kind,
                step,
                detail: format!(
                    "{} {} back under {} after {} steps{late}",
                    self.what,
                    metric(Some(x)),
                    metric(Some(band)),
                    thousands(after)
                ),
            });
        }
        let band = self.window.band();
        if !self.window.judge(x) {
            return None;
        }
        let (median, band) = band?;
        self.open = Some((step, band));
        Some(Signal::Raise {
            kind: self.kind,
            step,
            value: Some(x),
            detail: format!(
                "{} {}, above {} (median {} of the last 128 + {}σ)",
                self.what,
                metric(Some(x)),
                metric(Some(band)),
                metric(Some(median)),
                metric(Some(self.window_sigmas()))
            ),
        })
    }

    fn window_sigmas(&self) -> f64 {
        self.window.sigmas()
    }
}

/// A non-finite loss or gradient norm; clears at the next step where both are finite.
#[derive(Clone, Debug, Default)]
pub struct NanDetector {
    open: Option<i64>,
}

impl NanDetector {
    /// `loss` as read (`None`: the database's NULL, which the trainer writes for a NaN loss);
    /// `grad` `None` when not recorded.
    pub fn push(&mut self, step: i64, loss: Option<f64>, grad: Option<f64>) -> Option<Signal> {
        let loss = loss.unwrap_or(f64::NAN);
        let bad = match (loss.is_finite(), grad.filter(|g| !g.is_finite())) {
            (false, _) => Some(format!("loss {}", metric(Some(loss)))),
            (true, Some(g)) => Some(format!("gradient norm {}", metric(Some(g)))),
            (true, None) => None,
        };
        match (bad, self.open) {
            (Some(what), None) => {
                self.open = Some(step);
                Some(Signal::Raise {
                    kind: AlertKind::Nan,
                    step,
                    value: None,
                    detail: what,
                })
            }
            (None, Some(since)) => {
                self.open = None;
                Some(Signal::Clear {
                    kind: AlertKind::Nan,
                    step,
                    detail: format!(
                        "finite again after {} steps (loss {})",
                        thousands(step - since),
                        metric(Some(loss))
                    ),
                })
            }
            _ => None,
        }
    }
}

/// Throughput well below its usual level: tokens/s at least `drop` below the median of the
/// last 64 ordinary logged steps, `drop_steps` logged steps in a row. Raised at the first of
/// them; clears when tokens/s is back above the line it fell under.
#[derive(Clone, Debug)]
pub struct DropDetector {
    drop: f64,
    steps: usize,
    usual: VecDeque<f64>,
    /// The current run of low values: `(step, tokens/s)`.
    low: Vec<(i64, f64)>,
    /// The step it rose at and the line it fell under.
    open: Option<(i64, f64)>,
}

/// Ordinary logged steps the throughput median is taken over…
const USUAL_WINDOW: usize = 64;
/// …and how many it needs first (the first steps are slow while kernels compile).
const USUAL_MIN: usize = 16;

impl DropDetector {
    pub fn new(rules: &Rules) -> Self {
        Self {
            drop: rules.throughput_drop,
            steps: rules.throughput_steps.max(1),
            usual: VecDeque::new(),
            low: Vec::new(),
            open: None,
        }
    }

    pub fn push(&mut self, step: i64, x: f64) -> Option<Signal> {
        if !x.is_finite() || x <= 0.0 {
            return None; // not measured at this step
        }
        if let Some((since, line)) = self.open {
            if x < line {
                return None;
            }
            self.open = None;
            self.take_in(x);
            return Some(Signal::Clear {
                kind: AlertKind::ThroughputDrop,
                step,
                detail: format!(
                    "{} tokens/s after {} steps",
                    metric(Some(x)),
                    thousands(step - since)
                ),
            });
        }
        let Some(median) = self.median() else {
            self.take_in(x);
            return None;
        };
        let line = (1.0 - self.drop) * median;
        if x >= line {
            // A dip too short to count is ordinary.
            for (_, v) in std::mem::take(&mut self.low) {
                self.take_in(v);
            }
            self.take_in(x);
            return None;
        }
        self.low.push((step, x));
        if self.low.len() < self.steps {
            return None;
        }
        let (first, value) = self.low[0];
        self.low.clear();
        self.open = Some((first, line));
        Some(Signal::Raise {
            kind: AlertKind::ThroughputDrop,
            step: first,
            value: Some(value),
            detail: format!(
                "{} tokens/s, {:.0}% below the median {} for {} logged steps",
                metric(Some(value)),
                100.0 * (1.0 - value / median),
                metric(Some(median)),
                self.steps
            ),
        })
    }

    fn take_in(&mut self, x: f64) {
        self.usual.push_back(x);
        if self.usual.len() > USUAL_WINDOW {
            self.usual.pop_front();
        }
    }

    fn median(&self) -> Option<f64> {
        if self.usual.len() < USUAL_MIN {
            return None;
        }
        let mut v: Vec<f64> = self.usual.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    }
}

/// A stall: no new step for more than max(`stall_floor`, `stall_intervals` × the run's
/// median interval between logged steps). Seen in history as a gap between two steps
/// (raised at the step before it, cleared at the step after); seen live when the run's
/// state is judged stalled ([`Self::quiet`]), cleared when steps come again.
#[derive(Clone, Debug)]
pub struct StallDetector {
    floor: f64,
    intervals: f64,
    /// The newest step and its time in seconds.
    last: Option<(i64, f64)>,
    gaps: VecDeque<f64>,
    open: Option<i64>,
}

/// Intervals the usual one is the median of.
const GAPS: usize = 32;

impl StallDetector {
    pub fn new(rules: &Rules) -> Self {
        Self {
            floor: rules.stall_floor_seconds,
            intervals: rules.stall_intervals,
            last: None,
            gaps: VecDeque::new(),
            open: None,
        }
    }

    /// How long the run may be quiet before it has stalled, in seconds.
    pub fn patience(&self) -> f64 {
        let mut g: Vec<f64> = self.gaps.iter().copied().collect();
        g.sort_by(f64::total_cmp);
        g.get(g.len() / 2)
            .map_or(self.floor, |usual| (self.intervals * usual).max(self.floor))
    }

    /// A step logged at `time` (seconds; `None` when its time is unknown).
    pub fn push(&mut self, step: i64, time: Option<f64>, out: &mut Vec<Signal>) {
        if let Some(since) = self.open.take() {
            out.push(Signal::Clear {
                kind: AlertKind::Stalled,
                step,
                detail: format!("steps again after {} quiet", self.quiet_since(since, time)),
            });
        } else if let (Some((before, t0)), Some(t)) = (self.last, time) {
            let gap = t - t0;
            if gap > self.patience() {
                out.push(Signal::Raise {
                    kind: AlertKind::Stalled,
                    step: before,
                    value: Some(gap),
                    detail: format!(
                        "no new step for {} (it usually logs every {})",
                        duration(gap),
                        self.usual()
                    ),
                });
                out.push(Signal::Clear {
                    kind: AlertKind::Stalled,
                    step,
                    detail: format!("steps again after {} quiet", duration(gap)),
                });
            } else if gap > 0.0 {
                self.gaps.push_back(gap);
                if self.gaps.len() > GAPS {
                    self.gaps.pop_front();
                }
            }
        }
        if let Some(t) = time {
            self.last = Some((step, t));
        }
    }

    /// Whether the run has been quiet at `now` for longer than its patience.
    pub fn overdue(&self, now: f64) -> bool {
        self.last.is_some_and(|(_, t)| now - t > self.patience())
    }

    /// The run was judged stalled at `now` (seconds, on its steps' clock).
    pub fn quiet(&mut self, now: f64) -> Option<Signal> {
        let (step, t) = self.last?;
        if self.open.is_some() {
            return None;
        }
        self.open = Some(step);
        Some(Signal::Raise {
            kind: AlertKind::Stalled,
            step,
            value: Some(now - t),
            detail: format!(
                "no new step for {} (it usually logs every {})",
                duration(now - t),
                self.usual()
            ),
        })
    }

    fn usual(&self) -> String {
        let mut g: Vec<f64> = self.gaps.iter().copied().collect();
        g.sort_by(f64::total_cmp);
        g.get(g.len() / 2)
            .map_or_else(|| "—".into(), |u| format!("{u:.1}s"))
    }

    fn quiet_since(&self, _since: i64, time: Option<f64>) -> String {
        match (self.last, time) {
            (Some((_, t0)), Some(t)) => duration(t - t0),
            _ => "a while".into(),
        }
    }
}

/// Eval loss up `rises` evals in a row; clears at the next eval that is lower.
#[derive(Clone, Debug)]
pub struct EvalDetector {
    rises: usize,
    /// The evals of the current climb, `(step, loss)`, its start first.
    climb: Vec<(i64, f64)>,
    open: bool,
}

impl EvalDetector {
    pub fn new(rules: &Rules) -> Self {
        Self {
            rises: rules.eval_rises.max(1),
            climb: Vec::new(),
            open: false,
        }
    }

    pub fn push(&mut self, step: i64, loss: f64) -> Option<Signal> {
        if !loss.is_finite() {
            return None;
        }
        let rising = self.climb.last().is_some_and(|(_, last)| loss > *last);
        if !rising {
            self.climb.clear();
            self.climb.push((step, loss));
            if std::mem::take(&mut self.open) {
                return Some(Signal::Clear {
                    kind: AlertKind::EvalRising,
                    step,
                    detail: format!("eval loss down to {}", metric(Some(loss))),
                });
            }
            return None;
        }
        self.climb.push((step, loss));
        if self.open || self.climb.len() <= self.rises {
            return None;
        }
        self.open = true;
        let path: Vec<String> = self.climb.iter().map(|(_, l)| metric(Some(*l))).collect();
        Some(Signal::Raise {
            kind: AlertKind::EvalRising,
            step,
            value: Some(loss),
            detail: format!(
                "eval loss up {} evals in a row since step {}: {}",
                self.rises,
                thousands(self.climb[0].0),
                path.join(" → ")
            ),
        })
    }
}

/// The layers of a router that are off (drifted, collapsed): one alert for the run while any
/// is, raised by the first and cleared by the last to come back.
#[derive(Clone, Debug, Default)]
struct LayersOff {
    layers: BTreeSet<i64>,
    /// Where the first of the current ones went off.
    since: i64,
}

impl LayersOff {
    /// `layer` went off at `since`: true when it is the first, which raises the alert.
    fn went_off(&mut self, layer: i64, since: i64) -> bool {
        let first = self.layers.is_empty();
        if self.layers.insert(layer) && first {
            self.since = since;
            return true;
        }
        false
    }

    /// `layer` came back at `step`: the steps since the first went off, when it was the last.
    fn came_back(&mut self, layer: i64, step: i64) -> Option<i64> {
        (self.layers.remove(&layer) && self.layers.is_empty()).then(|| step - self.since)
    }

    fn contains(&self, layer: i64) -> bool {
        self.layers.contains(&layer)
    }
}

/// MoD layers off target — selecting farther than the heatmap's red zone from
/// `mod_capacity`, outside the router's warm-up — for `drift_records` records in a row. One
/// alert for the run while any layer is off; it clears when every such layer is back.
#[derive(Clone, Debug)]
pub struct DriftDetector {
    capacity: f64,
    records: usize,
    /// Per layer: the current streak's first step and length.
    streaks: BTreeMap<i64, (i64, usize)>,
    off: LayersOff,
}

impl DriftDetector {
    pub fn new(rules: &Rules, capacity: f64) -> Self {
        Self {
            capacity,
            records: rules.drift_records.max(1),
            streaks: BTreeMap::new(),
            off: LayersOff::default(),
        }
    }

    pub fn push(&mut self, r: &RoutingMod) -> Option<Signal> {
        let frac = r.selected_frac.filter(|f| f.is_finite())?;
        if mod_zone(frac, r.status.as_deref(), self.capacity) != ModZone::Off {
            self.streaks.remove(&r.layer);
            let after = self.off.came_back(r.layer, r.step)?;
            return Some(Signal::Clear {
                kind: AlertKind::ModDrift,
                step: r.step,
                detail: format!(
                    "every layer within the red zone again after {} steps",
                    thousands(after)
                ),
            });
        }
        let streak = self.streaks.entry(r.layer).or_insert((r.step, 0));
        streak.1 += 1;
        if streak.1 < self.records || self.off.contains(r.layer) {
            return None;
        }
        let first = streak.0;
        if !self.off.went_off(r.layer, first) {
            return None;
        }
        Some(Signal::Raise {
            kind: AlertKind::ModDrift,
            step: first,
            value: Some(frac),
            detail: format!(
                "layer {} selects {} of tokens against capacity {} for {} records",
                r.layer,
                metric(Some(frac)),
                metric(Some(self.capacity)),
                self.records
            ),
        })
    }
}

/// MoR layers collapsed to their shallowest depth, as the depth chart detects it
/// (`analysis::routing::collapses`). One alert while any layer is collapsed.
#[derive(Clone, Debug)]
pub struct CollapseWatch {
    min_depth: f64,
    detector: CollapseDetector,
    /// Collapses seen so far (an index into `detector.found`).
    seen: usize,
    collapsed: LayersOff,
}

impl CollapseWatch {
    pub fn new(min_depth: f64) -> Self {
        Self {
            min_depth,
            detector: CollapseDetector::default(),
            seen: 0,
            collapsed: LayersOff::default(),
        }
    }

    pub fn push(&mut self, r: &RoutingMor) -> Option<Signal> {
        self.detector.push(r, self.min_depth);
        let mut raised = None;
        for c in &self.detector.found[self.seen..] {
            if self.collapsed.went_off(c.layer, c.since_step) {
                raised = Some((c.layer, c.since_step));
            }
        }
        self.seen = self.detector.found.len();
        if let Some((layer, since)) = raised {
            return Some(Signal::Raise {
                kind: AlertKind::MorCollapse,
                step: since,
                value: r.avg_depth,
                detail: format!(
                    "layer {layer} stuck at depth {} (the floor {}) since step {}",
                    metric(r.avg_depth),
                    metric(Some(self.min_depth)),
                    thousands(since)
                ),
            });
        }
        let recovered = self
            .detector
            .found
            .iter()
            .any(|c| c.layer == r.layer && c.recovered_step == Some(r.step));
        if !recovered {
            return None;
        }
        let after = self.collapsed.came_back(r.layer, r.step)?;
        Some(Signal::Clear {
            kind: AlertKind::MorCollapse,
            step: r.step,
            detail: format!(
                "every layer deeper than the floor again after {} steps",
                thousands(after)
            ),
        })
    }
}
