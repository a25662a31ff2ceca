//! The throughput and VRAM gauges, side by side: a half-dial per quantity with its zones
//! along the rim, the current value filled in its zone's colour, and the target ticked.

use super::theme::Theme;
use super::DrawResult;
use crate::analysis::format::thousands;
use crate::analysis::gauges::{throughput_zone, vram_zone, Zone};
use crate::model::Gauges;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::f64::consts::PI;

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    g: &Gauges,
    theme: &Theme,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    let (w, _) = root.dim_in_pixel();
    let (left, right) = root.split_horizontally(w / 2);

    let target = g.target_tokens_per_sec;
    let tps_max = target * 1.25;
    let zone_color = |z: Zone| match z {
        Zone::Good => theme.ema[2],
        Zone::Warn => theme.ema[1],
        Zone::Bad => theme.loss,
    };
    dial(
        &left,
        theme,
        Dial {
            title: "Throughput",
            value: g.tokens_per_sec,
            max: tps_max,
            zones: [
                (0.0, 0.5 * target, theme.loss),
                (0.5 * target, 0.75 * target, theme.ema[1]),
                (0.75 * target, tps_max, theme.ema[2]),
            ],
            mark: Some(target),
            color: g
                .tokens_per_sec
                .map(|v| zone_color(throughput_zone(v, target))),
            big: g
                .tokens_per_sec
                .map(|v| format!("{} tok/s", thousands(v.round() as i64)))
                .unwrap_or_else(|| "not recorded".into()),
            sub: format!(
                "mean {} · target {}",
                g.tokens_per_sec_mean
                    .map(|m| thousands(m.round() as i64))
                    .unwrap_or_else(|| "—".into()),
                thousands(target.round() as i64)
            ),
        },
    )?;
    dial(
        &right,
        theme,
        Dial {
            title: "VRAM",
            value: g.vram_gb,
            max: g.vram_total_gb,
            zones: [
                (0.0, g.vram_warn_gb, theme.ema[2]),
                (g.vram_warn_gb, g.vram_danger_gb, theme.ema[1]),
                (g.vram_danger_gb, g.vram_total_gb, theme.loss),
            ],
            mark: None,
            color: g.vram_gb.map(|v| zone_color(vram_zone(v, g))),
            big: g
                .vram_gb
                .map(|v| format!("{v:.1} GB"))
                .unwrap_or_else(|| "not recorded".into()),
            sub: format!("of {} GB", g.vram_total_gb),
        },
    )?;
    root.present()
}

struct Dial {
    title: &'static str,
    value: Option<f64>,
    max: f64,
    zones: [(f64, f64, RGBColor); 3],
    mark: Option<f64>,
    color: Option<RGBColor>,
    big: String,
    sub: String,
}

fn dial<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    theme: &Theme,
    d: Dial,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as f64, h as f64);
    let (cx, cy) = (w / 2.0, h * 0.72);
    let r = (w * 0.4).min(h * 0.58);
    let max = d.max.max(f64::MIN_POSITIVE);
    let angle = |v: f64| PI - PI * (v / max).clamp(0.0, 1.0);
    let at = |a: f64, radius: f64| {
        (
            (cx + radius * a.cos()) as i32,
            (cy - radius * a.sin()) as i32,
        )
    };
    let band = |from: f64, to: f64, inner: f64, outer: f64| {
        let (a0, a1) = (angle(from), angle(to));
        let mut points: Vec<(i32, i32)> = (0..=48)
            .map(|i| at(a0 + (a1 - a0) * i as f64 / 48.0, outer))
            .collect();
        points.extend(
            (0..=48)
                .rev()
                .map(|i| at(a0 + (a1 - a0) * i as f64 / 48.0, inner)),
        );
        points
    };
    area.draw(&Text::new(
        d.title,
        (cx as i32, 14),
        theme
            .font(15)
            .color(&theme.muted)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    for (from, to, color) in d.zones {
        area.draw(&Polygon::new(
            band(from, to, r * 1.0, r * 1.06),
            color.mix(0.55).filled(),
        ))?;
    }
    area.draw(&Polygon::new(
        band(0.0, max, r * 0.74, r * 0.96),
        theme.grid.filled(),
    ))?;
    if let (Some(v), Some(color)) = (d.value, d.color) {
        area.draw(&Polygon::new(
            band(0.0, v.min(max), r * 0.74, r * 0.96),
            color.filled(),
        ))?;
    }
    if let Some(mark) = d.mark {
        let a = angle(mark);
        area.draw(&PathElement::new(
            vec![at(a, r * 0.7), at(a, r * 1.1)],
            theme.text.stroke_width(2),
        ))?;
    }
    area.draw(&Text::new(
        d.big,
        (cx as i32, (cy - r * 0.28) as i32),
        theme
            .font(26)
            .color(&theme.text)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    area.draw(&Text::new(
        d.sub,
        (cx as i32, (cy + 18.0) as i32),
        theme
            .font(14)
            .color(&theme.muted)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}
