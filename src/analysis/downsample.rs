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
    let (lo, hi) = (steps[a] as f64, steps[b - 1] as f64);
    let width = ((hi - lo) / buckets as f64).max(f64::MIN_POSITIVE);
    let bucket_of = |s: i64| (((s as f64 - lo) / width) as usize).min(buckets - 1);
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
