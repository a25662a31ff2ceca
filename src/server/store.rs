//! The trainer's database, read-only: the one store behind REST, server functions and the
//! page.
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

use super::error::{is_busy, sqlite_code, AppError};
use super::raw::{self, Bind, Columns};
use crate::analysis::downsample::M4Stream;
use crate::analysis::gauges::THROUGHPUT_WINDOW;
use crate::analysis::routing::RoutingState;
use crate::analysis::run_state::{Pushed, RunState, CACHED_METRICS};
use crate::model::*;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the run cache may hold unless told otherwise (`--cache-mb`).
pub const DEFAULT_CACHE_BYTES: usize = 1 << 30;

/// Rows per statement when a whole run or model must be scanned.
const SCAN_PAGE: i64 = 5_000;
/// Rows per statement when SQLite aggregates over a model's steps (stats, milestones):
/// about 10 ms of the file each, so the trainer commits in between.
const AGGREGATE_PAGE: i64 = 50_000;
/// How long the schema we detected is trusted before `PRAGMA schema_version` is checked.
const SCHEMA_RECHECK: Duration = Duration::from_secs(1);
/// Buckets per chart series on the page (M4 keeps at most four points per bucket): about
/// two pixels each on the widest chart.
const CHART_BUCKETS: usize = 600;
/// Rows counted per statement, and how long a table's count is reused.
const COUNT_PAGE: i64 = 100_000;
const COUNT_TTL: Duration = Duration::from_secs(30);
/// The most milestones one request may produce.
pub const MAX_MILESTONES: i64 = 100_000;
/// Rows in the page's recent-steps table.
const RECENT_STEPS: usize = 8;
/// Step columns of the routing charts (heatmap cells, buckets per layer series).
const ROUTING_COLUMNS: usize = 150;
/// Most rows one API page may ask for.
pub const MAX_PAGE: i64 = 10_000;

/// Tables every HYDRA database has; without them the file is something else.
const REQUIRED_TABLES: [&str; 3] = ["models", "runs", "steps"];
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
const OPTIONAL_TABLES: [&str; 4] = ["routing_mod", "routing_mor", "routing_moe", "adaptive_lr"];

const STEP_COLUMNS: [&str; 19] = [
    "step",
    "run_id",
    "model_id",
    "timestamp",
    "loss_total",
    "loss_ce",
    "loss_aux",
    "loss_ponder",
    "loss_advantage",
    "lr",
    "grad_norm",
    "grad_norm_pre_clip",
    "ema_short",
    "ema_medium",
    "ema_long",
    "tokens_per_sec",
    "vram_gb",
    "batch_size",
    "seq_len",
];
/// What the run cache folds in: the chart metrics and what the stats cards need, by position
/// (see [`chart_step`]).
const CHART_COLUMNS: [&str; 13] = [
    "step",
    "loss_total",
    "ema_short",
    "ema_medium",
    "ema_long",
    "lr",
    "grad_norm",
    "grad_norm_pre_clip",
    "timestamp",
    "tokens_per_sec",
    "vram_gb",
    "batch_size",
    "seq_len",
];
const RUN_COLUMNS: [&str; 10] = [
    "run_id",
    "model_id",
    "start_step",
    "end_step",
    "start_time",
    "end_time",
    "total_tokens",
    "best_loss",
    "best_loss_step",
    "config_json",
];
const MODEL_COLUMNS: [&str; 5] = [
    "model_id",
    "name",
    "params_millions",
    "architecture_json",
    "created_at",
];
const MOD_COLUMNS: [&str; 9] = [
    "step",
    "run_id",
    "model_id",
    "layer",
    "selected_frac",
    "compute_savings_pct",
    "probs_mean",
    "probs_std",
    "status",
];
const MOR_COLUMNS: [&str; 8] = [
    "step",
    "run_id",
    "model_id",
    "layer",
    "avg_depth",
    "expected_depth",
    "router_probs_mean",
    "status",
];
const MOE_COLUMNS: [&str; 9] = [
    "step",
    "run_id",
    "model_id",
    "entropy",
    "divergence",
    "util_expert_0",
    "util_expert_1",
    "util_expert_2",
    "util_expert_3",
];

/// Which tables and columns this file has, as of `version` (`PRAGMA schema_version`).
#[derive(Debug, Default)]
struct Schema {
    version: i64,
    columns: HashMap<String, HashSet<String>>,
}

impl Schema {
    fn has_table(&self, table: &str) -> bool {
        self.columns.contains_key(table)
    }

    /// One row: the highest rowid of each table the live feed follows (0 when absent).
    fn marks_sql(&self) -> String {
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
    fn select_list(&self, table: &str, expected: &[&str]) -> String {
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

struct Cached {
    schema: Arc<Schema>,
    checked: Instant,
}

/// A read-only handle on one training database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The file as opened, or nothing while it is missing or unreadable: every read goes
    /// through [`Store::pool`], which opens it when it appears and again when it is replaced.
    db: tokio::sync::Mutex<Option<OpenDb>>,
    path: PathBuf,
    schema: Mutex<Cached>,
    counts: Mutex<Option<(Instant, Vec<TableRows>)>>,
    /// Model stats and milestones with the marks they were computed at: a finished run's
    /// are computed once, a training run's once per commit at most.
    stats: Kept<String, ModelStats>,
    milestones: Kept<(String, i64), Milestones>,
    /// Runs held in memory for the charts, by run id.
    cache: Mutex<HashMap<String, Arc<tokio::sync::Mutex<CachedRun>>>>,
    /// Bytes the cache may hold before the least recently used runs are dropped.
    cache_budget: std::sync::atomic::AtomicUsize,
}

/// The trainer's file while it is open.
struct OpenDb {
    pool: SqlitePool,
    file: Option<FileId>,
    /// When the path was last seen to still name this file.
    checked: Instant,
}

/// Whole-model answers worth keeping until the file changes, with the marks they were
/// computed at.
type Kept<K, T> = Mutex<HashMap<K, (LiveMarks, T)>>;

fn forget<K, T>(kept: &Kept<K, T>) {
    kept.lock().unwrap_or_else(|e| e.into_inner()).clear();
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

/// How often a read checks that the path still names the file it opened.
const FILE_RECHECK: Duration = Duration::from_secs(1);
/// How long a read waits for a trainer holding the file before saying it stayed busy.
const BUSY_PATIENCE: Duration = Duration::from_secs(5);

/// One run in memory: its folded state and how far into the file it reaches.
struct CachedRun {
    state: Option<RunState>,
    /// Read only when a page or zoom first needs it: a chart request does not wait for it.
    routing: Option<RoutingState>,
    /// Rowids up to which rows were folded in.
    marks: LiveMarks,
    /// The run row it was built for: a changed config or end rebuilds it.
    config_json: Option<String>,
    high: i64,
    last_used: Instant,
    bytes: usize,
}

/// The highest rowid of each table the live feed follows: where "new" begins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveMarks {
    pub steps: i64,
    pub routing_mod: i64,
    pub routing_mor: i64,
    pub routing_moe: i64,
    pub runs: i64,
}

impl LiveMarks {
    fn from_row(row: Option<&SqliteRow>) -> Self {
        let get = |c: &str| row.and_then(|r| int(r, c)).unwrap_or(0);
        Self {
            steps: get("steps"),
            routing_mod: get("routing_mod"),
            routing_mor: get("routing_mor"),
            routing_moe: get("routing_moe"),
            runs: get("runs"),
        }
    }
}

/// A run's rows for the live feed, each with its rowid (0 in a catch-up page, which is read
/// below the marks and needs none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveRows {
    pub steps: Vec<(i64, Step)>,
    pub routing_mod: Vec<(i64, RoutingMod)>,
    pub routing_mor: Vec<(i64, RoutingMor)>,
    pub routing_moe: Vec<(i64, RoutingMoe)>,
}

/// A routing table as the store reads it: its name, its columns in decoding order, and how
/// a row decodes.
pub trait RoutingTable: Sized {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    /// One row per layer and step (MoD, MoR), ordered by layer within a step.
    const PER_LAYER: bool;
    fn decode(r: &dyn Columns) -> Self;
    fn step(&self) -> i64;
}

impl RoutingTable for RoutingMod {
    const TABLE: &'static str = "routing_mod";
    const COLUMNS: &'static [&'static str] = &MOD_COLUMNS;
    const PER_LAYER: bool = true;
    fn decode(r: &dyn Columns) -> Self {
        mod_from(r)
    }
    fn step(&self) -> i64 {
        self.step
    }
}

