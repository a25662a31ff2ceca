//! Models and runs, and where a run's rows lie in its model's step numbering.

use super::columns::{model_from, run_from, MODEL_COLUMNS, RUN_COLUMNS};
use super::raw::Bind;
use super::SqliteSource;
use crate::model::{Model, Run};
use crate::server::error::AppError;

/// Which runs a read wants.
#[derive(Clone, Copy, Debug)]
pub(super) enum RunFilter<'a> {
    All,
    Model(&'a str),
    Id(&'a str),
}

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

    /// The runs `filter` asks for: the `runs` table's rows, and the runs only `steps` knows
    /// (a crashed or backfilled run has no row; see `run_rows.rs`), ordered by start.
    pub(super) async fn runs_of(&self, filter: RunFilter<'_>) -> Result<Vec<Run>, AppError> {
        let mut runs = match filter {
            RunFilter::All => self.runs_where("", &[]).await?,
            RunFilter::Model(m) => {
                self.runs_where("WHERE model_id = ?1", &[Bind::Text(m)])
                    .await?
            }
            RunFilter::Id(id) => {
                self.runs_where("WHERE run_id = ?1", &[Bind::Text(id)])
                    .await?
            }
        };
        if matches!(filter, RunFilter::Id(_)) && !runs.is_empty() {
            return Ok(runs);
        }
        let before = runs.len();
        for run in self.runs_in_steps().await? {
            let wanted = match filter {
                RunFilter::All => true,
                RunFilter::Model(m) => run.model_id == m,
                RunFilter::Id(id) => run.run_id == id,
            };
            if wanted && runs.iter().all(|r| r.run_id != run.run_id) {
                runs.push(run);
            }
        }
        if runs.len() > before {
            // By start, as the table's rows are; the stable sort keeps their order on ties.
            runs.sort_by(|a, b| {
                let key = |r: &Run| {
                    (
                        r.start_step.unwrap_or(0),
                        r.start_time
                            .as_deref()
                            .and_then(crate::analysis::time::parse_iso8601)
                            .unwrap_or(f64::MIN),
                    )
                };
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        Ok(runs)
    }

    /// The step range a run's rows can be in: from its first row to its last, by the rows'
    /// own `run_id` (`run_rows.rs` says why not `start_step`). The run holding its model's
    /// newest step may still write, so its range stays open above; so does a run with no row
    /// yet, from its `start_step`. Bounding the scan keeps one run's query from walking the
    /// rows of the runs after it.
    pub(super) async fn run_span(&self, run: &Run) -> Result<RunSpan, AppError> {
        let rows = self.rows_of_runs().await?;
        let (low, high) = match rows.get(&run.run_id) {
            Some(own) => {
                let newest = rows
                    .values()
                    .filter(|r| r.model_id == run.model_id)
                    .all(|r| r.last <= own.last);
                (own.first, if newest { i64::MAX } else { own.last })
            }
            None => (run.start_step.unwrap_or(i64::MIN), i64::MAX),
        };
        Ok(RunSpan {
            run: run.clone(),
            low,
            high,
        })
    }
}
