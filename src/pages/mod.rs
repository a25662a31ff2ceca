//! Whole pages, one per route.

pub mod compare;
pub mod dashboard;
pub mod runs;
#[cfg(feature = "ssr")]
pub mod snapshot;

use leptos::prelude::ServerFnError;

/// The message a person should read, without the framework's wrapping.
pub(crate) fn server_message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => other.to_string(),
    }
}
