//! `serve --store postgres://…`: the team's shipped runs as a [`Source`], so every page,
//! the API, comparisons, exports, snapshots, alerts and the live feed read them as they read
//! local files.
//!
//! Live: a listener on [`CHANNEL`] learns of each batch as it commits, so asking how far
//! the store reaches — several times a second per open page — costs nothing until something
//! was shipped. While the listener is down (PostgreSQL restarting), every ask reads the
//! position row instead, and nothing is missed: positions only grow, in commit order.

use super::chunks::Column;
use super::{read, shown, PgError, CHANNEL};
use crate::model::{
    AdaptiveLr, DbInfo, EvalPoint, Metric, Model, RoutingMod, RoutingMoe, RoutingMor, Run, Step,
    TableRows,
};
use crate::server::error::AppError;
use crate::server::source::{
    CatchUpPage, Fields, LiveRows, Reach, RoutingKind, RoutingRows, Source,
};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a reach read while listening stays good without a notification: a lost
/// notification costs at most this much delay.
const TRUST_FOR: Duration = Duration::from_secs(2);

pub struct PostgresSource {
    pool: PgPool,
    at: String,
    live: Arc<Live>,
}

/// What the listener knows.
#[derive(Default)]
struct Live {
    listening: AtomicBool,
    /// A batch was announced since the reach was last read.
    rung: AtomicBool,
    last: Mutex<Option<(Reach, Instant)>>,
}

impl PostgresSource {
    /// Reads the runs in the PostgreSQL behind `pool` (at `url`), and starts listening.
    pub fn new(pool: PgPool, url: &str) -> Self {
        let live = Arc::new(Live::default());
        tokio::spawn(listen(url.to_string(), live.clone()));
        Self {
            pool,
            at: shown(url),
            live,
        }
    }

    fn fault(&self, e: impl Into<PgError>) -> AppError {
        AppError::Postgres {
            at: self.at.clone(),
            why: e.into().to_string(),
        }
    }

    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, AppError> {
        self.pool.acquire().await.map_err(|e| self.fault(e))
    }

    async fn read_reach(&self, db: &mut PgConnection) -> Result<Reach, AppError> {
        let (pos, epoch, runs): (i64, i64, i64) = sqlx::query_as(
            "SELECT pos, epoch, (SELECT coalesce(max(changed), 0) FROM runs) FROM feed_positions",
        )
        .fetch_one(&mut *db)
        .await
        .map_err(|e| self.fault(e))?;
        Ok(Reach {
            epoch: epoch as u64,
            steps: pos,
            routing_mod: pos,
            routing_mor: pos,
            routing_moe: pos,
            runs,
        })
    }

    async fn records<T: serde::de::DeserializeOwned>(
        &self,
        db: &mut PgConnection,
        run: &Run,
        kind: &str,
        range: (i64, i64),
        limit: usize,
        step_of: impl Fn(&T) -> i64,
    ) -> Result<Vec<T>, AppError> {
        read::records(db, &run.run_id, kind, range, limit, step_of)
            .await
            .map_err(|e| self.fault(e))
    }

    async fn routing_on(
        &self,
        db: &mut PgConnection,
        run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        Ok(match kind {
            RoutingKind::Mod => RoutingRows::Mod(
                self.records(db, run, "routing_mod", range, limit, |r: &RoutingMod| {
                    r.step
                })
                .await?,
            ),
            RoutingKind::Mor => RoutingRows::Mor(
                self.records(db, run, "routing_mor", range, limit, |r: &RoutingMor| {
                    r.step
                })
                .await?,
            ),
            RoutingKind::Moe => RoutingRows::Moe(
                self.records(db, run, "routing_moe", range, limit, |r: &RoutingMoe| {
                    r.step
                })
                .await?,
            ),
        })
    }

