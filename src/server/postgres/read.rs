//! Reading shipped runs back out of PostgreSQL: a run's steps in a range, only the columns
//! asked for, a chunk at a time.

use super::chunks::{decode_steps, Column};
use super::PgError;
use crate::model::Step;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// Up to `limit` of the run's steps within `range` (inclusive), from the low end up or the
/// high end down, with `columns` filled (the step number always).
pub async fn steps(
    db: &mut PgConnection,
    run_id: &str,
    model_id: &str,
    range: (i64, i64),
    newest_first: bool,
    limit: usize,
    columns: &[Column],
) -> Result<Vec<Step>, PgError> {
    if limit == 0 || range.0 > range.1 {
        return Ok(Vec::new());
    }
    // Which chunks: from the end asked for, until they hold `limit` steps.
    let order = if newest_first { "DESC" } else { "ASC" };
    let index: Vec<(i32, i32)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT chunk, n FROM step_chunks
          WHERE run_id = $1 AND col = 'step' AND last_step >= $2 AND first_step <= $3
          ORDER BY chunk {order} LIMIT $4"
    )))
    .bind(run_id)
    .bind(range.0)
    .bind(range.1)
    .bind(most_chunks(limit))
    .fetch_all(&mut *db)
    .await?;
    let wanted = enough(index, limit);
    let mut names: Vec<&str> = columns.iter().map(|c| c.name()).collect();
    if !columns.contains(&Column::Step) {
        names.push(Column::Step.name());
    }
    let rows: Vec<(i32, String, Vec<u8>)> = sqlx::query_as(
        "SELECT chunk, col, data FROM step_chunks
          WHERE run_id = $1 AND chunk = ANY($2) AND col = ANY($3)",
    )
    .bind(run_id)
    .bind(&wanted)
    .bind(&names)
    .fetch_all(&mut *db)
    .await?;
    let mut by_chunk: BTreeMap<i32, Vec<(Column, Vec<u8>)>> = BTreeMap::new();
    for (chunk, col, data) in rows {
        if let Some(col) = Column::from_name(&col) {
            by_chunk.entry(chunk).or_default().push((col, data));
        }
    }
    let mut steps = Vec::new();
    for (chunk, cols) in by_chunk {
        let parts: Vec<(Column, &[u8])> = cols.iter().map(|(c, d)| (*c, d.as_slice())).collect();
        let decoded = decode_steps(&parts, run_id, model_id)
            .map_err(|e| PgError::Corrupt(format!("run {run_id}, chunk {chunk}: {}", e.0)))?;
        steps.extend(
            decoded
                .into_iter()
                .filter(|s| (range.0..=range.1).contains(&s.step)),
        );
    }
    if newest_first {
        steps.reverse();
    }
    steps.truncate(limit);
    Ok(steps)
}

/// The chunks (from the end asked for) that surely hold `limit` records of the range. Only
/// the first may lie partly outside it (the range begins inside it), so it is not counted.
fn enough(index: Vec<(i32, i32)>, limit: usize) -> Vec<i32> {
    let mut wanted = Vec::new();
    let mut held = 0usize;
    for (chunk, n) in index {
        if held >= limit {
            break;
        }
        if !wanted.is_empty() {
            held += usize::try_from(n).unwrap_or(0);
        }
        wanted.push(chunk);
    }
    wanted
}

/// At most how many chunks `enough` takes for `limit` records: every chunk but the last
/// holds at least CHUNK, and the first may hold none of the range.
fn most_chunks(limit: usize) -> i64 {
    i64::try_from(limit / super::chunks::CHUNK + 2).unwrap_or(i64::MAX)
}

/// Up to `limit` of the run's records of `kind` (`routing_mod`, …, `adaptive_lr`) within
/// `range`, in step order (then layer).
pub async fn records<T: DeserializeOwned>(
    db: &mut PgConnection,
    run_id: &str,
    kind: &str,
    range: (i64, i64),
    limit: usize,
    step_of: impl Fn(&T) -> i64,
) -> Result<Vec<T>, PgError> {
    if limit == 0 || range.0 > range.1 {
        return Ok(Vec::new());
    }
    let index: Vec<(i32, i32)> = sqlx::query_as(
        "SELECT chunk, n FROM record_chunks
          WHERE run_id = $1 AND kind = $2 AND last_step >= $3 AND first_step <= $4
          ORDER BY chunk LIMIT $5",
    )
    .bind(run_id)
    .bind(kind)
    .bind(range.0)
    .bind(range.1)
    .bind(most_chunks(limit))
    .fetch_all(&mut *db)
    .await?;
    let wanted = enough(index, limit);
    let rows: Vec<(i32, String)> = sqlx::query_as(
        "SELECT chunk, data::text FROM record_chunks
          WHERE run_id = $1 AND kind = $2 AND chunk = ANY($3) ORDER BY chunk",
    )
    .bind(run_id)
    .bind(kind)
    .bind(&wanted)
    .fetch_all(&mut *db)
    .await?;
    let mut found = Vec::new();
    for (chunk, json) in rows {
        let part: Vec<T> = serde_json::from_str(&json)
            .map_err(|e| PgError::Corrupt(format!("run {run_id}, {kind} chunk {chunk}: {e}")))?;
        found.extend(
            part.into_iter()
                .filter(|r| (range.0..=range.1).contains(&step_of(r))),
        );
        if found.len() >= limit {
            break;
        }
    }
    found.truncate(limit);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::postgres::chunks::CHUNK;

    #[test]
    fn enough_chunks_for_the_limit_and_no_more_than_one_spare() {
        let index: Vec<(i32, i32)> = (0..10).map(|c| (c, CHUNK as i32)).collect();
        // The first chunk may hold none of the range: one more than the count suggests.
        assert_eq!(enough(index.clone(), 1), vec![0, 1]);
        assert_eq!(enough(index.clone(), CHUNK), vec![0, 1]);
        assert_eq!(enough(index.clone(), CHUNK + 1), vec![0, 1, 2]);
        assert_eq!(enough(index.clone(), usize::MAX).len(), 10);
        assert!(enough(index.clone(), 5 * CHUNK).len() as i64 <= most_chunks(5 * CHUNK));
        assert!(enough(index, 5 * CHUNK - 1).len() as i64 <= most_chunks(5 * CHUNK - 1));
    }
}
