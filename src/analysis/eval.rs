//! Evaluations as the loss chart draws them: the eval loss at each evaluation, and each
//! component's, all of them (a run evaluates every 500 steps: a few thousand at most).

use crate::model::{EvalPoint, Points};

/// The eval loss and each component's loss over `range` (all when `None`), finite values
/// only, components by name.
pub fn series(evals: &[EvalPoint], range: Option<(i64, i64)>) -> (Points, Vec<(String, Points)>) {
    let (lo, hi) = range.unwrap_or((i64::MIN, i64::MAX));
    let inside = || evals.iter().filter(|e| (lo..=hi).contains(&e.step));
    let eval = inside()
        .filter(|e| e.eval_loss.is_finite())
        .map(|e| (e.step, e.eval_loss))
        .collect();
    let mut components: Vec<(String, Points)> = Vec::new();
    for e in inside() {
        for (name, loss) in e.components.iter().filter(|c| c.1.is_finite()) {
            match components.iter_mut().find(|c| &c.0 == name) {
                Some(c) => c.1.push((e.step, *loss)),
                None => components.push((name.clone(), vec![(e.step, *loss)])),
            }
        }
    }
    (eval, components)
}

/// Folds evaluations the live feed brought into the loss chart's series: each replaces the
/// point at its step (its components may come in a later line) or joins in step order.
pub fn merge(eval: &mut Points, components: &mut Vec<(String, Points)>, points: &[EvalPoint]) {
    fn put(series: &mut Points, step: i64, value: Option<f64>) {
        let at = series.partition_point(|p| p.0 < step);
        let here = series.get(at).is_some_and(|p| p.0 == step);
        match (value.filter(|v| v.is_finite()), here) {
            (Some(v), true) => series[at].1 = v,
            (Some(v), false) => series.insert(at, (step, v)),
            (None, true) => {
                series.remove(at);
            }
            (None, false) => {}
        }
    }
    for p in points {
        put(eval, p.step, Some(p.eval_loss));
        for (name, loss) in &p.components {
            let at = match components.iter().position(|c| &c.0 == name) {
                Some(at) => at,
                None => {
                    components.push((name.clone(), Vec::new()));
                    components.len() - 1
                }
            };
            put(&mut components[at].1, p.step, Some(*loss));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(step: i64, loss: f64, parts: &[(&str, f64)]) -> EvalPoint {
        EvalPoint {
            step,
            eval_loss: loss,
            train_loss: None,
            components: parts.iter().map(|(n, l)| (n.to_string(), *l)).collect(),
        }
    }

    #[test]
    fn evals_in_range_with_their_components_and_nothing_non_finite() {
        let evals = [
            eval(500, 3.0, &[("code", 2.5), ("math", 3.5)]),
            eval(1000, f64::NAN, &[("code", 2.4)]),
            eval(1500, 2.8, &[("code", f64::INFINITY), ("math", 3.2)]),
        ];
        let (all, parts) = series(&evals, None);
        assert_eq!(all, vec![(500, 3.0), (1500, 2.8)]);
        assert_eq!(
            parts,
            vec![
                ("code".to_string(), vec![(500, 2.5), (1000, 2.4)]),
                ("math".to_string(), vec![(500, 3.5), (1500, 3.2)]),
            ]
        );
        let (zoomed, _) = series(&evals, Some((600, 2000)));
        assert_eq!(zoomed, vec![(1500, 2.8)]);
    }

    #[test]
    fn live_evaluations_replace_theirs_and_join_in_order() {
        let (mut losses, mut parts) = series(&[eval(500, 3.0, &[]), eval(1_500, 2.5, &[])], None);
        merge(&mut losses, &mut parts, &[eval_at(1_000, 2.8)]);
        merge(
            &mut losses,
            &mut parts,
            &[eval(1_500, 2.5, &[("code", 2.0)])],
        );
        merge(&mut losses, &mut parts, &[eval(2_000, f64::NAN, &[])]);
        assert_eq!(losses, [(500, 3.0), (1_000, 2.8), (1_500, 2.5)]);
        assert_eq!(parts, [("code".to_string(), vec![(1_500, 2.0)])]);
    }

    fn eval_at(step: i64, loss: f64) -> EvalPoint {
        eval(step, loss, &[])
    }
}
