//! MoE expert utilisation over time: each expert's share of tokens, with the balanced share
//! (100 / experts) as a reference line.

use super::theme::Theme;
use super::{draw_empty, DrawResult, Swatch, View};
use crate::model::RoutingCharts;
use plotters::coord::Shift;
use plotters::prelude::*;

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &RoutingCharts,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    // Shares of tokens are read on a linear scale; only the zoom applies.
    let view = &View {
        log_y: false,
        ..*view
    };
    root.fill(&theme.background)?;
    if data.moe_util.iter().all(|s| s.is_empty()) {
        return draw_empty(root, theme, "no MoE routing in this run");
    }
    let top = data
        .moe_util
        .iter()
        .flat_map(|s| view.points(s))
        .map(|p| p.1)
        .fold(0.0, f64::max);
    let legend: Vec<(String, Swatch)> = (0..data.moe_util.len())
        .map(|i| (format!("expert {i}"), Swatch::Line(theme.layer(i))))
        .collect();
    let body = super::legend_row(root, theme, &legend)?;
    let mut chart = super::frame(&body).build_cartesian_2d(
        view.x_range(data.first_step, data.last_step),
        0.0..(top * 1.15).max(1.0),
    )?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, 5),
        &super::x_labels(view, &data.clock),
        &|v| format!("{v:.0}%"),
    )?;
    let balanced = 100.0 / data.moe_util.len().max(1) as f64;
    let shown = view.x_range(data.first_step, data.last_step);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(shown.start, balanced), (shown.end, balanced)],
        theme.muted.stroke_width(1),
    )))?;
    for (i, series) in data.moe_util.iter().enumerate() {
        chart.draw_series(LineSeries::new(
            view.points(series),
            theme.layer(i).stroke_width(1),
        ))?;
    }
    root.present()
}
