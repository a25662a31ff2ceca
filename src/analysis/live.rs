//! Folding what the live feed brings into the page's data, in place: points appended to
//! each series, spikes, collapses and the stats cards continued with the same detectors the
//! server ran over the whole run, so a page that has been open for a day shows what a fresh
//! load would.

use super::depth_shares::{push_live, Shares};
use super::downsample::m4_points;
use super::gauges::{mean, THROUGHPUT_WINDOW};
use super::loss::{SpikeWindow, EMA_ALPHAS};
use super::routing::SHARE_COLUMNS;
use super::time::parse_iso8601;
use crate::model::{
    Dashboard, LayerDepth, ModCell, NonFinite, Points, RoutingMod, RoutingMoe, RoutingMor,
    RunConfig, Step,
};

/// A series longer than this is downsampled again (M4, extremes kept) to half of it.
pub const LIVE_POINTS_MAX: usize = 4_800;
/// Clock marks a live page keeps (twice what a load sends).
const LIVE_CLOCK_MAX: usize = 600;
/// MoD heatmap cells per layer beyond which neighbours merge (worst value kept).
const LIVE_CELLS_MAX: usize = 300;

/// What merging asks of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// The data now includes the update.
    Merged,
    /// The trainer re-logged steps the page already drew (a rollback): read the run again.
    Reload,
}

/// Folds one `update` of the live feed into `d`.
pub fn merge(
    d: &mut Dashboard,
    steps: &[Step],
    mods: &[RoutingMod],
    mors: &[RoutingMor],
    moes: &[RoutingMoe],
) -> Merge {
    let mut steps: Vec<&Step> = steps.iter().collect();
    steps.sort_by_key(|s| s.step);
    let known = d.summary.as_ref().and_then(|s| s.last_step);
    if steps
        .first()
        .is_some_and(|s| known.is_some_and(|k| s.step <= k))
    {
        return Merge::Reload;
    }
    let config = d.run.as_ref().map(|r| r.config());
    // The spike detector's window, taken up where the server left it (and put back below).
    let mut window = SpikeWindow::default();
    if let Some(c) = d.charts.as_ref() {
        c.recent_losses.iter().for_each(|l| {
            window.judge(*l);
        });
    }
    for s in &steps {
        merge_step(d, s, config.as_ref(), &mut window);
    }
    if let Some(c) = d.charts.as_mut() {
        c.recent_losses = window.losses();
    }
    if let Some(r) = d.routing.as_mut() {
        merge_routing(r, mods, mors, moes);
    }
    Merge::Merged
}

