//! The loss chart: raw `loss_total` faint, the three EMAs on top, spikes ringed, a red line
//! with "NaN"/"Inf" wherever training diverged, and the eval loss (with its components,
//! faint) as dotted points at each evaluation.

use super::theme::Theme;
use super::{draw_empty, y_range, DrawResult, Swatch, View};
use crate::model::{AlertMark, NonFinite, RunCharts};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const EMA_NAMES: [&str; 3] = ["EMA short", "EMA medium", "EMA long"];

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &RunCharts,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    if data.loss.is_empty() && data.diverged.is_empty() {
        return draw_empty(root, theme, "no loss logged yet");
    }
    let ema_names = EMA_NAMES.map(|n| match (data.ema_computed, data.ema_computed_from) {
        (true, _) => format!("{n} (computed)"),
        // The file's EMAs stop at a NaN loss; ours carry on from there.
        (false, Some(from)) => format!(
            "{n} (computed from {})",
            crate::analysis::format::thousands(from)
        ),
        (false, None) => n.to_string(),
    });
    let spikes: Vec<(i64, f64)> = view.points(&data.spikes).collect();
    // Smoothing on: the smoothed loss is the line read, the raw loss fades behind it.
    let smoothed = data.smoothed.as_ref().filter(|s| !s.points.is_empty());
    let mut legend = vec![("loss".to_string(), Swatch::Line(theme.loss))];
    if let Some(s) = smoothed {
        legend.insert(
            0,
            (
                format!("loss smoothed {:.3}", s.weight),
                Swatch::Line(theme.smoothed),
            ),
        );
    }
    for (i, name) in ema_names.iter().enumerate() {
        legend.push((name.clone(), Swatch::Line(theme.ema[i])));
    }
    let eval: Vec<(i64, f64)> = view.points(&data.eval).collect();
    if !eval.is_empty() {
        legend.push(("eval".to_string(), Swatch::Line(theme.eval)));
        for (i, (name, _)) in data.eval_components.iter().enumerate() {
            legend.push((format!("eval {name}"), Swatch::Dashed(theme.layer(i + 1))));
        }
    }
    if !spikes.is_empty() {
        legend.push((
            format!("spike ({})", spikes.len()),
            Swatch::Ring(theme.spike),
        ));
    }
    // On a log axis a target at or below zero has no place.
    let target = data
        .target_loss
        .filter(|t| !view.log_y || *t > 0.0)
        .map(|t| (t, if view.log_y { t.log10() } else { t }));
    if let Some((t, _)) = target {
        legend.push((format!("target {t}"), Swatch::Dashed(theme.threshold)));
    }
    let alerts: Vec<&AlertMark> = data
        .alerts
        .iter()
        .filter(|m| view.contains(m.step))
        .collect();
    if !alerts.is_empty() {
        legend.push((
            format!("alert ({})", alerts.len()),
            Swatch::Dashed(theme.alert),
        ));
    }
    let body = super::legend_row(root, theme, &legend)?;

    let (y0, y1) = view.y_span(y_range(
        view.points(&data.loss)
            .chain(smoothed.into_iter().flat_map(|s| view.points(&s.points)))
            .chain(data.ema.iter().flat_map(|e| view.points(e)))
            .chain(spikes.iter().copied())
            .chain(eval.iter().copied())
            .chain(
                data.eval_components
                    .iter()
                    .flat_map(|(_, series)| view.points(series)),
            )
            .chain(target.map(|(_, y)| (data.first_step, y))),
    ));
    let mut chart = super::frame(&body)
        .build_cartesian_2d(view.x_range(data.first_step, data.last_step), y0..y1)?;
    super::draw_mesh(
        &mut chart,
        theme,
        (10, 6),
        &super::x_labels(view, &data.clock),
        &|v| format!("{:.2}", view.value(*v)),
    )?;
    let raw = if smoothed.is_some() { 0.25 } else { 0.55 };
    chart.draw_series(LineSeries::new(
        view.points(&data.loss),
        theme.loss.mix(raw).stroke_width(1),
    ))?;
    for (i, series) in data.ema.iter().enumerate() {
        chart.draw_series(LineSeries::new(
            view.points(series),
            theme.ema[i].stroke_width(2),
        ))?;
    }
    if let Some(s) = smoothed {
        chart.draw_series(LineSeries::new(
            view.points(&s.points),
            theme.smoothed.stroke_width(2),
        ))?;
    }
    for (i, (_, series)) in data.eval_components.iter().enumerate() {
        let color = theme.layer(i + 1).mix(0.7);
        chart.draw_series(DashedLineSeries::new(
            view.points(series).collect::<Vec<_>>(),
            4,
            4,
            color.stroke_width(1),
        ))?;
    }
    chart.draw_series(LineSeries::new(
        eval.iter().copied(),
        theme.eval.stroke_width(2),
    ))?;
    chart.draw_series(eval.iter().map(|&p| Circle::new(p, 3, theme.eval.filled())))?;
    chart.draw_series(
        spikes
            .iter()
            .map(|&(s, v)| Circle::new((s, v), 5, theme.spike.stroke_width(2))),
    )?;
    if let Some((_, y)) = target {
        let shown = view.x_range(data.first_step, data.last_step);
        chart.draw_series(super::dashed_horizontal(shown, y, theme.threshold))?;
    }
    let diverged: Vec<_> = data
        .diverged
        .iter()
        .copied()
        .filter(|(s, _)| view.contains(*s))
        .collect();
    for &(step, _) in &diverged {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(step, y0), (step, y1)],
            theme.diverged.stroke_width(1),
        )))?;
    }
    // Divergences close together share one label, so "NaN" and "Inf" never overprint.
    let shown = view.x_range(data.first_step, data.last_step);
    let near = ((shown.end - shown.start) / 40).max(1);
    for (step, label) in divergence_labels(&diverged, near) {
        chart.draw_series(std::iter::once(Text::new(
            label,
            (step, y1 - (y1 - y0) * 0.02),
            theme.font(13).color(&theme.diverged),
        )))?;
    }
    super::draw_resumes(&mut chart, &data.resumes, view, (y0, y1), theme)?;
    // Alerts: a dashed line from the top at each step, a triangle naming them (alerts closer
    // than `near` share one label, so none overprints); resolved ones faint.
    for (step, open, words) in alert_labels(&alerts, near) {
        // Near the right edge the name goes to the left of its mark, inside the plot.
        let leftward = (step - shown.start) * 5 > (shown.end - shown.start) * 4;
        let color = if open {
            theme.alert.to_rgba()
        } else {
            theme.alert.mix(0.45)
        };
        let top = y1 - (y1 - y0) * 0.01;
        chart.draw_series(DashedLineSeries::new(
            vec![(step, y0), (step, top)],
            3,
            3,
            color.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((step, top))
                + TriangleMarker::new((0, 0), 5, color.filled())
                + if leftward {
                    Text::new(
                        format!("{words} "),
                        (-4, -6),
                        theme
                            .font(12)
                            .color(&color)
                            .pos(Pos::new(HPos::Right, VPos::Top)),
                    )
                } else {
                    Text::new(format!(" {words}"), (4, -6), theme.font(12).color(&color))
                },
        ))?;
    }
    root.present()
}

