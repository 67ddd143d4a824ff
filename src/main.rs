use raven_registry::config::{Cli, Command};

fn main() -> std::process::ExitCode {
    raven_registry::memory::tune_allocator();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async_main())
}

async fn async_main() -> std::process::ExitCode {
    let cli = Cli::parse_or_exit();
    // Held to the end: dropping it writes the lines still queued.
    let _log = raven_registry::telemetry::init(cli.config.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Schema => {
            print!("{}", raven_registry::graphql::sdl());
            Ok(())
        }
        Command::Openapi => {
            print!("{}", raven_registry::http::openapi_json());
            Ok(())
        }
        Command::Seed(args) => {
            let app = raven_registry::build(config).await?;
            raven_registry::seed::run(&app.state, &args).await
        }
        Command::Fsck(args) => {
            let app = raven_registry::build_for_inspection(config).await?;
            let report = raven_registry::service::fsck::run(&app.state, args.repair).await?;
            print!("{report}");
            if report.is_clean() {
                Ok(())
            } else {
                Err(anyhow::anyhow!("fsck found problems"))
            }
        }
        Command::Migrate => {
            let (db, _) = raven_registry::db::connect(&config).await?;
            raven_registry::db::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve => {
            if let Some((before, after)) = raven_registry::net::raise_open_file_limit() {
                if after > before {
                    tracing::info!(before, after, "raised the open-file limit (RLIMIT_NOFILE) to its hard limit");
                }
            }
            let addr = std::net::SocketAddr::new(config.host, config.port);
            let app = raven_registry::build(config).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (HOST/PORT): {e}"))?;
            tracing::info!(%addr, "raven-registry listening");
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("shut down cleanly");
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Docker and Fly send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
