//! A min/max pyramid over one metric of a run, so M4 downsampling of any step range costs
//! O(buckets · log n) instead of a pass over every point — and returns exactly the points
//! [`m4_indices`](super::downsample::m4_indices) would.
//!
//! Level 0 holds, for each block of [`BLOCK`] values, the index of its lowest and of its
//! highest finite value; each level above pairs up the blocks below. A range query scans
//! the ragged ends value by value and climbs the levels for the aligned middle, like a
//! segment tree. Each block keeps its extremes' values beside their indices, so climbing the
//! levels never reaches back into the values (a cache miss each, which dominated). About
//! 1.5 bytes per value, against eight for the values themselves.

use super::downsample::m4_buckets;

/// Values per level-0 block.
pub const BLOCK: usize = 32;
/// "No finite value in this block."
const NONE: u32 = u32::MAX;

/// The lowest and highest finite value of a block, with their indices.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Extremes {
    min_i: u32,
    max_i: u32,
    min: f64,
    max: f64,
}

const EMPTY: Extremes = Extremes {
    min_i: NONE,
    max_i: NONE,
    min: 0.0,
    max: 0.0,
};

impl Extremes {
    fn of(i: usize, v: f64) -> Self {
        Self {
            min_i: i as u32,
            max_i: i as u32,
            min: v,
            max: v,
        }
    }

    /// Both sides combined: lower (higher) value wins, the earlier index on a tie, as
    /// `m4_indices` picks.
    fn join(self, o: Self) -> Self {
        let (min_i, min) = match (self.min_i, o.min_i) {
            (NONE, _) => (o.min_i, o.min),
            (_, NONE) => (self.min_i, self.min),
            _ if o.min < self.min || (o.min == self.min && o.min_i < self.min_i) => {
                (o.min_i, o.min)
            }
            _ => (self.min_i, self.min),
        };
        let (max_i, max) = match (self.max_i, o.max_i) {
            (NONE, _) => (o.max_i, o.max),
            (_, NONE) => (self.max_i, self.max),
            _ if o.max > self.max || (o.max == self.max && o.max_i < self.max_i) => {
                (o.max_i, o.max)
            }
            _ => (self.max_i, self.max),
        };
        Self {
            min_i,
            max_i,
            min,
            max,
        }
    }
}

/// Values `offset..offset + values.len()` of a column, indexed as the whole column is: what
/// a query needs of a column whose older values are kept on disk (`analysis::held`).
#[derive(Clone, Copy, Debug)]
pub struct Window<'a> {
    pub offset: usize,
    pub values: &'a [f64],
}

impl<'a> Window<'a> {
    /// The whole column.
    pub fn whole(values: &'a [f64]) -> Self {
        Self { offset: 0, values }
    }

    /// One past the last index held.
    pub fn end(&self) -> usize {
        self.offset + self.values.len()
    }

    /// Value `i` of the column; `i` must lie within the window.
    pub fn get(&self, i: usize) -> f64 {
        self.values[i - self.offset]
    }
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Pyramid {
    /// `levels[k][b]`: the extremes of block `b` of size `BLOCK · 2^k`.
    levels: Vec<Vec<Extremes>>,
    /// Indices of NaN/Inf values, ascending: a bucket keeps its first one.
    nonfinite: Vec<u32>,
    /// Values covered so far.
    len: usize,
}

impl Pyramid {
    pub fn new(values: &[f64]) -> Self {
        let mut p = Self::default();
        p.extend(values);
        p
    }

    /// Takes in `values[self.len..]`: the values appended since the last call.
    pub fn extend(&mut self, values: &[f64]) {
        self.extend_window(Window::whole(values));
    }

