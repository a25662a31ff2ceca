//! The smoothing slider's curve: TensorBoard's debiased exponential moving average, over
//! every logged point in step order.
//!
//! `last = w·last + (1−w)·v; smoothed = last / (1 − w^n)` after the `n`-th finite value.
//! Dividing by `1 − w^n` removes the pull towards the zero `last` starts at, so the curve
//! begins on the data instead of rising from 0. A NaN or ±Inf value is passed through and
//! left out of the average (the divergence stays visible, the curve after it is not
//! poisoned); a series whose values are all equal is returned as is, as TensorBoard does,
//! so rounding never draws a wobble on a flat line. W&B uses the same formula.
//!
//! The server smooths the full-resolution series and downsamples the result: the curve is
//! then the same at every zoom, where smoothing the downsampled points (as the peers do)
//! would change it with the zoom.

/// The highest weight the slider offers: at 1 the average would never move.
pub const MAX_WEIGHT: f64 = 0.999;

/// A smoothing weight from a request or a slider, within `0..=MAX_WEIGHT`; `None` for one
/// outside it or not a number.
pub fn weight(w: f64) -> Option<f64> {
    (0.0..=MAX_WEIGHT).contains(&w).then_some(w)
}

/// The weight a link's `?smoothing=W` gives, when it is one (a page opened from a copied
/// address); anything else is no weight, and the page shows its default.
pub fn linked_weight(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().and_then(weight)
}

/// [`weight`], or what is wrong with it, in the words every answer about a bad smoothing
/// weight uses (REST, server functions, snapshots).
pub fn checked_weight(w: f64) -> Result<f64, String> {
    weight(w).ok_or_else(|| format!("must be between 0 and {MAX_WEIGHT}, got {w}"))
}

/// The smoothed series, value for value.
pub fn smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let mut s = Smoother::new(weight);
    values.iter().map(|&v| s.push(v)).collect()
}

/// The running average, one value at a time, so a series that grows is smoothed once.
#[derive(Clone, Copy, Debug)]
pub struct Smoother {
    weight: f64,
    last: f64,
    /// `weight^n` after `n` finite values: kept as a product rather than a `powi` per value.
    power: f64,
    /// The first finite value while every one since equals it: TensorBoard returns a
    /// constant series as is, and so does this while the series is flat so far (a point at
    /// a time cannot know the whole series).
    flat: Option<f64>,
    seen: bool,
}

impl Smoother {
    pub fn new(weight: f64) -> Self {
        Self {
            weight,
            last: 0.0,
            power: 1.0,
            flat: None,
            seen: false,
        }
    }

    /// The smoothed value at `v`.
    pub fn push(&mut self, v: f64) -> f64 {
        if !v.is_finite() {
            return v;
        }
        self.last = self.last * self.weight + (1.0 - self.weight) * v;
        // `weight^n` ends at 0 rather than in the subnormals: a weight over 0.5 keeps it at
        // the smallest one for ever (4.9e-324 · w rounds back up), where every multiply
        // costs ~100 cycles — 9× the rest of the smoothing. Below ε², `1 - power` is 1.0
        // anyway: no value changes.
        self.power = match self.power * self.weight {
            p if p < f64::EPSILON * f64::EPSILON => 0.0,
            p => p,
        };
        if !self.seen {
            self.seen = true;
            self.flat = Some(v);
        } else if self.flat != Some(v) {
            self.flat = None;
        }
        match self.flat {
            Some(v) => v,
            // At weight 0 the division is by 1: the data itself.
            None => self.last / (1.0 - self.power),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0) || (x.is_nan() && y.is_nan()),
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn the_debiasing_power_reaches_zero_instead_of_the_subnormals() {
        for w in [0.3, 0.5, 0.51, 0.6, 0.9, 0.999] {
            let mut s = Smoother::new(w);
            for i in 0..200_000 {
                s.push(3.0 + (i % 7) as f64);
            }
            assert_eq!(s.power, 0.0, "weight {w}");
        }
    }

    #[test]
    fn matches_a_sequence_worked_by_hand() {
        // w = 0.5: last = 0.5·0 + 0.5·2 = 1, over 1 − 0.5 → 2; last = 0.5·1 + 0.5·4 = 2.5,
        // over 1 − 0.25 → 10/3; last = 0.5·2.5 + 0.5·6 = 4.25, over 1 − 0.125 → 34/7.
        close(
            &smooth(&[2.0, 4.0, 6.0], 0.5),
            &[2.0, 10.0 / 3.0, 34.0 / 7.0],
        );
    }

    #[test]
    fn matches_tensorboards_formula_written_out() {
        let values: Vec<f64> = (0..500)
            .map(|i| 3.0 + ((i * 7919) % 101) as f64 / 50.0)
            .collect();
        for w in [0.0, 0.3, 0.6, 0.9, 0.99, 0.999] {
            // As TensorBoard's line chart writes it: `1 - Math.pow(w, numAccum)`.
            let mut last = 0.0;
            let expected: Vec<f64> = values
                .iter()
                .enumerate()
                .map(|(n, v)| {
                    last = last * w + (1.0 - w) * v;
                    last / (1.0 - f64::powi(w, n as i32 + 1))
                })
                .collect();
            close(&smooth(&values, w), &expected);
        }
    }

    #[test]
    fn a_nan_passes_through_and_the_curve_goes_on_after_it() {
        let s = smooth(&[1.0, f64::NAN, 3.0, f64::INFINITY, 5.0], 0.5);
        assert!(s[1].is_nan());
        assert_eq!(s[3], f64::INFINITY);
        close(&[s[0], s[2], s[4]], &smooth(&[1.0, 3.0, 5.0], 0.5));
    }

    #[test]
    fn a_flat_line_stays_exactly_flat_and_zero_weight_is_the_data() {
        assert_eq!(smooth(&[0.1; 50], 0.99), vec![0.1; 50]);
        assert_eq!(smooth(&[1.0, 2.0, 0.5], 0.0), vec![1.0, 2.0, 0.5]);
        assert!(smooth(&[], 0.9).is_empty());
    }

    #[test]
    fn weights_outside_the_slider_are_refused() {
        assert_eq!(weight(0.6), Some(0.6));
        assert_eq!(weight(0.0), Some(0.0));
        assert_eq!(weight(0.999), Some(0.999));
        assert_eq!(weight(1.0), None);
        assert_eq!(weight(-0.1), None);
        assert_eq!(weight(f64::NAN), None);
        assert_eq!(
            checked_weight(1.5),
            Err("must be between 0 and 0.999, got 1.5".to_string())
        );
        // From a link: a weight, else nothing (the page's default).
        assert_eq!(linked_weight(" 0.9 "), Some(0.9));
        for text in ["", "NaN", "1", "-0.1", "0.9x", "inf"] {
            assert_eq!(linked_weight(text), None, "{text:?}");
        }
    }
}
