//! Versioned schema migrations: the only place the schema is defined.
//!
//! Applied migrations are recorded in `schema_migrations` (version, name, applied_at_ms) and
//! mirrored in `PRAGMA user_version` for external tools. All pending migrations run in order in
//! one `BEGIN IMMEDIATE` transaction, so a database is either fully upgraded or left untouched,
//! and two processes opening the same old file cannot both migrate it. Never edit a shipped
//! migration: append a new one.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use crate::StoreError;
use crate::clock::epoch_ms_now;
use crate::terms;

/// What a migration does.
#[derive(Clone, Copy)]
pub enum Step {
    /// A batch of SQL statements.
    Sql(&'static str),
    /// Rust code, for data transformations SQL cannot express.
    Rust(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

/// One numbered schema change.
#[derive(Clone, Copy)]
pub struct Migration {
    /// Strictly increasing, starting at 1.
    pub version: u32,
    /// Short description, recorded in `schema_migrations`.
    pub name: &'static str,
    /// The steps, run in order.
    pub steps: &'static [Step],
}

/// Every migration this build knows, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core tables",
        steps: &[Step::Sql(V1_CORE)],
    },
    Migration {
        version: 2,
        name: "analytics: message terms and daily rollups",
        steps: &[Step::Sql(V2_ANALYTICS), Step::Rust(backfill_terms)],
    },
    Migration {
        version: 3,
        name: "idempotency keys of agent.send",
        steps: &[Step::Sql(V3_IDEMPOTENCY)],
    },
    Migration {
        version: 4,
        name: "webhook delivery ids (replay protection)",
        steps: &[Step::Sql(V4_WEBHOOK_DELIVERIES)],
    },
    Migration {
        version: 5,
        name: "web push subscriptions",
        steps: &[Step::Sql(V5_PUSH_SUBSCRIPTIONS)],
    },
    Migration {
        version: 6,
        name: "chat channels: paired senders and delivered ids",
        steps: &[Step::Sql(V6_CHANNELS)],
    },
    Migration {
        version: 7,
        name: "messages: the role check without an IN list",
        steps: &[Step::Rust(role_check_without_in_list)],
    },
    Migration {
        version: 8,
        name: "one activity index per table: sessions and presence",
        steps: &[Step::Sql(V8_ONE_ACTIVITY_INDEX)],
    },
];

/// Migration 8: every message moves its session's `last_active_at_ms`, and every turn its
/// sender's `presence.last_seen_ms`, so each index holding one of those columns is an entry
/// deleted and inserted again per message (about 4.5 k instructions each). Each table kept two
/// (all rows, and per frontend or channel); the per-frontend and per-channel ones go. A
/// filtered page (`sessions.list` of one frontend, presence of one channel) walks the
/// remaining activity index and skips rows of other frontends or channels, or sorts the
/// matching rows: the same rows in the same order (the SQL and its `ORDER BY` are unchanged),
/// at the price of reading rows of other frontends, of which a gateway has a handful.
const V8_ONE_ACTIVITY_INDEX: &str = r#"
DROP INDEX sessions_by_frontend_activity;
DROP INDEX presence_by_channel_last_seen;
"#;

/// The role check as migration 1 wrote it: SQLite evaluates an `IN` list of more than two
/// values by building a temporary b-tree, on every message insert (about 12 k instructions
/// each, 7 % of an agent turn).
const ROLE_CHECK_IN_LIST: &str = "CHECK (role IN ('user', 'assistant', 'system', 'tool'))";
/// The same check as comparisons.
const ROLE_CHECK_COMPARISONS: &str =
    "CHECK (role = 'user' OR role = 'assistant' OR role = 'system' OR role = 'tool')";

/// Migration 7: rewrites the `messages` role check from [`ROLE_CHECK_IN_LIST`] to
/// [`ROLE_CHECK_COMPARISONS`] in the stored schema. SQLite cannot alter a check, but its
/// documentation ("Making Other Kinds Of Table Schema Changes" in ALTER TABLE) allows editing
/// the table's SQL in `sqlite_schema` (`writable_schema`, then a new `schema_version`) for a
/// change that leaves the stored rows valid and their format unchanged, as an equivalent check
/// does; rebuilding the table instead would cascade into `message_terms` (foreign keys cannot
/// be turned off inside the migration's transaction). If the stored SQL does not hold the old
/// check verbatim, or the connection refuses schema writes (defensive mode), the check is left
/// as it is: same results, only slower.
fn role_check_without_in_list(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let sql: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'messages'",
        [],
        |r| r.get(0),
    )?;
    if !sql.contains(ROLE_CHECK_IN_LIST) {
        tracing::warn!("the messages table has an unexpected role check; left unchanged");
        return Ok(());
    }
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    tx.pragma_update(None, "writable_schema", true)?;
    let rewritten = tx
        .execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'messages'",
            [sql.replacen(ROLE_CHECK_IN_LIST, ROLE_CHECK_COMPARISONS, 1)],
        )
        .and_then(|_| tx.pragma_update(None, "schema_version", version + 1));
    tx.pragma_update(None, "writable_schema", false)?;
    if let Err(err) = rewritten {
        tracing::warn!(%err, "cannot rewrite the messages role check; left unchanged");
    }
    Ok(())
}

