//! Runs side by side: the runs table (`/runs`, `GET /api/runs`) and the compare view's
//! series (`/compare`, `GET /api/compare`).

use super::{ClockMark, NonFinite, Points, TrainingState};
use serde::{Deserialize, Serialize};

/// The metrics the compare page charts, in order.
pub const COMPARED_METRICS: [super::Metric; 5] = [
    super::Metric::LossTotal,
    super::Metric::Lr,
    super::Metric::GradNorm,
    super::Metric::TokensPerSec,
    super::Metric::VramGb,
];

/// The metrics a comparison can show: those every source reads for a run's charts, as the
/// source holds them (the EMAs are left out: a run read from its log has the dashboard's
/// own, not a column).
pub const COMPARABLE_METRICS: [super::Metric; 6] = [
    super::Metric::LossTotal,
    super::Metric::Lr,
    super::Metric::GradNorm,
    super::Metric::GradNormPreClip,
    super::Metric::TokensPerSec,
    super::Metric::VramGb,
];

/// The most runs one comparison shows: beyond it the colours stop being told apart.
pub const MAX_COMPARED: usize = 20;

/// One row of the runs table: a run of any model, from any source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunRow {
    pub run_id: String,
    pub model_id: String,
    pub state: Option<TrainingState>,
    /// The newest logged step.
    pub step: Option<i64>,
    /// `max_steps` of its config.
    pub max_steps: Option<i64>,
    /// The newest sign of life: the newest log line, else the newest step's time (as
    /// written, no zone when the trainer wrote none).
    pub last_seen: Option<String>,
    /// Seconds from `last_seen` to when this row was made ("12 s ago").
    pub last_seen_ago: Option<f64>,
    pub best_loss: Option<f64>,
    pub best_loss_step: Option<i64>,
    /// The newest evaluation's loss, when the log has one.
    pub eval_loss: Option<f64>,
    pub tokens: Option<f64>,
    /// `tokens` is counted from batch size × sequence length × accumulation over the steps,
    /// not recorded by the trainer (a run without a report yet).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens_estimated: bool,
    pub tokens_per_sec: Option<f64>,
    /// The first step's time.
    pub started: Option<String>,
    /// Seconds from the first step to the newest.
    pub duration: Option<f64>,
    /// Every config key and value, as the config panel shows them: what the table's text
    /// filter searches besides the run and model.
    pub config: Vec<(String, String)>,
    /// The machine that trained it, for runs from a team's PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// What a compare chart's x axis counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareX {
    /// The optimizer step, shared by every run.
    #[default]
    Step,
    /// Tokens seen by the run.
    Tokens,
    /// Seconds since the run's first step.
    Time,
}

impl CompareX {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "step" => Some(Self::Step),
            "tokens" => Some(Self::Tokens),
            "time" => Some(Self::Time),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Tokens => "tokens",
            Self::Time => "time",
        }
    }
}

/// `GET /api/compare`: each run's series over a range.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub x: CompareX,
    pub max_points: usize,
    /// The smoothing weight asked for; `null` when none was.
    pub smoothing: Option<f64>,
    /// The range asked for, in units of `x` (`null` ends: each run's own).
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub runs: Vec<ComparedRun>,
}

/// One run in a comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComparedRun {
    pub run_id: String,
    pub model_id: String,
    pub first_step: Option<i64>,
    /// The run's newest step (not the range's).
    pub max_step: Option<i64>,
    /// The run's steps within the range asked for (`null`: none of them lie in it).
    pub steps: Option<(i64, i64)>,
    pub series: Vec<ComparedSeries>,
    /// Loss spikes (at their peaks) within the range.
    pub spikes: Points,
    /// Wall time and tokens along the run, sampled: what maps a step to the other x axes.
    pub clock: Vec<ClockMark>,
    /// Its evaluations' losses within the range (only a run read from its log has them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evals: Points,
}

