//! One run as its files tell it: the log's lines and the diagnostics file's records folded
//! into one step per step number. Pure: what was read goes in, steps, routing and what
//! arrived since a feed position come out.
//!
//! Precedence, per field: the diagnostics record (full floats, every field), else the log
//! line (four decimals, fewer fields). Within one file a later record of a step replaces the
//! earlier (a resume logs the steps after its checkpoint again). A step new to the run, or
//! written again within one file, gets a new feed position (the live feed and the run cache
//! see the latter as a rewritten step); a diagnostics record refining a logged step does not.
//!
//! EMAs are the loader's (spec: alphas 0.99 / 0.999 / 0.9999, `ema = loss if ema == 0 else
//! a·ema + (1-a)·loss`, a NaN poisoning every later one) at each diagnostics record: what the
//! database will hold once the run is loaded, so the run reads the same before and after.
//! A logged step the loader never sees has none (the charts draw their own over every step:
//! `RunState::drawing_own_emas`). Holding a record's EMA over the logged steps after it
//! would change steps already served when the next save brings the records before them.

use super::diagnostics::{MorLayer, Record};
use super::log::{LogEval, LogLine, LogStep, Setup};
use crate::model::{AdaptiveLr, EvalPoint, RoutingMod, RoutingMoe, RoutingMor, Run, Step};
use std::collections::BTreeMap;

/// The loader's EMA smoothing factors (the same as the charts').
const EMA_ALPHAS: [f64; 3] = crate::analysis::loss::EMA_ALPHAS;

/// How the log says the run ended, as of its newest line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ending {
    /// Nothing yet: still going, or stopped without a word.
    #[default]
    None,
    /// `Training complete!`
    Complete,
    /// An error or a traceback after the last step, without completion.
    Error,
}

/// A step as each file gave it.
#[derive(Clone, Debug, Default)]
struct Held {
    log: Option<LogStep>,
    diag: Option<Step>,
}

/// A diagnostics record's routing, kept as read (no ids per row).
#[derive(Clone, Debug, Default)]
struct RoutingAt {
    record: Record,
}

/// A run's files, folded.
#[derive(Clone, Debug, Default)]
pub struct FileRun {
    pub run_id: String,
    pub model_id: String,
    steps: BTreeMap<i64, Held>,
    /// `(feed position, step)` in arrival order; a step may appear again, later.
    step_feed: Vec<(i64, i64)>,
    routing: BTreeMap<i64, RoutingAt>,
    routing_feed: Vec<(i64, i64)>,
    adaptive: BTreeMap<i64, AdaptiveLr>,
    pub evals: BTreeMap<i64, EvalPoint>,
    /// The `M` of the newest `Step N/M` line.
    pub max_steps: Option<i64>,
    /// A step's size as the start-up lines said it, newest first (a resume says it again).
    pub setup: Setup,
    pub ending: Ending,
    /// The newest line's time (local, no zone), any line: the last sign of life.
    pub last_time: Option<String>,
    emas: Emas,
}

/// The loader's EMAs at each record, kept up to date incrementally: new records at the end
/// cost only themselves.
#[derive(Clone, Debug, Default)]
struct Emas {
    /// Where the loader would start: the newest EMA of the model's run loaded before this
    /// one, `0.0` (start from the first loss) when none.
    seed: [f64; 3],
    at: BTreeMap<i64, [f64; 3]>,
    /// The lowest step whose EMA is stale.
    stale_from: Option<i64>,
}

impl Emas {
    fn touched(&mut self, step: i64) {
        self.stale_from = Some(self.stale_from.map_or(step, |s| s.min(step)));
    }
}