impl RoutingTable for RoutingMor {
    const TABLE: &'static str = "routing_mor";
    const COLUMNS: &'static [&'static str] = &MOR_COLUMNS;
    const PER_LAYER: bool = true;
    fn decode(r: &dyn Columns) -> Self {
        mor_from(r)
    }
    fn step(&self) -> i64 {
        self.step
    }
}

impl RoutingTable for RoutingMoe {
    const TABLE: &'static str = "routing_moe";
    const COLUMNS: &'static [&'static str] = &MOE_COLUMNS;
    const PER_LAYER: bool = false;
    fn decode(r: &dyn Columns) -> Self {
        moe_from(r)
    }
    fn step(&self) -> i64 {
        self.step
    }
}

/// Where a run's rows lie in its model's step numbering.
struct RunSpan {
    run: Run,
    low: i64,
    high: i64,
}

impl RunSpan {
    /// `?1..?5` of a paged read of the run's rows: model, first step, the span's last step,
    /// run, and how many rows.
    fn binds(&self, from: i64, limit: i64) -> [Bind<'_>; 5] {
        [
            Bind::Text(&self.run.model_id),
            Bind::Int(from),
            Bind::Int(self.high),
            Bind::Text(&self.run.run_id),
            Bind::Int(limit),
        ]
    }
}

impl Store {
    /// Opens `path` read-only and checks that it is a HYDRA database; an error if it is
    /// missing or something else (for one-shot commands).
    pub async fn open(path: &Path) -> Result<Self, AppError> {
        let store = Self::watch(path);
        store.pool().await?;
        Ok(store)
    }

    /// Whether the file can be read now; the reason when it cannot.
    pub async fn check(&self) -> Result<(), AppError> {
        self.pool().await.map(|_| ())
    }

