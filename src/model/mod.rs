//! Shared data types: what the store reads, the REST API sends and the page shows.
//!
//! Field names are the trainer's column names (`spec/training-db.md`), so the JSON stays
//! compatible with the seed's API and with scripts written against it. This module does no
//! I/O and compiles for the browser as well as the server.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A model lineage: one `models` row (e.g. `500m`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub model_id: String,
    pub name: Option<String>,
    pub params_millions: Option<f64>,
    pub architecture_json: Option<String>,
    pub created_at: Option<String>,
}

/// One training session of a model: a `runs` row. A resume starts a new run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub run_id: String,
    pub model_id: String,
    pub start_step: Option<i64>,
    pub end_step: Option<i64>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub total_tokens: Option<i64>,
    pub best_loss: Option<f64>,
    pub best_loss_step: Option<i64>,
    pub config_json: Option<String>,
}

impl Run {
    /// The trainer's configuration, parsed; malformed JSON is kept as text, never an error.
    pub fn config(&self) -> RunConfig {
        RunConfig::parse(self.config_json.as_deref())
    }

    /// A run is still training while the trainer has not written its `end_time`.
    pub fn is_running(&self) -> bool {
        self.end_time.as_deref().is_none_or(str::is_empty)
    }
}

/// `runs.config_json`, as far as it could be understood.
#[derive(Clone, Debug, PartialEq)]
pub enum RunConfig {
    /// NULL or empty.
    Missing,
    /// A JSON object (anything else valid is wrapped as `{"value": …}`).
    Parsed(serde_json::Map<String, Value>),
    /// Not JSON: shown verbatim with the parser's complaint.
    Malformed { text: String, error: String },
}

impl RunConfig {
    pub fn parse(text: Option<&str>) -> Self {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Self::Missing;
        };
        // From bytes, as everything else the browser reads (one deserializer in the WASM).
        match serde_json::from_slice::<Value>(text.as_bytes()) {
            Ok(Value::Object(map)) => Self::Parsed(map),
            Ok(other) => {
                let mut map = serde_json::Map::new();
                map.insert("value".into(), other);
                Self::Parsed(map)
            }
            Err(e) => Self::Malformed {
                text: text.to_string(),
                error: e.to_string(),
            },
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Parsed(map) => map.get(key),
            _ => None,
        }
    }

    /// A numeric key, accepting numbers written as strings (`"5e-4"`), as config files do.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|v: &f64| v.is_finite())
    }

    /// A positive integer key such as `max_steps`.
    pub fn count(&self, key: &str) -> Option<i64> {
        self.number(key)
            .filter(|v| *v >= 1.0 && *v < 9.0e15)
            .map(|v| v as i64)
    }

    /// Every key with its value as display text, sorted by key, for the run-config panel.
    pub fn entries(&self) -> Vec<(String, String)> {
        match self {
            Self::Parsed(map) => {
                let mut entries: Vec<_> = map
                    .iter()
                    .map(|(k, v)| {
                        let shown = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), shown)
                    })
                    .collect();
                entries.sort();
                entries
            }
            _ => Vec::new(),
        }
    }

    /// JSON for the API: the object, or `null` when missing or malformed.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Parsed(map) => Value::Object(map.clone()),
            _ => Value::Null,
        }
    }

    /// Why the config could not be read, if it could not.
    pub fn error(&self) -> Option<String> {
        match self {
            Self::Malformed { error, .. } => {
                Some(format!("config_json is not valid JSON: {error}"))
            }
            _ => None,
        }
    }
}

/// Why a metric has no number: JSON cannot carry NaN or ±Inf, so the API sends `null` and
/// names the cause here, letting charts mark the step where training diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NonFinite {
    #[serde(rename = "nan")]
    Nan,
    #[serde(rename = "inf")]
    Inf,
    #[serde(rename = "-inf")]
    NegInf,
}

/// One logged optimizer step: a `steps` row, every column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub timestamp: Option<String>,
    pub loss_total: Option<f64>,
    pub loss_ce: Option<f64>,
    pub loss_aux: Option<f64>,
    pub loss_ponder: Option<f64>,
    pub loss_advantage: Option<f64>,
    pub lr: Option<f64>,
    pub grad_norm: Option<f64>,
    pub grad_norm_pre_clip: Option<f64>,
    pub ema_short: Option<f64>,
    pub ema_medium: Option<f64>,
    pub ema_long: Option<f64>,
    /// The four newest columns are absent from old files; then the key is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<i64>,
    /// Metrics whose stored value was NaN or ±Inf (sent as `null`). Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nonfinite: BTreeMap<String, NonFinite>,
}

