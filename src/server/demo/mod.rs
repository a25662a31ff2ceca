//! `hydra-dashboard demo`: a simulated HYDRA trainer, so a newcomer sees what watching a real
//! run looks like with one command.
//!
//! It writes what the trainer writes, when and how the trainer writes it
//! (`../shared/spec/hydra-run-files.md`), into a fresh directory (never the user's): a log
//! line every `LOG_EVERY` steps, a diagnostics record every 100 steps and the diagnostics file
//! rewritten whole every 500, eval lines every 500, and when a run completes its report and
//! its rows in `checkpoints/training.db`. The dashboard reads it all as it would a real run:
//! a finished first run, a second that crashed (its log ends in a traceback, its last records
//! lost), and a third resumed from the crash's last checkpoint, training now — with loss
//! spikes, MoD/MoR/MoE routing and an adaptive-LR controller.

mod db;
mod files;

use files::RunFiles;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MODEL: &str = "demo-100m";
const LAYERS: i64 = 8;
const LOG_EVERY: i64 = 25;
/// A diagnostics record every this many steps, the file rewritten every `SAVE_EVERY`.
const RECORD_EVERY: i64 = 100;
const SAVE_EVERY: i64 = 500;
const EVAL_EVERY: i64 = 500;
const MAX_STEPS: i64 = 200_000;
/// The first run is a short one that completes here.
const FIRST_RUN_STEPS: i64 = 4_000;
/// The second run resumes from it and dies here, its last save at the 500 before.
const CRASH_AT: i64 = 6_125;
/// Where the third run resumes: the crashed run's last checkpoint.
const RESUME_AT: i64 = 6_000;

/// Makes `dir` a trainer's working directory with the history of the first two runs: the
/// finished one (log, diagnostics file, report, database) and the crashed one (log and
/// diagnostics file up to its last save). Returns `dir`.
pub async fn prepare(dir: &Path) -> Result<PathBuf, String> {
    for sub in ["checkpoints", "logs", "reports"] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    let taken = |sub: &str| {
        std::fs::read_dir(dir.join(sub))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    };
    if taken("checkpoints") || taken("logs") {
        return Err(format!(
            "{} already holds a run; the demo writes a fresh one, give it an empty --dir",
            dir.display()
        ));
    }
    let rows = (CRASH_AT / LOG_EVERY) as f64;
    let mut sim = Simulation::new(now() - rows * SECONDS_PER_ROW - 900.0);
    let mut first = Trainer::start(dir, &sim, 0, FIRST_RUN_STEPS, false)?;
    for step in (LOG_EVERY..=FIRST_RUN_STEPS).step_by(LOG_EVERY as usize) {
        first.step(&mut sim, step).map_err(io)?;
        sim.clock += SECONDS_PER_ROW;
    }
    first.complete(dir, &sim).await?;
    sim.clock += 300.0;
    let mut second = Trainer::start(dir, &sim, FIRST_RUN_STEPS, MAX_STEPS, false)?;
    for step in (FIRST_RUN_STEPS + LOG_EVERY..=CRASH_AT).step_by(LOG_EVERY as usize) {
        second.step(&mut sim, step).map_err(io)?;
        sim.clock += SECONDS_PER_ROW;
    }
    second.files.crash(sim.clock).map_err(io)?;
    Ok(dir.to_path_buf())
}

/// The third run, resumed from the crashed run's last checkpoint: its log is started here,
/// before the dashboard serves, so the first page already lists it.
pub struct Training {
    dir: PathBuf,
    sim: Simulation,
    run: Trainer,
}

pub fn begin(dir: &Path) -> Result<Training, String> {
    let mut sim = Simulation::new(now());
    sim.warm_up(RESUME_AT);
    let mut run = Trainer::start(dir, &sim, RESUME_AT, MAX_STEPS, true)?;
    // Its first step line too: a run is listed from its first step.
    run.step(&mut sim, RESUME_AT + LOG_EVERY).map_err(io)?;
    Ok(Training {
        dir: dir.to_path_buf(),
        sim,
        run,
    })
}

