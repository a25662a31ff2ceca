//! Shared snapshots: what is asked to be frozen and the links it gets.

use serde::{Deserialize, Serialize};

/// `POST /api/snapshots`: which view of which run to freeze. Every field is optional: an
/// empty request freezes the newest run, whole, on a linear scale.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    #[serde(default)]
    pub run_id: Option<String>,
    /// The zoom: only steps from `start_step` to `end_step`.
    #[serde(default)]
    pub start_step: Option<i64>,
    #[serde(default)]
    pub end_step: Option<i64>,
    #[serde(default)]
    pub log_scale: bool,
}

impl ShareRequest {
    /// The step range asked for, if any; an end below the start is a mistake.
    pub fn step_range(&self) -> Result<Option<(i64, i64)>, String> {
        step_range(self.start_step, self.end_step)
    }
}

/// Steps `start..=end` as asked (either end may be open), `None` when neither is given; an
/// end below the start is the asker's mistake, said the same way by every endpoint.
pub fn step_range(start: Option<i64>, end: Option<i64>) -> Result<Option<(i64, i64)>, String> {
    match (start, end) {
        (None, None) => Ok(None),
        (a, b) => {
            let (a, b) = (a.unwrap_or(i64::MIN), b.unwrap_or(i64::MAX));
            if a > b {
                Err(format!("must not be below start_step ({b} < {a})"))
            } else {
                Ok(Some((a, b)))
            }
        }
    }
}

/// A shared snapshot's addresses, relative to the dashboard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SharedLink {
    pub id: String,
    /// `/s/{id}`: the page.
    pub url: String,
    /// `/s/{id}.png`: its loss chart, the link preview.
    pub image_url: String,
}

impl SharedLink {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            url: format!("/s/{id}"),
            image_url: format!("/s/{id}.png"),
        }
    }
}
