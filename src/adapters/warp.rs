//! Adapter for warp (built in issue 5).
