//! Loss analysis on full-resolution data, before any downsampling: EMAs the trainer did not
//! record, and the spike detector.

/// The trainer's EMA smoothing factors: ~100, ~1K and ~10K-step windows.
pub const EMA_ALPHAS: [f64; 3] = [0.99, 0.999, 0.9999];

/// Trailing window (logged steps) the spike detector compares each loss against.
pub const SPIKE_WINDOW: usize = 128;
/// How many standard deviations above the trailing mean make a spike.
pub const SPIKE_SIGMAS: f64 = 6.0;
/// A window this full is needed before anything is called a spike (warm-up noise is not).
const SPIKE_MIN_WINDOW: usize = 32;

/// An EMA of `losses` as the trainer computes it: seeded with the first finite loss, and
/// holding its value across NaN/Inf steps rather than being poisoned by them.
pub fn ema(losses: &[f64], alpha: f64) -> Vec<f64> {
    let mut current: Option<f64> = None;
    losses
        .iter()
        .map(|&x| {
            if x.is_finite() {
                current = Some(current.map_or(x, |c| alpha * c + (1.0 - alpha) * x));
            }
            current.unwrap_or(f64::NAN)
        })
        .collect()
}

/// True when a recorded EMA column is empty: the trainer writes 0.0 (or nothing) when it did
/// not track that EMA, and a real EMA of a loss is never exactly 0.
pub fn ema_missing(recorded: &[f64]) -> bool {
    recorded.iter().all(|v| !v.is_finite() || *v == 0.0)
}

/// Indices of spikes: a loss more than `SPIKE_SIGMAS` robust standard deviations above the
/// median of the previous `SPIKE_WINDOW` finite losses, the robust σ being 1.4826 × the
/// median absolute deviation. Median and MAD rather than mean and σ because one spike in the
/// window inflates σ enough to hide every spike behind it for the next 128 steps; the median
/// barely moves. The window follows the steady decline, so a falling loss is never flagged.
/// Non-finite losses are not spikes (they are divergence, marked separately) and do not
/// enter the window. Consecutive flagged steps are one event: only its peak is returned.
pub fn spikes(losses: &[f64]) -> Vec<usize> {
    let mut peaks: Vec<usize> = Vec::new();
    let mut previous: Option<usize> = None;
    for i in flagged(losses) {
        match (previous, peaks.last_mut()) {
            (Some(p), Some(peak)) if i == p + 1 => {
                if losses[i] > losses[*peak] {
                    *peak = i;
                }
            }
            _ => peaks.push(i),
        }
        previous = Some(i);
    }
    peaks
}

fn flagged(losses: &[f64]) -> Vec<usize> {
    let mut window = SpikeWindow::default();
    losses
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .filter_map(|(i, &x)| window.judge(x).then_some(i))
        .collect()
}

/// The spike detector's trailing window, kept both in arrival order (to know what leaves)
/// and sorted (for median and MAD), so judging a loss costs O(window), not a sort.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SpikeWindow {
    arrival: std::collections::VecDeque<f64>,
    sorted: Vec<f64>,
    /// Robust standard deviations above the median that make a spike.
    sigmas: f64,
}

impl Default for SpikeWindow {
    fn default() -> Self {
        Self::with_sigmas(SPIKE_SIGMAS)
    }
}

impl SpikeWindow {
    /// A window flagging values more than `sigmas` robust σ above its median (the charts
    /// use [`SPIKE_SIGMAS`]; alerts let a flag set it).
    pub fn with_sigmas(sigmas: f64) -> Self {
        Self {
            arrival: Default::default(),
            sorted: Vec::new(),
            sigmas,
        }
    }

    pub fn sigmas(&self) -> f64 {
        self.sigmas
    }

    /// Whether finite `x` is a spike against the losses before it; then takes it in.
    pub fn judge(&mut self, x: f64) -> bool {
        let spike = exceeds(&self.sorted, x, self.sigmas);
        self.arrival.push_back(x);
        let at = self.sorted.partition_point(|v| *v < x);
        let leaving = if self.arrival.len() > SPIKE_WINDOW {
            self.arrival.pop_front()
        } else {
            None
        };
        match leaving {
            // The oldest loss leaves as `x` comes in: one shift of the values between the
            // two places, not a shift for each (this runs for every logged step of a run).
            Some(old) => {
                let gone = self.sorted.partition_point(|v| *v < old);
                if at <= gone {
                    self.sorted.copy_within(at..gone, at + 1);
                    self.sorted[at] = x;
                } else {
                    self.sorted.copy_within(gone + 1..at, gone);
                    self.sorted[at - 1] = x;
                }
            }
            None => self.sorted.insert(at, x),
        }
        spike
    }

    /// The window's losses, oldest first.
    pub fn losses(&self) -> Vec<f64> {
        self.arrival.iter().copied().collect()
    }

    /// The window's median and the value above which a loss is a spike, once the window
    /// is full enough to judge.
    pub fn band(&self) -> Option<(f64, f64)> {
        if self.sorted.len() < SPIKE_MIN_WINDOW {
            return None;
        }
        let median = median(&self.sorted);
        let sigma = (1.4826 * mad(&self.sorted, median)).max(median.abs() * 1e-3);
        Some((median, median + self.sigmas * sigma))
    }
}

