//! What the trainer's file holds: its tables and columns (read at open and whenever
//! `PRAGMA schema_version` moves), whether it is a HYDRA database at all, and what SQLite's
//! errors mean in the user's words.

use crate::server::error::{sqlite_code, AppError};
use sqlx::sqlite::SqlitePool;
use std::collections::{HashMap, HashSet};

/// Tables every HYDRA database has; without them the file is something else.
pub const REQUIRED_TABLES: [&str; 3] = ["models", "runs", "steps"];
/// Columns every query relies on.
const REQUIRED_COLUMNS: [(&str, &str); 6] = [
    ("models", "model_id"),
    ("runs", "run_id"),
    ("runs", "model_id"),
    ("steps", "step"),
    ("steps", "run_id"),
    ("steps", "model_id"),
];
/// Tables older trainers did not write: absent means an empty series.
pub const OPTIONAL_TABLES: [&str; 4] = ["routing_mod", "routing_mor", "routing_moe", "adaptive_lr"];

/// Which tables and columns this file has, as of `version` (`PRAGMA schema_version`).
#[derive(Debug, Default)]
pub struct Schema {
    pub version: i64,
    pub columns: HashMap<String, HashSet<String>>,
}

impl Schema {
    pub fn has_table(&self, table: &str) -> bool {
        self.columns.contains_key(table)
    }

    /// One row: the highest rowid of each table the live feed follows (0 when absent).
    pub fn marks_sql(&self) -> String {
        let max = |t: &str| {
            if self.has_table(t) {
                format!("(SELECT IFNULL(MAX(rowid), 0) FROM {t}) AS {t}")
            } else {
                format!("0 AS {t}")
            }
        };
        let tables = ["steps", "routing_mod", "routing_mor", "routing_moe", "runs"];
        format!("SELECT {}", tables.map(max).join(", "))
    }

    /// `a, b, NULL AS c`: every expected column, absent ones as NULL, so old files decode
    /// the same way as new ones.
    pub fn select_list(&self, table: &str, expected: &[&str]) -> String {
        let present = self.columns.get(table);
        expected
            .iter()
            .map(|c| match present {
                Some(cols) if cols.contains(*c) => format!("\"{c}\""),
                _ => format!("NULL AS \"{c}\""),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

pub async fn read_schema(pool: &SqlitePool, version: i64) -> Result<Schema, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p \
         WHERE m.type = 'table'",
    )
    .fetch_all(pool)
    .await?;
    let mut columns: HashMap<String, HashSet<String>> = HashMap::new();
    for (table, column) in rows {
        columns.entry(table).or_default().insert(column);
    }
    Ok(Schema { version, columns })
}

/// The tables and columns every query relies on are there: the file is a HYDRA database.
pub async fn check_hydra(pool: &SqlitePool, shown: &str) -> Result<(), AppError> {
    let schema = read_schema(pool, 0)
        .await
        .map_err(|e| classify_open_error(shown, e))?;
    let mut missing: Vec<_> = REQUIRED_TABLES
        .iter()
        .filter(|t| !schema.has_table(t))
        .map(|t| format!("no table `{t}`"))
        .collect();
    for (table, column) in REQUIRED_COLUMNS {
        if schema
            .columns
            .get(table)
            .is_some_and(|cols| !cols.contains(column))
        {
            missing.push(format!("table `{table}` has no column `{column}`"));
        }
    }
    if schema.columns.is_empty() {
        return Err(AppError::NotHydra {
            path: shown.into(),
            why: "it has no tables yet (a trainer creates them when it starts)".into(),
        });
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AppError::NotHydra {
            path: shown.into(),
            why: missing.join(", "),
        })
    }
}

pub fn classify_open_error(path: &str, e: sqlx::Error) -> AppError {
    match sqlite_code(&e).map(|c| c & 0xff) {
        Some(14) => AppError::DbMissing { path: path.into() },
        _ => classify_error(path, e),
    }
}

pub fn classify_error(path: &str, e: sqlx::Error) -> AppError {
    if matches!(e, sqlx::Error::PoolTimedOut) {
        return AppError::Busy;
    }
    match sqlite_code(&e).map(|c| c & 0xff) {
        Some(14) => AppError::DbMissing { path: path.into() },
        Some(26) => AppError::NotHydra {
            path: path.into(),
            why: "it is not an SQLite database".into(),
        },
        Some(11) => AppError::NotHydra {
            path: path.into(),
            why: "the file is corrupt or truncated".into(),
        },
        _ => AppError::Database(e),
    }
}
