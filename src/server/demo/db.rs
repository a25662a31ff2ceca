//! The demo's database, written as the trainer's loader writes it when a run ends: its
//! diagnostics records as rows (`INSERT OR REPLACE`, EMAs computed while loading), then the
//! `runs` row from its report. One transaction, default rollback journal.

use super::{Logged, MODEL};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::path::Path;
use std::time::Duration;

/// The trainer's DDL, column for column (`spec/training-db.md`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY, name TEXT, params_millions REAL, architecture_json TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, start_step INTEGER, end_step INTEGER,
    start_time TEXT, end_time TEXT, total_tokens INTEGER, best_loss REAL, best_loss_step INTEGER,
    config_json TEXT, FOREIGN KEY (model_id) REFERENCES models(model_id));
CREATE TABLE IF NOT EXISTS steps (
    step INTEGER NOT NULL, run_id TEXT NOT NULL, model_id TEXT NOT NULL, timestamp TEXT,
    loss_total REAL, loss_ce REAL, loss_aux REAL, loss_ponder REAL, loss_advantage REAL,
    lr REAL, grad_norm REAL, grad_norm_pre_clip REAL, ema_short REAL, ema_medium REAL, ema_long REAL,
    tokens_per_sec REAL, vram_gb REAL, batch_size INTEGER, seq_len INTEGER,
    PRIMARY KEY (model_id, step), FOREIGN KEY (run_id) REFERENCES runs(run_id));
CREATE TABLE IF NOT EXISTS routing_mod (
    step INTEGER NOT NULL, run_id TEXT NOT NULL, model_id TEXT NOT NULL, layer INTEGER NOT NULL,
    selected_frac REAL, compute_savings_pct REAL, probs_mean REAL, probs_std REAL, status TEXT,
    PRIMARY KEY (model_id, step, layer));
CREATE TABLE IF NOT EXISTS routing_mor (
    step INTEGER NOT NULL, run_id TEXT NOT NULL, model_id TEXT NOT NULL, layer INTEGER NOT NULL,
    avg_depth REAL, expected_depth REAL, router_probs_mean REAL, status TEXT,
    PRIMARY KEY (model_id, step, layer));
CREATE TABLE IF NOT EXISTS routing_moe (
    step INTEGER NOT NULL, run_id TEXT NOT NULL, model_id TEXT NOT NULL, entropy REAL, divergence REAL,
    util_expert_0 REAL, util_expert_1 REAL, util_expert_2 REAL, util_expert_3 REAL,
    PRIMARY KEY (model_id, step));
CREATE TABLE IF NOT EXISTS adaptive_lr (
    step INTEGER NOT NULL, run_id TEXT NOT NULL, model_id TEXT NOT NULL,
    loss_ema_short REAL, loss_ema_long REAL, patience_counter INTEGER, cooldown_triggered INTEGER,
    PRIMARY KEY (model_id, step));
CREATE INDEX IF NOT EXISTS idx_steps_model_step ON steps(model_id, step);
CREATE INDEX IF NOT EXISTS idx_steps_run ON steps(run_id);
CREATE INDEX IF NOT EXISTS idx_runs_model ON runs(model_id);
";

const EMA_ALPHAS: [f64; 3] = [0.99, 0.999, 0.9999];

/// What a run's report says, for its `runs` row.
pub struct Report<'a> {
    pub run_id: &'a str,
    pub start_step: i64,
    pub max_steps: i64,
    /// `YYYYmmdd_HHMMSS`, as the report's name.
    pub timestamp: &'a str,
    pub total_tokens: i64,
    pub best: Option<(f64, i64)>,
    pub config_json: &'a str,
}