/// Spike events over a run's losses as they arrive: consecutive flagged losses are one event,
/// kept at its peak. The run cache and the compare view judge with this, so both mark the
/// same spikes.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct SpikeEvents {
    window: SpikeWindow,
    /// Row index of the last flagged loss.
    last_flagged: Option<usize>,
    /// Events at their peaks, `(step, loss)`.
    pub events: Vec<(i64, f64)>,
}

impl SpikeEvents {
    /// Judges the finite loss of row `i` (rows counted from 0 in step order).
    pub fn push(&mut self, i: usize, step: i64, loss: f64) {
        if !self.window.judge(loss) {
            return;
        }
        match (self.last_flagged, self.events.last_mut()) {
            (Some(p), Some(peak)) if p + 1 == i => {
                if loss > peak.1 {
                    *peak = (step, loss);
                }
            }
            _ => self.events.push((step, loss)),
        }
        self.last_flagged = Some(i);
    }

    /// The window's losses, oldest first.
    pub fn recent_losses(&self) -> Vec<f64> {
        self.window.losses()
    }
}

/// Whether `x` is a spike against a window of earlier finite losses, sorted ascending.
fn exceeds(sorted: &[f64], x: f64, sigmas: f64) -> bool {
    if sorted.len() < SPIKE_MIN_WINDOW || !x.is_finite() {
        return false;
    }
    let median = median(sorted);
    // A floor on σ: a perfectly flat window must not flag rounding noise.
    let floor = median.abs() * 1e-3;
    // σ is at least the floor, so most losses are cleared without the MAD (this runs for
    // every logged step when a run is read).
    if x <= median + sigmas * floor {
        return false;
    }
    let sigma = (1.4826 * mad(sorted, median)).max(floor);
    x > median + sigmas * sigma
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median absolute deviation from `median` (the slice's own) of a sorted, non-empty
/// slice, in O(log n) without allocating: the deviations left of the middle and those from
/// it rightwards are each sorted, so the middle deviations are order statistics of two
/// sorted sequences, found by bisection.
fn mad(sorted: &[f64], median: f64) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        kth_deviation(sorted, median, n / 2)
    } else {
        (kth_deviation(sorted, median, n / 2 - 1) + kth_deviation(sorted, median, n / 2)) / 2.0
    }
}

