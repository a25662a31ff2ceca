//! What each chart is and the data it draws: the page's chart host, the server's exports
//! and the snapshot pages all pick a chart by its id and draw it through here.

use super::{
    compare, gauges, grad, loss, lr, mod_heatmap, moe, mor_depth, theme::DARK, DrawResult, View,
};
use crate::analysis::format::{metric, thousands};
use crate::model::{ClockMark, Dashboard, Gauges, Points, RoutingCharts, RunCharts, ZoomCharts};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

/// A chart and the data it draws.
#[derive(Clone, Debug, PartialEq)]
pub enum ChartSpec {
    Loss(RunCharts),
    LearningRate(RunCharts),
    GradNorm(RunCharts),
    ModHeatmap(RoutingCharts),
    MorDepth(RoutingCharts),
    Moe(RoutingCharts),
    Gauges(Gauges),
    /// One metric of several runs (the compare view).
    Compare(Box<compare::CompareChart>),
}

/// Only a fallback for a panel whose data disappeared: an empty loss chart.
impl Default for ChartSpec {
    fn default() -> Self {
        Self::Loss(RunCharts::default())
    }
}

/// One line of a tooltip: what, its value, and the colour it is drawn in.
pub type TooltipLine = (String, String, String);

impl ChartSpec {
    /// Drawing size in pixels; CSS scales it to the panel, keeping the aspect ratio.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Self::Loss(_) | Self::Compare(_) => (1200, 320),
            // Room for the depth-share strip under the depth lines.
            Self::MorDepth(d) if !d.mor_shares.is_empty() => (600, 380),
            _ => (600, 260),
        }
    }

    /// The chart `id` (as [`ChartSpec::id`] names it) of a run's dashboard, if it has one.
    pub fn of(id: &str, d: &Dashboard) -> Option<Self> {
        let run = || d.charts.clone();
        let routing = || d.routing.clone();
        match id {
            "loss" => run().map(Self::Loss),
            "lr" => run().map(Self::LearningRate),
            "grad" => run().map(Self::GradNorm),
            "gauges" => d.gauges.clone().map(Self::Gauges),
            "mod" => routing().map(Self::ModHeatmap),
            "mor" => routing().map(Self::MorDepth),
            "moe" => routing().map(Self::Moe),
            _ => None,
        }
    }

    pub fn id(&self) -> &'static str {
        match self {
            Self::Loss(_) => "loss",
            Self::LearningRate(_) => "lr",
            Self::GradNorm(_) => "grad",
            Self::ModHeatmap(_) => "mod",
            Self::MorDepth(_) => "mor",
            Self::Moe(_) => "moe",
            Self::Gauges(_) => "gauges",
            Self::Compare(c) => c.metric.name(),
        }
    }

    /// The loss chart with `smoothed` drawn over it; other charts as they are.
    pub fn with_smoothed(self, smoothed: Option<crate::model::SmoothedLoss>) -> Self {
        match self {
            Self::Loss(d) => Self::Loss(RunCharts { smoothed, ..d }),
            other => other,
        }
    }

    /// This chart drawn from a zoom's detail instead of the whole run's data.
    pub fn with_detail(&self, zoom: &ZoomCharts) -> Self {
        match self {
            // The target is the page's (it may come from the command line), not the zoom's.
            Self::Loss(d) => Self::Loss(RunCharts {
                target_loss: d.target_loss,
                alerts: d.alerts.clone(),
                ..zoom.run.clone()
            }),
            Self::LearningRate(_) => Self::LearningRate(zoom.run.clone()),
            Self::GradNorm(_) => Self::GradNorm(zoom.run.clone()),
            Self::ModHeatmap(_) => Self::ModHeatmap(zoom.routing.clone()),
            Self::MorDepth(_) => Self::MorDepth(zoom.routing.clone()),
            Self::Moe(_) => Self::Moe(zoom.routing.clone()),
            Self::Gauges(g) => Self::Gauges(g.clone()),
            // The compare view fetches its own detail.
            Self::Compare(c) => Self::Compare(c.clone()),
        }
    }

    /// How many points of the chart's main series fall in `view` (the loss for the loss
    /// chart): what the page exposes so tests can see detail arrive.
    pub fn points_in(&self, view: &View) -> usize {
        match self {
            Self::Loss(d) => view.points(&d.loss).count(),
            Self::LearningRate(d) => view.points(&d.lr).count(),
            Self::GradNorm(d) => view.points(&d.grad_post_clip).count(),
            Self::Compare(c) => c.lines.iter().map(|l| view.points(&l.points).count()).sum(),
            _ => 0,
        }
    }

    /// Alerts marked within the view (the loss chart marks them).
    pub fn alerts_in(&self, view: &View) -> usize {
        match self {
            Self::Loss(d) => d.alerts.iter().filter(|m| view.contains(m.step)).count(),
            _ => 0,
        }
    }

    /// Points of the smoothed loss drawn within the view (0 when smoothing is off).
    pub fn smoothed_in(&self, view: &View) -> usize {
        match self {
            Self::Loss(d) => d
                .smoothed
                .as_ref()
                .map_or(0, |s| view.points(&s.points).count()),
            _ => 0,
        }
    }

    /// This chart without the MoR layers in `hidden` (other charts are unchanged).
    pub fn without_layers(&self, hidden: &[i64]) -> Self {
        match self {
            Self::MorDepth(d) if !hidden.is_empty() => {
                let mut d = d.clone();
                d.mor_depth.retain(|l| !hidden.contains(&l.layer));
                Self::MorDepth(d)
            }
            other => other.clone(),
        }
    }

    /// The run's clock, for the tooltip's time and tokens.
    pub fn clock(&self) -> &[ClockMark] {
        match self {
            Self::Loss(d) | Self::LearningRate(d) | Self::GradNorm(d) => &d.clock,
            Self::ModHeatmap(d) | Self::MorDepth(d) | Self::Moe(d) => &d.clock,
            Self::Gauges(_) | Self::Compare(_) => &[],
        }
    }

    /// Whether this chart has a step axis (and so hover, zoom and the shared range).
    pub fn has_steps(&self) -> bool {
        !matches!(self, Self::Gauges(_))
    }

    /// The run's step range on this chart's x axis.
    pub fn steps(&self) -> (i64, i64) {
        match self {
            Self::Loss(d) | Self::LearningRate(d) | Self::GradNorm(d) => {
                (d.first_step, d.last_step)
            }
            Self::ModHeatmap(d) | Self::MorDepth(d) | Self::Moe(d) => (d.first_step, d.last_step),
            Self::Gauges(_) => (0, 1),
            Self::Compare(c) => c.span,
        }
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        view: &View,
    ) -> DrawResult<DB> {
        match self {
            Self::Loss(d) => loss::draw(root, d, &DARK, view),
            Self::LearningRate(d) => lr::draw(root, d, &DARK, view),
            Self::GradNorm(d) => grad::draw(root, d, &DARK, view),
            Self::ModHeatmap(d) => mod_heatmap::draw(root, d, &DARK, view),
            Self::MorDepth(d) => mor_depth::draw(root, d, &DARK, view),
            Self::Moe(d) => moe::draw(root, d, &DARK, view),
            Self::Gauges(d) => gauges::draw(root, d, &DARK),
            Self::Compare(c) => compare::draw(root, c, &DARK, view),
        }
    }

    /// What the tooltip's first line says of `x`.
    pub fn x_label(&self, x: i64) -> String {
        match self {
            Self::Compare(c) => c.x_label(x),
            _ => format!("step {}", thousands(x)),
        }
    }

    /// The exact values under the mouse at `step` (`row`: fraction of the plot's height
    /// from the bottom, for the heatmap's layer).
    pub fn describe(&self, step: i64, row: f64) -> (i64, Vec<TooltipLine>) {
        let css = |c: plotters::style::RGBColor| format!("rgb({},{},{})", c.0, c.1, c.2);
        let mut shown = step;
        let mut line =
            |name: &str, series: &Points, color: String, lines: &mut Vec<TooltipLine>| {
                if let Some((s, v)) = nearest(series, step) {
                    shown = s;
                    lines.push((name.to_string(), metric(Some(v)), color));
                }
            };
        let mut lines = Vec::new();
        match self {
            Self::Loss(d) => {
                line("loss", &d.loss, css(DARK.loss), &mut lines);
                for (i, e) in d.ema.iter().enumerate() {
                    line(loss::EMA_NAMES[i], e, css(DARK.ema[i]), &mut lines);
                }
                // The evaluation at or before the step, named with its own step: evals are
                // hundreds of steps apart.
                let before = |series: &Points| series.iter().rev().find(|p| p.0 <= step).copied();
                if let Some((at, v)) = before(&d.eval) {
                    let name = format!("eval @ {}", thousands(at));
                    lines.push((name, metric(Some(v)), css(DARK.eval)));
                    for (i, (part, series)) in d.eval_components.iter().enumerate() {
                        if let Some((_, v)) = before(series).filter(|p| p.0 == at) {
                            lines.push((
                                format!("  {part}"),
                                metric(Some(v)),
                                css(DARK.layer(i + 1)),
                            ));
                        }
                    }
                }
            }
            Self::LearningRate(d) => {
                line("lr", &d.lr, css(DARK.lr), &mut lines);
                // The controller records less often than the rate is logged: its values
                // nearest the step, without moving the step the tooltip names.
                let c = &d.adaptive_lr;
                let near = |series: &Points| nearest(series, step).map(|p| p.1);
                let [short, long] = DARK.controller;
                for (name, series, color) in [
                    ("controller EMA short", &c.loss_ema_short, css(short)),
                    ("controller EMA long", &c.loss_ema_long, css(long)),
                ] {
                    if let Some(v) = near(series) {
                        lines.push((name.into(), metric(Some(v)), color));
                    }
                }
                if let Some(p) = near(&c.patience) {
                    lines.push(("patience".into(), format!("{p:.0}"), css(DARK.muted)));
                }
            }
            Self::GradNorm(d) => {
                line("pre-clip", &d.grad_pre_clip, css(DARK.grad), &mut lines);
                line("post-clip", &d.grad_post_clip, css(DARK.grad), &mut lines);
            }
            Self::MorDepth(d) => {
                for (i, l) in d.mor_depth.iter().enumerate() {
                    line(
                        &format!("L{} depth", l.layer),
                        &l.avg_depth,
                        DARK.layer_css(i),
                        &mut lines,
                    );
                    // The layer's tokens per depth there, shallowest first.
                    let column = d
                        .mor_shares
                        .iter()
                        .find(|s| s.layer == l.layer)
                        .and_then(|s| s.columns.iter().rev().find(|c| c.step_lo <= step));
                    if let (Some(c), Some(last)) = (column, lines.last_mut()) {
                        let shares: Vec<String> = c.percent.iter().map(|p| p.to_string()).collect();
                        last.1 = format!("{} · {}%", last.1, shares.join("/"));
                    }
                }
            }
            Self::Moe(d) => {
                for (i, u) in d.moe_util.iter().enumerate() {
                    line(&format!("expert {i} %"), u, DARK.layer_css(i), &mut lines);
                }
            }
            Self::ModHeatmap(d) => {
                let index = ((row * d.layers.len() as f64).floor() as usize)
                    .min(d.layers.len().saturating_sub(1));
                if let Some(layer) = d.layers.get(index) {
                    let cell = d
                        .mod_cells
                        .iter()
                        .find(|c| c.layer == *layer && (c.step_lo..=c.step_hi).contains(&step));
                    if let Some(c) = cell {
                        let capacity = d.mod_capacity.unwrap_or(0.5);
                        let (color, status) = mod_heatmap::status(c, capacity, &DARK);
                        shown = c.step_lo;
                        lines.push(("layer".into(), format!("L{layer}"), css(DARK.text)));
                        lines.push((
                            "steps".into(),
                            format!("{}–{}", thousands(c.step_lo), thousands(c.step_hi)),
                            css(DARK.text),
                        ));
                        lines.push((
                            "selected".into(),
                            format!("{:.1}%", c.selected_frac * 100.0),
                            css(color),
                        ));
                        if let Some(saving) = c.compute_savings_pct {
                            lines.push((
                                "compute saved".into(),
                                format!("{saving:.1}%"),
                                css(DARK.text),
                            ));
                        }
                        lines.push((
                            "status".into(),
                            format!("{status} ({})", c.status.clone().unwrap_or_default()),
                            css(color),
                        ));
                    }
                }
            }
            Self::Compare(c) => lines = c.describe(step),
            Self::Gauges(_) => {}
        }
        (shown, lines)
    }
}

/// The point of `series` (sorted by step) nearest to `step`.
pub fn nearest(series: &Points, step: i64) -> Option<(i64, f64)> {
    let i = series.partition_point(|p| p.0 < step);
    let after = series.get(i);
    let before = i.checked_sub(1).and_then(|j| series.get(j));
    match (before, after) {
        (Some(b), Some(a)) => Some(if step - b.0 <= a.0 - step { *b } else { *a }),
        (Some(p), None) | (None, Some(p)) => Some(*p),
        (None, None) => None,
    }
}
