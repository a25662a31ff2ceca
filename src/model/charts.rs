//! What the charts draw: downsampled points, MoD cells, MoR depths, collapses, the clock.

use super::{CollapseDetector, NonFinite};
use serde::{Deserialize, Serialize};

/// The wall time (epoch seconds) and tokens seen by a step, where the file tells them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockMark {
    pub step: i64,
    pub time: Option<f64>,
    pub tokens: Option<f64>,
}

/// An alert drawn on a chart: where it was raised, what it was, whether it is still open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertMark {
    pub step: i64,
    pub kind: super::AlertKind,
    pub open: bool,
}

/// `(step, value)` points ready to draw: finite values only, downsampled on the server.
pub type Points = Vec<(i64, f64)>;

/// What the loss, learning-rate and gradient-norm charts of one run draw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCharts {
    pub first_step: i64,
    pub last_step: i64,
    pub loss: Points,
    /// Short, medium and long EMAs (alphas 0.99 / 0.999 / 0.9999).
    pub ema: [Points; 3],
    /// True when the file held no EMAs and the dashboard computed them.
    pub ema_computed: bool,
    /// The file held EMAs, but not from this step on: the trainer's loader stores NULL for
    /// every EMA after a NaN loss. From here the dashboard continues them itself (skipping
    /// non-finite losses), and the legend says so.
    #[serde(default)]
    pub ema_computed_from: Option<i64>,
    /// Losses the spike detector flagged (full resolution, never downsampled away).
    pub spikes: Points,
    /// Steps whose loss was NaN or ±Inf.
    pub diverged: Vec<(i64, NonFinite)>,
    pub lr: Points,
    pub grad_pre_clip: Points,
    pub grad_post_clip: Points,
    /// Config `grad_clip`.
    pub grad_clip: Option<f64>,
    /// Share of steps whose pre-clip norm exceeded `grad_clip`.
    pub clipped_share: Option<f64>,
    /// Config `warmup_steps`.
    pub warmup_steps: Option<i64>,
    /// The loss aimed for (config `target_loss`, else `--target-loss`): a dashed line.
    #[serde(default)]
    pub target_loss: Option<f64>,
    /// Wall time and tokens at sampled steps, for the tooltip and an x axis by either.
    #[serde(default)]
    pub clock: Vec<ClockMark>,
    /// In a lineage of several runs: the step where each resumed run begins, and its label.
    #[serde(default)]
    pub resumes: Vec<(i64, String)>,
    /// The newest finite losses (up to the spike window), oldest first: where the live
    /// page's spike detector picks up.
    #[serde(default)]
    pub recent_losses: Vec<f64>,
    /// The adaptive-LR controller, drawn on the learning-rate chart when the run has one.
    #[serde(default)]
    pub adaptive_lr: AdaptiveLrCharts,
    /// Eval loss at each evaluation (every one: a few thousand in the longest run).
    #[serde(default)]
    pub eval: Points,
    /// Eval loss per component, by name.
    #[serde(default)]
    pub eval_components: Vec<(String, Points)>,
    /// Alerts of the run (of every run of the lineage), drawn at their steps on the loss
    /// chart; filled in by the server from its watcher, and by the live feed.
    #[serde(default)]
    pub alerts: Vec<AlertMark>,
    /// The loss smoothed by the page's slider, when it is on (fetched on its own).
    #[serde(default)]
    pub smoothed: Option<SmoothedLoss>,
}

/// A run's loss smoothed over every step by the server (TensorBoard's debiased EMA, as the
/// compare view smooths), at the steps the loss chart shows for `range`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SmoothedLoss {
    pub run_id: String,
    pub weight: f64,
    /// The zoom it was made for; `None` for the whole run.
    pub range: Option<(i64, i64)>,
    /// The newest step it covers.
    pub last_step: Option<i64>,
    pub points: Points,
}

/// What the adaptive-LR controller did: the two loss EMAs it compares, how patient it still
/// is, and where it cut the learning rate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveLrCharts {
    pub loss_ema_short: Points,
    pub loss_ema_long: Points,
    /// Records without improvement so far (the controller's patience counter).
    pub patience: Points,
    /// Steps where a cooldown began (the record's flag turned on), every one.
    pub cooldowns: Vec<i64>,
}

impl AdaptiveLrCharts {
    /// The run has no adaptive-LR controller (or none in this range).
    pub fn is_empty(&self) -> bool {
        self.loss_ema_short.is_empty() && self.loss_ema_long.is_empty() && self.cooldowns.is_empty()
    }
}

/// One cell of the MoD heatmap: a layer over a range of steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModCell {
    pub step_lo: i64,
    pub step_hi: i64,
    pub layer: i64,
    /// The bucket's value farthest from the capacity target, so no anomaly is averaged away.
    pub selected_frac: f64,
    pub compute_savings_pct: Option<f64>,
    pub status: Option<String>,
}

/// A layer's MoR depth over time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerDepth {
    pub layer: i64,
    pub avg_depth: Points,
    pub expected_depth: Points,
}

