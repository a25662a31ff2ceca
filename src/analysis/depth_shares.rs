//! The share of each MoR layer's tokens at each recursion depth, from the diagnostics file's
//! depth histograms: held compactly per record, reduced to a chart's columns.

use crate::model::{DepthShares, ShareColumn};
use std::collections::BTreeMap;

/// Depths kept per record. MoR recurses a handful of times; counts deeper than this join
/// the deepest kept, so no token goes missing from the shares.
pub const MAX_DEPTHS: usize = 8;

/// One record's shares of tokens per depth, in percent; `depths == 0` when it had none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shares {
    depths: u8,
    percent: [u8; MAX_DEPTHS],
}

impl Shares {
    /// A histogram's counts as shares; `None` when it counts nothing (empty, all zero, or
    /// not numbers).
    pub fn of_histogram(counts: &[f64]) -> Option<Self> {
        let counts: Vec<f64> = counts
            .iter()
            .map(|c| if c.is_finite() { c.max(0.0) } else { 0.0 })
            .collect();
        let total: f64 = counts.iter().sum();
        if counts.is_empty() || total <= 0.0 || !total.is_finite() {
            return None;
        }
        let mut s = Self {
            depths: counts.len().min(MAX_DEPTHS) as u8,
            ..Default::default()
        };
        let mut kept = [0.0; MAX_DEPTHS];
        for (depth, c) in counts.iter().enumerate() {
            kept[depth.min(MAX_DEPTHS - 1)] += c;
        }
        for (p, c) in s.percent.iter_mut().zip(kept) {
            *p = (c / total * 100.0).round() as u8;
        }
        Some(s)
    }

    pub fn is_empty(&self) -> bool {
        self.depths == 0
    }

    pub fn percent(&self) -> &[u8] {
        &self.percent[..self.depths as usize]
    }
}

/// Steps cut into at most `columns` equal ranges from `first` to `last` (as the MoD heatmap
/// cuts them); per range and layer, the mean share at each depth of the records in it.
pub fn columns(
    records: impl Iterator<Item = (i64, i64, Shares)>,
    (first, last): (i64, i64),
    columns: usize,
) -> Vec<DepthShares> {
    // i128: steps may sit anywhere in i64, and their span must not overflow.
    let count = columns.max(1) as i128;
    let span = (last as i128 - first as i128).max(0) + 1;
    let width = ((span + count - 1) / count).max(1);
    // Per (layer, column): sums of percent per depth, and how many records.
    let mut sums: BTreeMap<(i64, i64), ([u32; MAX_DEPTHS], u8, u32)> = BTreeMap::new();
    for (step, layer, shares) in records.filter(|r| !r.2.is_empty()) {
        let column = ((step as i128 - first as i128) / width) as i64;
        let sum = sums.entry((layer, column)).or_default();
        for (total, p) in sum.0.iter_mut().zip(shares.percent()) {
            *total += *p as u32;
        }
        sum.1 = sum.1.max(shares.depths);
        sum.2 += 1;
    }
    let mut layers: Vec<DepthShares> = Vec::new();
    for ((layer, column), (totals, depths, n)) in sums {
        if layers.last().is_none_or(|l| l.layer != layer) {
            layers.push(DepthShares {
                layer,
                columns: Vec::new(),
            });
        }
        let lo = first as i128 + column as i128 * width;
        let hi = (lo + width - 1).min(last as i128);
        if let Some(l) = layers.last_mut() {
            l.columns.push(ShareColumn {
                step_lo: lo as i64,
                step_hi: hi as i64,
                percent: totals[..depths as usize]
                    .iter()
                    .map(|t| (*t as f64 / n as f64).round() as u8)
                    .collect(),
            });
        }
    }
    layers
}

