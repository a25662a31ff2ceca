//! Whole-model answers (`/api/stats`, `/api/milestones`) aggregated by SQLite itself, a
//! page at a time, so no row crosses into Rust one by one.

use super::raw::Bind;
use super::{int, real, SqliteSource};
use crate::analysis::milestones::{MilestoneBuilder, StatsBuilder};
use crate::model::{Milestones, ModelStats};
use crate::server::error::AppError;
use crate::server::source::Source;
use sqlx::sqlite::SqliteRow;

/// Rows per statement when SQLite aggregates over a model's steps (stats, milestones):
/// about 10 ms of the file each, so the trainer commits in between.
const AGGREGATE_PAGE: i64 = 50_000;

impl SqliteSource {
    /// Walks a model's steps in pages of `AGGREGATE_PAGE` rows through its `(model_id,
    /// step)` key, letting SQLite aggregate each page: `select` reads `page` (the page's
    /// `step` and `f`, its loss when a finite number) and returns rows that include the
    /// page's `hi` step; `visit` gets them. Each page is one short statement, so the trainer
    /// commits between them.
    async fn aggregate_model(
        &self,
        model_id: &str,
        select: &str,
        extra: &[Bind<'_>],
        mut visit: impl FnMut(&SqliteRow),
    ) -> Result<(), AppError> {
        let sql = format!(
            "WITH page AS (SELECT step, CASE WHEN typeof(loss_total) IN ('real', 'integer') \
             AND abs(loss_total) <= 1.7976931348623157e308 THEN loss_total END AS f \
             FROM steps WHERE model_id = ?1 AND step > ?2 ORDER BY step LIMIT ?3) {select}"
        );
        let mut after = i64::MIN;
        loop {
            let mut binds = vec![
                Bind::Text(model_id),
                Bind::Int(after),
                Bind::Int(AGGREGATE_PAGE),
            ];
            binds.extend_from_slice(extra);
            let rows = self.fetch_all(&sql, &binds).await?;
            let (mut n, mut hi) = (0, None);
            for r in &rows {
                n += int(r, "n").unwrap_or(0);
                hi = hi.max(int(r, "hi"));
                visit(r);
            }
            match hi {
                Some(hi) if n == AGGREGATE_PAGE => after = hi,
                _ => return Ok(()),
            }
        }
    }

    /// Counts and losses over the whole lineage. Unknown model → 404.
    pub(super) async fn aggregate_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        self.known_model(model_id).await?;
        let run_count = self.runs(Some(model_id)).await?.len() as i64;
        let mut stats = StatsBuilder::default();
        self.aggregate_model(
            model_id,
            "SELECT COUNT(*) AS n, MIN(step) AS lo, MAX(step) AS hi, TOTAL(f) AS total, \
             COUNT(f) AS finite, MIN(f) AS best FROM page",
            &[],
            |r| {
                stats.push_page(
                    int(r, "n").unwrap_or(0),
                    int(r, "lo"),
                    int(r, "hi"),
                    real(r, "total").unwrap_or(0.0),
                    int(r, "finite").unwrap_or(0),
                    real(r, "best"),
                )
            },
        )
        .await?;
        Ok(stats.finish(model_id, run_count))
    }

    /// For each bucket of `interval` steps, the best finite loss within it. Unknown model →
    /// 404; too many milestones → 400 before anything is read.
    pub(super) async fn aggregate_milestones(
        &self,
        model_id: &str,
        interval: i64,
    ) -> Result<Milestones, AppError> {
        self.known_model(model_id).await?;
        let ends = |order: &'static str| {
            let sql =
                format!("SELECT step FROM steps WHERE model_id = ?1 ORDER BY step {order} LIMIT 1");
            async move {
                let rows = self.fetch_all(&sql, &[Bind::Text(model_id)]).await?;
                Ok::<_, AppError>(rows.first().and_then(|r| int(r, "step")))
            }
        };
        let mut builder = MilestoneBuilder::new(interval);
        let (Some(first), Some(last)) = (ends("ASC").await?, ends("DESC").await?) else {
            return builder
                .finish(model_id)
                .map_err(|why| AppError::bad_param("interval", why));
        };
        builder.steps(first, last);
        if let Some(why) = builder.too_many() {
            return Err(AppError::bad_param("interval", why));
        }
        // The best loss of each bucket (see `analysis::milestones::bucket`; SQLite's `/`
        // truncates toward zero, so negative steps are floored by hand). A bucket split
        // across two pages comes back twice; the builder keeps the lower.
        self.aggregate_model(
            model_id,
            "SELECT CASE WHEN step >= 0 THEN step / ?4 ELSE -((-(step + 1)) / ?4) - 1 END \
             AS bucket, MIN(f) AS best, COUNT(*) AS n, MAX(step) AS hi FROM page GROUP BY bucket",
            &[Bind::Int(interval.max(1))],
            |r| {
                if let (Some(k), Some(b)) = (int(r, "bucket"), real(r, "best")) {
                    builder.best_in(k, b);
                }
            },
        )
        .await?;
        builder
            .finish(model_id)
            .map_err(|why| AppError::bad_param("interval", why))
    }

    async fn known_model(&self, model_id: &str) -> Result<(), AppError> {
        let rows = self
            .fetch_all(
                "SELECT 1 FROM models WHERE model_id = ?1",
                &[Bind::Text(model_id)],
            )
            .await?;
        match rows.is_empty() {
            true => Err(AppError::NotFound {
                what: "model",
                id: model_id.into(),
            }),
            false => Ok(()),
        }
    }
}
