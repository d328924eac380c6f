//! The standalone tool's options: flags and the environment variables behind them, the
//! `--help` text, and the start-up banner.

use std::net::IpAddr;
use std::time::Duration;

use twilio_delivery::ids::{AccountSid, ApiKeySid};
use twilio_delivery::secret::{ApiKeySecret, AuthToken};
use twilio_delivery_emulator::{Chaos, Emulator, EmulatorBuilder, EmulatorHandle, Outcome};

/// Every option: its flag, the environment variable read when the flag is absent, and a value
/// placeholder for the help text (empty for switches).
const OPTIONS: &[(&str, &str, &str)] = &[
    ("--host", "TWILIO_EMULATOR_HOST", "IP"),
    ("--port", "TWILIO_EMULATOR_PORT", "N"),
    ("--seed", "TWILIO_EMULATOR_SEED", "N"),
    ("--account-sid", "TWILIO_EMULATOR_ACCOUNT_SID", "AC…"),
    ("--auth-token", "TWILIO_EMULATOR_AUTH_TOKEN", "TOKEN"),
    ("--api-key", "TWILIO_EMULATOR_API_KEYS", "SK…:SECRET"),
    ("--chaos", "TWILIO_EMULATOR_CHAOS", "calm|realistic"),
    ("--outcomes", "TWILIO_EMULATOR_OUTCOMES", "MIX"),
    ("--recipient", "TWILIO_EMULATOR_RECIPIENTS", "TO=OUTCOME"),
    ("--step-delay", "TWILIO_EMULATOR_STEP_DELAY", "MIN..MAX"),
    ("--reorder", "TWILIO_EMULATOR_REORDER", "P"),
    ("--duplicate", "TWILIO_EMULATOR_DUPLICATE", "P"),
    ("--drop", "TWILIO_EMULATOR_DROP", "P"),
    ("--time-scale", "TWILIO_EMULATOR_TIME_SCALE", "F"),
    (
        "--default-status-callback",
        "TWILIO_EMULATOR_STATUS_CALLBACK",
        "URL",
    ),
    ("--max-messages", "TWILIO_EMULATOR_MAX_MESSAGES", "N"),
];

/// Options whose environment variable holds a comma-separated list and whose flag may repeat.
const LISTS: &[&str] = &["--api-key", "--recipient"];

/// The `--help` text.
pub(crate) const HELP: &str = "\
twilio-emulator: a local Twilio Messages API that sends signed status callbacks.

Point any Twilio client at it instead of https://api.twilio.com: create, fetch, list, cancel,
redact and delete messages, their Media and Feedback; every message then moves through its
lifecycle and POSTs signed status callbacks to its StatusCallback, as Twilio does. It also
delivers incoming messages to your app's webhook (POST /emulator/inbound, below).

USAGE:
    twilio-emulator [OPTIONS]

