//! The SQL of the PostgreSQL backend: the schema, its migrations, and one
//! statement per operation. Public (but hidden from the docs) so that
//! benchmarks and database administrators can run exactly what the backend
//! runs; not a stable API. Every statement that carries data is
//! parameterised; the only text spliced into SQL is constants from this file
//! and, with `kv_schema`, the schema name (a checked lower-case identifier)
//! in front of kv's table names and in the channel's name ([`Statements`]).
//!
//! Mutations lock the row they change (`FOR UPDATE`, or the row lock taken
//! by `ON CONFLICT DO UPDATE` / `DELETE`), so at READ COMMITTED the check and
//! the write see the latest committed version of the row. Each one also
//! calls `pg_notify` in the same statement, so the change notification is
//! sent exactly when, and only if, the write commits.

pub mod log;

/// The schema version this library writes. A database at a higher version
/// was migrated by a newer release and is refused.
pub const SCHEMA_VERSION: i64 = 5;

/// The key of the transaction-scoped advisory lock that serialises schema
/// creation and migration between processes opening the same database
/// ("kv_schem" in ASCII).
pub const SCHEMA_LOCK_KEY: i64 = 0x6b76_5f73_6368_656d;

/// The LISTEN/NOTIFY channel of the change feed.
pub const CHANNEL: &str = "kv_changes";

/// `LISTEN` on [`CHANNEL`].
pub const LISTEN: &str = "LISTEN kv_changes";

/// Largest notification payload sent with the row; PostgreSQL's limit is
/// 8000 bytes. A larger change is announced by table and key only, and the
/// listener reads the row back.
pub const NOTIFY_ROW_LIMIT: usize = 7900;

/// The bookkeeping table, created before anything else (under the lock).
pub const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS kv_meta (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
)";

/// Reads the schema version (no row: a fresh database).
pub const READ_VERSION: &str = "SELECT value FROM kv_meta WHERE name = 'schema_version'";

/// Records the schema version.
pub const WRITE_VERSION: &str = "INSERT INTO kv_meta (name, value) \
    VALUES ('schema_version', $1::bigint) \
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value";

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: rows (key order = byte order, hence COLLATE "C") and the
    // sliding-window rate counter (one row per bucket, its admitted hits as
    // an array, updated in one statement).
    r#"
    CREATE TABLE kv_rows (
        tbl TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        deleted_at BIGINT,
        updated_by TEXT,
        PRIMARY KEY (tbl, key)
    );
    CREATE INDEX kv_rows_purge ON kv_rows (tbl, deleted_at) WHERE deleted_at IS NOT NULL;
    CREATE TABLE kv_rate (
        scope TEXT COLLATE "C" NOT NULL,
        bucket TEXT COLLATE "C" NOT NULL,
        hits BIGINT[] NOT NULL,
        admitted BOOLEAN NOT NULL,
        PRIMARY KEY (scope, bucket)
    );
    "#,
    // 1 -> 2: the version floor per table (the highest updated_at of a row
    // hard-deleted or purged from it), so that a re-created row never
    // reuses a version. Idempotent.
    r#"
    CREATE TABLE IF NOT EXISTS kv_tables (
        tbl TEXT COLLATE "C" PRIMARY KEY,
        version_floor BIGINT NOT NULL
    );
    "#,
    // 2 -> 3: the version of the table's schema that wrote each row's
    // value; rows written before are version 1. Idempotent.
    r#"
    ALTER TABLE kv_rows ADD COLUMN IF NOT EXISTS schema_version INTEGER NOT NULL DEFAULT 1;
    "#,
    // 3 -> 4: the history of tables declared with `history`: one record
    // per committed change of a row, written by the change's own
    // statement. Keyed by the change's version (unique per key); `at`
    // indexed for trimming by age. Self-contained and idempotent: it
    // touches no other table.
    r#"
    CREATE TABLE IF NOT EXISTS kv_history (
        tbl TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        version BIGINT NOT NULL,
        op TEXT NOT NULL,
        value JSONB NOT NULL,
        schema_version INTEGER NOT NULL,
        at BIGINT NOT NULL,
        updated_by TEXT,
        PRIMARY KEY (tbl, key, version)
    );
    CREATE INDEX IF NOT EXISTS kv_history_at ON kv_history (tbl, at);
    "#,
    // 4 -> 5: logs. Entries numbered per (log, parent), the idempotency
    // key and the size of its append on an append's first entry, and the
    // last number handed out per parent (whose row lock serialises the
    // appends to one parent). Self-contained and idempotent: only tables
    // of its own.
    r#"
    CREATE TABLE IF NOT EXISTS kv_log (
        tbl TEXT COLLATE "C" NOT NULL,
        parent TEXT COLLATE "C" NOT NULL,
        seq BIGINT NOT NULL,
        value JSONB NOT NULL,
        created_at BIGINT NOT NULL,
        author TEXT,
        deleted_at BIGINT,
        idem_key TEXT COLLATE "C",
        idem_count BIGINT,
        schema_version INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (tbl, parent, seq)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS kv_log_idem ON kv_log (tbl, parent, idem_key)
        WHERE idem_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS kv_log_purge ON kv_log (tbl, deleted_at)
        WHERE deleted_at IS NOT NULL;
    CREATE TABLE IF NOT EXISTS kv_log_parents (
        tbl TEXT COLLATE "C" NOT NULL,
        parent TEXT COLLATE "C" NOT NULL,
        last_seq BIGINT NOT NULL,
        PRIMARY KEY (tbl, parent)
    );
    "#,
];

/// `$1` table, `$2` key.
/// Columns: value, created_at, updated_at, deleted_at, updated_by,
/// schema_version.
pub const GET: &str =
    "SELECT value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM kv_rows WHERE tbl = $1::text AND key = $2::text";

/// `$1` table, `$2` limit. Columns: key, then as [`GET`].
pub const LIST_FIRST: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM kv_rows WHERE tbl = $1::text AND deleted_at IS NULL ORDER BY key LIMIT $2::bigint";

/// `$1` table, `$2` exclusive lower key bound, `$3` limit. Columns: as [`LIST_FIRST`].
pub const LIST_AFTER: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM kv_rows WHERE tbl = $1::text AND key > $2::text AND deleted_at IS NULL \
    ORDER BY key LIMIT $3::bigint";

