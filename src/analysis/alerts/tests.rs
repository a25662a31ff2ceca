use super::*;
use crate::analysis::time::format_iso8601;
use crate::model::{AlertChange::*, RoutingMod, RoutingMor};

/// A steady, slowly falling loss with a little deterministic noise, logged every 10 steps
/// at one line per second from a fixed start.
fn steps(n: usize) -> Vec<Step> {
    (0..n)
        .map(|i| Step {
            step: i as i64 * 10,
            timestamp: Some(format_iso8601(1.8e9 + i as f64)),
            loss_total: Some(3.0 - 0.0002 * i as f64 + 0.01 * ((i * 7919 % 13) as f64 / 13.0)),
            grad_norm: Some(1.0 + 0.01 * ((i * 31 % 7) as f64)),
            grad_norm_pre_clip: Some(1.2 + 0.01 * ((i * 17 % 5) as f64)),
            tokens_per_sec: Some(10_000.0 + (i * 13 % 11) as f64),
            ..Default::default()
        })
        .collect()
}

fn watch() -> RunWatch {
    RunWatch::new("500m_a", "500m", &RunConfig::parse(None), &Rules::default())
}

fn feed(w: &mut RunWatch, rows: &[Step]) -> Vec<(AlertChange, AlertKind, i64)> {
    rows.iter().for_each(|s| w.step(s));
    told(w)
}

/// What changed since last asked: raised at its step, resolved at its resolving step.
fn told(w: &mut RunWatch) -> Vec<(AlertChange, AlertKind, i64)> {
    w.take_changes()
        .into_iter()
        .map(|(c, a)| {
            (
                c,
                a.kind,
                a.resolved_step.filter(|_| c == Resolved).unwrap_or(a.step),
            )
        })
        .collect()
}

#[test]
fn a_quiet_run_raises_nothing() {
    assert_eq!(feed(&mut watch(), &steps(2_000)), vec![]);
}

#[test]
fn a_loss_spike_is_raised_once_at_its_first_step_and_resolved_when_back_under_the_band() {
    let mut rows = steps(400);
    for r in &mut rows[200..204] {
        r.loss_total = Some(5.0); // four lines far above ~2.96
    }
    let mut w = watch();
    assert_eq!(
        feed(&mut w, &rows),
        vec![
            (Raised, AlertKind::LossSpike, 2_000),
            (Resolved, AlertKind::LossSpike, 2_040)
        ]
    );
    let alert = &w.alerts()[0];
    assert_eq!(alert.value, Some(5.0));
    assert!(alert.detail.contains("above"), "{}", alert.detail);
    assert!(alert
        .resolved_detail
        .as_deref()
        .unwrap()
        .contains("after 40 steps"));
    assert!(!alert.is_open());
}

#[test]
fn a_loss_that_settles_higher_stays_open_and_late_recovery_is_said() {
    let mut rows = steps(800);
    for r in &mut rows[200..] {
        r.loss_total = Some(r.loss_total.unwrap() + 2.0);
    }
    let mut w = watch();
    assert_eq!(
        feed(&mut w, &rows),
        vec![(Raised, AlertKind::LossSpike, 2_000)]
    );
    assert!(
        w.alerts()[0].is_open(),
        "the window got used to it; the band did not"
    );
    // It comes back 550 logged steps (5,500 steps) later: resolved, and said to be late.
    let back = steps(900);
    let changes = feed(&mut w, &back[800..]);
    assert_eq!(changes, vec![(Resolved, AlertKind::LossSpike, 8_000)]);
    assert!(w.alerts()[0]
        .resolved_detail
        .as_deref()
        .unwrap()
        .contains("later than 500 steps"));
}

#[test]
fn the_cooldown_keeps_a_second_spike_quiet_and_lets_a_later_one_through() {
    let mut rows = steps(5_000); // one line a second: 83 minutes
    for i in [300, 900, 4_300] {
        rows[i].loss_total = Some(6.0);
    }
    let kinds: Vec<_> = feed(&mut watch(), &rows)
        .into_iter()
        .filter(|(c, _, _)| *c == Raised)
        .map(|(_, _, step)| step)
        .collect();
    // 600 s after the first: within 30 minutes. 4,000 s after: beyond.
    assert_eq!(kinds, vec![3_000, 43_000]);
}

#[test]
fn a_raise_held_back_by_the_cooldown_is_raised_when_it_is_over_if_still_going() {
    let mut rows = steps(3_000); // one line a second
    rows[300].tokens_per_sec = Some(10.0); // not a drop: one step
    for r in &mut rows[200..206] {
        r.tokens_per_sec = Some(1_000.0); // a drop at 2,000, over at 2,060
    }
    for r in &mut rows[600..] {
        r.tokens_per_sec = Some(1_000.0); // a drop at 6,000 that never ends
    }
    let mut w = watch();
    let changes = feed(&mut w, &rows);
    // 400 s after the first raise: held; raised once 30 minutes have passed, at its first step.
    assert_eq!(
        changes,
        vec![
            (Raised, AlertKind::ThroughputDrop, 2_000),
            (Resolved, AlertKind::ThroughputDrop, 2_060),
            (Raised, AlertKind::ThroughputDrop, 6_000),
        ]
    );
    assert!(
        w.alerts()[1]
            .detail
            .contains("held back by the cooldown until step 20,000"),
        "{}",
        w.alerts()[1].detail
    );
}

