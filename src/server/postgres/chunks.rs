//! How a run's steps are laid out in PostgreSQL: cut into chunks of about [`CHUNK`]
//! consecutive records, each chunk stored one column at a time as bytes. Pure: no I/O.
//!
//! Why columns: a chart reads one or a few metrics, so a 1M-step loss chart reads ~1,000
//! rows of the loss column, not 1M rows of every column. Why bytes of our own rather than
//! PostgreSQL arrays: a `float8[]` has no NULL-free NaN and costs a header per element on
//! the wire; eight little-endian bytes per value decode at memory speed.
//!
//! A chunk never splits one step's records (routing has one per layer), so re-reading a
//! source from a chunk's first step yields exactly that chunk and what follows.

use crate::model::{Metric, NonFinite, Step};
use std::collections::BTreeMap;

/// Records per chunk (a chunk may run over to finish its last step's records).
pub const CHUNK: usize = 1024;

/// An absent value in an `f64` column. A NaN with a payload no arithmetic produces, so a
/// real NaN (stored as the canonical one) stays a NaN and `None` stays `None`.
const NONE_F64: u64 = 0x7ff4_0000_0000_0d0d;
/// An absent value in an `i64` column.
const NONE_I64: i64 = i64::MIN;

/// Where each chunk of `keys` (the records' steps, in source order) begins: chunk `i` is
/// `starts[i]..starts[i + 1]` (the last runs to the end). Each holds at least [`CHUNK`]
/// records, but the last, and never begins inside a step.
pub fn chunk_starts(keys: &[i64]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut at = 0;
    while at < keys.len() {
        starts.push(at);
        let mut end = (at + CHUNK).min(keys.len());
        while end < keys.len() && keys[end] == keys[end - 1] {
            end += 1;
        }
        at = end;
    }
    starts
}

/// A column of a step chunk, by the name it is stored under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Step,
    Timestamp,
    Metric(Metric),
    BatchSize,
    SeqLen,
    /// Which metrics were NaN or ±Inf where the source only says so (`Step::nonfinite`).
    NonFinite,
}

impl Column {
    /// What every read needs besides the metrics asked for.
    pub const BASE: [Column; 5] = [
        Column::Step,
        Column::Timestamp,
        Column::BatchSize,
        Column::SeqLen,
        Column::NonFinite,
    ];

    pub fn all() -> impl Iterator<Item = Column> {
        Self::BASE
            .into_iter()
            .chain(Metric::ALL.into_iter().map(Column::Metric))
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Timestamp => "timestamp",
            Self::Metric(m) => m.name(),
            Self::BatchSize => "batch_size",
            Self::SeqLen => "seq_len",
            Self::NonFinite => "nonfinite",
        }
    }

    pub fn from_name(name: &str) -> Option<Column> {
        Column::all().find(|c| c.name() == name)
    }
}

/// One column of one chunk, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnChunk {
    pub col: Column,
    /// The finite extremes of a metric column, for reading ranges without decoding.
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub data: Vec<u8>,
}

/// Every column of `steps` (one chunk), encoded.
pub fn encode_steps(steps: &[Step]) -> Vec<ColumnChunk> {
    Column::all().map(|col| encode_column(steps, col)).collect()
}

fn encode_column(steps: &[Step], col: Column) -> ColumnChunk {
    let (mut lo, mut hi) = (None::<f64>, None::<f64>);
    let data = match col {
        Column::Step => ints(steps.iter().map(|s| Some(s.step))),
        Column::BatchSize => ints(steps.iter().map(|s| s.batch_size)),
        Column::SeqLen => ints(steps.iter().map(|s| s.seq_len)),
        Column::Metric(m) => {
            for v in steps
                .iter()
                .filter_map(|s| m.of(s))
                .filter(|v| v.is_finite())
            {
                lo = Some(lo.map_or(v, |l| l.min(v)));
                hi = Some(hi.map_or(v, |h| h.max(v)));
            }
            floats(steps.iter().map(|s| m.of(s)))
        }
        Column::Timestamp => {
            let times: Vec<Option<&str>> = steps.iter().map(|s| s.timestamp.as_deref()).collect();
            serde_json::to_vec(&times).unwrap_or_default()
        }
        Column::NonFinite => {
            let marks: Vec<(usize, &BTreeMap<String, NonFinite>)> = steps
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.nonfinite.is_empty())
                .map(|(i, s)| (i, &s.nonfinite))
                .collect();
            serde_json::to_vec(&marks).unwrap_or_default()
        }
    };
    ColumnChunk { col, lo, hi, data }
}

