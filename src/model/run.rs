//! Models and runs as the trainer records them, and a run's configuration.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// What the run is doing, judged from evidence (its newest step's time, how far it got,
    /// a later run of its model); absent where not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<TrainingState>,
    /// The time of the run's newest sign of life: the newest line of its log, any line
    /// (local, no zone). Only a run read from its log has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The machine that trained it (`sync --node`): only a run read from a team's
    /// PostgreSQL has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// What a run is doing. The real trainer never writes `end_time`, so this is judged from
/// evidence (`analysis::training_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingState {
    /// Steps keep coming.
    Training,
    /// It reached its planned length.
    Finished,
    /// It ended before that: resumed into a later run, or quiet for longer than it pauses.
    Stopped,
    /// Its log ends in an error (judged once the log is read).
    Crashed,
    /// It was training and went quiet for longer than it ever pauses, its log saying nothing
    /// of an end: the process may hang (judged only for a run whose log is read).
    Stalled,
}

impl TrainingState {
    /// The word the header and the run selector show.
    pub fn word(self) -> &'static str {
        match self {
            Self::Training => "training",
            Self::Finished => "finished",
            Self::Stopped => "stopped",
            Self::Crashed => "crashed",
            Self::Stalled => "stalled",
        }
    }
}

impl Run {
    /// The trainer's configuration, parsed; malformed JSON is kept as text, never an error.
    pub fn config(&self) -> RunConfig {
        RunConfig::parse(self.config_json.as_deref())
    }

    /// A run is still training: as judged from evidence when it was (`state`), else while
    /// the trainer has not written its `end_time`.
    pub fn is_running(&self) -> bool {
        match self.state {
            Some(state) => state == TrainingState::Training,
            None => self.end_time.as_deref().is_none_or(str::is_empty),
        }
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
        // The trainer writes its config with Python's `json.dumps`: `Infinity` and `NaN`
        // are read as the strings "Infinity" and "NaN" (shown as such; not numbers here).
        let text_strict = super::python_json::to_strict(text);
        // From bytes, as everything else the browser reads (one deserializer in the WASM).
        match serde_json::from_slice::<Value>(text_strict.as_bytes()) {
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
