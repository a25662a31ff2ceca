//! What the trainer committed since: the live feed's and the run cache's view of the file.
//!
//! New rows are found by rowid, not by step: a re-logged step (`INSERT OR REPLACE`) is a new
//! row with a new, higher rowid, so "every rowid above the last one seen" is exactly what the
//! trainer committed since, re-logs included, and `rowid > ?` is a range on the table's own
//! b-tree: its cost is the new rows, not the run's length.

use super::columns::{mod_from, moe_from, mor_from, routing_table, step_columns, step_from};
use super::raw::{Bind, Columns};
use super::{int, SqliteSource};
use crate::model::Run;
use crate::server::error::AppError;
use crate::server::source::{CatchUpPage, LiveRows, Reach, RoutingKind};
use sqlx::sqlite::SqliteRow;

impl SqliteSource {
    /// The highest rowid of each table the feed follows (0 when a table is absent or empty):
    /// one statement, a few b-tree descents.
    pub(super) async fn live_reach(&self) -> Result<Reach, AppError> {
        let schema = self.schema().await?;
        let rows = self.fetch_all(&schema.marks_sql(), &[]).await?;
        Ok(self.reach_from(rows.first()))
    }

    fn reach_from(&self, row: Option<&SqliteRow>) -> Reach {
        let get = |c: &str| row.and_then(|r| int(r, c)).unwrap_or(0);
        Reach {
            epoch: self.epoch(),
            steps: get("steps"),
            routing_mod: get("routing_mod"),
            routing_mor: get("routing_mor"),
            routing_moe: get("routing_moe"),
            runs: get("runs"),
        }
    }

    /// A run's rows committed after `from` and up to `to` (rowids), in commit order, at most
    /// `limit` per table. Returns the rows and how far they reach: `to`, or the last rowid
    /// read when a table hit `limit` (the rest comes next time).
    pub(super) async fn live_rows(
        &self,
        run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError> {
        let schema = self.schema().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut reached = *to;
        let mut rows = LiveRows::default();
        let step_columns = step_columns();
        let tables: [(&str, &[&str], i64, i64, &mut i64); 4] = [
            (
                "steps",
                &step_columns,
                from.steps,
                to.steps,
                &mut reached.steps,
            ),
            (
                "routing_mod",
                routing_table(RoutingKind::Mod).1,
                from.routing_mod,
                to.routing_mod,
                &mut reached.routing_mod,
            ),
            (
                "routing_mor",
                routing_table(RoutingKind::Mor).1,
                from.routing_mor,
                to.routing_mor,
                &mut reached.routing_mor,
            ),
            (
                "routing_moe",
                routing_table(RoutingKind::Moe).1,
                from.routing_moe,
                to.routing_moe,
                &mut reached.routing_moe,
            ),
        ];
        for (table, columns, after, upto, reach) in tables {
            if upto <= after || !schema.has_table(table) {
                continue;
            }
            // `+model_id`, `+run_id`: keep SQLite on the rowid range, off the indexes.
            let sql = format!(
                "SELECT {}, rowid AS live_rowid FROM {table} WHERE rowid > ?1 AND rowid <= ?2 \
                 AND +model_id = ?3 AND +run_id = ?4 ORDER BY rowid LIMIT ?5",
                schema.select_list(table, columns)
            );
            let found = self
                .fetch_all(
                    &sql,
                    &[
                        Bind::Int(after),
                        Bind::Int(upto),
                        Bind::Text(&run.model_id),
                        Bind::Text(&run.run_id),
                        Bind::Int(limit),
                    ],
                )
                .await?;
            if found.len() as i64 >= limit {
                *reach = found
                    .last()
                    .and_then(|r| int(r, "live_rowid"))
                    .unwrap_or(upto);
            }
            for r in &found {
                let rowid = int(r, "live_rowid").unwrap_or(0);
                let r = r as &dyn Columns;
                match table {
                    "steps" => rows.steps.push((rowid, step_from(r))),
                    "routing_mod" => rows.routing_mod.push((rowid, mod_from(r))),
                    "routing_mor" => rows.routing_mor.push((rowid, mor_from(r))),
                    _ => rows.routing_moe.push((rowid, moe_from(r))),
                }
            }
        }
        Ok((rows, reached))
    }

    /// One page of a follower's catch-up: the run's steps after `after_step` (at most
    /// `limit`) and its routing rows up to the last of them, read in one short transaction
    /// together with the marks, so that what the feed sends next (rowids above the marks)
    /// neither repeats nor misses a row. `None` as the next cursor: caught up.
    pub(super) async fn live_catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError> {
        let schema = self.schema().await?;
        let span = self.run_span(run).await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let marks_sql = schema.marks_sql();
        let steps_sql = format!(
            "SELECT {} FROM steps WHERE model_id = ?1 AND step > ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY step LIMIT ?5",
            schema.select_list("steps", &step_columns())
        );
        let routing_sql = |kind: RoutingKind| {
            let (table, columns, _) = routing_table(kind);
            schema.has_table(table).then(|| {
                format!(
                    "SELECT {} FROM {table} WHERE model_id = ?1 AND step > ?2 AND step <= ?3 \
                     AND +run_id = ?4 ORDER BY step",
                    schema.select_list(table, columns)
                )
            })
        };
        let routing_sqls = [
            routing_sql(RoutingKind::Mod),
            routing_sql(RoutingKind::Mor),
            routing_sql(RoutingKind::Moe),
        ];
        let pool = &self.pool().await?;
        let (marks, steps, routing) = self
            .retry(|| async {
                let mut tx = pool.begin().await?;
                let marks = sqlx::query(sqlx::AssertSqlSafe(marks_sql.as_str()))
                    .fetch_all(&mut *tx)
                    .await?;
                let steps = sqlx::query(sqlx::AssertSqlSafe(steps_sql.as_str()))
                    .bind(&run.model_id)
                    .bind(after_step)
                    .bind(span.high)
                    .bind(&run.run_id)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                // A full page ends at its last step; otherwise everything up to the span.
                let upto = match steps.last().and_then(|r| int(r, "step")) {
                    Some(last) if steps.len() as i64 >= limit => last,
                    _ => span.high,
                };
                let mut routing = Vec::new();
                for sql in &routing_sqls {
                    routing.push(match sql {
                        Some(sql) => {
                            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                                .bind(&run.model_id)
                                .bind(after_step)
                                .bind(upto)
                                .bind(&run.run_id)
                                .fetch_all(&mut *tx)
                                .await?
                        }
                        None => Vec::new(),
                    });
                }
                tx.commit().await?;
                Ok((marks, steps, routing))
            })
            .await?;
        let reach = self.reach_from(marks.first());
        let next = match steps.last().and_then(|r| int(r, "step")) {
            Some(last) if steps.len() as i64 >= limit => Some(last),
            _ => None,
        };
        let rows = LiveRows {
            source: 0,
            steps: steps.iter().map(|r| (0, step_from(r))).collect(),
            routing_mod: routing[0].iter().map(|r| (0, mod_from(r))).collect(),
            routing_mor: routing[1].iter().map(|r| (0, mor_from(r))).collect(),
            routing_moe: routing[2].iter().map(|r| (0, moe_from(r))).collect(),
        };
        Ok((rows, reach, next))
    }
}