Every option can also be set with the environment variable shown; a flag wins over its variable.

    --host IP                    TWILIO_EMULATOR_HOST
        Address to listen on (default 127.0.0.1; 0.0.0.0 to serve a container network).
    --port N                     TWILIO_EMULATOR_PORT (or EMULATOR_PORT)
        Port to listen on (default 0: a free port, printed on start).
    --seed N                     TWILIO_EMULATOR_SEED
        Seed of every random choice (SIDs, outcomes, delays, chaos). Same seed and same
        requests, same run. Default: random, printed on start.
    --account-sid AC…            TWILIO_EMULATOR_ACCOUNT_SID
        The account SID clients must use (default: derived from the seed).
    --auth-token TOKEN           TWILIO_EMULATOR_AUTH_TOKEN
        The auth token: Basic-auth password and the key callbacks are signed with
        (default: derived from the seed).
    --api-key SK…:SECRET         TWILIO_EMULATOR_API_KEYS (comma-separated)
        Also accept this API key as Basic-auth user and password. Repeatable.
    --chaos calm|realistic       TWILIO_EMULATOR_CHAOS
        The profile the options below start from. calm: every message delivered, callbacks
        once and in order, 100-500 ms between steps. realistic: 90% delivered, 6% undelivered,
        2% failed, 2% stuck at sent; 5% reordered, 2% duplicated, 1% lost callbacks; 0.2-3 s.
    --outcomes MIX               TWILIO_EMULATOR_OUTCOMES
        Relative weights of the final outcomes, e.g. delivered=90,undelivered=6,failed=2,sent=2
        (absent ones are 0).
    --recipient TO=OUTCOME       TWILIO_EMULATOR_RECIPIENTS (comma-separated)
        Fix the outcome of every message to TO (a number, a channel address, or a prefix ending
        in *). OUTCOME: delivered, sent, undelivered[:CODE], failed[:CODE].
        E.g. --recipient +15558675310=undelivered:30003 --recipient '+1666*=failed'. Repeatable.
    --step-delay MIN..MAX        TWILIO_EMULATOR_STEP_DELAY
        Milliseconds between lifecycle steps, drawn uniformly (e.g. 10..50).
    --reorder P                  TWILIO_EMULATOR_REORDER
    --duplicate P                TWILIO_EMULATOR_DUPLICATE
    --drop P                     TWILIO_EMULATOR_DROP
        Probabilities (0 to 1) that consecutive callbacks swap, that a callback is sent twice,
        that a callback is never sent.
    --time-scale F               TWILIO_EMULATOR_TIME_SCALE
        Scheduled messages (ScheduleType=fixed, SendAt) fire after F times the real wait
        (1 = real time, 0.001: 15 minutes become 0.9 s, 0: at once). See also time/advance.
    --default-status-callback URL  TWILIO_EMULATOR_STATUS_CALLBACK
        Where callbacks go for messages created without StatusCallback (like a Messaging
        Service's own callback URL).
    --max-messages N             TWILIO_EMULATOR_MAX_MESSAGES
        Messages kept, and lifecycles in flight before creates answer 429 (default 10000).
    -h, --help
        This text.

ADMIN ENDPOINTS (Basic auth with the account SID and auth token, or an API key):
    GET  /emulator/info          account SID, seed, counts, the emulated clock
    GET  /emulator/truth         {\"truth\": [{\"sid\", \"status\", \"error_code\"}]}: the final status
                                 the emulator intends for each message (what an app must converge to)
    GET  /emulator/callbacks     {\"callbacks\": [{\"sid\", \"status\", \"url\", \"attempt\",
                                 \"outcome\", \"http_status\", ...}]}: every callback attempt
    POST /emulator/time/advance  Seconds=N: move the emulated clock forward; scheduled messages
                                 whose SendAt comes are sent now
    POST /emulator/wait-idle     Timeout=N (default 30): 200 once every lifecycle and callback
                                 is done, 503 if still busy after N seconds
    POST /emulator/reset         forget every message, truth, callback and incoming message;
                                 same seed, fresh run
    POST /emulator/inbound       deliver an incoming message to your app, signed as Twilio does:
                                 Url (your incoming-message webhook), From, To, Body, MediaUrl
                                 and MediaContentType (repeatable), MessagingServiceSid,
                                 OptOutType (default: STOP/START/HELP for the default keywords;
                                 empty: none), ProfileName, WaId (whatsapp: senders),
                                 SendReplies=false (default: the TwiML's <Message> replies are
                                 sent as outbound messages), MessageSid (alone: redeliver that
                                 message as it was; with Url: deliver under that SID).
                                 Answers {\"message_sid\", \"status\", \"content_type\", \"body\",
                                 \"replies\", ...}: what your app answered. 502 (code 11200) if it
                                 never answered.
    GET  /emulator/inbound       {\"inbound\": [...]}: every incoming-message delivery attempt

Stop with Ctrl-C.
";

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Print the help text.
    Help,
    /// Start with these settings.
    Run(Box<EmulatorBuilder>),
}

/// The values given, in the order applied: the environment first, then the flags.
type Given = Vec<(&'static str, String)>;

/// Reads the environment variables of every option (`EMULATOR_PORT` too, below its new name).
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Given {
    let mut given = Given::new();
    if let Some(port) = env("EMULATOR_PORT") {
        given.push(("--port", port));
    }
    for &(flag, var, _) in OPTIONS {
        let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        if LISTS.contains(&flag) {
            given.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| (flag, v.to_owned())),
            );
        } else {
            given.push((flag, value));
        }
    }
    given
}

/// Parses a number or says which option it was for.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{flag}: not a valid value: {value}"))
}

/// `delivered=90,undelivered=6,failed=2,sent=2` applied to `chaos`.
fn outcomes(chaos: Chaos, value: &str) -> Result<Chaos, String> {
    let (mut d, mut u, mut f, mut s) = (0, 0, 0, 0);
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("--outcomes: expected KIND=WEIGHT, got {part}"))?;
        let weight: u32 = number("--outcomes", weight)?;
        match kind.trim() {
            "delivered" => d = weight,
            "undelivered" => u = weight,
            "failed" => f = weight,
            "sent" => s = weight,
            other => return Err(format!("--outcomes: unknown outcome {other}")),
        }
    }
    Ok(chaos.outcomes(d, u, f).sent_only(s))
}

