//! A run's step rows, a bounded page at a time.

use super::columns::{columns_of, decoder_of};
use super::runs::RunSpan;
use super::SqliteSource;
use crate::model::Step;
use crate::server::error::AppError;
use crate::server::source::Fields;

impl SqliteSource {
    /// Up to `limit` rows of the run within the span, from its low end up, or from its high
    /// end down when `newest_first`; only the columns `fields` needs, decoded by position.
    pub(super) async fn step_rows(
        &self,
        span: &RunSpan,
        limit: usize,
        newest_first: bool,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        if span.low > span.high || limit == 0 {
            return Ok(Vec::new());
        }
        let schema = self.schema().await?;
        let (range, order, from) = if newest_first {
            ("step <= ?2 AND step >= ?3", "DESC", span.high)
        } else {
            ("step >= ?2 AND step <= ?3", "ASC", span.low)
        };
        let sql = format!(
            "SELECT {} FROM steps WHERE model_id = ?1 AND {range} AND +run_id = ?4 \
             ORDER BY step {order} LIMIT ?5",
            schema.select_list("steps", &columns_of(fields))
        );
        let mut binds = span.binds(from, i64::try_from(limit).unwrap_or(i64::MAX));
        if newest_first {
            binds[2] = super::raw::Bind::Int(span.low);
        }
        self.long_read(&sql, &binds, limit, decoder_of(fields))
            .await
    }
}
