//! Wall time and tokens along a run, sampled: what the tooltip says of "when", and what an x
//! axis by time or by tokens reads between steps. Bounded: at most `2 × KEEP` samples (and
//! the newest row) however long the run, by keeping every `k`-th row and doubling `k`.
//! Time and tokens only grow, so samples between them are read by interpolation; nothing
//! rides on an extreme here (unlike the metrics, which are never sampled).

use crate::model::{ClockMark, CompareX};

const KEEP: usize = 2048;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ClockBuilder {
    marks: Vec<ClockMark>,
    every: usize,
    seen: usize,
    last: Option<ClockMark>,
}

impl ClockBuilder {
    pub fn push(&mut self, mark: ClockMark) {
        let every = self.every.max(1);
        if self.seen.is_multiple_of(every) {
            crate::analysis::push_lean(&mut self.marks, mark);
            if self.marks.len() >= 2 * KEEP {
                let mut i = 0;
                self.marks.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.every = every * 2;
            }
        }
        self.seen += 1;
        self.last = Some(mark);
    }

    /// The marks of steps `a..=b`, at most about `n`, always with the first and last.
    pub fn marks(&self, a: i64, b: i64, n: usize) -> Vec<ClockMark> {
        let newest = self
            .last
            .filter(|l| self.marks.last().map(|m| m.step) != Some(l.step));
        let inside: Vec<ClockMark> = self
            .marks
            .iter()
            .chain(newest.iter())
            .filter(|m| (a..=b).contains(&m.step))
            .copied()
            .collect();
        let stride = inside.len().div_ceil(n.max(1)).max(1);
        let mut out: Vec<ClockMark> = inside.iter().step_by(stride).copied().collect();
        if let Some(last) = inside.last().filter(|l| out.last() != Some(l)) {
            out.push(*last);
        }
        out
    }

    pub fn heap_bytes(&self) -> usize {
        self.marks.capacity() * std::mem::size_of::<ClockMark>()
    }
}

/// Keeps a page's clock bounded as the live feed appends to it: past `max` marks, every
/// other one goes (the newest stays).
pub fn bound(marks: &mut Vec<ClockMark>, max: usize) {
    if marks.len() > max {
        let newest = marks.last().copied();
        let mut i = 0;
        marks.retain(|_| {
            i += 1;
            i % 2 == 1
        });
        if let Some(newest) = newest.filter(|n| marks.last() != Some(n)) {
            marks.push(newest);
        }
    }
}

/// Wall time (epoch seconds) and tokens at `step`, read between the marks around it; the
/// nearest end outside them. `None` where the run has no times or token counts.
pub fn clock_at(marks: &[ClockMark], step: i64) -> (Option<f64>, Option<f64>) {
    let field = |get: fn(&ClockMark) -> Option<f64>| -> Option<f64> {
        let known: Vec<(i64, f64)> = marks
            .iter()
            .filter_map(|m| Some((m.step, get(m)?)))
            .collect();
        let i = known.partition_point(|(s, _)| *s < step);
        match (i.checked_sub(1).and_then(|j| known.get(j)), known.get(i)) {
            (_, Some(&(s1, v1))) if s1 == step => Some(v1),
            (Some(&(s0, v0)), Some(&(s1, v1))) => {
                Some(v0 + (v1 - v0) * (step - s0) as f64 / (s1 - s0) as f64)
            }
            (Some(&(_, v)), None) | (None, Some(&(_, v))) => Some(v),
            (None, None) => None,
        }
    };
    (field(|m| m.time), field(|m| m.tokens))
}

/// A step's place on a compare chart's `axis`: the step itself, the tokens seen by then, or
/// the seconds since the run's first timed step — read between marks as [`clock_at`] does,
/// by binary search, since every point of every run goes through here. `None` where the
/// run's clock does not tell.
pub fn x_of(marks: &[ClockMark], axis: CompareX) -> impl Fn(i64) -> Option<i64> + '_ {
    let get: fn(&ClockMark) -> Option<f64> = match axis {
        CompareX::Tokens => |m| m.tokens,
        _ => |m| m.time,
    };
    let known: Vec<(i64, f64)> = marks
        .iter()
        .filter_map(|m| Some((m.step, get(m)?)))
        .collect();
    let origin = match axis {
        CompareX::Time => known.first().map_or(0.0, |k| k.1),
        _ => 0.0,
    };
    move |step| {
        if axis == CompareX::Step {
            return Some(step);
        }
        let i = known.partition_point(|(s, _)| *s < step);
        let v = match (i.checked_sub(1).map(|j| known[j]), known.get(i)) {
            (_, Some(&(s1, v1))) if s1 == step => v1,
            (Some((s0, v0)), Some(&(s1, v1))) => {
                v0 + (v1 - v0) * (step as f64 - s0 as f64) / (s1 as f64 - s0 as f64)
            }
            (Some((_, v)), None) | (None, Some(&(_, v))) => v,
            (None, None) => return None,
        };
        Some((v - origin).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(step: i64) -> ClockMark {
        ClockMark {
            step,
            time: Some(1000.0 + step as f64 * 2.0),
            tokens: Some(step as f64 * 4096.0),
        }
    }

    #[test]
    fn a_long_run_keeps_a_bounded_clock_with_its_newest_step() {
        let mut c = ClockBuilder::default();
        for s in 0..1_000_000 {
            c.push(mark(s));
        }
        assert!(c.marks.len() < 2 * KEEP);
        let all = c.marks(0, 999_999, 300);
        assert!(all.len() <= 302, "{}", all.len());
        assert_eq!(all.first().map(|m| m.step), Some(0));
        assert_eq!(all.last().map(|m| m.step), Some(999_999));
        let part = c.marks(500_000, 600_000, 50);
        assert!(part.iter().all(|m| (500_000..=600_000).contains(&m.step)));
        assert!(part.len() >= 40);
    }

    #[test]
    fn a_live_clock_stays_bounded_with_its_newest_mark() {
        let mut marks = Vec::new();
        for s in 0..10_000 {
            marks.push(mark(s));
            bound(&mut marks, 600);
        }
        assert!(marks.len() <= 601);
        assert_eq!(marks.last().map(|m| m.step), Some(9_999));
        assert_eq!(marks.first().map(|m| m.step), Some(0));
    }

    #[test]
    fn time_and_tokens_are_read_between_marks() {
        let marks = [mark(0), mark(100), mark(300)];
        assert_eq!(clock_at(&marks, 100), (Some(1200.0), Some(409_600.0)));
        assert_eq!(clock_at(&marks, 200), (Some(1400.0), Some(819_200.0)));
        assert_eq!(clock_at(&marks, -5), (Some(1000.0), Some(0.0)), "clamped");
        assert_eq!(clock_at(&marks, 999).0, Some(1600.0));
        let no_times = [ClockMark {
            step: 0,
            time: None,
            tokens: None,
        }];
        assert_eq!(clock_at(&no_times, 0), (None, None));
        assert_eq!(clock_at(&[], 0), (None, None));
    }
}
