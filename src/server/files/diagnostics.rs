//! The trainer's diagnostics file (`checkpoints/diagnostics_{run_id}.json`): a JSON list of
//! records, one every 100 steps, rewritten whole every 500 steps, not atomically — a reader
//! can find it empty or cut anywhere. Written by Python's `json.dump`, so non-finite floats
//! are the bare tokens `NaN`, `Infinity`, `-Infinity`. Pure: bytes in, records out.
//!
//! [`split_records`] finds where each complete record lies without parsing it (a scan that
//! tracks strings and nesting), so a reader can parse only the records it has not seen yet
//! and stop cleanly at a record cut short. [`Record`] reads one record leniently: a missing
//! key, a `null`, a value of the wrong type is "not recorded", never an error.

use crate::model::python_json::to_strict;
use crate::model::{AdaptiveLr, RoutingMod, RoutingMoe, RoutingMor, Step};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Where complete records lie in a piece of the file.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    /// Byte ranges of the records, each a whole `{…}`.
    pub records: Vec<(usize, usize)>,
    /// Where the last complete record ends (0 when none): what was read for sure.
    pub end: usize,
    /// The list's closing `]` was seen: the file was complete when read.
    pub closed: bool,
}

/// Splits `text` into records. `text` is the whole file (it starts with `[`) when `inside`
/// is false, or what follows a record already read (`,` and more records, or `]`) when true.
pub fn split_records(text: &[u8], inside: bool) -> Split {
    let mut split = Split::default();
    let mut depth: usize = usize::from(inside);
    let (mut in_string, mut escaped, mut start) = (false, false, 0);
    for (i, &b) in text.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth == 2 && b == b'{' {
                    start = i;
                }
            }
            b'}' | b']' => {
                if depth == 0 {
                    // More closing than opening: not a list of records.
                    return split;
                }
                depth -= 1;
                if depth == 1 && b == b'}' {
                    split.records.push((start, i + 1));
                    split.end = i + 1;
                } else if depth == 0 {
                    split.closed = true;
                    return split;
                }
            }
            _ => {}
        }
    }
    split
}

