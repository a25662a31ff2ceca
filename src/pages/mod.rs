//! Whole pages, one per route.

pub mod dashboard;
