//! A model's runs as one lineage: a resume starts a new run at a later step, and people
//! want the loss from step 0 to now with the resume points marked, as TensorBoard shows a
//! run directory resumed several times. Each run's charts are prepared on their own (their
//! spikes and collapses judged within the run, as the trainer's state restarted there), then
//! laid end to end here.

use crate::model::{Collapse, Points, RoutingCharts, RunCharts};

/// One run's part of the lineage: its label and its charts.
pub struct Part {
    pub label: String,
    /// The run's `start_step`, where it resumed (its first logged step when unknown).
    pub start: Option<i64>,
    pub run: RunCharts,
    pub routing: RoutingCharts,
}

/// The runs' charts laid end to end by step (oldest first), with a resume marker where each
/// later run begins. Settings that belong to the run being trained (clip, target, capacity,
/// the spike window the live page continues) are the newest run's.
pub fn merge(parts: Vec<Part>) -> (RunCharts, RoutingCharts) {
    let mut run = RunCharts::default();
    let mut routing = RoutingCharts::default();
    let count = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        let (r, g) = (part.run, part.routing);
        if i == 0 {
            run.first_step = r.first_step;
            run.warmup_steps = r.warmup_steps;
            routing.first_step = g.first_step;
        } else {
            run.resumes
                .push((part.start.unwrap_or(r.first_step), part.label));
        }
        run.last_step = run.last_step.max(r.last_step);
        run.loss.extend(r.loss);
        for (all, one) in run.ema.iter_mut().zip(r.ema) {
            all.extend(one);
        }
        run.ema_computed |= r.ema_computed;
        run.ema_computed_from = match (run.ema_computed_from, r.ema_computed_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        run.spikes.extend(r.spikes);
        run.diverged.extend(r.diverged);
        run.lr.extend(r.lr);
        run.grad_pre_clip.extend(r.grad_pre_clip);
        run.grad_post_clip.extend(r.grad_post_clip);
        run.clock.extend(r.clock);
        routing.last_step = routing.last_step.max(g.last_step);
        routing.mod_cells.extend(g.mod_cells);
        for depth in g.mor_depth {
            match routing
                .mor_depth
                .iter_mut()
                .find(|l| l.layer == depth.layer)
            {
                Some(l) => {
                    l.avg_depth.extend(depth.avg_depth);
                    l.expected_depth.extend(depth.expected_depth);
                }
                None => routing.mor_depth.push(depth),
            }
        }
        for layer in g.layers {
            if !routing.layers.contains(&layer) {
                routing.layers.push(layer);
            }
        }
        routing.collapses.extend(g.collapses);
        for (k, util) in g.moe_util.into_iter().enumerate() {
            match routing.moe_util.get_mut(k) {
                Some(all) => all.extend(util),
                None => routing.moe_util.push(util),
            }
        }
        routing.moe_entropy.extend(g.moe_entropy);
        routing.moe_divergence.extend(g.moe_divergence);
        routing.clock.extend(g.clock);
        if i + 1 == count {
            run.grad_clip = r.grad_clip;
            run.clipped_share = r.clipped_share;
            run.target_loss = r.target_loss;
            run.recent_losses = r.recent_losses;
            routing.mod_capacity = g.mod_capacity;
            routing.mor_min_depth = g.mor_min_depth;
            routing.collapse_detector = g.collapse_detector;
        }
    }
    // A resumed run may have re-logged steps its predecessor had drawn; by step, always.
    for series in [&mut run.loss, &mut run.spikes, &mut run.lr]
        .into_iter()
        .chain(run.ema.iter_mut())
        .chain([&mut run.grad_pre_clip, &mut run.grad_post_clip])
    {
        by_step(series);
    }
    run.diverged.sort_by_key(|d| d.0);
    run.clock.sort_by_key(|m| m.step);
    routing.layers.sort_unstable();
    routing.mod_cells.sort_by_key(|c| (c.step_lo, c.layer));
    for l in &mut routing.mor_depth {
        by_step(&mut l.avg_depth);
        by_step(&mut l.expected_depth);
    }
    routing.mor_depth.sort_by_key(|l| l.layer);
    for series in routing
        .moe_util
        .iter_mut()
        .chain([&mut routing.moe_entropy, &mut routing.moe_divergence])
    {
        by_step(series);
    }
    routing.clock.sort_by_key(|m| m.step);
    routing.collapses = continued(std::mem::take(&mut routing.collapses));
    (run, routing)
}

