//! The trainer's log, line by line: `YYYY-mm-dd HH:MM:SS - HYDRA - LEVEL - message` (local
//! time), of which a few carry numbers (see `../shared/spec/hydra-run-files.md`, "The log"):
//! `Step N/M | Loss: … | CE: … | LR: … | Grad: pre … | post … | clipped …% | 41.2K tok/s | …`,
//! `[EVAL] step=N  eval_loss=X  train_loss=Y`, `[EVAL_COMPONENTS] step=N  name(w)=X …`, the
//! start-up lines that say how big a step is, and the words that say how a run ended. Pure: text in, what it says out; anything else —
//! warnings, `[DIAG]` summaries, a line cut short when the process died — is `Other`.

use crate::model::{Metric, Step};

/// What one line of the log says.
#[derive(Clone, Debug, PartialEq)]
pub enum LogLine {
    Step(LogStep),
    Eval(LogEval),
    EvalComponents {
        step: i64,
        /// `(name, loss)` in the order written.
        components: Vec<(String, f64)>,
    },
    /// `Batch: 8 micro × 4 accum = 32 effective` or `Sequence length: 2048`, written at
    /// start-up: until a run's report (only at its end) has the whole configuration, the
    /// one place that tells how many tokens a step is.
    Setup(Setup),
    /// `Training complete!`
    Complete,
    /// A line logged at ERROR or CRITICAL, or a traceback's first line.
    Error,
    Other,
}

/// A `Step` line's numbers. The log rounds the loss to four decimals and the rest to three
/// significant digits; the diagnostics file has the full floats where it has the step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogStep {
    pub step: i64,
    /// The `M` of `Step N/M`: the run's `max_steps`.
    pub max_steps: Option<i64>,
    /// The line's local time as ISO 8601 (`2026-01-09T14:47:53`), no zone.
    pub time: Option<String>,
    pub loss: Option<f64>,
    pub ce: Option<f64>,
    pub lr: Option<f64>,
    pub grad_pre_clip: Option<f64>,
    pub grad_post_clip: Option<f64>,
    pub tokens_per_sec: Option<f64>,
}

/// What a start-up line says of a step's size, under the configuration's own key names.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Setup {
    pub batch_size: Option<i64>,
    pub grad_accum_steps: Option<i64>,
    pub max_seq_len: Option<i64>,
}

/// An `[EVAL]` line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEval {
    pub step: i64,
    pub time: Option<String>,
    pub eval_loss: f64,
    pub train_loss: Option<f64>,
}

/// Reads one line (without its newline).
pub fn parse_line(line: &str) -> LogLine {
    let Some((time, level, message)) = split_prefix(line) else {
        // Tracebacks are written without the prefix, one frame per line.
        return if line.starts_with("Traceback (most recent call last)") {
            LogLine::Error
        } else {
            LogLine::Other
        };
    };
    if matches!(level, "ERROR" | "CRITICAL") {
        return LogLine::Error;
    }
    let message = message.trim_start();
    if let Some(rest) = message.strip_prefix("Step ") {
        return step_line(rest, time).map_or(LogLine::Other, LogLine::Step);
    }
    if let Some(rest) = message.strip_prefix("[EVAL] ") {
        return eval_line(rest, time).map_or(LogLine::Other, LogLine::Eval);
    }
    if let Some(rest) = message.strip_prefix("[EVAL_COMPONENTS] ") {
        return components_line(rest).unwrap_or(LogLine::Other);
    }
    if let Some(setup) = setup_line(message) {
        return LogLine::Setup(setup);
    }
    if message.starts_with("Training complete") {
        return LogLine::Complete;
    }
    if message.starts_with("Traceback (most recent call last)") {
        return LogLine::Error;
    }
    LogLine::Other
}

/// A line's time as ISO 8601 (`2026-01-09T14:47:53`, local, no zone), whatever it says:
/// any line is a sign of life.
pub fn line_time(line: &str) -> Option<String> {
    split_prefix(line).map(|(time, _, _)| iso(time))
}

