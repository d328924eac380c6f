//! Adapter for actix_web (built in issue 5).
