//! M4 downsampling: for each of N equal step-buckets keep the first, last, lowest and highest
//! point, the first NaN/Inf point if there is one (divergence must stay visible), and always
//! the latest point. A chart N pixels wide drawn from these looks exactly
//! like one drawn from every point — every spike and dip survives — while the data stays
//! bounded by 4·N. Never strides or samples: that is how other dashboards hide spikes.

/// Indices (ascending, unique, at most 5 per bucket + 1) of the points to keep from
/// `steps`/`values`, which are sorted by step. Non-finite values are never chosen as extremes,
/// but the first of each bucket is kept so the divergence can be marked.
pub fn m4_indices(steps: &[i64], values: &[f64], buckets: usize) -> Vec<usize> {
    let n = steps.len().min(values.len());
    m4_buckets(steps, 0, n, buckets, |start, end| {
        let (mut min_i, mut max_i, mut bad_i) = (None::<usize>, None::<usize>, None::<usize>);
        for i in start..end {
            let v = values[i];
            if !v.is_finite() {
                bad_i.get_or_insert(i);
                continue;
            }
            if min_i.is_none_or(|m| v < values[m]) {
                min_i = Some(i);
            }
            if max_i.is_none_or(|m| v > values[m]) {
                max_i = Some(i);
            }
        }
        [min_i, max_i, bad_i]
    })
}

/// The M4 rule for `steps[a..b]`, once for every way of finding extremes: the range cut
/// into `buckets` equal step ranges; per bucket its first and last index and what
/// `extremes(start, end)` picks (lowest, highest, first non-finite); always the last index.
/// Raw indices when the range holds no more than `buckets`.
pub fn m4_buckets(
    steps: &[i64],
    a: usize,
    b: usize,
    buckets: usize,
    extremes: impl Fn(usize, usize) -> [Option<usize>; 3],
) -> Vec<usize> {
    let b = b.min(steps.len());
    if a >= b {
        return Vec::new();
    }
    let buckets = buckets.max(1);
    if b - a <= buckets {
        return (a..b).collect();
    }
    let cut = Buckets::new(steps[a], steps[b - 1], buckets);
    let bucket_of = |s: i64| cut.of(s);
    let mut keep = Vec::with_capacity(5 * buckets + 1);
    let mut start = a;
    while start < b {
        let bucket = bucket_of(steps[start]);
        let end = gallop(steps, start + 1, b, |s| bucket_of(s) == bucket);
        let [min_i, max_i, bad_i] = extremes(start, end);
        let mut chosen = [Some(start), min_i, max_i, bad_i, Some(end - 1)];
        chosen.sort_unstable();
        for i in chosen.into_iter().flatten() {
            if keep.last() != Some(&i) {
                keep.push(i);
            }
        }
        start = end;
    }
    if keep.last() != Some(&(b - 1)) {
        keep.push(b - 1);
    }
    keep
}

/// `buckets` equal step ranges from `first` to `last`.
#[derive(Clone, Copy, Debug)]
struct Buckets {
    lo: f64,
    width: f64,
    count: usize,
}

impl Buckets {
    fn new(first: i64, last: i64, count: usize) -> Self {
        let count = count.max(1);
        let (lo, hi) = (first as f64, last as f64);
        Self {
            lo,
            width: ((hi - lo) / count as f64).max(f64::MIN_POSITIVE),
            count,
        }
    }

    fn of(&self, step: i64) -> usize {
        (((step as f64 - self.lo) / self.width) as usize).min(self.count - 1)
    }
}

/// [`m4_indices`] of several series at once, over rows that arrive in step order and are
/// not all kept: how a range too long to hold is downsampled (`/api/metrics` for metrics
/// the run cache does not keep, on a run of millions of steps). The range's first and last
/// step set the buckets, so they must be known before the rows come. Memory follows the
/// buckets, not the rows. Yields the rows the union of every series' `m4_indices` would,
/// or every row when there are no more than `buckets`.
pub struct M4Stream<R> {
    cut: Buckets,
    /// Every row so far, while there are no more than `cut.count`.
    all: Option<Vec<R>>,
    seen: usize,
    open: Option<OpenBucket<R>>,
    kept: Vec<R>,
}