impl FileRun {
    pub fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.into(),
            model_id: model_of(run_id).into(),
            ..Default::default()
        }
    }

    /// Folds in one log line; `seq` hands out feed positions.
    pub fn push_line(&mut self, line: LogLine, time: Option<&str>, seq: &mut i64) {
        if let Some(t) = time {
            self.last_time = Some(t.to_string());
        }
        match line {
            LogLine::Step(s) => {
                self.max_steps = s.max_steps.or(self.max_steps);
                self.ending = Ending::None;
                let step = s.step;
                self.steps.entry(step).or_default().log = Some(s);
                *seq += 1;
                self.step_feed.push((*seq, step));
            }
            LogLine::Eval(LogEval {
                step,
                eval_loss,
                train_loss,
                ..
            }) => {
                self.evals.insert(
                    step,
                    EvalPoint {
                        step,
                        eval_loss,
                        train_loss,
                        components: Default::default(),
                    },
                );
            }
            LogLine::EvalComponents { step, components } => {
                if let Some(e) = self.evals.get_mut(&step) {
                    e.components = components.into_iter().collect();
                }
            }
            LogLine::Setup(said) => {
                let was = self.setup;
                self.setup = Setup {
                    batch_size: said.batch_size.or(was.batch_size),
                    grad_accum_steps: said.grad_accum_steps.or(was.grad_accum_steps),
                    max_seq_len: said.max_seq_len.or(was.max_seq_len),
                };
            }
            LogLine::Complete => self.ending = Ending::Complete,
            LogLine::Error => {
                if self.ending != Ending::Complete {
                    self.ending = Ending::Error;
                }
            }
            LogLine::Other => {}
        }
    }

    /// Folds in one diagnostics record (read in list order).
    pub fn push_record(&mut self, record: Record, seq: &mut i64) {
        let Some(step) = record.step else {
            return;
        };
        let row = record.step_row("", "");
        let held = self.steps.entry(step).or_default();
        // A step the log already gave is refined in place (full floats, the fields the log
        // lacks), not sent again: the feed would make every page reload every 500 steps
        // for digits past the fourth. A step new to the run, or a record of it again (a
        // resume), is news.
        let news = held.log.is_none() || held.diag.is_some();
        held.diag = Some(row);
        self.emas.touched(step);
        if news {
            *seq += 1;
            self.step_feed.push((*seq, step));
        }
        if let Some(a) = record.adaptive_lr_row() {
            self.adaptive.insert(step, a);
        }
        if !record.mod_layers.is_empty() || !record.mor_layers.is_empty() || record.moe.is_some() {
            let mut record = record;
            // What the routing charts do not read is not kept.
            record.adaptive_lr = None;
            record.timestamp = None;
            record.mor_layers.iter_mut().for_each(|l: &mut MorLayer| {
                l.depth_histogram.shrink_to_fit();
            });
            self.routing.insert(step, RoutingAt { record });
            self.routing_feed.push((*seq, step));
        }
    }

    /// The run's step `step` as shown: each field from the diagnostics record, else the log.
    fn merged(&self, step: i64, held: &Held) -> Step {
        let mut s = held.diag.clone().unwrap_or_default();
        s.step = step;
        s.run_id = self.run_id.clone();
        s.model_id = self.model_id.clone();
        if let Some(l) = &held.log {
            let fill = |mine: &mut Option<f64>, theirs: Option<f64>| {
                if mine.is_none() {
                    *mine = theirs;
                }
            };
            if held.diag.is_none() {
                s.timestamp = l.time.clone();
                s.loss_total = l.loss;
            }
            fill(&mut s.loss_ce, l.ce);
            fill(&mut s.lr, l.lr);
            fill(&mut s.grad_norm, l.grad_post_clip);
            fill(&mut s.grad_norm_pre_clip, l.grad_pre_clip);
            fill(&mut s.tokens_per_sec, l.tokens_per_sec);
        }
        let finite = |v: f64| v.is_finite().then_some(v);
        if let Some(e) = self.emas.at.get(&step).filter(|_| held.diag.is_some()) {
            [s.ema_short, s.ema_medium, s.ema_long] = e.map(finite);
        }
        s
    }

    /// Where the loader would start this run's EMAs (see [`Emas::seed`]).
    pub fn set_ema_seed(&mut self, seed: [f64; 3]) {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        if !self.emas.seed.iter().zip(&seed).all(|(a, b)| same(*a, *b)) {
            self.emas.seed = seed;
            self.emas.touched(i64::MIN);
        }
    }

    /// The run's newest EMAs and their step, where the next run of its model would start.
    pub fn last_emas(&self) -> Option<(i64, [f64; 3])> {
        self.emas.at.iter().next_back().map(|(s, e)| (*s, *e))
    }

    /// Brings the EMAs up to date from the lowest step that changed.
    pub fn settle_emas(&mut self) {
        let Some(from) = self.emas.stale_from.take() else {
            return;
        };
        let emas = &mut self.emas;
        emas.at.split_off(&from);
        let mut ema = emas
            .at
            .range(..from)
            .next_back()
            .map_or(emas.seed, |(_, e)| *e);
        // The loader reads a record's missing total as 0.0.
        let losses = self
            .steps
            .range(from..)
            .filter_map(|(step, h)| Some((*step, h.diag.as_ref()?.loss_total.unwrap_or(0.0))));
        for (step, loss) in losses {
            for (e, a) in ema.iter_mut().zip(EMA_ALPHAS) {
                *e = if *e == 0.0 {
                    loss
                } else {
                    a * *e + (1.0 - a) * loss
                };
            }
            emas.at.insert(step, ema);
        }
    }

    /// Up to `limit` steps within `range`, from the low end, or the high end when
    /// `newest_first`.
    pub fn steps(&self, range: (i64, i64), newest_first: bool, limit: usize) -> Vec<Step> {
        if range.0 > range.1 {
            return Vec::new();
        }
        let inside = self.steps.range(range.0..=range.1);
        let merge = |(step, held): (&i64, &Held)| self.merged(*step, held);
        if newest_first {
            inside.rev().take(limit).map(merge).collect()
        } else {
            inside.take(limit).map(merge).collect()
        }
    }

    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    pub fn first_step(&self) -> Option<i64> {
        self.steps.keys().next().copied()
    }

    pub fn last_step(&self) -> Option<i64> {
        self.steps.keys().next_back().copied()
    }

    pub fn first_time(&self) -> Option<String> {
        let (step, held) = self.steps.iter().next()?;
        self.merged(*step, held).timestamp
    }

    /// Routing records within `range`, at most `limit` records' worth of steps.
    fn routing_records(&self, range: (i64, i64)) -> impl Iterator<Item = &Record> {
        let (lo, hi) = range;
        (lo <= hi)
            .then(|| self.routing.range(lo..=hi))
            .into_iter()
            .flatten()
            .map(|(_, r)| &r.record)
    }

    pub fn mod_rows(&self, range: (i64, i64), limit: usize) -> Vec<RoutingMod> {
        self.routing_records(range)
            .flat_map(|r| r.mod_rows(&self.run_id, &self.model_id))
            .take(limit)
            .collect()
    }

    pub fn mor_rows(&self, range: (i64, i64), limit: usize) -> Vec<RoutingMor> {
        self.routing_records(range)
            .flat_map(|r| r.mor_rows(&self.run_id, &self.model_id))
            .take(limit)
            .collect()
    }

    pub fn moe_rows(&self, range: (i64, i64), limit: usize) -> Vec<RoutingMoe> {
        self.routing_records(range)
            .filter_map(|r| r.moe_row(&self.run_id, &self.model_id))
            .take(limit)
            .collect()
    }

    pub fn adaptive_lr(&self, range: (i64, i64), limit: usize) -> Vec<AdaptiveLr> {
        if range.0 > range.1 {
            return Vec::new();
        }
        self.adaptive
            .range(range.0..=range.1)
            .take(limit)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The steps that changed at feed positions in `(from, to]`, oldest first, at most
    /// `limit`, each as it is now, with its position; and the position they reach.
    pub fn step_changes(&self, from: i64, to: i64, limit: usize) -> (Vec<(i64, Step)>, i64) {
        let changed = feed_between(&self.step_feed, from, to, limit);
        let reached = changed
            .last()
            .map_or(to, |c| if changed.len() >= limit { c.0 } else { to });
        let rows = changed
            .into_iter()
            .filter_map(|(at, step)| self.steps.get(&step).map(|h| (at, self.merged(step, h))))
            .collect();
        (rows, reached)
    }

    /// The steps whose routing changed at positions in `(from, to]`, as for steps.
    pub fn routing_changes(&self, from: i64, to: i64, limit: usize) -> (Vec<(i64, &Record)>, i64) {
        let changed = feed_between(&self.routing_feed, from, to, limit);
        let reached = changed
            .last()
            .map_or(to, |c| if changed.len() >= limit { c.0 } else { to });
        let rows = changed
            .into_iter()
            .filter_map(|(at, step)| self.routing.get(&step).map(|r| (at, &r.record)))
            .collect();
        (rows, reached)
    }

    /// What the log says of the run's configuration, under the configuration's own keys,
    /// for a run that has no report yet: its `max_steps` and a step's size (the tokens of
    /// a step are batch × sequence length × accumulation; without the last, a quarter of
    /// them were counted for a run with four).
    pub fn config_json(&self) -> Option<String> {
        let said = [
            ("max_steps", self.max_steps),
            ("batch_size", self.setup.batch_size),
            ("grad_accum_steps", self.setup.grad_accum_steps),
            ("max_seq_len", self.setup.max_seq_len),
        ];
        let config: serde_json::Map<String, serde_json::Value> = said
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value?.into())))
            .collect();
        (!config.is_empty()).then(|| serde_json::Value::Object(config).to_string())
    }

    /// What the run's files say of it as a run row: model, first step and its time; the
    /// report's and the database's facts are the caller's.
    pub fn run_row(&self) -> Run {
        Run {
            run_id: self.run_id.clone(),
            model_id: self.model_id.clone(),
            start_step: self.first_step(),
            start_time: self.first_time(),
            last_seen: self.last_time.clone(),
            ..Default::default()
        }
    }

    /// Bytes held, roughly, for the log.
    pub fn heap_bytes(&self) -> usize {
        let per_step = std::mem::size_of::<Held>() + 2 * std::mem::size_of::<Step>();
        let per_layer = std::mem::size_of::<MorLayer>() + 48;
        self.steps.len() * per_step
            + self
                .routing
                .values()
                .map(|r| (r.record.mod_layers.len() + r.record.mor_layers.len()) * per_layer)
                .sum::<usize>()
    }
}

