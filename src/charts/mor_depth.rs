//! MoR recursion depth per layer: `avg_depth` solid, `expected_depth` dashed in the same
//! colour, the minimum depth as a floor line, every collapse marked where it began, and the
//! brief collapsed stretches that were not collapses as faint marks along the bottom. When
//! the records carry depth histograms (the diagnostics file has them, the database not), a
//! strip below stacks each layer's share of tokens per depth over time: an average depth of
//! 2.0 may be every token at 2 or half at 1 and half at 3, and only the shares tell.

use super::theme::Theme;
use super::{draw_empty, DrawResult, Swatch, View};
use crate::model::{DepthShares, RoutingCharts};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Share of the plot's height the depth lines keep when the strip is drawn.
const DEPTH_SHARE: f64 = 0.55;

/// Depth `d` of `depths`: dark (shallow) to bright (deep), a viridis-like ramp that keeps its
/// order in lightness for every common colour blindness and on the dark theme.
pub fn depth_color(d: usize, depths: usize) -> RGBColor {
    const STOPS: [(u8, u8, u8); 4] = [
        (0x3e, 0x4a, 0x89),
        (0x26, 0x82, 0x8e),
        (0x35, 0xb7, 0x79),
        (0xfd, 0xe7, 0x25),
    ];
    let t = if depths <= 1 {
        1.0
    } else {
        d as f64 / (depths - 1) as f64
    };
    let x = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

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
    let depths = data
        .mor_shares
        .iter()
        .flat_map(|l| l.columns.iter().map(|c| c.percent.len()))
        .max()
        .unwrap_or(0);
    let shares = !data.mor_shares.is_empty() && depths > 0;
    if shares {
        legend.push((
            "tokens at depth".to_string(),
            Swatch::Area(theme.background),
        ));
        for d in 0..depths {
            legend.push((format!("{d}"), Swatch::Solid(depth_color(d, depths))));
        }
    }
    let body = super::legend_row(root, theme, &legend)?;
    let (top, strip) = if shares {
        let height = body.dim_in_pixel().1 as f64;
        let (top, strip) = body.split_vertically((height * DEPTH_SHARE) as u32);
        (top, Some(strip))
    } else {
        (body, None)
    };
    let mut builder = super::frame(&top);
    if strip.is_some() {
        // The strip below carries the step labels for both.
        builder.x_label_area_size(0);
    }
    let mut chart =
        builder.build_cartesian_2d(view.x_range(data.first_step, data.last_step), y0..y1)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (6, if strip.is_some() { 3 } else { 5 }),
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
    if let Some(area) = strip {
        draw_shares(&area, data, depths, theme, view)?;
    }
    root.present()
}

/// The strip: a row per layer (layer 0 at the bottom, as in the MoD heatmap), each column a
/// stack of the layer's shares of tokens per depth, shallowest at the bottom.
fn draw_shares<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &RoutingCharts,
    depths: usize,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    let rows: Vec<i64> = data.mor_shares.iter().map(|l| l.layer).collect();
    let shown = view.x_range(data.first_step, data.last_step);
    let mut chart = super::frame(area)
        .margin_top(4)
        .build_cartesian_2d(shown.clone(), -0.5..rows.len() as f64 - 0.5)?;
    let labels = rows.clone();
    let every = rows.len().div_ceil(6).max(1);
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(theme.axis)
        .label_style(theme.font(14).color(&theme.muted))
        .x_labels(6)
        .y_labels(rows.len() + 1)
        .x_label_formatter(&super::x_labels(view, &data.clock))
        .y_label_formatter(&move |y| {
            // Rows are centred on whole numbers: a tick there names its row, every few.
            let row = y.round();
            match labels.get(row as usize) {
                Some(l) if (y - row).abs() < 1e-9 && (row as usize).is_multiple_of(every) => {
                    format!("L{l}")
                }
                _ => String::new(),
            }
        })
        .draw()?;
    for (row, layer) in data.mor_shares.iter().enumerate() {
        chart.draw_series(stacks(layer, row as f64, shown.clone()).map(
            |(lo, hi, y0, y1, d)| {
                Rectangle::new([(lo, y0), (hi, y1)], depth_color(d, depths).filled())
            },
        ))?;
    }
    Ok(())
}

