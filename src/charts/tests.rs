use super::*;
use crate::analysis::charts::RunColumns;
use crate::analysis::oracle::prepare;
use crate::model::{RunCharts, RunConfig};
use plotters::prelude::IntoDrawingArea;

/// A 3,000-step run with a spike at 2,000, a NaN at 1,200 and an Inf at 1,210, pre-clip
/// norms over the clip threshold now and then, and no recorded EMAs.
fn run() -> RunCharts {
    let mut c = RunColumns::default();
    for i in 0..300_i64 {
        let step = i * 10;
        let mut loss = 2.3 + 8.5 * ((step + 200) as f64).powf(-0.33);
        if step == 2000 {
            loss += 3.0;
        }
        c.steps.push(step);
        c.loss.push(match step {
            1200 => f64::NAN,
            1210 => f64::INFINITY,
            _ => loss,
        });
        for e in &mut c.ema {
            e.push(0.0);
        }
        c.lr.push(1e-4 * ((step + 1) as f64 / 1000.0).min(1.0));
        let pre = if i % 10 == 0 { 7.0 } else { 3.0 };
        c.grad_pre_clip.push(pre);
        c.grad.push(pre.min(5.0));
    }
    let config = RunConfig::parse(Some(r#"{"grad_clip": 5.0, "warmup_steps": 1000}"#));
    prepare(&c, &config, 100)
}

fn svg_of(
    draw: impl Fn(&DrawingArea<plotters::backend::SVGBackend<'_>, Shift>) -> SvgResult,
) -> String {
    // plotters writes each text node on a line of its own: `>\nlabel\n<`.
    to_svg(600, 260, draw)
        .to_lowercase()
        .replace(">\n", ">")
        .replace("\n<", "<")
}

#[test]
fn preparation_finds_spikes_divergence_and_clipping() {
    let r = run();
    assert!(r.ema_computed, "the file held only 0.0 EMAs");
    assert_eq!(r.spikes.iter().map(|p| p.0).collect::<Vec<_>>(), vec![2000]);
    assert_eq!(r.diverged.len(), 2);
    assert_eq!(r.clipped_share, Some(0.1));
    assert_eq!(r.grad_clip, Some(5.0));
    assert_eq!((r.first_step, r.last_step), (0, 2990));
    assert!(r.loss.len() <= 4 * 100 + 1);
    let tallest = r.loss.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    assert_eq!(
        tallest, r.spikes[0].1,
        "the spike survives downsampling at full height"
    );
    assert!(r.loss.iter().all(|p| p.1.is_finite()));
}

#[test]
fn the_loss_chart_draws_every_series_marker_and_legend() {
    let r = run();
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.starts_with("<svg"), "{svg:.200}");
    for color in ["#ef4444", "#f97316", "#eab308", "#22c55e"] {
        assert!(
            svg.contains(&format!("stroke=\"{color}\"")),
            "no line in {color}"
        );
    }
    for label in [
        "loss",
        "ema short (computed)",
        "ema medium (computed)",
        "ema long (computed)",
        "spike (1)",
        " nan/inf ×2",
    ] {
        assert!(svg.contains(&format!(">{label}<")), "no text {label:?}");
    }
    assert!(svg.contains("<circle"), "the spike is ringed");
    assert!(svg.matches("<polyline").count() >= 4);
}

#[test]
fn alerts_are_marked_at_their_steps_open_bright_resolved_faint_and_only_in_view() {
    use crate::model::{AlertKind, AlertMark};
    let mut r = run();
    r.alerts = vec![
        AlertMark {
            step: 1_200,
            kind: AlertKind::Nan,
            open: false,
        },
        AlertMark {
            step: 2_000,
            kind: AlertKind::LossSpike,
            open: true,
        },
    ];
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains(">alert (2)<"), "legend");
    assert!(svg.contains("> loss spike<") && svg.contains("> nan<"));
    // Two at one step share a label.
    r.alerts.push(AlertMark {
        step: 2_000,
        kind: AlertKind::GradSpike,
        open: false,
    });
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains("> loss spike, gradient spike<"), "one label");
    r.alerts.pop();
    assert!(
        svg.contains("fill=\"#f0abfc\""),
        "the open one's triangle, full colour"
    );
    let zoomed = View {
        range: Some((1_500, 2_500)),
        ..View::default()
    };
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &zoomed));
    assert!(
        svg.contains(">alert (1)<") && !svg.contains("> nan<"),
        "only in view"
    );
    r.alerts.clear();
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(!svg.contains("alert ("));
}

