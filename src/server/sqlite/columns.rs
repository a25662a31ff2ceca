//! The trainer's columns as we read them, and how a row decodes: by position, one decoder
//! per row type, serving both the fast path ([`super::raw`]) and sqlx. Step columns are
//! derived from [`Metric`], so the list read, the decoder and the API cannot drift apart.

use super::raw::Columns;
use crate::model::{AdaptiveLr, Metric, Model, RoutingMod, RoutingMoe, RoutingMor, Run, Step};
use crate::server::source::{Fields, MetricSet, RoutingKind};

/// What a step row holds besides its metrics, before them.
const STEP_HEAD: [&str; 4] = ["step", "run_id", "model_id", "timestamp"];
/// ... and after them.
const STEP_TAIL: [&str; 2] = ["batch_size", "seq_len"];
/// The run cache's rows: the step, its metrics, then these.
const CACHE_TAIL: [&str; 3] = ["timestamp", "batch_size", "seq_len"];

/// Every `steps` column, in the order [`step_from`] decodes.
pub fn step_columns() -> Vec<&'static str> {
    STEP_HEAD
        .into_iter()
        .chain(Metric::ALL.map(Metric::name))
        .chain(STEP_TAIL)
        .collect()
}

/// The columns the run cache reads, in the order [`cache_step`] decodes.
pub fn cache_columns() -> Vec<&'static str> {
    std::iter::once("step")
        .chain(Metric::FOR_RUN_CACHE.map(Metric::name))
        .chain(CACHE_TAIL)
        .collect()
}

/// The columns of a read of `fields`.
pub fn columns_of(fields: Fields) -> Vec<&'static str> {
    match fields {
        Fields::All => step_columns(),
        Fields::RunCache => cache_columns(),
        Fields::Metrics(set) => std::iter::once("step")
            .chain(lean_metrics(set).map(Metric::name))
            .chain(CACHE_TAIL)
            .collect(),
    }
}

/// The decoder of a read of `fields`.
pub fn decoder_of(fields: Fields) -> impl Fn(&dyn Columns) -> Step + Copy {
    move |r| match fields {
        Fields::All => step_from(r),
        Fields::RunCache => cache_step(r),
        Fields::Metrics(set) => lean_step(r, set),
    }
}

/// The metrics a read of `Fields::Metrics(set)` holds: the loss always.
fn lean_metrics(set: MetricSet) -> impl Iterator<Item = Metric> {
    std::iter::once(Metric::LossTotal).chain(set.metrics().filter(|m| *m != Metric::LossTotal))
}

/// A row of `columns_of(Fields::Metrics(set))`, by position.
fn lean_step(r: &dyn Columns, set: MetricSet) -> Step {
    let mut s = Step {
        step: r.int(0).unwrap_or_default(),
        ..Default::default()
    };
    let mut i = 1;
    for m in lean_metrics(set) {
        m.set(&mut s, r.real(i));
        i += 1;
    }
    s.timestamp = r.text(i).map(str::to_owned);
    s.batch_size = r.int(i + 1);
    s.seq_len = r.int(i + 2);
    s
}

pub const RUN_COLUMNS: [&str; 10] = [
    "run_id",
    "model_id",
    "start_step",
    "end_step",
    "start_time",
    "end_time",
    "total_tokens",
    "best_loss",
    "best_loss_step",
    "config_json",
];

pub const MODEL_COLUMNS: [&str; 5] = [
    "model_id",
    "name",
    "params_millions",
    "architecture_json",
    "created_at",
];

const MOD_COLUMNS: [&str; 9] = [
    "step",
    "run_id",
    "model_id",
    "layer",
    "selected_frac",
    "compute_savings_pct",
    "probs_mean",
    "probs_std",
    "status",
];

const MOR_COLUMNS: [&str; 8] = [
    "step",
    "run_id",
    "model_id",
    "layer",
    "avg_depth",
    "expected_depth",
    "router_probs_mean",
    "status",
];

const MOE_COLUMNS: [&str; 9] = [
    "step",
    "run_id",
    "model_id",
    "entropy",
    "divergence",
    "util_expert_0",
    "util_expert_1",
    "util_expert_2",
    "util_expert_3",
];

pub const ADAPTIVE_LR_COLUMNS: [&str; 5] = [
    "step",
    "loss_ema_short",
    "loss_ema_long",
    "patience_counter",
    "cooldown_triggered",
];

