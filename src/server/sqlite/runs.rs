//! Models and runs, and where a run's rows lie in its model's step numbering.

use super::columns::{model_from, run_from, MODEL_COLUMNS, RUN_COLUMNS};
use super::raw::Bind;
use super::SqliteSource;
use crate::model::{Model, Run};
use crate::server::error::AppError;

/// Where a run's rows lie in its model's step numbering, and the part of it a read wants.
pub(super) struct RunSpan {
    pub run: Run,
    pub low: i64,
    pub high: i64,
}

impl RunSpan {
    /// The part of the span within `range` (empty when they do not meet: low > high).
    pub fn within(self, range: (i64, i64)) -> RunSpan {
        RunSpan {
            low: self.low.max(range.0),
            high: self.high.min(range.1),
            run: self.run,
        }
    }

    /// `?1..?5` of a paged read of the run's rows: model, first step, the span's last step,
    /// run, and how many rows.
    pub fn binds(&self, from: i64, limit: i64) -> [Bind<'_>; 5] {
        [
            Bind::Text(&self.run.model_id),
            Bind::Int(from),
            Bind::Int(self.high),
            Bind::Text(&self.run.run_id),
            Bind::Int(limit),
        ]
    }
}

impl SqliteSource {
    /// Every model, oldest first.
    pub(super) async fn read_models(&self) -> Result<Vec<Model>, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM models ORDER BY created_at, model_id",
            schema.select_list("models", &MODEL_COLUMNS)
        );
        Ok(self
            .fetch_all(&sql, &[])
            .await?
            .iter()
            .map(|r| model_from(r))
            .collect())
    }

    pub(super) async fn runs_where(
        &self,
        filter: &str,
        binds: &[Bind<'_>],
    ) -> Result<Vec<Run>, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM runs {filter} ORDER BY COALESCE(start_step, 0), start_time, rowid",
            schema.select_list("runs", &RUN_COLUMNS)
        );
        Ok(self
            .fetch_all(&sql, binds)
            .await?
            .iter()
            .map(|r| run_from(r))
            .collect())
    }

    /// The step range a run's rows can be in. They start at its `start_step` (the trainer's
    /// contract) and stop at its `end_step` once it ended, or before the next run's start
    /// when it never ended (the trainer crashed and was resumed). Bounding the scan keeps one
    /// run's query from walking its successors' rows.
    pub(super) async fn run_span(&self, run: &Run) -> Result<RunSpan, AppError> {
        let low = run.start_step.unwrap_or(i64::MIN);
        let next_start = self
            .runs_where("WHERE model_id = ?1", &[Bind::Text(&run.model_id)])
            .await?
            .into_iter()
            .filter(|r| r.run_id != run.run_id)
            .filter_map(|r| r.start_step)
            .filter(|s| *s > low)
            .min();
        let high = match run.end_step {
            Some(end) if !run.is_running() && end >= low => end,
            _ => next_start.map_or(i64::MAX, |n| n.saturating_sub(1)),
        };
        Ok(RunSpan {
            run: run.clone(),
            low,
            high,
        })
    }
}
