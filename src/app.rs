//! The HTML shell and the router. Pages live in `pages/`, their parts in `components/`.

use crate::pages::compare::ComparePage;
use crate::pages::dashboard::DashboardPage;
use crate::pages::runs::RunsPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="dark"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page's Content-Security-Policy: scripts only from this site or carrying this
/// response's nonce (Leptos puts it on its hydration and data scripts), WebAssembly allowed,
/// nothing from other sites, no framing. An injected `<script>` does not run.
#[cfg(feature = "ssr")]
fn page_policy() {
    use axum::http::{header, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // The live feed tells the header's bell of every alert through this.
    provide_context(crate::components::alerts::AlertPulse(RwSignal::new(0)));
    view! {
        <Stylesheet id="leptos" href="/pkg/hydra-dashboard.css"/>
        <Title text="HYDRA training dashboard"/>
        <Router>
            <Routes fallback=NotFound>
                // Async: the page arrives complete, real data in the HTML, readable without
                // JavaScript; hydration then takes over.
                <Route path=path!("/") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/run/*run_id") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/model/*model_id") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/runs") view=RunsPage ssr=SsrMode::Async/>
                <Route path=path!("/compare") view=ComparePage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <div class="empty-state">
            <h1>"Not found"</h1>
            <p>"There is no page here. " <a href="/">"Back to the dashboard"</a></p>
        </div>
    }
}