/// `$1` table, `$2` limit. Every row, live or soft-deleted. Columns: as
/// [`LIST_FIRST`].
pub const SCAN_FIRST: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM kv_rows WHERE tbl = $1::text ORDER BY key LIMIT $2::bigint";

/// `$1` table, `$2` exclusive lower key bound, `$3` limit. Columns: as
/// [`LIST_FIRST`].
pub const SCAN_AFTER: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM kv_rows WHERE tbl = $1::text AND key > $2::text ORDER BY key LIMIT $3::bigint";

/// `GREATEST(now, previous + 1)` without overflowing at `i64::MAX`.
macro_rules! next_version {
    ($now:literal) => {
        concat!(
            "GREATEST(",
            $now,
            ", LEAST(r.updated_at, 9223372036854775806) + 1)"
        )
    };
}

/// The notification for a live row: JSON with the table, the key and the
/// row (its value as JSON text, so the listener hands on exactly what `GET`
/// reads), or with `reread` and the row's `updated_at` when that would not
/// fit in a notification.
/// Expects a CTE `w` with columns value, created_at, updated_at, updated_by,
/// schema_version.
macro_rules! notify_live {
    () => {
        "(SELECT pg_notify('kv_changes', CASE WHEN octet_length(n.full) <= 7900 THEN n.full \
        ELSE json_build_object('t', $1::text, 'k', $2::text, 'u', n.u, 'reread', true)::text END) \
        FROM (SELECT json_build_object('t', $1::text, 'k', $2::text, 'r', json_build_object(\
        'v', w.value::text, 'c', w.created_at, 'u', w.updated_at, 'b', w.updated_by, \
        's', w.schema_version))::text AS full, \
        w.updated_at AS u FROM w) AS n)"
    };
}

/// The notification that no live row remains.
macro_rules! notify_gone {
    () => {
        "pg_notify('kv_changes', json_build_object('t', $1::text, 'k', $2::text, 'r', NULL)::text)"
    };
}

/// The CTEs `old`, `seen` and `w` of [`PUT`] (and [`PUT_HISTORY`]).
macro_rules! put_ctes {
    () => {
        concat!(
            "WITH old AS (",
            "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
            "WHERE tbl = $1::text AND key = $2::text FOR UPDATE",
            "), seen AS (",
            "SELECT 1 FROM kv_rows WHERE tbl = $1::text AND key = $2::text",
            "), w AS (",
            "INSERT INTO kv_rows AS r ",
            "(tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version) ",
            "SELECT $1::text, $2::text, $3::text::jsonb, $5::bigint, GREATEST($5::bigint, (",
            "SELECT LEAST(f.version_floor, 9223372036854775806) + 1 FROM kv_tables AS f ",
            "WHERE f.tbl = $1::text)), NULL, $4::text, $8::integer ",
            "WHERE (EXISTS (SELECT 1 FROM old) OR NOT EXISTS (SELECT 1 FROM seen)) ",
            "AND NOT EXISTS (SELECT 1 FROM old WHERE old.schema_version > $8::integer) ",
            "AND CASE WHEN $7::boolean ",
            "THEN NOT EXISTS (SELECT 1 FROM old WHERE old.deleted_at IS NULL) ",
            "WHEN $6::bigint IS NULL THEN true ",
            "ELSE EXISTS (SELECT 1 FROM old WHERE old.deleted_at IS NULL AND old.updated_at = $6::bigint) ",
            "END ",
            "ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value, updated_at = ",
            next_version!("$5::bigint"),
            ", deleted_at = NULL, updated_by = EXCLUDED.updated_by, ",
            "schema_version = EXCLUDED.schema_version ",
            "WHERE EXISTS (SELECT 1 FROM old) ",
            "RETURNING r.value, r.created_at, r.updated_at, r.updated_by, r.schema_version",
            ")"
        )
    };
}

/// The final `SELECT` of [`PUT`] (and [`PUT_HISTORY`]).
macro_rules! put_select {
    () => {
        concat!(
            " SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, ",
            "old.updated_by, old.schema_version, ",
            "w.created_at, w.updated_at, ",
            notify_live!(),
            " FROM (VALUES (0)) AS one (x) LEFT JOIN old ON true LEFT JOIN w ON true"
        )
    };
}

/// `$1` table, `$2` key, `$3` value (JSON text), `$4` updated_by, `$5` now,
/// `$6` expected updated_at (NULL: no version expected), `$7` true to write
/// only when there is no live row (`Expect::NotLive`; `$6` is then NULL),
/// `$8` the value's schema version (a row a newer version wrote is not
/// overwritten).
///
/// `old` locks and reads the current row (live or soft-deleted). The insert
/// runs only when the expectation holds against that locked row; it updates
/// the existing row only when `old` saw one, so that `previous` is always
/// the row replaced. When neither writes although `old` saw no row (another
/// session inserted the key after this statement's snapshot), the caller
/// runs the statement again: the next run locks that row and checks the
/// expectation against it. Likewise when the snapshot saw a row (`seen`)
/// that `old` then found deleted by a session that committed meanwhile:
/// that session may have raised the version floor after this snapshot, so
/// the creation waits for a run with a fresh snapshot.
///
/// A created row gets `updated_at = GREATEST(now, floor + 1)` from
/// `kv_tables`; an existing one `GREATEST(now, previous + 1)`.
///
/// Columns: 0-5 the previous row as [`GET`] (NULLs when none), 6 created_at
/// and 7 updated_at of the written row (NULLs when nothing was written).
pub const PUT: &str = concat!(put_ctes!(), put_select!());

