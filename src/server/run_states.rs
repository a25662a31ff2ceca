//! Each run's state (training, finished, stopped), judged from evidence read through the
//! sources: its newest logged steps and their times, how far it was planned to go, and
//! whether a later run of its model exists. The judgement is `analysis::training_state`'s.

use super::error::AppError;
use super::local_time;
use super::source::Fields;
use super::store::Store;
use crate::analysis::time::parse_iso8601;
use crate::analysis::training_state::{judge, usual_gap, Evidence};
use crate::model::{Run, TrainingState};

/// Newest logged steps read to judge a run: enough for its usual intervals.
const NEWEST: usize = 32;

impl Store {
    /// `runs` (one model's, oldest first) with their `state` judged. A run that cannot be
    /// read is left unjudged rather than failing the list.
    pub async fn judged(&self, mut runs: Vec<Run>) -> Result<Vec<Run>, AppError> {
        let (utc_now, local_now) = local_time::now();
        let newest = runs.len().saturating_sub(1);
        for (i, run) in runs.iter_mut().enumerate() {
            if matches!(
                run.state,
                Some(TrainingState::Crashed | TrainingState::Finished)
            ) {
                // Its source knows how it ended (the log said so, or a report exists).
                continue;
            }
            let Ok(located) = self.located(&run.run_id).await else {
                continue;
            };
            // A run that cannot be read just now stays unjudged; the others still are.
            let Ok(steps) = self
                .sources()
                .steps(
                    &located,
                    (i64::MIN, i64::MAX),
                    true,
                    NEWEST,
                    Fields::RunCache,
                )
                .await
            else {
                continue;
            };
            let step_numbers: Vec<f64> = steps.iter().map(|s| s.step as f64).collect();
            let newest_time = steps.iter().find_map(|s| s.timestamp.as_deref());
            let times: Vec<f64> = steps
                .iter()
                .filter_map(|s| s.timestamp.as_deref().and_then(parse_iso8601))
                .collect();
            let now = match newest_time {
                Some(t) if local_time::has_zone(t) => utc_now,
                _ => local_now,
            };
            let evidence = Evidence {
                last_step: steps.first().map(|s| s.step),
                max_steps: run
                    .config()
                    .count("max_steps")
                    .or(run.end_step.filter(|e| *e > 0)),
                step_gap: usual_gap(&step_numbers).map(|g| g as i64),
                last_time: newest_time.and_then(parse_iso8601),
                interval_seconds: usual_gap(&times),
                ended: !run.end_time.as_deref().is_none_or(str::is_empty),
                resumed: i < newest,
                watched: run.last_seen.is_some(),
                now,
            };
            run.state = Some(judge(&evidence));
        }
        Ok(runs)
    }
}