#[test]
fn a_gradient_spike_is_judged_on_the_pre_clip_norm() {
    let mut rows = steps(300);
    rows[250].grad_norm_pre_clip = Some(40.0);
    let changes = feed(&mut watch(), &rows);
    assert_eq!(
        changes,
        vec![
            (Raised, AlertKind::GradSpike, 2_500),
            (Resolved, AlertKind::GradSpike, 2_510)
        ]
    );
}

#[test]
fn a_nan_is_raised_at_its_step_and_resolved_when_finite_again() {
    let mut rows = steps(100);
    rows[50].loss_total = None; // the database's NULL for a NaN loss
    rows[51].loss_total = Some(f64::INFINITY);
    let mut w = watch();
    assert_eq!(
        feed(&mut w, &rows),
        vec![
            (Raised, AlertKind::Nan, 500),
            (Resolved, AlertKind::Nan, 520)
        ]
    );
    assert_eq!(w.alerts()[0].value, None);
    assert_eq!(w.alerts()[0].detail, "loss NaN");
}

#[test]
fn throughput_drops_count_after_five_low_steps_from_the_first() {
    let mut rows = steps(200);
    for r in &mut rows[100..104] {
        r.tokens_per_sec = Some(5_000.0); // four: a dip, not a drop
    }
    for r in &mut rows[150..160] {
        r.tokens_per_sec = Some(6_900.0); // 31% below
    }
    assert_eq!(
        feed(&mut watch(), &rows),
        vec![
            (Raised, AlertKind::ThroughputDrop, 1_500),
            (Resolved, AlertKind::ThroughputDrop, 1_600)
        ]
    );
}

#[test]
fn a_gap_in_the_steps_is_a_stall_raised_before_it_and_resolved_after() {
    let mut rows = steps(100);
    for (k, r) in rows.iter_mut().enumerate().skip(60) {
        r.timestamp = Some(format_iso8601(1.8e9 + k as f64 + 400.0)); // 400 s > 5 min
    }
    let mut w = watch();
    assert_eq!(
        feed(&mut w, &rows),
        vec![
            (Raised, AlertKind::Stalled, 590),
            (Resolved, AlertKind::Stalled, 600)
        ]
    );
    assert!(
        w.alerts()[0].detail.contains("6m"),
        "{}",
        w.alerts()[0].detail
    );
}

#[test]
fn a_run_judged_stalled_is_raised_once_and_resolved_by_its_next_step() {
    let rows = steps(100);
    let mut w = watch();
    feed(&mut w, &rows[..50]);
    w.state(TrainingState::Stalled, 1.8e9 + 49.0 + 600.0, None);
    w.state(TrainingState::Stalled, 1.8e9 + 49.0 + 700.0, None);
    let raised = w.take_changes();
    assert_eq!(raised.len(), 1);
    assert_eq!(
        (raised[0].1.kind, raised[0].1.step),
        (AlertKind::Stalled, 490)
    );
    assert_eq!(
        feed(&mut w, &rows[50..]),
        vec![(Resolved, AlertKind::Stalled, 500)]
    );
}

#[test]
fn a_training_run_quiet_beyond_a_stricter_stall_rule_is_stalled() {
    let rules = Rules {
        stall_floor_seconds: 60.0,
        ..Rules::default()
    };
    let mut w = RunWatch::new("500m_a", "500m", &RunConfig::parse(None), &rules);
    feed(&mut w, &steps(50));
    w.state(TrainingState::Training, 1.8e9 + 49.0 + 30.0, None);
    assert!(w.alerts().is_empty(), "30 s is within a minute");
    w.state(TrainingState::Training, 1.8e9 + 49.0 + 90.0, None);
    assert_eq!(w.alerts()[0].kind, AlertKind::Stalled);
}

#[test]
fn eval_loss_rising_three_times_in_a_row_is_raised_then_cleared_by_a_fall() {
    let mut w = watch();
    let evals = [
        (500, 2.0),
        (1_000, 1.9),
        (1_500, 1.95),
        (2_000, 1.97),
        (2_500, 2.01),
        (3_000, 2.05),
        (3_500, 1.8),
    ];
    for (step, loss) in evals {
        w.eval(&EvalPoint {
            step,
            eval_loss: loss,
            train_loss: None,
            components: Default::default(),
        });
    }
    let changes: Vec<_> = w
        .take_changes()
        .into_iter()
        .map(|(c, a)| {
            (
                c,
                a.resolved_step.filter(|_| c == Resolved).unwrap_or(a.step),
            )
        })
        .collect();
    assert_eq!(changes, vec![(Raised, 2_500), (Resolved, 3_500)]);
    assert!(
        w.alerts()[0].detail.contains("since step 1,000"),
        "{}",
        w.alerts()[0].detail
    );
}

