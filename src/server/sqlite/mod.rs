//! The trainer's database as a [`Source`], read-only.
//!
//! The file belongs to the trainer (`spec/training-db.md`). We open it `mode=ro`, never
//! create, migrate or add an index, and keep every read short and bounded: in the default
//! rollback-journal mode a reader holding the file blocks the trainer's commit, and the
//! trainer gives up after 5 s with `database is locked`. Large ranges are read in pages by
//! `step`, each page its own short statement, so the trainer can commit in between.
//!
//! Queries filter a run through the `(model_id, step)` primary key and test `+run_id`
//! without its index: there is no `(run_id, step)` index, and using `idx_steps_run` would
//! read and sort the whole run for every page.
//!
//! This file holds the connection's lifecycle (open when the file appears, reopen when it is
//! replaced, retry while the trainer writes); the reads live beside it by subject.

mod aggregates;
pub mod columns;
mod info;
mod live;
pub mod raw;
mod routing;
mod run_rows;
mod runs;
mod schema;
mod steps;
mod turns;

use crate::model::{AdaptiveLr, DbInfo, Milestones, Model, ModelStats, Run, Step};
use crate::server::error::{is_busy, AppError};
use crate::server::source::{
    CatchUpPage, Fields, LiveRows, Reach, RoutingKind, RoutingRows, Source,
};
use raw::{Bind, Columns};
use runs::RunFilter;
use schema::{check_hydra, classify_error, classify_open_error, read_schema, Schema};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the schema we detected is trusted before `PRAGMA schema_version` is checked.
const SCHEMA_RECHECK: Duration = Duration::from_secs(1);
/// How often a read checks that the path still names the file it opened.
const FILE_RECHECK: Duration = Duration::from_secs(1);
/// How long a read waits for a trainer holding the file before saying it stayed busy.
const BUSY_PATIENCE: Duration = Duration::from_secs(5);
/// How long the file stays open without a read. In WAL mode the trainer's final checkpoint
/// (and the removal of its -wal file) only happens when it closes the last connection.
const IDLE_CLOSE: Duration = Duration::from_secs(5);

/// The trainer's SQLite file. Cheap to clone.
#[derive(Clone)]
pub struct SqliteSource {
    inner: Arc<Inner>,
}

struct Inner {
    /// The file as opened, or nothing while it is missing or unreadable: every read goes
    /// through [`SqliteSource::pool`], which opens it when it appears and again when it is
    /// replaced.
    db: tokio::sync::Mutex<Option<OpenDb>>,
    path: PathBuf,
    schema: Mutex<CachedSchema>,
    /// Row counts for the sidebar, with when they were counted.
    counts: Mutex<Option<(Instant, Vec<crate::model::TableRows>)>>,
    /// Bumped whenever the file is let go: what was read from it no longer holds.
    epoch: AtomicU64,
    /// What `steps` said about each run so far (`run_rows.rs`).
    seen_rows: Mutex<run_rows::SeenRows>,
    /// Every statement on the file waits for its turn (`turns.rs`).
    turns: turns::Turns,
}

struct CachedSchema {
    schema: Arc<Schema>,
    checked: Instant,
}

impl CachedSchema {
    /// Nothing known: the next read checks the file.
    fn unknown() -> Self {
        Self {
            schema: Arc::new(Schema {
                version: i64::MIN,
                ..Default::default()
            }),
            checked: Instant::now() - SCHEMA_RECHECK * 2,
        }
    }
}

/// The trainer's file while it is open.
struct OpenDb {
    pool: SqlitePool,
    file: Option<FileId>,
    /// When the path was last seen to still name this file.
    checked: Instant,
    /// When a read last asked for the pool.
    used: Instant,
}

/// Which file a path names: a trainer that deletes and recreates its database makes a new
/// one, and a file that shrank was rewritten, so the old reads no longer hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    len: u64,
}

impl FileId {
    async fn of(path: &Path) -> Option<Self> {
        let m = tokio::fs::metadata(path).await.ok()?;
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Some(Self {
            dev,
            ino,
            len: m.len(),
        })
    }

