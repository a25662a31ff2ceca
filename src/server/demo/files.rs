//! The demo trainer's files, written as the HYDRA trainer writes them
//! (`../shared/spec/hydra-run-files.md`): its log a line at a time, flushed as written, times
//! local and without a zone; its diagnostics file rewritten whole, not atomically (truncated,
//! then written in pieces); its report at the end.

use super::{Logged, StepRow};
use crate::analysis::time::format_iso8601;
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Bytes per write of a diagnostics rewrite: a reader can find the file cut at any of them.
const PIECE: usize = 16 << 10;

/// One run's log and diagnostics file.
pub struct RunFiles {
    pub run_id: String,
    root: PathBuf,
    log: File,
    diagnostics: PathBuf,
    records: Vec<Value>,
}

/// The trainer's local time of `clock` (epoch seconds), as `YYYY-mm-dd HH:MM:SS`.
pub fn local(clock: f64) -> String {
    let offset = crate::server::local_time::local_offset_seconds() as f64;
    format_iso8601(clock + offset).replacen('T', " ", 1)
}

/// A number as Python's `{:.2e}` writes it: `2.71e-04`.
fn sci(v: f64) -> String {
    let s = format!("{v:.2e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exp.abs())
        }
        None => s,
    }
}

impl RunFiles {
    /// Opens (appends to) the run's log under `root` and writes its first lines.
    pub fn start(root: &Path, run_id: &str, clock: f64, resumed: bool) -> std::io::Result<Self> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(root.join("logs").join(format!("training_{run_id}.log")))?;
        let mut files = Self {
            run_id: run_id.into(),
            root: root.to_path_buf(),
            log,
            diagnostics: root
                .join("checkpoints")
                .join(format!("diagnostics_{run_id}.json")),
            records: Vec::new(),
        };
        files.line(clock, "INFO", &format!("Run ID:         {run_id}"))?;
        files.line(
            clock,
            "INFO",
            &format!("Diagnostics:    checkpoints/diagnostics_{run_id}.json"),
        )?;
        if resumed {
            files.line(clock, "INFO", &format!("Resuming run: {run_id}"))?;
        }
        Ok(files)
    }

    /// One log line, on disk at once.
    pub fn line(&mut self, clock: f64, level: &str, message: &str) -> std::io::Result<()> {
        writeln!(self.log, "{} - HYDRA - {level} - {message}", local(clock))?;
        self.log.flush()
    }

    /// A `Step` line.
    pub fn step(&mut self, clock: f64, s: &StepRow, max_steps: i64) -> std::io::Result<()> {
        let clipped = if s.grad_pre > 1.0 { 100.0 } else { 0.0 };
        self.line(
            clock,
            "INFO",
            &format!(
                "Step {:>5}/{max_steps} | Loss: {:.4} (EMA: {:.4}) | CE: {:.4} (EMA: {:.4}) | LR: {} | Grad: pre {} | post {} | clipped {clipped:>4.1}% | {:.1}K tok/s | Avg: {:.1}K tok/s ({:.2} steps/s)",
                s.step,
                s.loss,
                s.ema,
                s.ce,
                s.ema * 0.97,
                sci(s.lr),
                sci(s.grad_pre),
                sci(s.grad_post),
                s.tokens_per_sec / 1e3,
                s.tokens_per_sec / 1e3 * 0.98,
                s.tokens_per_sec / (8.0 * 4.0 * s.seq_len as f64),
            ),
        )
    }

    /// `[EVAL]` and `[EVAL_COMPONENTS]` lines.
    pub fn eval(&mut self, clock: f64, step: i64, eval: f64, train: f64) -> std::io::Result<()> {
        self.line(
            clock,
            "INFO",
            &format!("[EVAL] step={step}  eval_loss={eval:.4}  train_loss={train:.4}"),
        )?;
        self.line(
            clock,
            "INFO",
            &format!(
                "[EVAL_COMPONENTS] step={step}  code(0.20)={:.4}  fineweb(0.60)={:.4}  math={:.4}",
                eval * 0.8,
                eval * 1.1,
                eval * 0.9
            ),
        )
    }

    /// A diagnostics record, kept in memory as the trainer keeps it until the next save.
    pub fn record(&mut self, clock: f64, r: &Logged) {
        let s = &r.step;
        let stamp = format!("{}.000000", local(clock).replacen(' ', "T", 1));
        let mods: Vec<Value> = r
            .mods
            .iter()
            .map(|m| {
                json!({"layer": m.layer, "probs_mean": m.selected_frac, "probs_std": 0.1,
                       "target": 0.5, "selected_frac": m.selected_frac,
                       "compute_savings_pct": (1.0 - m.selected_frac) * 100.0,
                       "routing_mode": "topk", "global_step": s.step, "status": m.status})
            })
            .collect();
        let mors: Vec<Value> = r
            .mors
            .iter()
            .map(|m| {
                let deep = ((m.avg_depth - 1.0) / 2.0).clamp(0.0, 1.0);
                json!({"layer": m.layer, "avg_depth": m.avg_depth, "expected_depth": m.avg_depth + 0.1,
                       "router_probs_mean": m.avg_depth / 3.0,
                       "depth_histogram": [(1.0 - deep) * 600.0, 300.0, deep * 600.0],
                       "status": "OK"})
            })
            .collect();
        let (short, long, patience, cooldown) = r.controller;
        self.records.push(json!({
            "step": s.step, "timestamp": stamp,
            "losses": {"total": s.loss, "ce": s.ce, "ce_micro_last": s.ce, "aux": s.loss * 0.02,
                       "ponder": s.loss * 0.005, "advantage": s.loss * 0.005},
            "lr": s.lr, "grad_norm": s.grad_post, "grad_norm_pre_clip": s.grad_pre,
            "tokens_per_sec": s.tokens_per_sec, "vram_gb": s.vram_gb, "batch_size": 8,
            "seq_len": s.seq_len, "mod_layers": mods, "mor_layers": mors,
            "moe": {"divergence": r.moe.divergence, "entropy": r.moe.entropy,
                    "utilization_pct": r.moe.util},
            "adaptive_lr": {"loss_ema_short": short, "loss_ema_long": long,
                            "cooldown_triggered": cooldown, "patience_counter": patience},
        }));
    }

    /// Rewrites the diagnostics file with every record so far, as `json.dump(indent=2)`
    /// into the truncated file does: in pieces, so a reader may see it cut anywhere.
    pub fn save(&self) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(&self.records)?;
        let mut file = File::create(&self.diagnostics)?;
        for piece in text.as_bytes().chunks(PIECE) {
            file.write_all(piece)?;
        }
        file.flush()
    }

    /// The end of a run that completes: the last save, `Training complete!`, its report.
    pub fn complete(&mut self, clock: f64, report: &Value, stamp: &str) -> std::io::Result<()> {
        self.save()?;
        self.line(clock, "INFO", "Training complete!")?;
        let reports = self.root.join("reports");
        std::fs::write(
            reports.join(format!("training_report_{stamp}.json")),
            serde_json::to_string_pretty(report)?,
        )
    }

    /// The end of a run that dies: a traceback in the log and nothing else; records since
    /// the last save are lost.
    pub fn crash(&mut self, clock: f64) -> std::io::Result<()> {
        self.line(clock, "ERROR", "Traceback (most recent call last):")?;
        self.line(
            clock,
            "ERROR",
            "RuntimeError: CUDA error: an illegal memory access was encountered",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_written_as_python_writes_them() {
        assert_eq!(sci(2.71e-4), "2.71e-04");
        assert_eq!(sci(1.03), "1.03e+00");
        assert_eq!(sci(12.5), "1.25e+01");
    }
}
