//! `StatusCallback`: a status callback parsed from its form pairs.
