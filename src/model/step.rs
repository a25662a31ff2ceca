//! One logged step and its metrics.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a metric has no number: JSON cannot carry NaN or ±Inf, so the API sends `null` and
/// names the cause here, letting charts mark the step where training diverged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NonFinite {
    #[serde(rename = "nan")]
    Nan,
    #[serde(rename = "inf")]
    Inf,
    #[serde(rename = "-inf")]
    NegInf,
}

impl NonFinite {
    /// What kind of non-number `v` is; `None` for a real number.
    pub fn of(v: f64) -> Option<Self> {
        if v.is_nan() {
            Some(Self::Nan)
        } else if v == f64::INFINITY {
            Some(Self::Inf)
        } else if v == f64::NEG_INFINITY {
            Some(Self::NegInf)
        } else {
            None
        }
    }
}

/// One logged optimizer step: a `steps` row, every column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
    pub timestamp: Option<String>,
    pub loss_total: Option<f64>,
    pub loss_ce: Option<f64>,
    pub loss_aux: Option<f64>,
    pub loss_ponder: Option<f64>,
    pub loss_advantage: Option<f64>,
    pub lr: Option<f64>,
    pub grad_norm: Option<f64>,
    pub grad_norm_pre_clip: Option<f64>,
    pub ema_short: Option<f64>,
    pub ema_medium: Option<f64>,
    pub ema_long: Option<f64>,
    /// The four newest columns are absent from old files; then the key is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_gb: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_len: Option<i64>,
    /// Metrics whose stored value was NaN or ±Inf (sent as `null`). Absent when none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub nonfinite: BTreeMap<String, NonFinite>,
}

impl Step {
    /// The real-valued metrics by column name, in table order (that of [`Metric::ALL`]).
    pub fn metrics(&self) -> [(&'static str, Option<f64>); Metric::COUNT] {
        Metric::ALL.map(|m| (m.name(), m.of(self)))
    }

    /// Fills `nonfinite` from the values as read. SQLite stores a NaN as NULL, and the
    /// trainer always writes a loss, so a NULL `loss_total` means the loss was NaN; other
    /// NULL columns are just unrecorded.
    pub fn mark_nonfinite(&mut self) {
        let mut marks = BTreeMap::new();
        if self.loss_total.is_none() {
            marks.insert("loss_total".to_string(), NonFinite::Nan);
        }
        for (name, value) in self.metrics() {
            if let Some(kind) = value.and_then(NonFinite::of) {
                marks.insert(name.to_string(), kind);
            }
        }
        self.nonfinite = marks;
    }

    /// The loss if it is a real number.
    pub fn finite_loss(&self) -> Option<f64> {
        self.loss_total.filter(|v| v.is_finite())
    }
}

/// A step's real-valued metrics: the `steps` columns that hold numbers, in table order.
/// The one list the database columns, the decoders, the run cache, the CSV export and the
/// API's `metrics=` are derived from; the column name is also the API's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    LossTotal,
    LossCe,
    LossAux,
    LossPonder,
    LossAdvantage,
    Lr,
    GradNorm,
    GradNormPreClip,
    EmaShort,
    EmaMedium,
    EmaLong,
    TokensPerSec,
    VramGb,
}

impl Metric {
    pub const COUNT: usize = 13;

    /// Every metric, in table order; `m as usize` is `m`'s place here.
    pub const ALL: [Metric; Metric::COUNT] = [
        Metric::LossTotal,
        Metric::LossCe,
        Metric::LossAux,
        Metric::LossPonder,
        Metric::LossAdvantage,
        Metric::Lr,
        Metric::GradNorm,
        Metric::GradNormPreClip,
        Metric::EmaShort,
        Metric::EmaMedium,
        Metric::EmaLong,
        Metric::TokensPerSec,
        Metric::VramGb,
    ];

    /// The metrics the run cache keeps at full resolution with a min/max pyramid each, for
    /// the charts; their place here is the cache's column index.
    pub const CACHED: [Metric; 7] = [
        Metric::LossTotal,
        Metric::EmaShort,
        Metric::EmaMedium,
        Metric::EmaLong,
        Metric::Lr,
        Metric::GradNorm,
        Metric::GradNormPreClip,
    ];

    /// The metrics the run cache reads: the cached ones, and what the stats cards and
    /// gauges take from the newest rows.
    pub const FOR_RUN_CACHE: [Metric; 9] = [
        Metric::LossTotal,
        Metric::EmaShort,
        Metric::EmaMedium,
        Metric::EmaLong,
        Metric::Lr,
        Metric::GradNorm,
        Metric::GradNormPreClip,
        Metric::TokensPerSec,
        Metric::VramGb,
    ];