#[test]
fn the_legend_is_a_row_above_the_plot_never_over_it() {
    let r = run();
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    let y_of = |label: &str| -> f64 {
        let end = svg.find(&format!(">{label}<")).expect(label);
        let start = svg[..end].rfind("<text").unwrap();
        let y = svg[start..end].split("y=\"").nth(1).unwrap();
        y.split('"').next().unwrap().parse().unwrap()
    };
    for label in ["loss", "ema long (computed)", "spike (1)"] {
        assert!(
            y_of(label) < LEGEND_ROW as f64,
            "{label} sits in the legend row"
        );
    }
}

#[test]
fn a_target_loss_is_a_dashed_line_named_in_the_legend() {
    let mut r = run();
    r.target_loss = Some(1.5);
    let svg = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains(">target 1.5<"), "named in the legend");
    // Below every loss (all above 2.3), yet inside the plot: the y axis reaches it.
    let dash_ys: Vec<f64> = svg
        .split("<polyline")
        .filter(|p| p.contains("stroke=\"#eab308\""))
        .filter_map(|p| {
            let points = p.split("points=\"").nth(1)?.split('"').next()?;
            let ys: Vec<&str> = points
                .split(' ')
                .filter_map(|xy| xy.split(',').nth(1))
                .collect();
            (ys.len() == 2 && ys[0] == ys[1]).then(|| ys[0].parse().ok())?
        })
        // Not the legend row's swatches.
        .filter(|y: &f64| *y > LEGEND_ROW as f64)
        .collect();
    assert!(dash_ys.len() > 20, "about 30 dashes, got {}", dash_ys.len());
    let (top, bottom) = (
        (LEGEND_ROW + MARGIN) as f64,
        (260 - MARGIN - X_LABEL_AREA) as f64,
    );
    assert!(
        dash_ys.iter().all(|y| (top..=bottom).contains(y)),
        "{dash_ys:?}"
    );
}

#[test]
fn the_x_axis_reads_time_or_tokens_from_the_runs_clock() {
    use crate::model::ClockMark;
    let mut r = run();
    r.clock = (0..=300)
        .map(|i| ClockMark {
            step: i * 10,
            time: Some(1_700_000_000.0 + i as f64 * 36.0),
            tokens: Some(i as f64 * 10.0 * 1e6),
        })
        .collect();
    let labels = |x_axis| {
        let view = View {
            x_axis,
            ..View::default()
        };
        svg_of(|root| loss::draw(root, &r, &theme::DARK, &view))
    };
    assert!(labels(XAxis::Step).contains(">2k<"));
    // 3,000 steps in 3 hours: step 2,000 is 2 h in.
    assert!(labels(XAxis::Time).contains(">2h 0m<"), "elapsed time");
    assert!(labels(XAxis::Tokens).contains(">2.00b<"), "tokens");
}

#[test]
fn a_flat_learning_rate_on_a_log_axis_has_distinct_labels() {
    let r = RunCharts {
        first_step: 0,
        last_step: 1990,
        lr: (0..200).map(|i| (i * 10, 1e-4)).collect(),
        ..Default::default()
    };
    let view = View {
        log_y: true,
        ..View::default()
    };
    let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &view));
    let labels: std::collections::BTreeSet<&str> = svg
        .split("<text")
        .filter_map(|t| t.split('>').nth(1)?.split('<').next())
        .filter(|t| t.contains("e-"))
        .collect();
    assert!(labels.len() >= 3, "{labels:?}");
}

