//! Whether a run is still training, judged from evidence. The real trainer never writes a
//! run's `end_time` (and `end_step` is its plan, `max_steps`), so "no end time" says nothing:
//! what counts is how far the run got, whether it went quiet for longer than it ever pauses,
//! and whether a later run of its model took over.

use crate::model::TrainingState;

/// A run that logged nothing for this long is not training, whatever its interval…
pub const QUIET_FLOOR_SECONDS: f64 = 300.0;
/// …nor one quiet for this many of its usual intervals between logged steps.
pub const QUIET_INTERVALS: f64 = 20.0;

/// What is known about a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evidence {
    /// Its newest logged step.
    pub last_step: Option<i64>,
    /// How long it was planned to run (config `max_steps`, else the runs row's `end_step`).
    pub max_steps: Option<i64>,
    /// Steps between its newest logged steps: a run logged every 25 steps has reached 6,000
    /// when it logged 5,975.
    pub step_gap: Option<i64>,
    /// Wall time of its newest step (seconds, on the trainer's clock).
    pub last_time: Option<f64>,
    /// Its usual seconds between logged steps.
    pub interval_seconds: Option<f64>,
    /// An end time was written (older writers do).
    pub ended: bool,
    /// A later run of the same model exists: this one was resumed from.
    pub resumed: bool,
    /// Its log is read, so an end (completion, an error) would have been seen: quiet
    /// without one is a stall, not a stop.
    pub watched: bool,
    /// Now, on the same clock as `last_time`.
    pub now: f64,
}

/// The run's state: finished when it reached its planned length; stopped when it was
/// resumed, ended early or went quiet for longer than `max(5 min, 20 × its interval)` —
/// stalled instead when its log is read and said nothing of an end; otherwise training.
/// (Crashed needs the trainer's log: its source says so, not judged here.)
pub fn judge(e: &Evidence) -> TrainingState {
    let reached = match (e.last_step, e.max_steps) {
        (Some(last), Some(max)) if max > 0 => {
            last.saturating_add(e.step_gap.unwrap_or(1).max(1)) > max - 1
        }
        _ => false,
    };
    if reached || (e.ended && e.max_steps.is_none()) {
        return TrainingState::Finished;
    }
    if e.ended || e.resumed {
        return TrainingState::Stopped;
    }
    let patience = e
        .interval_seconds
        .filter(|i| i.is_finite() && *i > 0.0)
        .map_or(QUIET_FLOOR_SECONDS, |i| {
            (QUIET_INTERVALS * i).max(QUIET_FLOOR_SECONDS)
        });
    match e.last_time {
        Some(t) if e.now - t > patience && e.watched => TrainingState::Stalled,
        Some(t) if e.now - t > patience => TrainingState::Stopped,
        _ => TrainingState::Training,
    }
}

/// The usual gap between consecutive values (the median of the differences), for steps or
/// times given newest first or oldest first; `None` with fewer than two.
pub fn usual_gap(values: &[f64]) -> Option<f64> {
    let mut gaps: Vec<f64> = values
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|g| g.is_finite() && *g > 0.0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_by(f64::total_cmp);
    Some(gaps[gaps.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn training_now() -> Evidence {
        Evidence {
            last_step: Some(12_000),
            max_steps: Some(30_000),
            step_gap: Some(25),
            last_time: Some(1_000_000.0),
            interval_seconds: Some(20.0),
            now: 1_000_030.0,
            ..Default::default()
        }
    }

    #[test]
    fn a_run_logging_steps_is_training() {
        assert_eq!(judge(&training_now()), TrainingState::Training);
    }

    /// Issue 13: the real trainer never writes `end_time`; every newest run said "training".
    #[test]
    fn a_run_that_reached_its_plan_is_finished_without_an_end_time() {
        let e = Evidence {
            last_step: Some(29_975),
            now: 9e9,
            ..training_now()
        };
        assert_eq!(
            judge(&e),
            TrainingState::Finished,
            "logged every 25: 29,975 is the end"
        );
        let e = Evidence {
            last_step: Some(29_950),
            now: 9e9,
            ..training_now()
        };
        assert_eq!(
            judge(&e),
            TrainingState::Stopped,
            "short of its plan and quiet"
        );
    }

    #[test]
    fn quiet_for_longer_than_it_ever_pauses_is_stopped() {
        // 20 s between logged steps: 400 s is its patience (above the 5 min floor).
        let at = |now| {
            judge(&Evidence {
                now,
                ..training_now()
            })
        };
        assert_eq!(at(1_000_000.0 + 390.0), TrainingState::Training);
        assert_eq!(at(1_000_000.0 + 410.0), TrainingState::Stopped);
        // A fast run still gets five minutes.
        let fast = |now| {
            judge(&Evidence {
                interval_seconds: Some(0.5),
                now,
                ..training_now()
            })
        };
        assert_eq!(fast(1_000_000.0 + 200.0), TrainingState::Training);
        assert_eq!(fast(1_000_000.0 + 301.0), TrainingState::Stopped);
    }

    /// Issue 14: a run whose log is read and says nothing of an end, quiet for longer than
    /// it pauses, has stalled (the process may hang); a resumed one is still stopped.
    #[test]
    fn quiet_with_its_log_read_and_no_end_in_it_is_stalled() {
        let watched = Evidence {
            watched: true,
            now: 1_000_000.0 + 410.0,
            ..training_now()
        };
        assert_eq!(judge(&watched), TrainingState::Stalled);
        let soon = Evidence {
            now: 1_000_000.0 + 30.0,
            ..watched.clone()
        };
        assert_eq!(judge(&soon), TrainingState::Training);
        let resumed = Evidence {
            resumed: true,
            ..watched
        };
        assert_eq!(judge(&resumed), TrainingState::Stopped);
    }

    #[test]
    fn a_resumed_run_or_one_that_ended_early_is_stopped() {
        let resumed = Evidence {
            resumed: true,
            ..training_now()
        };
        assert_eq!(judge(&resumed), TrainingState::Stopped);
        let ended = Evidence {
            ended: true,
            ..training_now()
        };
        assert_eq!(judge(&ended), TrainingState::Stopped);
        let ended_no_plan = Evidence {
            ended: true,
            max_steps: None,
            ..training_now()
        };
        assert_eq!(judge(&ended_no_plan), TrainingState::Finished);
        let nothing = Evidence::default();
        assert_eq!(
            judge(&nothing),
            TrainingState::Training,
            "no evidence: as before"
        );
    }

    #[test]
    fn the_usual_gap_is_the_median_difference() {
        assert_eq!(usual_gap(&[100.0, 75.0, 50.0, 25.0, 0.0]), Some(25.0));
        assert_eq!(
            usual_gap(&[0.0, 1.0, 2.0, 60.0]),
            Some(1.0),
            "one pause is not usual"
        );
        assert_eq!(usual_gap(&[5.0]), None);
        assert_eq!(usual_gap(&[f64::NAN, 1.0]), None);
    }
}
