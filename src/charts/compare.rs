//! One metric of several runs on one chart: a line per run in its own colour (and, past
//! eight runs, its own dash), the raw line faint behind the smoothed one when smoothing is
//! on, each run's spikes ringed, its evaluations as triangles and its NaN/Inf steps marked. The x axis counts steps,
//! tokens or seconds since each run's start.

use super::spec::{nearest, TooltipLine};
use super::theme::{Theme, RUNS};
use super::{draw_empty, step_label, y_range, DrawResult, View};
use crate::analysis::format::{metric, tokens};
use crate::model::{CompareX, ComparedRun, Metric, Points};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One run's line.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareLine {
    pub run_id: String,
    /// Its place among the compared runs: its colour and dash.
    pub slot: usize,
    /// `(x, value)`, x in units of the chart's axis.
    pub points: Points,
    pub smoothed: Option<Points>,
    pub spikes: Points,
    /// Evaluation losses (on the loss chart).
    pub evals: Points,
    /// Where the value was NaN or ±Inf.
    pub nonfinite: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompareChart {
    pub metric: Metric,
    pub axis: CompareX,
    pub lines: Vec<CompareLine>,
    /// The x span of every run together.
    pub span: (i64, i64),
}

impl CompareChart {
    /// `metric` of each run not `hidden`, placed on `axis`.
    pub fn new(runs: &[ComparedRun], metric: Metric, axis: CompareX, hidden: &[String]) -> Self {
        let mut lines = Vec::new();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (slot, run) in runs.iter().enumerate() {
            let x = crate::analysis::clock::x_of(&run.clock, axis);
            let place = |p: &Points| -> Points {
                p.iter().filter_map(|&(s, v)| Some((x(s)?, v))).collect()
            };
            for s in [run.first_step, run.max_step].into_iter().flatten() {
                if let Some(x) = x(s) {
                    lo = lo.min(x);
                    hi = hi.max(x);
                }
            }
            if hidden.contains(&run.run_id) {
                continue;
            }
            let Some(series) = run.series.iter().find(|s| s.metric == metric.name()) else {
                continue;
            };
            lines.push(CompareLine {
                run_id: run.run_id.clone(),
                slot,
                points: place(&series.points),
                smoothed: series.smoothed.as_ref().map(place),
                spikes: if metric == Metric::LossTotal {
                    place(&run.spikes)
                } else {
                    Vec::new()
                },
                evals: if metric == Metric::LossTotal {
                    place(&run.evals)
                } else {
                    Vec::new()
                },
                nonfinite: series.nonfinite.iter().filter_map(|(s, _)| x(*s)).collect(),
            });
        }
        Self {
            metric,
            axis,
            lines,
            span: if lo <= hi { (lo, hi) } else { (0, 1) },
        }
    }

    /// Each run's value at `x` (its smoothed value when smoothing is on), highest first:
    /// what the tooltip lists.
    pub fn describe(&self, x: i64) -> Vec<TooltipLine> {
        let mut found: Vec<(f64, TooltipLine)> = self
            .lines
            .iter()
            .filter_map(|l| {
                let (_, v) = nearest(l.smoothed.as_ref().unwrap_or(&l.points), x)?;
                Some((v, (l.run_id.clone(), metric(Some(v)), run_css(l.slot))))
            })
            .collect();
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        found.into_iter().map(|(_, line)| line).collect()
    }

    /// The axis label at `x`.
    pub fn x_label(&self, x: i64) -> String {
        match self.axis {
            CompareX::Step => format!("step {}", crate::analysis::format::thousands(x)),
            CompareX::Tokens => format!("{} tokens", tokens(x as f64)),
            CompareX::Time => format!("{} in", crate::analysis::format::duration(x as f64)),
        }
    }
}

/// The colour of the run in `slot`.
pub fn run_color(slot: usize) -> RGBColor {
    RUNS[slot % RUNS.len()]
}

/// `rgb(…)` of the run in `slot`, for keys drawn in HTML.
pub fn run_css(slot: usize) -> String {
    let RGBColor(r, g, b) = run_color(slot);
    format!("rgb({r},{g},{b})")
}

