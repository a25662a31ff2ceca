//! The runs table's sorting, filtering and config diff: the same on the server (the page
//! without JavaScript, by its query string) and in the browser.

use crate::model::{ConfigRow, RunRow};
use std::cmp::Ordering;

/// A column the table sorts by, with its name in the query string (`?sort=best_loss`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    Run,
    Model,
    State,
    Step,
    LastSeen,
    BestLoss,
    EvalLoss,
    Tokens,
    TokensPerSec,
    #[default]
    Started,
    Duration,
}

impl SortBy {
    pub const ALL: [SortBy; 11] = [
        Self::Run,
        Self::Model,
        Self::State,
        Self::Step,
        Self::LastSeen,
        Self::BestLoss,
        Self::EvalLoss,
        Self::Tokens,
        Self::TokensPerSec,
        Self::Started,
        Self::Duration,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Model => "model",
            Self::State => "state",
            Self::Step => "step",
            Self::LastSeen => "last_seen",
            Self::BestLoss => "best_loss",
            Self::EvalLoss => "eval_loss",
            Self::Tokens => "tokens",
            Self::TokensPerSec => "tokens_per_sec",
            Self::Started => "started",
            Self::Duration => "duration",
        }
    }

    /// The column's heading.
    pub fn title(self) -> &'static str {
        match self {
            Self::Run => "run",
            Self::Model => "model",
            Self::State => "state",
            Self::Step => "step",
            Self::LastSeen => "last seen",
            Self::BestLoss => "best loss",
            Self::EvalLoss => "eval loss",
            Self::Tokens => "tokens",
            Self::TokensPerSec => "tokens/s",
            Self::Started => "started",
            Self::Duration => "duration",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == key)
    }

    /// The direction a first click sorts in: losses lowest first, the rest highest or
    /// newest first, names A to Z.
    pub fn descending_first(self) -> bool {
        !matches!(
            self,
            Self::Run | Self::Model | Self::State | Self::BestLoss | Self::EvalLoss
        )
    }
}

/// Sorts `rows` by `by`; rows without a value go last either way, ties keep their order.
pub fn sort(rows: &mut [RunRow], by: SortBy, descending: bool) {
    fn num(a: Option<f64>, b: Option<f64>) -> Option<Ordering> {
        Some(a?.total_cmp(&b?))
    }
    rows.sort_by(|a, b| {
        let present = |r: &RunRow| match by {
            SortBy::Run | SortBy::Model => true,
            SortBy::State => r.state.is_some(),
            SortBy::Step => r.step.is_some(),
            // Seen most recently: the smallest "ago".
            SortBy::LastSeen => r.last_seen_ago.is_some(),
            SortBy::BestLoss => r.best_loss.is_some(),
            SortBy::EvalLoss => r.eval_loss.is_some(),
            SortBy::Tokens => r.tokens.is_some(),
            SortBy::TokensPerSec => r.tokens_per_sec.is_some(),
            SortBy::Started => r.started.is_some(),
            SortBy::Duration => r.duration.is_some(),
        };
        match (present(a), present(b)) {
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => return Ordering::Equal,
            _ => {}
        }
        let order = match by {
            SortBy::Run => Some(a.run_id.cmp(&b.run_id)),
            SortBy::Model => Some(a.model_id.cmp(&b.model_id)),
            SortBy::State => Some(state_word(a).cmp(state_word(b))),
            SortBy::Step => num(a.step.map(|s| s as f64), b.step.map(|s| s as f64)),
            SortBy::LastSeen => num(b.last_seen_ago, a.last_seen_ago),
            SortBy::BestLoss => num(a.best_loss, b.best_loss),
            SortBy::EvalLoss => num(a.eval_loss, b.eval_loss),
            SortBy::Tokens => num(a.tokens, b.tokens),
            SortBy::TokensPerSec => num(a.tokens_per_sec, b.tokens_per_sec),
            SortBy::Started => Some(a.started.cmp(&b.started)),
            SortBy::Duration => num(a.duration, b.duration),
        }
        .unwrap_or(Ordering::Equal);
        if descending {
            order.reverse()
        } else {
            order
        }
    });
}

fn state_word(r: &RunRow) -> &'static str {
    r.state.map_or("", |s| s.word())
}