/// `MIN..MAX` milliseconds.
fn step_delay(chaos: Chaos, value: &str) -> Result<Chaos, String> {
    let (min, max) = value
        .split_once("..")
        .ok_or_else(|| format!("--step-delay: expected MIN..MAX milliseconds, got {value}"))?;
    let min: u64 = number("--step-delay", min)?;
    let max: u64 = number("--step-delay", max)?;
    Ok(chaos.step_delay(Duration::from_millis(min), Duration::from_millis(max)))
}

/// A probability in `0..=1`.
fn probability(flag: &str, value: &str) -> Result<f64, String> {
    let p: f64 = number(flag, value)?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!(
            "{flag}: a probability is between 0 and 1, got {value}"
        ))
    }
}

/// Builds the emulator's settings from what was given, in order (later values win).
fn build(given: &Given) -> Result<EmulatorBuilder, String> {
    let last = |flag: &str| given.iter().rev().find(|(f, _)| *f == flag).map(|(_, v)| v);
    let mut builder = Emulator::builder();
    let mut chaos = match last("--chaos").map(|v| v.trim()) {
        None | Some("calm") => Chaos::calm(),
        Some("realistic") => Chaos::realistic(),
        Some(other) => {
            return Err(format!(
                "--chaos: unknown profile {other} (calm, realistic)"
            ));
        }
    };
    for (flag, value) in given {
        let v = value.as_str();
        match *flag {
            "--host" => builder = builder.ip(number::<IpAddr>(flag, v)?),
            "--port" => builder = builder.port(number(flag, v)?),
            "--seed" => builder = builder.seed(number(flag, v)?),
            "--account-sid" => {
                let sid = AccountSid::new(v.trim())
                    .map_err(|_| format!("{flag}: not an account SID (AC + 32 hex digits)"))?;
                builder = builder.account_sid(sid);
            }
            "--auth-token" => {
                if v.is_empty() {
                    return Err(format!("{flag}: the auth token is empty"));
                }
                builder = builder.auth_token(AuthToken::new(v));
            }
            "--api-key" => {
                let (sid, secret) = v
                    .split_once(':')
                    .ok_or_else(|| format!("{flag}: expected SK…:SECRET"))?;
                let sid = ApiKeySid::new(sid.trim())
                    .map_err(|_| format!("{flag}: not an API key SID (SK + 32 hex digits)"))?;
                builder = builder.api_key(sid, ApiKeySecret::new(secret));
            }
            "--outcomes" => chaos = outcomes(chaos, v)?,
            "--recipient" => {
                let (to, outcome) = v
                    .rsplit_once('=')
                    .ok_or_else(|| format!("{flag}: expected TO=OUTCOME, got {v}"))?;
                let outcome: Outcome = outcome.parse().map_err(|e| format!("{flag}: {e}"))?;
                chaos = chaos.recipient(to.trim(), outcome);
            }
            "--step-delay" => chaos = step_delay(chaos, v)?,
            "--reorder" => chaos = chaos.reorder(probability(flag, v)?),
            "--duplicate" => chaos = chaos.duplicate(probability(flag, v)?),
            "--drop" => chaos = chaos.drop(probability(flag, v)?),
            "--time-scale" => {
                let f: f64 = number(flag, v)?;
                if !(f.is_finite() && f >= 0.0) {
                    return Err(format!("{flag}: expected a factor of 0 or more, got {v}"));
                }
                chaos = chaos.time_scale(f);
            }
            "--default-status-callback" => builder = builder.default_status_callback(v),
            "--max-messages" => builder = builder.max_messages(number(flag, v)?),
            // The profile was read first, so the other options adjust it.
            _ => {}
        }
    }
    Ok(builder.chaos(chaos))
}

