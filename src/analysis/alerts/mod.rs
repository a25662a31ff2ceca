//! Watching a run for trouble: its streams fed in step order through the detectors
//! ([`detectors`]), each alert raised once, kept quiet for a cooldown after it was last
//! raised, and resolved when it clears. Deterministic: the same history gives the same
//! alerts, whether replayed at once (`hydra-dashboard alerts`, a server restart) or watched
//! as the trainer writes it. Cooldowns are measured on the trainer's clock for that reason.

pub mod detectors;

use super::format::thousands;
use super::time::parse_iso8601;
use crate::model::{
    Alert, AlertChange, AlertKind, EvalPoint, RoutingMod, RoutingMor, RunConfig, Step,
    TrainingState,
};
use detectors::{
    CollapseWatch, DriftDetector, DropDetector, EvalDetector, NanDetector, Signal, SpikeDetector,
    StallDetector,
};
use std::collections::{BTreeMap, BTreeSet};

/// Every detector's threshold; each is a flag of `hydra-dashboard serve` and `alerts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Robust σ above the median of the last 128 values that make a loss or gradient spike.
    pub spike_sigmas: f64,
    /// A spike not back under its band within this many steps is reported as late.
    pub spike_recovery_steps: i64,
    /// Fraction below the median tokens/s that counts as a drop…
    pub throughput_drop: f64,
    /// …for this many logged steps in a row.
    pub throughput_steps: usize,
    /// A run quiet for longer than max(this, `stall_intervals` × its usual interval) stalled.
    pub stall_floor_seconds: f64,
    pub stall_intervals: f64,
    /// MoD records in a row off target before a layer drifted.
    pub drift_records: usize,
    /// Consecutive eval-loss rises that raise `eval_rising`.
    pub eval_rises: usize,
    /// After an alert of a kind is raised for a run, the same kind stays quiet this long
    /// (seconds of the trainer's clock).
    pub cooldown_seconds: f64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            spike_sigmas: super::loss::SPIKE_SIGMAS,
            spike_recovery_steps: 500,
            throughput_drop: 0.30,
            throughput_steps: 5,
            stall_floor_seconds: super::training_state::QUIET_FLOOR_SECONDS,
            stall_intervals: super::training_state::QUIET_INTERVALS,
            drift_records: super::routing::COLLAPSE_RECORDS,
            eval_rises: 3,
            cooldown_seconds: 30.0 * 60.0,
        }
    }
}

/// One run watched: every detector, the run's alerts, and what changed since last asked.
#[derive(Clone, Debug)]
pub struct RunWatch {
    run_id: String,
    model_id: String,
    cooldown: f64,
    loss: SpikeDetector,
    grad: SpikeDetector,
    nan: NanDetector,
    throughput: DropDetector,
    stall: StallDetector,
    eval: EvalDetector,
    drift: DriftDetector,
    collapse: CollapseWatch,
    /// The newest step and its time, as the trainer wrote it.
    last: Option<(i64, Option<String>)>,
    /// Times of each step an alert could be raised at, looked up when a signal names a
    /// step before the newest (a stall's or a drop's first step).
    times: BTreeMap<i64, String>,
    alerts: Vec<Alert>,
    open: BTreeMap<AlertKind, usize>,
    /// Raises that fell within their kind's cooldown, held back: raised once the cooldown is
    /// over if what raised them has not cleared by then; swallowed with their clear if it has.
    muted: BTreeMap<AlertKind, Signal>,
    last_raised: BTreeMap<AlertKind, f64>,
    changes: Vec<(AlertChange, usize)>,
    said_state: BTreeSet<AlertKind>,
    /// The kind whose held-back raise is being let through, and the time it is let through.
    releasing: Option<AlertKind>,
    now: f64,
}

/// Step times kept for signals that name an earlier step: a drop names its first low step, a
/// collapse the first of its ten records (1,000 steps back at the trainer's defaults), and
/// router records arrive up to 500 steps after their step's log line.
const TIMES_KEPT: usize = 4_096;

