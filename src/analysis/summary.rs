//! One pass over a run's steps, in step order, gathering what the stats cards show.

use super::time::parse_iso8601;
use crate::model::{Run, RunConfig, RunSummary, Step};
use std::collections::VecDeque;

/// The ETA's step rate is measured over this much of the newest logged wall time: long
/// enough to smooth eval pauses, short enough to follow a sequence-length change.
pub const RATE_WINDOW_SECONDS: f64 = 300.0;

/// Accumulates a [`RunSummary`] from steps fed in ascending step order, page by page, so
/// the store never has to hold a whole run in memory.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SummaryBuilder {
    summary: RunSummary,
    previous_step: Option<i64>,
    /// Optimizer steps per row when the first row has nothing before it.
    log_interval: i64,
    grad_accum: f64,
    tokens: f64,
    saw_token_columns: bool,
    /// Tokens per optimizer step as the newest row with batch and sequence size said.
    tokens_per_step: Option<f64>,
    max_steps: Option<i64>,
    /// `(step, epoch seconds)` of the rows within `RATE_WINDOW_SECONDS` of the newest.
    recent: VecDeque<(i64, f64)>,
    /// The last row's time, parsed once here for everyone who needs it.
    last_time: Option<f64>,
}

impl SummaryBuilder {
    pub fn new(config: &RunConfig) -> Self {
        Self {
            summary: RunSummary::default(),
            previous_step: None,
            log_interval: config.count("log_interval").unwrap_or(1),
            grad_accum: config.count("grad_accum_steps").unwrap_or(1) as f64,
            tokens: 0.0,
            saw_token_columns: false,
            tokens_per_step: None,
            max_steps: config.count("max_steps"),
            recent: VecDeque::new(),
            last_time: None,
        }
    }

    /// The wall time of the row pushed last, if it has one that parses.
    pub fn last_time(&self) -> Option<f64> {
        self.last_time
    }

    /// Tokens seen up to the last row pushed, when the rows tell batch and sequence size.
    pub fn tokens_so_far(&self) -> Option<f64> {
        self.saw_token_columns.then_some(self.tokens)
    }

    pub fn push(&mut self, step: &Step) {
        let s = &mut self.summary;
        s.step_count += 1;
        s.first_step.get_or_insert(step.step);
        s.last_step = Some(step.step);
        s.last_loss = step.loss_total;
        match step.finite_loss() {
            Some(loss) if s.best_loss.is_none_or(|best| loss < best) => {
                s.best_loss = Some(loss);
                s.best_loss_step = Some(step.step);
            }
            Some(_) => {}
            None => s.nonfinite_losses += 1,
        }
        self.last_time = None;
        if let Some(ts) = step.timestamp.as_ref().filter(|t| !t.is_empty()) {
            s.first_timestamp.get_or_insert_with(|| ts.clone());
            // Into the last one's buffer: a run is read a step at a time, and an
            // allocation per step was a measurable share of reading it.
            match &mut s.last_timestamp {
                Some(last) => last.clone_from(ts),
                None => s.last_timestamp = Some(ts.clone()),
            }
            self.last_time = parse_iso8601(ts);
            if let Some(t) = self.last_time {
                self.recent.push_back((step.step, t));
                while self
                    .recent
                    .front()
                    .is_some_and(|(_, old)| t - old > RATE_WINDOW_SECONDS)
                {
                    self.recent.pop_front();
                }
            }
        }
        if let Some(tps) = step.tokens_per_sec.filter(|v| v.is_finite() && *v > 0.0) {
            s.last_tokens_per_sec = Some(tps);
        }
        if let Some(vram) = step.vram_gb.filter(|v| v.is_finite() && *v > 0.0) {
            s.last_vram_gb = Some(vram);
        }
        let steps_covered = match self.previous_step {
            Some(prev) => step.step.saturating_sub(prev).max(0),
            None => self.log_interval,
        };
        if let (Some(batch), Some(seq)) = (step.batch_size, step.seq_len) {
            if batch > 0 && seq > 0 {
                self.tokens_per_step = Some(batch as f64 * seq as f64 * self.grad_accum);
            }
        }
        // A row without batch and sequence size (a log line: only the diagnostics record
        // every 100 steps has them) counts at the size last seen.
        if let Some(per_step) = self.tokens_per_step {
            self.saw_token_columns = true;
            self.tokens += per_step * steps_covered as f64;
        }
        self.previous_step = Some(step.step);
    }