/// A routing kind's table, columns and row order.
pub fn routing_table(kind: RoutingKind) -> (&'static str, &'static [&'static str], &'static str) {
    match kind {
        RoutingKind::Mod => ("routing_mod", &MOD_COLUMNS, "step, layer"),
        RoutingKind::Mor => ("routing_mor", &MOR_COLUMNS, "step, layer"),
        RoutingKind::Moe => ("routing_moe", &MOE_COLUMNS, "step"),
    }
}

// Rows are decoded leniently: SQLite is dynamically typed, and a value of an unexpected type
// in the user's file should read as "no value", never fail the whole page.

/// A row of [`MODEL_COLUMNS`], by position.
pub fn model_from(r: &dyn Columns) -> Model {
    let text = |i: usize| r.text(i).map(str::to_owned);
    Model {
        model_id: text(0).unwrap_or_default(),
        name: text(1),
        params_millions: r.real(2),
        architecture_json: text(3),
        created_at: text(4),
    }
}

/// A row of [`RUN_COLUMNS`], by position.
pub fn run_from(r: &dyn Columns) -> Run {
    let text = |i: usize| r.text(i).map(str::to_owned);
    Run {
        run_id: text(0).unwrap_or_default(),
        model_id: text(1).unwrap_or_default(),
        start_step: r.int(2),
        end_step: r.int(3),
        start_time: text(4),
        end_time: text(5),
        total_tokens: r.int(6),
        best_loss: r.real(7),
        best_loss_step: r.int(8),
        config_json: text(9),
        state: None,
        // The database has no log: only the files know a run's last sign of life.
        last_seen: None,
        node: None,
    }
}

/// A row of [`step_columns`], by position.
pub fn step_from(r: &dyn Columns) -> Step {
    let text = |i: usize| r.text(i).map(str::to_owned);
    let mut s = Step {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        timestamp: text(3),
        ..Default::default()
    };
    let first = STEP_HEAD.len();
    for (i, m) in Metric::ALL.into_iter().enumerate() {
        m.set(&mut s, r.real(first + i));
    }
    let tail = first + Metric::COUNT;
    s.batch_size = r.int(tail);
    s.seq_len = r.int(tail + 1);
    s
}

/// A row of [`cache_columns`], by position (no name lookups: this runs for every step).
pub fn cache_step(r: &dyn Columns) -> Step {
    let mut s = Step {
        step: r.int(0).unwrap_or_default(),
        ..Default::default()
    };
    for (i, m) in Metric::FOR_RUN_CACHE.into_iter().enumerate() {
        m.set(&mut s, r.real(1 + i));
    }
    let tail = 1 + Metric::FOR_RUN_CACHE.len();
    s.timestamp = r.text(tail).map(str::to_owned);
    s.batch_size = r.int(tail + 1);
    s.seq_len = r.int(tail + 2);
    s
}

/// A row of [`ADAPTIVE_LR_COLUMNS`], by position.
pub fn adaptive_lr_from(r: &dyn Columns) -> AdaptiveLr {
    AdaptiveLr {
        step: r.int(0).unwrap_or_default(),
        loss_ema_short: r.real(1),
        loss_ema_long: r.real(2),
        patience_counter: r.int(3),
        cooldown_triggered: r.int(4),
    }
}

/// A row of `MOD_COLUMNS`, by position.
pub fn mod_from(r: &dyn Columns) -> RoutingMod {
    let text = |i: usize| r.text(i).map(str::to_owned);
    RoutingMod {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        layer: r.int(3).unwrap_or_default(),
        selected_frac: r.real(4),
        compute_savings_pct: r.real(5),
        probs_mean: r.real(6),
        probs_std: r.real(7),
        status: text(8),
    }
}

/// A row of `MOR_COLUMNS`, by position.
pub fn mor_from(r: &dyn Columns) -> RoutingMor {
    let text = |i: usize| r.text(i).map(str::to_owned);
    RoutingMor {
        step: r.int(0).unwrap_or_default(),
        run_id: text(1).unwrap_or_default(),
        model_id: text(2).unwrap_or_default(),
        layer: r.int(3).unwrap_or_default(),
        avg_depth: r.real(4),
        expected_depth: r.real(5),
        router_probs_mean: r.real(6),
        status: text(7),
        depth_histogram: None,
    }
}

/// A row of `MOE_COLUMNS`, by position.
pub fn moe_from(r: &dyn Columns) -> RoutingMoe {
    RoutingMoe {
        step: r.int(0).unwrap_or_default(),
        run_id: r.text(1).map(str::to_owned).unwrap_or_default(),
        model_id: r.text(2).map(str::to_owned).unwrap_or_default(),
        entropy: r.real(3),
        divergence: r.real(4),
        util_expert_0: r.real(5),
        util_expert_1: r.real(6),
        util_expert_2: r.real(7),
        util_expert_3: r.real(8),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The column lists as they were kept by hand before they were derived from `Metric`
    /// (whose own order `model::step`'s test pins).
    #[test]
    fn step_columns_keep_the_order_they_had() {
        let all = step_columns();
        assert_eq!(all[..4], ["step", "run_id", "model_id", "timestamp"]);
        assert_eq!(all[4..17], crate::model::METRICS);
        assert_eq!(all[17..], ["batch_size", "seq_len"]);
        // The run cache's read holds the same columns as before (the order is ours).
        let mut cache = cache_columns();
        cache.sort_unstable();
        let mut before = [
            "step",
            "timestamp",
            "batch_size",
            "seq_len",
            "tokens_per_sec",
            "vram_gb",
        ]
        .into_iter()
        .chain(crate::model::Metric::CACHED.map(|m| m.name()))
        .collect::<Vec<_>>();
        before.sort_unstable();
        assert_eq!(cache, before);
    }
}
