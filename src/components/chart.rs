//! Hosts one chart. The server renders it as SVG, so the page shows it before the WASM
//! loads and without JavaScript; once hydrated, the same `draw` paints a canvas of the same
//! size in its place, so nothing jumps. On the canvas: a crosshair and tooltip with exact
//! values, drag to zoom a step range that every time-series chart follows, double-click to
//! reset.

use crate::analysis::format::thousands;
use crate::charts::spec::{ChartSpec, TooltipLine};
use crate::charts::{plot_x_pixels, step_at_pixel, View, XAxis, MARGIN, X_LABEL_AREA};
use crate::model::{ClockMark, SmoothedLoss, ZoomCharts};
use leptos::prelude::*;

/// What every time-series chart on the page shows: one zoom and one scale for all. Owned by
/// the page, so re-reading the run does not reset it.
#[derive(Clone, Copy)]
pub struct SharedView {
    pub range: RwSignal<Option<(i64, i64)>>,
    pub log_y: RwSignal<bool>,
    /// What the x axes read: steps, time or tokens.
    pub x_axis: RwSignal<XAxis>,
    /// MoR layers the person switched off in the layer key.
    pub hidden_layers: RwSignal<Vec<i64>>,
    /// The zoomed range's own data, at full detail, once the server sent it.
    pub detail: RwSignal<Option<ZoomCharts>>,
    /// The smoothing slider's weight; 0 is off.
    pub smoothing: RwSignal<f64>,
    /// The loss smoothed at that weight, once the server sent it.
    pub smoothed: RwSignal<Option<SmoothedLoss>>,
}

impl SharedView {
    pub fn new() -> Self {
        Self {
            range: RwSignal::new(None),
            log_y: RwSignal::new(false),
            x_axis: RwSignal::new(XAxis::Step),
            hidden_layers: RwSignal::new(Vec::new()),
            detail: RwSignal::new(None),
            smoothing: RwSignal::new(0.0),
            smoothed: RwSignal::new(None),
        }
    }

    /// The smoothed loss to draw in `view`: made at the slider's weight for the range shown.
    pub fn smoothed_for(&self, view: &View) -> Option<SmoothedLoss> {
        let weight = self.smoothing.get();
        self.smoothed.with(|s| {
            s.as_ref()
                .filter(|s| weight > 0.0 && s.weight == weight && s.range == view.range)
                .cloned()
        })
    }

    pub fn get(&self) -> View {
        View {
            range: self.range.get(),
            log_y: self.log_y.get(),
            x_axis: self.x_axis.get(),
        }
    }
}

impl Default for SharedView {
    fn default() -> Self {
        Self::new()
    }
}

/// Where the mouse is over a chart, in its drawing's pixels.
#[derive(Clone, Debug, PartialEq)]
struct Hover {
    x: f64,
    step: i64,
    /// The tooltip's first line: the step, or the tokens or time on a compare chart.
    label: String,
    /// When the step was logged and the tokens seen by then, as the run's clock tells.
    when: Option<String>,
    lines: Vec<TooltipLine>,
}

