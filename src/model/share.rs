//! Shared snapshots: what is asked to be frozen and the links it gets.

use serde::{Deserialize, Serialize};

/// `POST /api/snapshots`: which view to freeze — one run's dashboard, or with `runs` a
/// comparison as `/compare` shows it. Every field is optional: an empty request freezes the
/// newest run, whole, on a linear scale.
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
    /// A comparison of these runs instead of one run's dashboard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<String>,
    /// The comparison's x axis (default: step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<super::CompareX>,
    /// The comparison's smoothing weight, 0–0.999 (none: raw lines only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoothing: Option<f64>,
    /// The comparison's zoom, in units of `x`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<f64>,
    /// Compared runs switched off in the legend.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<String>,
}

impl ShareRequest {
    /// The step range asked for, if any; an end below the start is a mistake.
    pub fn step_range(&self) -> Result<Option<(i64, i64)>, String> {
        step_range(self.start_step, self.end_step)
    }

    /// Whether a comparison is asked for rather than one run.
    pub fn is_comparison(&self) -> bool {
        !self.runs.is_empty()
    }

    /// The first field that does not belong to the kind of snapshot asked for, and why: a
    /// comparison has no `run_id` and zooms by `start`/`end`; one run has no comparison fields.
    pub fn misplaced(&self) -> Option<(&'static str, &'static str)> {
        if self.is_comparison() {
            let run_fields = [
                ("run_id", self.run_id.is_some()),
                ("start_step", self.start_step.is_some()),
                ("end_step", self.end_step.is_some()),
            ];
            return run_fields
                .into_iter()
                .find(|(_, given)| *given)
                .map(|(name, _)| {
                    (
                        name,
                        "a comparison names its runs in runs and zooms by start and end",
                    )
                });
        }
        let compare_fields = [
            ("x", self.x.is_some()),
            ("smoothing", self.smoothing.is_some()),
            ("start", self.start.is_some()),
            ("end", self.end.is_some()),
            ("hidden", !self.hidden.is_empty()),
        ];
        compare_fields
            .into_iter()
            .find(|(_, given)| *given)
            .map(|(name, _)| (name, "only a comparison (runs) has it"))
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
