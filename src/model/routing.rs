//! The routers' records at one step: Mixture-of-Depths, -Recursions and -Experts.

use super::Collapse;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Mixture-of-Depths router state of one layer at one step (`routing_mod`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct RoutingMod {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub layer: i64,
    pub selected_frac: Option<f64>,
    pub compute_savings_pct: Option<f64>,
    pub probs_mean: Option<f64>,
    pub probs_std: Option<f64>,
    pub status: Option<String>,
}

/// Mixture-of-Recursions depth of one layer at one step (`routing_mor`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingMor {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub layer: i64,
    pub avg_depth: Option<f64>,
    pub expected_depth: Option<f64>,
    pub router_probs_mean: Option<f64>,
    pub status: Option<String>,
    /// Tokens counted at each depth (0, 1, …): only in the diagnostics file, the database
    /// drops it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth_histogram: Option<Vec<f64>>,
}

/// Mixture-of-Experts router state at one step (`routing_moe`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct RoutingMoe {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub entropy: Option<f64>,
    pub divergence: Option<f64>,
    pub util_expert_0: Option<f64>,
    pub util_expert_1: Option<f64>,
    pub util_expert_2: Option<f64>,
    pub util_expert_3: Option<f64>,
}

/// Collapse detection's progress through a run's MoR records, one record at a time, so the
/// live page continues exactly where the server's pass over the run stopped. The rule is
/// `analysis::routing`'s; the state is here because the page receives it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CollapseDetector {
    pub found: Vec<Collapse>,
    /// Per layer: the current stretch of collapsed records.
    pub(crate) streaks: BTreeMap<i64, Streak>,
}

/// A layer's current stretch of collapsed records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Streak {
    /// Records in it.
    pub records: usize,
    /// The step it began at.
    pub since: i64,
    /// The step of its newest record.
    #[serde(default)]
    pub last: i64,
    /// Whether it was reported (it lasted long enough).
    pub reported: bool,
    /// The kind the trainer's status named last in it, if any did.
    pub kind: Option<super::CollapseKind>,
}