/// `2026-01-09 15:21:07 UTC · 1h 6m in · 1.2B tokens` for `step`; `≈` in front when the
/// clock has no mark at that very step and the time is read between two marks.
pub fn when(clock: &[ClockMark], step: i64) -> Option<String> {
    use crate::analysis::format::{duration, tokens};
    let (time, seen) = crate::analysis::clock::clock_at(clock, step);
    let start = clock.iter().find_map(|m| m.time);
    let exact = clock.iter().any(|m| m.step == step);
    let mut parts = Vec::new();
    if let Some(t) = time {
        let stamp = crate::analysis::time::format_iso8601(t).replace('T', " ");
        parts.push(format!("{}{stamp} UTC", if exact { "" } else { "≈ " }));
        if let Some(t0) = start {
            parts.push(format!("{} in", duration((t - t0).max(0.0))));
        }
    }
    if let Some(n) = seen {
        parts.push(format!("{} tokens", tokens(n)));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

#[component]
pub fn Chart(
    /// The chart and its data; the canvas redraws in place when the live feed changes it.
    #[prop(into)]
    spec: Signal<ChartSpec>,
) -> impl IntoView {
    let first = spec.get_untracked();
    let (width, height) = first.size();
    let id = first.id();
    let shared = use_context::<SharedView>().unwrap_or_default();
    let follows = first.has_steps();
    // Only the server draws SVG; in the browser the canvas below takes over.
    #[cfg(feature = "ssr")]
    let svg = crate::charts::to_svg(width, height, |root| {
        let view = View {
            range: None,
            log_y: follows && shared.log_y.get_untracked(),
            x_axis: shared.x_axis.get_untracked(),
        };
        first.draw(root, &view)
    });
    #[cfg(not(feature = "ssr"))]
    let svg = String::new();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let live = RwSignal::new(false);
    let drawn = RwSignal::new(0_usize);
    let alerts = RwSignal::new(0_usize);
    let smoothed = RwSignal::new(0_usize);
    let hover = RwSignal::new(None::<Hover>);
    let drag = RwSignal::new(None::<(f64, f64)>);

    #[cfg(feature = "hydrate")]
    {
        // Redraws whenever the data, the shared zoom or the scale changes.
        Effect::new(move |_| {
            use plotters::prelude::IntoDrawingArea;
            let view = if follows {
                shared.get()
            } else {
                View::default()
            };
            // A zoom's detail replaces the whole run's data while the zoom lasts.
            let detail = shared
                .detail
                .with(|d| d.as_ref().filter(|z| Some(z.range) == view.range).cloned());
            let spec = match (&detail, follows) {
                (Some(zoom), true) => spec.with(|s| s.with_detail(zoom)),
                _ => spec.get(),
            };
            let spec = spec
                .without_layers(&shared.hidden_layers.get())
                .with_smoothed(shared.smoothed_for(&view));
            drawn.set(spec.points_in(&view));
            alerts.set(spec.alerts_in(&view));
            smoothed.set(spec.smoothed_in(&view));
            let Some(element) = canvas.get() else { return };
            let Some(backend) = plotters_canvas::CanvasBackend::with_canvas_object(element) else {
                return;
            };
            let root = backend.into_drawing_area();
            match spec.draw(&root, &view) {
                Ok(()) => live.set(true),
                Err(e) => leptos::logging::warn!("{id} chart: {e}"),
            }
        });
    }

    // Mouse position in the drawing's own pixels (the canvas is scaled by CSS).
    let position = move |ev: &leptos::ev::MouseEvent| -> Option<(f64, f64)> {
        let element = canvas.get()?;
        let (w, h) = (
            element.client_width() as f64,
            element.client_height() as f64,
        );
        (w > 0.0 && h > 0.0).then(|| {
            (
                ev.offset_x() as f64 * width as f64 / w,
                ev.offset_y() as f64 * height as f64 / h,
            )
        })
    };
    let shown_range = {
        move || {
            shared
                .range
                .get_untracked()
                .unwrap_or_else(|| spec.with_untracked(ChartSpec::steps))
        }
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        let Some((x, y)) = position(&ev) else { return };
        let step = step_at_pixel(x, width, shown_range());
        // The heatmap's rows span its plot area, below a 24 px legend strip.
        let (top, bottom) = (26.0, height as f64 - (MARGIN + X_LABEL_AREA) as f64);
        let row = ((bottom - y) / (bottom - top)).clamp(0.0, 0.999);
        let described = shared.detail.with_untracked(|d| match d {
            Some(z) => spec.with_untracked(|s| s.with_detail(z)),
            None => spec.get_untracked(),
        });
        let (step, lines) = described.describe(step, row);
        let when = when(described.clock(), step);
        hover.set((!lines.is_empty()).then_some(Hover {
            x,
            step,
            label: described.x_label(step),
            when,
            lines,
        }));
        if drag.get_untracked().is_some() {
            drag.update(|d| {
                if let Some(d) = d {
                    d.1 = x;
                }
            });
        }
    };
    let on_down = move |ev: leptos::ev::MouseEvent| {
        if let Some((x, _)) = position(&ev) {
            drag.set(Some((x, x)));
        }
    };
    let on_up = move |_| {
        if let Some((a, b)) = drag.get_untracked() {
            // A click is not a zoom: it takes a few pixels of drag.
            if (a - b).abs() > 6.0 {
                let range = shown_range();
                let (lo, hi) = (a.min(b), a.max(b));
                let (s0, s1) = (
                    step_at_pixel(lo, width, range),
                    step_at_pixel(hi, width, range),
                );
                if s1 > s0 {
                    shared.range.set(Some((s0, s1)));
                }
            }
        }
        drag.set(None);
    };
    let on_leave = move |_| {
        hover.set(None);
        drag.set(None);
    };
    let on_reset = move |_| shared.range.set(None);
    let pct = move |x: f64| x / width as f64 * 100.0;
    let (plot_left, plot_right) = plot_x_pixels(width);

    view! {
        <div class="chart" class:live=move || live.get() data-chart=id data-drawn=move || drawn.get() data-alerts=move || alerts.get() data-smoothed=move || smoothed.get()>
            <div class="chart-svg" inner_html=svg></div>
            <canvas
                class="chart-canvas"
                width=width
                height=height
                node_ref=canvas
                on:mousemove=move |ev| if follows { on_move(ev) }
                on:mousedown=move |ev| if follows { on_down(ev) }
                on:mouseup=move |ev| if follows { on_up(ev) }
                on:mouseleave=on_leave
                on:dblclick=move |ev| if follows { on_reset(ev) }
            ></canvas>
            {move || {
                hover
                    .get()
                    .filter(|h| h.x >= plot_left && h.x <= plot_right)
                    .map(|h| {
                        // On the side with more room: a tooltip of 24 layers is wide.
                        let flip = h.x > width as f64 * 0.5;
                        let side = if flip {
                            format!("right:{:.2}%", 100.0 - pct(h.x) + 1.0)
                        } else {
                            format!("left:{:.2}%", pct(h.x) + 1.0)
                        };
                        view! {
                            <div class="crosshair" style=format!("left:{:.2}%", pct(h.x))></div>
                            <div class="tooltip" style=side role="tooltip">
                                <div class="tooltip-step">{h.label}</div>
                                {h.when.map(|w| view! { <div class="tooltip-when">{w}</div> })}
                                {h
                                    .lines
                                    .into_iter()
                                    .map(|(name, value, color)| {
                                        view! {
                                            <div class="tooltip-line">
                                                <i style=format!("background:{color}")></i>
                                                <span>{name}</span>
                                                <b>{value}</b>
                                            </div>
                                        }
                                    })
                                    .collect_view()}
                            </div>
                        }
                    })
            }}
            {move || {
                drag.get().filter(|(a, b)| (a - b).abs() > 2.0).map(|(a, b)| {
                    view! {
                        <div
                            class="selection"
                            style=format!(
                                "left:{:.2}%;width:{:.2}%",
                                pct(a.min(b)),
                                pct((a - b).abs()),
                            )
                        ></div>
                    }
                })
            }}
        </div>
    }
}

/// The zoom and scale controls above the charts, and the `r` / `l` keys.
#[component]
pub fn ViewToolbar(
    /// Offer the loss smoothing slider (a single run's page).
    #[prop(optional)]
    smoothing: bool,
) -> impl IntoView {
    let shared = use_context::<SharedView>().unwrap_or_default();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if !page_command(&ev) {
                return;
            }
            match ev.key().as_str() {
                "r" => shared.range.set(None),
                "l" => shared.log_y.update(|l| *l = !*l),
                "s" => focus_smoothing(&ev),
                _ => {}
            }
        });
        on_cleanup(move || handle.remove());
    });
    view! {
        <div class="view-toolbar" data-toolbar="view">
            {smoothing.then(|| view! { <SmoothingSlider smoothing=shared.smoothing/> })}
            <LogScaleToggle/>
            <label class="toggle" title="what the x axes read">
                "x axis"
                <select
                    id="x-axis"
                    on:change=move |ev| {
                        let chosen = event_target_value(&ev);
                        let axis = XAxis::ALL.into_iter().find(|a| a.name() == chosen);
                        shared.x_axis.set(axis.unwrap_or_default());
                    }
                >
                    {XAxis::ALL
                        .into_iter()
                        .map(|a| {
                            view! {
                                <option value=a.name() selected=move || shared.x_axis.get() == a>
                                    {a.name()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            {move || match shared.range.get() {
                Some((a, b)) => view! {
                    <span class="zoom-range">{format!("steps {} – {}", thousands(a), thousands(b))}</span>
                    <button class="reset" on:click=move |_| shared.range.set(None) title="r or double-click">
                        "reset zoom"
                    </button>
                }
                .into_any(),
                None => view! {
                    <span class="muted hint">"drag across a chart to zoom · double-click or r to reset · l for log scale · s smoothing"</span>
                }
                .into_any(),
            }}
        </div>
    }
}

/// The smoothing slider (0–0.999; `s` focuses it): what it shows moves while dragged, the
/// server is asked when it is let go, and the address bar's `?smoothing=` follows.
#[component]
pub fn SmoothingSlider(smoothing: RwSignal<f64>) -> impl IntoView {
    let shown = RwSignal::new(smoothing.get_untracked());
    Effect::new(move |_| shown.set(smoothing.get()));
    view! {
        <label class="toggle" title="s">
            "smoothing"
            <input
                type="range"
                id="smoothing"
                min="0"
                max="0.999"
                step="0.001"
                value=smoothing.get_untracked().to_string()
                prop:value=move || shown.get().to_string()
                on:input=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse() {
                        shown.set(v);
                    }
                }
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).parse::<f64>() {
                        let v = v.clamp(0.0, crate::analysis::smoothing::MAX_WEIGHT);
                        smoothing.set(v);
                        // A link copied now opens at this weight.
                        crate::components::keep_in_address("smoothing", &v.to_string());
                    }
                }
            />
            <output for="smoothing">{move || format!("{:.3}", shown.get())}</output>
        </label>
    }
}

/// Whether a key pressed is a command to the page: not typed into a field, not a shortcut.
#[cfg(feature = "hydrate")]
pub fn page_command(ev: &web_sys::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    let typing = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
    !(typing || ev.ctrl_key() || ev.meta_key() || ev.alt_key())
}

/// `s` pressed: the smoothing slider takes the keyboard, when the page has one.
#[cfg(feature = "hydrate")]
pub fn focus_smoothing(ev: &web_sys::KeyboardEvent) {
    use wasm_bindgen::JsCast;
    if let Some(slider) = document()
        .get_element_by_id("smoothing")
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        ev.prevent_default();
        let _ = slider.focus();
    }
}

