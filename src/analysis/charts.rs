//! A run's chart metrics column by column, as the run cache holds them (`RunState`).

use super::push_lean;

/// A run's metrics column by column, in step order; NaN where a value is NULL.
#[derive(Clone, Debug, Default)]
pub struct RunColumns {
    pub steps: Vec<i64>,
    pub loss: Vec<f64>,
    pub ema: [Vec<f64>; 3],
    pub lr: Vec<f64>,
    pub grad: Vec<f64>,
    pub grad_pre_clip: Vec<f64>,
}

impl RunColumns {
    pub fn push(&mut self, step: &crate::model::Step) {
        let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
        push_lean(&mut self.steps, step.step);
        push_lean(&mut self.loss, v(step.loss_total));
        push_lean(&mut self.ema[0], v(step.ema_short));
        push_lean(&mut self.ema[1], v(step.ema_medium));
        push_lean(&mut self.ema[2], v(step.ema_long));
        push_lean(&mut self.lr, v(step.lr));
        push_lean(&mut self.grad, v(step.grad_norm));
        push_lean(&mut self.grad_pre_clip, v(step.grad_norm_pre_clip));
    }
}
