//! `hydra-dashboard demo`: a simulated HYDRA trainer, so a newcomer sees a moving dashboard
//! with one command.
//!
//! It writes its own fresh database (never the user's) in exactly the trainer's schema and
//! manner: a short transaction per batch of `INSERT OR REPLACE`, default rollback journal.
//! History first — a finished first run — then a resumed second run that keeps logging a
//! few steps per second, with loss spikes, MoD/MoR/MoE routing rows and run updates.

use crate::analysis::time::format_iso8601;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

const MODEL: &str = "demo-100m";
const LAYERS: i64 = 8;
const LOG_EVERY: i64 = 10;
const ROUTING_EVERY: i64 = 50;
const MAX_STEPS: i64 = 200_000;
/// The first run's history, written at once before serving; the second run resumes here.
const RESUME_AT: i64 = 4_000;
const EMA_ALPHAS: [f64; 3] = [0.99, 0.999, 0.9999];

/// Creates `dir/training.db` with the schema and the first run's history. Returns its path.
pub async fn prepare(dir: &Path) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("training.db");
    if path.exists() {
        return Err(format!(
            "{} already exists; demo writes a fresh database, give it an empty --dir",
            path.display()
        ));
    }
    let pool = open(&path).await?;
    sqlx::raw_sql(SCHEMA)
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let mut sim = Simulation::new(now());
    sim.clock -= (RESUME_AT / LOG_EVERY) as f64 * sim.seconds_per_row + 420.0;
    sqlx::query("INSERT OR IGNORE INTO models (model_id, name, params_millions, architecture_json) VALUES (?,?,?,?)")
        .bind(MODEL)
        .bind("HYDRA demo 100M")
        .bind(104.6)
        .bind(format!(r#"{{"blocks": {LAYERS}, "recursions": 3, "experts": 4}}"#))
        .execute(&pool)
        .await
        .map_err(|e| e.to_string())?;
    let first = sim.start_run(&pool, 0).await?;
    let mut batch = Batch::default();
    for step in (0..RESUME_AT).step_by(LOG_EVERY as usize) {
        sim.log(&first, step, &mut batch);
        if batch.steps.len() >= 200 {
            batch.write(&pool).await?;
        }
    }
    batch.write(&pool).await?;
    sim.end_run(&pool, &first, RESUME_AT - LOG_EVERY).await?;
    pool.close().await;
    Ok(path)
}

/// Keeps training the resumed second run, `rows_per_second` logged steps per second, until
/// `MAX_STEPS` or until the task is dropped.
pub async fn train(path: &Path, rows_per_second: f64) -> Result<(), String> {
    let pool = open(path).await?;
    let mut sim = Simulation::new(now());
    sim.warm_up_emas(RESUME_AT);
    let run = sim.start_run(&pool, RESUME_AT).await?;
    let pause = Duration::from_secs_f64(1.0 / rows_per_second.clamp(0.1, 1000.0));
    let mut step = RESUME_AT;
    while step < MAX_STEPS {
        let mut batch = Batch::default();
        sim.clock = now();
        sim.log(&run, step, &mut batch);
        batch.write(&pool).await?;
        if step % 500 == 0 {
            sim.update_run(&pool, &run, step).await?;
        }
        step += LOG_EVERY;
        tokio::time::sleep(pause).await;
    }
    sim.end_run(&pool, &run, step - LOG_EVERY).await?;
    pool.close().await;
    Ok(())
}

async fn open(path: &Path) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Rows waiting for one commit, as the trainer batches them.
#[derive(Default)]
struct Batch {
    steps: Vec<StepRow>,
    mod_rows: Vec<(i64, String, i64, f64, String)>,
    mor_rows: Vec<(i64, String, i64, f64, f64, String)>,
    moe_rows: Vec<(i64, String, f64, f64, [f64; 4])>,
}

struct StepRow {
    step: i64,
    run_id: String,
    timestamp: String,
    loss: f64,
    lr: f64,
    grad_pre: f64,
    grad_post: f64,
    ema: [f64; 3],
    tokens_per_sec: f64,
    vram_gb: f64,
    seq_len: i64,
}

impl Batch {
    async fn write(&mut self, pool: &SqlitePool) -> Result<(), String> {
        let mut tx = pool.begin().await.map_err(|e| e.to_string())?;
        for r in &self.steps {
            sqlx::query(
                "INSERT OR REPLACE INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            )
            .bind(r.step)
            .bind(&r.run_id)
            .bind(MODEL)
            .bind(&r.timestamp)
            .bind(r.loss)
            .bind(r.loss * 0.97)
            .bind(r.loss * 0.02)
            .bind(r.loss * 0.005)
            .bind(r.loss * 0.005)
            .bind(r.lr)
            .bind(r.grad_post)
            .bind(r.grad_pre)
            .bind(r.ema[0])
            .bind(r.ema[1])
            .bind(r.ema[2])
            .bind(r.tokens_per_sec)
            .bind(r.vram_gb)
            .bind(8_i64)
            .bind(r.seq_len)
            .execute(&mut *tx)
            .await
            .map_err(|e| e.to_string())?;
        }
        for (step, run_id, layer, frac, status) in &self.mod_rows {
            sqlx::query("INSERT OR REPLACE INTO routing_mod VALUES (?,?,?,?,?,?,?,?,?)")
                .bind(step)
                .bind(run_id)
                .bind(MODEL)
                .bind(layer)
                .bind(frac)
                .bind((1.0 - frac) * 100.0)
                .bind(frac)
                .bind(0.1 + 0.02 * *layer as f64)
                .bind(status)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        for (step, run_id, layer, depth, expected, status) in &self.mor_rows {
            sqlx::query("INSERT OR REPLACE INTO routing_mor VALUES (?,?,?,?,?,?,?,?)")
                .bind(step)
                .bind(run_id)
                .bind(MODEL)
                .bind(layer)
                .bind(depth)
                .bind(expected)
                .bind(depth / 3.0)
                .bind(status)
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        for (step, run_id, entropy, divergence, util) in &self.moe_rows {
            sqlx::query("INSERT OR REPLACE INTO routing_moe VALUES (?,?,?,?,?,?,?,?,?)")
                .bind(step)
                .bind(run_id)
                .bind(MODEL)
                .bind(entropy)
                .bind(divergence)
                .bind(util[0])
                .bind(util[1])
                .bind(util[2])
                .bind(util[3])
                .execute(&mut *tx)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        *self = Batch::default();
        Ok(())
    }
}

/// The synthetic run: a power-law loss with noise and decaying spikes, a warmup-stable-decay
/// learning rate, lognormal gradient norms clipped at 1.0, a sequence-length curriculum, and
/// routers that drift around their targets.
struct Simulation {
    rng: StdRng,
    clock: f64,
    seconds_per_row: f64,
    ema: [f64; 3],
    best: Option<(f64, i64)>,
    tokens: i64,
    spikes: Vec<i64>,
}

impl Simulation {
    fn new(clock: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let mut spikes: Vec<i64> = (0..40)
            .map(|_| rng.random_range(300..MAX_STEPS / LOG_EVERY) * LOG_EVERY)
            .collect();
        // A spike just after the resume, so a fresh demo shows one within a minute.
        spikes.push(RESUME_AT + 300);
        spikes.push(1_500);
        Self {
            rng,
            clock,
            seconds_per_row: 0.6 * LOG_EVERY as f64,
            ema: [0.0; 3],
            best: None,
            tokens: 0,
            spikes,
        }
    }

    fn gauss(&mut self, sigma: f64) -> f64 {
        // Box–Muller: two uniforms make one normal sample.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn config(&self, run_id: &str, start_step: i64) -> String {
        serde_json::json!({
            "model_size": "100M", "mode": "demo", "architecture": "mod_mor",
            "max_steps": MAX_STEPS, "warmup_steps": 2000, "decay_start_step": MAX_STEPS * 8 / 10,
            "max_lr": 3e-4, "min_lr": 3e-5, "lr_schedule": "wsd", "grad_clip": 1.0,
            "grad_clip_dynamic": false, "batch_size": 8, "grad_accum_steps": 4, "max_seq_len": 2048,
            "dataset_name": "demo_corpus", "log_interval": LOG_EVERY, "mod_capacity": 0.5,
            "mor_recursions": 3, "mor_min_depth": 1, "mor_collapse_depth0_threshold": 0.9,
            "mod_mor_dim": 768, "n_mor_blocks": LAYERS, "mod_mor_n_heads": 12, "vocab_size": 50257,
            "moe_enabled": true, "moe_num_experts": 4, "target_tokens_per_sec": 12000,
            "vram_total_gb": 32, "run_id": run_id, "start_step": start_step,
        })
        .to_string()
    }

    fn lr(step: i64) -> f64 {
        let (max, min, warmup, decay) = (3e-4, 3e-5, 2000, MAX_STEPS * 8 / 10);
        if step < warmup {
            max * (step + 1) as f64 / warmup as f64
        } else if step < decay {
            max
        } else {
            let frac = (step - decay) as f64 / (MAX_STEPS - decay) as f64;
            min + (max - min) * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
        }
    }

    fn base_loss(step: i64) -> f64 {
        2.1 + 8.5 * ((step + 200) as f64).powf(-0.33)
    }

    /// Brings the EMAs to where the first run left them, as a resumed trainer reloads them.
    fn warm_up_emas(&mut self, until: i64) {
        for step in (0..until).step_by(LOG_EVERY as usize) {
            let loss = Self::base_loss(step);
            self.push_ema(loss);
        }
    }

    fn push_ema(&mut self, loss: f64) {
        for (ema, alpha) in self.ema.iter_mut().zip(EMA_ALPHAS) {
            *ema = if *ema == 0.0 {
                loss
            } else {
                alpha * *ema + (1.0 - alpha) * loss
            };
        }
    }

    fn log(&mut self, run_id: &str, step: i64, batch: &mut Batch) {
        let spike: f64 = self
            .spikes
            .iter()
            .filter(|k| (0..400).contains(&(step - **k)))
            .map(|k| 1.6 * (-((step - k) as f64) / 40.0).exp())
            .sum();
        let loss = Self::base_loss(step) * (1.0 + self.gauss(0.015)) + spike;
        self.push_ema(loss);
        if self.best.is_none_or(|(b, _)| loss < b) {
            self.best = Some((loss, step));
        }
        let grad_pre = (0.8_f64.ln() + self.gauss(0.35)).exp() * (1.0 + 6.0 * spike);
        let seq_len = if step < 20_000 {
            512
        } else if step < 60_000 {
            1024
        } else {
            2048
        };
        self.tokens += 8 * 4 * seq_len * LOG_EVERY;
        let stall = if step % 1000 == 0 { 0.35 } else { 1.0 };
        let tokens_per_sec =
            12_000.0 * (1.0 + self.gauss(0.04)) * stall * 1024.0 / seq_len.max(1024) as f64;
        let vram_gb = 20.0 + 6.0 * seq_len as f64 / 2048.0 + self.gauss(0.2);
        batch.steps.push(StepRow {
            step,
            run_id: run_id.to_string(),
            // With its zone: the trainer's own zone-less times are local, ours are UTC.
            timestamp: format!("{}+00:00", format_iso8601(self.clock)),
            loss,
            lr: Self::lr(step),
            grad_pre,
            grad_post: grad_pre.min(1.0),
            ema: self.ema,
            tokens_per_sec,
            vram_gb,
            seq_len,
        });
        if step % ROUTING_EVERY == 0 {
            for layer in 0..LAYERS {
                let frac = if step < 2000 {
                    1.0
                } else {
                    (0.5 + 0.08 * (step as f64 / 900.0 + layer as f64).sin() + self.gauss(0.01))
                        .clamp(0.0, 1.0)
                };
                let status = match frac {
                    _ if step < 2000 => "warmup",
                    f if (f - 0.5).abs() <= 0.05 => "ok",
                    f if f > 0.5 => "high",
                    _ => "low",
                };
                batch
                    .mod_rows
                    .push((step, run_id.into(), layer, frac, status.into()));
                let depth = 1.0
                    + 1.4 * (1.0 - (-(step as f64) / 30_000.0).exp())
                    + 0.2 * (layer as f64).sin()
                    + self.gauss(0.03);
                batch
                    .mor_rows
                    .push((step, run_id.into(), layer, depth, depth + 0.1, "ok".into()));
            }
            let weights: Vec<f64> = (0..4).map(|_| (1.0 + self.gauss(0.15)).max(0.01)).collect();
            let total: f64 = weights.iter().sum();
            let util = [0, 1, 2, 3].map(|i| 100.0 * weights[i] / total);
            let entropy = -util
                .iter()
                .map(|u| u / 100.0 * (u / 100.0).ln())
                .sum::<f64>();
            let divergence = 0.02 + step as f64 / MAX_STEPS as f64 * 0.1;
            batch
                .moe_rows
                .push((step, run_id.into(), entropy, divergence, util));
        }
        self.clock += self.seconds_per_row;
    }

    async fn start_run(&mut self, pool: &SqlitePool, start_step: i64) -> Result<String, String> {
        let stamp = format_iso8601(self.clock);
        // The trainer's run id: {model}_{YYYYmmdd_HHMMSS}.
        let run_id = format!(
            "{MODEL}_{}_{}",
            stamp[..10].replace('-', ""),
            stamp[11..19].replace(':', "")
        );
        self.best = None;
        self.tokens = 0;
        sqlx::query("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?)")
            .bind(&run_id)
            .bind(MODEL)
            .bind(start_step)
            .bind(0_i64)
            .bind(&stamp)
            .bind(None::<String>)
            .bind(0_i64)
            .bind(None::<f64>)
            .bind(None::<i64>)
            .bind(self.config(&run_id, start_step))
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
        Ok(run_id)
    }

    /// What the trainer records about a run while it goes: tokens so far and best loss.
    async fn update_run(&self, pool: &SqlitePool, run_id: &str, _step: i64) -> Result<(), String> {
        sqlx::query("UPDATE runs SET total_tokens=?, best_loss=?, best_loss_step=? WHERE run_id=?")
            .bind(self.tokens)
            .bind(self.best.map(|b| b.0))
            .bind(self.best.map(|b| b.1))
            .bind(run_id)
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn end_run(&self, pool: &SqlitePool, run_id: &str, last: i64) -> Result<(), String> {
        sqlx::query(
            "UPDATE runs SET end_step=?, end_time=?, total_tokens=?, best_loss=?, best_loss_step=? WHERE run_id=?",
        )
        .bind(last)
        .bind(format_iso8601(self.clock))
        .bind(self.tokens)
        .bind(self.best.map(|b| b.0))
        .bind(self.best.map(|b| b.1))
        .bind(run_id)
        .execute(pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}