/// The log-scale switch every time-series chart of the page follows (`l` toggles it too).
#[component]
pub fn LogScaleToggle() -> impl IntoView {
    let shared = use_context::<SharedView>().unwrap_or_default();
    view! {
        <label class="toggle" title="l">
            <input
                type="checkbox"
                id="log-scale"
                prop:checked=move || shared.log_y.get()
                on:change=move |ev| shared.log_y.set(event_target_checked(&ev))
            />
            "log scale"
        </label>
    }
}

#[cfg(test)]
mod tests {
    use super::when;
    use crate::charts::spec::nearest;
    use crate::model::ClockMark;

    #[test]
    fn the_tooltip_says_when_a_step_was_logged_and_the_tokens_by_then() {
        let clock = [
            ClockMark {
                step: 0,
                time: Some(1_767_970_053.0),
                tokens: Some(0.0),
            },
            ClockMark {
                step: 1000,
                time: Some(1_767_973_653.0),
                tokens: Some(2.0e9),
            },
        ];
        assert_eq!(
            when(&clock, 1000).as_deref(),
            Some("2026-01-09 15:47:33 UTC · 1h 0m in · 2.00B tokens")
        );
        assert_eq!(
            when(&clock, 500).as_deref(),
            Some("≈ 2026-01-09 15:17:33 UTC · 30m 0s in · 1.00B tokens"),
            "read between marks, and said so"
        );
        assert_eq!(when(&[], 5), None);
    }

    #[test]
    fn nearest_finds_the_closest_point_either_side() {
        let pts = vec![(0, 1.0), (10, 2.0), (20, 3.0)];
        assert_eq!(nearest(&pts, 4), Some((0, 1.0)));
        assert_eq!(nearest(&pts, 6), Some((10, 2.0)));
        assert_eq!(
            nearest(&pts, 15),
            Some((10, 2.0)),
            "ties go to the earlier point"
        );
        assert_eq!(nearest(&pts, -100), Some((0, 1.0)));
        assert_eq!(nearest(&pts, 1000), Some((20, 3.0)));
        assert_eq!(nearest(&Vec::new(), 5), None);
    }
}