/// The CTE `h`: one history record per row of `$src` (a CTE of this
/// statement holding the change, at most one row), for key `$2` of table
/// `$1`; returns a row when it wrote one. A record of the same version
/// (only possible once versions stop growing at `i64::MAX`) is replaced.
macro_rules! record_cte {
    ($src:literal, $version:literal, $op:literal, $value:literal, $schema:literal, $now:literal, $by:literal) => {
        concat!(
            ", h AS (INSERT INTO kv_history ",
            "(tbl, key, version, op, value, schema_version, at, updated_by) ",
            "SELECT $1::text, $2::text, ",
            $version,
            ", '",
            $op,
            "', ",
            $value,
            ", ",
            $schema,
            ", ",
            $now,
            ", ",
            $by,
            " FROM ",
            $src,
            " ",
            "ON CONFLICT (tbl, key, version) DO UPDATE SET op = EXCLUDED.op, ",
            "value = EXCLUDED.value, schema_version = EXCLUDED.schema_version, ",
            "at = EXCLUDED.at, updated_by = EXCLUDED.updated_by RETURNING 1)"
        )
    };
}

/// The CTE `t`: when `h` wrote a record, drops key `$2`'s records beyond
/// the newest `$keep` (a bigint, NULL for no count) and those older than
/// `$cutoff` (NULL for no age). The statement's snapshot does not see the
/// record `h` inserts, so of the records it sees, the newest `$keep - 1`
/// stay. (A writer that waited for the row lock may not see the record of
/// the writer it waited for, which then stays until the next change.)
macro_rules! trim_cte {
    ($keep:literal, $cutoff:literal) => {
        concat!(
            ", t AS (DELETE FROM kv_history AS y WHERE y.tbl = $1::text AND y.key = $2::text ",
            "AND EXISTS (SELECT 1 FROM h) AND ((",
            $keep,
            " IS NOT NULL AND y.version <= (SELECT z.version FROM kv_history AS z ",
            "WHERE z.tbl = $1::text AND z.key = $2::text ORDER BY z.version DESC ",
            "LIMIT 1 OFFSET GREATEST(",
            $keep,
            " - 1, 0))) OR y.at < ",
            $cutoff,
            "))"
        )
    };
}

/// [`PUT`] for a table with history: the same parameters, then `$9` the
/// records kept per key (NULL: no count) and `$10` the time before which
/// records are dropped (NULL: no age). A `set` record of the written row
/// and the trim of the key's records are part of the same statement, so
/// they commit exactly when the write does. Columns: as [`PUT`].
pub const PUT_HISTORY: &str = concat!(
    put_ctes!(),
    record_cte!(
        "w",
        "w.updated_at",
        "set",
        "w.value",
        "w.schema_version",
        "$5::bigint",
        "w.updated_by"
    ),
    trim_cte!("$9::bigint", "$10::bigint"),
    put_select!()
);

/// `$1` table, `$2` key, `$3` now, `$4` updated_by, `$5` expected
/// updated_at (NULL: any), `$6` true when no live row is expected (then
/// nothing is deleted). Soft-deletes a live row when its version is the
/// expected one. Columns: 0-5 the live row before, as [`GET`] (no row when
/// there was no live row), 6 whether it was deleted (false: a conflict).
pub const REMOVE_SOFT: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text AND deleted_at IS NULL FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = $3::bigint, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NULL ",
    "AND ($5::bigint IS NULL OR old.updated_at = $5::bigint) AND NOT $6::boolean ",
    "RETURNING r.updated_at",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "EXISTS (SELECT 1 FROM w), (SELECT ",
    notify_gone!(),
    " FROM w) FROM old"
);

/// [`REMOVE_SOFT`] for a table with history: the same parameters, then
/// `$7` the records kept per key and `$8` the time before which records
/// are dropped (each NULL for none); an `rm` record of the deleted row's
/// value, in the same statement. Columns: as [`REMOVE_SOFT`].
pub const REMOVE_SOFT_HISTORY: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text AND deleted_at IS NULL FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = $3::bigint, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NULL ",
    "AND ($5::bigint IS NULL OR old.updated_at = $5::bigint) AND NOT $6::boolean ",
    "RETURNING r.updated_at",
    ")",
    record_cte!(
        "w, old",
        "w.updated_at",
        "rm",
        "old.value",
        "old.schema_version",
        "$3::bigint",
        "$4::text"
    ),
    trim_cte!("$7::bigint", "$8::bigint"),
    " SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "EXISTS (SELECT 1 FROM w), (SELECT ",
    notify_gone!(),
    " FROM w) FROM old"
);

/// `$1` table, `$2` key, `$3` expected updated_at (NULL: any), `$4` true
/// when no live row is expected (then nothing is removed). Removes a
/// live row when its version is the expected one, and raises the table's
/// version floor to the removed row's `updated_at`. `old` locks the live
/// row first, so the version compared is the latest committed one.
/// Columns: as [`REMOVE_SOFT`].
pub const REMOVE_HARD: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text AND deleted_at IS NULL FOR UPDATE",
    "), d AS (",
    "DELETE FROM kv_rows AS r USING old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NULL ",
    "AND ($3::bigint IS NULL OR old.updated_at = $3::bigint) AND NOT $4::boolean ",
    "RETURNING r.updated_at",
    "), f AS (",
    "INSERT INTO kv_tables AS t (tbl, version_floor) SELECT $1::text, d.updated_at FROM d ",
    "ON CONFLICT (tbl) DO UPDATE SET version_floor = ",
    "GREATEST(t.version_floor, EXCLUDED.version_floor)",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "EXISTS (SELECT 1 FROM d), (SELECT ",
    notify_gone!(),
    " FROM d) FROM old"
);

/// [`REMOVE_HARD`] for a table with history: the same parameters, then
/// `$5` now, `$6` updated_by, `$7` the records kept per key and `$8` the
/// time before which records are dropped (each NULL for none). The
/// removal's record gets the version the row would have got next
/// (`GREATEST(now, updated_at + 1)`), and the version floor is raised to
/// it, in the same statement. Columns: as [`REMOVE_SOFT`].
pub const REMOVE_HARD_HISTORY: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text AND deleted_at IS NULL FOR UPDATE",
    "), d AS (",
    "DELETE FROM kv_rows AS r USING old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NULL ",
    "AND ($3::bigint IS NULL OR old.updated_at = $3::bigint) AND NOT $4::boolean ",
    "RETURNING ",
    "GREATEST($5::bigint, LEAST(r.updated_at, 9223372036854775806) + 1) AS version",
    "), f AS (",
    "INSERT INTO kv_tables AS t (tbl, version_floor) SELECT $1::text, d.version FROM d ",
    "ON CONFLICT (tbl) DO UPDATE SET version_floor = ",
    "GREATEST(t.version_floor, EXCLUDED.version_floor)",
    ")",
    record_cte!(
        "d, old",
        "d.version",
        "rm",
        "old.value",
        "old.schema_version",
        "$5::bigint",
        "$6::text"
    ),
    trim_cte!("$7::bigint", "$8::bigint"),
    " SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "EXISTS (SELECT 1 FROM d), (SELECT ",
    notify_gone!(),
    " FROM d) FROM old"
);

