//! What the `steps` rows say about each run: its model and the steps its rows lie between.
//!
//! Two things need it. The runs the `runs` table does not list: the trainer writes a run's
//! row only from its report, so a crashed run, or one backfilled from its diagnostics file,
//! has steps and no row, and every `run_id` in `steps` is a run. And where a run's rows lie:
//! the steps key is `(model_id, step)`, a step belongs to the run that wrote it last, and the
//! real trainer's `start_step` is its configuration's (0 for a resume that keeps its run id,
//! the checkpoint step for one that does not), so only the rows can say.
//!
//! Rows are read by rowid, incrementally (only rows added since the last look), and
//! remembered until the file changes. A rewritten step gets a new rowid and its old row is
//! gone, so a run's remembered first and last steps can only be wider than its rows now:
//! reads bounded by them still filter by `run_id`, they just look at a few more rows.

use super::raw::Bind;
use super::{int, text, SqliteSource};
use crate::model::Run;
use crate::server::error::AppError;
use std::collections::BTreeMap;

/// Rowids looked at per statement: a short read each, so the trainer commits in between.
const SCAN_ROWIDS: i64 = 200_000;

/// Where one run's rows lie.
#[derive(Clone, Debug)]
pub(super) struct RowsOf {
    pub model_id: String,
    pub first: i64,
    pub last: i64,
    /// The first step's time.
    pub first_time: Option<String>,
}

/// What the rows said so far.
#[derive(Default)]
pub(super) struct SeenRows {
    epoch: u64,
    /// Rows up to this rowid were looked at.
    scanned: i64,
    runs: BTreeMap<String, RowsOf>,
}

impl SqliteSource {
    /// Every run id in `steps`, with where its rows lie.
    pub(super) async fn rows_of_runs(&self) -> Result<BTreeMap<String, RowsOf>, AppError> {
        let top = self
            .fetch_all("SELECT IFNULL(MAX(rowid), 0) AS top FROM steps", &[])
            .await?
            .first()
            .and_then(|r| int(r, "top"))
            .unwrap_or(0);
        let (mut scanned, mut runs) = {
            let mut seen = self
                .inner
                .seen_rows
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if seen.epoch != self.epoch() || top < seen.scanned {
                // Another file, or rows taken away: look again from the start.
                *seen = SeenRows {
                    epoch: self.epoch(),
                    ..Default::default()
                };
            }
            if seen.scanned >= top {
                return Ok(seen.runs.clone());
            }
            (seen.scanned, seen.runs.clone())
        };
        while scanned < top {
            let upto = scanned.saturating_add(SCAN_ROWIDS).min(top);
            let rows = self
                .fetch_all(
                    "SELECT run_id, model_id, MIN(step) AS first, MAX(step) AS last FROM steps \
                     WHERE rowid > ?1 AND rowid <= ?2 GROUP BY run_id, model_id",
                    &[Bind::Int(scanned), Bind::Int(upto)],
                )
                .await?;
            let mut moved = Vec::new();
            for r in &rows {
                let (Some(run_id), Some(model_id), Some(first), Some(last)) = (
                    text(r, "run_id"),
                    text(r, "model_id"),
                    int(r, "first"),
                    int(r, "last"),
                ) else {
                    continue;
                };
                let entry = runs.entry(run_id.clone()).or_insert(RowsOf {
                    model_id,
                    first: i64::MAX,
                    last,
                    first_time: None,
                });
                if first < entry.first {
                    entry.first = first;
                    moved.push(run_id);
                }
                entry.last = entry.last.max(last);
            }
            for run_id in moved {
                let Some(entry) = runs.get_mut(&run_id) else {
                    continue;
                };
                entry.first_time = self
                    .fetch_all(
                        "SELECT timestamp FROM steps WHERE model_id = ?1 AND step = ?2",
                        &[Bind::Text(&entry.model_id), Bind::Int(entry.first)],
                    )
                    .await?
                    .first()
                    .and_then(|r| text(r, "timestamp"));
            }
            scanned = upto;
        }
        let mut seen = self
            .inner
            .seen_rows
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if seen.epoch == self.epoch() && scanned >= seen.scanned {
            seen.scanned = scanned;
            seen.runs = runs.clone();
        }
        Ok(runs)
    }

    /// Every run found in `steps`, as a run row made from its rows: its model, its first
    /// step as `start_step`, that step's time as `start_time`, nothing else known.
    pub(super) async fn runs_in_steps(&self) -> Result<Vec<Run>, AppError> {
        Ok(self
            .rows_of_runs()
            .await?
            .into_iter()
            .map(|(run_id, rows)| Run {
                run_id,
                model_id: rows.model_id,
                start_step: Some(rows.first),
                start_time: rows.first_time,
                ..Default::default()
            })
            .collect())
    }
}
