//! MoR recursion depth per layer: `avg_depth` solid, `expected_depth` dashed in the same
//! colour, the minimum depth as a floor line, every collapse marked where it began, and the
//! brief collapsed stretches that were not collapses as faint marks along the bottom.

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
    // Depth is read on a linear scale; only the zoom applies.
    let view = &View {
        log_y: false,
        ..*view
    };
    root.fill(&theme.background)?;
    if data.mor_depth.is_empty() {
        return draw_empty(root, theme, "no MoR routing logged");
    }
    let top = data
        .mor_depth
        .iter()
        .flat_map(|l| {
            view.points(&l.avg_depth)
                .chain(view.points(&l.expected_depth))
        })
        .map(|p| p.1)
        .fold(data.mor_min_depth, f64::max);
    let (y0, y1) = ((data.mor_min_depth - 0.3).max(0.0), top + 0.25);
    // Only collapsed layers in the chart's legend: the full layer key is the page's, under
    // the chart, where 24 layers fit.
    let collapsed = |layer: i64| {
        data.collapses
            .iter()
            .any(|c| c.layer == layer && c.recovered_step.is_none())
    };
    let flickers: Vec<_> = data
        .flickers
        .iter()
        .filter(|f| view.contains(f.since_step) || view.contains(f.until_step))
        .collect();
    let mut legend: Vec<(String, Swatch)> = data
        .mor_depth
        .iter()
        .filter(|l| collapsed(l.layer))
        .map(|l| {
            let i = data.layers.iter().position(|x| *x == l.layer).unwrap_or(0);
            (
                format!("L{} collapsed", l.layer),
                Swatch::Line(theme.layer(i)),
            )
        })
        .collect();
    if !flickers.is_empty() {
        legend.push(("brief flicker".to_string(), Swatch::Area(theme.muted)));
    }
    let body = super::legend_row(root, theme, &legend)?;
    let mut chart = super::frame(&body)
        .build_cartesian_2d(view.x_range(data.first_step, data.last_step), y0..y1)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, 5),
        &super::x_labels(view, &data.clock),
        &|v| format!("{v:.1}"),
    )?;
    let floor = data.mor_min_depth;
    let shown = view.x_range(data.first_step, data.last_step);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(shown.start, floor), (shown.end, floor)],
        theme.muted.stroke_width(1),
    )))?;
    for layer in &data.mor_depth {
        // Colour by the layer's place among all layers, so hiding one recolours none.
        let i = data
            .layers
            .iter()
            .position(|l| *l == layer.layer)
            .unwrap_or(0);
        let color = theme.layer(i);
        let width = if collapsed(layer.layer) { 3 } else { 2 };
        chart.draw_series(LineSeries::new(
            view.points(&layer.avg_depth),
            color.stroke_width(width),
        ))?;
        chart.draw_series(DashedLineSeries::new(
            view.points(&layer.expected_depth).collect::<Vec<_>>(),
            5,
            4,
            color.mix(0.7).stroke_width(1),
        ))?;
    }
    // A rug under the floor: where a layer's status flickered, in its colour, faint.
    let rug = (y0, y0 + (y1 - y0) * 0.05);
    for f in flickers {
        let i = data.layers.iter().position(|l| *l == f.layer).unwrap_or(0);
        let color = theme.layer(i).mix(0.5);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(f.since_step, rug.0), (f.until_step, rug.1)],
            color.filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(f.since_step, rug.0), (f.since_step, rug.1)],
            color.stroke_width(1),
        )))?;
    }
    for c in data
        .collapses
        .iter()
        .filter(|c| view.contains(c.since_step))
    {
        chart.draw_series(super::dashed_vertical(c.since_step, y0, y1, theme.diverged))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" L{} collapsed", c.layer),
            (c.since_step, y1 - (y1 - y0) * 0.04),
            theme.font(13).color(&theme.diverged),
        )))?;
    }
    root.present()
}