/// `$1` table, `$2` key, `$3` now, `$4` updated_by, `$5` whether a
/// soft-deleted row may be revived (false when the write expects a live
/// row). Revives a soft-deleted row. Columns: 0-5 the row before, as
/// [`GET`] (no row: not found), 6 the new updated_at (NULL when nothing
/// changed).
///
/// Whether the row is deleted is decided on `old`, the row as locked (the
/// latest committed version), never on the statement's snapshot: a soft
/// delete that commits while this statement waits for the lock leaves the
/// snapshot showing a live row, which the update would then skip although
/// `old` reports it deleted.
pub const RESTORE: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = NULL, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND old.deleted_at IS NOT NULL AND $5::boolean ",
    "RETURNING r.value, r.created_at, r.updated_at, r.updated_by, r.schema_version",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "w.updated_at, ",
    notify_live!(),
    " FROM old LEFT JOIN w ON true"
);

/// [`RESTORE`] for a table with history: the same parameters, then `$6`
/// the records kept per key and `$7` the time before which records are
/// dropped (each NULL for none); a `restore` record of the revived row, in
/// the same statement. Columns: as [`RESTORE`].
pub const RESTORE_HISTORY: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by, schema_version FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = NULL, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NOT NULL AND $5::boolean ",
    "RETURNING r.value, r.created_at, r.updated_at, r.updated_by, r.schema_version",
    ")",
    record_cte!(
        "w",
        "w.updated_at",
        "restore",
        "w.value",
        "w.schema_version",
        "$3::bigint",
        "w.updated_by"
    ),
    trim_cte!("$6::bigint", "$7::bigint"),
    " SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "old.schema_version, ",
    "w.updated_at, ",
    notify_live!(),
    " FROM old LEFT JOIN w ON true"
);

/// `$1` table, `$2` cut-off. Removes rows soft-deleted before the cut-off.
/// Raises the table's version floor to the highest `updated_at` purged.
/// Columns: as [`LIST_FIRST`], in key order. Purged rows were invisible
/// already, so nothing is notified.
pub const PURGE: &str = "WITH d AS (DELETE FROM kv_rows \
    WHERE tbl = $1::text AND deleted_at IS NOT NULL AND deleted_at < $2::bigint \
    RETURNING key, value, created_at, updated_at, deleted_at, updated_by, schema_version), \
    f AS (INSERT INTO kv_tables AS t (tbl, version_floor) \
    SELECT $1::text, max(d.updated_at) FROM d HAVING count(*) > 0 \
    ON CONFLICT (tbl) DO UPDATE SET version_floor = \
    GREATEST(t.version_floor, EXCLUDED.version_floor)) \
    SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM d ORDER BY key";

/// [`PURGE`] for a table with history: `$1` table, `$2` cut-off, `$3`
/// now, `$4` updated_by, `$5` the records kept per key, `$6` the time
/// before which records are dropped (each NULL for none). Records a
/// `purge` of each removed row (versioned like a hard delete's, the floor
/// raised to the highest), trims the purged keys' records to `$5`, and
/// drops every record of the table older than `$6`, all in one statement.
/// Columns: as [`PURGE`].
pub const PURGE_HISTORY: &str = "WITH d AS (DELETE FROM kv_rows \
    WHERE tbl = $1::text AND deleted_at IS NOT NULL AND deleted_at < $2::bigint \
    RETURNING key, value, created_at, updated_at, deleted_at, updated_by, schema_version), \
    dv AS (SELECT d.key, d.value, d.schema_version, \
    GREATEST($3::bigint, LEAST(d.updated_at, 9223372036854775806) + 1) AS version FROM d), \
    f AS (INSERT INTO kv_tables AS t (tbl, version_floor) \
    SELECT $1::text, max(dv.version) FROM dv HAVING count(*) > 0 \
    ON CONFLICT (tbl) DO UPDATE SET version_floor = \
    GREATEST(t.version_floor, EXCLUDED.version_floor)), \
    h AS (INSERT INTO kv_history (tbl, key, version, op, value, schema_version, at, updated_by) \
    SELECT $1::text, dv.key, dv.version, 'purge', dv.value, dv.schema_version, $3::bigint, \
    $4::text FROM dv ON CONFLICT (tbl, key, version) DO NOTHING), \
    tk AS (DELETE FROM kv_history AS y USING dv WHERE y.tbl = $1::text AND y.key = dv.key \
    AND $5::bigint IS NOT NULL AND y.version <= (SELECT z.version FROM kv_history AS z \
    WHERE z.tbl = $1::text AND z.key = dv.key ORDER BY z.version DESC \
    LIMIT 1 OFFSET GREATEST($5::bigint - 1, 0))), \
    ta AS (DELETE FROM kv_history AS y WHERE y.tbl = $1::text AND y.at < $6::bigint) \
    SELECT key, value::text, created_at, updated_at, deleted_at, updated_by, schema_version \
    FROM d ORDER BY key";

/// `$1` table, `$2` key, `$3` limit: the key's history records, newest
/// first. Columns: version, op, value (JSON text), schema_version, at,
/// updated_by.
pub const HISTORY_FIRST: &str = "SELECT version, op, value::text, schema_version, at, updated_by \
    FROM kv_history WHERE tbl = $1::text AND key = $2::text \
    ORDER BY version DESC LIMIT $3::bigint";

/// `$1` table, `$2` key, `$3` exclusive upper version bound, `$4` limit.
/// Columns: as [`HISTORY_FIRST`].
pub const HISTORY_BEFORE: &str = "SELECT version, op, value::text, schema_version, at, \
    updated_by FROM kv_history WHERE tbl = $1::text AND key = $2::text \
    AND version < $3::bigint ORDER BY version DESC LIMIT $4::bigint";