const V4_WEBHOOK_DELIVERIES: &str = r#"
-- Delivery ids each webhook accepted (see webhook_deliveries.rs): a repeat of an id within the
-- hook's replay window is refused. Rows older than the window are purged by time.
CREATE TABLE webhook_deliveries (
    hook        TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (hook, delivery_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX webhook_deliveries_by_time ON webhook_deliveries (hook, seen_at_ms);
"#;

const V5_PUSH_SUBSCRIPTIONS: &str = r#"
-- One row per browser Web Push subscription (see push.rs): the push service URL the browser
-- handed out, its public key and auth secret (RFC 8291), and the session whose finished turns
-- it is notified of. The endpoint is the key: a browser re-registering it updates the row.
CREATE TABLE push_subscriptions (
    endpoint         TEXT PRIMARY KEY NOT NULL,
    session_id       TEXT NOT NULL,
    p256dh           TEXT NOT NULL,
    auth             TEXT NOT NULL,
    expiration_ms    INTEGER,
    created_at_ms    INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX push_subscriptions_by_session ON push_subscriptions (session_id);
-- A deleted session takes its subscriptions with it.
CREATE TRIGGER push_subscriptions_follow_sessions AFTER DELETE ON sessions BEGIN
    DELETE FROM push_subscriptions WHERE session_id = OLD.id;
END;
"#;

const V6_CHANNELS: &str = r#"
-- Senders of chat channels (see channels.rs): paired once they redeemed a pairing code; asked
-- when they were last told to send one (so an unknown sender is asked once, not every message).
CREATE TABLE channel_senders (
    channel       TEXT NOT NULL,
    sender_id     TEXT NOT NULL,
    sender_name   TEXT,
    paired_at_ms  INTEGER,
    asked_at_ms   INTEGER,
    PRIMARY KEY (channel, sender_id)
) STRICT;
-- Platform message/activity ids already accepted, so a redelivery does nothing; kept until
-- expires_at_ms.
CREATE TABLE channel_deliveries (
    channel       TEXT NOT NULL,
    delivery_id   TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (channel, delivery_id)
) STRICT;
CREATE INDEX channel_deliveries_by_expiry ON channel_deliveries (expires_at_ms);
"#;

const V3_IDEMPOTENCY: &str = r#"
-- One row per agent.send idempotencyKey of a session (see idempotency.rs): the fingerprint of
-- the message it named and, once the turn ended, its reply. Expired rows are purged by time.
CREATE TABLE idempotency_keys (
    session_id    TEXT NOT NULL,
    key           TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    outcome       TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (session_id, key)
) STRICT;
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (created_at_ms);
-- A deleted session takes its keys with it (a new session of the same id starts afresh).
CREATE TRIGGER idempotency_keys_follow_sessions AFTER DELETE ON sessions BEGIN
    DELETE FROM idempotency_keys WHERE session_id = OLD.id;
END;
"#;

/// The version a fully migrated database is at.
pub fn latest_version() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const V1_CORE: &str = r#"
CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY NOT NULL,
    frontend           TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    last_active_at_ms  INTEGER NOT NULL,
    last_message_at_ms INTEGER,
    message_count      INTEGER NOT NULL DEFAULT 0,
    config             TEXT
) STRICT;
CREATE INDEX sessions_by_activity ON sessions (last_active_at_ms DESC, id);
CREATE INDEX sessions_by_frontend_activity ON sessions (frontend, last_active_at_ms DESC, id);

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
    content       TEXT NOT NULL,
    attachments   TEXT,
    created_at_ms INTEGER NOT NULL,
    day           TEXT NOT NULL
) STRICT;
-- History of one session in insertion order; also serves the cascade from sessions.
CREATE INDEX messages_by_session ON messages (session_id, id);
-- Covering index of every analytics query over messages (range on time, no table access).
CREATE INDEX messages_by_time ON messages (created_at_ms, day, session_id);

CREATE TABLE tool_runs (
    id             INTEGER PRIMARY KEY,
    session_id     TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tool           TEXT NOT NULL,
    args           TEXT NOT NULL,
    result         TEXT NOT NULL,
    success        INTEGER NOT NULL CHECK (success IN (0, 1)),
    started_at_ms  INTEGER NOT NULL,
    finished_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX tool_runs_by_session ON tool_runs (session_id, id);
CREATE INDEX tool_runs_by_time ON tool_runs (started_at_ms, tool);

-- No foreign key: the audit trail outlives deleted sessions.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    session_id TEXT,
    detail     TEXT NOT NULL,
    at_ms      INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at_ms DESC, id DESC);
CREATE INDEX audit_log_by_kind_time ON audit_log (kind, at_ms DESC, id DESC);

CREATE TABLE memory (
    namespace     TEXT PRIMARY KEY NOT NULL,
    content       TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE pairing_codes (
    code          TEXT PRIMARY KEY NOT NULL,
    channel       TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX pairing_codes_by_expiry ON pairing_codes (expires_at_ms);

CREATE TABLE canvas_artifacts (
    session_id    TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    artifact_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    title         TEXT,
    content       TEXT NOT NULL,
    metadata      TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (session_id, artifact_id)
) STRICT;
CREATE INDEX canvas_by_session_update ON canvas_artifacts (session_id, updated_at_ms DESC, artifact_id);

CREATE TABLE presence (
    channel       TEXT NOT NULL,
    sender_id     TEXT NOT NULL,
    sender_name   TEXT,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    PRIMARY KEY (channel, sender_id)
) STRICT;
CREATE INDEX presence_by_last_seen ON presence (last_seen_ms DESC, channel, sender_id);
CREATE INDEX presence_by_channel_last_seen ON presence (channel, last_seen_ms DESC, sender_id);

CREATE TABLE nodes (
    node_id          TEXT PRIMARY KEY NOT NULL,
    location         TEXT,
    location_at_ms   INTEGER,
    status           TEXT,
    status_at_ms     INTEGER,
    push_provider    TEXT,
    push_token       TEXT,
    push_updated_ms  INTEGER
) STRICT;
"#;

const V2_ANALYTICS: &str = r#"
-- Keywords of user messages (see terms.rs), one row per distinct term per message.
CREATE TABLE message_terms (
    message_id    INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    created_at_ms INTEGER NOT NULL,
    day           TEXT NOT NULL,
    term          TEXT NOT NULL,
    PRIMARY KEY (message_id, term)
) STRICT, WITHOUT ROWID;
-- Covering index of the partial-first-day part of the top-topics query.
CREATE INDEX message_terms_by_time ON message_terms (created_at_ms, term);

-- Daily rollups, kept by the triggers below (also under cascading deletes), so analytics over
-- whole days reads one row per (day, session) or (day, term) instead of every message.
CREATE TABLE session_days (
    day        TEXT NOT NULL,
    session_id TEXT NOT NULL,
    messages   INTEGER NOT NULL,
    -- Latest message time of the day; not lowered when a single message is deleted.
    last_at_ms INTEGER NOT NULL,
    PRIMARY KEY (day, session_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE term_days (
    day         TEXT NOT NULL,
    term        TEXT NOT NULL,
    occurrences INTEGER NOT NULL,
    PRIMARY KEY (day, term)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER session_days_on_insert AFTER INSERT ON messages BEGIN
    INSERT INTO session_days (day, session_id, messages, last_at_ms)
    VALUES (NEW.day, NEW.session_id, 1, NEW.created_at_ms)
    ON CONFLICT (day, session_id) DO UPDATE SET
        messages = messages + 1, last_at_ms = MAX(last_at_ms, excluded.last_at_ms);
END;
CREATE TRIGGER session_days_on_delete AFTER DELETE ON messages BEGIN
    UPDATE session_days SET messages = messages - 1
        WHERE day = OLD.day AND session_id = OLD.session_id;
    DELETE FROM session_days
        WHERE day = OLD.day AND session_id = OLD.session_id AND messages <= 0;
END;
CREATE TRIGGER term_days_on_insert AFTER INSERT ON message_terms BEGIN
    INSERT INTO term_days (day, term, occurrences) VALUES (NEW.day, NEW.term, 1)
    ON CONFLICT (day, term) DO UPDATE SET occurrences = occurrences + 1;
END;
CREATE TRIGGER term_days_on_delete AFTER DELETE ON message_terms BEGIN
    UPDATE term_days SET occurrences = occurrences - 1 WHERE day = OLD.day AND term = OLD.term;
    DELETE FROM term_days WHERE day = OLD.day AND term = OLD.term AND occurrences <= 0;
END;

INSERT INTO session_days (day, session_id, messages, last_at_ms)
    SELECT day, session_id, COUNT(*), MAX(created_at_ms) FROM messages GROUP BY day, session_id;
"#;

/// Extracts the terms of user messages written before migration 2 existed (the trigger
/// fills `term_days` as they go in).
fn backfill_terms(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut read =
        tx.prepare("SELECT id, content, created_at_ms, day FROM messages WHERE role = 'user'")?;
    let mut write = tx.prepare(
        "INSERT OR IGNORE INTO message_terms (message_id, created_at_ms, day, term)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut rows = read.query([])?;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let content: String = row.get(1)?;
        let at: i64 = row.get(2)?;
        let day: String = row.get(3)?;
        for term in terms::extract(&content) {
            write.execute(params![id, at, day, term])?;
        }
        count += 1;
    }
    tracing::info!(messages = count, "backfilled message terms");
    Ok(())
}

/// Brings `conn` to `target` (at most [`latest_version`]), running pending migrations in one
/// transaction. Returns the versions applied. Public so tests can build a database as an older
/// build left it.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<Vec<u32>, StoreError> {
    let supported = latest_version();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version       INTEGER PRIMARY KEY NOT NULL,
             name          TEXT NOT NULL,
             applied_at_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    let current: u32 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > supported {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported,
        });
    }
    let mut applied = Vec::new();
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        for step in migration.steps {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql)?,
                Step::Rust(f) => f(&tx)?,
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?1, ?2, ?3)",
            params![migration.version, migration.name, epoch_ms_now()],
        )?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
        applied.push(migration.version);
    }
    if let Some(&last) = applied.last() {
        tx.pragma_update(None, "user_version", last)?;
    }
    tx.commit()?;
    Ok(applied)
}

/// The versions recorded in `schema_migrations`, ascending.
pub fn applied_versions(conn: &Connection) -> Result<Vec<u32>, StoreError> {
    let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version")?;
    let versions = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<Vec<u32>, _>>()?;
    Ok(versions)
}