/// The run's dash: solid for the first eight runs, dashed for the next eight, dotted after.
pub fn run_dash(slot: usize) -> usize {
    (slot / RUNS.len()).min(2)
}

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &CompareChart,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    let body = super::legend_row(root, theme, &[])?;
    let title = format!("{} · by {}", data.metric.name(), data.axis.name());
    root.draw(&Text::new(
        title,
        (super::MARGIN as i32, 4),
        theme.font(14).color(&theme.text),
    ))?;
    let shown: Vec<(Points, Option<Points>)> = data
        .lines
        .iter()
        .map(|l| {
            (
                view.points(&l.points).collect(),
                l.smoothed.as_ref().map(|s| view.points(s).collect()),
            )
        })
        .collect();
    if shown.iter().all(|(p, _)| p.is_empty()) {
        let why = if data.lines.is_empty() {
            "no run shown"
        } else {
            "no values in this range"
        };
        return draw_empty(&body, theme, why);
    }
    let x = view.x_range(data.span.0, data.span.1);
    // With smoothing on, the smoothed lines set the scale: a raw spike would flatten them.
    let (lo, hi) = view.y_span(y_range(
        shown
            .iter()
            .flat_map(|(p, s)| s.as_ref().unwrap_or(p).iter().copied()),
    ));
    let mut chart = super::frame(&body).build_cartesian_2d(x.clone(), lo..hi)?;
    let axis = data.axis;
    let x_label = move |v: &i64| match axis {
        CompareX::Step => step_label(v),
        CompareX::Tokens => tokens(*v as f64),
        CompareX::Time => super::elapsed_label(*v as f64),
    };
    super::draw_mesh(&mut chart, theme, (8, 5), &x_label, &|v| {
        metric(Some(view.value(*v)))
    })?;
    for (line, (points, smoothed)) in data.lines.iter().zip(&shown) {
        let color = run_color(line.slot);
        let main = match smoothed {
            Some(s) => {
                // The raw line faint behind, cut where it leaves the smoothed lines' scale.
                for piece in within(points, lo, hi) {
                    chart.draw_series(LineSeries::new(piece, color.mix(0.25).stroke_width(1)))?;
                }
                s
            }
            None => points,
        };
        let style = color.stroke_width(2);
        for piece in within(main, lo, hi) {
            match run_dash(line.slot) {
                0 => {
                    chart.draw_series(LineSeries::new(piece, style))?;
                }
                d => {
                    let (dash, gap) = if d == 1 { (8, 5) } else { (2, 4) };
                    chart.draw_series(DashedLineSeries::new(piece, dash, gap, style))?;
                }
            }
        }
        for x in line.nonfinite.iter().filter(|x| view.contains(**x)) {
            chart.draw_series(super::dashed_vertical(*x, lo, hi, color))?;
        }
        chart.draw_series(
            view.points(&line.spikes)
                .map(|p| Circle::new(p, 5, color.stroke_width(2))),
        )?;
        let inside = |&(_, v): &(i64, f64)| (lo..=hi).contains(&v);
        chart.draw_series(
            view.points(&line.evals)
                .filter(inside)
                .map(|p| TriangleMarker::new(p, 5, color.filled())),
        )?;
    }
    root.present()
}

