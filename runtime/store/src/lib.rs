//! SQLite storage of the Flynn gateway: the one place that owns the schema and its migrations.
//!
//! [`Store`] is a cheap, cloneable handle to two dedicated OS threads: a writer that owns the
//! read-write rusqlite connection and a reader with a query-only one for analytics. Every
//! async method sends a job to one of them and awaits its reply, so tokio's workers never
//! block on SQLite. Each write commits, and is synced to disk, before its method returns `Ok`
//! (WAL; a sync thread syncs the WAL once for each round of jobs the writer ran, while the
//! writer runs the next: group commit, see `worker.rs`, `round.rs` and `syncer.rs`), so
//! neither a kill -9 nor a power loss loses anything acknowledged.
//!
//! Conventions: timestamps are `i64` epoch milliseconds passed in by the caller; JSON blobs
//! are `String`s of JSON text, checked to parse on write; writes that belong to a session
//! (messages, tool runs, canvas artifacts) create the session if it is missing.

mod analytics;
mod audit;
mod canvas;
mod channels;
mod clock;
mod error;
mod idempotency;
mod job;
mod memory;
mod message_record;
mod messages;
pub mod migrations;
mod nodes;
mod pairing;
mod presence;
mod push;
mod push_state;
mod recent;
mod round;
mod sched;
mod session_configs;
mod sessions;
mod store;
mod syncer;
pub mod terms;
mod tool_runs;
mod turns;
mod webhook_deliveries;
mod worker;

pub use analytics::{
    Analytics, DAILY_SQL, DailyCount, QUERIES as ANALYTICS_QUERIES, TOP_SESSIONS_SQL,
    TOP_TOOLS_SQL, TOP_TOPICS_SQL, TopSession, TopTool, TopTopic, window_params,
};
pub use audit::AuditEntry;
pub use canvas::{CanvasArtifact, CanvasPut};
pub use channels::PairedSender;
pub use clock::{DAY_MS, MAX_MS, MIN_MS, utc_day};
pub use error::StoreError;
pub use idempotency::IdempotencyRecord;
pub use memory::MemoryRecord;
pub use message_record::{MessageExcerpt, MessageRecord, NewMessage, Role, UnknownRole};
pub use nodes::{NodeRecord, PushTokenRecord};
pub use pairing::PairingCode;
pub use presence::PresenceRecord;
pub use push::{PushSubscriptionRecord, PushUpsert};
pub use rusqlite;
pub use sessions::{SessionQuery, SessionRecord, UNKNOWN_FRONTEND, split_session_id};
pub use store::{BUSY_TIMEOUT, Store};
pub use tool_runs::{ToolRun, ToolRunRecord};
pub use turns::{HistoryMessage, PresenceUpdate, TurnContext, TurnMessage, TurnStart};
