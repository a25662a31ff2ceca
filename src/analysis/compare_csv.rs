//! A comparison as CSV: one row per x where any run has a point, one column per run (and
//! one per run's smoothed line when smoothing is on), empty where a run has none there.

use crate::model::{CompareX, Comparison, Metric};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `metric` of every run of `c`, on `c`'s x axis (a run's x read from its clock).
pub fn to_csv(c: &Comparison, metric: Metric) -> String {
    // Column per run (and smoothed), values by x.
    let mut columns: Vec<String> = Vec::new();
    // By x, then step: on a time axis (whole seconds) two steps of a run can share an x, and
    // each keeps its own row.
    let mut rows: BTreeMap<(i64, i64), Vec<Option<f64>>> = BTreeMap::new();
    let smoothing = c.smoothing.is_some();
    let width = c.runs.len() * if smoothing { 2 } else { 1 };
    for (i, run) in c.runs.iter().enumerate() {
        columns.push(quote(&run.run_id));
        if smoothing {
            columns.push(quote(&format!("{} smoothed", run.run_id)));
        }
        let x = super::clock::x_of(&run.clock, c.x);
        let Some(series) = run.series.iter().find(|s| s.metric == metric.name()) else {
            continue;
        };
        let per_run = if smoothing { 2 } else { 1 };
        let mut put = |points: &[(i64, f64)], column: usize| {
            for &(step, v) in points {
                if let Some(at) = x(step) {
                    rows.entry((at, step)).or_insert_with(|| vec![None; width])[column] = Some(v);
                }
            }
        };
        put(&series.points, i * per_run);
        if let (true, Some(s)) = (smoothing, &series.smoothed) {
            put(s, i * per_run + 1);
        }
    }
    let axis = match c.x {
        CompareX::Step => "step",
        CompareX::Tokens => "tokens",
        CompareX::Time => "seconds",
    };
    let mut out = format!("{axis},{}\n", columns.join(","));
    for ((x, _), values) in rows {
        let _ = write!(out, "{x}");
        for v in values {
            out.push(',');
            if let Some(v) = v {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn quote(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ComparedRun, ComparedSeries};

    fn run(id: &str, points: Vec<(i64, f64)>) -> ComparedRun {
        ComparedRun {
            run_id: id.into(),
            series: vec![ComparedSeries {
                metric: "loss_total".into(),
                points: points.clone(),
                smoothed: Some(points.iter().map(|&(s, v)| (s, v + 0.5)).collect()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn one_column_per_run_and_blank_where_a_run_has_no_point() {
        let mut c = Comparison {
            runs: vec![
                run("a", vec![(0, 3.0), (10, 2.5)]),
                run("b,2", vec![(10, 2.75)]),
            ],
            ..Default::default()
        };
        assert_eq!(
            to_csv(&c, Metric::LossTotal),
            "step,a,\"b,2\"\n0,3,\n10,2.5,2.75\n"
        );
        c.smoothing = Some(0.6);
        assert_eq!(
            to_csv(&c, Metric::LossTotal),
            "step,a,a smoothed,\"b,2\",\"b,2 smoothed\"\n0,3,3.5,,\n10,2.5,3,2.75,3.25\n"
        );
        assert_eq!(to_csv(&c, Metric::Lr).lines().count(), 1, "a header only");
    }

    #[test]
    fn two_steps_in_the_same_second_keep_a_row_each() {
        use crate::model::ClockMark;
        let mut r = run("a", vec![(0, 3.0), (1, 2.9), (2, 2.8)]);
        r.clock = vec![
            ClockMark {
                step: 0,
                time: Some(100.0),
                tokens: None,
            },
            ClockMark {
                step: 2,
                time: Some(101.0),
                tokens: None,
            },
        ];
        let c = Comparison {
            x: CompareX::Time,
            runs: vec![r],
            ..Default::default()
        };
        assert_eq!(
            to_csv(&c, Metric::LossTotal),
            "seconds,a\n0,3\n1,2.9\n1,2.8\n"
        );
    }
}
