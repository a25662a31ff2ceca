//! The learning-rate chart, with the end of warmup marked so the schedule's phases read at a
//! glance. When the run has an adaptive-LR controller, a strip under it shows what the
//! controller watches (its short and long loss EMAs, its patience) on the same steps, and a
//! dashed line through both marks each cooldown it started: where and why the rate was cut.

use super::theme::Theme;
use super::{draw_empty, y_range, DrawResult, Swatch, View};
use crate::analysis::format::metric;
use crate::model::{AdaptiveLrCharts, RunCharts};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Share of the plot's height the learning rate keeps when the controller strip is drawn.
const LR_SHARE: f64 = 0.52;

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &RunCharts,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    let controller = &data.adaptive_lr;
    if data.lr.is_empty() && controller.is_empty() {
        return draw_empty(root, theme, "no learning rate logged");
    }
    let warmup_end = data
        .warmup_steps
        .filter(|w| (data.first_step..=data.last_step).contains(w) && view.contains(*w));
    let cooldowns: Vec<i64> = controller
        .cooldowns
        .iter()
        .copied()
        .filter(|s| view.contains(*s))
        .collect();
    let mut legend = vec![("learning rate".to_string(), Swatch::Line(theme.lr))];
    // One row for both parts: the warmup line is labelled where it is drawn, so with the
    // controller's entries it leaves the row.
    if warmup_end.is_some() && controller.is_empty() {
        legend.push(("warmup end".to_string(), Swatch::Dashed(theme.muted)));
    }
    let most_patience = controller.patience.iter().map(|p| p.1).fold(0.0, f64::max);
    if !controller.is_empty() {
        let [short, long] = theme.controller;
        legend.push(("loss EMA short".to_string(), Swatch::Line(short)));
        legend.push(("long".to_string(), Swatch::Line(long)));
        if most_patience > 0.0 {
            legend.push((
                format!("patience 0–{most_patience:.0}"),
                Swatch::Area(theme.muted),
            ));
        }
    }
    if !cooldowns.is_empty() {
        legend.push(("cooldown".to_string(), Swatch::Dashed(theme.threshold)));
    }
    let body = super::legend_row(root, theme, &legend)?;
    let (top, strip) = if controller.is_empty() {
        (body, None)
    } else {
        let height = body.dim_in_pixel().1 as f64;
        let (top, strip) = body.split_vertically((height * LR_SHARE) as u32);
        (top, Some(strip))
    };
    let shown = view.x_range(data.first_step, data.last_step);
    let (lo, hi) = view.y_span(y_range(view.points(&data.lr)));
    // Linear: from zero, so warmup reads as a ramp. Log: the decades the schedule spans.
    let lo = if view.log_y { lo } else { 0.0 };
    let mut builder = super::frame(&top);
    if strip.is_some() {
        // The strip below carries the step labels for both.
        builder.x_label_area_size(0);
    }
    let mut chart = builder.build_cartesian_2d(shown.clone(), lo..hi)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, if strip.is_some() { 4 } else { 5 }),
        &super::x_labels(view, &data.clock),
        &|v| match view.value(*v) {
            0.0 => "0".into(),
            v => format!("{v:.1e}"),
        },
    )?;
    chart.draw_series(LineSeries::new(
        view.points(&data.lr),
        theme.lr.stroke_width(2),
    ))?;
    if let Some(w) = warmup_end {
        chart.draw_series(super::dashed_vertical(w, lo, hi, theme.muted))?;
        chart.draw_series(std::iter::once(Text::new(
            " warmup end",
            (w, lo + (hi - lo) * 0.9),
            theme.font(13).color(&theme.muted),
        )))?;
    }
    for c in &cooldowns {
        chart.draw_series(super::dashed_vertical(*c, lo, hi, theme.threshold))?;
    }
    super::draw_resumes(&mut chart, &data.resumes, view, (lo, hi), theme)?;
    if let Some(strip_area) = strip {
        let strip = Strip {
            controller,
            cooldowns: &cooldowns,
            most_patience,
        };
        strip.draw(&strip_area, data, theme, view)?;
    }
    root.present()
}

/// The controller strip under the rate: the loss EMAs it compares (its own, not the loss
/// chart's), its patience as a faint area along the bottom, and the cooldowns.
struct Strip<'a> {
    controller: &'a AdaptiveLrCharts,
    cooldowns: &'a [i64],
    most_patience: f64,
}

impl Strip<'_> {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        data: &RunCharts,
        theme: &Theme,
        view: &View,
    ) -> DrawResult<DB> {
        let [short, long] = theme.controller;
        let controller = self.controller;
        // Loss values, never on a log axis: they sit in a narrow band far from zero.
        let linear = View {
            log_y: false,
            ..*view
        };
        let (lo, hi) = y_range(
            linear
                .points(&controller.loss_ema_short)
                .chain(linear.points(&controller.loss_ema_long)),
        );
        let shown = view.x_range(data.first_step, data.last_step);
        let mut chart = super::frame(area).build_cartesian_2d(shown.clone(), lo..hi)?;
        super::draw_mesh(
            &mut chart,
            theme,
            (6, 3),
            &super::x_labels(view, &data.clock),
            &|v| metric(Some(*v)),
        )?;
        if self.most_patience > 0.0 {
            // The bottom third of the strip: how close the controller is to acting.
            let scale = (hi - lo) / 3.0 / self.most_patience;
            chart.draw_series(
                AreaSeries::new(
                    linear
                        .points(&controller.patience)
                        .map(|(s, p)| (s, lo + p * scale)),
                    lo,
                    theme.muted.mix(0.25),
                )
                .border_style(theme.muted.mix(0.5).stroke_width(1)),
            )?;
        }
        for (series, color) in [
            (&controller.loss_ema_long, long),
            (&controller.loss_ema_short, short),
        ] {
            chart.draw_series(LineSeries::new(
                linear.points(series),
                color.stroke_width(2),
            ))?;
        }
        for c in self.cooldowns {
            chart.draw_series(super::dashed_vertical(*c, lo, hi, theme.threshold))?;
        }
        chart.draw_series(std::iter::once(Text::new(
            " adaptive-LR controller",
            (shown.start, hi),
            theme.font(12).color(&theme.muted),
        )))?;
        Ok(())
    }
}