/// One metric of one run: M4-downsampled as `/api/metrics?max_points` does it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComparedSeries {
    pub metric: String,
    /// False when the range held no more than `max_points` steps and all are here.
    pub downsampled: bool,
    /// Finite values only; the NaN and ±Inf are in `nonfinite`.
    pub points: Points,
    pub nonfinite: Vec<(i64, NonFinite)>,
    /// The smoothed series (smoothed over every step, then downsampled), when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothed: Option<Points>,
}

/// One config key across the compared runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigRow {
    pub key: String,
    /// Each run's value as text, in the comparison's order; `None` where a run lacks it.
    pub values: Vec<Option<String>>,
    /// Not every run has the same value.
    pub differs: bool,
}

impl ConfigRow {
    /// Two runs state different values — not only that one states the key and another does
    /// not (a run without a report yet has only what its log says).
    pub fn values_differ(&self) -> bool {
        let mut stated = self.values.iter().flatten();
        stated
            .next()
            .is_some_and(|first| stated.any(|v| v != first))
    }
}

/// A run's routing at its end, for the compare page's side-by-side table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingHealth {
    pub run_id: String,
    /// Mean MoD selected fraction over the records of the run's last steps, every layer.
    pub mod_selected: Option<f64>,
    /// Config `mod_capacity`: what the router aims for.
    pub mod_capacity: Option<f64>,
    /// MoR layers collapsed at the newest record: `(layer, first step of the collapse)`.
    pub mor_collapsed: Vec<(i64, i64)>,
    /// MoR layers in the records.
    pub mor_layers: usize,
    /// The newest MoE record's highest expert share over its lowest (`None` when one gets
    /// none: then `moe_starved`).
    pub moe_imbalance: Option<f64>,
    /// An expert got no tokens in the newest MoE record.
    #[serde(default)]
    pub moe_starved: bool,
}

/// Everything the compare page shows: the series, each run's row of the runs table, and
/// their config side by side (model facts first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CompareView {
    pub comparison: Comparison,
    pub rows: Vec<RunRow>,
    pub config: Vec<ConfigRow>,
    /// Each run's routing at its end, in the comparison's order.
    pub routing: Vec<RoutingHealth>,
}

/// The run ids of a comparison from `runs=A,B,…` (or the parameter repeated, as a form
/// sends ticked boxes): trimmed, in order; a message naming the problem for none, more than
/// [`MAX_COMPARED`], or one listed twice.
pub fn parse_run_list<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<String>, String> {
    let mut ids: Vec<String> = Vec::new();
    for id in values.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
        if id.is_empty() {
            continue;
        }
        if ids.iter().any(|seen| seen == id) {
            return Err(format!("run {id:?} is listed twice"));
        }
        ids.push(id.to_string());
    }
    match ids.len() {
        0 => Err("name the runs to compare, e.g. runs=A,B".into()),
        n if n > MAX_COMPARED => Err(format!(
            "{n} runs listed: at most {MAX_COMPARED} can be compared at once"
        )),
        _ => Ok(ids),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_list_is_read_in_order_and_its_mistakes_are_named() {
        assert_eq!(
            parse_run_list(["a, b", "c", ""]),
            Ok(vec!["a".to_string(), "b".into(), "c".into()])
        );
        assert!(parse_run_list(["a,,b,a"])
            .unwrap_err()
            .contains("\"a\" is listed twice"));
        assert!(parse_run_list([" , "])
            .unwrap_err()
            .contains("name the runs"));
        let many: Vec<String> = (0..21).map(|i| format!("r{i}")).collect();
        let err = parse_run_list(many.iter().map(String::as_str)).unwrap_err();
        assert!(
            err.contains("21 runs") && err.contains("at most 20"),
            "{err}"
        );
        assert_eq!(
            parse_run_list(many[..20].iter().map(String::as_str)).map(|v| v.len()),
            Ok(20)
        );
    }
}
