//! Runs the `runs` table does not list. The trainer writes a run's row only from its report,
//! at the end: a crashed run, or one backfilled from its diagnostics file, has steps and no
//! row. Every `run_id` in `steps` is a run; these are found by rowid, incrementally (only
//! rows added since the last look are read), and remembered until the file changes.

use super::{int, text, SqliteSource};
use crate::model::Run;
use crate::server::error::AppError;
use std::collections::BTreeMap;

/// Rowids looked at per statement: a short read each, so the trainer commits in between.
const SCAN_ROWIDS: i64 = 200_000;

/// What the rows said so far.
#[derive(Default)]
pub(super) struct Unlisted {
    epoch: u64,
    /// Rows up to this rowid were looked at.
    scanned: i64,
    /// Per run id: its model, first step and that step's time.
    runs: BTreeMap<String, (String, i64, Option<String>)>,
}

impl SqliteSource {
    /// Every run found in `steps`, as a run row made from its rows: its model, its first
    /// step as `start_step`, that step's time as `start_time`, nothing else known.
    pub(super) async fn runs_in_steps(&self) -> Result<Vec<Run>, AppError> {
        let top = self
            .fetch_all("SELECT IFNULL(MAX(rowid), 0) AS top FROM steps", &[])
            .await?
            .first()
            .and_then(|r| int(r, "top"))
            .unwrap_or(0);
        let (mut scanned, mut runs) = {
            let mut seen = self
                .inner
                .unlisted
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if seen.epoch != self.epoch() || top < seen.scanned {
                // Another file, or rows taken away: look again from the start.
                *seen = Unlisted {
                    epoch: self.epoch(),
                    ..Default::default()
                };
            }
            (seen.scanned, seen.runs.clone())
        };
        while scanned < top {
            let upto = scanned.saturating_add(SCAN_ROWIDS).min(top);
            // SQLite's MIN() brings the bare columns of the row it picked: the first step's
            // time.
            let rows = self
                .fetch_all(
                    "SELECT run_id, model_id, MIN(step) AS first, timestamp FROM steps \
                     WHERE rowid > ?1 AND rowid <= ?2 GROUP BY run_id, model_id",
                    &[super::raw::Bind::Int(scanned), super::raw::Bind::Int(upto)],
                )
                .await?;
            for r in &rows {
                let (Some(run_id), Some(model_id), Some(first)) =
                    (text(r, "run_id"), text(r, "model_id"), int(r, "first"))
                else {
                    continue;
                };
                let time = text(r, "timestamp");
                let entry = runs
                    .entry(run_id)
                    .or_insert_with(|| (model_id, first, time.clone()));
                if first < entry.1 {
                    entry.1 = first;
                    entry.2 = time;
                }
            }
            scanned = upto;
        }
        {
            let mut seen = self
                .inner
                .unlisted
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if seen.epoch == self.epoch() && scanned >= seen.scanned {
                seen.scanned = scanned;
                seen.runs = runs.clone();
            }
        }
        Ok(runs
            .into_iter()
            .map(|(run_id, (model_id, first, time))| Run {
                run_id,
                model_id,
                start_step: Some(first),
                start_time: time,
                ..Default::default()
            })
            .collect())
    }
}