impl Step {
    /// The real-valued metrics by column name, in table order (that of [`METRICS`]).
    pub fn metrics(&self) -> [(&'static str, Option<f64>); 13] {
        [
            ("loss_total", self.loss_total),
            ("loss_ce", self.loss_ce),
            ("loss_aux", self.loss_aux),
            ("loss_ponder", self.loss_ponder),
            ("loss_advantage", self.loss_advantage),
            ("lr", self.lr),
            ("grad_norm", self.grad_norm),
            ("grad_norm_pre_clip", self.grad_norm_pre_clip),
            ("ema_short", self.ema_short),
            ("ema_medium", self.ema_medium),
            ("ema_long", self.ema_long),
            ("tokens_per_sec", self.tokens_per_sec),
            ("vram_gb", self.vram_gb),
        ]
    }

    /// Fills `nonfinite` from the values as read. SQLite stores a NaN as NULL, and the
    /// trainer always writes a loss, so a NULL `loss_total` means the loss was NaN; other
    /// NULL columns are just unrecorded.
    pub fn mark_nonfinite(&mut self) {
        let mut marks = BTreeMap::new();
        if self.loss_total.is_none() {
            marks.insert("loss_total".to_string(), NonFinite::Nan);
        }
        for (name, value) in self.metrics() {
            match value {
                Some(v) if v.is_nan() => marks.insert(name.to_string(), NonFinite::Nan),
                Some(v) if v == f64::INFINITY => marks.insert(name.to_string(), NonFinite::Inf),
                Some(v) if v == f64::NEG_INFINITY => {
                    marks.insert(name.to_string(), NonFinite::NegInf)
                }
                _ => None,
            };
        }
        self.nonfinite = marks;
    }

    /// The loss if it is a real number.
    pub fn finite_loss(&self) -> Option<f64> {
        self.loss_total.filter(|v| v.is_finite())
    }
}

/// Mixture-of-Depths router state of one layer at one step (`routing_mod`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoutingMor {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub layer: i64,
    pub avg_depth: Option<f64>,
    pub expected_depth: Option<f64>,
    pub router_probs_mean: Option<f64>,
    pub status: Option<String>,
}

/// Mixture-of-Experts router state at one step (`routing_moe`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// The metric columns a client may ask for by name (`metrics=`).
pub const METRICS: [&str; 13] = [
    "loss_total",
    "loss_ce",
    "loss_aux",
    "loss_ponder",
    "loss_advantage",
    "lr",
    "grad_norm",
    "grad_norm_pre_clip",
    "ema_short",
    "ema_medium",
    "ema_long",
    "tokens_per_sec",
    "vram_gb",
];

/// Where the metric `name` stands in [`METRICS`] and [`Step::metrics`]: resolved once for a
/// read, so each row is indexed rather than searched by name.
pub fn metric_position(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| *m == name)
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
}

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

/// The wall time (epoch seconds) and tokens seen by a step, where the file tells them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockMark {
    pub step: i64,
    pub time: Option<f64>,
    pub tokens: Option<f64>,
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

/// A layer whose recursion depth collapsed to the minimum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    pub layer: i64,
    /// First step of the collapsed stretch.
    pub since_step: i64,
    /// Step it recovered at; `None` while still collapsed.
    pub recovered_step: Option<i64>,
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
    /// Utilisation per expert (percent of tokens), when the run used MoE.
    pub moe_util: Vec<Points>,
    pub moe_entropy: Points,
    pub moe_divergence: Points,
    /// Where collapse detection stopped, so the live page continues it record by record.
    #[serde(default)]
    pub collapse_detector: crate::analysis::routing::CollapseDetector,
    /// The run's clock (from its steps), so these charts' x axis can read time or tokens.
    #[serde(default)]
    pub clock: Vec<ClockMark>,
}

impl Dashboard {
    /// The shown run is still training: no `end_time`, and no later run of its model. A run
    /// that never wrote `end_time` but was followed by a resume crashed; it is not live.
    pub fn is_live(&self) -> bool {
        self.run.as_ref().is_some_and(|run| {
            run.is_running()
                && self
                    .runs
                    .iter()
                    .all(|r| r.run_id == run.run_id || r.start_step <= run.start_step)
        })
    }
}

/// The charts of one step range of a run, fetched when the person zooms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoomCharts {
    pub run_id: String,
    pub range: (i64, i64),
    pub run: RunCharts,
    pub routing: RoutingCharts,
}

/// What `/ws/{run_id}` sends, as JSON tagged by `type` (the seed's `update` and `heartbeat`,
/// plus `run` and `error`). See `docs/api.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Rows the trainer committed: new steps, and earlier steps it logged again (which
    /// replace the old points), each table in commit order.
    Update {
        steps: Vec<Step>,
        routing_mod: Vec<RoutingMod>,
        routing_mor: Vec<RoutingMor>,
        routing_moe: Vec<RoutingMoe>,
        /// The run's newest step so far.
        last_step: Option<i64>,
    },
    /// Nothing new, the feed is alive: at least every 15 s.
    Heartbeat { last_step: Option<i64> },
    /// The run's row changed (it ended) or its model has a new run (a resume).
    Run { run: Run, runs: Vec<Run> },
    /// The file cannot be read just now; the feed keeps trying and says so when it can.
    Error { error: String },
}

