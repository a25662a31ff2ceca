//! Everything that touches the database, HTTP and the network. Server only: the browser
//! build never sees this module, and it knows nothing of pages or components (`crate::site`
//! puts the two together).

pub mod alerts;
pub mod assets;
pub mod auth;
pub mod compare;
pub mod compare_cache;
pub mod demo;
pub mod digest;
pub mod error;
pub mod export;
pub mod files;
pub mod held;
pub mod kept;
pub mod live;
pub mod local_time;
pub mod memory;
pub mod params;
pub mod postgres;
pub mod rest;
pub mod run_cache;
pub mod run_states;
pub mod share;
pub mod snapshot;
pub mod source;
pub mod sources;
pub mod spill;
pub mod sqlite;
pub mod store;
pub mod views;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use leptos::prelude::LeptosOptions;
use store::Store;

/// The largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach: the one store, and Leptos' options for rendering.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub leptos_options: LeptosOptions,
    /// The gauges' thresholds from the command line.
    pub gauges: crate::model::GaugeSettings,
    /// The live feed's watchers.
    pub live: live::Hub,
    /// Shared snapshots, in the dashboard's own state directory.
    pub shares: share::Shares,
    /// The access token and CORS origin, if any.
    pub access: auth::Access,
    /// Every run's alerts, kept current by a watcher (`alerts::Alerts::start`).
    pub alerts: alerts::Alerts,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Options for a binary that runs alone: nothing is read from Cargo.toml at run time.
pub fn leptos_options(addr: std::net::SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("hydra-dashboard")
        .site_root(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()))
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// What to tell someone who made the dashboard reachable beyond this machine: without a
/// token anyone who can reach the address can read the runs; with one, it still travels in
/// clear over plain HTTP.
pub fn exposure_warning(addr: std::net::SocketAddr, has_token: bool) -> Option<String> {
    if addr.ip().is_loopback() {
        return None;
    }
    Some(if has_token {
        format!(
            "listening on {addr} with an access token; plain HTTP carries it in clear, so on \
             an untrusted network put a TLS proxy in front or use an SSH tunnel"
        )
    } else {
        format!(
            "listening on {addr} without --token: anyone who can reach it can read your runs. \
             Set --token (or HYDRA_TOKEN), or keep the default 127.0.0.1 and use an SSH \
             tunnel: ssh -L 8765:127.0.0.1:8765 training-box"
        )
    })
}

/// On every response: no MIME sniffing, no framing by other sites (clickjacking), no
/// referrer leaking run ids to other sites, no plugins or foreign form targets. (A
/// `script-src` policy would need nonces on Leptos' hydration script; not yet.)
pub async fn security_headers(mut response: Response) -> Response {
    use axum::http::header::{self, HeaderValue};
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A handler that knows its page better (a static snapshot) sets a stricter policy.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'",
        ));
    response
}

pub async fn site_file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    assets::serve(uri.path(), &state.leptos_options.site_root, &headers)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_an_address_beyond_loopback_is_warned_about() {
        let warn = |a: &str| super::exposure_warning(a.parse().unwrap(), false);
        assert!(warn("127.0.0.1:8765").is_none());
        assert!(warn("[::1]:8765").is_none());
        assert!(warn("0.0.0.0:8765").unwrap().contains("--token"));
        assert!(warn("192.168.1.7:80").is_some());
        let with_token = super::exposure_warning("0.0.0.0:8765".parse().unwrap(), true);
        assert!(with_token.unwrap().contains("TLS"));
    }
}
