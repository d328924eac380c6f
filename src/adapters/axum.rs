//! Adapter for axum (built in issue 5).