/// One record, as far as the dashboard uses it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Record {
    #[serde(deserialize_with = "int")]
    pub step: Option<i64>,
    #[serde(deserialize_with = "text")]
    pub timestamp: Option<String>,
    #[serde(deserialize_with = "object")]
    pub losses: Losses,
    #[serde(deserialize_with = "num")]
    pub lr: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub grad_norm: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub grad_norm_pre_clip: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub tokens_per_sec: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub vram_gb: Option<f64>,
    #[serde(deserialize_with = "int")]
    pub batch_size: Option<i64>,
    #[serde(deserialize_with = "int")]
    pub seq_len: Option<i64>,
    #[serde(deserialize_with = "list")]
    pub mod_layers: Vec<ModLayer>,
    #[serde(deserialize_with = "list")]
    pub mor_layers: Vec<MorLayer>,
    #[serde(deserialize_with = "maybe")]
    pub moe: Option<Moe>,
    #[serde(deserialize_with = "maybe")]
    pub adaptive_lr: Option<Adaptive>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Losses {
    #[serde(deserialize_with = "num")]
    pub total: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub ce: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub aux: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub ponder: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub advantage: Option<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ModLayer {
    #[serde(deserialize_with = "int")]
    pub layer: Option<i64>,
    #[serde(deserialize_with = "num")]
    pub selected_frac: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub compute_savings_pct: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub probs_mean: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub probs_std: Option<f64>,
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct MorLayer {
    #[serde(deserialize_with = "int")]
    pub layer: Option<i64>,
    #[serde(deserialize_with = "num")]
    pub avg_depth: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub expected_depth: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub router_probs_mean: Option<f64>,
    /// Tokens per depth (the database drops it).
    #[serde(deserialize_with = "nums")]
    pub depth_histogram: Vec<f64>,
    #[serde(deserialize_with = "text")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Moe {
    #[serde(deserialize_with = "num")]
    pub divergence: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub entropy: Option<f64>,
    #[serde(deserialize_with = "nums")]
    pub utilization_pct: Vec<f64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Adaptive {
    #[serde(deserialize_with = "num")]
    pub loss_ema_short: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub loss_ema_long: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub patience_counter: Option<f64>,
    #[serde(deserialize_with = "num")]
    pub cooldown_triggered: Option<f64>,
}

impl Record {
    /// One record's bytes (a whole `{…}` as [`split_records`] found it), or `None` when it
    /// is not a record with a step.
    pub fn parse(bytes: &[u8]) -> Option<Record> {
        let text = std::str::from_utf8(bytes).ok()?;
        if !text.trim_start().starts_with('{') {
            return None;
        }
        let record: Record = serde_json::from_str(&to_strict(text)).ok()?;
        record.step.is_some().then_some(record)
    }

    /// The `steps` row the trainer's loader makes of it (a missing number is 0.0, as the
    /// loader writes it; EMAs are the caller's, computed over the run).
    pub fn step_row(&self, run_id: &str, model_id: &str) -> Step {
        let zero = |v: Option<f64>| Some(v.unwrap_or(0.0));
        Step {
            step: self.step.unwrap_or(0),
            run_id: run_id.into(),
            model_id: model_id.into(),
            timestamp: self.timestamp.clone(),
            loss_total: self.losses.total,
            loss_ce: zero(self.losses.ce),
            loss_aux: zero(self.losses.aux),
            loss_ponder: zero(self.losses.ponder),
            loss_advantage: zero(self.losses.advantage),
            lr: zero(self.lr),
            grad_norm: zero(self.grad_norm),
            grad_norm_pre_clip: zero(self.grad_norm_pre_clip),
            tokens_per_sec: zero(self.tokens_per_sec),
            vram_gb: zero(self.vram_gb),
            batch_size: Some(self.batch_size.unwrap_or(0)),
            seq_len: Some(self.seq_len.unwrap_or(0)),
            ..Default::default()
        }
    }

    pub fn mod_rows(&self, run_id: &str, model_id: &str) -> Vec<RoutingMod> {
        let step = self.step.unwrap_or(0);
        self.mod_layers
            .iter()
            .map(|l| RoutingMod {
                step,
                run_id: run_id.into(),
                model_id: model_id.into(),
                layer: l.layer.unwrap_or(0),
                selected_frac: l.selected_frac,
                compute_savings_pct: l.compute_savings_pct,
                probs_mean: l.probs_mean,
                probs_std: l.probs_std,
                status: l.status.clone(),
            })
            .collect()
    }

    pub fn mor_rows(&self, run_id: &str, model_id: &str) -> Vec<RoutingMor> {
        let step = self.step.unwrap_or(0);
        self.mor_layers
            .iter()
            .map(|l| RoutingMor {
                step,
                run_id: run_id.into(),
                model_id: model_id.into(),
                layer: l.layer.unwrap_or(0),
                avg_depth: l.avg_depth,
                expected_depth: l.expected_depth,
                router_probs_mean: l.router_probs_mean,
                status: l.status.clone(),
                depth_histogram: (!l.depth_histogram.is_empty()).then(|| l.depth_histogram.clone()),
            })
            .collect()
    }

    /// The MoE row, as the loader writes it for every record that has a `moe` summary
    /// (all zeros without MoE: `analysis::routing::no_moe` knows them).
    pub fn moe_row(&self, run_id: &str, model_id: &str) -> Option<RoutingMoe> {
        let moe = self.moe.as_ref()?;
        let util = |i: usize| Some(moe.utilization_pct.get(i).copied().unwrap_or(0.0));
        Some(RoutingMoe {
            step: self.step.unwrap_or(0),
            run_id: run_id.into(),
            model_id: model_id.into(),
            entropy: Some(moe.entropy.unwrap_or(0.0)),
            divergence: Some(moe.divergence.unwrap_or(0.0)),
            util_expert_0: util(0),
            util_expert_1: util(1),
            util_expert_2: util(2),
            util_expert_3: util(3),
        })
    }

    pub fn adaptive_lr_row(&self) -> Option<AdaptiveLr> {
        let a = self.adaptive_lr.as_ref()?;
        Some(AdaptiveLr {
            step: self.step.unwrap_or(0),
            loss_ema_short: Some(a.loss_ema_short.unwrap_or(0.0)),
            loss_ema_long: Some(a.loss_ema_long.unwrap_or(0.0)),
            patience_counter: Some(a.patience_counter.unwrap_or(0.0) as i64),
            cooldown_triggered: Some(i64::from(a.cooldown_triggered.is_some_and(|c| c != 0.0))),
        })
    }
}

/// Any JSON value as a number when it is one: a number, or a string the Python tokens
/// became (`"NaN"`, `"Infinity"`, `"-Infinity"`, see `to_strict`); `true`/`false` as 1/0;
/// anything else is not recorded.
struct Lenient;

impl<'de> Visitor<'de> for Lenient {
    type Value = Option<f64>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(f64::from(u8::from(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.parse().ok())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

fn num<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    d.deserialize_any(Lenient)
}

fn int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(num(d)?
        .filter(|v| v.is_finite() && v.abs() < 9e15)
        .map(|v| v as i64))
}

/// A list of numbers (a missing or odd entry is 0.0, as the loader would write it).
fn nums<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| v.deserialize_any(Lenient).ok().flatten().unwrap_or(0.0))
            .collect(),
        _ => Vec::new(),
    })
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

/// A list of objects, each read leniently; anything but a list is none.
fn list<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter(serde_json::Value::is_object)
            .filter_map(|v| T::deserialize(v).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// An object read leniently; `null` or anything else is none.
fn maybe<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        v @ serde_json::Value::Object(_) => T::deserialize(v).ok(),
        _ => None,
    })
}

