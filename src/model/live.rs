//! The live feed's messages.

use super::{Alert, AlertChange, EvalPoint, RoutingMod, RoutingMoe, RoutingMor, Run, Step};
use serde::{Deserialize, Serialize};

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
    /// Evaluations new or changed since the last (the log writes `[EVAL]`, then
    /// `[EVAL_COMPONENTS]`): each replaces the page's evaluation at its step.
    Evals { points: Vec<EvalPoint> },
    /// The file cannot be read just now; the feed keeps trying and says so when it can.
    Error { error: String },
    /// An alert of any run was raised or resolved (the header's bell counts them all).
    Alert { change: AlertChange, alert: Alert },
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
            #[serde(default)]
            points: Vec<EvalPoint>,
            #[serde(default)]
            change: Option<AlertChange>,
            #[serde(default)]
            alert: Option<Alert>,
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
            "evals" => Self::Evals { points: f.points },
            "error" => Self::Error {
                error: f.error.ok_or_else(|| missing("error"))?,
            },
            "alert" => Self::Alert {
                change: f.change.ok_or_else(|| missing("change"))?,
                alert: f.alert.ok_or_else(|| missing("alert"))?,
            },
            other => {
                return Err(<serde_json::Error as serde::de::Error>::unknown_variant(
                    other,
                    &["update", "heartbeat", "run", "evals", "error", "alert"],
                ))
            }
        })
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
            state: None,
            last_seen: Some("2026-01-09T14:47:40".into()),
            node: None,
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
            LiveMessage::Evals {
                points: vec![EvalPoint {
                    step: 500,
                    eval_loss: 2.74,
                    train_loss: Some(2.6),
                    components: [("code".to_string(), 2.1)].into_iter().collect(),
                }],
            },
            LiveMessage::Error {
                error: "busy".into(),
            },
            LiveMessage::Alert {
                change: AlertChange::Resolved,
                alert: Alert {
                    run_id: "r".into(),
                    model_id: "m".into(),
                    kind: crate::model::AlertKind::LossSpike,
                    step: 7,
                    value: Some(9.5),
                    time: None,
                    detail: "loss 9.5".into(),
                    resolved_step: Some(9),
                    resolved_time: None,
                    resolved_detail: Some("back".into()),
                },
            },
        ];
        for frame in frames {
            let text = serde_json::to_string(&frame).unwrap();
            assert_eq!(LiveMessage::from_json(text.as_bytes()).unwrap(), frame);
        }
        for bad in [
            r#"{"type":"nonsense"}"#,
            r#"{"type":"run"}"#,
            r#"{"type":"alert","change":"raised"}"#,
            r#"{"steps":[]}"#,
            "[1]",
            "",
        ] {
            assert!(LiveMessage::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
