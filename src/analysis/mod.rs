//! Pure analysis: downsampling, EMAs and spikes, time parsing, run summaries, formatting.
//!
//! Everything here is deterministic, does no I/O and compiles for the browser; it is tested
//! natively. The store feeds it rows; the page and the API show what it returns.

pub mod charts;
pub mod downsample;
pub mod format;
pub mod gauges;
pub mod live;
pub mod loss;
pub mod routing;
pub mod run_state;
pub mod series;
pub mod summary;
pub mod time;
