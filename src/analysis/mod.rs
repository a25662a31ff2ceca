//! Pure analysis: downsampling, EMAs and spikes, time parsing, run summaries, formatting.
//!
//! Everything here is deterministic, does no I/O and compiles for the browser; it is tested
//! natively. The store feeds it rows; the page and the API show what it returns.

pub mod adaptive_lr;
pub mod alerts;
pub mod charts;
pub mod clock;
pub mod compare_csv;
pub mod compared;
pub mod depth_shares;
pub mod downsample;
pub mod eval;
pub mod format;
pub mod gauges;
pub mod lineage;
pub mod live;
pub mod loss;
pub mod milestones;
#[cfg(test)]
pub mod oracle;
pub mod routing;
pub mod run_state;
pub mod runs_table;
pub mod series;
pub mod smoothing;
pub mod spill;
pub mod summary;
pub mod time;
pub mod training_state;

/// Appends to a vector that may hold millions of values, growing it by an eighth rather than
/// doubling: a run's columns live as long as the dashboard does, and doubling leaves up to
/// half of each unused.
pub(crate) fn push_lean<T>(v: &mut Vec<T>, x: T) {
    if v.len() == v.capacity() {
        v.reserve_exact(v.len() / 8 + 1024);
    }
    v.push(x);
}
