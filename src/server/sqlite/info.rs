//! Facts about the file itself for the sidebar: size, journal mode, row counts, what an
//! older trainer did not write, and how fresh the newest step is.

use super::raw::Bind;
use super::schema::{Schema, OPTIONAL_TABLES, REQUIRED_TABLES};
use super::{int, text, SqliteSource};
use crate::model::{DbInfo, TableRows};
use crate::server::error::AppError;
use std::time::{Duration, Instant};

/// Rows counted per statement, and how long a table's count is reused.
const COUNT_PAGE: i64 = 100_000;
const COUNT_TTL: Duration = Duration::from_secs(30);

impl SqliteSource {
    /// Size, journal mode, row counts and freshness, for the sidebar.
    pub(super) async fn db_info(&self) -> Result<DbInfo, AppError> {
        let schema = self.schema().await?;
        let file_size_bytes = tokio::fs::metadata(self.path())
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let pool = self.pool().await?;
        let journal_mode: String = self
            .retry(|| sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&pool))
            .await?;
        let tables = self.table_rows(&schema).await?;
        let mut missing: Vec<String> = OPTIONAL_TABLES
            .iter()
            .filter(|t| !schema.has_table(t))
            .map(|t| format!("table {t}"))
            .collect();
        if let Some(cols) = schema.columns.get("steps") {
            missing.extend(
                super::columns::step_columns()
                    .iter()
                    .filter(|c| !cols.contains(**c))
                    .map(|c| format!("steps.{c}")),
            );
        }
        let mut newest_step_time: Option<(f64, String)> = None;
        for model in self.read_models().await? {
            let rows = self
                .fetch_all(
                    "SELECT timestamp FROM steps WHERE model_id = ?1 ORDER BY step DESC LIMIT 1",
                    &[Bind::Text(&model.model_id)],
                )
                .await?;
            if let Some(ts) = rows.first().and_then(|r| text(r, "timestamp")) {
                let t = crate::analysis::time::parse_iso8601(&ts).unwrap_or(f64::MIN);
                if newest_step_time.as_ref().is_none_or(|(best, _)| t > *best) {
                    newest_step_time = Some((t, ts));
                }
            }
        }
        Ok(DbInfo {
            path: self.shown(),
            file_size_bytes,
            journal_mode,
            tables,
            newest_step_time: newest_step_time.map(|(_, ts)| ts),
            missing,
            postgres: false,
        })
    }

    /// Row counts of the trainer's tables, counted at most every `COUNT_TTL`: a count walks
    /// the whole table, so it is done in pages by rowid, never as one long statement.
    async fn table_rows(&self, schema: &Schema) -> Result<Vec<TableRows>, AppError> {
        if let Some((at, counts)) = self
            .inner
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if at.elapsed() < COUNT_TTL {
                return Ok(counts.clone());
            }
        }
        let mut tables = Vec::new();
        for table in REQUIRED_TABLES.iter().chain(OPTIONAL_TABLES.iter()) {
            if schema.has_table(table) {
                tables.push(TableRows {
                    table: table.to_string(),
                    rows: self.count_rows(table).await?,
                });
            }
        }
        *self.inner.counts.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), tables.clone()));
        Ok(tables)
    }

    async fn count_rows(&self, table: &str) -> Result<i64, AppError> {
        let sql = format!(
            "SELECT COUNT(*) AS n, MAX(rowid) AS last FROM \
             (SELECT rowid FROM \"{table}\" WHERE rowid > ?1 ORDER BY rowid LIMIT ?2)"
        );
        let (mut total, mut after) = (0, i64::MIN);
        loop {
            let rows = self
                .fetch_all(&sql, &[Bind::Int(after), Bind::Int(COUNT_PAGE)])
                .await?;
            let n = rows.first().and_then(|r| int(r, "n")).unwrap_or(0);
            total += n;
            match rows.first().and_then(|r| int(r, "last")) {
                Some(last) if n == COUNT_PAGE => after = last,
                _ => return Ok(total),
            }
        }
    }
}
