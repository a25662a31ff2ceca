//! Parts of the dashboard page. Each renders on the server and hydrates in the browser.

pub mod alerts;
pub mod cards;
pub mod chart;
pub mod header;
pub mod live;
pub mod panels;
pub mod share;
pub mod sidebar;
pub mod steps_table;

/// In the page's context when it is rendered as a file that opens on its own (`hydra-dashboard
/// snapshot`): no link may lead back to a server that is not there.
#[derive(Clone, Copy, Debug)]
pub struct Standalone;

/// In the page's context when it is a frozen snapshot (`/s/{id}` or a file): nothing live.
#[derive(Clone, Copy, Debug)]
pub struct Frozen;

/// Whether the page is frozen: a shared snapshot or a standalone file.
pub fn frozen() -> bool {
    leptos::prelude::use_context::<Frozen>().is_some() || standalone()
}

/// The browser's clock, in milliseconds since the epoch (0 on the server, which never waits
/// on it).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return web_sys::js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

/// Whether the page is being rendered as a standalone file.
pub fn standalone() -> bool {
    leptos::prelude::use_context::<Standalone>().is_some()
}
