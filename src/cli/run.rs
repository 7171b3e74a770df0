//! `sembang run`: starts the configured roles and serves until SIGINT or SIGTERM, then
//! stops intake, drains, flushes and commits before exiting.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::config_cmd::{describe_source, with_settings};
use super::EXIT_FAILURE;
use crate::app::{start, Backends};
use crate::config::{LoadRequest, Settings};

pub fn run(request: &LoadRequest) -> ExitCode {
    with_settings(request, |settings| {
        init_logging();
        let runtime = match super::async_runtime(true) {
            Ok(runtime) => runtime,
            Err(code) => return code,
        };
        runtime.block_on(serve(settings))
    })
}

async fn serve(settings: &Settings) -> ExitCode {
    let config = &settings.config;
    tracing::info!(source = %describe_source(settings), "starting sembang");
    let backends = match Backends::from_config(config, &settings.secrets).await {
        Ok(backends) => backends,
        Err(e) => {
            eprintln!("sembang: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let running = match start(config, &settings.secrets, backends).await {
        Ok(running) => running,
        Err(e) => {
            eprintln!("sembang: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let base = format!("http://{}", running.http_addr);
    let admin = format!("http://{}", running.admin_addr);
    println!(
        "sembang: running roles {} ({})",
        running.roles.join(", "),
        describe_source(settings)
    );
    println!("sembang: webhook    {base}/webhook/whatsapp");
    println!("sembang: admin API  {admin}/api/  (contacts: {admin}/api/contacts/<phone>/, sandbox: {admin}/api/sandbox/messages/)");
    println!("sembang: OpenAPI    {admin}/api/openapi.json");
    println!("sembang: metrics    {admin}/metrics");
    println!("sembang: press Ctrl-C to stop");
    wait_for_signal().await;
    println!("sembang: stopping: draining, flushing and committing");
    running.shutdown().await;
    println!("sembang: stopped");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs to stderr: readable on a terminal, JSON lines otherwise (for log shippers).
/// `SEMBANG_LOG` sets the filter (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEMBANG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}
