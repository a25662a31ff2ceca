//! The `hydra-dashboard` command: serve a training database, or run the demo.

#[cfg(feature = "ssr")]
mod cli {
    use clap::{Args, Parser, Subcommand};
    use hydra_dashboard::model::GaugeSettings;
    use hydra_dashboard::server::{self, demo, store::Store, AppState};
    use std::path::PathBuf;

    /// Real-time dashboard for HYDRA LLM training runs.
    ///
    /// Reads the trainer's SQLite database read-only while training runs and serves the
    /// dashboard, a REST API (docs/api.md) and server-rendered pages. It never writes to the
    /// database.
    #[derive(Parser)]
    #[command(name = "hydra-dashboard", version, about, long_about)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Serve the dashboard for an existing training database.
        Serve {
            /// The trainer's working directory: its database, diagnostics files, logs and
            /// reports are read from `checkpoints/`, `logs/` and `reports/` under it, while
            /// it trains (default: the current directory).
            #[arg(long, env = "HYDRA_ROOT")]
            root: Option<PathBuf>,
            /// The trainer's database (opened read-only, never modified). Default:
            /// ROOT/checkpoints/training.db. Given alone, only the database is read.
            #[arg(long, env = "HYDRA_DB")]
            db: Option<PathBuf>,
            /// Where the diagnostics files are (default: ROOT/checkpoints).
            #[arg(long)]
            diagnostics_dir: Option<PathBuf>,
            /// Where the logs are (default: ROOT/logs).
            #[arg(long)]
            log_dir: Option<PathBuf>,
            /// Where the reports are (default: ROOT/reports).
            #[arg(long)]
            report_dir: Option<PathBuf>,
            /// Serve the runs a team's nodes ship into this PostgreSQL (`sync`) instead of
            /// local files: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
            #[arg(long, env = "HYDRA_STORE", conflicts_with_all = ["root", "db", "diagnostics_dir", "log_dir", "report_dir"])]
            store: Option<String>,
            /// Address to listen on. Keep it on 127.0.0.1 and reach it through an SSH tunnel
            /// unless you mean to expose the run.
            #[arg(long, env = "HYDRA_ADDR", default_value = "127.0.0.1:8765")]
            addr: String,
            /// Memory for runs kept in memory for the charts, in MB; the least recently
            /// viewed runs are dropped beyond it (about 70 bytes per logged step).
            #[arg(long, env = "HYDRA_CACHE_MB", default_value_t = 1024)]
            cache_mb: usize,
            /// The dashboard's own directory, for shared snapshots (never the trainer's
            /// file). Default: $XDG_STATE_HOME/hydra-dashboard or
            /// ~/.local/state/hydra-dashboard; made when the first snapshot is shared.
            #[arg(long, env = "HYDRA_STATE_DIR")]
            state_dir: Option<PathBuf>,
            #[command(flatten)]
            access: AccessArgs,
            #[command(flatten)]
            gauges: GaugeArgs,
            #[command(flatten)]
            rules: RuleArgs,
            #[command(flatten)]
            notify: NotifyArgs,
        },
        /// Print every run's alerts, found by reading its whole history as the server's
        /// watcher would (no server needed). Exit code 1 when any alert is still open: usable
        /// from cron or CI.
        Alerts {
            /// The trainer's working directory (default: the current directory).
            #[arg(long, env = "HYDRA_ROOT")]
            root: Option<PathBuf>,
            /// Only this run.
            #[arg(long)]
            run: Option<String>,
            /// One JSON object per alert instead of sentences.
            #[arg(long)]
            json: bool,
            #[command(flatten)]
            rules: RuleArgs,
        },
        /// Write one run's dashboard, or with --runs a comparison of runs, as a single
        /// self-contained HTML file (inline CSS and SVG charts, no scripts): readable offline,
        /// with JavaScript off, after the runs moved on.
        Snapshot {
            /// The trainer's working directory: its database, logs, diagnostics files and
            /// reports (default: the current directory; with --db alone, only the database).
            #[arg(long, env = "HYDRA_ROOT")]
            root: Option<PathBuf>,
            /// The trainer's database (opened read-only, never modified). Default:
            /// ROOT/checkpoints/training.db.
            #[arg(long, env = "HYDRA_DB")]
            db: Option<PathBuf>,
            /// The run to freeze (default: the newest run, as `/` shows it).
            #[arg(long, conflicts_with = "runs")]
            run: Option<String>,
            /// Where to write the HTML file.
            #[arg(long)]
            out: PathBuf,
            /// Show only steps from here on (the charts' zoom).
            #[arg(long, conflicts_with = "runs")]
            start_step: Option<i64>,
            /// Show only steps up to here.
            #[arg(long, conflicts_with = "runs")]
            end_step: Option<i64>,
            /// Freeze these runs side by side, as /compare shows them (comma-separated ids,
            /// up to 20).
            #[arg(long, value_delimiter = ',')]
            runs: Vec<String>,
            /// The comparison's x axis: step, tokens or time (seconds since each run's start).
            #[arg(long, requires = "runs", value_parser = ["step", "tokens", "time"])]
            x: Option<String>,
            /// The comparison's smoothing weight, 0–0.999.
            #[arg(long, requires = "runs")]
            smoothing: Option<f64>,
            /// The comparison's zoom, from here on, in units of --x.
            #[arg(long, requires = "runs")]
            start: Option<f64>,
            /// The comparison's zoom, up to here, in units of --x.
            #[arg(long, requires = "runs")]
            end: Option<f64>,
            /// Draw the y axes on a log scale.
            #[arg(long)]
            log_scale: bool,
            #[command(flatten)]
            gauges: GaugeArgs,
        },
        /// Ship this node's runs (its database, logs, diagnostics files and reports, read
        /// as serve reads them, never changed) into a team's PostgreSQL, and keep shipping
        /// as they train. Shipping the same records twice changes nothing.
        Sync {
            /// The trainer's working directory (default: the current directory).
            #[arg(long, env = "HYDRA_ROOT")]
            root: Option<PathBuf>,
            /// The trainer's database. Default: ROOT/checkpoints/training.db.
            #[arg(long, env = "HYDRA_DB")]
            db: Option<PathBuf>,
            /// The PostgreSQL to ship to: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE.
            /// hydra-dashboard's tables are made there on first connect.
            #[arg(long, env = "HYDRA_SYNC_TO")]
            to: String,
            /// Catch up once and exit, instead of following until stopped.
            #[arg(long)]
            once: bool,
            /// This node's name, recorded with each of its runs (default: the hostname).
            #[arg(long, env = "HYDRA_NODE")]
            node: Option<String>,
        },
        /// Run a simulated HYDRA trainer in a fresh directory (its log, diagnostics file,
        /// reports and database, written as the trainer writes them) and serve it.
        Demo {
            /// Address to listen on.
            #[arg(long, env = "HYDRA_ADDR", default_value = "127.0.0.1:8765")]
            addr: String,
            /// The demo trainer's working directory, empty or new (default: a new temporary
            /// directory).
            #[arg(long, env = "HYDRA_DEMO_DIR")]
            dir: Option<PathBuf>,
            /// Log lines per second the simulated trainer writes (a line every 25 steps, as
            /// the trainer logs by default).
            #[arg(long, default_value_t = 4.0)]
            rate: f64,
            /// The dashboard's own directory, for shared snapshots (default: beside the
            /// demo's database).
            #[arg(long, env = "HYDRA_STATE_DIR")]
            state_dir: Option<PathBuf>,
            #[command(flatten)]
            access: AccessArgs,
            #[command(flatten)]
            gauges: GaugeArgs,
            #[command(flatten)]
            rules: RuleArgs,
            #[command(flatten)]
            notify: NotifyArgs,
        },
    }

    /// Whom alerts are told to, beyond the page.
    #[derive(Args)]
    struct NotifyArgs {
        /// POST each alert raised or resolved to this URL as JSON that Slack and Discord
        /// incoming webhooks accept as is (docs/alerts.md). Repeatable; the variable takes
        /// several, comma-separated. Nothing is sent anywhere else.
        #[arg(
            long = "notify-webhook",
            env = "HYDRA_NOTIFY_WEBHOOK",
            value_delimiter = ',',
            hide_env_values = true
        )]
        notify_webhook: Vec<String>,
        /// The address people reach this dashboard at (e.g. https://dash.example.com), for
        /// the link in each webhook message.
        #[arg(long, env = "HYDRA_PUBLIC_URL")]
        public_url: Option<String>,
    }

    /// The alert detectors' thresholds (docs/alerts.md).
    #[derive(Args)]
    struct RuleArgs {
        /// A loss or gradient norm this many robust σ above the median of its last 128
        /// logged values is a spike.
        #[arg(long, env = "HYDRA_ALERT_SPIKE_SIGMAS", default_value_t = 6.0)]
        alert_spike_sigmas: f64,
        /// A spike not back under its band within this many steps is reported as late.
        #[arg(long, env = "HYDRA_ALERT_SPIKE_RECOVERY_STEPS", default_value_t = 500)]
        alert_spike_recovery_steps: i64,
        /// Tokens/s this fraction below its rolling median is a throughput drop…
        #[arg(long, env = "HYDRA_ALERT_THROUGHPUT_DROP", default_value_t = 0.30)]
        alert_throughput_drop: f64,
        /// …when it lasts this many logged steps.
        #[arg(long, env = "HYDRA_ALERT_THROUGHPUT_STEPS", default_value_t = 5)]
        alert_throughput_steps: usize,
        /// A run quiet for longer than max(this, --alert-stall-intervals × its usual
        /// interval) has stalled.
        #[arg(long, env = "HYDRA_ALERT_STALL_SECONDS", default_value_t = 300.0)]
        alert_stall_seconds: f64,
        #[arg(long, env = "HYDRA_ALERT_STALL_INTERVALS", default_value_t = 20.0)]
        alert_stall_intervals: f64,
        /// MoD records in a row beyond the heatmap's red zone before a layer has drifted.
        #[arg(long, env = "HYDRA_ALERT_DRIFT_RECORDS", default_value_t = 10)]
        alert_drift_records: usize,
        /// Eval-loss rises in a row that raise `eval_rising`.
        #[arg(long, env = "HYDRA_ALERT_EVAL_RISES", default_value_t = 3)]
        alert_eval_rises: usize,
        /// After an alert is raised, the same kind for the same run stays quiet this long
        /// (minutes of the trainer's clock).
        #[arg(long, env = "HYDRA_ALERT_COOLDOWN_MINUTES", default_value_t = 30.0)]
        alert_cooldown_minutes: f64,
    }

    impl RuleArgs {
        fn rules(&self) -> Result<hydra_dashboard::analysis::alerts::Rules, String> {
            let positive = |v: f64| v.is_finite() && v > 0.0;
            if ![
                self.alert_spike_sigmas,
                self.alert_stall_seconds,
                self.alert_stall_intervals,
            ]
            .into_iter()
            .all(positive)
            {
                return Err(
                    "--alert-spike-sigmas and --alert-stall-* must be positive numbers".into(),
                );
            }
            if !(self.alert_throughput_drop > 0.0 && self.alert_throughput_drop < 1.0) {
                return Err("--alert-throughput-drop must be a fraction between 0 and 1".into());
            }
            if !(self.alert_cooldown_minutes.is_finite() && self.alert_cooldown_minutes >= 0.0) {
                return Err("--alert-cooldown-minutes must be 0 or more".into());
            }
            if self.alert_spike_recovery_steps < 1
                || self.alert_throughput_steps < 1
                || self.alert_drift_records < 1
                || self.alert_eval_rises < 1
            {
                return Err("alert step and record counts must be at least 1".into());
            }
            Ok(hydra_dashboard::analysis::alerts::Rules {
                spike_sigmas: self.alert_spike_sigmas,
                spike_recovery_steps: self.alert_spike_recovery_steps,
                throughput_drop: self.alert_throughput_drop,
                throughput_steps: self.alert_throughput_steps,
                stall_floor_seconds: self.alert_stall_seconds,
                stall_intervals: self.alert_stall_intervals,
                drift_records: self.alert_drift_records,
                eval_rises: self.alert_eval_rises,
                cooldown_seconds: self.alert_cooldown_minutes * 60.0,
            })
        }
    }

    /// Who may read the runs.
    #[derive(Args)]
    struct AccessArgs {
        /// Require this token on every route (pages, API, live feed, snapshots): as
        /// `Authorization: Bearer TOKEN`, or once as `?token=TOKEN` in a link, which leaves
        /// an HttpOnly cookie. At least 16 characters. Set it when listening beyond 127.0.0.1.
        #[arg(long, env = "HYDRA_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Let pages from this one origin (e.g. https://tools.example.com) read the API
        /// across origins. None by default.
        #[arg(long, env = "HYDRA_CORS_ORIGIN")]
        cors_origin: Option<String>,
    }

    impl AccessArgs {
        fn access(self) -> Result<server::auth::Access, String> {
            server::auth::Access::new(self.token, self.cors_origin)
        }
    }

    /// Gauge thresholds; a run's config (`target_tokens_per_sec`, `vram_total_gb`) wins.
    #[derive(Args)]
    struct GaugeArgs {
        /// Throughput target in tokens/s: the gauge is green at 75% of it, yellow at 50%.
        #[arg(long, env = "HYDRA_TARGET_TPS", default_value_t = 12_000.0)]
        target_tps: f64,
        /// VRAM in GB where the gauge turns yellow.
        #[arg(long, env = "HYDRA_VRAM_WARN", default_value_t = 24.0)]
        vram_warn: f64,
        /// VRAM in GB where the gauge turns red.
        #[arg(long, env = "HYDRA_VRAM_DANGER", default_value_t = 28.0)]
        vram_danger: f64,
        /// The GPU's memory in GB: the gauge's full scale.
        #[arg(long, env = "HYDRA_VRAM_TOTAL", default_value_t = 32.0)]
        vram_total: f64,
        /// A loss to aim for, drawn as a dashed line on the loss chart (a run's config
        /// `target_loss` wins).
        #[arg(long, env = "HYDRA_TARGET_LOSS")]
        target_loss: Option<f64>,
    }

    impl GaugeArgs {
        fn settings(&self) -> Result<GaugeSettings, String> {
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if ![
                self.target_tps,
                self.vram_warn,
                self.vram_danger,
                self.vram_total,
            ]
            .into_iter()
            .all(ok)
            {
                return Err("--target-tps and the --vram-* flags must be positive numbers".into());
            }
            if self.target_loss.is_some_and(|l| !l.is_finite()) {
                return Err("--target-loss must be a number".into());
            }
            if !(self.vram_warn <= self.vram_danger && self.vram_danger <= self.vram_total) {
                return Err(format!(
                    "VRAM zones must rise: --vram-warn {} ≤ --vram-danger {} ≤ --vram-total {}",
                    self.vram_warn, self.vram_danger, self.vram_total
                ));
            }
            Ok(GaugeSettings {
                target_tokens_per_sec: self.target_tps,
                vram_warn_gb: self.vram_warn,
                vram_danger_gb: self.vram_danger,
                vram_total_gb: self.vram_total,
                target_loss: self.target_loss,
            })
        }
    }

    pub async fn main() -> Result<(), String> {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "hydra_dashboard=info,warn".into()),
            )
            .with_writer(std::io::stderr)
            .init();
        match Cli::parse().command {
            Command::Serve {
                root,
                db,
                diagnostics_dir,
                log_dir,
                report_dir,
                store: team_store,
                addr,
                cache_mb,
                state_dir,
                access,
                gauges,
                rules,
                notify,
            } => {
                let gauges = gauges.settings()?;
                let access = access.access()?;
                let rules = rules.rules()?;
                let state_dir = state_dir.unwrap_or_else(default_state_dir);
                let settings = Settings {
                    gauges,
                    rules,
                    state_dir,
                    access,
                    notify,
                };
                if let Some(url) = team_store {
                    use server::postgres::{connect, shown, source::PostgresSource};
                    let pool = connect(&url).await.map_err(|e| e.to_string())?;
                    let store = Store::of(PostgresSource::new(pool, &url));
                    store.set_cache_budget(cache_mb.saturating_mul(1 << 20));
                    return run(store, &PathBuf::from(shown(&url)), &addr, settings, None).await;
                }
                // Serve even when the file is not there or not readable yet: the page says
                // why, and the file is read as soon as it is.
                // `--db` alone reads the database only, as it always did; otherwise the
                // working directory's files too.
                let files = root.is_some()
                    || db.is_none()
                    || diagnostics_dir.is_some()
                    || log_dir.is_some()
                    || report_dir.is_some();
                let root = root.unwrap_or_else(|| PathBuf::from("."));
                let db = db.unwrap_or_else(|| root.join("checkpoints").join("training.db"));
                let store = if files {
                    let under = server::files::Dirs::under(&root);
                    Store::watch_trainer(
                        &db,
                        server::files::Dirs {
                            diagnostics: diagnostics_dir.unwrap_or(under.diagnostics),
                            logs: log_dir.unwrap_or(under.logs),
                            reports: report_dir.unwrap_or(under.reports),
                        },
                    )
                } else {
                    Store::watch(&db)
                };
                if let Err(e) = store.check().await {
                    eprintln!(
                        "hydra-dashboard: warning: {e}. Serving anyway: the page explains, and \
                         the dashboard reads the file as soon as it can."
                    );
                }
                store.set_cache_budget(cache_mb.saturating_mul(1 << 20));
                run(store, &db, &addr, settings, None).await
            }
            Command::Alerts {
                root,
                run,
                json,
                rules,
            } => {
                // Exit code 2 for "could not tell", so cron tells it from 1, "alerts open".
                let cannot_tell = |e: String| -> ! {
                    eprintln!("hydra-dashboard: {e}");
                    std::process::exit(2)
                };
                let rules = rules.rules().unwrap_or_else(|e| cannot_tell(e));
                let root = root.unwrap_or_else(|| PathBuf::from("."));
                let store = Store::watch_trainer(
                    &root.join("checkpoints").join("training.db"),
                    server::files::Dirs::under(&root),
                );
                let replayed = match store.check().await {
                    Ok(()) => server::alerts::replay(&store, &rules, run.as_deref()).await,
                    Err(e) => Err(e),
                };
                store.close().await;
                let alerts = replayed.unwrap_or_else(|e| cannot_tell(e.to_string()));
                for a in &alerts {
                    if json {
                        println!("{}", serde_json::to_string(a).map_err(|e| e.to_string())?);
                        continue;
                    }
                    use hydra_dashboard::analysis::alerts::sentence;
                    use hydra_dashboard::model::AlertChange;
                    let state = if a.is_open() { "OPEN" } else { "    " };
                    println!("{state} {}", sentence(AlertChange::Raised, a));
                    if a.resolved_step.is_some() {
                        println!("     {}", sentence(AlertChange::Resolved, a));
                    }
                }
                let open = alerts.iter().filter(|a| a.is_open()).count();
                if !json {
                    eprintln!("{} alerts, {open} open", alerts.len());
                }
                if open > 0 {
                    std::process::exit(1);
                }
                Ok(())
            }
            Command::Snapshot {
                root,
                db,
                run,
                out,
                start_step,
                end_step,
                runs,
                x,
                smoothing,
                start,
                end,
                log_scale,
                gauges,
            } => {
                use hydra_dashboard::model::{CompareX, ShareRequest};
                use hydra_dashboard::pages::snapshot as page;
                let gauges = gauges.settings()?;
                let request = ShareRequest {
                    run_id: run,
                    start_step,
                    end_step,
                    log_scale,
                    runs,
                    x: x.as_deref().and_then(CompareX::parse),
                    smoothing,
                    start,
                    end,
                    hidden: Vec::new(),
                };
                let range = request
                    .step_range()
                    .map_err(|why| format!("--end-step {why}"))?;
                // `--db` alone reads the database only, as it always did.
                let store = match (root, db) {
                    (None, Some(db)) => Store::watch(&db),
                    (root, db) => {
                        let root = root.unwrap_or_else(|| PathBuf::from("."));
                        let db = db.unwrap_or_else(|| root.join("checkpoints").join("training.db"));
                        Store::watch_trainer(&db, server::files::Dirs::under(&root))
                    }
                };
                let written = match store.check().await {
                    Err(e) => Err(e),
                    Ok(()) if request.is_comparison() => {
                        page::snapshot_compare(&store, &request).await
                    }
                    Ok(()) => {
                        page::snapshot(&store, request.run_id.as_deref(), range, &gauges, log_scale)
                            .await
                    }
                };
                store.close().await;
                let html = written.map_err(|e| e.to_string())?;
                std::fs::write(&out, html)
                    .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
                eprintln!("snapshot written to {}", out.display());
                Ok(())
            }
            Command::Sync {
                root,
                db,
                to,
                once,
                node,
            } => {
                let root = root.unwrap_or_else(|| PathBuf::from("."));
                let db = db.unwrap_or_else(|| root.join("checkpoints").join("training.db"));
                let store = Store::watch_trainer(&db, server::files::Dirs::under(&root));
                let node = node.unwrap_or_else(server::postgres::hostname);
                let shipped =
                    server::postgres::sync::run(&to, store.clone(), node, once, shutdown_signal())
                        .await;
                store.close().await;
                shipped
            }
            Command::Demo {
                addr,
                dir,
                rate,
                state_dir,
                access,
                gauges,
                rules,
                notify,
            } => {
                let gauges = gauges.settings()?;
                let access = access.access()?;
                let rules = rules.rules()?;
                let dir = dir.unwrap_or_else(fresh_temp_dir);
                let root = demo::prepare(&dir).await?;
                eprintln!(
                    "demo: a simulated trainer writing its log, diagnostics file, reports and \
                     database in {}",
                    root.display()
                );
                let training = demo::begin(&root)?;
                let trainer = tokio::spawn(async move {
                    if let Err(e) = training.run(rate).await {
                        tracing::error!("demo trainer stopped: {e}");
                    }
                });
                let db = root.join("checkpoints").join("training.db");
                let store = Store::watch_trainer(&db, server::files::Dirs::under(&root));
                let state_dir = state_dir.unwrap_or_else(|| dir.join("state"));
                let settings = Settings {
                    gauges,
                    rules,
                    state_dir,
                    access,
                    notify,
                };
                run(store, &root, &addr, settings, Some(trainer)).await
            }
        }
    }

    /// Where a dashboard keeps what it makes, by the XDG convention.
    fn default_state_dir() -> PathBuf {
        let var = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        var("XDG_STATE_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".local/state")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("hydra-dashboard")
    }

    fn fresh_temp_dir() -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        std::env::temp_dir().join(format!("hydra-demo-{}-{nanos}", std::process::id()))
    }

    /// How a dashboard serves, from its flags.
    struct Settings {
        gauges: GaugeSettings,
        rules: hydra_dashboard::analysis::alerts::Rules,
        state_dir: PathBuf,
        access: server::auth::Access,
        notify: NotifyArgs,
    }

    async fn run(
        store: Store,
        db: &std::path::Path,
        addr: &str,
        settings: Settings,
        trainer: Option<tokio::task::JoinHandle<()>>,
    ) -> Result<(), String> {
        let Settings {
            gauges,
            rules,
            state_dir,
            access,
            notify,
        } = settings;
        store.keep_compared_in(&state_dir);
        let telling = server::alerts::Telling::new(
            &state_dir,
            db,
            &notify.notify_webhook,
            notify.public_url.clone(),
        )?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AddrInUse => format!(
                    "cannot listen on {addr}: the address is already in use (another dashboard?); choose another with --addr"
                ),
                _ => format!("cannot listen on {addr}: {e}"),
            })?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        if let Some(warning) = server::exposure_warning(local, access.has_token()) {
            eprintln!("hydra-dashboard: warning: {warning}");
        }
        let alerts = server::alerts::Alerts::new();
        let state = AppState {
            leptos_options: server::leptos_options(local),
            store: store.clone(),
            gauges,
            live: server::live::Hub::new(store.clone()).with_alerts(alerts.clone()),
            shares: server::share::Shares::new(&state_dir),
            access,
            alerts: alerts.clone(),
        };
        // Every run watched for trouble from the start, whether or not a page is open.
        let watcher = state.alerts.start(store.clone(), rules, Some(telling));
        // Read the run people open first (the newest) into memory while nobody waits yet.
        let warm = store.clone();
        let warm_gauges = state.gauges.clone();
        tokio::spawn(async move {
            if let Err(e) = warm.warm(&warm_gauges).await {
                tracing::debug!("warming the newest run: {e}");
            }
        });
        tokio::spawn(server::memory::keep_giving_back());
        // The one line scripts and tests read to find us.
        println!(
            "hydra-dashboard: serving {} on http://{local}",
            db.display()
        );
        let hub = state.live.clone();
        axum::serve(listener, hydra_dashboard::site::router(state))
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                // Close frames to live followers first; they are not HTTP requests the
                // graceful shutdown would wait for.
                hub.close();
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            })
            .await
            .map_err(|e| format!("server stopped: {e}"))?;
        watcher.abort();
        if let Some(t) = trainer {
            t.abort();
        }
        store.close().await;
        Ok(())
    }

    async fn shutdown_signal() {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {},
            _ = terminate => {},
        }
    }
}

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() {
    if let Err(message) = cli::main().await {
        eprintln!("hydra-dashboard: {message}");
        std::process::exit(1);
    }
}

#[cfg(not(feature = "ssr"))]
fn main() {
    // The browser build is a library; the server binary needs `--features ssr`.
}
