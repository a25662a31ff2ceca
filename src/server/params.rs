//! Query-string parsing for the REST API: lenient about what it ignores, strict about what
//! it reads. A bad value is a 400 that names the parameter and why, never a 5xx.

use super::error::AppError;
use std::collections::HashMap;

/// The query parameters of one request. Unknown keys are ignored (newer clients may send
/// more); for a repeated key the first value counts.
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string; malformed percent-escapes are kept as written, as
    /// browsers do, rather than failing the request.
    pub fn parse(raw: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    /// An optional integer. Absent or empty means "not given".
    pub fn int(&self, name: &'static str) -> Result<Option<i64>, AppError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                let shown: String = v.chars().take(40).collect();
                AppError::bad_param(name, format!("must be an integer, got {shown:?}"))
            }),
        }
    }

    /// An optional real number. Absent or empty means "not given"; NaN and ±Inf are refused.
    pub fn float(&self, name: &'static str) -> Result<Option<f64>, AppError> {
        match self.0.get(name).map(|v| v.trim()) {
            None | Some("") => Ok(None),
            Some(v) => match v.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => {
                    let shown: String = v.chars().take(40).collect();
                    Err(AppError::bad_param(
                        name,
                        format!("must be a number, got {shown:?}"),
                    ))
                }
            },
        }
    }

    /// `start_step`, which the original API refuses below 0 (steps start at 0).
    pub fn start_step(&self) -> Result<Option<i64>, AppError> {
        match self.int("start_step")? {
            Some(v) if v < 0 => Err(AppError::bad_param(
                "start_step",
                format!("must be 0 or more (steps start at 0), got {v}"),
            )),
            v => Ok(v),
        }
    }

    /// `start_step` and `end_step` as a range (see [`crate::model::step_range`]).
    pub fn step_range(&self) -> Result<Option<(i64, i64)>, AppError> {
        crate::model::step_range(self.int("start_step")?, self.int("end_step")?)
            .map_err(|why| AppError::bad_param("end_step", why))
    }

    /// A parameter's text, trimmed, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim())
    }

    /// Whether the parameter was given at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// A comma-separated list of metric names (`metrics=loss_total,lr`); every metric when
    /// not given. Unknown names are a 400 that lists the known ones.
    pub fn metrics(&self, name: &'static str) -> Result<Vec<&'static str>, AppError> {
        let known = crate::model::METRICS;
        let Some(list) = self.0.get(name).filter(|v| !v.trim().is_empty()) else {
            return Ok(known.to_vec());
        };
        let mut chosen = Vec::new();
        for wanted in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match known.iter().find(|k| **k == wanted) {
                Some(k) if !chosen.contains(k) => chosen.push(*k),
                Some(_) => {}
                None => {
                    let shown: String = wanted.chars().take(40).collect();
                    return Err(AppError::bad_param(
                        name,
                        format!("unknown metric {shown:?}; known: {}", known.join(", ")),
                    ));
                }
            }
        }
        Ok(chosen)
    }

    /// An integer in `min..=max`, `default` when not given.
    pub fn int_in(
        &self,
        name: &'static str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, AppError> {
        // Given but empty (`limit=`) is a mistake, as the original API said.
        if self.0.get(name).is_some_and(|v| v.trim().is_empty()) {
            return Err(AppError::bad_param(
                name,
                format!("must be an integer between {min} and {max}, got nothing"),
            ));
        }
        let v = self.int(name)?.unwrap_or(default);
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(AppError::bad_param(
                name,
                format!("must be between {min} and {max}, got {v}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: AppError) -> (String, String) {
        match e {
            AppError::BadParam { name, reason } => (name.to_string(), reason),
            other => panic!("expected a bad parameter, got {other:?}"),
        }
    }

    #[test]
    fn reads_integers_and_defaults() {
        let q = Query::parse(Some("start_step=100&limit=50&unknown=x&limit=7"));
        assert_eq!(q.int("start_step").unwrap(), Some(100));
        assert_eq!(q.int_in("limit", 1000, 1, 10_000).unwrap(), 50);
        assert_eq!(q.int("missing").unwrap(), None);
        assert_eq!(
            Query::parse(None).int_in("limit", 1000, 1, 10_000).unwrap(),
            1000
        );
        assert_eq!(
            Query::parse(Some("start_step=")).int("start_step").unwrap(),
            None
        );
        assert_eq!(
            Query::parse(Some("start_step=-5"))
                .int("start_step")
                .unwrap(),
            Some(-5)
        );
    }

    #[test]
    fn metrics_are_checked_by_name() {
        let all = Query::parse(None).metrics("metrics").unwrap();
        assert_eq!(all.len(), crate::model::METRICS.len());
        let two = Query::parse(Some("metrics=loss_total,%20lr,loss_total"))
            .metrics("metrics")
            .unwrap();
        assert_eq!(two, vec!["loss_total", "lr"]);
        let (name, why) = reason(
            Query::parse(Some("metrics=loss_total,steps;DROP"))
                .metrics("metrics")
                .unwrap_err(),
        );
        assert_eq!(name, "metrics");
        assert!(
            why.contains("unknown metric") && why.contains("loss_total"),
            "{why}"
        );
    }

    #[test]
    fn names_the_parameter_and_why() {
        let (name, why) = reason(Query::parse(Some("limit=abc")).int("limit").unwrap_err());
        assert_eq!(name, "limit");
        assert!(why.contains("integer") && why.contains("abc"), "{why}");
        let (name, why) = reason(
            Query::parse(Some("limit=10001"))
                .int_in("limit", 1000, 1, 10_000)
                .unwrap_err(),
        );
        assert_eq!(name, "limit");
        assert!(why.contains("between 1 and 10000"), "{why}");
        for bad in [
            "1e3",
            "99999999999999999999",
            "%00",
            "1;DROP TABLE steps",
            "½",
        ] {
            let q = Query::parse(Some(&format!("start_step={bad}")));
            assert!(q.int("start_step").is_err(), "{bad}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Query values as clients and attackers send them: anything, percent-escaped or not.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                any::<i64>().prop_map(|n| n.to_string()),
                "[ +-]?[0-9]{0,25}[ ]?",
                "(%[0-9A-Fa-f]{0,2}|[a-z;'=&]){0,12}",
            ]
        }

        proptest! {
            #[test]
            fn an_integer_is_read_exactly_or_refused_by_name(v in value()) {
                let raw = form_urlencoded::Serializer::new(String::new())
                    .append_pair("start_step", &v)
                    .finish();
                let q = Query::parse(Some(&raw));
                match q.int("start_step") {
                    Ok(None) => prop_assert!(v.trim().is_empty()),
                    Ok(Some(n)) => prop_assert_eq!(v.trim().parse::<i64>(), Ok(n)),
                    Err(AppError::BadParam { name, reason }) => {
                        prop_assert_eq!(name, "start_step");
                        prop_assert!(v.trim().parse::<i64>().is_err());
                        // The echo of the value is bounded, whatever was sent.
                        prop_assert!(reason.len() < 600, "{}", reason);
                    }
                    Err(other) => prop_assert!(false, "{other:?}"),
                }
            }

            #[test]
            fn a_bounded_integer_is_within_bounds_or_refused(v in value(), lo in -5_i64..5, span in 0_i64..100) {
                let raw = format!("limit={}", form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>());
                if let Ok(n) = Query::parse(Some(&raw)).int_in("limit", lo, lo, lo + span) {
                    prop_assert!((lo..=lo + span).contains(&n));
                }
            }

            #[test]
            fn metrics_are_known_names_once_or_refused(v in value(), picks in proptest::collection::vec(0_usize..13, 0..6)) {
                let known = crate::model::METRICS;
                let listed: Vec<&str> = picks.iter().map(|i| known[*i]).collect();
                for list in [v.clone(), listed.join(",")] {
                    let raw = form_urlencoded::Serializer::new(String::new())
                        .append_pair("metrics", &list)
                        .finish();
                    match Query::parse(Some(&raw)).metrics("metrics") {
                        Ok(chosen) => {
                            prop_assert!(chosen.iter().all(|m| known.contains(m)));
                            let unique: std::collections::HashSet<_> = chosen.iter().collect();
                            prop_assert_eq!(unique.len(), chosen.len());
                        }
                        Err(AppError::BadParam { name, .. }) => prop_assert_eq!(name, "metrics"),
                        Err(other) => prop_assert!(false, "{other:?}"),
                    }
                }
            }

            #[test]
            fn any_raw_query_parses_without_panicking(raw in any::<String>()) {
                let q = Query::parse(Some(&raw));
                let _ = q.int("start_step");
                let _ = q.int_in("max_points", 100, 1, 10_000);
                let _ = q.metrics("metrics");
                let _ = q.text("log");
            }

            #[test]
            fn run_ids_survive_the_path_both_ways(id in any::<String>()) {
                use crate::analysis::format::{decode_path_segment, path_segment};
                let segment = path_segment(&id);
                prop_assert!(!segment.contains('/') && !segment.contains('?'));
                prop_assert_eq!(decode_path_segment(&segment), id);
            }

            #[test]
            fn only_ids_the_dashboard_makes_name_a_snapshot(id in any::<String>()) {
                let ok = crate::server::share::is_id(&id);
                prop_assert_eq!(ok, id.len() == 32 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
            }
        }
    }
}
