//! Chart drawing: one file per chart, each a pure `draw` generic over plotters'
//! `DrawingBackend`. The same function draws onto a `<canvas>` in the browser and into SVG
//! on the server (the page before hydration, snapshots); tests draw into SVG and read it.

pub mod grad;
pub mod loss;
pub mod lr;
pub mod theme;

use plotters::coord::Shift;
use plotters::prelude::*;

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

/// The y range that shows every point of `series` with a little air above and below.
pub(crate) fn y_range<'a>(series: impl IntoIterator<Item = &'a (i64, f64)>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(_, v) in series {
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

/// Step labels the way people say them: 950, 12.5k, 1.2M.
pub(crate) fn step_label(step: &i64) -> String {
    let s = *step as f64;
    match s.abs() {
        a if a >= 1e6 => format!("{:.1}M", s / 1e6),
        a if a >= 1e4 => format!("{:.0}k", s / 1e3),
        a if a >= 1e3 => format!("{:.1}k", s / 1e3),
        _ => format!("{step}"),
    }
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
    use crate::analysis::charts::{prepare, RunColumns};
    use crate::model::{RunCharts, RunConfig};

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
        let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK));
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
        let svg = svg_of(|root| grad::draw(root, &r, &theme::DARK));
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
        let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK));
        assert!(svg.contains("stroke=\"#3b82f6\""));
        assert!(svg.contains("> warmup end<"));
    }

    #[test]
    fn an_empty_run_says_so_instead_of_a_blank_box() {
        let empty = RunCharts::default();
        for (name, svg) in [
            (
                "loss",
                svg_of(|root| loss::draw(root, &empty, &theme::DARK)),
            ),
            (
                "learning rate",
                svg_of(|root| lr::draw(root, &empty, &theme::DARK)),
            ),
            (
                "gradient norm",
                svg_of(|root| grad::draw(root, &empty, &theme::DARK)),
            ),
        ] {
            assert!(
                svg.contains(&format!("no {name} logged")),
                "{name}: {svg:.300}"
            );
        }
    }
}
