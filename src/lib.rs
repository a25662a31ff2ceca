//! hydra-dashboard: a real-time dashboard for HYDRA LLM training runs.
//!
//! `model` and `analysis` are shared by server and browser; `app`, `pages` and
//! `components` render on both; `server` (database, HTTP, demo trainer) exists only in the
//! `ssr` build.

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
