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
mod tests {
    use super::*;
    use crate::analysis::charts::RunColumns;
    use crate::analysis::oracle::prepare;
    use crate::model::{RunCharts, RunConfig};
    use plotters::prelude::IntoDrawingArea;

    /// A 3,000-step run with a spike at 2,000, a NaN at 1,200 and an Inf at 1,210, pre-clip
    /// norms over the clip threshold now and then, and no recorded EMAs.
    fn run() -> RunCharts {
        let mut c = RunColumns::default();
        for i in 0..300_i64 {
            let step = i * 10;
            let mut loss = 2.3 + 8.5 * ((step + 200) as f64).powf(-0.33);
            if step == 2000 {
                loss += 3.0;
            }
            c.steps.push(step);
            c.loss.push(match step {
                1200 => f64::NAN,
                1210 => f64::INFINITY,
                _ => loss,
            });
            for e in &mut c.ema {
                e.push(0.0);
            }
            c.lr.push(1e-4 * ((step + 1) as f64 / 1000.0).min(1.0));
            let pre = if i % 10 == 0 { 7.0 } else { 3.0 };
            c.grad_pre_clip.push(pre);
            c.grad.push(pre.min(5.0));
        }
        let config = RunConfig::parse(Some(r#"{"grad_clip": 5.0, "warmup_steps": 1000}"#));
        prepare(&c, &config, 100)
    }

    fn svg_of(
        draw: impl Fn(&DrawingArea<plotters::backend::SVGBackend<'_>, Shift>) -> SvgResult,
    ) -> String {
        // plotters writes each text node on a line of its own: `>\nlabel\n<`.
        to_svg(600, 260, draw)
            .to_lowercase()
            .replace(">\n", ">")
            .replace("\n<", "<")
    }

    #[test]
    fn preparation_finds_spikes_divergence_and_clipping() {
        let r = run();
        assert!(r.ema_computed, "the file held only 0.0 EMAs");
        assert_eq!(r.spikes.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2000]);
        assert_eq!(r.diverged.len(), 2);
        assert_eq!(r.clipped_share, Some(0.1));
        assert_eq!(r.grad_clip, Some(5.0));
        assert_eq!((r.first_step, r.last_step), (0, 2990));
        assert!(r.loss.len() <= 4 * 100 + 1);
        let tallest = r.loss.iter().map(|p| p.1).fold(f64::MIN, f64::max);
        assert_eq!(
            tallest, r.spikes[0].1,
            "the spike survives downsampling at full height"
        );
        assert!(r.loss.iter().all(|p| p.1.is_finite()));
    }

    #[test]
    fn the_loss_chart_draws_every_series_marker_and_legend() {
        let r = run();
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.starts_with("<svg"), "{svg:.200}");
        for color in ["#ef4444", "#f97316", "#eab308", "#22c55e"] {
            assert!(
                svg.contains(&format!("stroke=\"{color}\"")),
                "no line in {color}"
            );
        }
        for label in [
            "loss",
            "ema short (computed)",
            "ema medium (computed)",
            "ema long (computed)",
            "spike (1)",
            " nan/inf ×2",
        ] {
            assert!(svg.contains(&format!(">{label}<")), "no text {label:?}");
        }
        assert!(svg.contains("<circle"), "the spike is ringed");
        assert!(svg.matches("<polyline").count() >= 4);
    }

    #[test]
    fn alerts_are_marked_at_their_steps_open_bright_resolved_faint_and_only_in_view() {
        use crate::model::{AlertKind, AlertMark};
        let mut r = run();
        r.alerts = vec![
            AlertMark {
                step: 1_200,
                kind: AlertKind::Nan,
                open: false,
            },
            AlertMark {
                step: 2_000,
                kind: AlertKind::LossSpike,
                open: true,
            },
        ];
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.contains(">alert (2)<"), "legend");
        assert!(svg.contains("> loss spike<") && svg.contains("> nan<"));
        // Two at one step share a label.
        r.alerts.push(AlertMark {
            step: 2_000,
            kind: AlertKind::GradSpike,
            open: false,
        });
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.contains("> loss spike, gradient spike<"), "one label");
        r.alerts.pop();
        assert!(
            svg.contains("fill=\"#f0abfc\""),
            "the open one's triangle, full colour"
        );
        let zoomed = View {
            range: Some((1_500, 2_500)),
            ..View::default()
        };
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &zoomed));
        assert!(
            svg.contains(">alert (1)<") && !svg.contains("> nan<"),
            "only in view"
        );
        r.alerts.clear();
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(!svg.contains("alert ("));
    }

    #[test]
    fn the_legend_is_a_row_above_the_plot_never_over_it() {
        let r = run();
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        let y_of = |label: &str| -> f64 {
            let end = svg.find(&format!(">{label}<")).expect(label);
            let start = svg[..end].rfind("<text").unwrap();
            let y = svg[start..end].split("y=\"").nth(1).unwrap();
            y.split('"').next().unwrap().parse().unwrap()
        };
        for label in ["loss", "ema long (computed)", "spike (1)"] {
            assert!(
                y_of(label) < LEGEND_ROW as f64,
                "{label} sits in the legend row"
            );
        }
    }

    #[test]
    fn a_target_loss_is_a_dashed_line_named_in_the_legend() {
        let mut r = run();
        r.target_loss = Some(1.5);
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.contains(">target 1.5<"), "named in the legend");
        // Below every loss (all above 2.3), yet inside the plot: the y axis reaches it.
        let dash_ys: Vec<f64> = svg
            .split("<polyline")
            .filter(|p| p.contains("stroke=\"#eab308\""))
            .filter_map(|p| {
                let points = p.split("points=\"").nth(1)?.split('"').next()?;
                let ys: Vec<&str> = points
                    .split(' ')
                    .filter_map(|xy| xy.split(',').nth(1))
                    .collect();
                (ys.len() == 2 && ys[0] == ys[1]).then(|| ys[0].parse().ok())?
            })
            // Not the legend row's swatches.
            .filter(|y: &f64| *y > LEGEND_ROW as f64)
            .collect();
        assert!(dash_ys.len() > 20, "about 30 dashes, got {}", dash_ys.len());
        let (top, bottom) = (
            (LEGEND_ROW + MARGIN) as f64,
            (260 - MARGIN - X_LABEL_AREA) as f64,
        );
        assert!(
            dash_ys.iter().all(|y| (top..=bottom).contains(y)),
            "{dash_ys:?}"
        );
    }

    #[test]
    fn the_x_axis_reads_time_or_tokens_from_the_runs_clock() {
        use crate::model::ClockMark;
        let mut r = run();
        r.clock = (0..=300)
            .map(|i| ClockMark {
                step: i * 10,
                time: Some(1_700_000_000.0 + i as f64 * 36.0),
                tokens: Some(i as f64 * 10.0 * 1e6),
            })
            .collect();
        let labels = |x_axis| {
            let view = View {
                x_axis,
                ..View::default()
            };
            svg_of(|root| loss::draw(root, &r, &theme::DARK, &view))
        };
        assert!(labels(XAxis::Step).contains(">2k<"));
        // 3,000 steps in 3 hours: step 2,000 is 2 h in.
        assert!(labels(XAxis::Time).contains(">2h 0m<"), "elapsed time");
        assert!(labels(XAxis::Tokens).contains(">2.00b<"), "tokens");
    }

    #[test]
    fn a_flat_learning_rate_on_a_log_axis_has_distinct_labels() {
        let r = RunCharts {
            first_step: 0,
            last_step: 1990,
            lr: (0..200).map(|i| (i * 10, 1e-4)).collect(),
            ..Default::default()
        };
        let view = View {
            log_y: true,
            ..View::default()
        };
        let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &view));
        let labels: std::collections::BTreeSet<&str> = svg
            .split("<text")
            .filter_map(|t| t.split('>').nth(1)?.split('<').next())
            .filter(|t| t.contains("e-"))
            .collect();
        assert!(labels.len() >= 3, "{labels:?}");
    }

    #[test]
    fn nearby_divergences_share_one_label() {
        use crate::model::NonFinite::*;
        let labels =
            loss::divergence_labels(&[(100, Nan), (110, Inf), (120, Inf), (5000, Nan)], 50);
        assert_eq!(
            labels,
            vec![(100, " NaN/Inf ×3".to_string()), (5000, " NaN".to_string())]
        );
    }

    #[test]
    fn the_grad_chart_draws_pre_clip_area_post_clip_line_and_threshold() {
        let r = run();
        let svg = svg_of(|root| grad::draw(root, &r, &theme::DARK, &View::default()));
        assert!(
            svg.contains(">pre-clip<") && svg.contains(">post-clip<") && svg.contains(">clip 5<")
        );
        assert!(svg.contains("<polygon"), "pre-clip drawn as an area");
        assert!(svg.contains("stroke=\"#a855f7\""));
        assert!(svg.contains("#eab308"), "the threshold line");
    }

    #[test]
    fn the_lr_chart_marks_the_end_of_warmup() {
        let r = run();
        let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.contains("stroke=\"#3b82f6\""));
        assert!(svg.contains("> warmup end<"));
        assert!(!svg.contains("controller"), "no controller, no strip");
    }

    #[test]
    fn the_lr_chart_shows_the_adaptive_controller_and_its_cooldowns() {
        use crate::analysis::adaptive_lr::AdaptiveLrSeries;
        use crate::model::AdaptiveLr;
        let mut r = run();
        let records: Vec<AdaptiveLr> = (0..30)
            .map(|i| AdaptiveLr {
                step: i * 100,
                loss_ema_short: Some(3.0 - i as f64 * 0.01),
                loss_ema_long: Some(3.1 - i as f64 * 0.008),
                patience_counter: Some(i % 4),
                cooldown_triggered: Some(i64::from(i == 17)),
            })
            .collect();
        r.adaptive_lr = AdaptiveLrSeries::new(&records).charts(None, 100);
        let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &View::default()));
        for color in ["#3b82f6", "#06b6d4", "#ec4899"] {
            assert!(svg.contains(&format!("stroke=\"{color}\"")), "{color}");
        }
        for label in [
            ">cooldown<",
            ">loss ema short<",
            ">patience 0–3<",
            "> adaptive-lr controller<",
        ] {
            assert!(svg.contains(label), "no {label}");
        }
        // The cooldown's dashes cross both the rate and the strip.
        assert!(svg.matches("#eab308").count() >= 48);
        let (_, lines) = spec::ChartSpec::LearningRate(r).describe(1700, 0.0);
        let names: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "lr",
                "controller EMA short",
                "controller EMA long",
                "patience"
            ]
        );
    }

    /// 24 layers over 40 routing steps; layer 0 collapses at step 1000; MoE with four experts.
    fn routing() -> crate::model::RoutingCharts {
        use crate::model::{RoutingMod, RoutingMoe, RoutingMor};
        let (mut mods, mut mors, mut moes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..40_i64 {
            let step = i * 50;
            for layer in 0..24 {
                let frac = match layer {
                    1 => 0.58,
                    2 => 0.9,
                    _ => 0.5,
                };
                mods.push(RoutingMod {
                    step,
                    run_id: "r".into(),
                    model_id: "m".into(),
                    layer,
                    selected_frac: Some(if step < 200 { 1.0 } else { frac }),
                    compute_savings_pct: Some((1.0 - frac) * 100.0),
                    probs_mean: None,
                    probs_std: None,
                    status: Some(if step < 200 { "warmup" } else { "ok" }.into()),
                });
                let depth = if layer == 0 && step >= 1000 {
                    1.0
                } else {
                    2.0 + layer as f64 * 0.02
                };
                mors.push(RoutingMor {
                    step,
                    run_id: "r".into(),
                    model_id: "m".into(),
                    layer,
                    avg_depth: Some(depth),
                    expected_depth: Some(depth + 0.1),
                    router_probs_mean: None,
                    status: Some("ok".into()),
                    depth_histogram: None,
                });
            }
            moes.push(RoutingMoe {
                step,
                run_id: "r".into(),
                model_id: "m".into(),
                entropy: Some(1.3),
                divergence: Some(0.05),
                util_expert_0: Some(40.0),
                util_expert_1: Some(20.0),
                util_expert_2: Some(20.0),
                util_expert_3: Some(20.0),
            });
        }
        let config = RunConfig::parse(Some(r#"{"mod_capacity": 0.5, "mor_min_depth": 1}"#));
        crate::analysis::oracle::prepare_routing(&mods, &mors, &moes, &config, 150)
    }

    #[test]
    fn the_mod_heatmap_colours_every_layer_by_distance_from_capacity() {
        let r = routing();
        assert_eq!(r.layers.len(), 24);
        let svg = svg_of(|root| mod_heatmap::draw(root, &r, &theme::DARK, &View::default()));
        // green on target, yellow drifting (0.58), red off (0.9), grey warmup
        for color in ["#22c55e", "#eab308", "#ef4444", "#484f58"] {
            assert!(
                svg.contains(&format!("fill=\"{color}\"")),
                "no cell in {color}"
            );
        }
        assert!(
            svg.matches("<rect").count() >= 24 * 40,
            "a cell per layer and step"
        );
        assert!(svg.contains(">l0<") && svg.contains(">warmup<"));
    }

    #[test]
    fn the_mor_chart_names_the_collapsed_layer_where_it_began() {
        let r = routing();
        assert_eq!(r.collapses.len(), 1);
        assert_eq!((r.collapses[0].layer, r.collapses[0].since_step), (0, 1000));
        let svg = svg_of(|root| mor_depth::draw(root, &r, &theme::DARK, &View::default()));
        assert!(svg.contains("> l0 collapsed<"), "the marker on the chart");
        assert!(svg.contains(">l0 collapsed<"), "the legend entry");
        assert!(
            svg.matches("<polyline").count() >= 24,
            "a line for every layer"
        );
        assert!(!svg.contains("brief flicker"), "no flickers in this run");
    }

    #[test]
    fn the_mor_chart_draws_flickers_faintly_without_a_warning() {
        let mut r = routing();
        r.flickers = vec![crate::model::Flicker {
            layer: 5,
            since_step: 300,
            until_step: 450,
        }];
        let svg = svg_of(|root| mor_depth::draw(root, &r, &theme::DARK, &View::default()));
        assert!(
            svg.contains(">brief flicker<"),
            "the legend says what the marks are"
        );
        assert!(!svg.contains("l5 collapsed"), "no warning");
        // Layer 5's colour, half transparent, as a filled mark.
        assert!(svg.contains("opacity=\"0.5\" fill=\"#06b6d4\""));
    }

    #[test]
    fn the_moe_chart_draws_each_expert() {
        let r = routing();
        let svg = svg_of(|root| moe::draw(root, &r, &theme::DARK, &View::default()));
        for i in 0..4 {
            assert!(svg.contains(&format!(">expert {i}<")));
        }
        let none = crate::model::RoutingCharts::default();
        assert!(
            svg_of(|root| moe::draw(root, &none, &theme::DARK, &View::default()))
                .contains("no moe routing")
        );
    }

    #[test]
    fn the_gauges_fill_in_their_zone_colour_and_tick_the_target() {
        let g = crate::model::Gauges {
            tokens_per_sec: Some(7_000.0),
            tokens_per_sec_mean: Some(8_000.0),
            target_tokens_per_sec: 12_000.0,
            vram_gb: Some(29.0),
            vram_warn_gb: 24.0,
            vram_danger_gb: 28.0,
            vram_total_gb: 32.0,
            recent_tokens_per_sec: Vec::new(),
        };
        let svg = svg_of(|root| gauges::draw(root, &g, &theme::DARK));
        assert!(svg.contains(">7,000 tok/s<") && svg.contains(">mean 8,000 · target 12,000<"));
        assert!(svg.contains(">29.0 gb<") && svg.contains(">of 32 gb<"));
        // 7,000 of 12,000 is 58%: yellow; 29 GB is past the 28 GB danger line: red.
        assert!(
            svg.contains("fill=\"#eab308\" stroke=\"none\"") || svg.contains("fill=\"#eab308\"")
        );
        assert!(svg.contains("fill=\"#ef4444\""));
        let none = crate::model::Gauges::default();
        assert!(svg_of(|root| gauges::draw(root, &none, &theme::DARK)).contains(">not recorded<"));
    }

    #[test]
    fn step_labels_never_repeat_on_a_zoomed_axis() {
        assert_eq!(step_label(&950), "950");
        assert_eq!(step_label(&12_000), "12k");
        assert_eq!(step_label(&12_500), "12.5k");
        assert_eq!(step_label(&14_250), "14.25k");
        assert_eq!(step_label(&1_250_000), "1.25M");
        assert_eq!(step_label(&-2_000), "-2k");
    }

    #[test]
    fn the_plot_area_is_where_the_page_maps_the_mouse() {
        // The page turns a mouse x into a step with `plot_x_pixels`; it must match where
        // plotters really puts the plotting area.
        for width in [600_u32, 1200] {
            let mut svg = String::new();
            let root = plotters::backend::SVGBackend::with_string(&mut svg, (width, 260))
                .into_drawing_area();
            let chart = frame(&root)
                .build_cartesian_2d(0_i64..100, 0.0..1.0)
                .unwrap();
            let (xs, _) = chart.plotting_area().get_pixel_range();
            let (left, right) = plot_x_pixels(width);
            assert_eq!(
                (xs.start as f64, xs.end as f64),
                (left, right),
                "width {width}"
            );
            assert_eq!(step_at_pixel(left, width, (1000, 2000)), 1000);
            assert_eq!(step_at_pixel(right, width, (1000, 2000)), 2000);
            assert_eq!(
                step_at_pixel((left + right) / 2.0, width, (1000, 2000)),
                1500
            );
            assert_eq!(step_at_pixel(-50.0, width, (1000, 2000)), 1000, "clamped");
        }
    }

    #[test]
    fn a_zoomed_log_view_draws_only_its_range_in_decades() {
        let r = run();
        let view = View {
            range: Some((1000, 1500)),
            log_y: true,
            ..View::default()
        };
        let drawn: Vec<(i64, f64)> = view.points(&r.loss).collect();
        assert!(!drawn.is_empty());
        assert!(drawn.iter().all(|(s, _)| (1000..=1500).contains(s)));
        let raw = r.loss.iter().find(|p| p.0 == drawn[0].0).unwrap().1;
        assert!(
            (view.value(drawn[0].1) - raw).abs() < 1e-12,
            "log10 and back"
        );
        assert!(View {
            log_y: true,
            ..View::default()
        }
        .points(&[(0, 0.0), (1, -1.0)])
        .next()
        .is_none());
        let zoomed = svg_of(|root| loss::draw(root, &r, &theme::DARK, &view));
        let whole = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
        assert!(
            !zoomed.contains(">spike (1)<"),
            "the spike at 2,000 is outside 1,000–1,500"
        );
        assert!(whole.contains(">spike (1)<"));
        assert!(
            zoomed.contains(">1.5k<"),
            "x axis labelled in the zoomed range"
        );
    }

    #[test]
    fn an_empty_run_says_so_instead_of_a_blank_box() {
        let empty = RunCharts::default();
        for (name, svg) in [
            (
                "loss",
                svg_of(|root| loss::draw(root, &empty, &theme::DARK, &View::default())),
            ),
            (
                "learning rate",
                svg_of(|root| lr::draw(root, &empty, &theme::DARK, &View::default())),
            ),
            (
                "gradient norm",
                svg_of(|root| grad::draw(root, &empty, &theme::DARK, &View::default())),
            ),
        ] {
            assert!(
                svg.contains(&format!("no {name} logged")),
                "{name}: {svg:.300}"
            );
        }
    }
}