/// Whether `row` matches the filter text: every word of it (case-insensitive) is in the run
/// id, the model, the state, the node, or a config entry written `key=value`.
pub fn matches(row: &RunRow, filter: &str) -> bool {
    let haystack = || {
        let mut text = format!("{} {} {}", row.run_id, row.model_id, state_word(row));
        if let Some(node) = &row.node {
            text.push(' ');
            text.push_str(node);
        }
        for (k, v) in &row.config {
            text.push(' ');
            text.push_str(k);
            text.push('=');
            text.push_str(v);
        }
        text.to_lowercase()
    };
    let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return true;
    }
    let text = haystack();
    words.iter().all(|w| text.contains(w.as_str()))
}

/// The config keys of `configs` (one per compared run, in order), each with every run's
/// value; `differs` when not every run has the same value (a key one run lacks differs).
/// Sorted by key.
pub fn config_diff(configs: &[&[(String, String)]]) -> Vec<ConfigRow> {
    let mut keys: Vec<&str> = configs
        .iter()
        .flat_map(|c| c.iter().map(|(k, _)| k.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|key| {
            let values: Vec<Option<String>> = configs
                .iter()
                .map(|c| c.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .collect();
            let differs = values.windows(2).any(|w| w[0] != w[1]);
            ConfigRow {
                key: key.to_string(),
                values,
                differs,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TrainingState;

    fn row(id: &str, best: Option<f64>, config: &[(&str, &str)]) -> RunRow {
        RunRow {
            run_id: id.into(),
            model_id: if id.starts_with('a') { "500m" } else { "626m" }.into(),
            best_loss: best,
            state: Some(TrainingState::Finished),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_sort_by_any_column_with_the_unknown_last() {
        let mut rows = vec![
            row("a1", Some(3.0), &[]),
            row("b1", None, &[]),
            row("a2", Some(2.5), &[]),
        ];
        sort(&mut rows, SortBy::BestLoss, false);
        let ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a2", "a1", "b1"]);
        sort(&mut rows, SortBy::BestLoss, true);
        let ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        assert_eq!(ids, ["a1", "a2", "b1"], "unknown stays last descending too");
        sort(&mut rows, SortBy::Run, false);
        assert_eq!(rows[0].run_id, "a1");
        for c in SortBy::ALL {
            assert_eq!(SortBy::parse(c.key()), Some(c));
        }
        assert_eq!(SortBy::parse("nope"), None);
    }

    #[test]
    fn the_filter_finds_runs_by_id_model_state_and_config_value() {
        let r = row("a1", None, &[("lr", "0.0003"), ("use_mor", "true")]);
        assert!(matches(&r, ""));
        assert!(matches(&r, "A1"));
        assert!(matches(&r, "500m finished"));
        assert!(matches(&r, "lr=0.0003"));
        assert!(matches(&r, "use_mor=true"));
        assert!(!matches(&r, "626m"));
        assert!(!matches(&r, "lr=0.001"));
    }

    #[test]
    fn the_diff_marks_the_keys_whose_values_differ() {
        let a = vec![
            ("lr".to_string(), "0.0003".to_string()),
            ("seq".into(), "512".into()),
        ];
        let b = vec![
            ("lr".to_string(), "0.0006".to_string()),
            ("seq".into(), "512".into()),
        ];
        let c = vec![
            ("seq".to_string(), "512".to_string()),
            ("moe".into(), "true".into()),
        ];
        let diff = config_diff(&[&a, &b, &c]);
        let keys: Vec<(&str, bool)> = diff.iter().map(|r| (r.key.as_str(), r.differs)).collect();
        assert_eq!(keys, [("lr", true), ("moe", true), ("seq", false)]);
        assert_eq!(
            diff[0].values,
            [Some("0.0003".into()), Some("0.0006".into()), None]
        );
        // lr: two values; moe: stated by one run only; seq: the same everywhere.
        let stated: Vec<bool> = diff.iter().map(ConfigRow::values_differ).collect();
        assert_eq!(stated, [true, false, false]);
        let one_silent = config_diff(&[&a[..], &[]]);
        assert!(one_silent.iter().all(|r| r.differs && !r.values_differ()));
        assert!(
            config_diff(&[&a]).iter().all(|r| !r.differs),
            "one run differs from none"
        );
    }
}
