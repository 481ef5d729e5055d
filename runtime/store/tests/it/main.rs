//! The integration tests of flynn-store, in one binary: one module per area, `common` shared by
//! them. One binary instead of one per file links the crate and its dependencies once, which is
//! most of the build time and of the disk space the tests take.

mod common;

mod activity_index;
mod analytics;
mod durability;
mod group_commit;
mod idempotency;
mod push;
mod records;
mod role_check;
mod schema_worker;
mod sessions_messages;
mod turns;