    /// The column's name in `steps`, and the metric's name in the API.
    pub const fn name(self) -> &'static str {
        match self {
            Metric::LossTotal => "loss_total",
            Metric::LossCe => "loss_ce",
            Metric::LossAux => "loss_aux",
            Metric::LossPonder => "loss_ponder",
            Metric::LossAdvantage => "loss_advantage",
            Metric::Lr => "lr",
            Metric::GradNorm => "grad_norm",
            Metric::GradNormPreClip => "grad_norm_pre_clip",
            Metric::EmaShort => "ema_short",
            Metric::EmaMedium => "ema_medium",
            Metric::EmaLong => "ema_long",
            Metric::TokensPerSec => "tokens_per_sec",
            Metric::VramGb => "vram_gb",
        }
    }

    /// The metric called `name`, if there is one.
    pub fn parse(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Where the run cache keeps this metric's column, if it does.
    pub fn cached(self) -> Option<usize> {
        Metric::CACHED.iter().position(|m| *m == self)
    }

    /// This metric of `step`.
    pub fn of(self, s: &Step) -> Option<f64> {
        match self {
            Metric::LossTotal => s.loss_total,
            Metric::LossCe => s.loss_ce,
            Metric::LossAux => s.loss_aux,
            Metric::LossPonder => s.loss_ponder,
            Metric::LossAdvantage => s.loss_advantage,
            Metric::Lr => s.lr,
            Metric::GradNorm => s.grad_norm,
            Metric::GradNormPreClip => s.grad_norm_pre_clip,
            Metric::EmaShort => s.ema_short,
            Metric::EmaMedium => s.ema_medium,
            Metric::EmaLong => s.ema_long,
            Metric::TokensPerSec => s.tokens_per_sec,
            Metric::VramGb => s.vram_gb,
        }
    }

    /// Sets this metric of `step`.
    pub fn set(self, step: &mut Step, value: Option<f64>) {
        *self.field(step) = value;
    }

    fn field(self, s: &mut Step) -> &mut Option<f64> {
        match self {
            Metric::LossTotal => &mut s.loss_total,
            Metric::LossCe => &mut s.loss_ce,
            Metric::LossAux => &mut s.loss_aux,
            Metric::LossPonder => &mut s.loss_ponder,
            Metric::LossAdvantage => &mut s.loss_advantage,
            Metric::Lr => &mut s.lr,
            Metric::GradNorm => &mut s.grad_norm,
            Metric::GradNormPreClip => &mut s.grad_norm_pre_clip,
            Metric::EmaShort => &mut s.ema_short,
            Metric::EmaMedium => &mut s.ema_medium,
            Metric::EmaLong => &mut s.ema_long,
            Metric::TokensPerSec => &mut s.tokens_per_sec,
            Metric::VramGb => &mut s.vram_gb,
        }
    }
}

/// The metric columns a client may ask for by name (`metrics=`), in table order.
pub const METRICS: [&str; Metric::COUNT] = {
    let mut names = [""; Metric::COUNT];
    let mut i = 0;
    while i < Metric::COUNT {
        names[i] = Metric::ALL[i].name();
        i += 1;
    }
    names
};

/// Where the metric `name` stands in [`METRICS`] and [`Step::metrics`]: resolved once for a
/// read, so each row is indexed rather than searched by name.
pub fn metric_position(name: &str) -> Option<usize> {
    Metric::parse(name).map(|m| m as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order every list was kept in by hand before they were derived from [`Metric`]:
    /// the API's `metrics=`, `Step::metrics`, the run cache's columns.
    #[test]
    fn metric_lists_keep_their_order() {
        let table = [
            "loss_total",
            "loss_ce",
            "loss_aux",
            "loss_ponder",
            "loss_advantage",
            "lr",
            "grad_norm",
            "grad_norm_pre_clip",
            "ema_short",
            "ema_medium",
            "ema_long",
            "tokens_per_sec",
            "vram_gb",
        ];
        assert_eq!(METRICS, table);
        let step = Step::default();
        assert_eq!(step.metrics().map(|(name, _)| name), table);
        let cached = [
            "loss_total",
            "ema_short",
            "ema_medium",
            "ema_long",
            "lr",
            "grad_norm",
            "grad_norm_pre_clip",
        ];
        assert_eq!(Metric::CACHED.map(Metric::name), cached);
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(m as usize, i);
            assert_eq!(metric_position(m.name()), Some(i));
            assert_eq!(Metric::parse(m.name()), Some(m));
        }
        assert_eq!(Metric::parse("timestamp"), None);
    }

    #[test]
    fn each_metric_reads_and_writes_its_own_field() {
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            let mut s = Step::default();
            m.set(&mut s, Some(i as f64 + 0.5));
            let values = s.metrics();
            for (j, (_, v)) in values.iter().enumerate() {
                assert_eq!(*v, (i == j).then_some(i as f64 + 0.5), "{m:?}");
            }
            assert_eq!(m.of(&s), Some(i as f64 + 0.5));
        }
    }
}
