//! hydra-dashboard: a real-time dashboard for HYDRA LLM training runs.
//!
//! `model` and `analysis` are shared by server and browser; `app`, `pages` and
//! `components` render on both; `server` (sources, HTTP, demo trainer) and `site` (the
//! router that puts server and pages together) exist only in the `ssr` build. Layers point
//! one way: `model` ← `analysis` ← `charts` ← `components` ← `pages`, and `server` uses
//! `model`, `analysis` and `charts`, never `components` or `pages` (docs/architecture.md).

// Leptos views are deeply nested types; the dashboard's outgrow the default limit.
#![recursion_limit = "256"]

pub mod analysis;
pub mod api;
pub mod app;
pub mod charts;
pub mod components;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod site;

/// Browser entry point: attaches to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // A marker for browser tests and scripts: the page is interactive from here on.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
