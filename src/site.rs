//! The whole site for the server: the REST API, the live feed, server functions, the pages
//! rendered on the server and the site's files, behind access control and the security
//! headers. Here `server` (data, HTTP) and the pages meet; neither imports the other.

use crate::app::{shell, App};
use crate::server::{self, AppState, MAX_BODY_BYTES};
use axum::routing::get;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};

/// The whole application: REST API, server functions, SSR pages and the site's files.
pub fn router(state: AppState) -> Router {
    let store = state.store.clone();
    let gauges = state.gauges.clone();
    let shares = state.shares.clone();
    let alerts = state.alerts.clone();
    let options = state.leptos_options.clone();
    Router::new()
        .merge(server::share::routes())
        .route("/s/{file}", get(crate::pages::snapshot::shared_snapshot))
        .merge(server::export::routes())
        .merge(server::rest::routes())
        .route("/ws/{run_id}", axum::routing::get(server::live::ws_handler))
        .leptos_routes_with_context(
            &state,
            generate_route_list(App),
            move || {
                provide_context(store.clone());
                provide_context(gauges.clone());
                provide_context(shares.clone());
                provide_context(alerts.clone());
            },
            move || shell(options.clone()),
        )
        .fallback(server::site_file)
        .layer(axum::middleware::from_fn_with_state(
            state.access.clone(),
            server::auth::guard,
        ))
        // Nothing this dashboard takes needs more: a server function's arguments or a share
        // request are a few hundred bytes.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ))
        .layer(axum::middleware::map_response(server::security_headers))
        // Compressed with gzip when the client accepts it: people watch training through
        // SSH tunnels, and chart data shrinks about fourfold. Measured on the 1M-step loss
        // series (docs/performance.md): gzip at its fastest level gives 27 KB of 95 KB for
        // about 1 ms; brotli at the same speed gives 32 KB, and at level 4 (24 KB) triples
        // the cost. The site's files come precompressed, brotli included (they carry their
        // encoding and are left alone); a WebSocket upgrade has no body.
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::compression::CompressionLevel::Fastest),
        )
        .with_state(state)
}
