//! Router analysis: MoD heatmap cells, MoR depth per layer and collapse detection, MoE
//! utilisation, each reduced to what a chart of a given width can show.

use super::depth_shares::{self, Shares};
use super::downsample::m4_points;
use super::push_lean;
use crate::model::{
    Collapse, CollapseDetector, CollapseKind, Flicker, LayerDepth, ModCell, RoutingCharts,
    RoutingHealth, RoutingMod, RoutingMoe, RoutingMor, RunConfig, Streak,
};
use std::collections::BTreeMap;

/// `avg_depth` within this of `mor_min_depth` counts as collapsed…
pub const COLLAPSE_TOLERANCE: f64 = 0.05;
/// …when it stays there for this many consecutive records.
pub const COLLAPSE_RECORDS: usize = 10;

/// A MoD layer within this of its capacity is on target…
pub const MOD_ON_TARGET: f64 = 0.05;
/// …within this it is drifting; beyond, it is off (the heatmap's red).
pub const MOD_DRIFTING: f64 = 0.10;

/// Where a MoD layer's selection stands against its capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModZone {
    /// The router is not on yet (the trainer's `DISABLED_PRE_ENABLE`: it selects everything).
    Warmup,
    OnTarget,
    Drifting,
    Off,
}

/// The zone of a selected fraction: the trainer's word first — its warm-up is not off
/// target, and its `DRIFTING` is at least drifting — then the distance from capacity.
pub fn mod_zone(selected_frac: f64, status: Option<&str>, capacity: f64) -> ModZone {
    let said = status.unwrap_or("").to_ascii_lowercase();
    let warming = ["warmup", "warm_up", "pre_enable", "disabled"]
        .iter()
        .any(|w| said.contains(w));
    let drifting = said.contains("drift");
    let off = (selected_frac - capacity).abs();
    match () {
        _ if warming => ModZone::Warmup,
        _ if off <= MOD_ON_TARGET && !drifting => ModZone::OnTarget,
        _ if off <= MOD_DRIFTING || (drifting && off <= MOD_ON_TARGET) => ModZone::Drifting,
        _ => ModZone::Off,
    }
}

/// The depth-share strip's columns at most: a stack of depths per column and layer, read
/// at a glance, not point by point.
pub const SHARE_COLUMNS: usize = 120;

/// A record of a model without MoE: the trainer's loader writes a `routing_moe` row for
/// every record anyway, with every utilisation 0 (or none at all). That is "no MoE", not a
/// router sending nothing to any expert.
pub fn no_moe(r: &RoutingMoe) -> bool {
    [
        r.util_expert_0,
        r.util_expert_1,
        r.util_expert_2,
        r.util_expert_3,
    ]
    .iter()
    .all(|u| u.is_none_or(|u| u == 0.0))
}

/// One MoD record, compact: a long run has millions (no ids, status interned).
#[derive(Clone, Copy, Debug)]
struct ModRecord {
    step: i64,
    layer: i32,
    status: u16,
    selected_frac: f64,
    compute_savings_pct: f64,
}

#[derive(Clone, Copy, Debug)]
struct MorRecord {
    step: i64,
    layer: i32,
    avg_depth: f64,
    expected_depth: f64,
    shares: Shares,
}

#[derive(Clone, Copy, Debug)]
struct MoeRecord {
    step: i64,
    /// entropy, divergence, then each expert's utilisation.
    values: [f64; 6],
}

/// A run's routing rows held compactly, fed in step order, with collapse detection carried
/// along: what the run cache keeps so a page or a zoom never re-reads them.
#[derive(Clone, Debug, Default)]
pub struct RoutingState {
    mods: Vec<ModRecord>,
    mors: Vec<MorRecord>,
    moes: Vec<MoeRecord>,
    /// Interned `status` strings (a handful of distinct values).
    statuses: Vec<String>,
    detector: CollapseDetector,
    /// Collapsed stretches too short to be collapses, in the order they ended.
    flickers: Vec<Flicker>,
    mod_capacity: Option<f64>,
    min_depth: f64,
}