impl LiveMessage {
    /// Reads a frame as the server writes it. Not through serde's internally tagged enum:
    /// that buffers the frame and compiles every nested type's deserializer a second time,
    /// which the browser pays for in download size.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Frame {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            steps: Vec<Step>,
            #[serde(default)]
            routing_mod: Vec<RoutingMod>,
            #[serde(default)]
            routing_mor: Vec<RoutingMor>,
            #[serde(default)]
            routing_moe: Vec<RoutingMoe>,
            #[serde(default)]
            last_step: Option<i64>,
            #[serde(default)]
            run: Option<Run>,
            #[serde(default)]
            runs: Vec<Run>,
            #[serde(default)]
            error: Option<String>,
        }
        let f: Frame = serde_json::from_slice(bytes)?;
        let missing = |field: &str| {
            <serde_json::Error as serde::de::Error>::custom(format!(
                "a `{}` message without `{field}`",
                f.kind
            ))
        };
        Ok(match f.kind.as_str() {
            "update" => Self::Update {
                steps: f.steps,
                routing_mod: f.routing_mod,
                routing_mor: f.routing_mor,
                routing_moe: f.routing_moe,
                last_step: f.last_step,
            },
            "heartbeat" => Self::Heartbeat {
                last_step: f.last_step,
            },
            "run" => Self::Run {
                run: f.run.ok_or_else(|| missing("run"))?,
                runs: f.runs,
            },
            "error" => Self::Error {
                error: f.error.ok_or_else(|| missing("error"))?,
            },
            other => {
                return Err(<serde_json::Error as serde::de::Error>::unknown_variant(
                    other,
                    &["update", "heartbeat", "run", "error"],
                ))
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

/// `POST /api/snapshots`: which view of which run to freeze. Every field is optional: an
/// empty request freezes the newest run, whole, on a linear scale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    #[serde(default)]
    pub run_id: Option<String>,
    /// The zoom: only steps from `start_step` to `end_step`.
    #[serde(default)]
    pub start_step: Option<i64>,
    #[serde(default)]
    pub end_step: Option<i64>,
    #[serde(default)]
    pub log_scale: bool,
}

impl ShareRequest {
    /// The step range asked for, if any; an end below the start is a mistake.
    pub fn step_range(&self) -> Result<Option<(i64, i64)>, String> {
        step_range(self.start_step, self.end_step)
    }
}

/// Steps `start..=end` as asked (either end may be open), `None` when neither is given; an
/// end below the start is the asker's mistake, said the same way by every endpoint.
pub fn step_range(start: Option<i64>, end: Option<i64>) -> Result<Option<(i64, i64)>, String> {
    match (start, end) {
        (None, None) => Ok(None),
        (a, b) => {
            let (a, b) = (a.unwrap_or(i64::MIN), b.unwrap_or(i64::MAX));
            if a > b {
                Err(format!("must not be below start_step ({b} < {a})"))
            } else {
                Ok(Some((a, b)))
            }
        }
    }
}

/// A shared snapshot's addresses, relative to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedLink {
    pub id: String,
    /// `/s/{id}`: the page.
    pub url: String,
    /// `/s/{id}.png`: its loss chart, the link preview.
    pub image_url: String,
}

impl SharedLink {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            url: format!("/s/{id}"),
            image_url: format!("/s/{id}.png"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of frame the server writes reads back the same through `from_json`.
    #[test]
    fn live_frames_read_back_as_written() {
        let step = Step {
            step: 7,
            loss_total: Some(2.5),
            timestamp: Some("2026-01-09T14:47:33".into()),
            ..Default::default()
        };
        let run = Run {
            run_id: "r".into(),
            model_id: "m".into(),
            start_step: Some(0),
            end_step: None,
            start_time: None,
            end_time: None,
            total_tokens: None,
            best_loss: Some(1.0),
            best_loss_step: None,
            config_json: Some("{}".into()),
        };
        let frames = [
            LiveMessage::Update {
                steps: vec![step],
                routing_mod: Vec::new(),
                routing_mor: Vec::new(),
                routing_moe: Vec::new(),
                last_step: Some(7),
            },
            LiveMessage::Heartbeat { last_step: None },
            LiveMessage::Run {
                run: run.clone(),
                runs: vec![run],
            },
            LiveMessage::Error {
                error: "busy".into(),
            },
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(LiveMessage::from_json(text.as_bytes()).unwrap(), frame);
        }
        for bad in [
            r#"{"type":"nonsense"}"#,
            r#"{"type":"run"}"#,
            r#"{"steps":[]}"#,
            "[1]",
            "",
        ] {
            assert!(LiveMessage::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
