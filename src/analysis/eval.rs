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
}
