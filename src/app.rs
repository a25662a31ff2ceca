//! The HTML shell and the router. Pages live in `pages/`, their parts in `components/`.

use crate::pages::dashboard::DashboardPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
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

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/hydra-dashboard.css"/>
        <Title text="HYDRA training dashboard"/>
        <Router>
            <Routes fallback=NotFound>
                // Async: the page arrives complete, real data in the HTML, readable without
                // JavaScript; hydration then takes over.
                <Route path=path!("/") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/run/*run_id") view=DashboardPage ssr=SsrMode::Async/>
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