/// The positions in `(from, to]` of a feed, oldest first, at most `limit`, each step once
/// (its newest position within the window).
fn feed_between(feed: &[(i64, i64)], from: i64, to: i64, limit: usize) -> Vec<(i64, i64)> {
    let start = feed.partition_point(|(at, _)| *at <= from);
    let window: Vec<(i64, i64)> = feed[start..]
        .iter()
        .take_while(|(at, _)| *at <= to)
        .take(limit)
        .copied()
        .collect();
    // A step changed twice in the window is sent once, at its newer position.
    let mut newest: BTreeMap<i64, i64> = BTreeMap::new();
    for (at, step) in &window {
        newest.insert(*step, *at);
    }
    window
        .into_iter()
        .filter(|(at, step)| newest.get(step) == Some(at))
        .collect()
}

/// The model of a run: its run id up to the first `_` (`500m_20260109_144733` → `500m`).
pub fn model_of(run_id: &str) -> &str {
    run_id.split('_').next().unwrap_or(run_id)
}

#[cfg(test)]
mod tests {
    use super::super::diagnostics::split_records;
    use super::super::log::parse_line;
    use super::*;

    fn step_line(step: i64, loss: f64) -> String {
        format!(
            "2026-01-09 17:28:53 - HYDRA - INFO - Step {step:>5}/1000 | Loss: {loss:.4} (EMA: 1) | CE: 2.5 (EMA: 2) | LR: 1.00e-04 | Grad: pre 6.00e-01 | post 5.00e-01 | clipped  0.0% | 41.2K tok/s | Avg: 40K tok/s (1 steps/s)"
        )
    }

