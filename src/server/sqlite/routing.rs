//! A run's routing rows (MoD, MoR, MoE), a bounded page at a time.

use super::columns::{
    adaptive_lr_from, mod_from, moe_from, mor_from, routing_table, ADAPTIVE_LR_COLUMNS,
};
use super::runs::RunSpan;
use super::SqliteSource;
use crate::model::AdaptiveLr;
use crate::server::error::AppError;
use crate::server::source::{RoutingKind, RoutingRows};

impl SqliteSource {
    /// Up to `limit` rows of a routing table for the run within the span, in step (then
    /// layer) order. A table an older trainer did not write reads as empty.
    pub(super) async fn routing_rows(
        &self,
        span: &RunSpan,
        kind: RoutingKind,
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        let schema = self.schema().await?;
        let (table, columns, order) = routing_table(kind);
        if !schema.has_table(table) || span.low > span.high || limit == 0 {
            return Ok(RoutingRows::empty(kind));
        }
        let sql = format!(
            "SELECT {} FROM {table} WHERE model_id = ?1 AND step >= ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY {order} LIMIT ?5",
            schema.select_list(table, columns),
        );
        let binds = span.binds(span.low, i64::try_from(limit).unwrap_or(i64::MAX));
        Ok(match kind {
            RoutingKind::Mod => {
                RoutingRows::Mod(self.long_read(&sql, &binds, limit, mod_from).await?)
            }
            RoutingKind::Mor => {
                RoutingRows::Mor(self.long_read(&sql, &binds, limit, mor_from).await?)
            }
            RoutingKind::Moe => {
                RoutingRows::Moe(self.long_read(&sql, &binds, limit, moe_from).await?)
            }
        })
    }

    /// Up to `limit` adaptive-LR records of the run within the span, in step order (none
    /// when the file has no such table).
    pub(super) async fn adaptive_lr_rows(
        &self,
        span: &RunSpan,
        limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        let schema = self.schema().await?;
        if !schema.has_table("adaptive_lr") || span.low > span.high || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM adaptive_lr WHERE model_id = ?1 AND step >= ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY step LIMIT ?5",
            schema.select_list("adaptive_lr", &ADAPTIVE_LR_COLUMNS),
        );
        let binds = span.binds(span.low, i64::try_from(limit).unwrap_or(i64::MAX));
        self.long_read(&sql, &binds, limit, adaptive_lr_from).await
    }
}
