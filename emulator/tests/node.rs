//! Wire compatibility with Twilio's official Node.js helper library (`twilio` on npm, pinned in
//! tests/node/package-lock.json): create, fetch, list paging, update, delete, media, feedback
//! and errors through the client, and the emulator's callbacks checked with the library's own
//! `twilio.validateRequest`.
//!
//! Needs `node` and `npm ci` in emulator/tests/node. Without them the test is skipped, saying
//! why; under CI (the `CI` variable set) it fails.

mod support;

use std::path::Path;

use support::wire;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
const SCRIPT: &str = "twilio_node_check.js";

#[tokio::test]
async fn twilio_node_drives_the_emulator_and_validates_its_callbacks() {
    let dir = Path::new(DIR);
    let check = wire::probe("node", &["--version"], dir).and_then(|()| {
        wire::probe("node", &["-e", "require.resolve('twilio')"], dir)
            .map_err(|_| "twilio-node is not installed (npm ci in emulator/tests/node)".to_owned())
    });
    if !wire::required(check, "twilio-node") {
        return;
    }
    let emu = wire::emulator(22).await;
    let out = wire::run_script(&emu, "node", SCRIPT, dir).await;
    wire::check_report(&out, &emu, "hello from node");
    emu.shutdown().await;
}
