//! The gradient-norm chart: the pre-clip norm as an area, the post-clip norm as a line, and
//! the clip threshold from the run's config as a dashed line.

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
    if data.grad_post_clip.is_empty() && data.grad_pre_clip.is_empty() {
        return draw_empty(root, theme, "no gradient norm logged");
    }
    let shown = view.x_range(data.first_step, data.last_step);
    let grad = theme.grad;
    let mut legend = Vec::new();
    if !data.grad_pre_clip.is_empty() {
        legend.push(("pre-clip".to_string(), Swatch::Area(grad)));
    }
    legend.push(("post-clip".to_string(), Swatch::Line(grad)));
    if let Some(c) = data.grad_clip {
        legend.push((format!("clip {c}"), Swatch::Dashed(theme.threshold)));
    }
    let body = super::legend_row(root, theme, &legend)?;
    let clip = data
        .grad_clip
        .map(|c| vec![(shown.start, c)])
        .unwrap_or_default();
    let (lo, hi) = view.y_span(y_range(
        view.points(&data.grad_pre_clip)
            .chain(view.points(&data.grad_post_clip))
            .chain(view.points(&clip)),
    ));
    let lo = if view.log_y { lo } else { 0.0 };
    let (x0, x1) = (shown.start, shown.end);
    let mut chart = super::frame(&body).build_cartesian_2d(shown.clone(), lo..hi)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, 5),
        &super::x_labels(view, &data.clock),
        &|v| format!("{:.1}", view.value(*v)),
    )?;
    if !data.grad_pre_clip.is_empty() {
        chart.draw_series(
            AreaSeries::new(view.points(&data.grad_pre_clip), lo, grad.mix(0.22))
                .border_style(grad.mix(0.45).stroke_width(1)),
        )?;
    }
    chart.draw_series(LineSeries::new(
        view.points(&data.grad_post_clip),
        grad.stroke_width(2),
    ))?;
    if let Some(c) = data.grad_clip {
        let c = if view.log_y { c.log10() } else { c };
        chart.draw_series(super::dashed_horizontal(x0..x1, c, theme.threshold))?;
    }
    super::draw_resumes(&mut chart, &data.resumes, view, (lo, hi), theme)?;
    root.present()
}
