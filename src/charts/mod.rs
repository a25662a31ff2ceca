//! Chart drawing: one file per chart, each a pure `draw` generic over plotters'
//! `DrawingBackend`. The same function draws onto a `<canvas>` in the browser and into SVG
//! on the server (the page before hydration, snapshots); tests draw into SVG and read it.

pub mod compare;
pub mod gauges;
pub mod grad;
pub mod loss;
pub mod lr;
pub mod mod_heatmap;
pub mod moe;
pub mod mor_depth;
#[cfg(feature = "ssr")]
pub mod png;
pub mod spec;
pub mod theme;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Margins every chart shares, so the page can map a mouse position back to a step.
pub const MARGIN: u32 = 10;
pub const MARGIN_RIGHT: u32 = 18;
pub const X_LABEL_AREA: u32 = 26;
pub const Y_LABEL_AREA: u32 = 52;

/// The chart frame: every chart is built on this, with the shared margins.
pub fn frame<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA);
    builder
}

/// Left and right pixel of the plotting area in a chart `width` pixels wide.
pub fn plot_x_pixels(width: u32) -> (f64, f64) {
    (
        (MARGIN + Y_LABEL_AREA) as f64,
        width.saturating_sub(MARGIN_RIGHT) as f64,
    )
}

/// The step under pixel `x` of a chart `width` pixels wide showing `range`.
pub fn step_at_pixel(x: f64, width: u32, range: (i64, i64)) -> i64 {
    let (left, right) = plot_x_pixels(width);
    let t = ((x - left) / (right - left).max(1.0)).clamp(0.0, 1.0);
    range.0 + (t * (range.1 - range.0) as f64).round() as i64
}

/// What the person chose to look at: a step range (zoom), a log-scale y axis, and what the
/// x axis reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub range: Option<(i64, i64)>,
    pub log_y: bool,
    pub x_axis: XAxis,
}

/// What the x axis reads. Points stay placed by step (so zoom, hover and every chart line
/// up); with time or tokens the labels say the run's elapsed wall time or tokens seen at
/// those steps, as the run's clock tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XAxis {
    #[default]
    Step,
    Time,
    Tokens,
}

impl XAxis {
    pub const ALL: [XAxis; 3] = [XAxis::Step, XAxis::Time, XAxis::Tokens];

    pub fn name(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Time => "time",
            XAxis::Tokens => "tokens",
        }
    }
}

/// The x labels for `view` on a chart whose run has `clock`: steps, elapsed time since
/// the run's first step, or tokens — steps again where the clock does not know.
pub(crate) fn x_labels<'a>(
    view: &View,
    clock: &'a [crate::model::ClockMark],
) -> Box<dyn Fn(&i64) -> String + 'a> {
    use crate::analysis::clock::clock_at;
    use crate::analysis::format::tokens;
    let start = clock.iter().find_map(|m| m.time);
    match view.x_axis {
        XAxis::Step => Box::new(step_label),
        XAxis::Time => Box::new(move |s: &i64| match (clock_at(clock, *s).0, start) {
            (Some(t), Some(t0)) => elapsed_label((t - t0).max(0.0)),
            _ => step_label(s),
        }),
        XAxis::Tokens => Box::new(move |s: &i64| match clock_at(clock, *s).1 {
            Some(n) => tokens(n),
            None => step_label(s),
        }),
    }
}

impl View {
    /// The x range to draw: the zoom if there is one, else the run's.
    pub fn x_range(&self, first: i64, last: i64) -> std::ops::Range<i64> {
        match self.range {
            Some((a, b)) if b > a => a..b,
            _ => x_range(first, last),
        }
    }

    pub fn contains(&self, step: i64) -> bool {
        self.range.is_none_or(|(a, b)| (a..=b).contains(&step))
    }