    /// A store for `path` that opens it when it is first read, and again whenever it
    /// appears, is replaced or recovers: a server starts before the trainer's first write
    /// and outlives a trainer recreating its file.
    pub fn watch(path: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                db: tokio::sync::Mutex::new(None),
                path: path.to_path_buf(),
                schema: Mutex::new(Cached {
                    schema: Arc::new(Schema {
                        version: i64::MIN,
                        ..Default::default()
                    }),
                    checked: Instant::now() - SCHEMA_RECHECK * 2,
                }),
                counts: Mutex::new(None),
                stats: Mutex::new(HashMap::new()),
                milestones: Mutex::new(HashMap::new()),
                cache: Mutex::new(HashMap::new()),
                cache_budget: std::sync::atomic::AtomicUsize::new(DEFAULT_CACHE_BYTES),
            }),
        }
    }

    /// The open file's connection pool, opening the file first if need be. At most once a
    /// second the path is checked: gone means "missing" (and everything read from it is
    /// forgotten), another file means it was replaced and is opened afresh.
    async fn pool(&self) -> Result<SqlitePool, AppError> {
        let shown = || self.inner.path.display().to_string();
        let mut db = self.inner.db.lock().await;
        if let Some(open) = db.as_mut() {
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
        });
        Ok(pool)
    }

    /// Closes `open` and forgets everything read from it.
    fn drop_file(&self, open: Option<OpenDb>) {
        if let Some(open) = open {
            // Closing waits for a read in flight; nobody needs to wait for that.
            tokio::spawn(async move { open.pool.close().await });
        }
        *self.inner.schema.lock().expect("schema lock") = Cached {
            schema: Arc::new(Schema {
                version: i64::MIN,
                ..Default::default()
            }),
            checked: Instant::now() - SCHEMA_RECHECK * 2,
        };
        *self.inner.counts.lock().expect("counts lock") = None;
        forget(&self.inner.stats);
        forget(&self.inner.milestones);
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// After a read found the file corrupt or gone: the next read opens it again.
    async fn reopen_later(&self) {
        let open = self.inner.db.lock().await.take();
        self.drop_file(open);
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Closes every connection, so nothing of ours keeps the trainer's file open.
    pub async fn close(&self) {
        if let Some(open) = self.inner.db.lock().await.take() {
            open.pool.close().await;
        }
    }

    /// The schema, re-read when the trainer changed it (new tables, added columns).
    async fn schema(&self) -> Result<Arc<Schema>, AppError> {
        {
            let cached = self.inner.schema.lock().expect("schema lock");
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
            .expect("schema lock")
            .schema
            .clone();
        let schema = if current.version == version {
            current
        } else {
            Arc::new(self.retry(|| read_schema(&pool, version)).await?)
        };
        *self.inner.schema.lock().expect("schema lock") = Cached {
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
            match read().await {
                Ok(v) => return Ok(v),
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_PATIENCE => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt.min(10))).await;
                }
                Err(e) if is_busy(&e) => return Err(AppError::Busy),
                Err(e) => {
                    let error = classify_error(&self.inner.path.display().to_string(), e);
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

    /// A page of a long read, decoded by position: through SQLite's C API ([`raw`]), or
    /// when that fails (a busy or damaged file) through sqlx, which waits out the trainer
    /// and names the problem.
    async fn long_read<T>(
        &self,
        sql: &str,
        binds: &[Bind<'_>],
        decode: impl Fn(&dyn Columns) -> T,
    ) -> Result<Vec<T>, AppError> {
        let pool = self.pool().await?;
        match raw::rows(&pool, sql, binds, |r| decode(r)).await {
            Ok(rows) => Ok(rows),
            Err(e) => {
                tracing::debug!("reading through sqlx instead: {e}");
                let rows = self.fetch_all(sql, binds).await?;
                Ok(rows.iter().map(|r| decode(r)).collect())
            }
        }
    }

    // ---- models and runs -------------------------------------------------------------

    /// Every model, oldest first.
    pub async fn models(&self) -> Result<Vec<Model>, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM models ORDER BY created_at, model_id",
            schema.select_list("models", &MODEL_COLUMNS)
        );
        Ok(self
            .fetch_all(&sql, &[])
            .await?
            .iter()
            .map(model_from)
            .collect())
    }

    pub async fn model(&self, model_id: &str) -> Result<Model, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM models WHERE model_id = ?1",
            schema.select_list("models", &MODEL_COLUMNS)
        );
        self.fetch_all(&sql, &[Bind::Text(model_id)])
            .await?
            .first()
            .map(model_from)
            .ok_or_else(|| AppError::NotFound {
                what: "model",
                id: model_id.into(),
            })
    }

    /// A model's runs, oldest first. Unknown model → 404.
    pub async fn runs(&self, model_id: &str) -> Result<Vec<Run>, AppError> {
        self.model(model_id).await?;
        self.runs_where("WHERE model_id = ?1", &[Bind::Text(model_id)])
            .await
    }

    /// Every run of every model, oldest first.
    pub async fn all_runs(&self) -> Result<Vec<Run>, AppError> {
        self.runs_where("", &[]).await
    }

    async fn runs_where(&self, filter: &str, binds: &[Bind<'_>]) -> Result<Vec<Run>, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM runs {filter} ORDER BY COALESCE(start_step, 0), start_time, rowid",
            schema.select_list("runs", &RUN_COLUMNS)
        );
        Ok(self
            .fetch_all(&sql, binds)
            .await?
            .iter()
            .map(run_from)
            .collect())
    }

    pub async fn run(&self, run_id: &str) -> Result<Run, AppError> {
        self.runs_where("WHERE run_id = ?1", &[Bind::Text(run_id)])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::NotFound {
                what: "run",
                id: run_id.into(),
            })
    }

    pub async fn run_detail(&self, run_id: &str) -> Result<RunDetail, AppError> {
        let run = self.run(run_id).await?;
        let config = run.config();
        Ok(RunDetail {
            config: config.to_json(),
            config_error: config.error(),
            run,
        })
    }

    /// The run and the step range its rows can be in. A run's rows start at its
    /// `start_step` (the trainer's contract) and stop at its `end_step` once it ended, or
    /// before the next run's start when it never ended (the trainer crashed and was resumed).
    /// Bounding the scan keeps one run's query from walking its successors' rows.
    async fn run_span(&self, run_id: &str) -> Result<RunSpan, AppError> {
        let run = self.run(run_id).await?;
        let low = run.start_step.unwrap_or(i64::MIN);
        let next_start = self
            .runs_where("WHERE model_id = ?1", &[Bind::Text(&run.model_id)])
            .await?
            .into_iter()
            .filter(|r| r.run_id != run.run_id)
            .filter_map(|r| r.start_step)
            .filter(|s| *s > low)
            .min();
        let high = match run.end_step {
            Some(end) if !run.is_running() && end >= low => end,
            _ => next_start.map_or(i64::MAX, |n| n.saturating_sub(1)),
        };
        Ok(RunSpan { run, low, high })
    }

    // ---- steps -----------------------------------------------------------------------

    /// One page of a run's steps from `start_step` on, at most `limit` rows.
    pub async fn steps(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        limit: i64,
    ) -> Result<StepPage, AppError> {
        let span = self.run_span(run_id).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let from = start_step.unwrap_or(i64::MIN).max(span.low);
        let mut steps = self.step_rows(&span, from, limit, false).await?;
        let max_step = self.run_max_step(&span).await?;
        let next_start_step = (steps.len() as i64 == limit)
            .then(|| steps.last().and_then(|s| s.step.checked_add(1)))
            .flatten()
            .filter(|next| max_step.is_some_and(|m| *next <= m));
        for s in &mut steps {
            s.mark_nonfinite();
        }
        Ok(StepPage {
            run_id: span.run.run_id.clone(),
            model_id: span.run.model_id.clone(),
            count: steps.len(),
            steps,
            max_step,
            next_start_step,
        })
    }

    /// The run's newest rows, newest first.
    pub async fn recent_steps(&self, run_id: &str, n: i64) -> Result<Vec<Step>, AppError> {
        let span = self.run_span(run_id).await?;
        let mut steps = self.step_rows(&span, span.high, n, true).await?;
        for s in &mut steps {
            s.mark_nonfinite();
        }
        Ok(steps)
    }

    /// Up to `limit` rows of the run from `from` upward, or from `from` downward when
    /// `descending`.
    async fn step_rows(
        &self,
        span: &RunSpan,
        from: i64,
        limit: i64,
        descending: bool,
    ) -> Result<Vec<Step>, AppError> {
        let schema = self.schema().await?;
        let (range, order) = if descending {
            ("step >= ?3 AND step <= ?2", "DESC")
        } else {
            ("step >= ?2 AND step <= ?3", "ASC")
        };
        let (a, b) = if descending {
            (from, span.low)
        } else {
            (from, span.high)
        };
        let sql = format!(
            "SELECT {} FROM steps WHERE model_id = ?1 AND {range} AND +run_id = ?4 \
             ORDER BY step {order} LIMIT ?5",
            schema.select_list("steps", &STEP_COLUMNS)
        );
        let binds = [
            Bind::Text(&span.run.model_id),
            Bind::Int(a),
            Bind::Int(b),
            Bind::Text(&span.run.run_id),
            Bind::Int(limit),
        ];
        self.long_read(&sql, &binds, step_from).await
    }

    async fn run_max_step(&self, span: &RunSpan) -> Result<Option<i64>, AppError> {
        // Walks down from the top of the span: for the live run that is its newest row.
        let rows = self
            .fetch_all(
                "SELECT step FROM steps WHERE model_id = ?1 AND step >= ?2 AND step <= ?3 \
                 AND +run_id = ?4 ORDER BY step DESC LIMIT 1",
                &[
                    Bind::Text(&span.run.model_id),
                    Bind::Int(span.low),
                    Bind::Int(span.high),
                    Bind::Text(&span.run.run_id),
                ],
            )
            .await?;
        Ok(rows.first().and_then(|r| int(r, "step")))
    }

    /// Calls `visit` for every row of the run with `from <= step <= to`, in step order, one
    /// bounded statement per `SCAN_PAGE` rows.
    async fn scan_steps(
        &self,
        span: &RunSpan,
        from: i64,
        to: i64,
        mut visit: impl FnMut(Step),
    ) -> Result<(), AppError> {
        let bounded = RunSpan {
            run: span.run.clone(),
            low: span.low,
            high: span.high.min(to),
        };
        let mut from = from.max(span.low);
        loop {
            let page = self.step_rows(&bounded, from, SCAN_PAGE, false).await?;
            let (full, next) = (
                page.len() as i64 == SCAN_PAGE,
                page.last().and_then(|l| l.step.checked_add(1)),
            );
            page.into_iter().for_each(&mut visit);
            match next {
                Some(next) if full => from = next,
                _ => return Ok(()),
            }
        }
    }

    /// `/api/metrics/{run_id}?max_points=N`: the rows holding each bucket's first, last,
    /// lowest and highest value of every requested metric, and the latest row; raw rows
    /// when the range holds no more than `max_points`.
    pub async fn steps_downsampled(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        end_step: Option<i64>,
        max_points: usize,
        metrics: &[&'static str],
    ) -> Result<DownsampledSteps, AppError> {
        let span = self.run_span(run_id).await?;
        let (from, to) = (start_step.unwrap_or(i64::MIN), end_step.unwrap_or(i64::MAX));
        // The charts' metrics are in memory: choose and build the rows there.
        let cached: Option<Vec<usize>> = metrics
            .iter()
            .map(|m| CACHED_METRICS.iter().position(|c| c == m))
            .collect();
        if let Some(columns) = cached.filter(|c| !c.is_empty()) {
            let cached = self.run_state(&span, false).await?;
            let state = cached.state.as_ref().ok_or(AppError::Busy)?;
            let (keep, downsampled) = state.downsample(Some((from, to)), max_points, &columns);
            let rows: Vec<Step> = keep.iter().map(|&i| state.row(i, &columns)).collect();
            return Ok(DownsampledSteps {
                run_id: span.run.run_id.clone(),
                model_id: span.run.model_id.clone(),
                max_points,
                downsampled,
                count: keep.len(),
                max_step: state.last_step(),
                steps: rows,
            });
        }
        // Metrics the cache does not keep: one pass over the range, keeping only each
        // bucket's candidate rows, so memory follows the buckets on a run of any length.
        let bounded = RunSpan {
            run: span.run.clone(),
            low: span.low.max(from),
            high: span.high.min(to),
        };
        let first = self.step_rows(&bounded, bounded.low, 1, false).await?;
        let last = self.step_rows(&bounded, bounded.high, 1, true).await?;
        let (Some(first), Some(last)) = (first.first(), last.first()) else {
            return Ok(DownsampledSteps {
                run_id: span.run.run_id.clone(),
                model_id: span.run.model_id.clone(),
                max_points,
                downsampled: false,
                count: 0,
                max_step: self.run_max_step(&span).await?,
                steps: Vec::new(),
            });
        };
        let mut stream = M4Stream::new(first.step, last.step, max_points);
        let mut values = vec![f64::NAN; metrics.len()];
        let positions: Vec<Option<usize>> = metrics.iter().map(|m| metric_position(m)).collect();
        self.scan_steps(&span, first.step, last.step, |s| {
            let all = s.metrics();
            for (v, at) in values.iter_mut().zip(&positions) {
                *v = at.and_then(|i| all[i].1).unwrap_or(f64::NAN);
            }
            stream.push(s.step, &values, Arc::new(s));
        })
        .await?;
        let (kept, downsampled) = stream.finish();
        let rows: Vec<Step> = kept
            .into_iter()
            .map(|row| {
                let mut row = Arc::unwrap_or_clone(row);
                row.mark_nonfinite();
                row
            })
            .collect();
        Ok(DownsampledSteps {
            run_id: span.run.run_id.clone(),
            model_id: span.run.model_id.clone(),
            max_points,
            downsampled,
            count: rows.len(),
            max_step: self.run_max_step(&span).await?,
            steps: rows,
        })
    }

    /// The stats-card summary of a run, from the run cache.
    pub async fn run_summary(&self, run: &Run) -> Result<RunSummary, AppError> {
        let span = self.run_span(&run.run_id).await?;
        let cached = self.run_state(&span, false).await?;
        let state = cached.state.as_ref().ok_or(AppError::Busy)?;
        Ok(state.summary(&span.run))
    }

    /// Walks a model's steps in pages of `AGGREGATE_PAGE` rows through its `(model_id,
    /// step)` key, letting SQLite aggregate each page: `select` reads `page` (the page's
    /// `step` and `f`, its loss when a finite number) and returns rows that include the
    /// page's `hi` step; `visit` gets them. Each page is one short statement, so the trainer
    /// commits between them, and no row crosses into Rust one by one.
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

    /// The answer kept for `key` if the file has not changed since (no row added, re-logged
    /// or run written: the tables' highest rowids are the same), else `compute`'s, kept.
    async fn unless_changed<K, T, F>(
        &self,
        kept: &Kept<K, T>,
        key: K,
        compute: F,
    ) -> Result<T, AppError>
    where
        K: std::hash::Hash + Eq,
        T: Clone,
        F: std::future::Future<Output = Result<T, AppError>>,
    {
        let marks = self.live_marks().await?;
        let kept_now = kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|(at, _)| *at == marks)
            .map(|(_, a)| a.clone());
        if let Some(a) = kept_now {
            return Ok(a);
        }
        let fresh = compute.await?;
        let mut map = kept.lock().unwrap_or_else(|e| e.into_inner());
        // A handful of models and intervals; a client cycling through intervals cannot
        // grow it without bound.
        if map.len() >= 64 {
            map.clear();
        }
        map.insert(key, (marks, fresh.clone()));
        Ok(fresh)
    }

    /// `/api/stats/{model_id}`: counts and losses over the whole lineage.
    pub async fn model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        let compute = self.compute_model_stats(model_id);
        self.unless_changed(&self.inner.stats, model_id.to_string(), compute)
            .await
    }

    async fn compute_model_stats(&self, model_id: &str) -> Result<ModelStats, AppError> {
        let run_count = self.runs(model_id).await?.len() as i64;
        let mut stats = ModelStats {
            model_id: model_id.into(),
            step_count: 0,
            min_step: None,
            max_step: None,
            best_loss: None,
            avg_loss: None,
            run_count,
        };
        let (mut sum, mut finite) = (0.0, 0_i64);
        self.aggregate_model(
            model_id,
            "SELECT COUNT(*) AS n, MIN(step) AS lo, MAX(step) AS hi, TOTAL(f) AS total, \
             COUNT(f) AS finite, MIN(f) AS best FROM page",
            &[],
            |r| {
                stats.step_count += int(r, "n").unwrap_or(0);
                if stats.min_step.is_none() {
                    stats.min_step = int(r, "lo");
                }
                stats.max_step = int(r, "hi").or(stats.max_step);
                sum += real(r, "total").unwrap_or(0.0);
                finite += int(r, "finite").unwrap_or(0);
                if let Some(b) = real(r, "best") {
                    stats.best_loss = Some(stats.best_loss.map_or(b, |old: f64| old.min(b)));
                }
            },
        )
        .await?;
        stats.avg_loss = (finite > 0).then(|| sum / finite as f64);
        Ok(stats)
    }

    /// `/api/milestones/{model_id}`: at each multiple of `interval` the run has reached, the
    /// best finite loss of all steps up to it.
    pub async fn milestones(&self, model_id: &str, interval: i64) -> Result<Milestones, AppError> {
        let interval = interval.max(1);
        let compute = self.compute_milestones(model_id, interval);
        self.unless_changed(
            &self.inner.milestones,
            (model_id.to_string(), interval),
            compute,
        )
        .await
    }

    async fn compute_milestones(
        &self,
        model_id: &str,
        interval: i64,
    ) -> Result<Milestones, AppError> {
        self.model(model_id).await?;
        let ends = |order: &'static str| {
            let sql =
                format!("SELECT step FROM steps WHERE model_id = ?1 ORDER BY step {order} LIMIT 1");
            async move {
                let rows = self.fetch_all(&sql, &[Bind::Text(model_id)]).await?;
                Ok::<_, AppError>(rows.first().and_then(|r| int(r, "step")))
            }
        };
        let (first, last) = (ends("ASC").await?, ends("DESC").await?);
        let mut milestones = BTreeMap::new();
        let (Some(first), Some(last)) = (first, last) else {
            return Ok(Milestones {
                model_id: model_id.into(),
                interval,
                milestones,
            });
        };
        let count = (last as i128 - first as i128) / interval as i128 + 1;
        if count > MAX_MILESTONES as i128 {
            return Err(AppError::bad_param(
                "interval",
                format!(
                    "{interval} would give {count} milestones for steps {first}..{last}; at most {MAX_MILESTONES}"
                ),
            ));
        }
        // The best loss of each stretch (k-1)·interval < step ≤ k·interval, as bucket k
        // (steps ≤ 0 count for every milestone: bucket 0). A stretch split across two pages
        // comes back twice; the minimum joins them.
        let mut best_of: BTreeMap<i64, f64> = BTreeMap::new();
        self.aggregate_model(
            model_id,
            "SELECT CASE WHEN step <= 0 THEN 0 ELSE (step - 1) / ?4 + 1 END AS bucket, \
             MIN(f) AS best, COUNT(*) AS n, MAX(step) AS hi FROM page GROUP BY bucket",
            &[Bind::Int(interval)],
            |r| {
                if let (Some(k), Some(b)) = (int(r, "bucket"), real(r, "best")) {
                    let entry = best_of.entry(k).or_insert(b);
                    *entry = entry.min(b);
                }
            },
        )
        .await?;
        // Milestones are the multiples of `interval` from the first step to the last (never
        // 0); each holds the best of every stretch up to it.
        let first_k = first.max(interval).div_euclid(interval)
            + i64::from(first.max(interval).rem_euclid(interval) != 0);
        let last_k = last.div_euclid(interval);
        let mut best: Option<f64> = None;
        let mut stretches = best_of.into_iter().peekable();
        for k in first_k..=last_k {
            while let Some((_, b)) = stretches.next_if(|(bucket, _)| *bucket <= k) {
                best = Some(best.map_or(b, |old: f64| old.min(b)));
            }
            if let Some(b) = best {
                milestones.insert(k * interval, b);
            }
        }
        Ok(Milestones {
            model_id: model_id.into(),
            interval,
            milestones,
        })
    }

    // ---- routing ---------------------------------------------------------------------

    /// A page of a routing table's rows for a run, from `start_step`, at most `limit`, whole
    /// steps only: a page never ends in the middle of a step's layers, so `next_start_step`
    /// loses nothing.
    pub async fn routing<T: RoutingTable>(
        &self,
        run_id: &str,
        start_step: Option<i64>,
        limit: i64,
    ) -> Result<RoutingPage<T>, AppError> {
        let span = self.run_span(run_id).await?;
        let schema = self.schema().await?;
        let page = |data, next_start_step| RoutingPage {
            run_id: run_id.into(),
            data,
            next_start_step,
        };
        if !schema.has_table(T::TABLE) {
            return Ok(page(Vec::new(), None));
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let order = if T::PER_LAYER { "step, layer" } else { "step" };
        let sql = format!(
            "SELECT {} FROM {} WHERE model_id = ?1 AND step >= ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY {order} LIMIT ?5",
            schema.select_list(T::TABLE, T::COLUMNS),
            T::TABLE
        );
        let from = start_step.unwrap_or(i64::MIN).max(span.low);
        // One row more than asked tells whether the page ends between two steps.
        let mut rows = self
            .long_read(&sql, &span.binds(from, limit + 1), T::decode)
            .await?;
        if rows.len() as i64 <= limit {
            return Ok(page(rows, None));
        }
        let following = rows[limit as usize].step();
        rows.truncate(limit as usize);
        let (first, last) = (rows[0].step(), rows[rows.len() - 1].step());
        if !T::PER_LAYER || last != following {
            return Ok(page(rows, Some(following)));
        }
        if first != last {
            // The trailing step's other layers did not fit: leave it for the next page.
            rows.retain(|r| r.step() != last);
            return Ok(page(rows, Some(last)));
        }
        // One step has more layers than `limit`: a cursor by step cannot split it, so this
        // page carries that whole step (bounded by the layer count).
        let whole = self
            .long_read(
                &sql,
                &[
                    Bind::Text(&span.run.model_id),
                    Bind::Int(first),
                    Bind::Int(first),
                    Bind::Text(&span.run.run_id),
                    Bind::Int(MAX_PAGE),
                ],
                T::decode,
            )
            .await?;
        Ok(page(whole, first.checked_add(1)))
    }

    /// Folds every routing row of a run (MoD, MoR, MoE) into `routing`, page by page: a
    /// long run has millions, so they are never all held as rows.
    async fn run_routing(&self, run_id: &str, routing: &mut RoutingState) -> Result<(), AppError> {
        each_page(
            |next| self.routing::<RoutingMod>(run_id, next, MAX_PAGE),
            |r| routing.push_mod(&r),
        )
        .await?;
        each_page(
            |next| self.routing::<RoutingMor>(run_id, next, MAX_PAGE),
            |r| routing.push_mor(&r),
        )
        .await?;
        each_page(
            |next| self.routing::<RoutingMoe>(run_id, next, MAX_PAGE),
            |r| routing.push_moe(&r),
        )
        .await
    }

    /// The charts' data for steps `start..=end` of a run, at the same point budget as the
    /// page: what a zoom asks for, so detail appears as the range narrows.
    pub async fn zoom(&self, run_id: &str, start: i64, end: i64) -> Result<ZoomCharts, AppError> {
        let span = self.run_span(run_id).await?;
        // The run's own spikes and collapses (judged over the whole run), its points in
        // the range.
        let cached = self.run_state(&span, true).await?;
        let state = cached.state.as_ref().ok_or(AppError::Busy)?;
        let routing = cached.routing.as_ref().ok_or(AppError::Busy)?;
        let mut routing = routing.charts(Some((start, end)), ROUTING_COLUMNS);
        routing.clock = state.clock(Some((start, end)));
        Ok(ZoomCharts {
            run_id: span.run.run_id.clone(),
            range: (start, end),
            run: state.charts(Some((start, end)), CHART_BUCKETS),
            routing,
        })
    }

    /// A run's routing series over `range` in `columns` step buckets per layer, as the
    /// charts draw them (M4 per layer series, the worst cell per bucket for MoD).
    pub async fn routing_downsampled(
        &self,
        run_id: &str,
        range: Option<(i64, i64)>,
        columns: usize,
    ) -> Result<RoutingCharts, AppError> {
        let span = self.run_span(run_id).await?;
        let cached = self.run_state(&span, true).await?;
        let routing = cached.routing.as_ref().ok_or(AppError::Busy)?;
        Ok(routing.charts(range, columns))
    }

    /// The charts of a model's runs laid end to end, resume points marked (see
    /// `analysis::lineage`), over steps `range` when given. Each run gets buckets in
    /// proportion to its share of the steps shown, so the lineage costs what one run does.
    pub async fn lineage(
        &self,
        model_id: &str,
        range: Option<(i64, i64)>,
    ) -> Result<(RunCharts, RoutingCharts), AppError> {
        use crate::analysis::lineage::{merge, Part};
        let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
        let mut shown = Vec::new();
        for (i, run) in self.runs(model_id).await?.into_iter().enumerate() {
            let span = self.run_span(&run.run_id).await?;
            let cached = self.run_state(&span, false).await?;
            let Some(state) = cached.state.as_ref() else {
                continue;
            };
            if let (Some(first), Some(last)) = (state.first_step(), state.last_step()) {
                let (a, b) = (first.max(lo), last.min(hi));
                if a <= b {
                    shown.push((i, span, (a, b)));
                }
            }
        }
        let total: f64 = shown.iter().map(|(_, _, (a, b))| (b - a + 1) as f64).sum();
        let mut parts = Vec::new();
        for (i, span, (a, b)) in shown {
            let share = (b - a + 1) as f64 / total.max(1.0);
            let width = ((CHART_BUCKETS as f64 * share).round() as usize).max(16);
            let columns = ((ROUTING_COLUMNS as f64 * share).round() as usize).max(8);
            let cached = self.run_state(&span, true).await?;
            let state = cached.state.as_ref().ok_or(AppError::Busy)?;
            let routing = cached.routing.as_ref().ok_or(AppError::Busy)?;
            let mut routing = routing.charts(Some((a, b)), columns);
            routing.clock = state.clock(Some((a, b)));
            parts.push(Part {
                label: format!("resume #{}", i + 1),
                start: span.run.start_step,
                run: state.charts(Some((a, b)), width),
                routing,
            });
        }
        Ok(merge(parts))
    }

    /// The dashboard of a model's newest run with the charts of its whole lineage.
    pub async fn lineage_dashboard(
        &self,
        model_id: &str,
        settings: &GaugeSettings,
    ) -> Result<Dashboard, AppError> {
        let mut d = self.dashboard(None, Some(model_id), settings).await?;
        if d.run.is_some() {
            let (mut run, routing) = self.lineage(model_id, None).await?;
            run.target_loss = run.target_loss.or(settings.target_loss);
            d.charts = Some(run);
            d.routing = Some(routing);
        }
        Ok(d)
    }

    // ---- the run cache -----------------------------------------------------------------

    /// Reads the run `/` shows into memory: its steps first (what chart requests need), then
    /// its routing rows, so a chart request waits for the first part only.
    pub async fn warm(&self, settings: &GaugeSettings) -> Result<(), AppError> {
        // `/` shows the model whose latest run is the most recent: that run.
        let runs = self.all_runs().await?;
        let Some(run) = runs.iter().max_by_key(|r| run_recency(r)) else {
            return Ok(());
        };
        let span = self.run_span(&run.run_id).await?;
        drop(self.run_state(&span, false).await?);
        self.dashboard(Some(&run.run_id), None, settings).await?;
        Ok(())
    }

    /// Caps the memory the run cache holds; least recently used runs go first.
    pub fn set_cache_budget(&self, bytes: usize) {
        self.inner
            .cache_budget
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes the run cache holds now.
    pub fn cache_bytes(&self) -> usize {
        let map = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        map.values()
            .filter_map(|e| e.try_lock().ok().map(|c| c.bytes))
            .sum()
    }

    /// The run's state in memory, brought up to the file: built on first use by paging
    /// through the run, then extended with the rows committed since (found by rowid, so the
    /// cost is the new rows). A re-logged step rebuilds it. Callers for the same run wait for
    /// one build instead of each reading the run.
    async fn run_state(
        &self,
        span: &RunSpan,
        with_routing: bool,
    ) -> Result<tokio::sync::OwnedMutexGuard<CachedRun>, AppError> {
        let entry = {
            let mut map = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(span.run.run_id.clone())
                .or_insert_with(|| {
                    Arc::new(tokio::sync::Mutex::new(CachedRun {
                        state: None,
                        routing: None,
                        marks: LiveMarks::default(),
                        config_json: None,
                        high: i64::MIN,
                        last_used: Instant::now(),
                        bytes: 0,
                    }))
                })
                .clone()
        };
        let mut cached = entry.lock_owned().await;
        let marks = self.live_marks().await?;
        let stale = cached.state.is_none()
            || cached.config_json != span.run.config_json
            || cached.high != span.high;
        if !stale && cached.marks != marks && !self.extend_state(&mut cached, span, &marks).await? {
            cached.state = None;
        }
        let mut read = false;
        if cached.state.is_none() || stale {
            read = true;
            // Marks first: rows committed during the reads below come again next time and
            // are recognised as already held.
            let mut state = self
                .scan_chart_rows(span, RunState::new(span.run.config()))
                .await?;
            state.shrink_to_fit();
            cached.state = Some(state);
            cached.routing = None;
            cached.marks = marks.clone();
            cached.config_json = span.run.config_json.clone();
            cached.high = span.high;
        }
        if with_routing && cached.routing.is_none() {
            // Rows committed after `marks` may be read here and again by the next extension;
            // a step already held is skipped there (a step's layers commit together).
            let config = span.run.config();
            let mut routing = RoutingState::new(&config);
            self.run_routing(&span.run.run_id, &mut routing).await?;
            routing.shrink_to_fit();
            cached.routing = Some(routing);
            read = true;
        }
        cached.last_used = Instant::now();
        cached.bytes = cached.state.as_ref().map_or(0, RunState::heap_bytes)
            + cached.routing.as_ref().map_or(0, RoutingState::heap_bytes);
        if read {
            super::memory::after_big_work();
            tracing::info!(
                "run {}: {} steps{} held in {:.1} MB",
                span.run.run_id,
                cached.state.as_ref().map_or(0, RunState::len),
                if cached.routing.is_some() {
                    " and their routing"
                } else {
                    ""
                },
                cached.bytes as f64 / 1e6
            );
        }
        self.evict(&span.run.run_id, cached.bytes);
        Ok(cached)
    }

    /// Pages through the run reading only [`CHART_COLUMNS`], decoded by position, into
    /// `state`: the one full read a run costs, so it is kept lean. Folding the rows in
    /// costs about as much as reading them, so it runs on a thread of its own, a page
    /// behind the reads.
    async fn scan_chart_rows(&self, span: &RunSpan, state: RunState) -> Result<RunState, AppError> {
        let schema = self.schema().await?;
        let sql = format!(
            "SELECT {} FROM steps WHERE model_id = ?1 AND step >= ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY step LIMIT ?5",
            schema.select_list("steps", &CHART_COLUMNS)
        );
        let (pages, mut arriving) = tokio::sync::mpsc::channel::<Vec<Step>>(2);
        let fold = tokio::task::spawn_blocking(move || {
            let mut state = state;
            while let Some(page) = arriving.blocking_recv() {
                page.iter().for_each(|s| {
                    state.push(s);
                });
            }
            state.index();
            state
        });
        let read = async {
            let mut from = span.low;
            loop {
                let rows = self
                    .long_read(&sql, &span.binds(from, SCAN_PAGE), chart_step)
                    .await?;
                let next = match rows.last().map(|s| s.step.checked_add(1)) {
                    Some(Some(next)) if rows.len() as i64 == SCAN_PAGE => Some(next),
                    _ => None,
                };
                if pages.send(rows).await.is_err() {
                    return Ok(()); // the fold ended early: its outcome says why
                }
                match next {
                    Some(next) => from = next,
                    None => return Ok::<(), AppError>(()),
                }
            }
        };
        let read = read.await;
        drop(pages);
        let state = match fold.await {
            Ok(state) => state,
            // A bug in the fold surfaces as it would have on this task.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Err(AppError::Busy), // the runtime is shutting down
        };
        read.map(|()| state)
    }

    /// Folds in the run's rows committed after `cached.mark`; false when one rewrote an
    /// earlier step and the state must be rebuilt.
    async fn extend_state(
        &self,
        cached: &mut CachedRun,
        span: &RunSpan,
        marks: &LiveMarks,
    ) -> Result<bool, AppError> {
        let CachedRun { state, routing, .. } = cached;
        let Some(state) = state.as_mut() else {
            return Ok(false);
        };
        if [
            (cached.marks.steps, marks.steps),
            (cached.marks.routing_mod, marks.routing_mod),
            (cached.marks.routing_mor, marks.routing_mor),
            (cached.marks.routing_moe, marks.routing_moe),
        ]
        .iter()
        .any(|(held, now)| now < held)
        {
            // Fewer rows than before: the file was replaced.
            return Ok(false);
        }
        let mut from = LiveMarks {
            runs: marks.runs,
            ..cached.marks.clone()
        };
        // Rows past the run's end belong to no one shown here (a new end rebuilds).
        let ours = |step: i64| step <= span.high;
        while &from != marks {
            let (rows, reached) = self.live_rows(&span.run, &from, marks, SCAN_PAGE).await?;
            for (_, step) in rows.steps.iter().filter(|(_, s)| ours(s.step)) {
                if state.push(step) == Pushed::Rewritten {
                    return Ok(false);
                }
            }
            // Routing rows come step by step, all layers of a step in one commit: the step
            // last held is complete (a row of it again was read twice), an earlier one is a
            // re-log.
            if let Some(routing) = routing.as_mut() {
                let (last_mod, last_mor, last_moe) = routing.last_steps();
                let fate = |last: Option<i64>, step: i64| match last {
                    Some(l) if step < l => Err(()),
                    Some(l) if step == l => Ok(false),
                    _ => Ok(true),
                };
                for (_, r) in rows.routing_mod.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_mod, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_mod(r),
                        Ok(false) => {}
                    }
                }
                for (_, r) in rows.routing_mor.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_mor, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_mor(r),
                        Ok(false) => {}
                    }
                }
                for (_, r) in rows.routing_moe.iter().filter(|(_, r)| ours(r.step)) {
                    match fate(last_moe, r.step) {
                        Err(()) => return Ok(false),
                        Ok(true) => routing.push_moe(r),
                        Ok(false) => {}
                    }
                }
            }
            from = LiveMarks {
                runs: marks.runs,
                ..reached
            };
        }
        state.index();
        cached.marks = marks.clone();
        Ok(true)
    }

    /// Drops the least recently used runs (never `keep`, never one in use) while the cache
    /// is over its budget.
    fn evict(&self, keep: &str, keep_bytes: usize) {
        let budget = self
            .inner
            .cache_budget
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut map = self.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let mut sizes: Vec<(String, usize, Instant)> = map
                .iter()
                .filter_map(|(id, e)| {
                    e.try_lock()
                        .ok()
                        .map(|c| (id.clone(), c.bytes, c.last_used))
                })
                .collect();
            // `keep` is locked by our caller, so it is not in `sizes`: count it here.
            let used: usize = sizes.iter().map(|s| s.1).sum::<usize>() + keep_bytes;
            if used <= budget {
                return;
            }
            sizes.retain(|s| s.0 != keep);
            sizes.sort_by_key(|s| s.2);
            match sizes.first() {
                Some((id, _, _)) => {
                    map.remove(id);
                }
                None => return,
            }
        }
    }

    // ---- the live feed -----------------------------------------------------------------
    //
    // New rows are found by rowid, not by step: a re-logged step (`INSERT OR REPLACE`) is a
    // new row with a new, higher rowid, so "every rowid above the last one seen" is exactly
    // what the trainer committed since, re-logs included, and `rowid > ?` is a range on the
    // table's own b-tree: its cost is the new rows, not the run's length.

    /// The highest rowid of each table the feed follows (0 when a table is absent or empty):
    /// one statement, a few b-tree descents.
    pub async fn live_marks(&self) -> Result<LiveMarks, AppError> {
        let schema = self.schema().await?;
        let rows = self.fetch_all(&schema.marks_sql(), &[]).await?;
        Ok(LiveMarks::from_row(rows.first()))
    }

    /// A run's rows committed after `from` and up to `to` (rowids), in commit order, at most
    /// `limit` per table. Returns the rows and how far they reach: `to`, or the last rowid
    /// read when a table hit `limit` (the rest comes next time).
    pub async fn live_rows(
        &self,
        run: &Run,
        from: &LiveMarks,
        to: &LiveMarks,
        limit: i64,
    ) -> Result<(LiveRows, LiveMarks), AppError> {
        let schema = self.schema().await?;
        let mut reached = to.clone();
        let mut rows = LiveRows::default();
        let tables: [(&str, &[&str], i64, i64, &mut i64); 4] = [
            (
                "steps",
                &STEP_COLUMNS,
                from.steps,
                to.steps,
                &mut reached.steps,
            ),
            (
                "routing_mod",
                &MOD_COLUMNS,
                from.routing_mod,
                to.routing_mod,
                &mut reached.routing_mod,
            ),
            (
                "routing_mor",
                &MOR_COLUMNS,
                from.routing_mor,
                to.routing_mor,
                &mut reached.routing_mor,
            ),
            (
                "routing_moe",
                &MOE_COLUMNS,
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
                match table {
                    "steps" => {
                        let mut s = step_from(r as &dyn Columns);
                        s.mark_nonfinite();
                        rows.steps.push((rowid, s));
                    }
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
    pub async fn live_catch_up(
        &self,
        run: &Run,
        after_step: i64,
        limit: i64,
    ) -> Result<(LiveRows, LiveMarks, Option<i64>), AppError> {
        let schema = self.schema().await?;
        let span = self.run_span(&run.run_id).await?;
        let marks_sql = schema.marks_sql();
        let steps_sql = format!(
            "SELECT {} FROM steps WHERE model_id = ?1 AND step > ?2 AND step <= ?3 \
             AND +run_id = ?4 ORDER BY step LIMIT ?5",
            schema.select_list("steps", &STEP_COLUMNS)
        );
        let routing_sql = |table: &str, columns: &[&str]| {
            schema.has_table(table).then(|| {
                format!(
                    "SELECT {} FROM {table} WHERE model_id = ?1 AND step > ?2 AND step <= ?3 \
                     AND +run_id = ?4 ORDER BY step",
                    schema.select_list(table, columns)
                )
            })
        };
        let routing_sqls = [
            routing_sql("routing_mod", &MOD_COLUMNS),
            routing_sql("routing_mor", &MOR_COLUMNS),
            routing_sql("routing_moe", &MOE_COLUMNS),
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
        let marks = LiveMarks::from_row(marks.first());
        let next = match steps.last().and_then(|r| int(r, "step")) {
            Some(last) if steps.len() as i64 >= limit => Some(last),
            _ => None,
        };
        let rows = LiveRows {
            steps: steps
                .iter()
                .map(|r| {
                    let mut s = step_from(r as &dyn Columns);
                    s.mark_nonfinite();
                    (0, s)
                })
                .collect(),
            routing_mod: routing[0].iter().map(|r| (0, mod_from(r))).collect(),
            routing_mor: routing[1].iter().map(|r| (0, mor_from(r))).collect(),
            routing_moe: routing[2].iter().map(|r| (0, moe_from(r))).collect(),
        };
        Ok((rows, marks, next))
    }

    // ---- the file itself -------------------------------------------------------------

    /// Size, journal mode, row counts and freshness, for the sidebar.
    pub async fn db_info(&self) -> Result<DbInfo, AppError> {
        let schema = self.schema().await?;
        let file_size_bytes = tokio::fs::metadata(&self.inner.path)
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
                STEP_COLUMNS
                    .iter()
                    .filter(|c| !cols.contains(**c))
                    .map(|c| format!("steps.{c}")),
            );
        }
        let mut newest_step_time: Option<(f64, String)> = None;
        for model in self.models().await? {
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
            path: self.inner.path.display().to_string(),
            file_size_bytes,
            journal_mode,
            tables,
            newest_step_time: newest_step_time.map(|(_, ts)| ts),
            missing,
        })
    }

    /// Row counts of the trainer's tables, counted at most every `COUNT_TTL`: a count walks
    /// the whole table, so it is done in pages by rowid, never as one long statement.
    async fn table_rows(&self, schema: &Schema) -> Result<Vec<TableRows>, AppError> {
        if let Some((at, counts)) = self.inner.counts.lock().expect("counts lock").as_ref() {
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
        *self.inner.counts.lock().expect("counts lock") = Some((Instant::now(), tables.clone()));
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

    /// Everything the dashboard page shows, for `run_id`, or else the latest run of
    /// `model_id`, or else the latest run of the most recently active model.
    pub async fn dashboard(
        &self,
        run_id: Option<&str>,
        model_id: Option<&str>,
        settings: &GaugeSettings,
    ) -> Result<Dashboard, AppError> {
        // A page of megabytes is about to be built and rendered.
        super::memory::after_big_work();
        let models = self.models().await?;
        let all_runs = self.all_runs().await?;
        let run = match run_id {
            Some(id) => Some(self.run(id).await?),
            None => None,
        };
        if let Some(id) = model_id.filter(|_| run.is_none()) {
            self.model(id).await?;
        }
        let latest_of = |model_id: &str| {
            all_runs
                .iter()
                .filter(|r| r.model_id == model_id)
                .max_by(|a, b| run_recency(a).cmp(&run_recency(b)))
        };
        let choices: Vec<ModelChoice> = models
            .iter()
            .map(|m| ModelChoice {
                model: m.clone(),
                run_count: all_runs.iter().filter(|r| r.model_id == m.model_id).count() as i64,
                latest_run_id: latest_of(&m.model_id).map(|r| r.run_id.clone()),
            })
            .collect();
        let model = match (&run, model_id) {
            (Some(r), _) => models.iter().find(|m| m.model_id == r.model_id).cloned(),
            (None, Some(id)) => models.iter().find(|m| m.model_id == id).cloned(),
            (None, None) => models
                .iter()
                .max_by(|a, b| {
                    let key = |m: &Model| {
                        (
                            latest_of(&m.model_id).map(run_recency),
                            m.created_at.clone(),
                        )
                    };
                    key(a).cmp(&key(b))
                })
                .cloned(),
        };
        let run = run.or_else(|| model.as_ref().and_then(|m| latest_of(&m.model_id).cloned()));
        let runs: Vec<Run> = match (&model, &run) {
            (Some(m), _) => all_runs
                .iter()
                .filter(|r| r.model_id == m.model_id)
                .cloned()
                .collect(),
            (None, Some(r)) => vec![r.clone()],
            (None, None) => Vec::new(),
        };
        let (summary, charts, routing, mut recent_steps) = match &run {
            Some(r) => {
                let span = self.run_span(&r.run_id).await?;
                let (summary, charts, routing) = {
                    let cached = self.run_state(&span, true).await?;
                    let state = cached.state.as_ref().ok_or(AppError::Busy)?;
                    let routing = cached.routing.as_ref().ok_or(AppError::Busy)?;
                    let mut routing = routing.charts(None, ROUTING_COLUMNS);
                    routing.clock = state.clock(None);
                    (state.summary(r), state.charts(None, CHART_BUCKETS), routing)
                };
                let mut charts = charts;
                charts.target_loss = charts.target_loss.or(settings.target_loss);
                (
                    Some(summary),
                    Some(charts),
                    Some(routing),
                    self.recent_steps(&r.run_id, THROUGHPUT_WINDOW as i64)
                        .await?,
                )
            }
            None => (None, None, None, Vec::new()),
        };
        let gauges = run
            .as_ref()
            .map(|r| crate::analysis::gauges::compute(&recent_steps, &r.config(), settings));
        recent_steps.truncate(RECENT_STEPS);
        Ok(Dashboard {
            models: choices,
            model,
            runs,
            run,
            summary,
            recent_steps,
            charts,
            routing,
            gauges,
            db: self.db_info().await?,
        })
    }
}

/// Follows `next_start_step` through every page, handing each row to `visit`.
async fn each_page<T, F, Fut>(mut page: F, mut visit: impl FnMut(T)) -> Result<(), AppError>
where
    F: FnMut(Option<i64>) -> Fut,
    Fut: std::future::Future<Output = Result<RoutingPage<T>, AppError>>,
{
    let mut next = None;
    loop {
        let p = page(next).await?;
        p.data.into_iter().for_each(&mut visit);
        match p.next_start_step {
            Some(n) => next = Some(n),
            None => return Ok(()),
        }
    }
}

/// Later start wins; ties go to the later start step.
fn run_recency(r: &Run) -> (i64, i64) {
    let t = r
        .start_time
        .as_deref()
        .and_then(crate::analysis::time::parse_iso8601)
        .unwrap_or(f64::MIN);
    (t as i64, r.start_step.unwrap_or(0))
}

/// One read-only connection to `path` (see `Store::pool`).
async fn connect(path: &Path) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        // A writer's commit holds the file for milliseconds; wait that out rather than fail
        // (`Store::retry` tries again up to `BUSY_PATIENCE`).
        .busy_timeout(Duration::from_secs(2))
        .statement_cache_capacity(64);
    SqlitePoolOptions::new()
        // One connection, so our reads never overlap. Within one process SQLite shares a
        // single OS-level shared lock among all connections to a file, and a connection
        // that joins a shared lock already held does not check for a writer's pending
        // lock: two overlapping readers of ours can keep the trainer from committing
        // indefinitely (measured: 5 s waits, then "database is locked"). With one, the
        // shared lock is released between every statement and the trainer gets in.
        // Statements are short and most requests are served from the run cache.
        .max_connections(1)
        .min_connections(0)
        // Let idle connections go soon: in WAL mode the trainer's final checkpoint (and the
        // removal of its -wal file) only happens when it closes the last connection.
        .idle_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

async fn read_schema(pool: &SqlitePool, version: i64) -> Result<Schema, sqlx::Error> {
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
async fn check_hydra(pool: &SqlitePool, shown: &str) -> Result<(), AppError> {
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

fn classify_open_error(path: &str, e: sqlx::Error) -> AppError {
    match sqlite_code(&e).map(|c| c & 0xff) {
        Some(14) => AppError::DbMissing { path: path.into() },
        _ => classify_error(path, e),
    }
}

fn classify_error(path: &str, e: sqlx::Error) -> AppError {
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

// Rows are decoded leniently: SQLite is dynamically typed, and a value of an unexpected type
// in the user's file should read as "no value", never fail the whole page.
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

fn model_from(r: &SqliteRow) -> Model {
    Model {
        model_id: text(r, "model_id").unwrap_or_default(),
        name: text(r, "name"),
        params_millions: real(r, "params_millions"),
        architecture_json: text(r, "architecture_json"),
        created_at: text(r, "created_at"),
    }
}

fn run_from(r: &SqliteRow) -> Run {
    Run {
        run_id: text(r, "run_id").unwrap_or_default(),
        model_id: text(r, "model_id").unwrap_or_default(),
        start_step: int(r, "start_step"),
        end_step: int(r, "end_step"),
        start_time: text(r, "start_time"),
        end_time: text(r, "end_time"),
        total_tokens: int(r, "total_tokens"),
        best_loss: real(r, "best_loss"),
        best_loss_step: int(r, "best_loss_step"),
        config_json: text(r, "config_json"),
    }
}

/// A row of [`STEP_COLUMNS`], by position.
fn step_from(r: &dyn Columns) -> Step {
    let text = |i: usize| r.text(i).map(str::to_owned);
    Step {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        timestamp: text(3),
        loss_total: r.real(4),
        loss_ce: r.real(5),
        loss_aux: r.real(6),
        loss_ponder: r.real(7),
        loss_advantage: r.real(8),
        lr: r.real(9),
        grad_norm: r.real(10),
        grad_norm_pre_clip: r.real(11),
        ema_short: r.real(12),
        ema_medium: r.real(13),
        ema_long: r.real(14),
        tokens_per_sec: r.real(15),
        vram_gb: r.real(16),
        batch_size: r.int(17),
        seq_len: r.int(18),
        nonfinite: Default::default(),
    }
}

/// A row of [`CHART_COLUMNS`], by position (no name lookups: this runs for every step).
fn chart_step(r: &dyn Columns) -> Step {
    Step {
        step: r.int(0).unwrap_or_default(),
        loss_total: r.real(1),
        ema_short: r.real(2),
        ema_medium: r.real(3),
        ema_long: r.real(4),
        lr: r.real(5),
        grad_norm: r.real(6),
        grad_norm_pre_clip: r.real(7),
        timestamp: r.text(8).map(str::to_owned),
        tokens_per_sec: r.real(9),
        vram_gb: r.real(10),
        batch_size: r.int(11),
        seq_len: r.int(12),
        ..Default::default()
    }
}

/// A row of [`MOD_COLUMNS`], by position.
fn mod_from(r: &dyn Columns) -> RoutingMod {
    let text = |i: usize| r.text(i).map(str::to_owned);
    RoutingMod {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        layer: r.int(3).unwrap_or_default(),
        selected_frac: r.real(4),
        compute_savings_pct: r.real(5),
        probs_mean: r.real(6),
        probs_std: r.real(7),
        status: text(8),
    }
}

/// A row of [`MOR_COLUMNS`], by position.
fn mor_from(r: &dyn Columns) -> RoutingMor {
    let text = |i: usize| r.text(i).map(str::to_owned);
    RoutingMor {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        layer: r.int(3).unwrap_or_default(),
        avg_depth: r.real(4),
        expected_depth: r.real(5),
        router_probs_mean: r.real(6),
        status: text(7),
    }
}

/// A row of [`MOE_COLUMNS`], by position.
fn moe_from(r: &dyn Columns) -> RoutingMoe {
    RoutingMoe {
        step: r.int(0).unwrap_or_default(),
        run_id: r.text(1).map(str::to_owned).unwrap_or_default(),
        model_id: r.text(2).map(str::to_owned).unwrap_or_default(),
        entropy: r.real(3),
        divergence: r.real(4),
        util_expert_0: r.real(5),
        util_expert_1: r.real(6),
        util_expert_2: r.real(7),
        util_expert_3: r.real(8),
    }
}
