//! Pure analysis: time parsing, run summaries and number formatting.
//!
//! Everything here is deterministic, does no I/O and compiles for the browser; it is tested
//! natively. The store feeds it rows; the page and the API show what it returns.

pub mod format;
pub mod summary;
pub mod time;
