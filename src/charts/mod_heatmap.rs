//! The MoD heatmap: layer × step, each cell coloured by how far the router's selected
//! fraction is from the `mod_capacity` target — green within 0.05, yellow within 0.10, red
//! beyond, grey while the router warms up (the trainer's `DISABLED_PRE_ENABLE`), and at
//! least yellow where the trainer itself says `DRIFTING`.

use super::theme::Theme;
use super::{draw_empty, DrawResult, View};
use crate::analysis::routing::{mod_zone, ModZone};
use crate::model::{ModCell, RoutingCharts};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use crate::analysis::routing::{MOD_DRIFTING as DRIFTING, MOD_ON_TARGET as ON_TARGET};

/// The colour of a cell, and the words the legend and tooltip use for it
/// (`analysis::routing::mod_zone`, which the `mod_drift` alert uses too).
pub fn status(cell: &ModCell, capacity: f64, theme: &Theme) -> (RGBColor, &'static str) {
    match mod_zone(cell.selected_frac, cell.status.as_deref(), capacity) {
        ModZone::Warmup => (theme.axis, "warmup"),
        ModZone::OnTarget => (theme.ema[2], "on target"),
        ModZone::Drifting => (theme.ema[1], "drifting"),
        ModZone::Off => (theme.loss, "off target"),
    }
}

pub fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &RoutingCharts,
    theme: &Theme,
    view: &View,
) -> DrawResult<DB> {
    root.fill(&theme.background)?;
    if data.mod_cells.is_empty() {
        return draw_empty(root, theme, "no MoD routing logged");
    }
    let capacity = data.mod_capacity.unwrap_or(0.5);
    let (legend, body) = root.split_vertically(24);
    let swatches = [
        (theme.ema[2], format!("|frac − {capacity}| ≤ {ON_TARGET}")),
        (theme.ema[1], format!("≤ {DRIFTING}")),
        (theme.loss, "beyond".to_string()),
        (theme.axis, "warmup".to_string()),
    ];
    let mut x = 60;
    for (color, label) in swatches {
        legend.draw(&Rectangle::new([(x, 8), (x + 12, 20)], color.filled()))?;
        legend.draw(&Text::new(
            label.clone(),
            (x + 16, 8),
            theme.font(13).color(&theme.text),
        ))?;
        x += 28 + 7 * label.chars().count() as i32;
    }

    let rows = data.layers.len().max(1) as i32;
    // Layer 0, the input side, at the bottom, as a network is usually drawn.
    let row_of = |layer: i64| data.layers.iter().position(|l| *l == layer).unwrap_or(0) as i32;
    let x_end = data
        .mod_cells
        .iter()
        .map(|c| c.step_hi + 1)
        .max()
        .unwrap_or(1);
    let shown = match view.range {
        Some(_) => view.x_range(data.first_step, x_end),
        None => data.first_step..x_end.max(data.first_step + 1),
    };
    let mut chart = super::frame(&body)
        .margin_top(2)
        .build_cartesian_2d(shown.clone(), 0..rows)?;
    let layers = data.layers.clone();
    chart
        .configure_mesh()
        .disable_mesh()
        .axis_style(theme.axis)
        .label_style(theme.font(14).color(&theme.muted))
        .x_labels(6)
        .y_labels((rows as usize).min(12))
        .x_label_formatter(&super::x_labels(view, &data.clock))
        .y_label_formatter(&move |y| {
            layers
                .get(*y as usize)
                .map(|l| format!("L{l}"))
                .unwrap_or_default()
        })
        .draw()?;
    let right = right_edges(&data.mod_cells);
    let visible = data
        .mod_cells
        .iter()
        .zip(right)
        .filter(|(c, right)| *right > shown.start && c.step_lo <= shown.end);
    chart.draw_series(visible.map(|(c, right)| {
        let (color, _) = status(c, capacity, theme);
        let row = row_of(c.layer);
        let (lo, hi) = (c.step_lo.max(shown.start), right.min(shown.end));
        Rectangle::new([(lo, row), (hi, row + 1)], color.filled())
    }))?;
    root.present()
}

/// Where each cell ends: at the next record of its layer. Routing is logged every N steps and
/// the steps between two records belong to the earlier one, so cells meet without seams.
fn right_edges(cells: &[ModCell]) -> Vec<i64> {
    let mut order: Vec<usize> = (0..cells.len()).collect();
    order.sort_by_key(|&i| (cells[i].layer, cells[i].step_lo));
    let mut right: Vec<i64> = cells.iter().map(|c| c.step_hi + 1).collect();
    for pair in order.windows(2) {
        let (c, next) = (&cells[pair[0]], &cells[pair[1]]);
        if next.layer == c.layer {
            right[pair[0]] = next.step_lo.max(c.step_hi + 1);
        }
    }
    right
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::theme::DARK;

    #[test]
    fn cells_reach_the_next_record_of_their_layer() {
        let cell = |layer, lo, hi| ModCell {
            step_lo: lo,
            step_hi: hi,
            layer,
            selected_frac: 0.5,
            compute_savings_pct: None,
            status: None,
        };
        // Records every 50 steps, two layers interleaved as the table stores them.
        let cells = [
            cell(0, 0, 0),
            cell(1, 0, 0),
            cell(0, 50, 100),
            cell(1, 50, 100),
            cell(0, 150, 150),
        ];
        assert_eq!(right_edges(&cells), vec![50, 50, 150, 101, 151]);
    }

    fn with_status(frac: f64, status: &str) -> ModCell {
        ModCell {
            step_lo: 0,
            step_hi: 100,
            layer: 0,
            selected_frac: frac,
            compute_savings_pct: None,
            status: Some(status.into()),
        }
    }

    /// Issue 13: the trainer's warm-up selects everything (1.0) and used to be drawn red.
    #[test]
    fn the_trainers_statuses_come_first() {
        let word = |frac: f64, said: &str| status(&with_status(frac, said), 0.5, &DARK).1;
        assert_eq!(word(1.0, "DISABLED_PRE_ENABLE"), "warmup");
        assert_eq!(word(0.5, "DRIFTING"), "drifting");
        assert_eq!(word(0.9, "DRIFTING"), "off target", "distance still counts");
        assert_eq!(word(0.5, "OK"), "on target");
        assert_eq!(word(0.58, "OK"), "drifting");
        assert_eq!(word(0.9, "OK"), "off target");
        assert_eq!(word(0.9, "something new"), "off target");
    }
}
