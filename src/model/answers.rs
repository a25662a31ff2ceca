//! What the REST API answers about models, runs and the file: pages of rows, stats,
//! milestones, file facts.

use super::{Run, Step};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `GET /api/stats/{model_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    pub model_id: String,
    pub step_count: i64,
    pub min_step: Option<i64>,
    pub max_step: Option<i64>,
    /// Lowest finite `loss_total` of the lineage.
    pub best_loss: Option<f64>,
    /// Mean of the finite losses; NaN and Inf steps are left out rather than poisoning it.
    pub avg_loss: Option<f64>,
    pub run_count: i64,
}

/// `GET /api/metrics/{run_id}`: one page of a run's steps, in step order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepPage {
    pub run_id: String,
    pub model_id: String,
    pub steps: Vec<Step>,
    /// Rows in this page.
    pub count: usize,
    /// The run's newest step (not this page's), so a client knows how far there is to go.
    pub max_step: Option<i64>,
    /// Pass as `start_step` to get the next page; `null` on the last page.
    pub next_start_step: Option<i64>,
}

/// `GET /api/metrics/{run_id}?max_points=N`: a range of a run cut to a point budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DownsampledSteps {
    pub run_id: String,
    pub model_id: String,
    pub max_points: usize,
    /// False when the range held no more than `max_points` rows and all are here.
    pub downsampled: bool,
    pub count: usize,
    pub max_step: Option<i64>,
    pub steps: Vec<Step>,
}

/// `GET /api/routing/{mod,mor,moe}/{run_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingPage<T> {
    pub run_id: String,
    pub data: Vec<T>,
    /// Pass as `start_step` for the next page; `null` on the last page.
    pub next_start_step: Option<i64>,
}

/// `GET /api/run/{run_id}`: the run row plus its parsed config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: Run,
    /// `config_json` parsed; `null` when missing or malformed.
    pub config: Value,
    /// Set when `config_json` is not valid JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_error: Option<String>,
}

/// `GET /api/milestones/{model_id}`: the best loss so far at every multiple of `interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Milestones {
    pub model_id: String,
    pub interval: i64,
    pub milestones: BTreeMap<i64, f64>,
}

/// Row count of one table of the trainer's file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub rows: i64,
}

/// What the sidebar says about the database file itself.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DbInfo {
    pub path: String,
    pub file_size_bytes: u64,
    pub journal_mode: String,
    pub tables: Vec<TableRows>,
    /// Wall time of the newest logged step of any model.
    pub newest_step_time: Option<String>,
    /// Optional tables and columns this file does not have (an older trainer wrote it).
    pub missing: Vec<String>,
    /// Read from a team's PostgreSQL (`serve --store`), not from a trainer's file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub postgres: bool,
}

/// `GET /api/ema/{model_id}`: the original API's shape — `[step, value]` pairs of the loss
/// and the three EMAs as the file holds them (`null` where NULL).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmaSeries {
    pub raw: Vec<(i64, Option<f64>)>,
    pub short: Vec<(i64, Option<f64>)>,
    pub medium: Vec<(i64, Option<f64>)>,
    pub long: Vec<(i64, Option<f64>)>,
    /// Set when the range held more steps than one answer carries: ask again from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_start_step: Option<i64>,
}

/// One record of the trainer's adaptive-LR controller (`adaptive_lr`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveLr {
    pub step: i64,
    pub loss_ema_short: Option<f64>,
    pub loss_ema_long: Option<f64>,
    pub patience_counter: Option<i64>,
    /// 1 on the record where the controller started a cooldown (the file's 0/1).
    pub cooldown_triggered: Option<i64>,
}

/// `GET /api/adaptive_lr/{run_id}`: the original API's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveLrPage {
    pub run_id: String,
    pub data: Vec<AdaptiveLr>,
}

/// An evaluation of the model during training: the trainer's `[EVAL]` line (every
/// `eval_interval` steps), with its per-component losses when it evaluates on a mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub step: i64,
    pub eval_loss: f64,
    /// The training loss the trainer logged beside it.
    pub train_loss: Option<f64>,
    /// Loss per eval component (`code`, `fineweb`, …), as logged.
    #[serde(default)]
    pub components: std::collections::BTreeMap<String, f64>,
}

/// `GET /api/eval/{run_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalPage {
    pub run_id: String,
    pub points: Vec<EvalPoint>,
}