/// Every table holding a row or a version floor, in byte order of the
/// names, with its row count, soft-deleted row count and floor.
/// Columns: tbl, rows, deleted rows, version_floor (NULL when none).
pub const TABLES: &str = "SELECT t.tbl, coalesce(c.n, 0)::bigint, coalesce(c.d, 0)::bigint, \
    f.version_floor \
    FROM (SELECT tbl FROM kv_rows UNION SELECT tbl FROM kv_tables) AS t \
    LEFT JOIN (SELECT tbl, count(*) AS n, count(deleted_at) AS d FROM kv_rows GROUP BY tbl) AS c \
    ON c.tbl = t.tbl \
    LEFT JOIN kv_tables AS f ON f.tbl = t.tbl \
    ORDER BY t.tbl";

/// History records per table, then entries per log. Columns: kind (`h` or
/// `l`), table or log name, count.
pub const OTHER_DATA: &str =
    "SELECT 'h'::text, tbl, count(*)::bigint FROM kv_history GROUP BY tbl \
    UNION ALL SELECT 'l'::text, tbl, count(*)::bigint FROM kv_log GROUP BY tbl \
    ORDER BY 1, 2";

/// Starts the transaction of a snapshot: every read in it sees the
/// database as of its first statement.
pub const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// `$1` table; `$2` keys, `$3` values (JSON text), `$4` created_at, `$5`
/// updated_at, `$6` deleted_at (elements NULL when live), `$7` updated_by
/// (elements NULL when none), `$10` the schema versions that wrote the
/// values, one array element per row; `$8` true to overwrite newer rows
/// (`ImportMode::Overwrite`); `$9` the version floor to raise the table's
/// to (NULL: none).
///
/// `old` locks the stored rows of the given keys; `decided` gives each row
/// its verdict as `import_verdict` does ('w' write, 'u' unchanged, 'k'
/// kept newer; values compared as JSONB). The insert writes the 'w' rows
/// exactly; it updates a stored row only when it is the one `old` locked,
/// so a row another session inserted after this statement's snapshot is
/// not overwritten unseen: then fewer rows are written than decided, and
/// the caller rolls the transaction back and runs it again. The floor is
/// raised to `$9` and to the versions of the newer rows overwritten. Each
/// row written is notified (a soft-deleted one as gone), in input order.
///
/// Columns, one row per input row in input order: verdict, the stored
/// row's updated_at (NULL when none), rows written, notifications sent.
pub const IMPORT: &str = concat!(
    "WITH input AS (",
    "SELECT i.key, i.value::jsonb AS value, i.created_at, i.updated_at, i.deleted_at, ",
    "i.updated_by, i.schema_version, i.ord FROM unnest($2::text[], $3::text[], $4::bigint[], ",
    "$5::bigint[], $6::bigint[], $7::text[], $10::integer[]) WITH ORDINALITY ",
    "AS i (key, value, created_at, updated_at, deleted_at, updated_by, schema_version, ord)",
    "), old AS (",
    "SELECT r.key, r.value, r.created_at, r.updated_at, r.deleted_at, r.updated_by, ",
    "r.schema_version FROM kv_rows AS r WHERE r.tbl = $1::text AND r.key = ANY ($2::text[]) ",
    "FOR UPDATE",
    "), decided AS (",
    "SELECT i.*, o.updated_at AS old_updated_at, CASE WHEN o.key IS NULL THEN 'w' ",
    "WHEN o.value = i.value AND o.created_at = i.created_at AND o.updated_at = i.updated_at ",
    "AND o.deleted_at IS NOT DISTINCT FROM i.deleted_at ",
    "AND o.updated_by IS NOT DISTINCT FROM i.updated_by ",
    "AND o.schema_version = i.schema_version THEN 'u' ",
    "WHEN NOT $8::boolean AND o.updated_at >= i.updated_at THEN 'k' ",
    "ELSE 'w' END AS verdict ",
    "FROM input AS i LEFT JOIN old AS o ON o.key = i.key",
    "), w AS (",
    "INSERT INTO kv_rows AS r ",
    "(tbl, key, value, created_at, updated_at, deleted_at, updated_by, schema_version) ",
    "SELECT $1::text, d.key, d.value, d.created_at, d.updated_at, d.deleted_at, d.updated_by, ",
    "d.schema_version ",
    "FROM decided AS d WHERE d.verdict = 'w' ORDER BY d.key ",
    "ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value, ",
    "created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, ",
    "deleted_at = EXCLUDED.deleted_at, updated_by = EXCLUDED.updated_by, ",
    "schema_version = EXCLUDED.schema_version ",
    "WHERE r.updated_at = (SELECT d.old_updated_at FROM decided AS d WHERE d.key = EXCLUDED.key) ",
    "RETURNING r.key",
    "), f AS (",
    "INSERT INTO kv_tables AS t (tbl, version_floor) SELECT $1::text, x.m FROM (SELECT ",
    "GREATEST($9::bigint, (SELECT max(d.old_updated_at) FROM decided AS d ",
    "WHERE d.verdict = 'w' AND d.old_updated_at >= d.updated_at)) AS m) AS x ",
    "WHERE x.m IS NOT NULL ",
    "ON CONFLICT (tbl) DO UPDATE SET version_floor = ",
    "GREATEST(t.version_floor, EXCLUDED.version_floor)",
    "), n AS (",
    "SELECT count(pg_notify('kv_changes', CASE ",
    "WHEN d.deleted_at IS NOT NULL THEN json_build_object('t', $1::text, 'k', d.key, 'r', NULL)::text ",
    "WHEN octet_length(d.full) <= 7900 THEN d.full ",
    "ELSE json_build_object('t', $1::text, 'k', d.key, 'u', d.updated_at, 'reread', true)::text ",
    "END)) AS sent FROM (SELECT d.key, d.deleted_at, d.updated_at, json_build_object(",
    "'t', $1::text, 'k', d.key, 'r', json_build_object('v', d.value::text, 'c', d.created_at, ",
    "'u', d.updated_at, 'b', d.updated_by, 's', d.schema_version))::text AS full ",
    "FROM decided AS d WHERE d.verdict = 'w' ORDER BY d.ord) AS d",
    ") SELECT d.verdict, d.old_updated_at, (SELECT count(*) FROM w), (SELECT n.sent FROM n) ",
    "FROM decided AS d ORDER BY d.ord"
);

