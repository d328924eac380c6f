//! Wire compatibility with Twilio's official Python helper library (`twilio` on PyPI): create,
//! fetch, list paging, update, delete, media, feedback and errors through `twilio.rest.Client`,
//! and the emulator's callbacks checked with the library's own `RequestValidator`.
//!
//! Needs `python3 -m pip install twilio`. Without it the test is skipped, saying why; under CI
//! (the `CI` variable set) it fails.

mod support;

use std::path::Path;

use support::wire;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const SCRIPT: &str = "twilio_python_check.py";

#[tokio::test]
async fn twilio_python_drives_the_emulator_and_validates_its_callbacks() {
    let dir = Path::new(DIR);
    let check = wire::probe("python3", &["--version"], dir).and_then(|()| {
        wire::probe("python3", &["-c", "import twilio.rest"], dir).map_err(|_| {
            "the twilio package is not installed (python3 -m pip install twilio)".into()
        })
    });
    if !wire::required(check, "twilio-python") {
        return;
    }
    let emu = wire::emulator(21).await;
    let out = wire::run_script(&emu, "python3", SCRIPT, dir).await;
    wire::check_report(&out, &emu, "hello from python");
    emu.shutdown().await;
}