    async fn steps_on(
        &self,
        db: &mut PgConnection,
        run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        let columns: Vec<Column> = match fields {
            Fields::All => Column::all().collect(),
            Fields::RunCache => Column::BASE
                .into_iter()
                .chain(Metric::FOR_RUN_CACHE.map(Column::Metric))
                .collect(),
            Fields::Metrics(set) => Column::BASE
                .into_iter()
                .chain(std::iter::once(Column::Metric(Metric::LossTotal)))
                .chain(set.metrics().map(Column::Metric))
                .collect(),
        };
        read::steps(
            db,
            &run.run_id,
            &run.model_id,
            range,
            newest_first,
            limit,
            &columns,
        )
        .await
        .map_err(|e| self.fault(e))
    }
}

/// Listens for batches until the process ends, reconnecting after faults.
async fn listen(url: String, live: Arc<Live>) {
    let mut wait = Duration::from_millis(200);
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                if listener.listen(CHANNEL).await.is_ok() {
                    // Anything shipped while we were away is found by reading the reach.
                    live.rung.store(true, Ordering::Relaxed);
                    live.listening.store(true, Ordering::Relaxed);
                    wait = Duration::from_millis(200);
                    // `try_recv` ends with None when the connection drops, instead of
                    // reconnecting silently: we must know, to stop trusting the cache.
                    while let Ok(Some(_)) = listener.try_recv().await {
                        live.rung.store(true, Ordering::Relaxed);
                    }
                }
            }
            Err(e) => tracing::debug!("listening for batches: {e}"),
        }
        live.listening.store(false, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

fn run_from(record: serde_json::Value, node: String) -> Option<Run> {
    let mut run: Run = serde_json::from_value(record).ok()?;
    run.node = Some(node);
    Some(run)
}

#[async_trait::async_trait]
impl Source for PostgresSource {
    async fn check(&self) -> Result<(), AppError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| self.fault(e))
    }

    async fn models(&self) -> Result<Vec<Model>, AppError> {
        let rows: Vec<serde_json::Value> = sqlx::query_scalar(
            "SELECT record FROM models ORDER BY record->>'created_at' NULLS FIRST, model_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.fault(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| serde_json::from_value(r).ok())
            .collect())
    }

    async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError> {
        let rows: Vec<(serde_json::Value, String)> = sqlx::query_as(
            "SELECT record, node FROM runs WHERE $1::text IS NULL OR model_id = $1
              ORDER BY run_id",
        )
        .bind(model_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.fault(e))?;
        let mut runs: Vec<Run> = rows
            .into_iter()
            .filter_map(|(record, node)| run_from(record, node))
            .collect();
        // Oldest first, as the sources on a node order them.
        runs.sort_by(|a, b| {
            (a.start_step.unwrap_or(0), &a.start_time)
                .cmp(&(b.start_step.unwrap_or(0), &b.start_time))
        });
        Ok(runs)
    }

    async fn run(&self, run_id: &str) -> Result<Option<Run>, AppError> {
        let row: Option<(serde_json::Value, String)> =
            sqlx::query_as("SELECT record, node FROM runs WHERE run_id = $1")
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.fault(e))?;
        Ok(row.and_then(|(record, node)| run_from(record, node)))
    }

    async fn steps(
        &self,
        run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        let mut db = self.conn().await?;
        self.steps_on(&mut db, run, range, newest_first, limit, fields)
            .await
    }

    async fn routing(
        &self,
        run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        let mut db = self.conn().await?;
        self.routing_on(&mut db, run, kind, range, limit).await
    }

    async fn adaptive_lr(
        &self,
        run: &Run,
        range: (i64, i64),
        limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        let mut db = self.conn().await?;
        self.records(
            &mut db,
            run,
            "adaptive_lr",
            range,
            limit,
            |r: &AdaptiveLr| r.step,
        )
        .await
    }

    async fn evals(&self, run: &Run) -> Result<Vec<EvalPoint>, AppError> {
        let evals: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT evals FROM runs WHERE run_id = $1")
                .bind(&run.run_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.fault(e))?;
        Ok(evals
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    async fn reach(&self) -> Result<Reach, AppError> {
        let live = &self.live;
        if live.listening.load(Ordering::Relaxed) && !live.rung.load(Ordering::Relaxed) {
            let last = *live.last.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((reach, at)) = last.filter(|(_, at)| at.elapsed() < TRUST_FOR) {
                let _ = at;
                return Ok(reach);
            }
        }
        live.rung.store(false, Ordering::Relaxed);
        let mut db = self.conn().await?;
        let reach = self.read_reach(&mut db).await?;
        *live.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((reach, Instant::now()));
        Ok(reach)
    }

    async fn changes(
        &self,
        run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError> {
        let mut rows = LiveRows::default();
        let mut reached = *to;
        // All feeds share one position counter, but each feed stands where its last page
        // (cut at `limit`) left it.
        let window = |feed: &str| match feed {
            "steps" => (from.steps, to.steps),
            "routing_mod" => (from.routing_mod, to.routing_mod),
            "routing_mor" => (from.routing_mor, to.routing_mor),
            _ => (from.routing_moe, to.routing_moe),
        };
        let feeds = ["steps", "routing_mod", "routing_mor", "routing_moe"];
        let (lowest, highest) = feeds
            .iter()
            .map(|f| window(f))
            .fold((i64::MAX, i64::MIN), |(lo, hi), (f, t)| {
                (lo.min(f), hi.max(t))
            });
        if feeds.iter().all(|f| window(f).1 <= window(f).0) {
            return Ok((rows, reached));
        }
        let mut db = self.conn().await?;
        // Batches of this run with new records between the two positions.
        let batches: Vec<(String, Option<i64>, Option<i64>, i64, i64)> = sqlx::query_as(
            "SELECT feed, after_step, newest_step, records, pos_last FROM batches
              WHERE run_id = $1 AND records > 0 AND pos_last > $2 AND pos_last - records < $3
                AND feed <> 'adaptive_lr'
              ORDER BY pos_last",
        )
        .bind(&run.run_id)
        .bind(lowest)
        .bind(highest)
        .fetch_all(&mut *db)
        .await
        .map_err(|e| self.fault(e))?;
        for feed in feeds {
            let (after, upto) = window(feed);
            let mine: Vec<_> = batches
                .iter()
                .filter(|b| b.0 == feed && b.4 > after && b.4 - b.3 < upto)
                .collect();
            let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
                continue;
            };
            let low = first.1.map_or(i64::MIN, |s| s.saturating_add(1));
            let high = last.2.unwrap_or(i64::MAX);
            // Each new record's position: its batch's, counted from the batch's first.
            let place = |step: i64, nth: &mut Vec<(i64, i64)>| -> Option<i64> {
                let i = mine.iter().position(|b| {
                    b.1.is_none_or(|after| step > after) && b.2.is_some_and(|n| step <= n)
                })?;
                let (used, _) = &mut nth[i];
                *used += 1;
                let (_, _, _, records, pos_last) = mine[i];
                Some(pos_last - records + *used)
            };
            let mut nth = vec![(0i64, 0i64); mine.len()];
            let within = |p: i64| p > after && p <= upto;
            if feed == "steps" {
                let steps = self
                    .steps_on(&mut db, run, (low, high), false, usize::MAX, Fields::All)
                    .await?;
                for s in steps {
                    if let Some(p) = place(s.step, &mut nth).filter(|&p| within(p)) {
                        rows.steps.push((p, s));
                    }
                }
                if rows.steps.len() > limit {
                    rows.steps.truncate(limit);
                    reached.steps = rows.steps.last().map_or(to.steps, |(p, _)| *p);
                }
                continue;
            }
            let kind = match feed {
                "routing_mod" => RoutingKind::Mod,
                "routing_mor" => RoutingKind::Mor,
                _ => RoutingKind::Moe,
            };
            let found = self
                .routing_on(&mut db, run, kind, (low, high), usize::MAX)
                .await?;
            macro_rules! positioned {
                ($records:expr, $into:expr, $reach:expr) => {{
                    for r in $records {
                        if let Some(p) = place(r.step, &mut nth).filter(|&p| within(p)) {
                            $into.push((p, r));
                        }
                    }
                    if $into.len() > limit {
                        $into.truncate(limit);
                        $reach = $into.last().map_or($reach, |(p, _)| *p);
                    }
                }};
            }
            match found {
                RoutingRows::Mod(v) => positioned!(v, rows.routing_mod, reached.routing_mod),
                RoutingRows::Mor(v) => positioned!(v, rows.routing_mor, reached.routing_mor),
                RoutingRows::Moe(v) => positioned!(v, rows.routing_moe, reached.routing_moe),
            }
        }
        Ok((rows, reached))
    }

    async fn catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError> {
        // One snapshot for the position and the records, so the feed that follows from
        // that position neither repeats nor misses one. A transaction that rolls back when
        // dropped: a follower that leaves mid-read must not hand the pool a connection
        // stuck in an old snapshot.
        let mut db = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|e| self.fault(e))?;
        let page = async {
            let reach = self.read_reach(&mut db).await?;
            let from = after_step.saturating_add(1);
            let steps = self
                .steps_on(&mut db, run, (from, i64::MAX), false, limit, Fields::All)
                .await?;
            let full = steps.len() >= limit;
            let upto = match steps.last() {
                Some(last) if full => last.step,
                _ => i64::MAX,
            };
            let next = steps.last().filter(|_| full).map(|s| s.step);
            let mut rows = LiveRows {
                source: 0,
                steps: steps.into_iter().map(|s| (0, s)).collect(),
                ..LiveRows::default()
            };
            for kind in [RoutingKind::Mod, RoutingKind::Mor, RoutingKind::Moe] {
                match self
                    .routing_on(&mut db, run, kind, (from, upto), usize::MAX)
                    .await?
                {
                    RoutingRows::Mod(v) => {
                        rows.routing_mod = v.into_iter().map(|r| (0, r)).collect()
                    }
                    RoutingRows::Mor(v) => {
                        rows.routing_mor = v.into_iter().map(|r| (0, r)).collect()
                    }
                    RoutingRows::Moe(v) => {
                        rows.routing_moe = v.into_iter().map(|r| (0, r)).collect()
                    }
                }
            }
            Ok::<_, AppError>((rows, reach, next))
        }
        .await;
        // Read only: ending it either way changes nothing.
        let _ = db.rollback().await;
        page
    }

    async fn info(&self) -> Result<DbInfo, AppError> {
        let (bytes, version, runs, steps, nodes, chunks): (i64, String, i64, i64, i64, i64) =
            sqlx::query_as(
                "SELECT pg_database_size(current_database()), current_setting('server_version'),
                        (SELECT count(*) FROM runs), (SELECT coalesce(sum(steps), 0)::bigint FROM runs),
                        (SELECT count(*) FROM nodes), (SELECT count(*) FROM step_chunks)",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.fault(e))?;
        let newest: Option<String> = sqlx::query_scalar(
            "SELECT max(coalesce(record->>'last_seen', record->>'end_time')) FROM runs",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.fault(e))?;
        let count = |table: &str, rows: i64| TableRows {
            table: table.into(),
            rows,
        };
        Ok(DbInfo {
            path: self.at.clone(),
            file_size_bytes: u64::try_from(bytes).unwrap_or(0),
            journal_mode: format!("PostgreSQL {version}"),
            tables: vec![
                count("nodes", nodes),
                count("runs", runs),
                count("steps", steps),
                count("step chunks", chunks),
            ],
            newest_step_time: newest,
            missing: Vec::new(),
            postgres: true,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