fn merge_step(d: &mut Dashboard, s: &Step, config: Option<&RunConfig>, window: &mut SpikeWindow) {
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    // Stats cards: the same fields the server's one pass fills.
    if let Some(sum) = d.summary.as_mut() {
        let previous = sum.last_step;
        sum.step_count += 1;
        sum.first_step.get_or_insert(s.step);
        sum.last_step = Some(s.step);
        sum.last_loss = s.loss_total;
        match s.finite_loss() {
            Some(l) if sum.best_loss.is_none_or(|b| l < b) => {
                sum.best_loss = Some(l);
                sum.best_loss_step = Some(s.step);
            }
            Some(_) => {}
            None => sum.nonfinite_losses += 1,
        }
        if let Some(ts) = s.timestamp.as_ref().filter(|t| !t.is_empty()) {
            sum.last_timestamp = Some(ts.clone());
            let start = d.run.as_ref().and_then(|r| r.start_time.as_deref());
            if let (Some(a), Some(b)) = (start.and_then(parse_iso8601), parse_iso8601(ts)) {
                sum.elapsed_seconds = (b >= a).then_some(b - a);
            }
        }
        if let Some(tps) = finite(s.tokens_per_sec).filter(|v| *v > 0.0) {
            sum.last_tokens_per_sec = Some(tps);
        }
        if let Some(vram) = finite(s.vram_gb).filter(|v| *v > 0.0) {
            sum.last_vram_gb = Some(vram);
        }
        if let (Some(tokens), Some(batch), Some(seq), Some(prev)) =
            (sum.tokens_estimate, s.batch_size, s.seq_len, previous)
        {
            let accum = config
                .and_then(|c| c.count("grad_accum_steps"))
                .unwrap_or(1) as f64;
            let covered = s.step.saturating_sub(prev).max(0) as f64;
            sum.tokens_estimate = Some(tokens + (batch * seq) as f64 * accum * covered);
        }
        // The step rate stays the one measured at load over five minutes; the ETA follows
        // the steps.
        if let (Some(rate), Some(max)) = (
            sum.steps_per_second,
            config.and_then(|c| c.count("max_steps")),
        ) {
            sum.eta_seconds = Some((max - s.step).max(0) as f64 / rate);
        }
    }
    // The recent-steps table, newest first, the same length.
    let keep = d.recent_steps.len().max(1);
    d.recent_steps.insert(0, s.clone());
    d.recent_steps.truncate(keep);
    // Gauges.
    if let Some(g) = d.gauges.as_mut() {
        g.tokens_per_sec = finite(s.tokens_per_sec).filter(|v| *v > 0.0);
        // A step without VRAM (a log line) keeps the newest measured.
        g.vram_gb = finite(s.vram_gb).filter(|v| *v > 0.0).or(g.vram_gb);
        if let Some(tps) = g.tokens_per_sec {
            g.recent_tokens_per_sec.insert(0, tps);
            g.recent_tokens_per_sec.truncate(THROUGHPUT_WINDOW);
        }
        g.tokens_per_sec_mean = mean(&g.recent_tokens_per_sec).or(g.tokens_per_sec_mean);
    }
    // The clock, for the tooltip's time and an x axis by time or tokens.
    let mark = crate::model::ClockMark {
        step: s.step,
        time: s.timestamp.as_deref().and_then(parse_iso8601),
        tokens: d.summary.as_ref().and_then(|sum| sum.tokens_estimate),
    };
    if let Some(r) = d.routing.as_mut() {
        r.clock.push(mark);
        super::clock::bound(&mut r.clock, LIVE_CLOCK_MAX);
    }
    // Charts.
    let Some(c) = d.charts.as_mut() else { return };
    c.clock.push(mark);
    super::clock::bound(&mut c.clock, LIVE_CLOCK_MAX);
    let previous_step = c.loss.last().map(|p| p.0);
    match s.loss_total {
        Some(l) if l.is_finite() => {
            if window.judge(l) {
                // Consecutive flagged steps are one event, marked at its peak.
                match c.spikes.last_mut() {
                    Some(peak) if previous_step == Some(peak.0) => {
                        if l > peak.1 {
                            *peak = (s.step, l);
                        }
                    }
                    _ => c.spikes.push((s.step, l)),
                }
            }
            c.loss.push((s.step, l));
        }
        other => c.diverged.push((
            s.step,
            match other {
                Some(v) if v == f64::INFINITY => NonFinite::Inf,
                Some(v) if v == f64::NEG_INFINITY => NonFinite::NegInf,
                _ => NonFinite::Nan,
            },
        )),
    }
    let recorded = [s.ema_short, s.ema_medium, s.ema_long];
    for (i, series) in c.ema.iter_mut().enumerate() {
        let value = match finite(recorded[i]).filter(|v| *v != 0.0) {
            Some(v) if !c.ema_computed => Some(v),
            _ => {
                // Not recorded: continue the dashboard's own EMA from its last value (the
                // trainer's last, when it recorded some and then stored NULL after a NaN).
                if !c.ema_computed && c.ema_computed_from.is_none() {
                    c.ema_computed_from = Some(s.step);
                }
                match (series.last().map(|p| p.1), s.finite_loss()) {
                    (Some(e), Some(l)) => Some(EMA_ALPHAS[i] * e + (1.0 - EMA_ALPHAS[i]) * l),
                    (None, l) => l,
                    (e, None) => e,
                }
            }
        };
        if let Some(v) = value {
            series.push((s.step, v));
        }
    }
    let push = |series: &mut Points, v: Option<f64>| {
        if let Some(v) = finite(v) {
            series.push((s.step, v));
        }
    };
    push(&mut c.lr, s.lr);
    push(&mut c.grad_post_clip, s.grad_norm);
    if !c.grad_pre_clip.is_empty() {
        push(&mut c.grad_pre_clip, s.grad_norm_pre_clip);
    }
    c.last_step = s.step;
    for series in [
        &mut c.loss,
        &mut c.lr,
        &mut c.grad_post_clip,
        &mut c.grad_pre_clip,
    ]
    .into_iter()
    .chain(c.ema.iter_mut())
    {
        shrink(series);
    }
}

