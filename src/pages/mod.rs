//! Whole pages, one per route.

pub mod dashboard;
#[cfg(feature = "ssr")]
pub mod snapshot;