/// An object read leniently; anything else is the default.
fn object<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(maybe(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"[
  {
    "step": 100,
    "timestamp": "2026-01-09T17:28:53.123456",
    "losses": {"total": 3.5, "ce": 3.4, "aux": 0.01},
    "lr": 1e-4, "grad_norm": 0.5, "grad_norm_pre_clip": 0.7, "tokens_per_sec": 41000.5,
    "vram_gb": 31.2, "batch_size": 8, "seq_len": 2048,
    "mod_layers": [{"layer": 0, "selected_frac": 1.0, "status": "DISABLED_PRE_ENABLE"}],
    "mor_layers": [{"layer": 0, "avg_depth": 2.1, "depth_histogram": [10, 60, 30], "status": "OK"}],
    "moe": {"divergence": 0.0, "entropy": 0.0, "utilization_pct": []},
    "adaptive_lr": {"loss_ema_short": 3.5, "loss_ema_long": 3.6, "cooldown_triggered": false, "patience_counter": 2}
  },
  {
    "step": 200,
    "timestamp": "2026-01-09T17:30:13.5",
    "losses": {"total": NaN, "ce": Infinity, "note": "a \"}\" in a string ]"},
    "lr": -Infinity,
    "moe": null
  }
]"#;

    #[test]
    fn records_are_found_whole_strings_and_nesting_aside() {
        let split = split_records(FILE.as_bytes(), false);
        assert_eq!(split.records.len(), 2);
        assert!(split.closed);
        assert_eq!(split.end, FILE.rfind('}').unwrap() + 1);
        let first = Record::parse(&FILE.as_bytes()[split.records[0].0..split.records[0].1]);
        let first = first.expect("a record");
        assert_eq!(first.step, Some(100));
        assert_eq!(first.mor_layers[0].depth_histogram, vec![10.0, 60.0, 30.0]);
        let row = first.step_row("500m_x", "500m");
        assert_eq!(
            (row.loss_total, row.vram_gb, row.seq_len),
            (Some(3.5), Some(31.2), Some(2048))
        );
        assert_eq!(
            row.loss_ponder,
            Some(0.0),
            "missing is 0.0, as the loader writes it"
        );
        let moe = first.moe_row("r", "m").unwrap();
        assert_eq!(
            moe.util_expert_0,
            Some(0.0),
            "no MoE: the loader's all-zero row"
        );
        assert_eq!(first.adaptive_lr_row().unwrap().patience_counter, Some(2));
        assert_eq!(
            first.mod_rows("r", "m")[0].status.as_deref(),
            Some("DISABLED_PRE_ENABLE")
        );
    }

    #[test]
    fn pythons_non_finite_tokens_are_values() {
        let split = split_records(FILE.as_bytes(), false);
        let (a, b) = split.records[1];
        let second = Record::parse(&FILE.as_bytes()[a..b]).unwrap();
        assert!(second.losses.total.unwrap().is_nan());
        assert_eq!(second.losses.ce, Some(f64::INFINITY));
        assert_eq!(second.lr, Some(f64::NEG_INFINITY));
        assert!(second.moe.is_none() && second.moe_row("r", "m").is_none());
        assert!(second.mod_layers.is_empty());
    }

    #[test]
    fn a_file_cut_anywhere_gives_the_records_before_the_cut() {
        let whole = split_records(FILE.as_bytes(), false);
        for cut in 0..FILE.len() {
            let split = split_records(&FILE.as_bytes()[..cut], false);
            let expected = whole.records.iter().filter(|r| r.1 <= cut).count();
            assert_eq!(split.records.len(), expected, "cut at {cut}");
            assert!(!split.closed || cut == FILE.len());
        }
        assert_eq!(split_records(b"", false), Split::default());
    }

    #[test]
    fn the_tail_after_a_known_record_is_read_on_its_own() {
        let whole = split_records(FILE.as_bytes(), false);
        let after_first = whole.records[0].1;
        let tail = split_records(&FILE.as_bytes()[after_first..], true);
        assert_eq!(tail.records.len(), 1);
        assert!(tail.closed);
        assert_eq!(tail.records[0].0 + after_first, whole.records[1].0);
    }

    #[test]
    fn odd_values_are_not_recorded_and_nothing_panics() {
        for text in [
            r#"{"step": "x"}"#,
            r#"{"step": 5, "lr": "fast", "losses": [1, 2], "mod_layers": {"a": 1}}"#,
            r#"{"step": 5, "mor_layers": [{"layer": "L0"}, 7], "moe": [1]}"#,
            r#"{"step": 1e300}"#,
            r#"[1, 2]"#,
            "{\"step\": 5, \"timestamp\": 12}",
            "\u{0}\u{1}{",
        ] {
            let r = Record::parse(text.as_bytes());
            if let Some(r) = r {
                assert_eq!(r.step, Some(5), "{text}");
                assert!(r.lr.is_none() && r.losses.total.is_none());
            }
        }
        assert!(Record::parse(br#"{"step": "x"}"#).is_none());
        let r = Record::parse(br#"{"step": 5, "mor_layers": [{"layer": "L0"}, 7]}"#).unwrap();
        assert_eq!(
            r.mor_layers.len(),
            1,
            "the object is read, the 7 is not a layer"
        );
    }
}
