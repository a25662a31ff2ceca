//! The learning-rate chart, with the end of warmup marked so the schedule's phases read at a
//! glance.

use super::theme::Theme;
use super::{draw_empty, y_range, DrawResult, Swatch, View};
use crate::model::RunCharts;
use plotters::coord::Shift;
use plotters::prelude::*;

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &RunCharts,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    if data.lr.is_empty() {
        return draw_empty(root, theme, "no learning rate logged");
    }
    let warmup_end = data
        .warmup_steps
        .filter(|w| (data.first_step..=data.last_step).contains(w) && view.contains(*w));
    let mut legend = vec![("learning rate".to_string(), Swatch::Line(theme.lr))];
    if warmup_end.is_some() {
        legend.push(("warmup end".to_string(), Swatch::Dashed(theme.muted)));
    }
    let body = super::legend_row(root, theme, &legend)?;
    let (lo, hi) = view.y_span(y_range(view.points(&data.lr)));
    // Linear: from zero, so warmup reads as a ramp. Log: the decades the schedule spans.
    let lo = if view.log_y { lo } else { 0.0 };
    let mut chart = super::frame(&body)
        .build_cartesian_2d(view.x_range(data.first_step, data.last_step), lo..hi)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, 5),
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
    super::draw_resumes(&mut chart, &data.resumes, view, (lo, hi), theme)?;
    root.present()
}