/// The share of one MoR layer's tokens at each recursion depth over time, from the
/// diagnostics file's `depth_histogram` (the database drops it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DepthShares {
    pub layer: i64,
    pub columns: Vec<ShareColumn>,
}

/// A layer's depth shares over a range of steps: the mean of its records there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareColumn {
    pub step_lo: i64,
    pub step_hi: i64,
    /// Percent of tokens at depth 0, 1, …, rounded (they sum to about 100).
    pub percent: Vec<u8>,
}

/// A layer whose recursion depth collapsed: it stayed collapsed, by the trainer's status or
/// by sitting at the minimum depth, for a sustained stretch of records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    pub layer: i64,
    /// First step of the collapsed stretch.
    pub since_step: i64,
    /// Step it recovered at; `None` while still collapsed.
    pub recovered_step: Option<i64>,
    /// How it collapsed, as the trainer's status names it.
    #[serde(default)]
    pub kind: CollapseKind,
}

/// A brief stretch of collapsed records that ended before it counted as a collapse (the
/// trainer's statuses flicker during ramp-up): drawn faintly, never warned about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flicker {
    pub layer: i64,
    pub since_step: i64,
    /// The stretch's last collapsed record.
    pub until_step: i64,
}

/// How a MoR layer collapsed. The trainer's statuses say it when more than 90% of tokens sit
/// at one depth; without a status the dashboard sees the depth stuck at its minimum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollapseKind {
    /// `avg_depth` within 0.05 of `mor_min_depth` (the dashboard's rule).
    #[default]
    AtMinimum,
    /// `DEPTH_COLLAPSED_EARLY`: tokens exit at depth 0.
    EarlyExit,
    /// `DEPTH_COLLAPSED_MAX`: tokens all take the deepest path.
    MaxDepth,
    /// `DEPTH_COLLAPSED` (or another writer's "collapsed"): tokens at one fixed depth.
    FixedDepth,
}

impl CollapseKind {
    /// The kind a status names, if it names a collapse.
    pub fn of_status(status: &str) -> Option<Self> {
        let s = status.to_ascii_lowercase();
        if !s.contains("collaps") {
            return None;
        }
        Some(if s.contains("early") {
            Self::EarlyExit
        } else if s.contains("max") {
            Self::MaxDepth
        } else {
            Self::FixedDepth
        })
    }

    /// The trainer's own rule on a layer's depth histogram (tokens counted per depth): more
    /// than 90% of them at one depth — 0 an early exit, the deepest the maximum, another a
    /// fixed depth.
    pub fn of_histogram(histogram: &[f64]) -> Option<Self> {
        let total: f64 = histogram.iter().filter(|c| c.is_finite()).sum();
        if histogram.len() < 2 || total <= 0.0 || !total.is_finite() {
            return None;
        }
        let (depth, most) = histogram
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_finite())
            .max_by(|a, b| a.1.total_cmp(b.1))?;
        (*most / total > 0.9).then(|| match depth {
            0 => Self::EarlyExit,
            d if d == histogram.len() - 1 => Self::MaxDepth,
            _ => Self::FixedDepth,
        })
    }

    /// In the user's words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::AtMinimum => "depth stuck at the minimum",
            Self::EarlyExit => "early exit: tokens leave at depth 0",
            Self::MaxDepth => "max depth: tokens all take the deepest path",
            Self::FixedDepth => "fixed depth: tokens all at one depth",
        }
    }
}

/// The routing panels' data: MoD heatmap, MoR depth with collapses, MoE experts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingCharts {
    pub first_step: i64,
    pub last_step: i64,
    pub layers: Vec<i64>,
    /// Config `mod_capacity`: the selection fraction the MoD router aims for.
    pub mod_capacity: Option<f64>,
    pub mod_cells: Vec<ModCell>,
    pub mor_depth: Vec<LayerDepth>,
    /// Config `mor_min_depth` (default 1.0): a layer stuck here has collapsed.
    pub mor_min_depth: f64,
    pub collapses: Vec<Collapse>,
    /// Brief collapsed stretches, merged per layer to the chart's columns.
    #[serde(default)]
    pub flickers: Vec<Flicker>,
    /// Each layer's share of tokens per depth, when the records carry the histogram.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mor_shares: Vec<DepthShares>,
    /// Utilisation per expert (percent of tokens), when the run used MoE.
    pub moe_util: Vec<Points>,
    pub moe_entropy: Points,
    pub moe_divergence: Points,
    /// Where collapse detection stopped, so the live page continues it record by record.
    #[serde(default)]
    pub collapse_detector: CollapseDetector,
    /// The run's clock (from its steps), so these charts' x axis can read time or tokens.
    #[serde(default)]
    pub clock: Vec<ClockMark>,
}

/// The charts of one step range of a run, fetched when the person zooms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoomCharts {
    pub run_id: String,
    pub range: (i64, i64),
    pub run: RunCharts,
    pub routing: RoutingCharts,
}