/// The rate limiter's size. Columns: buckets, hits in them.
pub const RATE_SIZE: &str =
    "SELECT count(*), coalesce(sum(cardinality(hits)), 0)::bigint FROM kv_rate";

/// `$1` scope, `$2` bucket, `$3` now, `$4` max, `$5` window start (uses at
/// or before it have left the window), `$6` the number of uses `n`, `$7`
/// true to count them whether or not they fit (`record`).
///
/// One row per bucket holds the counted uses still in the window. The row
/// lock of `ON CONFLICT DO UPDATE` makes the count and the append one atomic
/// step for every process sharing the database. Expired uses are dropped;
/// the `n` new ones are appended when they fit (or with `$7`).
/// Columns: admitted, the uses now stored (ascending but for the new ones,
/// which may be older than uses counted by a clock running ahead).
pub const RATE_USE: &str = "INSERT INTO kv_rate AS r (scope, bucket, hits, admitted) \
    VALUES ($1::text, $2::text, \
    CASE WHEN $7::boolean OR $6::integer <= $4::bigint \
    THEN array_fill($3::bigint, ARRAY[$6::integer]) ELSE '{}'::bigint[] END, \
    $7::boolean OR $6::integer <= $4::bigint) \
    ON CONFLICT (scope, bucket) DO UPDATE SET (hits, admitted) = (\
    SELECT CASE WHEN k.ok THEN k.kept || array_fill($3::bigint, ARRAY[$6::integer]) \
    ELSE k.kept END, k.ok \
    FROM (SELECT coalesce(array_agg(h.at ORDER BY h.at), '{}'::bigint[]) AS kept, \
    $7::boolean OR count(*) + $6::integer <= $4::bigint AS ok \
    FROM unnest(r.hits) AS h (at) WHERE h.at > $5::bigint) AS k) \
    RETURNING admitted, hits";

/// `$1` scope, `$2` bucket. Column: the bucket's stored uses (no row: none).
pub const RATE_PEEK: &str = "SELECT hits FROM kv_rate WHERE scope = $1::text AND bucket = $2::text";

/// `$1` scope, `$2` bucket. Forgets the bucket. Column: whether it held
/// any uses.
pub const RATE_RESET: &str = "WITH d AS (DELETE FROM kv_rate \
    WHERE scope = $1::text AND bucket = $2::text RETURNING cardinality(hits) > 0 AS held) \
    SELECT coalesce(bool_or(held), false) FROM d";

/// `$1` scope, `$2` window start. Deletes the buckets of the scope with no
/// hit left in the window. Column: the number of rows deleted (a row, not
/// a command tag, so that unnamed statements report it too).
pub const RATE_SWEEP: &str = "WITH d AS (DELETE FROM kv_rate AS r WHERE r.scope = $1::text \
    AND NOT EXISTS (SELECT 1 FROM unnest(r.hits) AS h (at) WHERE h.at > $2::bigint) \
    RETURNING 1) SELECT count(*) FROM d";

/// One statement, with its parameters' types (for running it unnamed,
/// without preparing it first).
#[derive(Clone, Debug)]
pub struct Stmt {
    /// The SQL text.
    pub text: String,
    /// The type of each parameter, `$1` first.
    pub types: &'static [tokio_postgres::types::Type],
}

/// Parameter types of each statement (statics: `Type` is not promoted).
mod types {
    use tokio_postgres::types::Type;
    const T: Type = Type::TEXT;
    const I: Type = Type::INT8;
    const B: Type = Type::BOOL;
    const N: Type = Type::INT4;
    pub static TT: [Type; 2] = [T, T];
    pub static TI: [Type; 2] = [T, I];
    pub static TTI: [Type; 3] = [T, T, I];
    pub static TTT: [Type; 3] = [T, T, T];
    pub static PUT: [Type; 8] = [T, T, T, T, I, I, B, N];
    pub static REMOVE_SOFT: [Type; 6] = [T, T, I, T, I, B];
    pub static REMOVE_HARD: [Type; 4] = [T, T, I, B];
    pub static RESTORE: [Type; 5] = [T, T, I, T, B];
    pub static TTII: [Type; 4] = [T, T, I, I];
    pub static PUT_HISTORY: [Type; 10] = [T, T, T, T, I, I, B, N, I, I];
    pub static REMOVE_SOFT_HISTORY: [Type; 8] = [T, T, I, T, I, B, I, I];
    pub static REMOVE_HARD_HISTORY: [Type; 8] = [T, T, I, B, I, T, I, I];
    pub static RESTORE_HISTORY: [Type; 7] = [T, T, I, T, B, I, I];
    pub static PURGE_HISTORY: [Type; 6] = [T, I, I, T, I, I];
    pub static RATE_USE: [Type; 7] = [T, T, I, I, I, N, B];
    pub static LOG_APPEND: [Type; 7] = [T, T, TA, T, I, T, N];
    pub static TTI_IB: [Type; 5] = [T, T, I, I, B];
    pub static TT_IA_I: [Type; 4] = [T, T, IA, I];
    pub static TT_IA: [Type; 3] = [T, T, IA];
    pub static NONE: [Type; 0] = [];
    const TA: Type = Type::TEXT_ARRAY;
    const IA: Type = Type::INT8_ARRAY;
    const I4A: Type = Type::INT4_ARRAY;
    pub static IMPORT: [Type; 10] = [T, TA, TA, IA, IA, IA, TA, B, I, I4A];
}