    /// The points inside the zoom, as drawn: log10 of the value on a log scale (where
    /// non-positive values have no place and are left out).
    pub fn points<'a>(&self, points: &'a [(i64, f64)]) -> impl Iterator<Item = (i64, f64)> + 'a {
        let view = *self;
        points
            .iter()
            .copied()
            .filter(move |(s, _)| view.contains(*s))
            .filter_map(move |(s, v)| match view.log_y {
                true => (v > 0.0).then(|| (s, v.log10())),
                false => Some((s, v)),
            })
    }

    /// A y range as drawn: on a log axis at least a fifth of a decade, because a flat
    /// series (a constant learning rate) would otherwise span a sliver with every label
    /// the same.
    pub fn y_span(&self, (lo, hi): (f64, f64)) -> (f64, f64) {
        const MIN_DECADES: f64 = 0.2;
        if self.log_y && hi - lo < MIN_DECADES {
            let mid = (lo + hi) / 2.0;
            (mid - MIN_DECADES / 2.0, mid + MIN_DECADES / 2.0)
        } else {
            (lo, hi)
        }
    }

    /// A drawn y value back to the metric's own value.
    pub fn value(&self, y: f64) -> f64 {
        if self.log_y {
            10f64.powf(y)
        } else {
            y
        }
    }
}

/// Elapsed time as an axis label: `45s`, `10m`, `2m 30s`, `1h 20m`, `3d 4h`.
pub(crate) fn elapsed_label(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if (60..3600).contains(&s) && (s.is_multiple_of(60) || s >= 600) {
        format!("{}m", s / 60)
    } else {
        crate::analysis::format::duration(seconds)
    }
}

/// What a draw function returns: plotters' error for the backend it drew on.
pub type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// What drawing into SVG returns (the SVG backend's error is an I/O error).
#[cfg(feature = "ssr")]
pub type SvgResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// Draws with `draw` into an SVG document of `width` × `height` pixels.
#[cfg(feature = "ssr")]
pub fn to_svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<plotters::backend::SVGBackend<'_>, Shift>) -> SvgResult,
) -> String {
    png::register_fonts();
    let mut svg = String::new();
    {
        let root = plotters::backend::SVGBackend::with_string(&mut svg, (width, height))
            .into_drawing_area();
        if let Err(e) = draw(&root) {
            tracing::warn!("chart drawing failed: {e}");
        }
        let _ = root.present();
    }
    svg
}

/// A chart's grid, axes and labels in the theme, with `x_labels`/`y_labels` ticks and the
/// y labels written by `y_label`; the x axis is always steps.
pub(crate) fn draw_mesh<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordi64, plotters::coord::types::RangedCoordf64>,
    >,
    theme: &theme::Theme,
    (x_labels, y_labels): (usize, usize),
    x_label: &dyn Fn(&i64) -> String,
    y_label: &dyn Fn(&f64) -> String,
) -> DrawResult<DB> {
    chart
        .configure_mesh()
        .bold_line_style(theme.grid)
        .light_line_style(theme.background)
        .axis_style(theme.axis)
        .label_style(theme.font(14).color(&theme.muted))
        .x_labels(x_labels)
        .y_labels(y_labels)
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .draw()
}

/// Height of the legend row above a chart's plot.
pub const LEGEND_ROW: u32 = 22;

/// How a legend entry shows its series.
#[derive(Clone, Copy)]
pub(crate) enum Swatch {
    Line(RGBColor),
    Area(RGBColor),
    /// A fill drawn as is (the area swatch is faint, as areas are drawn).
    Solid(RGBColor),
    Dashed(RGBColor),
    Ring(RGBColor),
}

/// The legend as a row above the plot, right-aligned: an in-plot legend covers data in some
/// corner sooner or later, and over the newest loss it hides what people came to see. The
/// row is reserved even when empty, so the plot does not jump when an entry appears live.
/// Returns the area left for the chart.
pub(crate) fn legend_row<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    theme: &theme::Theme,
    entries: &[(String, Swatch)],
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let (row, body) = root.split_vertically(LEGEND_ROW);
    let font = theme.font(13).color(&theme.text);
    let mut widths = Vec::with_capacity(entries.len());
    for (label, _) in entries {
        widths.push(row.estimate_text_size(label, &font)?.0 as i32);
    }
    let total: i32 = widths.iter().map(|w| 24 + w + 14).sum();
    let (width, _) = row.dim_in_pixel();
    let mut x = (width.saturating_sub(MARGIN_RIGHT) as i32 - total).max(MARGIN as i32);
    let y = LEGEND_ROW as i32 / 2 + 1;
    for ((label, swatch), w) in entries.iter().zip(widths) {
        match *swatch {
            Swatch::Line(c) => row.draw(&PathElement::new(
                vec![(x, y), (x + 18, y)],
                c.stroke_width(2),
            ))?,
            Swatch::Area(c) => row.draw(&Rectangle::new(
                [(x, y - 5), (x + 18, y + 5)],
                c.mix(0.35).filled(),
            ))?,
            Swatch::Solid(c) => {
                row.draw(&Rectangle::new([(x, y - 5), (x + 18, y + 5)], c.filled()))?
            }
            Swatch::Dashed(c) => {
                for d in [0, 7, 14] {
                    row.draw(&PathElement::new(
                        vec![(x + d, y), (x + d + 4, y)],
                        c.stroke_width(2),
                    ))?;
                }
            }
            Swatch::Ring(c) => row.draw(&Circle::new((x + 9, y), 4, c.stroke_width(2)))?,
        }
        row.draw(&Text::new(
            label.clone(),
            (x + 24, y),
            font.pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            )),
        ))?;
        x += 24 + w + 14;
    }
    Ok(body)
}