    fn records(text: &str) -> Vec<Record> {
        let split = split_records(text.as_bytes(), false);
        split
            .records
            .iter()
            .filter_map(|(a, b)| Record::parse(&text.as_bytes()[*a..*b]))
            .collect()
    }

    fn run_with(lines: &[String], diag: &str) -> (FileRun, i64) {
        let mut run = FileRun::new("500m_20260109_144733");
        let mut seq = 0;
        for l in lines {
            run.push_line(parse_line(l), None, &mut seq);
        }
        for r in records(diag) {
            run.push_record(r, &mut seq);
        }
        (run, seq)
    }

    #[test]
    fn each_field_comes_from_the_diagnostics_record_else_the_log_line() {
        let lines: Vec<String> = [25, 50, 75, 100]
            .iter()
            .map(|s| step_line(*s, 3.0))
            .collect();
        let diag = r#"[{"step": 100, "timestamp": "2026-01-09T17:28:53.5", "losses": {"total": 2.987654321}, "lr": 9.9e-5, "vram_gb": 31.5,
            "mor_layers": [{"layer": 0, "avg_depth": 2.0, "status": "OK"}]}]"#;
        let (run, _) = run_with(&lines, diag);
        assert_eq!(run.model_id, "500m");
        let steps = run.steps((i64::MIN, i64::MAX), false, 10);
        assert_eq!(
            steps.iter().map(|s| s.step).collect::<Vec<_>>(),
            [25, 50, 75, 100]
        );
        assert_eq!(steps[0].loss_total, Some(3.0));
        assert_eq!(steps[0].vram_gb, None, "the log has no VRAM");
        assert_eq!(steps[0].timestamp.as_deref(), Some("2026-01-09T17:28:53"));
        assert_eq!(steps[3].loss_total, Some(2.987654321), "the full float");
        assert_eq!(steps[3].lr, Some(9.9e-5));
        assert_eq!(steps[3].vram_gb, Some(31.5));
        assert_eq!(
            steps[3].grad_norm,
            Some(0.0),
            "the loader's 0.0 for a missing key wins"
        );
        assert_eq!(run.mor_rows((0, 100), 10).len(), 1);
        // The record refined step 100 in place: the feed has each step once.
        let (changes, _) = run.step_changes(0, i64::MAX, 100);
        assert_eq!(
            changes.iter().map(|c| c.1.step).collect::<Vec<_>>(),
            [25, 50, 75, 100]
        );
        assert_eq!(
            changes[3].1.loss_total,
            Some(2.987654321),
            "sent as it is now"
        );
        assert_eq!(run.max_steps, Some(1000));
        // Newest first, bounded.
        let newest = run.steps((0, 80), true, 2);
        assert_eq!(newest.iter().map(|s| s.step).collect::<Vec<_>>(), [75, 50]);
    }

    #[test]
    fn the_start_up_lines_give_a_run_without_a_report_the_tokens_of_a_step() {
        let at = |m: &str| format!("2026-01-09 14:47:33 - HYDRA - INFO - {m}");
        let diag = r#"[{"step": 100, "losses": {"total": 3.0}, "batch_size": 8, "seq_len": 2048},
            {"step": 200, "losses": {"total": 2.9}, "batch_size": 8, "seq_len": 2048}]"#;
        let tokens = |run: &FileRun| {
            let config = crate::model::RunConfig::parse(run.config_json().as_deref());
            let mut summary = crate::analysis::summary::SummaryBuilder::new(&config);
            for s in run.steps((i64::MIN, i64::MAX), false, 10) {
                summary.push(&s);
            }
            summary.tokens_so_far()
        };
        let said = [
            at("Batch: 8 micro × 4 accum = 32 effective"),
            at("Sequence length: 2048"),
            step_line(100, 3.0),
            step_line(200, 2.9),
        ];
        let (run, _) = run_with(&said, diag);
        let config = crate::model::RunConfig::parse(run.config_json().as_deref());
        assert_eq!(config.count("batch_size"), Some(8));
        assert_eq!(config.count("grad_accum_steps"), Some(4));
        assert_eq!(config.count("max_seq_len"), Some(2048));
        assert_eq!(config.count("max_steps"), Some(1000));
        // The first row counts one step (no log_interval known), the second a hundred.
        assert_eq!(tokens(&run), Some(101.0 * 8.0 * 2048.0 * 4.0));

        // A log without them: a quarter as many, and only max_steps in the configuration.
        let (quiet, _) = run_with(&said[2..], diag);
        assert_eq!(
            quiet.config_json().as_deref(),
            Some(r#"{"max_steps":1000}"#)
        );
        assert_eq!(tokens(&quiet), Some(101.0 * 8.0 * 2048.0));

        // A resume says it again: the newest holds.
        let (resumed, _) = run_with(
            &[
                said[0].clone(),
                at("Batch: 4 micro × 8 accum = 32 effective"),
            ],
            "[]",
        );
        let config = crate::model::RunConfig::parse(resumed.config_json().as_deref());
        assert_eq!(config.count("batch_size"), Some(4));
        assert_eq!(config.count("grad_accum_steps"), Some(8));
    }

    #[test]
    fn a_later_record_of_a_step_replaces_the_earlier_and_comes_again_in_the_feed() {
        let lines: Vec<String> = vec![step_line(25, 3.0), step_line(50, 2.9), step_line(25, 2.5)];
        let (run, seq) = run_with(&lines, "[]");
        assert_eq!(seq, 3);
        let steps = run.steps((i64::MIN, i64::MAX), false, 10);
        assert_eq!(
            steps[0].loss_total,
            Some(2.5),
            "the resume's line is current"
        );
        let (changes, reached) = run.step_changes(0, seq, 100);
        assert_eq!(reached, 3);
        assert_eq!(
            changes
                .iter()
                .map(|(at, s)| (*at, s.step))
                .collect::<Vec<_>>(),
            [(2, 50), (3, 25)],
            "step 25 once, at its newer position"
        );
        let (changes, reached) = run.step_changes(0, seq, 1);
        assert_eq!(
            (changes.len(), reached),
            (1, 1),
            "a full page reaches its last row"
        );
        assert!(run.step_changes(3, 3, 10).0.is_empty());
    }

    #[test]
    fn how_the_log_says_it_ended_and_its_evals() {
        let at = |rest: &str| format!("2026-01-09 19:14:13 - HYDRA - {rest}");
        let mut lines = vec![
            step_line(25, 3.0),
            at("INFO - [EVAL] step=25  eval_loss=3.1  train_loss=3.0"),
            at("INFO - [EVAL_COMPONENTS] step=25  code(0.2)=2.0  math=4.0"),
            at("ERROR - CUDA out of memory"),
        ];
        let (run, _) = run_with(&lines, "[]");
        assert_eq!(run.ending, Ending::Error);
        assert_eq!(run.evals[&25].components.len(), 2);
        // Resumed: steps again, then it completes.
        lines.push(step_line(50, 2.9));
        let (run, _) = run_with(&lines, "[]");
        assert_eq!(run.ending, Ending::None);
        lines.push(at("INFO - Training complete!"));
        lines.push(at("ERROR - an error while saving after completion"));
        let (run, _) = run_with(&lines, "[]");
        assert_eq!(run.ending, Ending::Complete);
    }

    #[test]
    fn emas_are_the_loaders_at_each_record() {
        let lines: Vec<String> = (1..=8).map(|i| step_line(i * 25, 3.0)).collect();
        let diag =
            r#"[{"step": 100, "losses": {"total": 4.0}}, {"step": 200, "losses": {"total": 2.0}}]"#;
        let (mut run, _) = run_with(&lines, diag);
        run.settle_emas();
        let emas = |run: &FileRun| -> Vec<(i64, Option<f64>)> {
            run.steps((i64::MIN, i64::MAX), false, 100)
                .iter()
                .map(|s| (s.step, s.ema_short))
                .collect()
        };
        let second = 0.99 * 4.0 + 0.01 * 2.0;
        assert_eq!(
            emas(&run),
            [
                (25, None),
                (50, None),
                (75, None),
                (100, Some(4.0)),
                (125, None),
                (150, None),
                (175, None),
                (200, Some(second)),
            ],
            "seeded by the first record's loss; the log's 3.0 is not a record"
        );
        // A seed (the model's run loaded before) restarts them; a NaN poisons the rest.
        run.set_ema_seed([2.0; 3]);
        let mut seq = 100;
        for r in records(
            r#"[{"step": 300, "losses": {"total": NaN}}, {"step": 400, "losses": {"total": 1.0}}]"#,
        ) {
            run.push_record(r, &mut seq);
        }
        run.settle_emas();
        let seeded = 0.99 * 2.0 + 0.01 * 4.0;
        let got = emas(&run);
        assert_eq!(got[3], (100, Some(seeded)));
        assert_eq!(got[7], (200, Some(0.99 * seeded + 0.01 * 2.0)));
        assert_eq!(&got[8..], [(300, None), (400, None)]);
        assert_eq!(
            run.last_emas().map(|(s, e)| (s, e[0].is_nan())),
            Some((400, true))
        );
    }

    #[test]
    fn a_diagnostics_record_refines_a_logged_step_a_step_trained_again_does_not() {
        use super::super::log::refines;
        let at = |run: &FileRun| run.steps((100, 100), false, 1).remove(0);
        let (mut run, mut seq) = run_with(&[step_line(100, 2.66118)], "");
        let logged = at(&run);
        let record = r#"[{"step": 100, "timestamp": "2026-01-09T17:28:53.5",
            "losses": {"total": 2.66118, "ce": 2.50003, "aux": 0.011},
            "lr": 1.0004e-4, "grad_norm": 0.50049, "grad_norm_pre_clip": 0.60021,
            "tokens_per_sec": 41234.5, "vram_gb": 31.5, "batch_size": 8, "seq_len": 2048}]"#;
        for r in records(record) {
            run.push_record(r, &mut seq);
        }
        let refined = at(&run);
        assert_eq!(refined.loss_total, Some(2.66118));
        assert!(refines(&logged, &refined), "{logged:?}\n{refined:?}");

        // The same step logged again after a resume, trained anew: news.
        let (mut again, mut seq) = run_with(&[step_line(100, 2.66118)], "");
        again.push_line(parse_line(&step_line(100, 2.7)), None, &mut seq);
        assert!(!refines(&logged, &at(&again)));
        // A throughput off by more than the log's 0.1K is another step too.
        let record = record.replace("41234.5", "41400.0");
        let (mut other, mut seq) = run_with(&[step_line(100, 2.66118)], "");
        for r in records(&record) {
            other.push_record(r, &mut seq);
        }
        assert!(!refines(&logged, &at(&other)));
        // A step that already had its record is never refined again: another record is
        // the step trained again.
        let mut later = refined.clone();
        later.loss_total = Some(2.66121);
        assert!(!refines(&refined, &later));
    }
}