/// Every statement the backend runs, for one schema: kv's tables in it and
/// its own notification channel, or, without `kv_schema`, the constants
/// above as they are (tables in the first schema of the `search_path`,
/// channel [`CHANNEL`]).
#[derive(Clone, Debug)]
pub struct Statements {
    /// The schema, if kv has its own.
    pub schema: Option<String>,
    /// The notification channel.
    pub channel: String,
    /// [`GET`].
    pub get: Stmt,
    /// [`LIST_FIRST`].
    pub list_first: Stmt,
    /// [`LIST_AFTER`].
    pub list_after: Stmt,
    /// [`SCAN_FIRST`].
    pub scan_first: Stmt,
    /// [`SCAN_AFTER`].
    pub scan_after: Stmt,
    /// [`PUT`].
    pub put: Stmt,
    /// [`REMOVE_SOFT`].
    pub remove_soft: Stmt,
    /// [`REMOVE_HARD`].
    pub remove_hard: Stmt,
    /// [`RESTORE`].
    pub restore: Stmt,
    /// [`PURGE`].
    pub purge: Stmt,
    /// [`PUT_HISTORY`].
    pub put_history: Stmt,
    /// [`REMOVE_SOFT_HISTORY`].
    pub remove_soft_history: Stmt,
    /// [`REMOVE_HARD_HISTORY`].
    pub remove_hard_history: Stmt,
    /// [`RESTORE_HISTORY`].
    pub restore_history: Stmt,
    /// [`PURGE_HISTORY`].
    pub purge_history: Stmt,
    /// [`HISTORY_FIRST`].
    pub history_first: Stmt,
    /// [`HISTORY_BEFORE`].
    pub history_before: Stmt,
    /// [`RATE_USE`].
    pub rate_use: Stmt,
    /// [`RATE_PEEK`].
    pub rate_peek: Stmt,
    /// [`RATE_RESET`].
    pub rate_reset: Stmt,
    /// [`RATE_SWEEP`].
    pub rate_sweep: Stmt,
    /// [`TABLES`].
    pub tables: Stmt,
    /// [`OTHER_DATA`].
    pub other_data: Stmt,
    /// [`IMPORT`].
    pub import: Stmt,
    /// [`READ_VERSION`].
    pub read_version: Stmt,
    /// [`RATE_SIZE`].
    pub rate_size: Stmt,
    /// The log statements.
    pub log: log::Statements,
}

impl Statements {
    /// The statements for `schema` (a checked identifier), or for the
    /// `search_path` when `None`.
    pub fn new(schema: Option<&str>) -> Statements {
        let stmt = |text: &str, types: &'static [tokio_postgres::types::Type]| Stmt {
            text: qualify(text, schema),
            types,
        };
        Statements {
            schema: schema.map(str::to_owned),
            channel: channel(schema),
            get: stmt(GET, &types::TT),
            list_first: stmt(LIST_FIRST, &types::TI),
            list_after: stmt(LIST_AFTER, &types::TTI),
            scan_first: stmt(SCAN_FIRST, &types::TI),
            scan_after: stmt(SCAN_AFTER, &types::TTI),
            put: stmt(PUT, &types::PUT),
            remove_soft: stmt(REMOVE_SOFT, &types::REMOVE_SOFT),
            remove_hard: stmt(REMOVE_HARD, &types::REMOVE_HARD),
            restore: stmt(RESTORE, &types::RESTORE),
            purge: stmt(PURGE, &types::TI),
            put_history: stmt(PUT_HISTORY, &types::PUT_HISTORY),
            remove_soft_history: stmt(REMOVE_SOFT_HISTORY, &types::REMOVE_SOFT_HISTORY),
            remove_hard_history: stmt(REMOVE_HARD_HISTORY, &types::REMOVE_HARD_HISTORY),
            restore_history: stmt(RESTORE_HISTORY, &types::RESTORE_HISTORY),
            purge_history: stmt(PURGE_HISTORY, &types::PURGE_HISTORY),
            history_first: stmt(HISTORY_FIRST, &types::TTI),
            history_before: stmt(HISTORY_BEFORE, &types::TTII),
            rate_use: stmt(RATE_USE, &types::RATE_USE),
            rate_peek: stmt(RATE_PEEK, &types::TT),
            rate_reset: stmt(RATE_RESET, &types::TT),
            rate_sweep: stmt(RATE_SWEEP, &types::TI),
            tables: stmt(TABLES, &types::NONE),
            other_data: stmt(OTHER_DATA, &types::NONE),
            import: stmt(IMPORT, &types::IMPORT),
            read_version: stmt(READ_VERSION, &types::NONE),
            rate_size: stmt(RATE_SIZE, &types::NONE),
            log: log::Statements {
                append: stmt(log::APPEND, &types::LOG_APPEND),
                replay: stmt(log::REPLAY, &types::TTT),
                get: stmt(log::GET, &types::TTI),
                forward: stmt(log::FORWARD, &types::TTI_IB),
                backward: stmt(log::BACKWARD, &types::TTI_IB),
                rm_soft: stmt(log::RM_SOFT, &types::TT_IA_I),
                rm_hard: stmt(log::RM_HARD, &types::TT_IA),
                restore: stmt(log::RESTORE, &types::TTI),
                purge: stmt(log::PURGE, &types::TI),
            },
        }
    }

    /// `sql` (a constant of this module) for this schema.
    pub fn qualify(&self, sql: &str) -> String {
        qualify(sql, self.schema.as_deref())
    }

    /// `LISTEN` on this schema's channel.
    pub fn listen(&self) -> String {
        format!("LISTEN {}", self.channel)
    }
}

/// The notification channel of a schema: [`CHANNEL`], or `kv_changes_<schema>`.
fn channel(schema: Option<&str>) -> String {
    match schema {
        Some(schema) => format!("{CHANNEL}_{schema}"),
        None => CHANNEL.to_owned(),
    }
}