    /// Takes in the values appended since the last call, from a window of the column that
    /// begins no later than the block the last call ended in.
    pub fn extend_window(&mut self, values: Window) {
        let start = self.len;
        debug_assert!(
            values.offset <= start / BLOCK * BLOCK,
            "the window starts too late"
        );
        for i in start..values.end() {
            if !values.get(i).is_finite() {
                self.nonfinite.push(i as u32);
            }
        }
        self.len = values.end();
        // Recompute every block touched by the new values, level by level.
        let mut first_block = start / BLOCK;
        let mut blocks = self.len.div_ceil(BLOCK);
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        let level0 = &mut self.levels[0];
        reserve_lean(level0, blocks);
        level0.resize(blocks, EMPTY);
        for (b, cell) in level0.iter_mut().enumerate().skip(first_block) {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(self.len));
            *cell = scan(&values, lo..hi);
        }
        let mut k = 0;
        while blocks > 1 {
            let below = blocks;
            blocks = below.div_ceil(2);
            first_block /= 2;
            if self.levels.len() <= k + 1 {
                self.levels.push(Vec::new());
            }
            let (lower, upper) = self.levels.split_at_mut(k + 1);
            let (lower, upper) = (&lower[k], &mut upper[0]);
            reserve_lean(upper, blocks);
            upper.resize(blocks, EMPTY);
            for (b, cell) in upper.iter_mut().enumerate().skip(first_block) {
                let r = lower.get(2 * b + 1).copied().unwrap_or(EMPTY);
                *cell = lower[2 * b].join(r);
            }
            k += 1;
        }
        self.levels.truncate(k + 1);
    }

    /// Indices of the lowest and highest finite value in `values[i..j]`; the window must
    /// hold `i..j`.
    pub fn min_max(&self, values: &Window, i: usize, j: usize) -> (Option<usize>, Option<usize>) {
        let j = j.min(self.len);
        if i >= j {
            return (None, None);
        }
        let (mut bi, mut bj) = (i.div_ceil(BLOCK), j / BLOCK);
        let e = if bi >= bj {
            scan(values, i..j)
        } else {
            let mut left = scan(values, i..bi * BLOCK);
            let mut right = scan(values, bj * BLOCK..j);
            let mut level = 0;
            while bi < bj {
                let blocks = &self.levels[level];
                if bi % 2 == 1 {
                    left = left.join(blocks[bi]);
                    bi += 1;
                }
                if bj % 2 == 1 {
                    bj -= 1;
                    right = blocks[bj].join(right);
                }
                bi /= 2;
                bj /= 2;
                level += 1;
            }
            left.join(right)
        };
        let some = |x: u32| (x != NONE).then_some(x as usize);
        (some(e.min_i), some(e.max_i))
    }

    /// The first NaN/Inf index in `i..j`.
    pub fn first_nonfinite(&self, i: usize, j: usize) -> Option<usize> {
        let at = self.nonfinite.partition_point(|x| (*x as usize) < i);
        self.nonfinite
            .get(at)
            .map(|x| *x as usize)
            .filter(|x| *x < j)
    }

    /// Whether this is the pyramid of a column of `len` values, shaped as `extend` leaves
    /// it: a pyramid read back from disk is checked before any query indexes with it.
    pub fn fits(&self, len: usize) -> bool {
        let index_ok = |i: u32| i == NONE || (i as usize) < len;
        let mut blocks = len.div_ceil(BLOCK);
        for (k, level) in self.levels.iter().enumerate() {
            if level.len() != blocks || (k > 0 && level.len() == self.levels[k - 1].len()) {
                return false;
            }
            if !level.iter().all(|e| index_ok(e.min_i) && index_ok(e.max_i)) {
                return false;
            }
            blocks = blocks.div_ceil(2);
        }
        self.len == len
            && (len == 0 || self.levels.last().is_some_and(|l| l.len() == 1))
            && self.nonfinite.windows(2).all(|w| w[0] < w[1])
            && self.nonfinite.last().is_none_or(|&i| (i as usize) < len)
    }

    pub fn shrink_to_fit(&mut self) {
        self.levels.iter_mut().for_each(Vec::shrink_to_fit);
        self.nonfinite.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.levels
            .iter()
            .map(|l| l.capacity() * std::mem::size_of::<Extremes>())
            .sum::<usize>()
            + self.nonfinite.capacity() * 4
    }
}