impl RunWatch {
    pub fn new(run_id: &str, model_id: &str, config: &RunConfig, rules: &Rules) -> Self {
        Self {
            run_id: run_id.into(),
            model_id: model_id.into(),
            cooldown: rules.cooldown_seconds,
            loss: SpikeDetector::new(AlertKind::LossSpike, "loss", rules),
            grad: SpikeDetector::new(AlertKind::GradSpike, "gradient norm", rules),
            nan: NanDetector::default(),
            throughput: DropDetector::new(rules),
            stall: StallDetector::new(rules),
            eval: EvalDetector::new(rules),
            drift: DriftDetector::new(rules, config.number("mod_capacity").unwrap_or(0.5)),
            collapse: CollapseWatch::new(config.number("mor_min_depth").unwrap_or(1.0)),
            last: None,
            times: BTreeMap::new(),
            alerts: Vec::new(),
            open: BTreeMap::new(),
            muted: BTreeMap::new(),
            last_raised: BTreeMap::new(),
            changes: Vec::new(),
            said_state: BTreeSet::new(),
            releasing: None,
            now: f64::NEG_INFINITY,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The trainer's time of the newest step fed, in seconds.
    pub fn last_time(&self) -> Option<f64> {
        self.last
            .as_ref()
            .and_then(|(_, t)| t.as_deref())
            .and_then(parse_iso8601)
    }

    /// The newest step fed.
    pub fn last_step(&self) -> Option<i64> {
        self.last.as_ref().map(|(s, _)| *s)
    }

    /// One logged step, after every step before it.
    pub fn step(&mut self, s: &Step) {
        if self.last_step().is_some_and(|last| s.step <= last) {
            return; // read twice across a page boundary
        }
        self.last = Some((s.step, s.timestamp.clone()));
        if let Some(t) = &s.timestamp {
            self.times.insert(s.step, t.clone());
            while self.times.len() > TIMES_KEPT {
                self.times.pop_first();
            }
        }
        let mut signals = Vec::new();
        self.stall.push(
            s.step,
            s.timestamp.as_deref().and_then(parse_iso8601),
            &mut signals,
        );
        signals.extend(self.nan.push(s.step, s.loss_total, s.grad_norm));
        if let Some(loss) = s.loss_total {
            signals.extend(self.loss.push(s.step, loss));
        }
        // The pre-clip norm is the one that spikes; a trainer that records none writes 0.
        let grad = s.grad_norm_pre_clip.filter(|g| *g != 0.0).or(s.grad_norm);
        if let Some(g) = grad {
            signals.extend(self.grad.push(s.step, g));
        }
        if let Some(t) = s.tokens_per_sec {
            signals.extend(self.throughput.push(s.step, t));
        }
        for signal in signals {
            self.apply(signal);
        }
        if let Some(now) = s.timestamp.as_deref().and_then(parse_iso8601) {
            self.release_held(s.step, now);
        }
    }

    /// Raises what the cooldown held back and is still going now that the cooldown is over.
    fn release_held(&mut self, step: i64, now: f64) {
        let over: Vec<AlertKind> = self
            .muted
            .keys()
            .copied()
            .filter(|k| {
                self.last_raised
                    .get(k)
                    .is_some_and(|t| now - t >= self.cooldown)
            })
            .collect();
        for kind in over {
            if let Some(Signal::Raise {
                kind,
                step: since,
                value,
                detail,
            }) = self.muted.remove(&kind)
            {
                // Past its cooldown: through, and the next cooldown counts from now.
                (self.releasing, self.now) = (Some(kind), now);
                self.apply(Signal::Raise {
                    kind,
                    step: since,
                    value,
                    detail: format!(
                        "{detail} (held back by the cooldown until step {}, still going)",
                        thousands(step)
                    ),
                });
                self.releasing = None;
            }
        }
    }

    pub fn eval(&mut self, e: &EvalPoint) {
        if let Some(signal) = self.eval.push(e.step, e.eval_loss) {
            self.apply(signal);
        }
    }

    pub fn mod_record(&mut self, r: &RoutingMod) {
        if let Some(signal) = self.drift.push(r) {
            self.apply(signal);
        }
    }

    pub fn mor_record(&mut self, r: &RoutingMor) {
        if let Some(signal) = self.collapse.push(r) {
            self.apply(signal);
        }
    }

    /// The run's state as judged now (`now` in seconds on its steps' clock), and the run
    /// that resumed it, if one did. A run that ended takes its open alerts with it: they
    /// are resolved as "still so when the run finished", or by the run that took over.
    pub fn state(&mut self, state: TrainingState, now: f64, resumed_by: Option<&str>) {
        let (step, _) = self.last.clone().unwrap_or((0, None));
        match state {
            TrainingState::Crashed => self.say_once(
                AlertKind::Crashed,
                step,
                format!("the log ends in an error after step {}", thousands(step)),
            ),
            TrainingState::Finished => self.say_once(
                AlertKind::Finished,
                step,
                format!("reached its planned length at step {}", thousands(step)),
            ),
            // Judged stalled as the runs table judges it, or quiet beyond this watch's own
            // patience (its flags may be stricter than the table's defaults).
            TrainingState::Stalled | TrainingState::Training
                if state == TrainingState::Stalled || self.stall.overdue(now) =>
            {
                if let Some(signal) = self.stall.quiet(now) {
                    self.apply(signal);
                }
            }
            TrainingState::Training | TrainingState::Stalled | TrainingState::Stopped => {}
        }
        if state != TrainingState::Crashed && self.said_state.remove(&AlertKind::Crashed) {
            // The same run id resumed from a checkpoint: its log goes on past the error.
            self.clear(AlertKind::Crashed, step, "training again".into());
        }
        let ended = match (state, resumed_by) {
            (TrainingState::Finished, _) => Some(format!(
                "still so when the run finished at step {}",
                thousands(step)
            )),
            (_, Some(next)) => Some(format!("the run was resumed as {next}")),
            _ => None,
        };
        if let Some(detail) = ended {
            let open: Vec<AlertKind> = self.open.keys().copied().collect();
            for kind in open {
                self.clear(kind, step, detail.clone());
            }
        }
    }

    fn clear(&mut self, kind: AlertKind, step: i64, detail: String) {
        self.apply(Signal::Clear { kind, step, detail });
    }

    fn say_once(&mut self, kind: AlertKind, step: i64, detail: String) {
        if self.said_state.insert(kind) {
            self.apply(Signal::Raise {
                kind,
                step,
                value: None,
                detail,
            });
        }
    }

    /// The trainer's time of `step`, or of the logged step before it (an eval or a router
    /// record at a step the log did not print a line for).
    fn time_of(&self, step: i64) -> Option<String> {
        self.times
            .range(..=step)
            .next_back()
            .map(|(_, t)| t.clone())
            .or_else(|| {
                self.last
                    .as_ref()
                    .filter(|(s, _)| *s <= step)
                    .and_then(|(_, t)| t.clone())
            })
    }

    fn apply(&mut self, signal: Signal) {
        match signal {
            Signal::Raise {
                kind,
                step,
                value,
                detail,
            } => {
                if self.open.contains_key(&kind) || self.muted.contains_key(&kind) {
                    return;
                }
                let time = self.time_of(step);
                if let Some(t) = time.as_deref().and_then(parse_iso8601) {
                    let released = self.releasing == Some(kind);
                    if !released
                        && self
                            .last_raised
                            .get(&kind)
                            .is_some_and(|before| t - before < self.cooldown)
                    {
                        self.muted.insert(
                            kind,
                            Signal::Raise {
                                kind,
                                step,
                                value,
                                detail,
                            },
                        );
                        return;
                    }
                    let at = if released { self.now.max(t) } else { t };
                    self.last_raised.insert(kind, at);
                }
                self.alerts.push(Alert {
                    run_id: self.run_id.clone(),
                    model_id: self.model_id.clone(),
                    kind,
                    step,
                    value: value.filter(|v| v.is_finite()),
                    time,
                    detail,
                    resolved_step: None,
                    resolved_time: None,
                    resolved_detail: None,
                });
                let i = self.alerts.len() - 1;
                if !kind.informational() {
                    self.open.insert(kind, i);
                }
                self.changes.push((AlertChange::Raised, i));
            }
            Signal::Clear { kind, step, detail } => {
                if self.muted.remove(&kind).is_some() {
                    return;
                }
                let Some(i) = self.open.remove(&kind) else {
                    return;
                };
                let time = self.time_of(step);
                let alert = &mut self.alerts[i];
                alert.resolved_step = Some(step);
                alert.resolved_time = time;
                alert.resolved_detail = Some(detail);
                self.changes.push((AlertChange::Resolved, i));
            }
        }
    }

    /// Every alert of the run, in the order raised.
    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    /// What was raised or resolved since the last call, in order, with the alert as it is
    /// now.
    pub fn take_changes(&mut self) -> Vec<(AlertChange, Alert)> {
        std::mem::take(&mut self.changes)
            .into_iter()
            .map(|(c, i)| {
                let mut alert = self.alerts[i].clone();
                if c == AlertChange::Raised && alert.resolved_step.is_some() {
                    // Told as raised: the resolution is its own change, after.
                    alert.resolved_step = None;
                    alert.resolved_time = None;
                    alert.resolved_detail = None;
                }
                (c, alert)
            })
            .collect()
    }
}

/// One line a person reads, for a webhook or a terminal: run, what, step, value, and how it
/// cleared.
pub fn sentence(change: AlertChange, a: &Alert) -> String {
    match (change, a.resolved_step) {
        (AlertChange::Resolved, Some(at)) => format!(
            "✅ {}: {} from step {} resolved at step {} — {}",
            a.run_id,
            a.kind.words(),
            thousands(a.step),
            thousands(at),
            a.resolved_detail.as_deref().unwrap_or("cleared")
        ),
        _ => format!(
            "{} {}: {} at step {} — {}",
            if a.kind.informational() {
                "ℹ️"
            } else {
                "⚠️"
            },
            a.run_id,
            a.kind.words(),
            thousands(a.step),
            a.detail
        ),
    }
}

/// Where the page shows an alert: its run, zoomed to the steps around it (and to where it
/// cleared), as a path from the dashboard's root.
pub fn link(a: &Alert) -> String {
    let end = a.resolved_step.unwrap_or(a.step).max(a.step);
    let pad = ((end - a.step) / 2).max(500);
    format!(
        "/run/{}?start={}&end={}",
        super::format::path_segment(&a.run_id),
        (a.step - pad).max(0),
        end.saturating_add(pad)
    )
}

/// Folds an alert raised or resolved into a chart's marks (the live feed's way of keeping
/// them current).
pub fn mark(marks: &mut Vec<crate::model::AlertMark>, change: AlertChange, a: &Alert) {
    if a.kind.informational() {
        return;
    }
    match marks
        .iter_mut()
        .find(|m| m.step == a.step && m.kind == a.kind)
    {
        Some(m) => m.open = change == AlertChange::Raised && a.resolved_step.is_none(),
        None => {
            marks.push(crate::model::AlertMark {
                step: a.step,
                kind: a.kind,
                open: a.is_open(),
            });
            marks.sort_by_key(|m| m.step);
        }
    }
}

#[cfg(test)]
mod tests;