/// A collapse still going when its run ended and found again by the next run (whose
/// detector started afresh) is one collapse, from its first step.
fn continued(mut collapses: Vec<Collapse>) -> Vec<Collapse> {
    collapses.sort_by_key(|c| (c.layer, c.since_step));
    let mut out: Vec<Collapse> = Vec::with_capacity(collapses.len());
    for c in collapses {
        match out.last_mut() {
            Some(open) if open.layer == c.layer && open.recovered_step.is_none() => {
                open.recovered_step = c.recovered_step;
            }
            _ => out.push(c),
        }
    }
    out
}

fn by_step(series: &mut Points) {
    series.sort_by_key(|p| p.0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LayerDepth;

    fn part(label: &str, from: i64, to: i64, spike: Option<i64>) -> Part {
        let points: Points = (from..to).step_by(10).map(|s| (s, 3.0)).collect();
        Part {
            label: label.into(),
            start: None,
            run: RunCharts {
                first_step: from,
                last_step: to - 10,
                loss: points.clone(),
                ema: [points.clone(), points.clone(), points.clone()],
                lr: points.clone(),
                spikes: spike.map(|s| vec![(s, 9.0)]).unwrap_or_default(),
                grad_clip: Some(from as f64),
                ..Default::default()
            },
            routing: RoutingCharts {
                first_step: from,
                last_step: to - 10,
                layers: vec![0, 1],
                mor_depth: vec![LayerDepth {
                    layer: 1,
                    avg_depth: points.clone(),
                    expected_depth: points,
                }],
                ..Default::default()
            },
        }
    }

    #[test]
    fn runs_are_laid_end_to_end_with_their_resumes_marked() {
        let (run, routing) = merge(vec![
            part("#1", 0, 1000, Some(500)),
            part("#2 resumed", 1000, 2000, None),
            part("#3 resumed", 2000, 2500, Some(2100)),
        ]);
        assert_eq!((run.first_step, run.last_step), (0, 2490));
        assert_eq!(run.loss.len(), 250);
        assert!(
            run.loss.windows(2).all(|w| w[0].0 < w[1].0),
            "in step order"
        );
        assert_eq!(
            run.resumes,
            vec![
                (1000, "#2 resumed".to_string()),
                (2000, "#3 resumed".to_string())
            ]
        );
        assert_eq!(
            run.spikes,
            vec![(500, 9.0), (2100, 9.0)],
            "every run's spikes"
        );
        assert_eq!(run.grad_clip, Some(2000.0), "the newest run's settings");
        assert_eq!(routing.mor_depth.len(), 1);
        assert_eq!(routing.mor_depth[0].avg_depth.len(), 250);
        assert_eq!((routing.first_step, routing.last_step), (0, 2490));
        assert_eq!(routing.layers, vec![0, 1]);
    }

    #[test]
    fn a_collapse_that_outlives_its_run_is_one_collapse() {
        let collapse = |layer, since, recovered| Collapse {
            layer,
            since_step: since,
            recovered_step: recovered,
            kind: Default::default(),
        };
        let merged = continued(vec![
            collapse(0, 13_350, None),
            collapse(0, 10_050, None),
            collapse(3, 100, Some(400)),
            collapse(3, 900, None),
            collapse(5, 2_000, None),
            collapse(5, 7_000, Some(7_500)),
        ]);
        assert_eq!(
            merged,
            vec![
                collapse(0, 10_050, None),
                collapse(3, 100, Some(400)),
                collapse(3, 900, None),
                collapse(5, 2_000, Some(7_500)),
            ]
        );
    }

    #[test]
    fn one_run_is_its_own_lineage() {
        let (run, _) = merge(vec![part("#1", 0, 100, None)]);
        assert!(run.resumes.is_empty());
        assert_eq!(run.loss.len(), 10);
    }
}
