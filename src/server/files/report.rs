//! The trainer's report (`reports/training_report_{YYYYmmdd_HHMMSS}.json`), written once at
//! the end of a run that completes: its whole configuration and a summary. The database's
//! `runs` row is made from it; so is ours when the database does not have the run.

use crate::model::python_json::to_strict;
use crate::model::Run;
use serde_json::Value;

/// The run row a report makes, as the trainer's loader makes it (`start_step` from the
/// configuration, `end_step` = total steps, `start_time` = the report's timestamp); `None`
/// when it is not a report of a run.
pub fn run_of_report(text: &str) -> Option<Run> {
    let report: Value = serde_json::from_str(&to_strict(text)).ok()?;
    let config = report.get("configuration")?;
    let run_id = config.get("run_id")?.as_str()?.to_string();
    let summary = report.get("training_summary");
    let losses = report.get("loss_analysis");
    let number = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_f64);
    let int = |v: Option<&Value>, key: &str| v.and_then(|v| v.get(key)).and_then(Value::as_i64);
    Some(Run {
        model_id: super::run::model_of(&run_id).to_string(),
        start_step: int(Some(config), "start_step"),
        end_step: int(summary, "total_steps"),
        start_time: report
            .get("metadata")
            .and_then(|m| m.get("timestamp"))
            .and_then(Value::as_str)
            .map(str::to_string),
        end_time: None,
        total_tokens: int(summary, "total_tokens"),
        best_loss: number(losses, "best_loss"),
        best_loss_step: int(losses, "best_loss_step"),
        config_json: Some(config.to_string()),
        run_id,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_makes_the_loaders_run_row() {
        let text = r#"{"metadata": {"timestamp": "20260109_191413"},
            "configuration": {"run_id": "500m_20260109_144733", "start_step": 0, "max_steps": 20000,
                              "moe_capacity_factor": Infinity},
            "training_summary": {"total_steps": 20000, "total_tokens": 1310720000},
            "loss_analysis": {"best_loss": 2.51, "best_loss_step": 19675}}"#;
        let run = run_of_report(text).unwrap();
        assert_eq!(run.run_id, "500m_20260109_144733");
        assert_eq!(run.model_id, "500m");
        assert_eq!((run.start_step, run.end_step), (Some(0), Some(20000)));
        assert_eq!(run.start_time.as_deref(), Some("20260109_191413"));
        assert_eq!(run.best_loss_step, Some(19675));
        assert_eq!(run.config().count("max_steps"), Some(20000));
        assert!(run.config_json.unwrap().contains("Infinity"));
        assert!(run_of_report("{").is_none());
        assert!(run_of_report(r#"{"configuration": {}}"#).is_none());
    }
}