impl Training {
    /// Trains in real time, `rows_per_second` log lines per second, until `MAX_STEPS` (then
    /// its report and database rows) or until the task is dropped.
    pub async fn run(mut self, rows_per_second: f64) -> Result<(), String> {
        let pause = Duration::from_secs_f64(1.0 / rows_per_second.clamp(0.1, 1000.0));
        for step in (RESUME_AT + 2 * LOG_EVERY..=MAX_STEPS).step_by(LOG_EVERY as usize) {
            self.sim.clock = now();
            self.run.step(&mut self.sim, step).map_err(io)?;
            tokio::time::sleep(pause).await;
        }
        self.run.complete(&self.dir, &self.sim).await
    }
}

const SECONDS_PER_ROW: f64 = 0.6 * LOG_EVERY as f64;

fn io(e: std::io::Error) -> String {
    format!("demo trainer: {e}")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One logged step's numbers.
pub(super) struct StepRow {
    pub step: i64,
    pub timestamp: String,
    pub loss: f64,
    pub ce: f64,
    pub lr: f64,
    pub grad_pre: f64,
    pub grad_post: f64,
    /// The trainer's running EMA of the loss, as its log line shows it.
    pub ema: f64,
    pub tokens_per_sec: f64,
    pub vram_gb: f64,
    pub seq_len: i64,
}

pub(super) struct ModOf {
    pub layer: i64,
    pub selected_frac: f64,
    pub status: &'static str,
}

pub(super) struct MorOf {
    pub layer: i64,
    pub avg_depth: f64,
}

pub(super) struct MoeOf {
    pub entropy: f64,
    pub divergence: f64,
    pub util: [f64; 4],
}

/// A diagnostics record: a step with its routing and the adaptive-LR controller's state
/// (short EMA, long EMA, patience, cooling down).
pub(super) struct Logged {
    pub step: StepRow,
    pub mods: Vec<ModOf>,
    pub mors: Vec<MorOf>,
    pub moe: MoeOf,
    pub controller: (f64, f64, i64, bool),
}

/// One run being trained: its files, its records so far, what its report will say.
struct Trainer {
    files: RunFiles,
    start_step: i64,
    max_steps: i64,
    started: f64,
    records: Vec<Logged>,
    tokens: i64,
    best: Option<(f64, i64)>,
}

impl Trainer {
    fn start(
        dir: &Path,
        sim: &Simulation,
        start_step: i64,
        max_steps: i64,
        resumed: bool,
    ) -> Result<Self, String> {
        let stamp = files::local(sim.clock);
        // The trainer's run id: {model}_{YYYYmmdd_HHMMSS}.
        let run_id = format!(
            "{MODEL}_{}_{}",
            stamp[..10].replace('-', ""),
            stamp[11..19].replace(':', "")
        );
        Ok(Self {
            files: RunFiles::start(dir, &run_id, sim.clock, resumed).map_err(io)?,
            start_step,
            max_steps,
            started: sim.clock,
            records: Vec::new(),
            tokens: 0,
            best: None,
        })
    }

    fn step(&mut self, sim: &mut Simulation, step: i64) -> std::io::Result<()> {
        let row = sim.log(step);
        self.tokens += 8 * 4 * row.seq_len * LOG_EVERY;
        if self.best.is_none_or(|(b, _)| row.loss < b) {
            self.best = Some((row.loss, step));
        }
        self.files.step(sim.clock, &row, self.max_steps)?;
        if step % EVAL_EVERY == 0 {
            let eval = Simulation::base_loss(step) * 1.04 + 0.02 * sim.gauss(1.0);
            self.files.eval(sim.clock, step, eval, row.loss)?;
        }
        if step % RECORD_EVERY == 0 {
            let logged = sim.record(row);
            self.files.record(sim.clock, &logged);
            self.records.push(logged);
        }
        if step % SAVE_EVERY == 0 {
            self.files.save()?;
        }
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "model_size": "100m", "mode": "demo", "architecture": "mod_mor",
            "run_id": self.files.run_id, "start_step": self.start_step,
            "max_steps": self.max_steps, "warmup_steps": 2000,
            "decay_start_step": MAX_STEPS * 8 / 10, "max_lr": 3e-4, "min_lr": 3e-5,
            "lr_schedule": "wsd_adaptive", "grad_clip": 1.0, "batch_size": 8,
            "grad_accum_steps": 4, "max_seq_len": 2048, "dataset_name": "demo_corpus",
            "log_interval": LOG_EVERY, "eval_interval": EVAL_EVERY, "mod_capacity": 0.5,
            "mor_recursions": 3, "mor_min_depth": 1, "mod_mor_dim": 768,
            "n_mor_blocks": LAYERS, "n_heads": 12, "vocab_size": 50257, "moe_enabled": true,
            "moe_num_experts": 4, "target_tokens_per_sec": 12000, "vram_total_gb": 32,
        })
    }

    /// The end of a run that completes: its last save, `Training complete!`, its report,
    /// then its records loaded into the database.
    async fn complete(&mut self, dir: &Path, sim: &Simulation) -> Result<(), String> {
        let stamp = files::local(sim.clock)
            .replace(['-', ':'], "")
            .replacen(' ', "_", 1);
        let config = self.config();
        let report = serde_json::json!({
            "metadata": {"timestamp": stamp, "model": "HYDRA demo 100M", "dataset": "demo_corpus",
                         "device": "cuda"},
            "configuration": config,
            "training_summary": {"total_steps": self.max_steps, "total_tokens": self.tokens,
                                 "training_time_seconds": sim.clock - self.started},
            "loss_analysis": {"best_loss": self.best.map(|b| b.0),
                              "best_loss_step": self.best.map(|b| b.1)},
        });
        self.files
            .complete(sim.clock, &report, &stamp)
            .map_err(io)?;
        let report = db::Report {
            run_id: &self.files.run_id,
            start_step: self.start_step,
            max_steps: self.max_steps,
            timestamp: &stamp,
            total_tokens: self.tokens,
            best: self.best,
            config_json: &config.to_string(),
        };
        db::load(
            &dir.join("checkpoints").join("training.db"),
            &self.records,
            &report,
        )
        .await
    }
}

