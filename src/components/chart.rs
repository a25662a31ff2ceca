//! Hosts one chart. The server renders it as SVG, so the page shows it before the WASM
//! loads and without JavaScript; once hydrated, the same `draw` paints a canvas of the same
//! size in its place, so nothing jumps. The charts' interaction lives on the canvas.

use crate::charts::{gauges, grad, loss, lr, mod_heatmap, moe, mor_depth, theme::DARK, DrawResult};
use crate::model::{Gauges, RoutingCharts, RunCharts};
use leptos::prelude::*;
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

/// A chart and the data it draws.
#[derive(Clone, Debug, PartialEq)]
pub enum ChartSpec {
    Loss(RunCharts),
    LearningRate(RunCharts),
    GradNorm(RunCharts),
    ModHeatmap(RoutingCharts),
    MorDepth(RoutingCharts),
    Moe(RoutingCharts),
    Gauges(Gauges),
}

impl ChartSpec {
    /// Drawing size in pixels; CSS scales it to the panel, keeping the aspect ratio.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Self::Loss(_) => (1200, 320),
            _ => (600, 260),
        }
    }

    pub fn id(&self) -> &'static str {
        match self {
            Self::Loss(_) => "loss",
            Self::LearningRate(_) => "lr",
            Self::GradNorm(_) => "grad",
            Self::ModHeatmap(_) => "mod",
            Self::MorDepth(_) => "mor",
            Self::Moe(_) => "moe",
            Self::Gauges(_) => "gauges",
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        match self {
            Self::Loss(d) => loss::draw(root, d, &DARK),
            Self::LearningRate(d) => lr::draw(root, d, &DARK),
            Self::GradNorm(d) => grad::draw(root, d, &DARK),
            Self::ModHeatmap(d) => mod_heatmap::draw(root, d, &DARK),
            Self::MorDepth(d) => mor_depth::draw(root, d, &DARK),
            Self::Moe(d) => moe::draw(root, d, &DARK),
            Self::Gauges(d) => gauges::draw(root, d, &DARK),
        }
    }
}

#[component]
pub fn Chart(spec: ChartSpec) -> impl IntoView {
    let (width, height) = spec.size();
    let id = spec.id();
    // Only the server draws SVG; in the browser the canvas below takes over.
    #[cfg(feature = "ssr")]
    let svg = crate::charts::to_svg(width, height, |root| spec.draw(root));
    #[cfg(not(feature = "ssr"))]
    let svg = String::new();
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let live = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use plotters::prelude::IntoDrawingArea;
        let Some(element) = canvas.get() else { return };
        let Some(backend) = plotters_canvas::CanvasBackend::with_canvas_object(element) else {
            return;
        };
        let root = backend.into_drawing_area();
        match spec.draw(&root) {
            Ok(()) => live.set(true),
            Err(e) => leptos::logging::warn!("{id} chart: {e}"),
        }
    });
    view! {
        <div class="chart" class:live=move || live.get() data-chart=id>
            <div class="chart-svg" inner_html=svg></div>
            <canvas class="chart-canvas" width=width height=height node_ref=canvas></canvas>
        </div>
    }
}