    /// Still the file that was opened: the same inode, not shorter.
    fn same_file(&self, now: &Self) -> bool {
        self.dev == now.dev && self.ino == now.ino && now.len >= self.len
    }
}

impl SqliteSource {
    /// A source for `path` that opens it when it is first read, and again whenever it
    /// appears, is replaced or recovers: a server starts before the trainer's first write
    /// and outlives a trainer recreating its file.
    pub fn watch(path: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: tokio::sync::Mutex::new(None),
                path: path.to_path_buf(),
                schema: Mutex::new(CachedSchema::unknown()),
                counts: Mutex::new(None),
                epoch: AtomicU64::new(0),
                seen_rows: Mutex::default(),
                turns: turns::Turns::default(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn shown(&self) -> String {
        self.inner.path.display().to_string()
    }

    fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::Relaxed)
    }

    /// The open file's connection pool, opening the file first if need be. At most once a
    /// second the path is checked: gone means "missing" (and everything read from it is
    /// forgotten), another file means it was replaced and is opened afresh.
    async fn pool(&self) -> Result<SqlitePool, AppError> {
        let shown = || self.shown();
        let mut db = self.inner.db.lock().await;
        if let Some(open) = db.as_mut() {
            open.used = Instant::now();
            if open.checked.elapsed() < FILE_RECHECK {
                return Ok(open.pool.clone());
            }
            let now = FileId::of(&self.inner.path).await;
            match (open.file, now) {
                (Some(was), Some(now)) if was.same_file(&now) => {
                    open.file = Some(now);
                    open.checked = Instant::now();
                    return Ok(open.pool.clone());
                }
                (_, now) => {
                    self.drop_file(db.take());
                    if now.is_none() {
                        tracing::warn!("{} is gone; waiting for it to come back", shown());
                        return Err(AppError::DbMissing { path: shown() });
                    }
                    tracing::warn!("{} was replaced; reading the new file", shown());
                }
            }
        }
        let file = match FileId::of(&self.inner.path).await {
            Some(f) => f,
            None => return Err(AppError::DbMissing { path: shown() }),
        };
        if tokio::fs::metadata(&self.inner.path)
            .await
            .is_ok_and(|m| !m.is_file())
        {
            return Err(AppError::NotHydra {
                path: shown(),
                why: "it is a directory, not a file".into(),
            });
        }
        let pool = connect(&self.inner.path)
            .await
            .map_err(|e| classify_open_error(&shown(), e))?;
        if let Err(e) = check_hydra(&pool, &shown()).await {
            pool.close().await;
            return Err(e);
        }
        *db = Some(OpenDb {
            pool: pool.clone(),
            file: Some(file),
            checked: Instant::now(),
            used: Instant::now(),
        });
        tokio::spawn(close_when_idle(Arc::downgrade(&self.inner), pool.clone()));
        Ok(pool)
    }