/// The live page's append: a record's shares as a column of its own; a layer with more than
/// `max_columns` has its columns merged in pairs, so a page left open stays bounded.
pub fn push_live(
    all: &mut Vec<DepthShares>,
    step: i64,
    layer: i64,
    shares: Shares,
    max_columns: usize,
) {
    if shares.is_empty() {
        return;
    }
    let at = match all.iter().position(|l| l.layer == layer) {
        Some(at) => at,
        None => {
            all.push(DepthShares {
                layer,
                columns: Vec::new(),
            });
            all.sort_by_key(|l| l.layer);
            all.iter().position(|l| l.layer == layer).unwrap_or(0)
        }
    };
    let columns = &mut all[at].columns;
    columns.push(ShareColumn {
        step_lo: step,
        step_hi: step,
        percent: shares.percent().to_vec(),
    });
    if columns.len() > max_columns.max(2) {
        *columns = columns
            .chunks(2)
            .map(|pair| {
                let (a, b) = (&pair[0], pair.last().unwrap_or(&pair[0]));
                let depths = a.percent.len().max(b.percent.len());
                let at = |c: &ShareColumn, d: usize| c.percent.get(d).copied().unwrap_or(0) as u16;
                ShareColumn {
                    step_lo: a.step_lo,
                    step_hi: b.step_hi,
                    percent: (0..depths)
                        .map(|d| ((at(a, d) + at(b, d)) as f64 / 2.0).round() as u8)
                        .collect(),
                }
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_becomes_percent_per_depth() {
        let s = Shares::of_histogram(&[200.0, 500.0, 300.0]).unwrap();
        assert_eq!(s.percent(), [20, 50, 30]);
        assert_eq!(Shares::of_histogram(&[]), None);
        assert_eq!(Shares::of_histogram(&[0.0, 0.0]), None);
        assert_eq!(Shares::of_histogram(&[f64::NAN, f64::INFINITY]), None);
        // Deeper than kept: joins the deepest kept.
        let deep: Vec<f64> = (0..12).map(|d| if d >= 7 { 20.0 } else { 0.0 }).collect();
        let s = Shares::of_histogram(&deep).unwrap();
        assert_eq!(s.percent().len(), MAX_DEPTHS);
        assert_eq!(s.percent()[7], 100);
    }

    #[test]
    fn columns_hold_the_mean_share_of_their_records_per_layer() {
        let a = Shares::of_histogram(&[10.0, 90.0]).unwrap();
        let b = Shares::of_histogram(&[30.0, 70.0]).unwrap();
        let records = vec![(0, 1, a), (0, 0, a), (100, 0, b), (200, 0, b), (300, 0, a)];
        let got = columns(records.into_iter(), (0, 300), 2);
        assert_eq!(got.len(), 2, "one per layer, in layer order");
        assert_eq!(got[0].layer, 0);
        let cols = &got[0].columns;
        assert_eq!((cols[0].step_lo, cols[0].step_hi), (0, 150));
        assert_eq!(cols[0].percent, [20, 80], "the mean of 10/90 and 30/70");
        assert_eq!((cols[1].step_lo, cols[1].step_hi), (151, 300));
        assert_eq!(got[1].columns.len(), 1);
    }

    #[test]
    fn a_live_page_keeps_a_bounded_number_of_columns() {
        let mut all = Vec::new();
        let s = Shares::of_histogram(&[1.0, 3.0]).unwrap();
        for step in 0..1_000 {
            push_live(&mut all, step * 100, 3, s, 50);
            push_live(&mut all, step * 100, 1, s, 50);
        }
        assert_eq!(all.iter().map(|l| l.layer).collect::<Vec<_>>(), [1, 3]);
        let cols = &all[1].columns;
        assert!(cols.len() <= 50, "{}", cols.len());
        assert_eq!(cols[0].step_lo, 0);
        assert_eq!(
            cols.last().unwrap().step_hi,
            99_900,
            "up to the newest record"
        );
        assert_eq!(cols[0].percent, [25, 75]);
    }
}
