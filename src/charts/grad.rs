//! The gradient-norm chart: the pre-clip norm as an area, the post-clip norm as a line, and
//! the clip threshold from the run's config as a dashed line.

use super::theme::Theme;
use super::{draw_empty, y_range, DrawResult, View};
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
    let mut chart = super::frame(root).build_cartesian_2d(shown.clone(), lo..hi)?;
    super::draw_mesh(&mut chart, theme, (6, 5), &|v| {
        format!("{:.1}", view.value(*v))
    })?;
    let grad = theme.grad;
    if !data.grad_pre_clip.is_empty() {
        chart
            .draw_series(
                AreaSeries::new(view.points(&data.grad_pre_clip), lo, grad.mix(0.22))
                    .border_style(grad.mix(0.45).stroke_width(1)),
            )?
            .label("pre-clip")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 4), (x + 16, y + 4)], grad.mix(0.3).filled())
            });
    }
    chart
        .draw_series(LineSeries::new(
            view.points(&data.grad_post_clip),
            grad.stroke_width(2),
        ))?
        .label("post-clip")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], grad.stroke_width(2)));
    let mut labels = vec!["pre-clip".to_string(), "post-clip".to_string()];
    let clip_line = data
        .grad_clip
        .map(|c| vec![(x0, c), (x1, c)])
        .unwrap_or_default();
    if let Some(c) = data.grad_clip {
        let label = format!("clip {c}");
        labels.push(label.clone());
        let c = if view.log_y { c.log10() } else { c };
        let color = theme.threshold;
        // About 30 dashes across; integer steps, so a short range needs more of them.
        let dash = ((x1 - x0) / 60).max(1);
        let dashes = (x1 - x0) / (2 * dash) + 1;
        chart
            .draw_series((0..dashes).map(move |i| {
                let a = x0 + dash * 2 * i;
                PathElement::new(vec![(a, c), ((a + dash).min(x1), c)], color.stroke_width(1))
            }))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(1))
            });
    }
    let series = [&data.grad_pre_clip, &data.grad_post_clip, &clip_line];
    super::draw_legend(&mut chart, theme, view, &series, &labels)?;
    root.present()
}