/// Room for `len` blocks, growing by an eighth (see `push_lean`).
fn reserve_lean<T>(v: &mut Vec<T>, len: usize) {
    if len > v.capacity() {
        v.reserve_exact((len - v.len()).max(v.len() / 8 + 64));
    }
}

/// The extremes of `values[range]`, value by value.
fn scan(values: &Window, range: std::ops::Range<usize>) -> Extremes {
    let mut e = EMPTY;
    let end = range.end.min(values.end());
    for i in range.start.max(values.offset)..end {
        let v = values.get(i);
        if v.is_finite() {
            e = e.join(Extremes::of(i, v));
        }
    }
    e
}

/// [`m4_indices`](super::downsample::m4_indices) of `steps[a..b]` through the pyramid:
/// the same indices (into the whole slice), at a cost that follows `buckets`, not `b - a`.
/// `values` must hold `a..b`.
pub fn m4_range(
    steps: &[i64],
    values: Window,
    pyramid: &Pyramid,
    a: usize,
    b: usize,
    buckets: usize,
) -> Vec<usize> {
    let b = b.min(values.end());
    m4_buckets(steps, a, b, buckets, |start, end| {
        let (min_i, max_i) = pyramid.min_max(&values, start, end);
        [min_i, max_i, pyramid.first_nonfinite(start, end)]
    })
}

#[cfg(test)]
mod tests {
    use super::super::downsample::m4_indices;
    use super::*;

    /// A deterministic noisy series with gaps in the steps, NaNs, infinities and plateaus.
    fn series(n: usize, seed: u64) -> (Vec<i64>, Vec<f64>) {
        let mut x = seed;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut step = 0_i64;
        let mut steps = Vec::new();
        let mut values = Vec::new();
        for _ in 0..n {
            step += 1 + (next() % 3 == 0) as i64 * (next() % 5) as i64;
            steps.push(step);
            let r = next() % 1000;
            values.push(match r {
                0..=4 => f64::NAN,
                5 => f64::INFINITY,
                6..=60 => 2.0, // ties: the earliest must win, as in m4_indices
                _ => (r as f64).sqrt(),
            });
        }
        (steps, values)
    }

    #[test]
    fn the_pyramid_picks_exactly_what_a_full_pass_picks() {
        for (n, seed) in [(1, 1), (17, 2), (1000, 3), (40_000, 4)] {
            let (steps, values) = series(n, seed);
            let p = Pyramid::new(&values);
            for buckets in [1, 3, 100, 700, 5000] {
                for (a, b) in [(0, n), (n / 3, n / 2 + 1), (n / 7, n)] {
                    let expected: Vec<usize> = m4_indices(&steps[a..b], &values[a..b], buckets)
                        .into_iter()
                        .map(|i| i + a)
                        .collect();
                    assert_eq!(
                        m4_range(&steps, Window::whole(&values), &p, a, b, buckets),
                        expected,
                        "n {n} buckets {buckets} range {a}..{b}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pyramid_grown_in_pieces_equals_one_built_at_once() {
        let (steps, values) = series(10_000, 9);
        let mut grown = Pyramid::default();
        let mut end = 0;
        for piece in [1, 15, 16, 17, 1000, 3, 8948] {
            end += piece;
            grown.extend(&values[..end]);
        }
        assert_eq!(end, values.len());
        let whole = Pyramid::new(&values);
        assert_eq!(grown.levels, whole.levels);
        assert_eq!(grown.nonfinite, whole.nonfinite);
        assert_eq!(
            m4_range(&steps, Window::whole(&values), &grown, 0, 10_000, 300),
            m4_indices(&steps, &values, 300)
        );
    }

    #[test]
    fn the_tallest_spike_and_the_latest_point_are_always_kept() {
        let (steps, mut values) = series(100_000, 5);
        values[71_234] = 1e6;
        let p = Pyramid::new(&values);
        let keep = m4_range(&steps, Window::whole(&values), &p, 0, values.len(), 2000);
        assert!(keep.contains(&71_234));
        assert_eq!(keep.last(), Some(&99_999));
        assert!(keep.len() <= 5 * 2000 + 1);
    }
}