/// Where resumed runs begin in a lineage: a dashed line and the run's label at the top.
pub(crate) fn draw_resumes<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordi64, plotters::coord::types::RangedCoordf64>,
    >,
    resumes: &[(i64, String)],
    view: &View,
    (y0, y1): (f64, f64),
    theme: &theme::Theme,
) -> DrawResult<DB> {
    for (step, label) in resumes.iter().filter(|(s, _)| view.contains(*s)) {
        chart.draw_series(dashed_vertical(*step, y0, y1, theme.muted))?;
        chart.draw_series(std::iter::once(Text::new(
            format!(" {label}"),
            (*step, y1 - (y1 - y0) * 0.08),
            theme.font(12).color(&theme.muted),
        )))?;
    }
    Ok(())
}

/// A vertical dashed line at `x` from `y0` to `y1`, as 24 dashes.
pub(crate) fn dashed_vertical(
    x: i64,
    y0: f64,
    y1: f64,
    color: RGBColor,
) -> impl Iterator<Item = PathElement<(i64, f64)>> {
    let dash = (y1 - y0) / 48.0;
    (0..24).map(move |i| {
        let a = y0 + dash * (2 * i) as f64;
        PathElement::new(vec![(x, a), (x, a + dash)], color.stroke_width(1))
    })
}

/// A horizontal dashed line at `y` across `x` (a threshold or target): about 30 dashes;
/// integer steps, so a short range needs more of them.
pub(crate) fn dashed_horizontal(
    x: std::ops::Range<i64>,
    y: f64,
    color: RGBColor,
) -> impl Iterator<Item = PathElement<(i64, f64)>> {
    let (x0, x1) = (x.start, x.end);
    let dash = ((x1 - x0) / 60).max(1);
    let dashes = (x1 - x0) / (2 * dash) + 1;
    (0..dashes).map(move |i| {
        let a = x0 + dash * 2 * i;
        PathElement::new(vec![(a, y), ((a + dash).min(x1), y)], color.stroke_width(1))
    })
}

/// The y range that shows every point of `series` with a little air above and below.
pub(crate) fn y_range(series: impl IntoIterator<Item = (i64, f64)>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, v) in series {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.06).max(hi.abs() * 1e-3).max(1e-12);
    (lo - pad, hi + pad)
}

/// The x range of a run, never empty.
pub(crate) fn x_range(first: i64, last: i64) -> std::ops::Range<i64> {
    if last > first {
        first..last
    } else {
        first..first + 1
    }
}

/// Step labels the way people say them: 950, 12.5k, 1.25M — as many decimals as the tick
/// needs (at most two), so a zoomed axis never repeats a label.
pub(crate) fn step_label(step: &i64) -> String {
    let s = *step as f64;
    let (value, unit) = match s.abs() {
        a if a >= 1e6 => (s / 1e6, "M"),
        a if a >= 1e3 => (s / 1e3, "k"),
        _ => return format!("{step}"),
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// Writes "no data" in the middle of an empty chart, so blank never looks like broken.
pub(crate) fn draw_empty<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    theme: &theme::Theme,
    message: &str,
) -> DrawResult<DB> {
    let (w, h) = root.dim_in_pixel();
    root.draw(&Text::new(
        message.to_string(),
        (w as i32 / 2 - 60, h as i32 / 2 - 6),
        theme.font(13).color(&theme.muted),
    ))
}

#[cfg(all(test, feature = "ssr"))]
mod tests;
