//! The adaptive-LR controller's records as the learning-rate chart draws them: its short and
//! long loss EMAs and patience counter downsampled like every series (M4, so no excursion is
//! lost), and every cooldown kept.

use super::downsample::m4_points;
use crate::model::{AdaptiveLr, AdaptiveLrCharts};

/// A run's adaptive-LR records, in step order, as columns.
#[derive(Clone, Debug, Default)]
pub struct AdaptiveLrSeries {
    steps: Vec<i64>,
    short: Vec<f64>,
    long: Vec<f64>,
    patience: Vec<f64>,
    /// Steps where `cooldown_triggered` turned on. The flag may stay on while the cooldown
    /// lasts; its start is the event a person wants to see.
    cooldowns: Vec<i64>,
}

impl AdaptiveLrSeries {
    /// From records in step order; a step logged twice (a resume) keeps its later record.
    pub fn new(records: &[AdaptiveLr]) -> Self {
        let mut s = Self::default();
        let mut cooling = false;
        for (i, r) in records.iter().enumerate() {
            let replaced = records.get(i + 1).is_some_and(|next| next.step == r.step);
            if replaced || s.steps.last().is_some_and(|last| *last >= r.step) {
                continue;
            }
            let value = |v: Option<f64>| v.unwrap_or(f64::NAN);
            s.steps.push(r.step);
            s.short.push(value(r.loss_ema_short));
            s.long.push(value(r.loss_ema_long));
            s.patience.push(value(r.patience_counter.map(|p| p as f64)));
            let on = r.cooldown_triggered.is_some_and(|c| c != 0);
            if on && !cooling {
                s.cooldowns.push(r.step);
            }
            cooling = on;
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn shrink_to_fit(&mut self) {
        self.steps.shrink_to_fit();
        self.short.shrink_to_fit();
        self.long.shrink_to_fit();
        self.patience.shrink_to_fit();
        self.cooldowns.shrink_to_fit();
    }

    /// Bytes held, for the run cache's budget.
    pub fn heap_bytes(&self) -> usize {
        self.steps.capacity() * 8
            + (self.short.capacity() + self.long.capacity() + self.patience.capacity()) * 8
            + self.cooldowns.capacity() * 8
    }

    /// The chart's data for the records in `range` (all when `None`), `width` buckets per
    /// series.
    pub fn charts(&self, range: Option<(i64, i64)>, width: usize) -> AdaptiveLrCharts {
        let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
        let a = self.steps.partition_point(|s| *s < lo);
        let b = self.steps.partition_point(|s| *s <= hi);
        let steps = &self.steps[a..b];
        AdaptiveLrCharts {
            loss_ema_short: m4_points(steps, &self.short[a..b], width),
            loss_ema_long: m4_points(steps, &self.long[a..b], width),
            patience: m4_points(steps, &self.patience[a..b], width),
            cooldowns: self
                .cooldowns
                .iter()
                .copied()
                .filter(|s| (lo..=hi).contains(s))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: i64, short: f64, cooldown: i64) -> AdaptiveLr {
        AdaptiveLr {
            step,
            loss_ema_short: Some(short),
            loss_ema_long: Some(short + 0.1),
            patience_counter: Some(step / 100 % 4),
            cooldown_triggered: Some(cooldown),
        }
    }

    #[test]
    fn a_cooldown_is_marked_where_its_flag_turns_on() {
        let flags = [0, 1, 1, 0, 0, 1, 0];
        let records: Vec<_> = flags
            .iter()
            .enumerate()
            .map(|(i, f)| record(i as i64 * 100, 3.0, *f))
            .collect();
        let s = AdaptiveLrSeries::new(&records);
        assert_eq!(s.charts(None, 100).cooldowns, vec![100, 500]);
        assert_eq!(s.charts(Some((200, 600)), 100).cooldowns, vec![500]);
    }

    #[test]
    fn every_excursion_survives_downsampling_and_nothing_nonfinite_is_drawn() {
        let mut records: Vec<_> = (0..10_000).map(|i| record(i * 100, 3.0, 0)).collect();
        records[4321].loss_ema_short = Some(9.0);
        records[777].loss_ema_short = None;
        records[778].loss_ema_long = Some(f64::NAN);
        let charts = AdaptiveLrSeries::new(&records).charts(None, 100);
        assert!(charts.loss_ema_short.len() <= 400);
        assert!(charts.loss_ema_short.contains(&(432_100, 9.0)));
        assert!(charts.loss_ema_long.iter().all(|p| p.1.is_finite()));
        assert!(!charts.is_empty());
    }

    #[test]
    fn a_repeated_step_keeps_its_later_record_and_no_records_draw_nothing() {
        let s = AdaptiveLrSeries::new(&[record(100, 3.0, 0), record(100, 2.0, 0)]);
        assert_eq!(s.charts(None, 10).loss_ema_short, vec![(100, 2.0)]);
        assert!(AdaptiveLrSeries::new(&[]).charts(None, 10).is_empty());
    }
}
