//! What a user pays for: with only the default features (`rustls`), the dependency tree has
//! no database, web framework or emulator code. Asks `cargo tree`, so it checks the manifest
//! as users resolve it, not what this test binary happened to link.

use std::process::Command;

/// The normal (non-dev) dependency tree of the library with `features`, one crate a line.
fn tree(features: &[&str]) -> String {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "-p", "twilio-delivery", "-e", "normal"])
        .args(["--prefix", "none", "--no-default-features"]);
    if !features.is_empty() {
        cargo.args(["--features", &features.join(",")]);
    }
    let output = cargo.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn has(tree: &str, krate: &str) -> bool {
    tree.lines()
        .any(|line| line.split_whitespace().next() == Some(krate))
}

#[test]
fn the_default_build_carries_no_database_framework_or_emulator() {
    let rustls_only = tree(&["rustls"]);
    assert!(has(&rustls_only, "reqwest"), "{rustls_only}");
    for absent in [
        "libsqlite3-sys",
        "sqlx",
        "axum",
        "actix-web",
        "warp",
        "twilio-delivery-emulator",
        "safe_arch",
    ] {
        assert!(
            !has(&rustls_only, absent),
            "{absent} in the default tree:\n{rustls_only}"
        );
    }
    // The features bring what they name, and only that: the check above can fail.
    let sqlite = tree(&["rustls", "sqlite"]);
    assert!(
        has(&sqlite, "libsqlite3-sys") && !has(&sqlite, "axum"),
        "{sqlite}"
    );
    let axum = tree(&["rustls", "axum"]);
    assert!(has(&axum, "axum") && !has(&axum, "sqlx"), "{axum}");
}