/// The `k`-th smallest (from 0) of `|v - median|` over `sorted`, `k < sorted.len()`. Left
/// of the middle (`n / 2`) a deviation is `median - v`, growing leftwards; from the middle
/// on it is `v - median`, growing rightwards. The `k + 1` smallest are the first `i` of the
/// left and the first `k + 1 - i` of the right for the one `i` where neither side's next
/// is smaller than the other's last taken.
fn kth_deviation(sorted: &[f64], median: f64, k: usize) -> f64 {
    let half = sorted.len() / 2;
    let (n_left, n_right) = (half, sorted.len() - half);
    let left = |j: usize| median - sorted[half - 1 - j];
    let right = |j: usize| sorted[half + j] - median;
    let take = k + 1;
    let (mut lo, mut hi) = (take.saturating_sub(n_right), take.min(n_left));
    while lo < hi {
        let i = (lo + hi) / 2;
        if left(i) < right(take - i - 1) {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let (i, j) = (lo, take - lo);
    match (i.checked_sub(1).map(left), j.checked_sub(1).map(right)) {
        (Some(l), Some(r)) => l.max(r),
        (Some(l), None) => l,
        (None, Some(r)) => r,
        (None, None) => f64::NAN, // k < n: never
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy_decline(n: usize) -> Vec<f64> {
        // Deterministic pseudo-noise: no spikes, ±1.5%, on a power-law decline.
        (0..n)
            .map(|i| {
                let base = 2.3 + 8.5 * ((i * 10 + 200) as f64).powf(-0.33);
                base * (1.0 + 0.015 * ((i as f64 * 12.9898).sin() * 43_758.545).fract())
            })
            .collect()
    }

    #[test]
    fn ema_matches_the_trainer_and_skips_nan() {
        let e = ema(&[2.0, 4.0, f64::NAN, 4.0], 0.5);
        assert_eq!(e, vec![2.0, 3.0, 3.0, 3.5]);
        assert!(ema(&[f64::NAN, 1.0], 0.9)[0].is_nan());
        assert!(ema_missing(&[0.0, 0.0, f64::NAN]));
        assert!(!ema_missing(&[0.0, 2.5]));
    }

    #[test]
    fn a_clean_curve_has_no_spikes() {
        assert!(spikes(&noisy_decline(5_000)).is_empty());
    }

    #[test]
    fn finds_the_spikes_and_not_the_nan() {
        let mut loss = noisy_decline(2_000);
        loss[500] += 1.6;
        loss[1500] *= 1.8;
        loss[900] = f64::NAN;
        loss[901] = f64::INFINITY;
        loss[10] += 5.0; // inside the warm-up window: not judged yet
        assert_eq!(spikes(&loss), vec![500, 1500]);
    }

    fn median_and_mad(sorted: &[f64]) -> (f64, f64) {
        let m = median(sorted);
        (m, mad(sorted, m))
    }

    /// The MAD as first written: the two sides' deviations merged outwards from the
    /// middle, one at a time. The oracle for the bisection.
    fn mad_by_walk(sorted: &[f64], median: f64) -> f64 {
        let n = sorted.len();
        let (mut lo, mut hi) = (n / 2, n / 2);
        let (mut before, mut at) = (0.0, 0.0);
        for _ in 0..=n / 2 {
            let left = (lo > 0).then(|| median - sorted[lo - 1]);
            let right = (hi < n).then(|| sorted[hi] - median);
            let next = match (left, right) {
                (Some(l), Some(r)) if l <= r => {
                    lo -= 1;
                    l
                }
                (_, Some(r)) => {
                    hi += 1;
                    r
                }
                (Some(l), None) => {
                    lo -= 1;
                    l
                }
                (None, None) => break,
            };
            (before, at) = (at, next);
        }
        if n % 2 == 1 {
            at
        } else {
            (before + at) / 2.0
        }
    }

    /// A small deterministic generator: windows with ties, outliers and both parities.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn mad_by_bisection_is_the_walks_to_the_bit() {
        let mut seed = 7;
        for n in 1..=130 {
            for round in 0..40 {
                let spread = [3, 10, 1000, 1 << 30][round % 4];
                let mut w: Vec<f64> = (0..n)
                    .map(|_| (lcg(&mut seed) % spread) as f64 * 0.013 + 2.0)
                    .collect();
                if round % 5 == 0 {
                    w[0] += 50.0;
                }
                w.sort_by(f64::total_cmp);
                let m = median(&w);
                let (fast, walk) = (mad(&w, m), mad_by_walk(&w, m));
                assert_eq!(fast.to_bits(), walk.to_bits(), "n={n} round={round}: {w:?}");
            }
        }
    }

    /// The window after each loss is the sorted trailing `SPIKE_WINDOW` losses, and judges
    /// as a window sorted afresh each step would.
    #[test]
    fn the_window_stays_the_sorted_trailing_losses() {
        let mut seed = 11;
        let mut window = SpikeWindow::default();
        let mut losses = Vec::new();
        for i in 0..3_000 {
            let x = match lcg(&mut seed) % 50 {
                0 => 9.0,                                   // a spike
                1 => losses.last().copied().unwrap_or(2.0), // a repeat
                _ => 2.0 + (lcg(&mut seed) % 200) as f64 / 1000.0,
            };
            let mut trailing: Vec<f64> =
                losses[losses.len().saturating_sub(SPIKE_WINDOW)..].to_vec();
            trailing.sort_by(f64::total_cmp);
            let expect = exceeds(&trailing, x, SPIKE_SIGMAS);
            assert_eq!(window.judge(x), expect, "loss {i}");
            losses.push(x);
            let mut now: Vec<f64> = losses[losses.len().saturating_sub(SPIKE_WINDOW)..].to_vec();
            now.sort_by(f64::total_cmp);
            assert_eq!(window.sorted, now, "after loss {i}");
        }
    }

    #[test]
    fn median_and_mad_are_exact() {
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 100.0];
        assert_eq!(median_and_mad(&v), (3.0, 1.0));
        v.push(5.0);
        v.sort_by(f64::total_cmp);
        // median 3.5; deviations 0.5 0.5 1.5 1.5 2.5 96.5 → MAD 1.5
        assert_eq!(median_and_mad(&v), (3.5, 1.5));
        for n in 1..40 {
            let mut w: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 / 10.0).collect();
            w.sort_by(f64::total_cmp);
            let (median, mad) = median_and_mad(&w);
            let mut devs: Vec<f64> = w.iter().map(|x| (x - median).abs()).collect();
            devs.sort_by(f64::total_cmp);
            let expect = if n % 2 == 1 {
                devs[n / 2]
            } else {
                (devs[n / 2 - 1] + devs[n / 2]) / 2.0
            };
            assert!((mad - expect).abs() < 1e-12, "n={n}: {mad} vs {expect}");
        }
    }

    #[test]
    fn a_spike_soon_after_another_is_still_found() {
        // The bug this guards: with mean ± σ, the first spike's decay sat in the window and
        // inflated σ so far that a second, equally tall spike 50 steps later went unflagged.
        let mut loss = noisy_decline(1_000);
        for start in [300, 350] {
            for k in 0..40 {
                loss[start + k] += 1.6 * (-(k as f64) / 4.0).exp();
            }
        }
        assert_eq!(spikes(&loss), vec![300, 350]);
    }

    #[test]
    fn a_decaying_spike_is_one_event_marked_at_its_peak() {
        let mut loss = noisy_decline(1_000);
        for (k, bump) in [0.9, 1.6, 1.2, 0.8, 0.5].iter().enumerate() {
            loss[600 + k] += bump;
        }
        assert_eq!(spikes(&loss), vec![601]);
    }
}