/// The pieces of a line inside `lo..=hi`, each ending where the line crosses the edge (the
/// crossing read on the straight segment), so a line that leaves the scale stops at its
/// edge instead of running along it.
fn within(points: &[(i64, f64)], lo: f64, hi: f64) -> Vec<Vec<(i64, f64)>> {
    let inside = |v: f64| (lo..=hi).contains(&v);
    let cross = |(x0, v0): (i64, f64), (x1, v1): (i64, f64)| {
        let edge = if v1 > hi || v0 > hi { hi } else { lo };
        let t = (edge - v0) / (v1 - v0);
        ((x0 as f64 + t * (x1 - x0) as f64).round() as i64, edge)
    };
    let mut pieces: Vec<Vec<(i64, f64)>> = Vec::new();
    let mut current: Vec<(i64, f64)> = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        let before = i.checked_sub(1).map(|j| points[j]);
        match (inside(p.1), before) {
            (true, Some(b)) if !inside(b.1) => current.push(cross(b, p)),
            (false, Some(b)) if inside(b.1) => {
                current.push(cross(b, p));
                pieces.push(std::mem::take(&mut current));
            }
            _ => {}
        }
        if inside(p.1) {
            current.push(p);
        }
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

#[cfg(test)]
mod within_tests {
    #[test]
    fn a_line_is_cut_where_it_leaves_the_scale() {
        let line = [(0, 1.0), (10, 3.0), (20, 1.0), (30, 2.0)];
        assert_eq!(
            super::within(&line, 0.0, 2.0),
            vec![
                vec![(0, 1.0), (5, 2.0)],
                vec![(15, 2.0), (20, 1.0), (30, 2.0)]
            ]
        );
        assert_eq!(
            super::within(&line, 5.0, 6.0),
            Vec::<Vec<(i64, f64)>>::new()
        );
    }
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::model::{ClockMark, ComparedSeries, NonFinite};

    fn run(id: &str, scale: f64) -> ComparedRun {
        ComparedRun {
            run_id: id.into(),
            model_id: "500m".into(),
            first_step: Some(0),
            max_step: Some(1000),
            steps: Some((0, 1000)),
            series: vec![ComparedSeries {
                metric: "loss_total".into(),
                downsampled: false,
                points: (0..=100)
                    .map(|i| (i * 10, scale * 10.0 / (1.0 + i as f64)))
                    .collect(),
                nonfinite: vec![(500, NonFinite::Nan)],
                smoothed: None,
            }],
            spikes: vec![(300, scale * 9.0)],
            evals: vec![(1000, scale * 1.1)],
            clock: vec![
                ClockMark {
                    step: 0,
                    time: Some(100.0),
                    tokens: Some(0.0),
                },
                ClockMark {
                    step: 1000,
                    time: Some(2100.0),
                    tokens: Some(4096e3),
                },
            ],
        }
    }

    #[test]
    fn each_run_is_drawn_in_its_own_colour_with_its_markers() {
        let runs = [run("a", 1.0), run("b", 2.0), run("c", 3.0)];
        let chart = CompareChart::new(&runs, Metric::LossTotal, CompareX::Step, &[]);
        let svg = crate::charts::to_svg(1200, 320, |root| {
            draw(root, &chart, &crate::charts::theme::DARK, &View::default())
        });
        for slot in 0..3 {
            let RGBColor(r, g, b) = run_color(slot);
            let hex = format!("#{r:02X}{g:02X}{b:02X}");
            assert!(svg.contains(&hex), "run {slot} ({hex}) is drawn");
        }
        assert_eq!(svg.matches("<circle").count(), 3, "one spike ring per run");
        assert_eq!(
            svg.matches("<polygon").count(),
            3,
            "one eval marker per run"
        );
        // The tooltip lists every run at a step, highest first.
        let lines = chart.describe(100);
        let names: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        // A hidden run is left out; the span stays that of every run.
        let two = CompareChart::new(&runs, Metric::LossTotal, CompareX::Step, &["b".into()]);
        assert_eq!(two.lines.len(), 2);
        assert_eq!(two.span, (0, 1000));
    }

    #[test]
    fn by_time_each_run_starts_at_zero() {
        let runs = [run("a", 1.0)];
        let chart = CompareChart::new(&runs, Metric::LossTotal, CompareX::Time, &[]);
        assert_eq!(chart.span, (0, 2000));
        assert_eq!(chart.lines[0].points[1].0, 20, "step 10 is 20 s in");
        assert_eq!(chart.lines[0].nonfinite, vec![1000]);
        assert_eq!(chart.x_label(90), "1m 30s in");
        let by_tokens = CompareChart::new(&runs, Metric::LossTotal, CompareX::Tokens, &[]);
        assert_eq!(by_tokens.span, (0, 4_096_000));
    }
}