#[test]
fn nearby_divergences_share_one_label() {
    use crate::model::NonFinite::*;
    let labels = loss::divergence_labels(&[(100, Nan), (110, Inf), (120, Inf), (5000, Nan)], 50);
    assert_eq!(
        labels,
        vec![(100, " NaN/Inf ×3".to_string()), (5000, " NaN".to_string())]
    );
}

#[test]
fn the_grad_chart_draws_pre_clip_area_post_clip_line_and_threshold() {
    let r = run();
    let svg = svg_of(|root| grad::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains(">pre-clip<") && svg.contains(">post-clip<") && svg.contains(">clip 5<"));
    assert!(svg.contains("<polygon"), "pre-clip drawn as an area");
    assert!(svg.contains("stroke=\"#a855f7\""));
    assert!(svg.contains("#eab308"), "the threshold line");
}

#[test]
fn the_lr_chart_marks_the_end_of_warmup() {
    let r = run();
    let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains("stroke=\"#3b82f6\""));
    assert!(svg.contains("> warmup end<"));
    assert!(!svg.contains("controller"), "no controller, no strip");
}

#[test]
fn the_lr_chart_shows_the_adaptive_controller_and_its_cooldowns() {
    use crate::analysis::adaptive_lr::AdaptiveLrSeries;
    use crate::model::AdaptiveLr;
    let mut r = run();
    let records: Vec<AdaptiveLr> = (0..30)
        .map(|i| AdaptiveLr {
            step: i * 100,
            loss_ema_short: Some(3.0 - i as f64 * 0.01),
            loss_ema_long: Some(3.1 - i as f64 * 0.008),
            patience_counter: Some(i % 4),
            cooldown_triggered: Some(i64::from(i == 17)),
        })
        .collect();
    r.adaptive_lr = AdaptiveLrSeries::new(&records).charts(None, 100);
    let svg = svg_of(|root| lr::draw(root, &r, &theme::DARK, &View::default()));
    for color in ["#3b82f6", "#06b6d4", "#ec4899"] {
        assert!(svg.contains(&format!("stroke=\"{color}\"")), "{color}");
    }
    for label in [
        ">cooldown<",
        ">loss ema short<",
        ">patience 0–3<",
        "> adaptive-lr controller<",
    ] {
        assert!(svg.contains(label), "no {label}");
    }
    // The cooldown's dashes cross both the rate and the strip.
    assert!(svg.matches("#eab308").count() >= 48);
    let (_, lines) = spec::ChartSpec::LearningRate(r).describe(1700, 0.0);
    let names: Vec<&str> = lines.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "lr",
            "controller EMA short",
            "controller EMA long",
            "patience"
        ]
    );
}