/// The rectangles of one layer's row: `(step from, step to, y from, y to, depth)`. A column
/// reaches the next one of its layer (records are every N steps and the steps between
/// belong to the earlier), and a thin gap separates the rows.
fn stacks(
    layer: &DepthShares,
    row: f64,
    shown: std::ops::Range<i64>,
) -> impl Iterator<Item = (i64, i64, f64, f64, usize)> + '_ {
    let cols = &layer.columns;
    cols.iter().enumerate().flat_map(move |(i, c)| {
        let right = cols.get(i + 1).map_or(c.step_hi.saturating_add(1), |n| {
            n.step_lo.max(c.step_hi.saturating_add(1))
        });
        let (lo, hi) = (c.step_lo.max(shown.start), right.min(shown.end));
        let total: f64 = c.percent.iter().map(|p| *p as f64).sum();
        let visible = hi > lo && total > 0.0;
        let mut below = 0.0;
        c.percent
            .iter()
            .enumerate()
            .filter(move |_| visible)
            .map(move |(d, p)| {
                let (y0, y1) = (below / total, (below + *p as f64) / total);
                below += *p as f64;
                let at = |f: f64| row - 0.44 + f * 0.88;
                (lo, hi, at(y0), at(y1), d)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::to_svg;
    use crate::model::RunConfig;

    fn svg_of(data: &RoutingCharts) -> String {
        // plotters writes each text node on a line of its own: `>\nlabel\n<`.
        to_svg(600, 260, |root| {
            draw(root, data, &crate::charts::theme::DARK, &View::default())
        })
        .to_lowercase()
        .replace(">\n", ">")
        .replace("\n<", "<")
    }

    /// Issue 14: the diagnostics file's depth histograms, drawn as a strip of shares per
    /// layer, and the trainer's >90% rule applied to them where its status says nothing.
    #[test]
    fn the_mor_chart_stacks_each_layers_tokens_per_depth() {
        use crate::model::RoutingMor;
        let mut mors = Vec::new();
        for i in 0..40_i64 {
            for layer in 0..4 {
                let histogram = if layer == 2 && i >= 20 {
                    vec![950.0, 30.0, 20.0]
                } else {
                    vec![200.0, 500.0, 300.0]
                };
                mors.push(RoutingMor {
                    step: i * 100,
                    run_id: "r".into(),
                    model_id: "m".into(),
                    layer,
                    avg_depth: Some(2.1),
                    expected_depth: Some(2.2),
                    router_probs_mean: None,
                    status: Some("OK".into()),
                    depth_histogram: Some(histogram),
                });
            }
        }
        let config = RunConfig::parse(None);
        let r = crate::analysis::oracle::prepare_routing(&[], &mors, &[], &config, 150);
        assert_eq!(r.mor_shares.len(), 4);
        assert_eq!(r.mor_shares[0].columns[0].percent, [20, 50, 30]);
        assert_eq!(
            r.collapses
                .iter()
                .map(|c| (c.layer, c.since_step, c.kind))
                .collect::<Vec<_>>(),
            [(2, 2_000, crate::model::CollapseKind::EarlyExit)],
            "the histogram says early exit though the status says OK"
        );
        let spec = crate::charts::spec::ChartSpec::MorDepth(r.clone());
        assert_eq!(spec.size(), (600, 380), "room for the strip");
        let svg = svg_of(&r);
        assert!(svg.contains(">tokens at depth<"), "the strip's legend");
        for d in 0..3 {
            let c = depth_color(d, 3);
            let hex = format!("fill=\"#{:02x}{:02x}{:02x}\"", c.0, c.1, c.2);
            assert!(svg.matches(&hex).count() >= 4 * 2, "depth {d} in every row");
        }
        assert!(svg.contains(">l0<") && svg.contains(">l3<"), "rows named");
        let (_, lines) = spec.describe(3_000, 0.5);
        let l2 = lines.iter().find(|l| l.0 == "L2 depth").unwrap();
        assert!(l2.1.ends_with("95/3/2%"), "{l2:?}");
    }
}
