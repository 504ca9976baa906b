//! In-process replicas (placeholder until the live-reads issue lands).
