//! A model's lineage summed up: step counts and losses (`/api/stats`), and the best loss at
//! every multiple of an interval (`/api/milestones`). Fed step by step, or a page at a time
//! by a source that aggregates where its data is; either way the answer is the same.

use crate::model::{Milestones, ModelStats};
use std::collections::BTreeMap;

/// The most milestones one request may produce.
pub const MAX_MILESTONES: i64 = 100_000;

/// [`ModelStats`] built from steps or from pages of them.
#[derive(Clone, Debug, Default)]
pub struct StatsBuilder {
    count: i64,
    min_step: Option<i64>,
    max_step: Option<i64>,
    best: Option<f64>,
    /// Sum and number of the finite losses: NaN and Inf steps are left out of the mean
    /// rather than poisoning it.
    sum: f64,
    finite: i64,
}

impl StatsBuilder {
    /// One step and its loss (NaN or ±Inf when it was not a finite number).
    pub fn push(&mut self, step: i64, loss: f64) {
        let finite = loss.is_finite();
        self.push_page(
            1,
            Some(step),
            Some(step),
            if finite { loss } else { 0.0 },
            i64::from(finite),
            finite.then_some(loss),
        );
    }

    /// A page of `count` steps from `lo` to `hi`: the total, number and lowest of its finite
    /// losses.
    pub fn push_page(
        &mut self,
        count: i64,
        lo: Option<i64>,
        hi: Option<i64>,
        total: f64,
        finite: i64,
        best: Option<f64>,
    ) {
        self.count += count;
        self.min_step = match (self.min_step, lo) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max_step = self.max_step.max(hi);
        self.sum += total;
        self.finite += finite;
        if let Some(b) = best {
            self.best = Some(self.best.map_or(b, |old| old.min(b)));
        }
    }

    pub fn finish(self, model_id: &str, run_count: i64) -> ModelStats {
        ModelStats {
            model_id: model_id.into(),
            step_count: self.count,
            min_step: self.min_step,
            max_step: self.max_step,
            best_loss: self.best,
            avg_loss: (self.finite > 0).then(|| self.sum / self.finite as f64),
            run_count,
        }
    }
}

/// The bucket `step` falls in: `floor(step / interval)`, as the original API's
/// `(step // interval) * interval` key.
pub fn bucket(step: i64, interval: i64) -> i64 {
    step.div_euclid(interval)
}

/// [`Milestones`] built from steps, or from the best loss of each bucket as a source
/// aggregated it.
#[derive(Clone, Debug)]
pub struct MilestoneBuilder {
    interval: i64,
    first: Option<i64>,
    last: Option<i64>,
    best_of: BTreeMap<i64, f64>,
}

impl MilestoneBuilder {
    pub fn new(interval: i64) -> Self {
        Self {
            interval: interval.max(1),
            first: None,
            last: None,
            best_of: BTreeMap::new(),
        }
    }

    /// The model's steps reach from `first` to `last`.
    pub fn steps(&mut self, first: i64, last: i64) {
        self.first = Some(self.first.map_or(first, |f| f.min(first)));
        self.last = Some(self.last.map_or(last, |l| l.max(last)));
    }

    /// Bucket `k`'s best finite loss (a bucket reported twice keeps the lower).
    pub fn best_in(&mut self, k: i64, best: f64) {
        let entry = self.best_of.entry(k).or_insert(best);
        *entry = entry.min(best);
    }

    /// One step and its loss (not finite: counted for the step range only).
    pub fn push(&mut self, step: i64, loss: f64) {
        self.steps(step, step);
        if loss.is_finite() {
            self.best_in(bucket(step, self.interval), loss);
        }
    }

    /// Why the steps seen so far would give too many milestones, if they would.
    pub fn too_many(&self) -> Option<String> {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            return None;
        };
        let interval = self.interval;
        let count = bucket(last, interval) as i128 - bucket(first, interval) as i128 + 1;
        (count > MAX_MILESTONES as i128).then(|| {
            format!(
                "{interval} would give {count} milestones for steps {first}..{last}; at most {MAX_MILESTONES}"
            )
        })
    }

    /// The milestones: for each bucket of `interval` steps that holds a finite loss, keyed
    /// by its first step (`floor(step / interval) · interval`, 0 included), the best loss
    /// within it — the original API's meaning.
    pub fn finish(self, model_id: &str) -> Result<Milestones, String> {
        if let Some(why) = self.too_many() {
            return Err(why);
        }
        let interval = self.interval;
        let milestones = self
            .best_of
            .into_iter()
            .map(|(k, best)| (k.saturating_mul(interval), best))
            .collect();
        Ok(Milestones {
            model_id: model_id.into(),
            interval,
            milestones,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps one by one and the same steps as aggregated pages give the same answers.
    #[test]
    fn steps_and_pages_agree() {
        let losses: Vec<(i64, f64)> = (0..=250)
            .map(|s| {
                (
                    s,
                    if s % 97 == 5 {
                        f64::NAN
                    } else {
                        5.0 - s as f64 / 100.0
                    },
                )
            })
            .collect();
        let (mut one, mut paged) = (StatsBuilder::default(), StatsBuilder::default());
        let (mut m_one, mut m_paged) = (MilestoneBuilder::new(100), MilestoneBuilder::new(100));
        for &(s, l) in &losses {
            one.push(s, l);
            m_one.push(s, l);
        }
        for page in losses.chunks(60) {
            let finite: Vec<f64> = page.iter().map(|p| p.1).filter(|l| l.is_finite()).collect();
            paged.push_page(
                page.len() as i64,
                page.first().map(|p| p.0),
                page.last().map(|p| p.0),
                finite.iter().sum(),
                finite.len() as i64,
                finite.iter().copied().reduce(f64::min),
            );
            m_paged.steps(page[0].0, page[page.len() - 1].0);
            for &(s, l) in page.iter().filter(|p| p.1.is_finite()) {
                m_paged.best_in(bucket(s, 100), l);
            }
        }
        let (a, b) = (one.finish("m", 1), paged.finish("m", 1));
        assert_eq!(a.step_count, 251);
        assert_eq!((a.min_step, a.max_step), (Some(0), Some(250)));
        assert_eq!(a.best_loss, Some(2.5));
        assert_eq!(a.step_count, b.step_count);
        assert!((a.avg_loss.unwrap() - b.avg_loss.unwrap()).abs() < 1e-12);
        let (a, b) = (m_one.finish("m").unwrap(), m_paged.finish("m").unwrap());
        assert_eq!(a, b);
        assert_eq!(
            a.milestones.keys().copied().collect::<Vec<_>>(),
            [0, 100, 200]
        );
        // The best within each bucket, not of all steps before it.
        assert_eq!(a.milestones[&0], 5.0 - 99.0 / 100.0);
        assert_eq!(a.milestones[&100], 5.0 - 198.0 / 100.0, "199 is NaN");
        assert_eq!(a.milestones[&200], 2.5);
    }

    #[test]
    fn too_many_milestones_are_refused() {
        let mut m = MilestoneBuilder::new(1);
        m.push(0, 1.0);
        m.push(1_000_000, 1.0);
        assert!(m.finish("m").unwrap_err().contains("at most 100000"));
    }
}