/// Downsamples a series that outgrew [`LIVE_POINTS_MAX`] to half of it, extremes kept.
fn shrink(series: &mut Points) {
    if series.len() > LIVE_POINTS_MAX {
        let (steps, values): (Vec<i64>, Vec<f64>) = series.iter().copied().unzip();
        *series = m4_points(&steps, &values, LIVE_POINTS_MAX / 8);
    }
}

fn merge_routing(
    r: &mut crate::model::RoutingCharts,
    mods: &[RoutingMod],
    mors: &[RoutingMor],
    moes: &[RoutingMoe],
) {
    for m in mods {
        let Some(frac) = m.selected_frac.filter(|f| f.is_finite()) else {
            continue;
        };
        add_layer(&mut r.layers, m.layer);
        r.mod_cells.push(ModCell {
            step_lo: m.step,
            step_hi: m.step,
            layer: m.layer,
            selected_frac: frac,
            compute_savings_pct: m.compute_savings_pct,
            status: m.status.clone(),
        });
        r.last_step = r.last_step.max(m.step);
    }
    let layers = r.layers.len().max(1);
    if r.mod_cells.len() > LIVE_CELLS_MAX * layers {
        r.mod_cells = merge_cells(&r.mod_cells, r.mod_capacity.unwrap_or(0.5));
    }
    for m in mors {
        add_layer(&mut r.layers, m.layer);
        let at = match r.mor_depth.iter().position(|l| l.layer == m.layer) {
            Some(at) => at,
            None => {
                r.mor_depth.push(LayerDepth {
                    layer: m.layer,
                    ..Default::default()
                });
                r.mor_depth.len() - 1
            }
        };
        let layer = &mut r.mor_depth[at];
        if let Some(v) = m.avg_depth.filter(|v| v.is_finite()) {
            layer.avg_depth.push((m.step, v));
            shrink(&mut layer.avg_depth);
        }
        if let Some(v) = m.expected_depth.filter(|v| v.is_finite()) {
            layer.expected_depth.push((m.step, v));
            shrink(&mut layer.expected_depth);
        }
        if let Some(shares) = m.depth_histogram.as_deref().and_then(Shares::of_histogram) {
            push_live(&mut r.mor_shares, m.step, m.layer, shares, SHARE_COLUMNS);
        }
        if let Some(flicker) = r.collapse_detector.push(m, r.mor_min_depth) {
            r.flickers.push(flicker);
        }
        r.last_step = r.last_step.max(m.step);
    }
    if !mors.is_empty() {
        r.collapses = r.collapse_detector.found.clone();
        r.collapses.sort_by_key(|c| (c.layer, c.since_step));
        let column = (r.last_step - r.first_step) / LIVE_CELLS_MAX as i64;
        r.flickers = super::routing::merge_flickers(r.flickers.iter(), column);
    }
    for m in moes.iter().filter(|m| !super::routing::no_moe(m)) {
        let utils = [
            m.util_expert_0,
            m.util_expert_1,
            m.util_expert_2,
            m.util_expert_3,
        ];
        if r.moe_util.is_empty() {
            r.moe_util = vec![Vec::new(); utils.len()];
        }
        for (series, v) in r.moe_util.iter_mut().zip(utils) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                series.push((m.step, v));
                shrink(series);
            }
        }
        for (series, v) in [
            (&mut r.moe_entropy, m.entropy),
            (&mut r.moe_divergence, m.divergence),
        ] {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                series.push((m.step, v));
                shrink(series);
            }
        }
        r.last_step = r.last_step.max(m.step);
    }
}

