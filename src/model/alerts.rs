//! Alerts: what the dashboard found wrong with a run, raised once and resolved when it
//! clears. The detectors are `analysis::alerts`; the server watches runs with them and
//! delivers what they say.

use serde::{Deserialize, Serialize};

/// What an alert is about. The names are the API's and the webhooks' `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A non-finite loss or gradient norm.
    Nan,
    /// A loss far above its recent level.
    LossSpike,
    /// A pre-clip gradient norm far above its recent level.
    GradSpike,
    /// Tokens/s well below its recent median for several logged steps.
    ThroughputDrop,
    /// No new step for far longer than the run pauses.
    Stalled,
    /// The run's log ends in an error.
    Crashed,
    /// A MoR layer stuck at its shallowest depth.
    MorCollapse,
    /// A MoD layer selecting far from its capacity.
    ModDrift,
    /// Eval loss rising several evals in a row.
    EvalRising,
    /// The run reached its planned length (informational: never open).
    Finished,
}

impl AlertKind {
    pub const ALL: [AlertKind; 10] = [
        Self::Nan,
        Self::LossSpike,
        Self::GradSpike,
        Self::ThroughputDrop,
        Self::Stalled,
        Self::Crashed,
        Self::MorCollapse,
        Self::ModDrift,
        Self::EvalRising,
        Self::Finished,
    ];

    /// The API's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Nan => "nan",
            Self::LossSpike => "loss_spike",
            Self::GradSpike => "grad_spike",
            Self::ThroughputDrop => "throughput_drop",
            Self::Stalled => "stalled",
            Self::Crashed => "crashed",
            Self::MorCollapse => "mor_collapse",
            Self::ModDrift => "mod_drift",
            Self::EvalRising => "eval_rising",
            Self::Finished => "finished",
        }
    }

    /// Words a person reads: "loss spike at step 1,200".
    pub fn words(self) -> &'static str {
        match self {
            Self::Nan => "NaN",
            Self::LossSpike => "loss spike",
            Self::GradSpike => "gradient spike",
            Self::ThroughputDrop => "throughput drop",
            Self::Stalled => "stalled",
            Self::Crashed => "crashed",
            Self::MorCollapse => "MoR collapse",
            Self::ModDrift => "MoD drift",
            Self::EvalRising => "eval loss rising",
            Self::Finished => "finished",
        }
    }

    /// Said once, never open: nothing to fix.
    pub fn informational(self) -> bool {
        self == Self::Finished
    }
}

/// One alert: raised at a step, resolved at a later one (or still open).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub run_id: String,
    pub model_id: String,
    pub kind: AlertKind,
    /// The first step it was seen at.
    pub step: i64,
    /// The value that raised it (the loss, the norm, tokens/s, …); `None` for a NaN or when
    /// no number says it (a crash).
    pub value: Option<f64>,
    /// The trainer's time of `step`, as its files give it.
    pub time: Option<String>,
    /// What was seen, in a line: "loss 4.81, above the band 3.20 (median 2.95 + 6σ)".
    pub detail: String,
    /// The step it cleared at, once it did.
    pub resolved_step: Option<i64>,
    pub resolved_time: Option<String>,
    /// How it cleared: "back under the band after 40 steps".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_detail: Option<String>,
}

impl Alert {
    /// Still needs someone: raised, not resolved, and not merely informational.
    pub fn is_open(&self) -> bool {
        !self.kind.informational() && self.resolved_step.is_none()
    }

    /// What identifies it across replays and restarts: the same history raises the same
    /// alerts at the same steps.
    pub fn key(&self) -> (String, AlertKind, i64) {
        (self.run_id.clone(), self.kind, self.step)
    }
}

/// Whether an alert was raised or resolved: what a webhook or the page is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChange {
    Raised,
    Resolved,
}

impl AlertChange {
    pub fn name(self) -> &'static str {
        match self {
            Self::Raised => "raised",
            Self::Resolved => "resolved",
        }
    }
}

/// `/api/alerts`: alerts newest first, and how many are open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    pub open: usize,
    pub alerts: Vec<Alert>,
    /// Runs not watched yet (the server is still reading their history).
    #[serde(default)]
    pub pending_runs: usize,
    /// The watcher has read the history of every run it knows (false right after start,
    /// before it has even listed them, and while `pending_runs` is not 0).
    #[serde(default)]
    pub history_read: bool,
    /// How delivery to each `--notify-webhook` goes.
    #[serde(default)]
    pub webhooks: Vec<WebhookStatus>,
}

/// One webhook endpoint's deliveries so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookStatus {
    /// Scheme and host only: a webhook's path is its secret.
    pub url: String,
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failures: u64,
    /// Changes given up on after an hour of retries.
    pub given_up: u64,
    /// Changes waiting to be delivered.
    pub waiting: u64,
    pub last_error: Option<String>,
}