/// The bucket rows are arriving in: its first and last row, and per series the lowest,
/// the highest and the first non-finite value's row, each with its arrival number.
struct OpenBucket<R> {
    bucket: usize,
    first: (usize, R),
    last: (usize, R),
    series: Vec<SeriesExtremes<R>>,
}

struct SeriesExtremes<R> {
    min: Option<(usize, f64, R)>,
    max: Option<(usize, f64, R)>,
    bad: Option<(usize, R)>,
}

impl<R: Clone> M4Stream<R> {
    pub fn new(first_step: i64, last_step: i64, buckets: usize) -> Self {
        Self {
            cut: Buckets::new(first_step, last_step, buckets),
            all: Some(Vec::new()),
            seen: 0,
            open: None,
            kept: Vec::new(),
        }
    }

    /// The next row: its step, its value in each series (NaN when missing), and what to
    /// hand back if it is kept.
    pub fn push(&mut self, step: i64, values: &[f64], row: R) {
        let at = self.seen;
        self.seen += 1;
        if let Some(all) = &mut self.all {
            if all.len() < self.cut.count {
                all.push(row.clone());
            } else {
                self.all = None;
            }
        }
        let bucket = self.cut.of(step);
        if self.open.as_ref().is_some_and(|o| o.bucket != bucket) {
            self.close();
        }
        let open = self.open.get_or_insert_with(|| OpenBucket {
            bucket,
            first: (at, row.clone()),
            last: (at, row.clone()),
            series: values
                .iter()
                .map(|_| SeriesExtremes {
                    min: None,
                    max: None,
                    bad: None,
                })
                .collect(),
        });
        open.last = (at, row.clone());
        for (e, &v) in open.series.iter_mut().zip(values) {
            if !v.is_finite() {
                if e.bad.is_none() {
                    e.bad = Some((at, row.clone()));
                }
                continue;
            }
            // Strictly lower or higher: on ties the earliest row wins, as in `m4_indices`.
            if e.min.as_ref().is_none_or(|m| v < m.1) {
                e.min = Some((at, v, row.clone()));
            }
            if e.max.as_ref().is_none_or(|m| v > m.1) {
                e.max = Some((at, v, row.clone()));
            }
        }
    }

    fn close(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let mut chosen = vec![open.first, open.last];
        for e in open.series {
            chosen.extend(e.min.map(|(i, _, r)| (i, r)));
            chosen.extend(e.max.map(|(i, _, r)| (i, r)));
            chosen.extend(e.bad);
        }
        chosen.sort_by_key(|(i, _)| *i);
        chosen.dedup_by_key(|(i, _)| *i);
        self.kept.extend(chosen.into_iter().map(|(_, r)| r));
    }

    /// The kept rows in step order, and whether the range was downsampled.
    pub fn finish(mut self) -> (Vec<R>, bool) {
        match self.all.take() {
            Some(all) => (all, false),
            None => {
                self.close();
                (self.kept, true)
            }
        }
    }
}

/// The first index in `from..to` whose step leaves the bucket (`to` if none). Galloping from
/// `from` rather than bisecting `from..to`: a bucket is short next to the run, and each probe
/// of a binary search over millions of steps is a cache miss.
fn gallop(steps: &[i64], from: usize, to: usize, inside: impl Fn(i64) -> bool) -> usize {
    let (mut lo, mut width) = (from, 1);
    let hi = loop {
        let probe = lo + width - 1;
        if probe >= to {
            break to;
        }
        if !inside(steps[probe]) {
            break probe;
        }
        lo = probe + 1;
        width *= 2;
    };
    lo + steps[lo..hi].partition_point(|s| inside(*s))
}

