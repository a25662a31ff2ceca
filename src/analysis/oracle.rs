//! Test oracles: each chart's data computed in one plain pass over a whole run, the way
//! it is defined, for the tests of the incremental code the dashboard runs (`RunState`,
//! `RoutingState`, the live merge) to compare against. Compiled for tests only.

use super::charts::RunColumns;
use super::downsample::m4_points;
use super::loss::{ema, ema_missing, spikes, EMA_ALPHAS, SPIKE_WINDOW};
use super::routing::RoutingState;
use crate::model::{
    NonFinite, RoutingCharts, RoutingMod, RoutingMoe, RoutingMor, RunCharts, RunConfig,
};

/// Everything the three time-series charts need, at most ~4 × `width` points per series.
pub fn prepare(columns: &RunColumns, config: &RunConfig, width: usize) -> RunCharts {
    prepare_from(columns, config, width, i64::MIN)
}

/// As [`prepare`], for the steps from `from_step` on only. The rows before it are history:
/// the spike detector's trailing window and computed EMAs start from them, so a zoomed range
/// flags the same spikes as the whole run does.
fn prepare_from(
    columns: &RunColumns,
    config: &RunConfig,
    width: usize,
    from_step: i64,
) -> RunCharts {
    let ema_computed = columns.ema.iter().all(|e| ema_missing(e));
    let emas: [Vec<f64>; 3] = if ema_computed {
        EMA_ALPHAS.map(|alpha| ema(&columns.loss, alpha))
    } else {
        [0, 1, 2].map(|i| fill_gaps(&columns.ema[i], &columns.loss, EMA_ALPHAS[i]))
    };
    // The first step without a recorded EMA after one with.
    let recorded_at = |j: usize| columns.ema.iter().any(|e| !ema_missing(&[e[j]]));
    let ema_computed_from = (!ema_computed)
        .then(|| {
            let first = (0..columns.steps.len()).find(|&j| recorded_at(j))?;
            (first..columns.steps.len())
                .find(|&j| !recorded_at(j))
                .map(|j| columns.steps[j])
        })
        .flatten();
    let spike_at = spikes(&columns.loss);
    let lo = columns.steps.partition_point(|s| *s < from_step);
    let columns = &RunColumns {
        steps: columns.steps[lo..].to_vec(),
        loss: columns.loss[lo..].to_vec(),
        ema: [0, 1, 2].map(|i| columns.ema[i][lo..].to_vec()),
        lr: columns.lr[lo..].to_vec(),
        grad: columns.grad[lo..].to_vec(),
        grad_pre_clip: columns.grad_pre_clip[lo..].to_vec(),
    };
    let emas = emas.map(|e| e[lo..].to_vec());
    let steps = &columns.steps;
    let diverged = steps
        .iter()
        .zip(&columns.loss)
        .filter_map(|(&s, &l)| match l {
            l if l.is_nan() => Some((s, NonFinite::Nan)),
            l if l == f64::INFINITY => Some((s, NonFinite::Inf)),
            l if l == f64::NEG_INFINITY => Some((s, NonFinite::NegInf)),
            _ => None,
        })
        .collect();
    // The trainer writes 0.0 when it did not record the pre-clip norm.
    let pre_recorded = !columns
        .grad_pre_clip
        .iter()
        .all(|g| !g.is_finite() || *g == 0.0);
    let grad_clip = config.number("grad_clip").filter(|c| *c > 0.0);
    let clipped_share = match (grad_clip, pre_recorded) {
        (Some(clip), true) => {
            let finite: Vec<f64> = columns
                .grad_pre_clip
                .iter()
                .copied()
                .filter(|g| g.is_finite())
                .collect();
            (!finite.is_empty())
                .then(|| finite.iter().filter(|g| **g > clip).count() as f64 / finite.len() as f64)
        }
        _ => None,
    };
    RunCharts {
        first_step: steps.first().copied().unwrap_or(0),
        last_step: steps.last().copied().unwrap_or(0),
        loss: m4_points(steps, &columns.loss, width),
        ema: [0, 1, 2].map(|i| m4_points(steps, &emas[i], width)),
        ema_computed,
        ema_computed_from,
        spikes: spike_at
            .into_iter()
            .filter(|i| *i >= lo)
            .map(|i| (steps[i - lo], columns.loss[i - lo]))
            .collect(),
        diverged,
        lr: m4_points(steps, &columns.lr, width),
        grad_pre_clip: if pre_recorded {
            m4_points(steps, &columns.grad_pre_clip, width)
        } else {
            Vec::new()
        },
        grad_post_clip: m4_points(steps, &columns.grad, width),
        grad_clip,
        clipped_share,
        warmup_steps: config.count("warmup_steps"),
        target_loss: config.number("target_loss"),
        // The full pass is the test oracle for the metrics; the clock is `RunState`'s.
        clock: Vec::new(),
        resumes: Vec::new(),
        adaptive_lr: Default::default(),
        alerts: Vec::new(),
        smoothed: None,
        eval: Vec::new(),
        eval_components: Vec::new(),
        recent_losses: {
            let finite: Vec<f64> = columns
                .loss
                .iter()
                .copied()
                .filter(|l| l.is_finite())
                .collect();
            finite[finite.len().saturating_sub(SPIKE_WINDOW)..].to_vec()
        },
    }
}

/// Builds every routing chart's data from a run's rows (each sorted by step, then layer).
pub fn prepare_routing(
    mod_rows: &[RoutingMod],
    mor_rows: &[RoutingMor],
    moe_rows: &[RoutingMoe],
    config: &RunConfig,
    columns: usize,
) -> RoutingCharts {
    let mut state = RoutingState::new(config);
    mod_rows.iter().for_each(|r| state.push_mod(r));
    mor_rows.iter().for_each(|r| state.push_mor(r));
    moe_rows.iter().for_each(|r| state.push_moe(r));
    state.charts(None, columns)
}

/// A recorded EMA with its gaps (NULL, or 0.0) filled by continuing from the last value,
/// skipping non-finite losses.
fn fill_gaps(recorded: &[f64], loss: &[f64], alpha: f64) -> Vec<f64> {
    let mut state: Option<f64> = None;
    recorded
        .iter()
        .zip(loss)
        .map(|(&r, &l)| {
            if ema_missing(&[r]) {
                if l.is_finite() {
                    state = Some(state.map_or(l, |e| alpha * e + (1.0 - alpha) * l));
                }
                state.unwrap_or(f64::NAN)
            } else {
                state = Some(r);
                r
            }
        })
        .collect()
}
