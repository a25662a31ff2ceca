//! Router analysis: MoD heatmap cells, MoR depth per layer and collapse detection, MoE
//! utilisation, each reduced to what a chart of a given width can show.

use super::downsample::m4_points;
use crate::model::{
    Collapse, LayerDepth, ModCell, RoutingCharts, RoutingMod, RoutingMoe, RoutingMor, RunConfig,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `avg_depth` within this of `mor_min_depth` counts as collapsed…
pub const COLLAPSE_TOLERANCE: f64 = 0.05;
/// …when it stays there for this many consecutive records.
pub const COLLAPSE_RECORDS: usize = 10;

/// Builds every routing chart's data from a run's rows (each sorted by step, then layer).
pub fn prepare(
    mod_rows: &[RoutingMod],
    mor_rows: &[RoutingMor],
    moe_rows: &[RoutingMoe],
    config: &RunConfig,
    columns: usize,
) -> RoutingCharts {
    let steps = mod_rows
        .iter()
        .map(|r| r.step)
        .chain(mor_rows.iter().map(|r| r.step))
        .chain(moe_rows.iter().map(|r| r.step));
    let (first_step, last_step) =
        steps.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
    let (first_step, last_step) = if first_step > last_step {
        (0, 0)
    } else {
        (first_step, last_step)
    };
    let mut layers: Vec<i64> = mod_rows
        .iter()
        .map(|r| r.layer)
        .chain(mor_rows.iter().map(|r| r.layer))
        .collect();
    layers.sort_unstable();
    layers.dedup();
    let mod_capacity = config.number("mod_capacity");
    let mor_min_depth = config.number("mor_min_depth").unwrap_or(1.0);

    let moe_series = |f: fn(&RoutingMoe) -> Option<f64>| -> crate::model::Points {
        let steps: Vec<i64> = moe_rows.iter().map(|r| r.step).collect();
        let values: Vec<f64> = moe_rows.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect();
        m4_points(&steps, &values, columns)
    };
    let moe_util = if moe_rows.is_empty() {
        Vec::new()
    } else {
        vec![
            moe_series(|r| r.util_expert_0),
            moe_series(|r| r.util_expert_1),
            moe_series(|r| r.util_expert_2),
            moe_series(|r| r.util_expert_3),
        ]
    };
    let mut detector = CollapseDetector::default();
    for r in mor_rows {
        detector.push(r, mor_min_depth);
    }
    detector.found.sort_by_key(|c| (c.layer, c.since_step));
    RoutingCharts {
        first_step,
        last_step,
        mod_cells: mod_cells(
            mod_rows,
            mod_capacity.unwrap_or(0.5),
            first_step,
            last_step,
            columns,
        ),
        mor_depth: layer_depths(mor_rows, columns),
        collapses: detector.found.clone(),
        collapse_detector: detector,
        layers,
        mod_capacity,
        mor_min_depth,
        moe_util,
        moe_entropy: moe_series(|r| r.entropy),
        moe_divergence: moe_series(|r| r.divergence),
    }
}

/// The heatmap: steps cut into at most `columns` equal ranges; per range and layer, the value
/// farthest from `capacity` (an average would hide a layer that misbehaved briefly).
fn mod_cells(
    rows: &[RoutingMod],
    capacity: f64,
    first: i64,
    last: i64,
    columns: usize,
) -> Vec<ModCell> {
    // i128: steps may sit anywhere in i64, and their span must not overflow.
    let columns = columns.max(1) as i128;
    let span = (last as i128 - first as i128).max(0) + 1;
    let width = ((span + columns - 1) / columns).max(1);
    let mut cells: BTreeMap<(i64, i64), ModCell> = BTreeMap::new();
    for r in rows {
        let Some(frac) = r.selected_frac.filter(|f| f.is_finite()) else {
            continue;
        };
        let column = (r.step as i128 - first as i128) / width;
        let step_lo = (first as i128 + column * width) as i64;
        let step_hi = (first as i128 + (column + 1) * width - 1).min(last as i128) as i64;
        let cell = cells
            .entry((column as i64, r.layer))
            .or_insert_with(|| ModCell {
                step_lo,
                step_hi,
                layer: r.layer,
                selected_frac: frac,
                compute_savings_pct: r.compute_savings_pct,
                status: r.status.clone(),
            });
        if (frac - capacity).abs() > (cell.selected_frac - capacity).abs() {
            cell.selected_frac = frac;
            cell.compute_savings_pct = r.compute_savings_pct;
            cell.status = r.status.clone();
        }
    }
    cells.into_values().collect()
}

/// One layer's depth records, column by column.
#[derive(Default)]
struct DepthColumns {
    steps: Vec<i64>,
    avg: Vec<f64>,
    expected: Vec<f64>,
}

fn layer_depths(rows: &[RoutingMor], columns: usize) -> Vec<LayerDepth> {
    let mut by_layer: BTreeMap<i64, DepthColumns> = BTreeMap::new();
    for r in rows {
        let c = by_layer.entry(r.layer).or_default();
        c.steps.push(r.step);
        c.avg.push(r.avg_depth.unwrap_or(f64::NAN));
        c.expected.push(r.expected_depth.unwrap_or(f64::NAN));
    }
    by_layer
        .into_iter()
        .map(|(layer, c)| LayerDepth {
            layer,
            avg_depth: m4_points(&c.steps, &c.avg, columns),
            expected_depth: m4_points(&c.steps, &c.expected, columns),
        })
        .collect()
}

/// Collapsed stretches per layer:  `avg_depth` within `COLLAPSE_TOLERANCE` of `min_depth`
/// for at least `COLLAPSE_RECORDS` consecutive records, or the trainer's own `status` saying
/// so ("collapsed", any case). A stretch starts at its first record.
pub fn collapses(rows: &[RoutingMor], min_depth: f64) -> Vec<Collapse> {
    let mut detector = CollapseDetector::default();
    for r in rows {
        detector.push(r, min_depth);
    }
    detector.found.sort_by_key(|c| (c.layer, c.since_step));
    detector.found
}

/// [`collapses`] one record at a time, so the live page continues exactly where the server's
/// pass over the run stopped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CollapseDetector {
    pub found: Vec<Collapse>,
    /// Per layer: records in the current stretch at the floor, the step it began, and
    /// whether it was reported.
    streaks: BTreeMap<i64, (usize, i64, bool)>,
}

