//! What a test does when a service it needs (PostgreSQL, Chromium) is missing: under CI (the
//! `CI` environment variable set, as `.ci/run` runs) it fails, so a machine without the service
//! cannot pass; locally it prints why it skipped and returns.

/// Fails under CI, else prints `skipped: {why}`. Call it, then return from the test.
#[track_caller]
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // Only PostgreSQL's tests need one.
pub(crate) fn service_missing(why: &str) {
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}, and CI is set: CI must provide it (see .ci/run)");
    }
    eprintln!("skipped: {why}");
}