/// `(time as ISO 8601, level, message)` of a `time - name - LEVEL - message` line.
fn split_prefix(line: &str) -> Option<(&str, &str, &str)> {
    let time = line.get(..19)?;
    let b = time.as_bytes();
    let shaped =
        b[4] == b'-' && b[10] == b' ' && b[13] == b':' && b[..4].iter().all(u8::is_ascii_digit);
    if !shaped {
        return None;
    }
    let mut parts = line[19..].strip_prefix(" - ")?.splitn(3, " - ");
    let (_name, level, message) = (parts.next()?, parts.next()?, parts.next()?);
    Some((time, level, message))
}

fn iso(time: &str) -> String {
    time.replacen(' ', "T", 1)
}

/// A number as Python formats it, `nan` and `inf` included.
fn number(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches('%');
    match t.to_ascii_lowercase().as_str() {
        "nan" | "-nan" => Some(f64::NAN),
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// `41.2K` → 41,200; `1.3M` → 1,300,000; `812` → 812.
fn scaled(text: &str) -> Option<f64> {
    let t = text.trim();
    let (digits, scale) = match t.chars().last()? {
        'K' | 'k' => (&t[..t.len() - 1], 1e3),
        'M' => (&t[..t.len() - 1], 1e6),
        'G' => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    number(digits).map(|v| v * scale)
}

/// The first number of `text`, up to a space or `(`.
fn leading_number(text: &str) -> Option<f64> {
    number(text.trim().split([' ', '(']).next()?)
}

fn step_line(rest: &str, time: &str) -> Option<LogStep> {
    let mut fields = rest.split(" | ");
    let (step, max_steps) = match fields.next()?.trim().split_once('/') {
        Some((n, m)) => (n.trim().parse().ok()?, m.trim().parse().ok()),
        None => (rest.trim().parse().ok()?, None),
    };
    let mut s = LogStep {
        step,
        max_steps,
        time: Some(iso(time)),
        ..Default::default()
    };
    for field in fields {
        let field = field.trim();
        if let Some(v) = field.strip_prefix("Loss:") {
            s.loss = leading_number(v);
        } else if let Some(v) = field.strip_prefix("CE:") {
            s.ce = leading_number(v);
        } else if let Some(v) = field.strip_prefix("LR:") {
            s.lr = leading_number(v);
        } else if let Some(v) = field.strip_prefix("Grad: pre") {
            s.grad_pre_clip = leading_number(v);
        } else if let Some(v) = field.strip_prefix("post") {
            s.grad_post_clip = leading_number(v);
        } else if let Some(v) = field.strip_suffix(" tok/s") {
            // The instant rate; `Avg: … tok/s (… steps/s)` is the running mean.
            if !field.starts_with("Avg") {
                s.tokens_per_sec = scaled(v);
            }
        }
    }
    Some(s)
}

/// The trainer's `Batch: {micro} micro × {accum} accum = {effective} effective` and
/// `Sequence length: {n}` (hydra/training/trainer.py).
fn setup_line(message: &str) -> Option<Setup> {
    if let Some(rest) = message.strip_prefix("Sequence length:") {
        let max_seq_len = Some(rest.trim().parse().ok()?);
        return Some(Setup {
            max_seq_len,
            ..Default::default()
        });
    }
    let words: Vec<&str> = message.strip_prefix("Batch:")?.split_whitespace().collect();
    match words.as_slice() {
        [micro, "micro", _, accum, "accum", ..] => Some(Setup {
            batch_size: Some(micro.parse().ok()?),
            grad_accum_steps: Some(accum.parse().ok()?),
            ..Default::default()
        }),
        _ => None,
    }
}

/// `key=value` words of a line, values as written.
fn pairs(rest: &str) -> impl Iterator<Item = (&str, &str)> {
    rest.split_whitespace().filter_map(|w| w.split_once('='))
}

fn eval_line(rest: &str, time: &str) -> Option<LogEval> {
    let (mut step, mut eval_loss, mut train_loss) = (None, None, None);
    for (k, v) in pairs(rest) {
        match k {
            "step" => step = v.parse().ok(),
            "eval_loss" => eval_loss = number(v),
            "train_loss" => train_loss = number(v),
            _ => {}
        }
    }
    Some(LogEval {
        step: step?,
        time: Some(iso(time)),
        eval_loss: eval_loss?,
        train_loss,
    })
}

fn components_line(rest: &str) -> Option<LogLine> {
    let mut step = None;
    let mut components = Vec::new();
    for (k, v) in pairs(rest) {
        if k == "step" {
            step = v.parse().ok();
        } else if let Some(loss) = number(v) {
            // `code(0.20)`: the component's weight in the mix is not its name.
            let name = k.split('(').next().unwrap_or(k);
            components.push((name.to_string(), loss));
        }
    }
    Some(LogLine::EvalComponents {
        step: step?,
        components,
    })
}

/// Whether `now` is `was` refined — the step a log line gave, now with its diagnostics
/// record's full floats and the fields the log lacks — rather than the step trained again (a
/// resume logs the steps after its checkpoint again). `was` holds nothing a log line does
/// not give, and every value it holds `now` holds too, equal to the digits the log prints.
/// A replay equal to those digits reads as a refinement: a page keeps the old digits until
/// it reloads, as for a diagnostics record.
pub fn refines(was: &Step, now: &Step) -> bool {
    let logged_only = [
        Metric::LossAux,
        Metric::LossPonder,
        Metric::LossAdvantage,
        Metric::EmaShort,
        Metric::EmaMedium,
        Metric::EmaLong,
        Metric::VramGb,
    ]
    .iter()
    .all(|m| m.of(was).is_none())
        && was.batch_size.is_none()
        && was.seq_len.is_none();
    // How far a printed value can lie from the float it was printed from: losses to four
    // decimals, LR and gradients as `2.71e-04`, throughput as `41.2K`.
    let printed = |m: Metric, a: f64, b: f64| {
        let off = (a - b).abs();
        match m {
            Metric::TokensPerSec => off <= 50.0 + 1e-9 * a.abs(),
            Metric::Lr | Metric::GradNorm | Metric::GradNormPreClip => {
                off <= 5e-3 * a.abs().max(b.abs()) * (1.0 + 1e-9)
            }
            _ => off <= 5e-5 * (1.0 + 1e-9) + 1e-12 * a.abs(),
        }
    };
    logged_only
        && Metric::ALL
            .into_iter()
            .all(|m| match (m.of(was), m.of(now)) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => {
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || printed(m, a, b)
                }
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: &str = "2026-01-09 17:28:53 - HYDRA - INFO - Step 12100/30000 | Loss: 2.6612 (EMA: 2.6790) | CE: 2.5813 (EMA: 2.5986) | LR: 2.71e-04 | Grad: pre 6.12e-01 | post 6.12e-01 | clipped  0.0% | 41.2K tok/s | Avg: 40.4K tok/s (1.25 steps/s)";

    #[test]
    fn a_step_line_gives_its_numbers() {
        let LogLine::Step(s) = parse_line(STEP) else {
            panic!("{:?}", parse_line(STEP));
        };
        assert_eq!(
            s,
            LogStep {
                step: 12100,
                max_steps: Some(30000),
                time: Some("2026-01-09T17:28:53".into()),
                loss: Some(2.6612),
                ce: Some(2.5813),
                lr: Some(2.71e-4),
                grad_pre_clip: Some(0.612),
                grad_post_clip: Some(0.612),
                tokens_per_sec: Some(41_200.0),
            }
        );
    }

    #[test]
    fn right_aligned_steps_dynamic_clips_and_non_finite_losses_read() {
        let line = "2026-01-09 14:47:53 - HYDRA - INFO - Step    25/20000 | Loss: nan (EMA: 3.7) | CE: inf (EMA: 3.6) | LR: 1.95e-05 | Grad: pre 7.88e+00 | post 6.12e-01 (dyn=3) | clipped 100.0% | 812 tok/s | Avg: 1.2M tok/s (1.25 steps/s)";
        let LogLine::Step(s) = parse_line(line) else {
            panic!();
        };
        assert_eq!((s.step, s.max_steps), (25, Some(20000)));
        assert!(s.loss.unwrap().is_nan());
        assert_eq!(s.ce, Some(f64::INFINITY));
        assert_eq!(
            (s.grad_pre_clip, s.grad_post_clip),
            (Some(7.88), Some(0.612))
        );
        assert_eq!(s.tokens_per_sec, Some(812.0));
    }

    #[test]
    fn eval_lines_and_their_components() {
        let eval = "2026-01-09 17:30:00 - HYDRA - INFO - [EVAL] step=12500  eval_loss=2.7403  train_loss=2.6350";
        assert_eq!(
            parse_line(eval),
            LogLine::Eval(LogEval {
                step: 12500,
                time: Some("2026-01-09T17:30:00".into()),
                eval_loss: 2.7403,
                train_loss: Some(2.635),
            })
        );
        let parts = "2026-01-09 17:30:00 - HYDRA - INFO - [EVAL_COMPONENTS] step=12500  code(0.20)=2.1034  fineweb(0.60)=2.9120  math=2.4410";
        assert_eq!(
            parse_line(parts),
            LogLine::EvalComponents {
                step: 12500,
                components: vec![
                    ("code".into(), 2.1034),
                    ("fineweb".into(), 2.912),
                    ("math".into(), 2.441)
                ],
            }
        );
    }

    #[test]
    fn the_start_up_lines_say_how_big_a_step_is() {
        let at = |rest: &str| format!("2026-01-09 14:47:33 - HYDRA - INFO - {rest}");
        assert_eq!(
            parse_line(&at("Batch: 8 micro × 4 accum = 32 effective")),
            LogLine::Setup(Setup {
                batch_size: Some(8),
                grad_accum_steps: Some(4),
                max_seq_len: None,
            })
        );
        assert_eq!(
            parse_line(&at("Sequence length: 2048")),
            LogLine::Setup(Setup {
                max_seq_len: Some(2048),
                ..Default::default()
            })
        );
        // Lines alike that say something else.
        for other in [
            "Batch sources (window): fineweb=61, code=22, math=17",
            "Batch: 8 micro",
            "Batch: eight micro × 4 accum = 32 effective",
            "Sequence length: 2048 → 4096",
            "Tokens/step: 65,536 (0.07M per optimizer step)",
        ] {
            assert_eq!(parse_line(&at(other)), LogLine::Other, "{other}");
        }
    }

    #[test]
    fn how_a_run_ended() {
        let at = |rest: &str| format!("2026-01-09 19:14:13 - HYDRA - {rest}");
        assert_eq!(
            parse_line(&at("INFO - Training complete!")),
            LogLine::Complete
        );
        assert_eq!(
            parse_line(&at("ERROR - CUDA out of memory")),
            LogLine::Error
        );
        assert_eq!(
            parse_line("Traceback (most recent call last):"),
            LogLine::Error
        );
        assert_eq!(parse_line("  File \"trainer.py\", line 12"), LogLine::Other);
    }

    #[test]
    fn anything_else_is_other_and_nothing_panics() {
        for line in [
            "",
            "garbage",
            "2026-01-09 17:28:53 - HYDRA - INFO - Step 12100/300",
            "2026-01-09 17:28:53 - HYDRA - INFO - Step",
            "2026-01-09 17:28:53 - HYDRA - INFO - Step x/y | Loss: 2",
            "2026-01-09 17:28:53 - HYDRA - INFO - [EVAL] step=  eval_loss=",
            "2026-01-09 17:28:53 - HYDRA - INFO - Batch sources (window): fineweb=61",
            "2026-01-09 17:28:5",
            "2026-01-09 17:28:53 - HYDRA",
            "ü2026-01-09 17:28:53 - HYDRA - INFO - Step 1/2",
            "2026-01-09 17:28:53 - HYDRA - INFO - Step 99999999999999999999/1",
        ] {
            let parsed = parse_line(line);
            assert!(
                !matches!(
                    parsed,
                    LogLine::Eval(_) | LogLine::Complete | LogLine::Error
                ),
                "{line:?} → {parsed:?}"
            );
        }
        // A line cut short still gives what it has.
        let LogLine::Step(s) = parse_line(&STEP[..110]) else {
            panic!();
        };
        assert_eq!((s.step, s.loss), (12100, Some(2.6612)));
    }
}