fn ints(values: impl Iterator<Item = Option<i64>>) -> Vec<u8> {
    values
        .flat_map(|v| v.unwrap_or(NONE_I64).to_le_bytes())
        .collect()
}

fn floats(values: impl Iterator<Item = Option<f64>>) -> Vec<u8> {
    values
        .flat_map(|v| {
            let bits = match v {
                None => NONE_F64,
                Some(x) if x.is_nan() => f64::NAN.to_bits(),
                Some(x) => x.to_bits(),
            };
            bits.to_le_bytes()
        })
        .collect()
}

/// Why stored bytes could not be read back (a chunk written by something else).
#[derive(Debug, PartialEq)]
pub struct Corrupt(pub String);

/// The steps of one chunk from its stored columns (any subset that includes `step`); the
/// columns not given stay `None`. `run_id`/`model_id` are the run's.
pub fn decode_steps(
    columns: &[(Column, &[u8])],
    run_id: &str,
    model_id: &str,
) -> Result<Vec<Step>, Corrupt> {
    let steps_col = columns
        .iter()
        .find(|(c, _)| *c == Column::Step)
        .ok_or_else(|| Corrupt("a chunk without its step column".into()))?;
    let numbers = read_ints(steps_col.1)?;
    let n = numbers.len();
    let mut steps: Vec<Step> = numbers
        .into_iter()
        .map(|step| Step {
            step: step.unwrap_or_default(),
            run_id: run_id.to_string(),
            model_id: model_id.to_string(),
            ..Step::default()
        })
        .collect();
    for &(col, data) in columns {
        match col {
            Column::Step => {}
            Column::BatchSize | Column::SeqLen => {
                let values = read_ints(data)?;
                same_length(col, values.len(), n)?;
                for (s, v) in steps.iter_mut().zip(values) {
                    match col {
                        Column::BatchSize => s.batch_size = v,
                        _ => s.seq_len = v,
                    }
                }
            }
            Column::Metric(m) => {
                let values = read_floats(data)?;
                same_length(col, values.len(), n)?;
                for (s, v) in steps.iter_mut().zip(values) {
                    m.set(s, v);
                }
            }
            Column::Timestamp => {
                let times: Vec<Option<String>> = serde_json::from_slice(data)
                    .map_err(|e| Corrupt(format!("timestamp column: {e}")))?;
                same_length(col, times.len(), n)?;
                for (s, t) in steps.iter_mut().zip(times) {
                    s.timestamp = t;
                }
            }
            Column::NonFinite => {
                let marks: Vec<(usize, BTreeMap<String, NonFinite>)> = serde_json::from_slice(data)
                    .map_err(|e| Corrupt(format!("nonfinite column: {e}")))?;
                for (i, m) in marks {
                    let s = steps
                        .get_mut(i)
                        .ok_or_else(|| Corrupt(format!("nonfinite mark for record {i} of {n}")))?;
                    s.nonfinite = m;
                }
            }
        }
    }
    Ok(steps)
}

fn same_length(col: Column, got: usize, want: usize) -> Result<(), Corrupt> {
    if got == want {
        Ok(())
    } else {
        Err(Corrupt(format!(
            "column {} holds {got} values for {want} steps",
            col.name()
        )))
    }
}

fn words(data: &[u8]) -> Result<impl Iterator<Item = [u8; 8]> + '_, Corrupt> {
    if !data.len().is_multiple_of(8) {
        return Err(Corrupt(format!("{} bytes is not whole values", data.len())));
    }
    Ok(data
        .chunks_exact(8)
        .map(|w| w.try_into().expect("chunks_exact(8) gives 8 bytes")))
}

fn read_ints(data: &[u8]) -> Result<Vec<Option<i64>>, Corrupt> {
    Ok(words(data)?
        .map(i64::from_le_bytes)
        .map(|v| (v != NONE_I64).then_some(v))
        .collect())
}

