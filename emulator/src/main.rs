//! `twilio-emulator`: the Twilio emulator as a standalone server, for apps in any language.
//!
//! ```text
//! cargo run -p twilio-delivery-emulator -- --port 4010 --seed 7 --chaos realistic
//! TWILIO_EMULATOR_PORT=4010 TWILIO_EMULATOR_AUTH_TOKEN=test twilio-emulator
//! ```
//! `twilio-emulator --help` lists every flag, its environment variable and the admin endpoints.
//! On start it prints the base URL, the credentials and how to point twilio-node,
//! twilio-python and this workspace's `Client` at it, then serves until Ctrl-C or SIGTERM.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

/// Parses the options, starts the emulator, prints the banner and serves until Ctrl-C.
#[tokio::main]
async fn main() -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let builder = match cli::parse(std::env::args().skip(1), &env) {
        Ok(cli::Command::Run(builder)) => *builder,
        Ok(cli::Command::Help) => {
            print!("{}", cli::HELP);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("twilio-emulator: {message}");
            return ExitCode::from(2);
        }
    };
    let emulator = match builder.start().await {
        Ok(e) => e,
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            eprintln!("twilio-emulator: {e}{cause}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", cli::banner(&emulator));
    // A parent process reading the banner through a pipe sees it at once.
    let _ = std::io::stdout().flush();
    stop_signal().await;
    emulator.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `docker stop` and CI runners send).
async fn stop_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("twilio-emulator: cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    () = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => interrupt.await,
        }
    }
    #[cfg(not(unix))]
    interrupt.await;
}
