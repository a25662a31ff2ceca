//! Shared data types: what the store reads, the REST API sends and the page shows.
//!
//! Field names are the trainer's column names (`spec/training-db.md`), so the JSON stays
//! compatible with the seed's API and with scripts written against it. This module does no
//! I/O and compiles for the browser as well as the server.
//!
//! Split by subject; everything is re-exported here, so `use crate::model::*` reaches it all.

mod alerts;
mod answers;
mod charts;
mod compare;
mod dashboard;
mod live;
pub mod python_json;
mod routing;
mod run;
mod share;
mod step;

pub use alerts::*;
pub use answers::*;
pub use charts::*;
pub use compare::*;
pub use dashboard::*;
pub use live::*;
pub use routing::*;
pub use run::*;
pub use share::*;
pub use step::*;
