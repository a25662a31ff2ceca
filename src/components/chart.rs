//! Hosts one chart. The server renders it as SVG, so the page shows it before the WASM
//! loads and without JavaScript; once hydrated, the same `draw` paints a canvas of the same
//! size in its place, so nothing jumps. The charts' interaction lives on the canvas.

use crate::charts::{grad, loss, lr, theme::DARK, DrawResult};
use crate::model::RunCharts;
use leptos::prelude::*;
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    Loss,
    LearningRate,
    GradNorm,
}

impl ChartKind {
    /// Drawing size in pixels; CSS scales it to the panel, keeping the aspect ratio.
    pub fn size(self) -> (u32, u32) {
        match self {
            Self::Loss => (1200, 320),
            Self::LearningRate | Self::GradNorm => (600, 260),
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Self::Loss => "loss",
            Self::LearningRate => "lr",
            Self::GradNorm => "grad",
        }
    }

    pub fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, Shift>,
        data: &RunCharts,
    ) -> DrawResult<DB> {
        match self {
            Self::Loss => loss::draw(root, data, &DARK),
            Self::LearningRate => lr::draw(root, data, &DARK),
            Self::GradNorm => grad::draw(root, data, &DARK),
        }
    }
}

#[component]
pub fn Chart(kind: ChartKind, data: RunCharts) -> impl IntoView {
    let (width, height) = kind.size();
    // Only the server draws SVG; in the browser the canvas below takes over.
    #[cfg(feature = "ssr")]
    let svg = crate::charts::to_svg(width, height, |root| kind.draw(root, &data));
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
        match kind.draw(&root, &data) {
            Ok(()) => live.set(true),
            Err(e) => leptos::logging::warn!("{} chart: {e}", kind.id()),
        }
    });
    view! {
        <div class="chart" class:live=move || live.get() data-chart=kind.id()>
            <div class="chart-svg" inner_html=svg></div>
            <canvas class="chart-canvas" width=width height=height node_ref=canvas></canvas>
        </div>
    }
}