/// Parses the command line (`args` without the program name) over the environment.
pub(crate) fn parse(
    args: impl IntoIterator<Item = String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, String> {
    let mut given = from_env(env);
    let mut seen: Vec<&str> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let Some(&(flag, _, _)) = OPTIONS.iter().find(|(f, _, _)| *f == name) else {
            return Err(format!(
                "unknown argument: {arg} (twilio-emulator --help lists the options)"
            ));
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        // A flag replaces what its environment variable said (a repeated list flag adds up).
        if !(LISTS.contains(&flag) && seen.contains(&flag)) {
            given.retain(|(f, _)| *f != flag);
        }
        seen.push(flag);
        given.push((flag, value));
    }
    build(&given).map(|b| Command::Run(Box::new(b)))
}

/// The start-up banner: where the emulator listens, its credentials, and how to point
/// twilio-node, twilio-python and this workspace's `Client` at it.
pub(crate) fn banner(emulator: &EmulatorHandle) -> String {
    let base = emulator.base_url();
    let sid = emulator.account_sid();
    // The emulator's own throwaway credentials, printed so that clients can use them.
    let token = emulator.auth_token().expose();
    format!(
        "\
twilio-emulator listening on {base}
  account SID: {sid}
  auth token:  {token}
  seed:        {seed}
  admin:       {base}/emulator/truth, /emulator/callbacks, POST /emulator/time/advance,
               /emulator/wait-idle, /emulator/reset, /emulator/inbound (same Basic auth as the API)
Point a client at it:
  twilio-node:    const client = twilio('{sid}', '{token}'); client.api.baseUrl = '{base}';
  twilio-python:  client = Client('{sid}', '{token}'); client.api.base_url = '{base}'
  twilio-delivery (Rust):
    Client::builder(\"{sid}\".parse()?, AuthToken::new(\"{token}\")).base_url(\"{base}\".parse()?).build()?
  curl:           curl -u '{sid}:{token}' {base}/2010-04-01/Accounts/{sid}/Messages.json
Ctrl-C to stop.",
        seed = emulator.seed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<EmulatorBuilder, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |k: &str| env.get(k).cloned();
        match parse(args.iter().map(|s| (*s).to_owned()), &lookup)? {
            Command::Run(b) => Ok(*b),
            Command::Help => Err("help".to_owned()),
        }
    }

    #[test]
    fn flags_win_over_the_environment() {
        let env = [
            ("TWILIO_EMULATOR_PORT", "4010"),
            ("TWILIO_EMULATOR_SEED", "7"),
            ("TWILIO_EMULATOR_TIME_SCALE", "0.5"),
        ];
        let b = format!(
            "{:?}",
            run(&["--port", "4011", "--time-scale=0.01"], &env).unwrap()
        );
        assert!(b.contains("port: 4011"), "{b}");
        assert!(b.contains("seed: Some(7)"), "{b}");
        assert!(b.contains("time_scale: 0.01"), "{b}");
        let b = format!("{:?}", run(&[], &[("EMULATOR_PORT", "4012")]).unwrap());
        assert!(b.contains("port: 4012"), "{b}");
    }

    #[test]
    fn chaos_profile_then_adjustments() {
        let b = run(
            &[
                "--outcomes",
                "delivered=1,failed=3",
                "--chaos",
                "realistic",
                "--recipient",
                "+15558675310=undelivered:30005",
                "--step-delay",
                "5..9",
                "--drop",
                "0",
            ],
            &[("TWILIO_EMULATOR_RECIPIENTS", "+1666*=failed")],
        )
        .unwrap();
        let text = format!("{b:?}");
        assert!(
            text.contains("delivered: 1") && text.contains("failed: 3"),
            "{text}"
        );
        assert!(
            text.contains("reorder: 0.05"),
            "realistic is the base: {text}"
        );
        assert!(text.contains("drop: 0.0"), "{text}");
        assert!(text.contains("Undelivered(30005)"), "{text}");
        assert!(
            !text.contains("+1666*"),
            "flags replace the list from the environment"
        );
        assert!(text.contains("5ms"), "{text}");
    }

    #[test]
    fn credentials_and_keys_never_reach_debug() {
        let b = run(
            &[
                "--account-sid",
                "AC0123456789abcdef0123456789abcdef",
                "--auth-token",
                "tok-s3cret",
                "--api-key",
                "SK0123456789abcdef0123456789abcdef:key-s3cret",
            ],
            &[],
        )
        .unwrap();
        let text = format!("{b:?}");
        assert!(text.contains("AC0123456789abcdef0123456789abcdef"));
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn errors_name_the_option() {
        for (args, needle) in [
            (vec!["--port", "x"], "--port"),
            (vec!["--port"], "--port needs a value"),
            (vec!["--bogus"], "unknown argument"),
            (vec!["--chaos", "wild"], "--chaos"),
            (vec!["--outcomes", "delivered"], "--outcomes"),
            (vec!["--outcomes", "read=1"], "--outcomes"),
            (vec!["--recipient", "+1=read"], "--recipient"),
            (vec!["--step-delay", "5"], "--step-delay"),
            (vec!["--drop", "2"], "--drop"),
            (vec!["--time-scale", "-1"], "--time-scale"),
            (vec!["--account-sid", "ACnope"], "--account-sid"),
            (vec!["--api-key", "SKnope"], "--api-key"),
            (vec!["--host", "localhost"], "--host"),
        ] {
            let e = run(&args, &[]).unwrap_err();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        assert_eq!(run(&["--help"], &[]).unwrap_err(), "help");
        assert!(run(&[], &[("TWILIO_EMULATOR_SEED", "x")]).is_err());
    }
}