/// kv's table names (`kv_rows`, `kv_meta`, `kv_rate`, `kv_tables`,
/// `kv_history`, `kv_log`, `kv_log_parents`) as whole words outside
/// string literals, prefixed with `schema.`; the channel literal
/// `'kv_changes'` renamed to the schema's.
fn qualify(sql: &str, schema: Option<&str>) -> String {
    const TABLES: [&str; 7] = [
        "kv_rows",
        "kv_meta",
        "kv_rate",
        "kv_tables",
        "kv_history",
        "kv_log",
        "kv_log_parents",
    ];
    let Some(schema) = schema else {
        return sql.to_owned();
    };
    let sql = sql.replace(
        &format!("'{CHANNEL}'"),
        &format!("'{}'", channel(Some(schema))),
    );
    let mut out = String::with_capacity(sql.len() + 64);
    let mut word = String::new();
    let mut in_literal = false;
    let mut previous = ' ';
    let flush = |word: &mut String, out: &mut String, previous: char| {
        if previous != '.' && TABLES.contains(&word.as_str()) {
            out.push_str(schema);
            out.push('.');
        }
        out.push_str(word);
        word.clear();
    };
    for c in sql.chars() {
        if !in_literal && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            flush(&mut word, &mut out, previous);
        }
        if c == '\'' {
            in_literal = !in_literal;
        }
        out.push(c);
        previous = c;
    }
    if !word.is_empty() {
        flush(&mut word, &mut out, previous);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_channel_and_limit() {
        assert!(PUT.contains(&format!("'{CHANNEL}'")));
        assert!(PUT.contains(&NOTIFY_ROW_LIMIT.to_string()));
        assert!(RESTORE.contains(&format!("'{CHANNEL}'")));
        assert!(REMOVE_SOFT.contains(&format!("'{CHANNEL}'")));
        assert!(REMOVE_HARD.contains(&format!("'{CHANNEL}'")));
        assert!(IMPORT.contains(&format!("'{CHANNEL}'")));
        assert!(IMPORT.contains(&NOTIFY_ROW_LIMIT.to_string()));
        assert_eq!(LISTEN, format!("LISTEN {CHANNEL}"));
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }

    #[test]
    fn statements_are_qualified_with_the_schema() {
        let plain = Statements::new(None);
        assert_eq!(plain.put.text, PUT);
        assert_eq!(plain.listen(), LISTEN);
        let s = Statements::new(Some("app_kv"));
        assert_eq!(s.listen(), "LISTEN kv_changes_app_kv");
        assert!(s.put.text.contains("'kv_changes_app_kv'"));
        assert!(!s.put.text.contains("'kv_changes'"));
        for stmt in [
            &s.get,
            &s.put,
            &s.remove_hard,
            &s.purge,
            &s.rate_use,
            &s.rate_peek,
            &s.rate_reset,
            &s.rate_sweep,
            &s.put_history,
            &s.remove_soft_history,
            &s.remove_hard_history,
            &s.restore_history,
            &s.purge_history,
            &s.history_first,
            &s.history_before,
            &s.tables,
            &s.other_data,
            &s.import,
            &s.rate_size,
            &s.log.append,
            &s.log.replay,
            &s.log.forward,
            &s.log.rm_soft,
            &s.log.rm_hard,
            &s.log.restore,
            &s.log.purge,
        ] {
            // Every table reference is qualified, none twice.
            let bare = stmt.text.matches("kv_").count();
            let qualified = stmt.text.matches("app_kv.kv_").count();
            let channel = stmt.text.matches("kv_changes_app_kv").count();
            assert_eq!(bare, qualified + channel, "{}", stmt.text);
            assert!(!stmt.text.contains("app_kv.app_kv"));
        }
        let migration = s.qualify(MIGRATIONS[0]);
        assert!(migration.contains("CREATE TABLE app_kv.kv_rows ("));
        assert!(migration.contains("CREATE INDEX kv_rows_purge ON app_kv.kv_rows "));
        assert_eq!(s.qualify(CREATE_META).matches("app_kv.kv_meta").count(), 1);
        assert_eq!(s.qualify(READ_VERSION).matches("app_kv.kv_meta").count(), 1);
        assert_eq!(s.put.types.len(), 8);
        assert_eq!(s.remove_soft.types.len(), 6);
        let history = s.qualify(MIGRATIONS[3]);
        assert!(history.contains("CREATE TABLE IF NOT EXISTS app_kv.kv_history ("));
        assert!(history.contains("kv_history_at ON app_kv.kv_history "));
    }

    /// The highest `$n` in `sql`, 0 when it has none.
    fn highest_placeholder(sql: &str) -> usize {
        let bytes = sql.as_bytes();
        let mut highest = 0;
        for (i, _) in sql.match_indices('$') {
            let digits: String = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .map(|&b| b as char)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                highest = highest.max(n);
            }
        }
        highest
    }

    #[test]
    fn each_statement_declares_a_type_for_every_placeholder() {
        let s = Statements::new(Some("app_kv"));
        for (name, stmt) in [
            ("get", &s.get),
            ("list_first", &s.list_first),
            ("list_after", &s.list_after),
            ("scan_first", &s.scan_first),
            ("scan_after", &s.scan_after),
            ("put", &s.put),
            ("remove_soft", &s.remove_soft),
            ("remove_hard", &s.remove_hard),
            ("restore", &s.restore),
            ("purge", &s.purge),
            ("rate_use", &s.rate_use),
            ("rate_peek", &s.rate_peek),
            ("rate_reset", &s.rate_reset),
            ("rate_sweep", &s.rate_sweep),
            ("tables", &s.tables),
            ("other_data", &s.other_data),
            ("import", &s.import),
            ("read_version", &s.read_version),
            ("rate_size", &s.rate_size),
            ("put_history", &s.put_history),
            ("remove_soft_history", &s.remove_soft_history),
            ("remove_hard_history", &s.remove_hard_history),
            ("restore_history", &s.restore_history),
            ("purge_history", &s.purge_history),
            ("history_first", &s.history_first),
            ("history_before", &s.history_before),
            ("log append", &s.log.append),
            ("log replay", &s.log.replay),
            ("log get", &s.log.get),
            ("log forward", &s.log.forward),
            ("log backward", &s.log.backward),
            ("log rm_soft", &s.log.rm_soft),
            ("log rm_hard", &s.log.rm_hard),
            ("log restore", &s.log.restore),
            ("log purge", &s.log.purge),
        ] {
            assert_eq!(
                stmt.types.len(),
                highest_placeholder(&stmt.text),
                "{name}: {}",
                stmt.text
            );
        }
    }

    /// The history statements notify the change and write the record.
    #[test]
    fn history_statements_notify_and_record() {
        for stmt in [
            &PUT_HISTORY,
            &REMOVE_SOFT_HISTORY,
            &REMOVE_HARD_HISTORY,
            &RESTORE_HISTORY,
        ] {
            assert!(stmt.contains(&format!("'{CHANNEL}'")));
            assert!(stmt.contains("INSERT INTO kv_history"));
        }
    }
}