fn read_floats(data: &[u8]) -> Result<Vec<Option<f64>>, Corrupt> {
    Ok(words(data)?
        .map(u64::from_le_bytes)
        .map(|bits| (bits != NONE_F64).then(|| f64::from_bits(bits)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(n: i64) -> Step {
        Step {
            step: n,
            run_id: "r".into(),
            model_id: "m".into(),
            timestamp: Some(format!("2026-01-09T17:28:{:02}", n % 60)),
            loss_total: Some(10.0 - n as f64 * 0.001),
            lr: Some(3e-4),
            tokens_per_sec: (n % 2 == 0).then_some(1234.5),
            batch_size: Some(8),
            ..Step::default()
        }
    }

    #[test]
    fn steps_come_back_as_they_went_in_nan_inf_and_absent_values_included() {
        let mut steps: Vec<Step> = (0..50).map(|i| step(i * 25)).collect();
        steps[3].loss_total = Some(f64::NAN);
        steps[3].mark_nonfinite();
        steps[4].grad_norm = Some(f64::INFINITY);
        steps[4].mark_nonfinite();
        steps[5].loss_total = None;
        steps[5].mark_nonfinite();
        steps[6].timestamp = None;
        let stored = encode_steps(&steps);
        let columns: Vec<(Column, &[u8])> =
            stored.iter().map(|c| (c.col, c.data.as_slice())).collect();
        let back = decode_steps(&columns, "r", "m").unwrap();
        // NaN != NaN: compare the NaN step by its parts.
        assert!(back[3].loss_total.unwrap().is_nan());
        assert_eq!(back[3].nonfinite, steps[3].nonfinite);
        for (i, (a, b)) in back.iter().zip(&steps).enumerate() {
            if i != 3 {
                assert_eq!(a, b, "step {i}");
            }
        }
        assert_eq!(back[5].loss_total, None);
        assert_eq!(back[4].grad_norm, Some(f64::INFINITY));
    }

    #[test]
    fn a_metric_column_knows_its_finite_extremes() {
        let mut steps: Vec<Step> = (0..4).map(step).collect();
        steps[1].loss_total = Some(f64::NAN);
        let loss = encode_steps(&steps)
            .into_iter()
            .find(|c| c.col == Column::Metric(Metric::LossTotal))
            .unwrap();
        assert_eq!(loss.lo, Some(10.0 - 0.003));
        assert_eq!(loss.hi, Some(10.0));
    }

    #[test]
    fn only_the_columns_read_are_filled() {
        let steps: Vec<Step> = (0..3).map(step).collect();
        let stored = encode_steps(&steps);
        let pick = |c: Column| stored.iter().find(|s| s.col == c).unwrap().data.as_slice();
        let back = decode_steps(
            &[
                (Column::Step, pick(Column::Step)),
                (Column::Metric(Metric::Lr), pick(Column::Metric(Metric::Lr))),
            ],
            "r",
            "m",
        )
        .unwrap();
        assert_eq!(back[2].step, 2);
        assert_eq!(back[2].lr, Some(3e-4));
        assert_eq!(back[2].loss_total, None);
    }

    #[test]
    fn broken_bytes_are_an_error_not_a_panic() {
        let short = [1u8, 2, 3];
        assert!(decode_steps(&[(Column::Step, &short)], "r", "m").is_err());
        let one = 5i64.to_le_bytes();
        let two = [0u8; 16];
        let err = decode_steps(
            &[(Column::Step, &one), (Column::Metric(Metric::Lr), &two)],
            "r",
            "m",
        )
        .unwrap_err();
        assert!(err.0.contains("2 values for 1 steps"), "{err:?}");
        assert!(decode_steps(&[(Column::Timestamp, b"[]")], "r", "m").is_err());
        assert!(decode_steps(
            &[(Column::Step, &one), (Column::NonFinite, b"[[7,{}]]")],
            "r",
            "m"
        )
        .is_err());
    }

    #[test]
    fn chunks_hold_at_least_chunk_records_and_never_split_a_step() {
        assert!(chunk_starts(&[]).is_empty());
        let flat: Vec<i64> = (0..(CHUNK as i64 * 2 + 5)).collect();
        assert_eq!(chunk_starts(&flat), vec![0, CHUNK, 2 * CHUNK]);
        // Twelve layers a step: the cut moves to the next step's first record.
        let layered: Vec<i64> = (0..300).flat_map(|s| [s; 12]).collect();
        let starts = chunk_starts(&layered);
        for w in starts.windows(2) {
            assert!(w[1] - w[0] >= CHUNK);
            assert_ne!(layered[w[1]], layered[w[1] - 1], "cut inside a step");
        }
        assert_eq!(starts[1], CHUNK.div_ceil(12) * 12);
    }
}
