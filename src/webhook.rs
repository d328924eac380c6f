//! `StatusWebhook`: the framework-agnostic status-callback handler.