fn mod_record(step: i64, layer: i64, frac: f64, status: &str) -> RoutingMod {
    RoutingMod {
        step,
        layer,
        selected_frac: Some(frac),
        status: Some(status.into()),
        ..Default::default()
    }
}

#[test]
fn a_mod_layer_off_target_for_ten_records_drifted_but_warm_up_does_not_count() {
    let mut w = watch();
    for k in 0..20 {
        w.mod_record(&mod_record(k * 100, 0, 1.0, "DISABLED_PRE_ENABLE"));
    }
    for k in 20..40 {
        let frac = if k < 25 { 0.5 } else { 0.75 };
        w.mod_record(&mod_record(k * 100, 0, frac, "OK"));
        w.mod_record(&mod_record(k * 100, 1, 0.52, "OK"));
    }
    w.mod_record(&mod_record(4_000, 0, 0.55, "OK"));
    let changes = told(&mut w);
    assert_eq!(
        changes,
        vec![
            (Raised, AlertKind::ModDrift, 2_500),
            (Resolved, AlertKind::ModDrift, 4_000)
        ]
    );
}

#[test]
fn a_mor_layer_at_its_floor_for_ten_records_collapsed() {
    let mut w = watch();
    for k in 0..30 {
        let depth = if (10..25).contains(&k) { 1.0 } else { 2.2 };
        w.mor_record(&RoutingMor {
            step: k * 100,
            layer: 2,
            avg_depth: Some(depth),
            ..Default::default()
        });
    }
    let changes = told(&mut w);
    assert_eq!(
        changes,
        vec![
            (Raised, AlertKind::MorCollapse, 1_000),
            (Resolved, AlertKind::MorCollapse, 2_500)
        ]
    );
}

#[test]
fn a_crash_is_said_once_and_resolved_by_the_run_that_resumed_it_finished_is_never_open() {
    let mut w = watch();
    feed(&mut w, &steps(10));
    w.state(TrainingState::Crashed, 0.0, None);
    w.state(TrainingState::Crashed, 0.0, None);
    assert_eq!(w.alerts().len(), 1);
    assert!(w.alerts()[0].is_open());
    w.state(TrainingState::Crashed, 0.0, Some("500m_b"));
    assert!(!w.alerts()[0].is_open());
    assert_eq!(
        w.alerts()[0].resolved_detail.as_deref(),
        Some("the run was resumed as 500m_b")
    );

    let mut rows = steps(300);
    rows[250].loss_total = Some(30.0);
    rows[251..]
        .iter_mut()
        .for_each(|r| r.loss_total = Some(20.0));
    let mut done = watch();
    feed(&mut done, &rows);
    assert!(done.alerts()[0].is_open(), "the loss never came back");
    done.state(TrainingState::Finished, 0.0, None);
    let kinds: Vec<_> = done
        .alerts()
        .iter()
        .map(|a| (a.kind, a.is_open()))
        .collect();
    assert_eq!(
        kinds,
        vec![(AlertKind::LossSpike, false), (AlertKind::Finished, false)]
    );
    assert_eq!(
        done.alerts()[0].resolved_detail.as_deref(),
        Some("still so when the run finished at step 2,990")
    );
}

#[test]
fn a_crashed_run_resumed_under_its_own_id_is_training_again() {
    let mut w = watch();
    feed(&mut w, &steps(10));
    w.state(TrainingState::Crashed, 0.0, None);
    w.state(TrainingState::Training, 0.0, None);
    assert_eq!(
        w.alerts()[0].resolved_detail.as_deref(),
        Some("training again")
    );
}

#[test]
fn watching_as_it_comes_and_replaying_at_once_give_the_same_alerts() {
    let mut rows = steps(3_000);
    rows[700].loss_total = Some(9.0);
    rows[1_200].loss_total = None;
    for r in &mut rows[2_000..2_010] {
        r.tokens_per_sec = Some(100.0);
    }
    let mut once = watch();
    feed(&mut once, &rows);
    let mut live = watch();
    for chunk in rows.chunks(37) {
        feed(&mut live, chunk);
    }
    let mut again = watch();
    feed(&mut again, &rows);
    assert_eq!(once.alerts(), live.alerts());
    assert_eq!(once.alerts(), again.alerts());
    assert_eq!(once.alerts().len(), 3);
}

#[test]
fn the_sentence_names_run_kind_step_and_detail() {
    let mut rows = steps(300);
    rows[250].loss_total = Some(7.5);
    let mut w = watch();
    let changes = {
        rows.iter().for_each(|s| w.step(s));
        w.take_changes()
    };
    let raised = sentence(changes[0].0, &changes[0].1);
    assert!(
        raised.starts_with("⚠️ 500m_a: loss spike at step 2,500 — loss 7.5, above"),
        "{raised}"
    );
    let resolved = sentence(changes[1].0, &changes[1].1);
    assert!(resolved.contains("resolved at step 2,510"), "{resolved}");
}