impl CollapseDetector {
    pub fn push(&mut self, r: &RoutingMor, min_depth: f64) {
        let said = r
            .status
            .as_deref()
            .is_some_and(|s| s.to_ascii_lowercase().contains("collaps"));
        let at_floor = r
            .avg_depth
            .is_some_and(|d| (d - min_depth).abs() <= COLLAPSE_TOLERANCE);
        if said || at_floor {
            let streak = self.streaks.entry(r.layer).or_insert((0, r.step, false));
            streak.0 += 1;
            if !streak.2 && (said || streak.0 >= COLLAPSE_RECORDS) {
                self.found.push(Collapse {
                    layer: r.layer,
                    since_step: streak.1,
                    recovered_step: None,
                });
                streak.2 = true;
            }
        } else if let Some((_, _, reported)) = self.streaks.remove(&r.layer) {
            if reported {
                if let Some(c) = self
                    .found
                    .iter_mut()
                    .rev()
                    .find(|c| c.layer == r.layer && c.recovered_step.is_none())
                {
                    c.recovered_step = Some(r.step);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mor(step: i64, layer: i64, depth: f64, status: &str) -> RoutingMor {
        RoutingMor {
            step,
            run_id: "r".into(),
            model_id: "m".into(),
            layer,
            avg_depth: Some(depth),
            expected_depth: Some(depth + 0.1),
            router_probs_mean: None,
            status: Some(status.into()),
        }
    }

    #[test]
    fn a_layer_at_the_floor_for_ten_records_has_collapsed_since_the_first() {
        let mut rows = Vec::new();
        for i in 0..40 {
            let step = i * 50;
            // Layer 0 collapses at step 1000 and stays; layer 1 dips for 5 records only;
            // layer 2 collapses at 500 and recovers at 1500.
            rows.push(mor(step, 0, if step >= 1000 { 1.01 } else { 2.2 }, "ok"));
            rows.push(mor(
                step,
                1,
                if (1000..1250).contains(&step) {
                    1.0
                } else {
                    2.0
                },
                "ok",
            ));
            rows.push(mor(
                step,
                2,
                if (500..1500).contains(&step) {
                    0.97
                } else {
                    2.0
                },
                "ok",
            ));
        }
        assert_eq!(
            collapses(&rows, 1.0),
            vec![
                Collapse {
                    layer: 0,
                    since_step: 1000,
                    recovered_step: None
                },
                Collapse {
                    layer: 2,
                    since_step: 500,
                    recovered_step: Some(1500)
                },
            ]
        );
    }

    #[test]
    fn the_trainers_own_status_counts_at_once() {
        let rows = vec![
            mor(0, 3, 2.0, "ok"),
            mor(50, 3, 2.0, "Collapsed (depth0)"),
            mor(100, 3, 2.0, "collapsed"),
        ];
        assert_eq!(
            collapses(&rows, 1.0),
            vec![Collapse {
                layer: 3,
                since_step: 50,
                recovered_step: None
            }]
        );
        assert!(
            collapses(&[mor(0, 0, 1.0, "ok")], 1.0).is_empty(),
            "one record is not a collapse"
        );
    }

    #[test]
    fn heatmap_cells_keep_the_worst_value_of_their_range() {
        let rows: Vec<RoutingMod> = (0..100)
            .map(|i| RoutingMod {
                step: i * 10,
                run_id: "r".into(),
                model_id: "m".into(),
                layer: 0,
                selected_frac: Some(if i == 37 { 0.9 } else { 0.5 }),
                compute_savings_pct: Some(50.0),
                probs_mean: None,
                probs_std: None,
                status: Some("ok".into()),
            })
            .collect();
        let cells = mod_cells(&rows, 0.5, 0, 990, 10);
        assert_eq!(cells.len(), 10);
        let worst = cells
            .iter()
            .find(|c| (c.step_lo..=c.step_hi).contains(&370))
            .unwrap();
        assert_eq!(
            worst.selected_frac, 0.9,
            "one bad record is not averaged away"
        );
        assert!(cells.iter().filter(|c| c.selected_frac == 0.5).count() == 9);
    }
}