/// Loads a run's diagnostics records (`records`, in list order) and its report into the
/// database at `path`, creating it when missing.
pub async fn load(path: &Path, records: &[Logged], report: &Report<'_>) -> Result<(), String> {
    let fail = |e: sqlx::Error| format!("demo database {}: {e}", path.display());
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        // As Python's sqlite3, which the trainer's loader uses: the runs row comes last.
        .foreign_keys(false)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(fail)?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await.map_err(fail)?;
    let mut tx = pool.begin().await.map_err(fail)?;
    sqlx::query("INSERT OR IGNORE INTO models (model_id, name, params_millions, architecture_json) VALUES (?,?,?,?)")
        .bind(MODEL)
        .bind("HYDRA demo 100M")
        .bind(104.6)
        .bind(format!(r#"{{"blocks": {}, "recursions": 3, "experts": 4}}"#, super::LAYERS))
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    // The loader's EMAs start from the model's newest stored ones.
    let mut ema = [0.0_f64; 3];
    let newest = sqlx::query_as::<_, (Option<f64>, Option<f64>, Option<f64>)>(
        "SELECT ema_short, ema_medium, ema_long FROM steps WHERE model_id = ? ORDER BY step DESC LIMIT 1",
    )
    .bind(MODEL)
    .fetch_optional(&mut *tx)
    .await
    .map_err(fail)?;
    if let Some((a, b, c)) = newest {
        ema = [a.unwrap_or(0.0), b.unwrap_or(0.0), c.unwrap_or(0.0)];
    }
    for r in records {
        let s = &r.step;
        for (e, alpha) in ema.iter_mut().zip(EMA_ALPHAS) {
            *e = if *e == 0.0 {
                s.loss
            } else {
                alpha * *e + (1.0 - alpha) * s.loss
            };
        }
        sqlx::query("INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
            .bind(s.step)
            .bind(report.run_id)
            .bind(MODEL)
            .bind(&s.timestamp)
            .bind(s.loss)
            .bind(s.ce)
            .bind(s.loss * 0.02)
            .bind(s.loss * 0.005)
            .bind(s.loss * 0.005)
            .bind(s.lr)
            .bind(s.grad_post)
            .bind(s.grad_pre)
            .bind(ema[0])
            .bind(ema[1])
            .bind(ema[2])
            .bind(s.tokens_per_sec)
            .bind(s.vram_gb)
            .bind(8_i64)
            .bind(s.seq_len)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        for m in &r.mods {
            sqlx::query("INSERT OR REPLACE INTO routing_mod VALUES (?,?,?,?,?,?,?,?,?)")
                .bind(s.step)
                .bind(report.run_id)
                .bind(MODEL)
                .bind(m.layer)
                .bind(m.selected_frac)
                .bind((1.0 - m.selected_frac) * 100.0)
                .bind(m.selected_frac)
                .bind(0.1 + 0.02 * m.layer as f64)
                .bind(m.status)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        for m in &r.mors {
            sqlx::query("INSERT OR REPLACE INTO routing_mor VALUES (?,?,?,?,?,?,?,?)")
                .bind(s.step)
                .bind(report.run_id)
                .bind(MODEL)
                .bind(m.layer)
                .bind(m.avg_depth)
                .bind(m.avg_depth + 0.1)
                .bind(m.avg_depth / 3.0)
                .bind("OK")
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        let u = r.moe.util;
        sqlx::query("INSERT OR REPLACE INTO routing_moe VALUES (?,?,?,?,?,?,?,?,?)")
            .bind(s.step)
            .bind(report.run_id)
            .bind(MODEL)
            .bind(r.moe.entropy)
            .bind(r.moe.divergence)
            .bind(u[0])
            .bind(u[1])
            .bind(u[2])
            .bind(u[3])
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query("INSERT OR REPLACE INTO adaptive_lr VALUES (?,?,?,?,?,?,?)")
            .bind(s.step)
            .bind(report.run_id)
            .bind(MODEL)
            .bind(r.controller.0)
            .bind(r.controller.1)
            .bind(r.controller.2)
            .bind(i64::from(r.controller.3))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
    }
    sqlx::query("INSERT OR REPLACE INTO runs (run_id, model_id, start_step, end_step, start_time, end_time, total_tokens, best_loss, best_loss_step, config_json) VALUES (?,?,?,?,?,?,?,?,?,?)")
        .bind(report.run_id)
        .bind(MODEL)
        .bind(report.start_step)
        .bind(report.max_steps)
        .bind(report.timestamp)
        .bind(None::<String>)
        .bind(report.total_tokens)
        .bind(report.best.map(|b| b.0))
        .bind(report.best.map(|b| b.1))
        .bind(report.config_json)
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    pool.close().await;
    Ok(())
}