    /// Closes `open` and forgets everything read from it: the epoch moves on, so readers
    /// holding what came from the old file read again.
    fn drop_file(&self, open: Option<OpenDb>) {
        if let Some(open) = open {
            // Closing waits for a read in flight; nobody needs to wait for that.
            tokio::spawn(async move { open.pool.close().await });
        }
        *self.inner.schema.lock().unwrap_or_else(|e| e.into_inner()) = CachedSchema::unknown();
        *self.inner.counts.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.inner.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// After a read found the file corrupt or gone: the next read opens it again.
    async fn reopen_later(&self) {
        let open = self.inner.db.lock().await.take();
        self.drop_file(open);
    }

    /// The schema, re-read when the trainer changed it (new tables, added columns).
    async fn schema(&self) -> Result<Arc<Schema>, AppError> {
        {
            let cached = self.inner.schema.lock().unwrap_or_else(|e| e.into_inner());
            if cached.checked.elapsed() < SCHEMA_RECHECK {
                return Ok(cached.schema.clone());
            }
        }
        let pool = self.pool().await?;
        let version: i64 = self
            .retry(|| sqlx::query_scalar("PRAGMA schema_version").fetch_one(&pool))
            .await?;
        let current = self
            .inner
            .schema
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .schema
            .clone();
        let schema = if current.version == version {
            current
        } else {
            Arc::new(self.retry(|| read_schema(&pool, version)).await?)
        };
        *self.inner.schema.lock().unwrap_or_else(|e| e.into_inner()) = CachedSchema {
            schema: schema.clone(),
            checked: Instant::now(),
        };
        Ok(schema)
    }

    /// Runs a read, retrying while the trainer holds the file. SQLite's busy timeout already
    /// waits inside each attempt; this covers the cases it returns early.
    async fn retry<T, F, Fut>(&self, read: F) -> Result<T, AppError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
    {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let turn = self.inner.turns.take().await;
            let got = read().await;
            drop(turn); // not held while waiting for the trainer
            match got {
                Ok(v) => return Ok(v),
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_PATIENCE => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt.min(10))).await;
                }
                Err(e) if is_busy(&e) => return Err(AppError::Busy),
                Err(e) => {
                    let error = classify_error(&self.shown(), e);
                    if matches!(
                        error,
                        AppError::NotHydra { .. } | AppError::DbMissing { .. }
                    ) {
                        self.reopen_later().await;
                    }
                    return Err(error);
                }
            }
        }
    }

    async fn fetch_all(&self, sql: &str, binds: &[Bind<'_>]) -> Result<Vec<SqliteRow>, AppError> {
        let pool = self.pool().await?;
        self.retry(|| {
            // Our SQL is assembled only from constant table and column names; values are bound.
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = match b {
                    Bind::Int(v) => q.bind(*v),
                    Bind::Text(v) => q.bind(*v),
                };
            }
            q.fetch_all(&pool)
        })
        .await
    }

    /// A page of a long read (at most `limit` rows), decoded by position: through SQLite's
    /// C API ([`raw`]), or when that fails (a busy or damaged file) through sqlx, which
    /// waits out the trainer and names the problem.
    async fn long_read<T>(
        &self,
        sql: &str,
        binds: &[Bind<'_>],
        limit: usize,
        decode: impl Fn(&dyn Columns) -> T,
    ) -> Result<Vec<T>, AppError> {
        let pool = self.pool().await?;
        let turn = self.inner.turns.take().await;
        let fast = raw::rows(&pool, sql, binds, limit, |r| decode(r)).await;
        drop(turn); // the fallback takes its own
        match fast {
            Ok(rows) => Ok(rows),
            Err(e) => {
                tracing::debug!("reading through sqlx instead: {e}");
                let rows = self.fetch_all(sql, binds).await?;
                Ok(rows.iter().map(|r| decode(r)).collect())
            }
        }
    }
}

#[async_trait::async_trait]
impl Source for SqliteSource {
    async fn check(&self) -> Result<(), AppError> {
        self.pool().await.map(|_| ())
    }

    async fn models(&self) -> Result<Vec<Model>, AppError> {
        self.read_models().await
    }

    async fn runs(&self, model_id: Option<&str>) -> Result<Vec<Run>, AppError> {
        match model_id {
            Some(m) => self.runs_of(RunFilter::Model(m)).await,
            None => self.runs_of(RunFilter::All).await,
        }
    }

    async fn run(&self, run_id: &str) -> Result<Option<Run>, AppError> {
        Ok(self
            .runs_of(RunFilter::Id(run_id))
            .await?
            .into_iter()
            .next())
    }

    async fn span(&self, run: &Run) -> Result<(i64, i64), AppError> {
        let span = self.run_span(run).await?;
        Ok((span.low, span.high))
    }

    async fn steps(
        &self,
        run: &Run,
        range: (i64, i64),
        newest_first: bool,
        limit: usize,
        fields: Fields,
    ) -> Result<Vec<Step>, AppError> {
        let span = self.run_span(run).await?.within(range);
        self.step_rows(&span, limit, newest_first, fields).await
    }

    async fn routing(
        &self,
        run: &Run,
        kind: RoutingKind,
        range: (i64, i64),
        limit: usize,
    ) -> Result<RoutingRows, AppError> {
        let span = self.run_span(run).await?.within(range);
        self.routing_rows(&span, kind, limit).await
    }