fn nan_if_none(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn none_if_nan(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

impl RoutingState {
    pub fn new(config: &RunConfig) -> Self {
        Self {
            mod_capacity: config.number("mod_capacity"),
            min_depth: config.number("mor_min_depth").unwrap_or(1.0),
            ..Default::default()
        }
    }

    /// The newest step of each table (for telling a new row from a re-logged one).
    pub fn last_steps(&self) -> (Option<i64>, Option<i64>, Option<i64>) {
        (
            self.mods.last().map(|r| r.step),
            self.mors.last().map(|r| r.step),
            self.moes.last().map(|r| r.step),
        )
    }

    fn intern(&mut self, status: Option<&str>) -> u16 {
        let Some(status) = status else {
            return u16::MAX;
        };
        match self.statuses.iter().position(|s| s == status) {
            Some(i) => i as u16,
            // A trainer writing thousands of distinct statuses gets the rest unnamed.
            None if self.statuses.len() < u16::MAX as usize - 1 => {
                self.statuses.push(status.to_string());
                (self.statuses.len() - 1) as u16
            }
            None => u16::MAX,
        }
    }

    pub fn push_mod(&mut self, r: &RoutingMod) {
        let status = self.intern(r.status.as_deref());
        push_lean(
            &mut self.mods,
            ModRecord {
                step: r.step,
                layer: r.layer as i32,
                status,
                selected_frac: nan_if_none(r.selected_frac),
                compute_savings_pct: nan_if_none(r.compute_savings_pct),
            },
        );
    }

    pub fn push_mor(&mut self, r: &RoutingMor) {
        if let Some(flicker) = self.detector.push(r, self.min_depth) {
            self.flickers.push(flicker);
        }
        push_lean(
            &mut self.mors,
            MorRecord {
                step: r.step,
                layer: r.layer as i32,
                avg_depth: nan_if_none(r.avg_depth),
                expected_depth: nan_if_none(r.expected_depth),
                shares: r
                    .depth_histogram
                    .as_deref()
                    .and_then(Shares::of_histogram)
                    .unwrap_or_default(),
            },
        );
    }

    /// Folds in an MoE record; the all-zero records a model without MoE gets are not MoE
    /// data (see [`no_moe`]).
    pub fn push_moe(&mut self, r: &RoutingMoe) {
        if no_moe(r) {
            return;
        }
        push_lean(
            &mut self.moes,
            MoeRecord {
                step: r.step,
                values: [
                    r.entropy,
                    r.divergence,
                    r.util_expert_0,
                    r.util_expert_1,
                    r.util_expert_2,
                    r.util_expert_3,
                ]
                .map(nan_if_none),
            },
        );
    }

    /// Gives back the room left for growth (after a run's first read, which may be most
    /// of the run).
    pub fn shrink_to_fit(&mut self) {
        self.mods.shrink_to_fit();
        self.mors.shrink_to_fit();
        self.moes.shrink_to_fit();
    }

    pub fn heap_bytes(&self) -> usize {
        self.mods.capacity() * std::mem::size_of::<ModRecord>()
            + self.mors.capacity() * std::mem::size_of::<MorRecord>()
            + self.moes.capacity() * std::mem::size_of::<MoeRecord>()
            + self.flickers.capacity() * std::mem::size_of::<Flicker>()
    }

    /// The routing charts for the steps in `range` (all when `None`), `columns` wide.
    pub fn charts(&self, range: Option<(i64, i64)>, columns: usize) -> RoutingCharts {
        let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
        let mods = in_range(&self.mods, |r| r.step, lo, hi);
        let mors = in_range(&self.mors, |r| r.step, lo, hi);
        let moes = in_range(&self.moes, |r| r.step, lo, hi);
        let steps = mods
            .iter()
            .map(|r| r.step)
            .chain(mors.iter().map(|r| r.step))
            .chain(moes.iter().map(|r| r.step));
        let (first_step, last_step) =
            steps.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
        let (first_step, last_step) = if first_step > last_step {
            (0, 0)
        } else {
            (first_step, last_step)
        };
        let mut layers: Vec<i64> = mods
            .iter()
            .map(|r| r.layer as i64)
            .chain(mors.iter().map(|r| r.layer as i64))
            .collect();
        layers.sort_unstable();
        layers.dedup();
        let moe_series = |k: usize| -> crate::model::Points {
            let steps: Vec<i64> = moes.iter().map(|r| r.step).collect();
            let values: Vec<f64> = moes.iter().map(|r| r.values[k]).collect();
            m4_points(&steps, &values, columns)
        };
        let mut collapses: Vec<Collapse> = self
            .detector
            .found
            .iter()
            .filter(|c| c.since_step <= hi && c.recovered_step.is_none_or(|r| r >= lo))
            .cloned()
            .collect();
        collapses.sort_by_key(|c| (c.layer, c.since_step));
        RoutingCharts {
            first_step,
            last_step,
            mod_cells: self.mod_cells(
                mods,
                self.mod_capacity.unwrap_or(0.5),
                first_step,
                last_step,
                columns,
            ),
            mor_depth: layer_depths(mors, columns),
            mor_shares: depth_shares::columns(
                mors.iter().map(|r| (r.step, r.layer as i64, r.shares)),
                (first_step, last_step),
                columns.min(SHARE_COLUMNS),
            ),
            collapses,
            flickers: merge_flickers(
                self.flickers
                    .iter()
                    .filter(|f| f.since_step <= hi && f.until_step >= lo),
                (last_step - first_step) / columns.max(1) as i64,
            ),
            collapse_detector: self.detector.clone(),
            layers,
            mod_capacity: self.mod_capacity,
            mor_min_depth: self.min_depth,
            moe_util: if moes.is_empty() {
                Vec::new()
            } else {
                (2..6).map(moe_series).collect()
            },
            moe_entropy: moe_series(0),
            moe_divergence: moe_series(1),
            // The run's steps know the clock; the store adds it.
            clock: Vec::new(),
        }
    }

    /// The heatmap: steps cut into at most `columns` equal ranges; per range and layer, the
    /// value farthest from `capacity` (an average would hide a layer that misbehaved
    /// briefly).
    fn mod_cells(
        &self,
        rows: &[ModRecord],
        capacity: f64,
        first: i64,
        last: i64,
        columns: usize,
    ) -> Vec<ModCell> {
        // i128: steps may sit anywhere in i64, and their span must not overflow.
        let columns = columns.max(1) as i128;
        let span = (last as i128 - first as i128).max(0) + 1;
        let width = ((span + columns - 1) / columns).max(1);
        // Per (column, layer): the record farthest from capacity.
        let mut cells: BTreeMap<(i64, i64), (i64, i64, ModRecord)> = BTreeMap::new();
        for r in rows {
            let frac = r.selected_frac;
            if !frac.is_finite() {
                continue;
            }
            let column = (r.step as i128 - first as i128) / width;
            let step_lo = (first as i128 + column * width) as i64;
            let step_hi = (first as i128 + (column + 1) * width - 1).min(last as i128) as i64;
            let cell = cells
                .entry((column as i64, r.layer as i64))
                .or_insert((step_lo, step_hi, *r));
            if (frac - capacity).abs() > (cell.2.selected_frac - capacity).abs() {
                cell.2 = *r;
            }
        }
        cells
            .into_values()
            .map(|(step_lo, step_hi, r)| ModCell {
                step_lo,
                step_hi,
                layer: r.layer as i64,
                selected_frac: r.selected_frac,
                compute_savings_pct: none_if_nan(r.compute_savings_pct),
                status: self.statuses.get(r.status as usize).cloned(),
            })
            .collect()
    }
}

/// The records of `rows` (in step order) with steps in `lo..=hi`.
fn in_range<T>(rows: &[T], step: fn(&T) -> i64, lo: i64, hi: i64) -> &[T] {
    let a = rows.partition_point(|r| step(r) < lo);
    let b = rows.partition_point(|r| step(r) <= hi);
    &rows[a..b.max(a)]
}

/// One layer's depth records, column by column.
#[derive(Default)]
struct DepthColumns {
    steps: Vec<i64>,
    avg: Vec<f64>,
    expected: Vec<f64>,
}

fn layer_depths(rows: &[MorRecord], columns: usize) -> Vec<LayerDepth> {
    let mut by_layer: BTreeMap<i64, DepthColumns> = BTreeMap::new();
    for r in rows {
        let c = by_layer.entry(r.layer as i64).or_default();
        c.steps.push(r.step);
        c.avg.push(r.avg_depth);
        c.expected.push(r.expected_depth);
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

/// `flickers` merged per layer where they lie closer than `gap` steps (a chart column), so
/// a chart draws at most a mark per layer and column however many there were.
pub fn merge_flickers<'a>(flickers: impl Iterator<Item = &'a Flicker>, gap: i64) -> Vec<Flicker> {
    let mut by_layer: BTreeMap<i64, Vec<Flicker>> = BTreeMap::new();
    for f in flickers {
        let merged = by_layer.entry(f.layer).or_default();
        match merged.last_mut() {
            Some(last) if f.since_step - last.until_step <= gap => {
                last.until_step = last.until_step.max(f.until_step);
            }
            _ => merged.push(*f),
        }
    }
    by_layer.into_values().flatten().collect()
}

impl CollapseDetector {
    /// Folds in one MoR record. A layer has collapsed when it stays collapsed — by the
    /// trainer's status (any "collaps…") or at the depth floor — for `COLLAPSE_RECORDS`
    /// records in a row: the trainer's statuses flicker during ramp-up, and a flicker is not
    /// a collapse. Returns the flicker this record ended, if it ended one.
    pub fn push(&mut self, r: &RoutingMor, min_depth: f64) -> Option<Flicker> {
        // The trainer's status, else its rule on the record's histogram (the database keeps
        // only the status).
        let said = r
            .status
            .as_deref()
            .and_then(CollapseKind::of_status)
            .or_else(|| {
                r.depth_histogram
                    .as_deref()
                    .and_then(CollapseKind::of_histogram)
            });
        let at_floor = r
            .avg_depth
            .is_some_and(|d| (d - min_depth).abs() <= COLLAPSE_TOLERANCE);
        if said.is_some() || at_floor {
            let streak = self.streaks.entry(r.layer).or_insert(Streak {
                records: 0,
                since: r.step,
                last: r.step,
                reported: false,
                kind: None,
            });
            streak.records += 1;
            streak.last = r.step;
            streak.kind = said.or(streak.kind);
            if !streak.reported && streak.records >= COLLAPSE_RECORDS {
                self.found.push(Collapse {
                    layer: r.layer,
                    since_step: streak.since,
                    recovered_step: None,
                    kind: streak.kind.unwrap_or_default(),
                });
                streak.reported = true;
            }
        } else if let Some(streak) = self.streaks.remove(&r.layer) {
            if streak.reported {
                if let Some(c) = self
                    .found
                    .iter_mut()
                    .rev()
                    .find(|c| c.layer == r.layer && c.recovered_step.is_none())
                {
                    c.recovered_step = Some(r.step);
                }
            } else {
                return Some(Flicker {
                    layer: r.layer,
                    since_step: streak.since,
                    until_step: streak.last,
                });
            }
        }
        None
    }
}

/// A run's routing health from its newest records (`mods`, `mors`, `moes`, in step order),
/// as the compare page sets runs side by side: the mean MoD selection, the MoR layers
/// collapsed at the end (the same detection as the charts), the MoE imbalance.
pub fn health(
    config: &RunConfig,
    mods: &[RoutingMod],
    mors: &[RoutingMor],
    moes: &[RoutingMoe],
) -> RoutingHealth {
    let mut state = RoutingState::new(config);
    mors.iter().for_each(|r| state.push_mor(r));
    let selected: Vec<f64> = mods
        .iter()
        .filter_map(|r| r.selected_frac)
        .filter(|v| v.is_finite())
        .collect();
    let mut layers: Vec<i64> = mors.iter().map(|r| r.layer).collect();
    layers.sort_unstable();
    layers.dedup();
    let shares: Vec<f64> = moes
        .iter()
        .rev()
        .find(|r| !no_moe(r))
        .map(|r| {
            [
                r.util_expert_0,
                r.util_expert_1,
                r.util_expert_2,
                r.util_expert_3,
            ]
            .into_iter()
            .flatten()
            .filter(|v| v.is_finite())
            .collect()
        })
        .unwrap_or_default();
    let (lo, hi) = shares
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), u| (lo.min(*u), hi.max(*u)));
    RoutingHealth {
        run_id: String::new(),
        mod_selected: (!selected.is_empty())
            .then(|| selected.iter().sum::<f64>() / selected.len() as f64),
        mod_capacity: state.mod_capacity,
        mor_collapsed: state
            .charts(None, 1)
            .collapses
            .iter()
            .filter(|c| c.recovered_step.is_none())
            .map(|c| (c.layer, c.since_step))
            .collect(),
        mor_layers: layers.len(),
        // JSON has no infinity: an expert without tokens is said as such.
        moe_imbalance: (shares.len() > 1 && lo > 0.0).then(|| hi / lo),
        moe_starved: shares.len() > 1 && lo <= 0.0,
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
            depth_histogram: None,
        }
    }

    #[test]
    fn health_names_the_layers_collapsed_at_the_end_the_mean_selection_and_the_imbalance() {
        let mut mors = Vec::new();
        for i in 0..40 {
            let step = i * 50;
            mors.push(mor(step, 0, if step >= 1000 { 1.0 } else { 2.2 }, "ok"));
            mors.push(mor(
                step,
                1,
                if (500..1500).contains(&step) {
                    1.0
                } else {
                    2.0
                },
                "ok",
            ));
        }
        let mods: Vec<RoutingMod> = [0.4, 0.6, f64::NAN]
            .into_iter()
            .map(|f| RoutingMod {
                selected_frac: Some(f),
                ..Default::default()
            })
            .collect();
        let moe = |u: [f64; 4]| RoutingMoe {
            util_expert_0: Some(u[0]),
            util_expert_1: Some(u[1]),
            util_expert_2: Some(u[2]),
            util_expert_3: Some(u[3]),
            entropy: Some(1.2),
            ..Default::default()
        };
        let moes = [moe([40.0, 20.0, 20.0, 20.0]), moe([30.0, 30.0, 25.0, 15.0])];
        let config = RunConfig::parse(Some(r#"{"mod_capacity": 0.5}"#));
        let h = health(&config, &mods, &mors, &moes);
        assert_eq!(h.mor_collapsed, vec![(0, 1000)], "layer 1 recovered");
        assert_eq!(h.mor_layers, 2);
        assert_eq!((h.mod_selected, h.mod_capacity), (Some(0.5), Some(0.5)));
        assert_eq!(h.moe_imbalance, Some(2.0), "the newest record: 30 over 15");
        assert!(!h.moe_starved);
        let starved = health(&config, &[], &[], &[moe([50.0, 50.0, 0.0, 0.0])]);
        assert_eq!((starved.moe_imbalance, starved.moe_starved), (None, true));
        let none = health(&RunConfig::Missing, &[], &[], &[]);
        assert_eq!(
            (none.mod_selected, none.moe_imbalance, none.mor_layers),
            (None, None, 0)
        );
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
                    recovered_step: None,
                    kind: CollapseKind::AtMinimum,
                },
                Collapse {
                    layer: 2,
                    since_step: 500,
                    recovered_step: Some(1500),
                    kind: CollapseKind::AtMinimum,
                },
            ]
        );
    }

    /// Issue 13: a flicker is kept for the chart to draw faintly: each stretch too short to
    /// be a collapse, merged per layer to the chart's columns.
    #[test]
    fn brief_collapsed_stretches_are_flickers_merged_to_the_columns() {
        let mut state = RoutingState::new(&RunConfig::parse(None));
        for i in 0..200_i64 {
            let step = i * 100;
            // Layer 3 flickers for one record every 10th record; layer 4 dips for five
            // records once; layer 5 collapses for good at 15,000.
            let flicker = if i % 10 == 5 {
                "DEPTH_COLLAPSED_MAX"
            } else {
                "OK"
            };
            state.push_mor(&mor(step, 3, 2.0, flicker));
            let dip = if (40..45).contains(&i) { 1.0 } else { 2.0 };
            state.push_mor(&mor(step, 4, dip, "OK"));
            let collapsed = if step >= 15_000 { 1.0 } else { 2.0 };
            state.push_mor(&mor(step, 5, collapsed, "OK"));
        }
        let wide = state.charts(None, 1_000);
        let of = |charts: &RoutingCharts, layer: i64| -> Vec<(i64, i64)> {
            charts
                .flickers
                .iter()
                .filter(|f| f.layer == layer)
                .map(|f| (f.since_step, f.until_step))
                .collect()
        };
        assert_eq!(
            of(&wide, 3).len(),
            20,
            "every flicker, at a column per 20 steps"
        );
        assert_eq!(of(&wide, 3)[0], (500, 500));
        assert_eq!(of(&wide, 4), vec![(4_000, 4_400)]);
        assert!(of(&wide, 5).is_empty(), "a collapse is not a flicker");
        assert_eq!(wide.collapses.len(), 1);
        // Ten columns of 2,000 steps: layer 3's flickers, 1,000 apart, become one mark.
        let narrow = state.charts(None, 10);
        assert_eq!(of(&narrow, 3), vec![(500, 19_500)]);
        // A zoom keeps the ones inside it.
        let zoom = state.charts(Some((3_000, 6_000)), 1_000);
        assert_eq!(
            of(&zoom, 3),
            vec![(3_500, 3_500), (4_500, 4_500), (5_500, 5_500)]
        );
    }

    /// Issue 13: the trainer's `DEPTH_COLLAPSED_*` statuses flicker during ramp-up (147
    /// "collapses" on one healthy run); a status counts like the depth rule, when it lasts.
    #[test]
    fn the_trainers_status_counts_when_it_lasts_and_names_the_kind() {
        let mut rows = vec![mor(0, 3, 2.0, "OK")];
        // Flickers: a record or two at a time, many times.
        for i in 0..30 {
            let status = if i % 3 == 0 {
                "DEPTH_COLLAPSED_MAX"
            } else {
                "OK"
            };
            rows.push(mor(50 + i * 50, 3, 2.0, status));
        }
        assert!(
            collapses(&rows, 1.0).is_empty(),
            "flickers are not collapses"
        );
        // Then twelve records in a row.
        for i in 0..12 {
            rows.push(mor(5_000 + i * 50, 3, 2.0, "DEPTH_COLLAPSED_EARLY"));
        }
        assert_eq!(
            collapses(&rows, 1.0),
            vec![Collapse {
                layer: 3,
                since_step: 5_000,
                recovered_step: None,
                kind: CollapseKind::EarlyExit,
            }]
        );
        assert!(
            collapses(&[mor(0, 0, 1.0, "ok")], 1.0).is_empty(),
            "one record is not a collapse"
        );
        assert_eq!(
            CollapseKind::of_status("collapsed"),
            Some(CollapseKind::FixedDepth)
        );
        assert_eq!(
            CollapseKind::of_status("DEPTH_COLLAPSED"),
            Some(CollapseKind::FixedDepth)
        );
        assert_eq!(CollapseKind::of_status("OK"), None);
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
        let config = RunConfig::parse(Some(r#"{"mod_capacity": 0.5}"#));
        let cells =
            crate::analysis::oracle::prepare_routing(&rows, &[], &[], &config, 10).mod_cells;
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

    /// Issue 13: a model without MoE gets an all-zero `routing_moe` row per record from the
    /// trainer's loader; that used to draw four flat lines and "⚠ imbalanced".
    #[test]
    fn all_zero_moe_records_are_no_moe() {
        let moe = |step: i64, utils: [Option<f64>; 4]| RoutingMoe {
            step,
            run_id: "r".into(),
            model_id: "m".into(),
            entropy: Some(0.0),
            divergence: Some(0.0),
            util_expert_0: utils[0],
            util_expert_1: utils[1],
            util_expert_2: utils[2],
            util_expert_3: utils[3],
        };
        let config = RunConfig::parse(None);
        let zeros: Vec<RoutingMoe> = (0..50).map(|i| moe(i * 100, [Some(0.0); 4])).collect();
        let charts = crate::analysis::oracle::prepare_routing(&[], &[], &zeros, &config, 10);
        assert!(charts.moe_util.is_empty() && charts.moe_entropy.is_empty());
        assert!(no_moe(&moe(0, [None; 4])));
        let real = moe(5_000, [Some(40.0), Some(20.0), Some(20.0), Some(20.0)]);
        assert!(!no_moe(&real));
        let mut with_real = zeros.clone();
        with_real.push(real);
        let charts = crate::analysis::oracle::prepare_routing(&[], &[], &with_real, &config, 10);
        assert_eq!(charts.moe_util.len(), 4);
        assert_eq!(charts.moe_util[0], vec![(5_000, 40.0)]);
    }
}
