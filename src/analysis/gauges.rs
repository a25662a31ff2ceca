//! Throughput and VRAM gauge values from the newest steps, the run's config and the flags.

use crate::model::{GaugeSettings, Gauges, RunConfig, Step};

/// Logged steps averaged for the throughput gauge's mean.
pub const THROUGHPUT_WINDOW: usize = 50;

/// `newest_first`: the run's latest steps, newest first. The run's config
/// (`target_tokens_per_sec`, `vram_total_gb`) wins over the flags; warn and danger zones
/// scale with a config total so a 80 GB card is not "red" at 30 GB.
pub fn compute(newest_first: &[Step], config: &RunConfig, settings: &GaugeSettings) -> Gauges {
    let tps = recent_throughputs(newest_first);
    let total = config
        .number("vram_total_gb")
        .filter(|t| *t > 0.0)
        .unwrap_or(settings.vram_total_gb);
    let scale = total / settings.vram_total_gb;
    Gauges {
        tokens_per_sec: newest_first
            .first()
            .and_then(|s| measured(s.tokens_per_sec)),
        tokens_per_sec_mean: mean(&tps),
        target_tokens_per_sec: config
            .number("target_tokens_per_sec")
            .filter(|t| *t > 0.0)
            .unwrap_or(settings.target_tokens_per_sec),
        // The newest measured: a log line has no VRAM, its diagnostics record (every 100
        // steps) has.
        vram_gb: newest_first.iter().find_map(|s| measured(s.vram_gb)),
        vram_warn_gb: settings.vram_warn_gb * scale,
        vram_danger_gb: settings.vram_danger_gb * scale,
        vram_total_gb: total,
        recent_tokens_per_sec: tps,
    }
}

/// The throughputs measured at the newest [`THROUGHPUT_WINDOW`] logged steps, newest first.
pub fn recent_throughputs(newest_first: &[Step]) -> Vec<f64> {
    newest_first
        .iter()
        .take(THROUGHPUT_WINDOW)
        .filter_map(|s| measured(s.tokens_per_sec))
        .collect()
}

/// The trainer writes 0 when it did not measure; that is "no value", not "stalled".
fn measured(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite() && *x > 0.0)
}

pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Green at ≥ 75% of the target throughput, yellow at ≥ 50%, red below.
pub fn throughput_zone(tokens_per_sec: f64, target: f64) -> Zone {
    match tokens_per_sec / target.max(1.0) {
        share if share >= 0.75 => Zone::Good,
        share if share >= 0.5 => Zone::Warn,
        _ => Zone::Bad,
    }
}

/// Green below the warning line, yellow up to the danger line, red beyond.
pub fn vram_zone(gb: f64, g: &Gauges) -> Zone {
    match gb {
        v if v >= g.vram_danger_gb => Zone::Bad,
        v if v >= g.vram_warn_gb => Zone::Warn,
        _ => Zone::Good,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    Good,
    Warn,
    Bad,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(tps: f64, vram: f64) -> Step {
        let mut s: Step = serde_json::from_value(serde_json::json!({
            "step": 1, "run_id": "r", "model_id": "m", "timestamp": null, "loss_total": 1.0,
            "loss_ce": null, "loss_aux": null, "loss_ponder": null, "loss_advantage": null,
            "lr": null, "grad_norm": null, "grad_norm_pre_clip": null, "ema_short": null,
            "ema_medium": null, "ema_long": null
        }))
        .unwrap();
        s.tokens_per_sec = Some(tps);
        s.vram_gb = Some(vram);
        s
    }

    #[test]
    fn the_mean_covers_the_last_fifty_measured_steps() {
        let mut steps: Vec<Step> = (0..60)
            .map(|i| step(if i < 50 { 10_000.0 } else { 1.0 }, 20.0))
            .collect();
        steps[3] = step(0.0, 0.0); // not measured: left out, not averaged in as a stall
        let g = compute(&steps, &RunConfig::Missing, &GaugeSettings::default());
        assert_eq!(g.tokens_per_sec, Some(10_000.0));
        assert_eq!(g.tokens_per_sec_mean, Some(10_000.0));
        assert_eq!(g.target_tokens_per_sec, 12_000.0);
        assert_eq!(
            (g.vram_warn_gb, g.vram_danger_gb, g.vram_total_gb),
            (24.0, 28.0, 32.0)
        );
    }

    #[test]
    fn config_targets_win_and_zones_scale_with_the_card() {
        let config = RunConfig::parse(Some(
            r#"{"target_tokens_per_sec": 20000, "vram_total_gb": 80}"#,
        ));
        let g = compute(&[step(9_000.0, 50.0)], &config, &GaugeSettings::default());
        assert_eq!(g.target_tokens_per_sec, 20_000.0);
        assert_eq!((g.vram_warn_gb, g.vram_danger_gb), (60.0, 70.0));
        assert_eq!(throughput_zone(9_000.0, 20_000.0), Zone::Bad);
        assert_eq!(throughput_zone(10_000.0, 20_000.0), Zone::Warn);
        assert_eq!(throughput_zone(15_000.0, 20_000.0), Zone::Good);
        assert_eq!(vram_zone(50.0, &g), Zone::Good);
        assert_eq!(vram_zone(65.0, &g), Zone::Warn);
        assert_eq!(vram_zone(75.0, &g), Zone::Bad);
    }
}