fn add_layer(layers: &mut Vec<i64>, layer: i64) {
    if let Err(at) = layers.binary_search(&layer) {
        layers.insert(at, layer);
    }
}

/// Halves each layer's cells by merging neighbours, keeping the value farthest from
/// `capacity` as the heatmap does.
fn merge_cells(cells: &[ModCell], capacity: f64) -> Vec<ModCell> {
    let mut by_layer: std::collections::BTreeMap<i64, Vec<ModCell>> = Default::default();
    for c in cells {
        by_layer.entry(c.layer).or_default().push(c.clone());
    }
    let mut out = Vec::with_capacity(cells.len() / 2 + 1);
    for (_, mut layer) in by_layer {
        layer.sort_by_key(|c| c.step_lo);
        for pair in layer.chunks(2) {
            let mut cell = pair[0].clone();
            if let Some(next) = pair.get(1) {
                cell.step_hi = next.step_hi;
                if (next.selected_frac - capacity).abs() > (cell.selected_frac - capacity).abs() {
                    cell.selected_frac = next.selected_frac;
                    cell.compute_savings_pct = next.compute_savings_pct;
                    cell.status = next.status.clone();
                }
            }
            out.push(cell);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::charts::RunColumns;
    use crate::analysis::oracle::prepare;
    use crate::analysis::summary::SummaryBuilder;
    use crate::model::{GaugeSettings, Run};

    const CONFIG: &str = r#"{"max_steps": 10000, "grad_clip": 1.0}"#;

    /// A run whose loss falls with noise, spikes at 700 and 1500, and is NaN at 1200.
    fn step(n: i64) -> Step {
        let noise = ((n as f64) * 1.7).sin() * 0.02;
        let loss = match n {
            700 | 1500 => 6.0,
            1200 => f64::NAN,
            _ => 3.0 - n as f64 * 0.0002 + noise,
        };
        Step {
            step: n,
            run_id: "r".into(),
            model_id: "m".into(),
            timestamp: Some(format!(
                "2026-01-09T{:02}:{:02}:{:02}",
                10 + n / 3600,
                n / 60 % 60,
                n % 60
            )),
            loss_total: loss.is_finite().then_some(loss),
            lr: Some(1e-4),
            grad_norm: Some(0.5 + noise),
            grad_norm_pre_clip: Some(0.8 + noise),
            ema_short: Some(0.0),
            ema_medium: Some(0.0),
            ema_long: Some(0.0),
            tokens_per_sec: Some(10_000.0 + n as f64),
            vram_gb: Some(20.0),
            batch_size: Some(8),
            seq_len: Some(1024),
            ..Default::default()
        }
    }

    /// Layer 0 sits at depth 1.0 from step 1300 on: a collapse the live page must find.
    fn mor(n: i64, layer: i64) -> RoutingMor {
        RoutingMor {
            step: n,
            run_id: "r".into(),
            model_id: "m".into(),
            layer,
            avg_depth: Some(if layer == 0 && n >= 1300 { 1.0 } else { 2.2 }),
            expected_depth: Some(2.0),
            router_probs_mean: None,
            status: Some("ok".into()),
            depth_histogram: None,
        }
    }

    /// What the server would send for steps `0..end`.
    fn load(end: i64) -> Dashboard {
        let run = Run {
            run_id: "r".into(),
            model_id: "m".into(),
            start_time: Some("2026-01-09T10:00:00".into()),
            config_json: Some(CONFIG.into()),
            ..Default::default()
        };
        let config = run.config();
        let mut builder = SummaryBuilder::new(&config);
        let mut columns = RunColumns::default();
        let steps: Vec<Step> = (0..end).map(step).collect();
        for s in &steps {
            builder.push(s);
            columns.push(s);
        }
        let mors: Vec<RoutingMor> = (0..end)
            .step_by(50)
            .flat_map(|n| [mor(n, 0), mor(n, 1)])
            .collect();
        let newest_first: Vec<Step> = steps.iter().rev().take(50).cloned().collect();
        Dashboard {
            summary: Some(builder.finish(&run)),
            charts: Some(prepare(&columns, &config, 600)),
            routing: Some(crate::analysis::oracle::prepare_routing(
                &[],
                &mors,
                &[],
                &config,
                150,
            )),
            gauges: Some(super::super::gauges::compute(
                &newest_first,
                &config,
                &GaugeSettings::default(),
            )),
            recent_steps: newest_first[..8].to_vec(),
            run: Some(run),
            ..Default::default()
        }
    }

    #[test]
    fn a_page_followed_live_shows_what_a_fresh_load_would() {
        let mut page = load(1000);
        let mut n = 1000;
        // Updates of uneven size, as the trainer's batches and the poll interleave.
        for size in [1, 7, 50, 3, 200, 9].iter().cycle() {
            if n >= 2000 {
                break;
            }
            let end = (n + size).min(2000);
            let steps: Vec<Step> = (n..end).map(step).collect();
            let mors: Vec<RoutingMor> = (n..end)
                .filter(|s| s % 50 == 0)
                .flat_map(|s| [mor(s, 0), mor(s, 1)])
                .collect();
            assert_eq!(merge(&mut page, &steps, &[], &mors, &[]), Merge::Merged);
            n = end;
        }
        let fresh = load(2000);
        let (live, full) = (
            page.charts.as_ref().unwrap(),
            fresh.charts.as_ref().unwrap(),
        );
        assert_eq!(live.spikes, full.spikes);
        assert_eq!(
            live.spikes.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![700, 1500]
        );
        assert_eq!(live.diverged, full.diverged);
        assert_eq!(live.loss.last(), full.loss.last());
        assert_eq!(
            live.ema[2].last(),
            full.ema[2].last(),
            "computed EMAs continue exactly"
        );
        let (a, b) = (page.summary.unwrap(), fresh.summary.unwrap());
        assert_eq!(
            (
                a.step_count,
                a.last_step,
                a.best_loss,
                a.best_loss_step,
                a.nonfinite_losses
            ),
            (
                b.step_count,
                b.last_step,
                b.best_loss,
                b.best_loss_step,
                b.nonfinite_losses
            )
        );
        assert_eq!(a.elapsed_seconds, b.elapsed_seconds);
        assert_eq!(a.tokens_estimate, b.tokens_estimate);
        assert_eq!(page.recent_steps, fresh.recent_steps);
        assert_eq!(page.gauges, fresh.gauges);
        let (r, f) = (page.routing.unwrap(), fresh.routing.unwrap());
        assert_eq!(r.collapses, f.collapses);
        assert_eq!(r.collapses.len(), 1);
        assert_eq!((r.collapses[0].layer, r.collapses[0].since_step), (0, 1300));
    }

    #[test]
    fn a_relogged_step_asks_for_a_reload() {
        let mut page = load(500);
        assert_eq!(merge(&mut page, &[step(499)], &[], &[], &[]), Merge::Reload);
        assert_eq!(
            page.summary.unwrap().last_step,
            Some(499),
            "nothing half-merged"
        );
    }

    #[test]
    fn a_day_of_updates_stays_bounded_and_keeps_the_tallest_spike() {
        let mut page = load(100);
        for chunk in (100..30_000).collect::<Vec<_>>().chunks(20) {
            let steps: Vec<Step> = chunk.iter().map(|&n| step(n)).collect();
            merge(&mut page, &steps, &[], &[], &[]);
        }
        let charts = page.charts.unwrap();
        assert!(charts.loss.len() <= LIVE_POINTS_MAX);
        assert!(charts.loss.contains(&(1500, 6.0)) && charts.loss.contains(&(700, 6.0)));
        assert_eq!(
            charts.loss.last().map(|p| p.0),
            Some(29_999),
            "the latest step stays"
        );
    }
}