/// 24 layers over 40 routing steps; layer 0 collapses at step 1000; MoE with four experts.
fn routing() -> crate::model::RoutingCharts {
    use crate::model::{RoutingMod, RoutingMoe, RoutingMor};
    let (mut mods, mut mors, mut moes) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..40_i64 {
        let step = i * 50;
        for layer in 0..24 {
            let frac = match layer {
                1 => 0.58,
                2 => 0.9,
                _ => 0.5,
            };
            mods.push(RoutingMod {
                step,
                run_id: "r".into(),
                model_id: "m".into(),
                layer,
                selected_frac: Some(if step < 200 { 1.0 } else { frac }),
                compute_savings_pct: Some((1.0 - frac) * 100.0),
                probs_mean: None,
                probs_std: None,
                status: Some(if step < 200 { "warmup" } else { "ok" }.into()),
            });
            let depth = if layer == 0 && step >= 1000 {
                1.0
            } else {
                2.0 + layer as f64 * 0.02
            };
            mors.push(RoutingMor {
                step,
                run_id: "r".into(),
                model_id: "m".into(),
                layer,
                avg_depth: Some(depth),
                expected_depth: Some(depth + 0.1),
                router_probs_mean: None,
                status: Some("ok".into()),
                depth_histogram: None,
            });
        }
        moes.push(RoutingMoe {
            step,
            run_id: "r".into(),
            model_id: "m".into(),
            entropy: Some(1.3),
            divergence: Some(0.05),
            util_expert_0: Some(40.0),
            util_expert_1: Some(20.0),
            util_expert_2: Some(20.0),
            util_expert_3: Some(20.0),
        });
    }
    let config = RunConfig::parse(Some(r#"{"mod_capacity": 0.5, "mor_min_depth": 1}"#));
    crate::analysis::oracle::prepare_routing(&mods, &mors, &moes, &config, 150)
}

#[test]
fn the_mod_heatmap_colours_every_layer_by_distance_from_capacity() {
    let r = routing();
    assert_eq!(r.layers.len(), 24);
    let svg = svg_of(|root| mod_heatmap::draw(root, &r, &theme::DARK, &View::default()));
    // green on target, yellow drifting (0.58), red off (0.9), grey warmup
    for color in ["#22c55e", "#eab308", "#ef4444", "#484f58"] {
        assert!(
            svg.contains(&format!("fill=\"{color}\"")),
            "no cell in {color}"
        );
    }
    assert!(
        svg.matches("<rect").count() >= 24 * 40,
        "a cell per layer and step"
    );
    assert!(svg.contains(">l0<") && svg.contains(">warmup<"));
}

#[test]
fn the_mor_chart_names_the_collapsed_layer_where_it_began() {
    let r = routing();
    assert_eq!(r.collapses.len(), 1);
    assert_eq!((r.collapses[0].layer, r.collapses[0].since_step), (0, 1000));
    let svg = svg_of(|root| mor_depth::draw(root, &r, &theme::DARK, &View::default()));
    assert!(svg.contains("> l0 collapsed<"), "the marker on the chart");
    assert!(svg.contains(">l0 collapsed<"), "the legend entry");
    assert!(
        svg.matches("<polyline").count() >= 24,
        "a line for every layer"
    );
    assert!(!svg.contains("brief flicker"), "no flickers in this run");
}

#[test]
fn the_mor_chart_draws_flickers_faintly_without_a_warning() {
    let mut r = routing();
    r.flickers = vec![crate::model::Flicker {
        layer: 5,
        since_step: 300,
        until_step: 450,
    }];
    let svg = svg_of(|root| mor_depth::draw(root, &r, &theme::DARK, &View::default()));
    assert!(
        svg.contains(">brief flicker<"),
        "the legend says what the marks are"
    );
    assert!(!svg.contains("l5 collapsed"), "no warning");
    // Layer 5's colour, half transparent, as a filled mark.
    assert!(svg.contains("opacity=\"0.5\" fill=\"#06b6d4\""));
}

#[test]
fn the_moe_chart_draws_each_expert() {
    let r = routing();
    let svg = svg_of(|root| moe::draw(root, &r, &theme::DARK, &View::default()));
    for i in 0..4 {
        assert!(svg.contains(&format!(">expert {i}<")));
    }
    let none = crate::model::RoutingCharts::default();
    assert!(
        svg_of(|root| moe::draw(root, &none, &theme::DARK, &View::default()))
            .contains("no moe routing")
    );
}

#[test]
fn the_gauges_fill_in_their_zone_colour_and_tick_the_target() {
    let g = crate::model::Gauges {
        tokens_per_sec: Some(7_000.0),
        tokens_per_sec_mean: Some(8_000.0),
        target_tokens_per_sec: 12_000.0,
        vram_gb: Some(29.0),
        vram_warn_gb: 24.0,
        vram_danger_gb: 28.0,
        vram_total_gb: 32.0,
        recent_tokens_per_sec: Vec::new(),
    };
    let svg = svg_of(|root| gauges::draw(root, &g, &theme::DARK));
    assert!(svg.contains(">7,000 tok/s<") && svg.contains(">mean 8,000 · target 12,000<"));
    assert!(svg.contains(">29.0 gb<") && svg.contains(">of 32 gb<"));
    // 7,000 of 12,000 is 58%: yellow; 29 GB is past the 28 GB danger line: red.
    assert!(svg.contains("fill=\"#eab308\" stroke=\"none\"") || svg.contains("fill=\"#eab308\""));
    assert!(svg.contains("fill=\"#ef4444\""));
    let none = crate::model::Gauges::default();
    assert!(svg_of(|root| gauges::draw(root, &none, &theme::DARK)).contains(">not recorded<"));
}

#[test]
fn step_labels_never_repeat_on_a_zoomed_axis() {
    assert_eq!(step_label(&950), "950");
    assert_eq!(step_label(&12_000), "12k");
    assert_eq!(step_label(&12_500), "12.5k");
    assert_eq!(step_label(&14_250), "14.25k");
    assert_eq!(step_label(&1_250_000), "1.25M");
    assert_eq!(step_label(&-2_000), "-2k");
}

#[test]
fn the_plot_area_is_where_the_page_maps_the_mouse() {
    // The page turns a mouse x into a step with `plot_x_pixels`; it must match where
    // plotters really puts the plotting area.
    for width in [600_u32, 1200] {
        let mut svg = String::new();
        let root =
            plotters::backend::SVGBackend::with_string(&mut svg, (width, 260)).into_drawing_area();
        let chart = frame(&root)
            .build_cartesian_2d(0_i64..100, 0.0..1.0)
            .unwrap();
        let (xs, _) = chart.plotting_area().get_pixel_range();
        let (left, right) = plot_x_pixels(width);
        assert_eq!(
            (xs.start as f64, xs.end as f64),
            (left, right),
            "width {width}"
        );
        assert_eq!(step_at_pixel(left, width, (1000, 2000)), 1000);
        assert_eq!(step_at_pixel(right, width, (1000, 2000)), 2000);
        assert_eq!(
            step_at_pixel((left + right) / 2.0, width, (1000, 2000)),
            1500
        );
        assert_eq!(step_at_pixel(-50.0, width, (1000, 2000)), 1000, "clamped");
    }
}

#[test]
fn a_zoomed_log_view_draws_only_its_range_in_decades() {
    let r = run();
    let view = View {
        range: Some((1000, 1500)),
        log_y: true,
        ..View::default()
    };
    let drawn: Vec<(i64, f64)> = view.points(&r.loss).collect();
    assert!(!drawn.is_empty());
    assert!(drawn.iter().all(|(s, _)| (1000..=1500).contains(s)));
    let raw = r.loss.iter().find(|p| p.0 == drawn[0].0).unwrap().1;
    assert!(
        (view.value(drawn[0].1) - raw).abs() < 1e-12,
        "log10 and back"
    );
    assert!(View {
        log_y: true,
        ..View::default()
    }
    .points(&[(0, 0.0), (1, -1.0)])
    .next()
    .is_none());
    let zoomed = svg_of(|root| loss::draw(root, &r, &theme::DARK, &view));
    let whole = svg_of(|root| loss::draw(root, &r, &theme::DARK, &View::default()));
    assert!(
        !zoomed.contains(">spike (1)<"),
        "the spike at 2,000 is outside 1,000–1,500"
    );
    assert!(whole.contains(">spike (1)<"));
    assert!(
        zoomed.contains(">1.5k<"),
        "x axis labelled in the zoomed range"
    );
}

#[test]
fn an_empty_run_says_so_instead_of_a_blank_box() {
    let empty = RunCharts::default();
    for (name, svg) in [
        (
            "loss",
            svg_of(|root| loss::draw(root, &empty, &theme::DARK, &View::default())),
        ),
        (
            "learning rate",
            svg_of(|root| lr::draw(root, &empty, &theme::DARK, &View::default())),
        ),
        (
            "gradient norm",
            svg_of(|root| grad::draw(root, &empty, &theme::DARK, &View::default())),
        ),
    ] {
        assert!(
            svg.contains(&format!("no {name} logged")),
            "{name}: {svg:.300}"
        );
    }
}