/// The synthetic run: a power-law loss with noise and decaying spikes, a warmup-stable-decay
/// learning rate, lognormal gradient norms clipped at 1.0, a sequence-length curriculum,
/// routers that drift around their targets, and an adaptive-LR controller watching the loss.
struct Simulation {
    rng: StdRng,
    clock: f64,
    ema: f64,
    spikes: Vec<i64>,
    /// The controller: short and long loss EMAs, records without improvement, cooldown left.
    controller: (f64, f64, i64, i64),
}

impl Simulation {
    fn new(clock: f64) -> Self {
        let mut rng = StdRng::seed_from_u64(42);
        let mut spikes: Vec<i64> = (0..40)
            .map(|_| rng.random_range(300..MAX_STEPS / LOG_EVERY) * LOG_EVERY)
            .collect();
        // Spikes early in each run, so a fresh demo shows them at once.
        spikes.extend([1_500, 5_200, RESUME_AT + 300]);
        Self {
            rng,
            clock,
            ema: 0.0,
            spikes,
            controller: (0.0, 0.0, 0, 0),
        }
    }

    fn gauss(&mut self, sigma: f64) -> f64 {
        // Box–Muller: two uniforms make one normal sample.
        let u1: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = self.rng.random();
        sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
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

    /// Brings the running EMA to where the run it resumes left it.
    fn warm_up(&mut self, until: i64) {
        for step in (0..until).step_by(LOG_EVERY as usize) {
            let loss = Self::base_loss(step);
            self.ema = if self.ema == 0.0 {
                loss
            } else {
                0.99 * self.ema + 0.01 * loss
            };
        }
    }

    fn log(&mut self, step: i64) -> StepRow {
        let spike: f64 = self
            .spikes
            .iter()
            .filter(|k| (0..400).contains(&(step - **k)))
            .map(|k| 1.6 * (-((step - k) as f64) / 40.0).exp())
            .sum();
        let loss = Self::base_loss(step) * (1.0 + self.gauss(0.015)) + spike;
        self.ema = if self.ema == 0.0 {
            loss
        } else {
            0.99 * self.ema + 0.01 * loss
        };
        let grad_pre = (0.8_f64.ln() + self.gauss(0.35)).exp() * (1.0 + 6.0 * spike);
        let seq_len = if step < 20_000 {
            512
        } else if step < 60_000 {
            1024
        } else {
            2048
        };
        let stall = if step % 1000 == 0 { 0.35 } else { 1.0 };
        let tokens_per_sec =
            12_000.0 * (1.0 + self.gauss(0.04)) * stall * 1024.0 / seq_len.max(1024) as f64;
        StepRow {
            step,
            timestamp: files::local(self.clock).replacen(' ', "T", 1),
            loss,
            ce: loss * 0.97,
            lr: Self::lr(step),
            grad_pre,
            grad_post: grad_pre.min(1.0),
            ema: self.ema,
            tokens_per_sec,
            vram_gb: 20.0 + 6.0 * seq_len as f64 / 2048.0 + self.gauss(0.2),
            seq_len,
        }
    }

    /// The diagnostics record of a logged step: its routing and the controller.
    fn record(&mut self, row: StepRow) -> Logged {
        let step = row.step;
        let mut mods = Vec::new();
        let mut mors = Vec::new();
        for layer in 0..LAYERS {
            let frac = if step < 2000 {
                1.0
            } else {
                (0.5 + 0.08 * (step as f64 / 900.0 + layer as f64).sin() + self.gauss(0.01))
                    .clamp(0.0, 1.0)
            };
            let status = match frac {
                _ if step < 2000 => "DISABLED_PRE_ENABLE",
                f if (f - 0.5).abs() <= 0.05 => "OK",
                _ => "DRIFTING",
            };
            mods.push(ModOf {
                layer,
                selected_frac: frac,
                status,
            });
            let depth = 1.0
                + 1.4 * (1.0 - (-(step as f64) / 30_000.0).exp())
                + 0.2 * (layer as f64).sin()
                + self.gauss(0.03);
            mors.push(MorOf {
                layer,
                avg_depth: depth,
            });
        }
        let weights: Vec<f64> = (0..4).map(|_| (1.0 + self.gauss(0.15)).max(0.01)).collect();
        let total: f64 = weights.iter().sum();
        let util = [0, 1, 2, 3].map(|i| 100.0 * weights[i] / total);
        let entropy = -util
            .iter()
            .map(|u| u / 100.0 * (u / 100.0).ln())
            .sum::<f64>();
        // The controller: patience grows while the short EMA sits above the long one; at 6
        // it cools the learning rate down for 4 records.
        let (short, long, patience, cooling) = &mut self.controller;
        let loss = row.loss;
        *short = if *short == 0.0 {
            loss
        } else {
            0.9 * *short + 0.1 * loss
        };
        *long = if *long == 0.0 {
            loss
        } else {
            0.99 * *long + 0.01 * loss
        };
        *patience = if *short > *long { *patience + 1 } else { 0 };
        if *patience >= 6 && *cooling == 0 {
            *cooling = 4;
            *patience = 0;
        }
        let cooldown = *cooling > 0;
        *cooling = (*cooling - 1).max(0);
        Logged {
            controller: (*short, *long, *patience, cooldown),
            step: row,
            mods,
            mors,
            moe: MoeOf {
                entropy,
                divergence: 0.02 + step as f64 / MAX_STEPS as f64 * 0.1,
                util,
            },
        }
    }
}