/// One label per cluster of alerts less than `near` steps apart: at the first one's step,
/// open when any is, naming each kind once.
pub fn alert_labels(marks: &[&AlertMark], near: i64) -> Vec<(i64, bool, String)> {
    let mut clusters: Vec<(i64, i64, bool, Vec<&'static str>)> = Vec::new();
    for m in marks {
        match clusters.last_mut() {
            Some((_, last, open, words)) if m.step - *last < near => {
                *last = m.step;
                *open |= m.open;
                if !words.contains(&m.kind.words()) {
                    words.push(m.kind.words());
                }
            }
            _ => clusters.push((m.step, m.step, m.open, vec![m.kind.words()])),
        }
    }
    clusters
        .into_iter()
        .map(|(step, _, open, words)| (step, open, words.join(", ")))
        .collect()
}

/// One label per cluster of divergences less than `near` steps apart: `NaN`, `Inf`, or
/// `NaN/Inf` with a count when there are several.
pub fn divergence_labels(diverged: &[(i64, NonFinite)], near: i64) -> Vec<(i64, String)> {
    let mut clusters: Vec<(i64, i64, Vec<NonFinite>)> = Vec::new();
    for &(step, kind) in diverged {
        match clusters.last_mut() {
            Some((_, last, kinds)) if step - *last < near => {
                *last = step;
                kinds.push(kind);
            }
            _ => clusters.push((step, step, vec![kind])),
        }
    }
    clusters
        .into_iter()
        .map(|(first, _, kinds)| {
            let name = |k: &NonFinite| match k {
                NonFinite::Nan => "NaN",
                NonFinite::Inf => "Inf",
                NonFinite::NegInf => "-Inf",
            };
            let mut names: Vec<&str> = kinds.iter().map(name).collect();
            names.dedup();
            let mut label = names.join("/");
            if kinds.len() > 1 {
                label.push_str(&format!(" ×{}", kinds.len()));
            }
            (first, format!(" {label}"))
        })
        .collect()
}