    pub fn finish(mut self, run: &Run) -> RunSummary {
        // The earlier of the run's start time and its first step's: the HYDRA trainer's
        // `start_time` is its report's time, written when the run ended.
        let first = self
            .summary
            .first_timestamp
            .as_deref()
            .and_then(parse_iso8601);
        let start = match (run.start_time.as_deref().and_then(parse_iso8601), first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let end = run.end_time.as_deref().and_then(parse_iso8601).or_else(|| {
            self.summary
                .last_timestamp
                .as_deref()
                .and_then(parse_iso8601)
        });
        self.summary.elapsed_seconds = match (start, end) {
            (Some(a), Some(b)) if b >= a => Some(b - a),
            _ => None,
        };
        self.summary.tokens_estimate = self.saw_token_columns.then_some(self.tokens);
        if let (Some(&(s0, t0)), Some(&(s1, t1))) = (self.recent.front(), self.recent.back()) {
            if t1 > t0 && s1 > s0 {
                let rate = (s1 - s0) as f64 / (t1 - t0);
                self.summary.steps_per_second = Some(rate);
                self.summary.eta_seconds =
                    self.max_steps.map(|max| (max - s1).max(0) as f64 / rate);
            }
        }
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: i64, loss: Option<f64>, ts: &str) -> Step {
        Step {
            step: n,
            run_id: "r".into(),
            model_id: "m".into(),
            timestamp: Some(ts.into()),
            loss_total: loss,
            loss_ce: None,
            loss_aux: None,
            loss_ponder: None,
            loss_advantage: None,
            lr: None,
            grad_norm: None,
            grad_norm_pre_clip: None,
            ema_short: None,
            ema_medium: None,
            ema_long: None,
            tokens_per_sec: Some(12_000.0),
            vram_gb: Some(22.5),
            batch_size: Some(8),
            seq_len: Some(512),
            nonfinite: Default::default(),
        }
    }

    fn run(config: &str) -> Run {
        Run {
            run_id: "r".into(),
            model_id: "m".into(),
            start_step: Some(0),
            end_step: Some(0),
            start_time: Some("2026-01-09T14:00:00".into()),
            end_time: None,
            total_tokens: None,
            best_loss: None,
            best_loss_step: None,
            config_json: Some(config.into()),
            state: None,
            last_seen: None,
            node: None,
        }
    }

    #[test]
    fn best_loss_skips_nan_and_inf_and_counts_them() {
        let r = run(r#"{"log_interval": 10, "grad_accum_steps": 2}"#);
        let mut b = SummaryBuilder::new(&r.config());
        b.push(&step(0, Some(5.0), "2026-01-09T14:00:00"));
        b.push(&step(10, None, "2026-01-09T14:00:06"));
        b.push(&step(20, Some(f64::INFINITY), "2026-01-09T14:00:12"));
        b.push(&step(30, Some(3.0), "2026-01-09T14:00:18"));
        b.push(&step(40, Some(4.0), "2026-01-09T14:01:00"));
        let s = b.finish(&r);
        assert_eq!(s.step_count, 5);
        assert_eq!((s.best_loss, s.best_loss_step), (Some(3.0), Some(30)));
        assert_eq!(s.nonfinite_losses, 2);
        assert_eq!((s.first_step, s.last_step), (Some(0), Some(40)));
        assert_eq!(s.last_loss, Some(4.0));
        assert_eq!(s.elapsed_seconds, Some(60.0));
        // Five rows, each covering 10 optimizer steps of 8 × 512 tokens × 2 accumulation.
        assert_eq!(s.tokens_estimate, Some(5.0 * 10.0 * 8.0 * 512.0 * 2.0));
    }

    #[test]
    fn log_lines_without_sizes_count_tokens_at_the_size_last_recorded() {
        // A run read from its log: a line every 25 steps, sizes only in the diagnostics
        // record every 100 steps (the first at step 0).
        let r = run(r#"{"log_interval": 25, "grad_accum_steps": 4}"#);
        let mut b = SummaryBuilder::new(&r.config());
        for n in (0..=1000).step_by(25) {
            let mut s = step(n, Some(3.0), "2026-01-09T14:00:00");
            if n % 100 != 0 {
                (s.batch_size, s.seq_len) = (None, None);
            }
            b.push(&s);
        }
        // 25 for the first row, then 25 per row after it: 1,025 steps of 8 × 512 × 4.
        assert_eq!(
            b.finish(&r).tokens_estimate,
            Some(1025.0 * 8.0 * 512.0 * 4.0)
        );
    }

    #[test]
    fn eta_uses_the_step_rate_of_the_last_five_minutes() {
        let r = run(r#"{"max_steps": 10000}"#);
        let mut b = SummaryBuilder::new(&r.config());
        // An hour at 1 step/s, then the last ten minutes at 2 steps/s.
        let mut step = 0;
        for second in 0..4200 {
            let ts = crate::analysis::time::format_iso8601(1_767_970_800.0 + second as f64);
            b.push(&step_at(step, &ts));
            step += if second < 3600 { 1 } else { 2 };
        }
        let s = b.finish(&r);
        let rate = s.steps_per_second.unwrap();
        assert!((rate - 2.0).abs() < 1e-9, "{rate}");
        let last = s.last_step.unwrap();
        assert_eq!(s.eta_seconds, Some((10_000 - last) as f64 / 2.0));
    }

    fn step_at(n: i64, ts: &str) -> Step {
        step(n, Some(3.0), ts)
    }

    #[test]
    fn an_empty_run_has_no_numbers() {
        let r = run("not json");
        let s = SummaryBuilder::new(&r.config()).finish(&r);
        assert_eq!(s.step_count, 0);
        assert_eq!(s.best_loss, None);
        assert_eq!(s.tokens_estimate, None);
        assert_eq!(s.elapsed_seconds, None);
        assert_eq!(s.eta_seconds, None);
    }
}
