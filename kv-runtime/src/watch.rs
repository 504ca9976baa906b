//! Live reads: watch streams (placeholder until the live-reads issue lands).