    async fn adaptive_lr(
        &self,
        run: &Run,
        range: (i64, i64),
        limit: usize,
    ) -> Result<Vec<AdaptiveLr>, AppError> {
        let span = self.run_span(run).await?.within(range);
        self.adaptive_lr_rows(&span, limit).await
    }

    async fn reach(&self) -> Result<Reach, AppError> {
        self.live_reach().await
    }

    async fn changes(
        &self,
        run: &Run,
        from: &Reach,
        to: &Reach,
        limit: usize,
    ) -> Result<(LiveRows, Reach), AppError> {
        self.live_rows(run, from, to, limit).await
    }

    async fn catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: usize,
    ) -> Result<CatchUpPage, AppError> {
        self.live_catch_up(run, after_step, limit).await
    }

    async fn info(&self) -> Result<DbInfo, AppError> {
        self.db_info().await
    }

    async fn model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        self.aggregate_stats(model_id).await
    }

    async fn milestones(&self, model_id: &str, interval: i64) -> Result<Milestones, AppError> {
        self.aggregate_milestones(model_id, interval).await
    }

    /// Closes every connection, so nothing of ours keeps the trainer's file open.
    async fn close(&self) {
        if let Some(open) = self.inner.db.lock().await.take() {
            open.pool.close().await;
        }
    }
}

/// Closes `pool` once no read asked for it for [`IDLE_CLOSE`]; the next read opens the file
/// again. Nothing read from it is forgotten: the file is the same. sqlx's own idle timeout
/// is not used: its maintenance task can spin a worker thread forever once a race has
/// wrapped its idle count (sqlx #3645, seen here as a server using 100% of a core and never
/// exiting; the fix came after sqlx 0.9.0).
async fn close_when_idle(inner: std::sync::Weak<Inner>, pool: SqlitePool) {
    loop {
        tokio::time::sleep(IDLE_CLOSE / 5).await;
        let Some(inner) = inner.upgrade() else { return };
        let mut db = inner.db.lock().await;
        match db.as_ref() {
            // Replaced or let go since: not ours to close.
            Some(open) if !open.pool.is_closed() && same_pool(&open.pool, &pool) => {
                if open.used.elapsed() >= IDLE_CLOSE {
                    if let Some(open) = db.take() {
                        // Under the lock, so no read opens a second connection meanwhile.
                        open.pool.close().await;
                    }
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Whether two handles are the same pool (a pool's handles share its options' address).
fn same_pool(a: &SqlitePool, b: &SqlitePool) -> bool {
    std::ptr::eq(a.options(), b.options())
}

/// One read-only connection to `path` (see `SqliteSource::pool`).
async fn connect(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        // A writer's commit holds the file for milliseconds; wait that out rather than fail
        // (`SqliteSource::retry` tries again up to `BUSY_PATIENCE`).
        .busy_timeout(Duration::from_secs(2))
        .statement_cache_capacity(64);
    SqlitePoolOptions::new()
        // Two connections, so two long reads use both cores. Overlapping readers of ours
        // could keep the trainer from committing indefinitely (measured with one pool of
        // several: 5 s waits, then "database is locked"); every statement takes a turn
        // (`turns.rs`), and the turns leave gaps in which no read of ours holds the file.
        .max_connections(turns::AT_ONCE)
        .min_connections(0)
        // Idle connections are let go by `close_when_idle`, not by sqlx (see there).
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

// Values read by name from sqlx rows (the short statements), leniently: SQLite is
// dynamically typed, and a value of an unexpected type should read as "no value".
fn text(row: &SqliteRow, col: &str) -> Option<String> {
    row.try_get_unchecked::<Option<String>, _>(col)
        .ok()
        .flatten()
}
fn real(row: &SqliteRow, col: &str) -> Option<f64> {
    row.try_get_unchecked::<Option<f64>, _>(col).ok().flatten()
}
fn int(row: &SqliteRow, col: &str) -> Option<i64> {
    row.try_get_unchecked::<Option<i64>, _>(col).ok().flatten()
}