/// `(step, value)` pairs of the kept finite points, ready to draw.
pub fn m4_points(steps: &[i64], values: &[f64], buckets: usize) -> Vec<(i64, f64)> {
    m4_indices(steps, values, buckets)
        .into_iter()
        .filter(|&i| values[i].is_finite())
        .map(|i| (steps[i], values[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: i64) -> (Vec<i64>, Vec<f64>) {
        let steps: Vec<i64> = (0..n).map(|s| s * 10).collect();
        let values = steps
            .iter()
            .map(|s| 3.0 + ((*s as f64) / 700.0).sin())
            .collect();
        (steps, values)
    }

    #[test]
    fn small_series_come_back_raw() {
        let (steps, values) = series(50);
        assert_eq!(
            m4_indices(&steps, &values, 100),
            (0..50).collect::<Vec<_>>()
        );
        assert!(m4_indices(&[], &[], 10).is_empty());
    }

    #[test]
    fn output_is_bounded_sorted_and_keeps_ends() {
        let (steps, values) = series(100_000);
        for buckets in [1, 7, 640, 2000] {
            let kept = m4_indices(&steps, &values, buckets);
            assert!(kept.len() <= 5 * buckets + 1, "{buckets}: {}", kept.len());
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
            assert_eq!(kept[0], 0);
            assert_eq!(
                *kept.last().unwrap(),
                steps.len() - 1,
                "the latest step is always kept"
            );
        }
    }

    /// The streaming form keeps exactly the rows the union of `m4_indices` over each
    /// series does, NaNs, infinities, ties and gaps included.
    #[test]
    fn the_stream_keeps_what_m4_indices_keeps() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for (n, buckets) in [
            (0, 5),
            (1, 5),
            (5, 5),
            (6, 5),
            (1000, 1),
            (5000, 37),
            (20_000, 640),
        ] {
            let mut step = 100_i64;
            let steps: Vec<i64> = (0..n)
                .map(|_| {
                    step += 1 + (next() % 4 == 0) as i64 * (next() % 50) as i64;
                    step
                })
                .collect();
            let series: Vec<Vec<f64>> = (0..3)
                .map(|_| {
                    (0..n)
                        .map(|_| match next() % 100 {
                            0 => f64::NAN,
                            1 => f64::NEG_INFINITY,
                            2..=20 => 1.0,
                            r => r as f64,
                        })
                        .collect()
                })
                .collect();
            let mut expected: Vec<usize> = series
                .iter()
                .flat_map(|v| m4_indices(&steps, v, buckets))
                .collect();
            expected.sort_unstable();
            expected.dedup();
            let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
                continue;
            };
            let mut stream = M4Stream::new(first, last, buckets);
            for (i, &s) in steps.iter().enumerate() {
                let values: Vec<f64> = series.iter().map(|v| v[i]).collect();
                stream.push(s, &values, i);
            }
            let (kept, downsampled) = stream.finish();
            assert_eq!(kept, expected, "{n} rows, {buckets} buckets");
            assert_eq!(downsampled, n > buckets);
        }
    }

    #[test]
    fn every_spike_and_dip_survives_at_any_budget() {
        let (steps, mut values) = series(1_000_000);
        let spikes = [12_345, 500_000, 999_998];
        for &i in &spikes {
            values[i] = 50.0 + i as f64 / 1e6;
        }
        values[777_777] = -40.0;
        values[4] = f64::NAN;
        values[600_001] = f64::INFINITY;
        for buckets in [10, 1000, 2000] {
            let kept = m4_indices(&steps, &values, buckets);
            for &i in spikes.iter().chain(&[777_777, 4, 600_001]) {
                assert!(kept.contains(&i), "index {i} lost at {buckets} buckets");
            }
            let points = m4_points(&steps, &values, buckets);
            let tallest = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
            assert_eq!(
                tallest, values[999_998],
                "the tallest spike keeps its full height"
            );
            assert!(points.iter().all(|p| p.1.is_finite()));
        }
    }
}
