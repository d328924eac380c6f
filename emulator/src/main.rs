//! Runs the Twilio emulator as a standalone server, for apps in any language.
//!
//! ```text
//! cargo run --example emulator --features emulator -- --port 4010 [--seed 7] [--host 0.0.0.0] [--chaos realistic]
//! ```
//! The port also comes from `EMULATOR_PORT`. It prints the base URL, account SID and auth token,
//! then serves until Ctrl-C.

use std::net::IpAddr;
use std::process::ExitCode;

use twilio_delivery_emulator::{Chaos, Emulator};

/// Command-line options.
struct Options {
    port: u16,
    host: Option<IpAddr>,
    seed: Option<u64>,
    chaos: Chaos,
}

fn usage() -> &'static str {
    "usage: emulator [--port N] [--host IP] [--seed N] [--chaos calm|realistic]\n\
     (the port also comes from EMULATOR_PORT; 0 picks a free one)"
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        port: match std::env::var("EMULATOR_PORT") {
            Ok(p) => p
                .parse()
                .map_err(|_| format!("EMULATOR_PORT is not a port: {p}"))?,
            Err(_) => 0,
        },
        host: None,
        seed: None,
        chaos: Chaos::calm(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => {
                let v = value("--port")?;
                options.port = v.parse().map_err(|_| format!("not a port: {v}"))?;
            }
            "--host" => {
                let v = value("--host")?;
                options.host = Some(v.parse().map_err(|_| format!("not an IP address: {v}"))?);
            }
            "--seed" => {
                let v = value("--seed")?;
                options.seed = Some(v.parse().map_err(|_| format!("not a seed: {v}"))?);
            }
            "--chaos" => {
                options.chaos = match value("--chaos")?.as_str() {
                    "calm" => Chaos::calm(),
                    "realistic" => Chaos::realistic(),
                    other => return Err(format!("unknown chaos preset: {other}")),
                }
            }
            "-h" | "--help" => return Err(usage().to_owned()),
            other => return Err(format!("unknown argument: {other}\n{}", usage())),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = Emulator::builder().port(options.port).chaos(options.chaos);
    if let Some(host) = options.host {
        builder = builder.ip(host);
    }
    if let Some(seed) = options.seed {
        builder = builder.seed(seed);
    }
    let emulator = match builder.start().await {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "emulator: {e}: {}",
                std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
            return ExitCode::FAILURE;
        }
    };
    // These are the emulator's own throwaway credentials, printed so clients can use them.
    println!("base URL:    {}", emulator.base_url());
    println!("account SID: {}", emulator.account_sid());
    println!("auth token:  {}", emulator.auth_token().expose());
    println!("seed:        {}", emulator.seed());
    println!("Ctrl-C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("emulator: cannot listen for Ctrl-C: {e}");
    }
    emulator.shutdown().await;
    ExitCode::SUCCESS
}
