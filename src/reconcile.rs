//! `Reconciler`: repairs missed callbacks by polling the API.
