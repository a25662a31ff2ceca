//! Everything the page shows for one run: the selectors, the summary, the gauges.

use super::{DbInfo, Model, RoutingCharts, Run, RunCharts, Step};
use serde::{Deserialize, Serialize};

/// A model in the selector, with the run the selector jumps to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelChoice {
    pub model: Model,
    pub run_count: i64,
    pub latest_run_id: Option<String>,
}

/// Facts about one run gathered in a single pass over its steps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub step_count: i64,
    pub first_step: Option<i64>,
    pub last_step: Option<i64>,
    pub last_loss: Option<f64>,
    pub best_loss: Option<f64>,
    pub best_loss_step: Option<i64>,
    /// Steps whose loss was NaN or ±Inf.
    pub nonfinite_losses: i64,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// Seconds from the run's start to its newest step (or its end), when the times parse.
    pub elapsed_seconds: Option<f64>,
    /// Σ batch_size × seq_len × grad_accum_steps × steps since the previous row.
    pub tokens_estimate: Option<f64>,
    pub last_tokens_per_sec: Option<f64>,
    pub last_vram_gb: Option<f64>,
    /// Optimizer steps per second over the last minutes of logged wall time.
    pub steps_per_second: Option<f64>,
    /// Seconds to `max_steps` at that rate.
    pub eta_seconds: Option<f64>,
}

/// Everything the dashboard page shows for one run, fetched in one server call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub models: Vec<ModelChoice>,
    /// The model shown; `None` when the file has no models yet.
    pub model: Option<Model>,
    /// The model's runs, oldest first.
    pub runs: Vec<Run>,
    /// The run shown; `None` when the model has no runs yet.
    pub run: Option<Run>,
    pub summary: Option<RunSummary>,
    /// Newest steps first.
    pub recent_steps: Vec<Step>,
    /// The loss, learning-rate and gradient-norm charts' data.
    pub charts: Option<RunCharts>,
    /// The MoD, MoR and MoE charts' data.
    pub routing: Option<RoutingCharts>,
    pub gauges: Option<Gauges>,
    pub db: DbInfo,
}

impl Dashboard {
    /// The shown run is still training. Judged by the server from evidence when it says so
    /// (the run's `state`); otherwise no `end_time` and no later run of its model — a run
    /// that never wrote `end_time` but was followed by a resume crashed; it is not live.
    pub fn is_live(&self) -> bool {
        self.run.as_ref().is_some_and(|run| match run.state {
            Some(state) => state == super::TrainingState::Training,
            None => {
                run.is_running()
                    && self
                        .runs
                        .iter()
                        .all(|r| r.run_id == run.run_id || r.start_step <= run.start_step)
            }
        })
    }
}

/// Thresholds the gauges use when the run's config does not give them (CLI flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaugeSettings {
    pub target_tokens_per_sec: f64,
    pub vram_warn_gb: f64,
    pub vram_danger_gb: f64,
    pub vram_total_gb: f64,
    /// The loss the person is aiming for (`--target-loss`); a run's config `target_loss`
    /// wins.
    #[serde(default)]
    pub target_loss: Option<f64>,
}

impl Default for GaugeSettings {
    fn default() -> Self {
        Self {
            target_tokens_per_sec: 12_000.0,
            vram_warn_gb: 24.0,
            vram_danger_gb: 28.0,
            vram_total_gb: 32.0,
            target_loss: None,
        }
    }
}

/// What the throughput and VRAM gauges show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gauges {
    pub tokens_per_sec: Option<f64>,
    /// Mean of the last 50 logged steps.
    pub tokens_per_sec_mean: Option<f64>,
    pub target_tokens_per_sec: f64,
    pub vram_gb: Option<f64>,
    pub vram_warn_gb: f64,
    pub vram_danger_gb: f64,
    pub vram_total_gb: f64,
    /// The measured throughputs behind the mean, newest first.
    #[serde(default)]
    pub recent_tokens_per_sec: Vec<f64>,
}
