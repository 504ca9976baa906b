//! The SQL of the PostgreSQL backend: the schema, its migrations, and one
//! statement per operation. Public (but hidden from the docs) so that
//! benchmarks and database administrators can run exactly what the backend
//! runs; not a stable API. Every statement that carries data is
//! parameterised; the only text spliced into SQL is constants from this file.
//!
//! Mutations lock the row they change (`FOR UPDATE`, or the row lock taken
//! by `ON CONFLICT DO UPDATE` / `DELETE`), so at READ COMMITTED the check and
//! the write see the latest committed version of the row. Each one also
//! calls `pg_notify` in the same statement, so the change notification is
//! sent exactly when, and only if, the write commits.

/// The schema version this library writes. A database at a higher version
/// was migrated by a newer release and is refused.
pub const SCHEMA_VERSION: i64 = 2;

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
];

/// `$1` table, `$2` key.
/// Columns: value, created_at, updated_at, deleted_at, updated_by.
pub const GET: &str = "SELECT value::text, created_at, updated_at, deleted_at, updated_by \
    FROM kv_rows WHERE tbl = $1::text AND key = $2::text";

/// `$1` table, `$2` limit. Columns: key, then as [`GET`].
pub const LIST_FIRST: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by \
    FROM kv_rows WHERE tbl = $1::text AND deleted_at IS NULL ORDER BY key LIMIT $2::bigint";

/// `$1` table, `$2` exclusive lower key bound, `$3` limit. Columns: as [`LIST_FIRST`].
pub const LIST_AFTER: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by \
    FROM kv_rows WHERE tbl = $1::text AND key > $2::text AND deleted_at IS NULL \
    ORDER BY key LIMIT $3::bigint";

/// `$1` table, `$2` limit. Every row, live or soft-deleted. Columns: as
/// [`LIST_FIRST`].
pub const SCAN_FIRST: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by \
    FROM kv_rows WHERE tbl = $1::text ORDER BY key LIMIT $2::bigint";

/// `$1` table, `$2` exclusive lower key bound, `$3` limit. Columns: as
/// [`LIST_FIRST`].
pub const SCAN_AFTER: &str =
    "SELECT key, value::text, created_at, updated_at, deleted_at, updated_by \
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
/// Expects a CTE `w` with columns value, created_at, updated_at, updated_by.
macro_rules! notify_live {
    () => {
        "(SELECT pg_notify('kv_changes', CASE WHEN octet_length(n.full) <= 7900 THEN n.full \
        ELSE json_build_object('t', $1::text, 'k', $2::text, 'u', n.u, 'reread', true)::text END) \
        FROM (SELECT json_build_object('t', $1::text, 'k', $2::text, 'r', json_build_object(\
        'v', w.value::text, 'c', w.created_at, 'u', w.updated_at, 'b', w.updated_by))::text AS full, \
        w.updated_at AS u FROM w) AS n)"
    };
}

/// The notification that no live row remains.
macro_rules! notify_gone {
    () => {
        "pg_notify('kv_changes', json_build_object('t', $1::text, 'k', $2::text, 'r', NULL)::text)"
    };
}

/// `$1` table, `$2` key, `$3` value (JSON text), `$4` updated_by, `$5` now,
/// `$6` expected updated_at (NULL: no version expected), `$7` true to write
/// only when there is no live row (`Expect::NotLive`; `$6` is then NULL).
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
/// Columns: 0-4 the previous row as [`GET`] (NULLs when none), 5 created_at
/// and 6 updated_at of the written row (NULLs when nothing was written).
pub const PUT: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text FOR UPDATE",
    "), seen AS (",
    "SELECT 1 FROM kv_rows WHERE tbl = $1::text AND key = $2::text",
    "), w AS (",
    "INSERT INTO kv_rows AS r (tbl, key, value, created_at, updated_at, deleted_at, updated_by) ",
    "SELECT $1::text, $2::text, $3::text::jsonb, $5::bigint, GREATEST($5::bigint, (",
    "SELECT LEAST(f.version_floor, 9223372036854775806) + 1 FROM kv_tables AS f ",
    "WHERE f.tbl = $1::text)), NULL, $4::text ",
    "WHERE (EXISTS (SELECT 1 FROM old) OR NOT EXISTS (SELECT 1 FROM seen)) ",
    "AND CASE WHEN $7::boolean ",
    "THEN NOT EXISTS (SELECT 1 FROM old WHERE old.deleted_at IS NULL) ",
    "WHEN $6::bigint IS NULL THEN true ",
    "ELSE EXISTS (SELECT 1 FROM old WHERE old.deleted_at IS NULL AND old.updated_at = $6::bigint) ",
    "END ",
    "ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value, updated_at = ",
    next_version!("$5::bigint"),
    ", deleted_at = NULL, updated_by = EXCLUDED.updated_by ",
    "WHERE EXISTS (SELECT 1 FROM old) ",
    "RETURNING r.value, r.created_at, r.updated_at, r.updated_by",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
    "w.created_at, w.updated_at, ",
    notify_live!(),
    " FROM (VALUES (0)) AS one (x) LEFT JOIN old ON true LEFT JOIN w ON true"
);

/// `$1` table, `$2` key, `$3` now, `$4` updated_by, `$5` expected
/// updated_at (NULL: any), `$6` true when no live row is expected (then
/// nothing is deleted). Soft-deletes a live row when its version is the
/// expected one. Columns: 0-4 the live row before, as [`GET`] (no row when
/// there was no live row), 5 whether it was deleted (false: a conflict).
pub const REMOVE_SOFT: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text AND deleted_at IS NULL FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = $3::bigint, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NULL ",
    "AND ($5::bigint IS NULL OR old.updated_at = $5::bigint) AND NOT $6::boolean ",
    "RETURNING r.updated_at",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
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
    "SELECT value, created_at, updated_at, deleted_at, updated_by FROM kv_rows ",
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
    "EXISTS (SELECT 1 FROM d), (SELECT ",
    notify_gone!(),
    " FROM d) FROM old"
);

/// `$1` table, `$2` key, `$3` now, `$4` updated_by, `$5` whether a
/// soft-deleted row may be revived (false when the write expects a live
/// row). Revives a soft-deleted row. Columns: 0-4 the row before, as
/// [`GET`] (no row: not found), 5 the new updated_at (NULL when nothing
/// changed).
pub const RESTORE: &str = concat!(
    "WITH old AS (",
    "SELECT value, created_at, updated_at, deleted_at, updated_by FROM kv_rows ",
    "WHERE tbl = $1::text AND key = $2::text FOR UPDATE",
    "), w AS (",
    "UPDATE kv_rows AS r SET deleted_at = NULL, updated_at = ",
    next_version!("$3::bigint"),
    ", updated_by = $4::text FROM old ",
    "WHERE r.tbl = $1::text AND r.key = $2::text AND r.deleted_at IS NOT NULL AND $5::boolean ",
    "RETURNING r.value, r.created_at, r.updated_at, r.updated_by",
    ") SELECT old.value::text, old.created_at, old.updated_at, old.deleted_at, old.updated_by, ",
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
    RETURNING key, value, created_at, updated_at, deleted_at, updated_by), \
    f AS (INSERT INTO kv_tables AS t (tbl, version_floor) \
    SELECT $1::text, max(d.updated_at) FROM d HAVING count(*) > 0 \
    ON CONFLICT (tbl) DO UPDATE SET version_floor = \
    GREATEST(t.version_floor, EXCLUDED.version_floor)) \
    SELECT key, value::text, created_at, updated_at, deleted_at, updated_by FROM d ORDER BY key";

/// `$1` scope, `$2` bucket, `$3` now, `$4` max, `$5` window start (hits at
/// or before it have left the window).
///
/// One row per bucket holds the admitted hits still in the window. The row
/// lock of `ON CONFLICT DO UPDATE` makes the count and the append one atomic
/// step for every process sharing the database.
/// Columns: admitted, the oldest hit left in the window (NULL when none).
pub const RATE_HIT: &str = "INSERT INTO kv_rate AS r (scope, bucket, hits, admitted) \
    VALUES ($1::text, $2::text, \
    CASE WHEN $4::bigint > 0 THEN ARRAY[$3::bigint] ELSE '{}'::bigint[] END, $4::bigint > 0) \
    ON CONFLICT (scope, bucket) DO UPDATE SET (hits, admitted) = (\
    SELECT CASE WHEN count(*) < $4::bigint \
    THEN array_append(coalesce(array_agg(h.at ORDER BY h.at), '{}'::bigint[]), $3::bigint) \
    ELSE coalesce(array_agg(h.at ORDER BY h.at), '{}'::bigint[]) END, \
    count(*) < $4::bigint \
    FROM unnest(r.hits) AS h (at) WHERE h.at > $5::bigint) \
    RETURNING admitted, (SELECT min(h.at) FROM unnest(r.hits) AS h (at) WHERE h.at > $5::bigint)";

/// `$1` scope, `$2` window start. Deletes the buckets of the scope with no
/// hit left in the window. Returns the number of rows deleted.
pub const RATE_SWEEP: &str = "DELETE FROM kv_rate AS r WHERE r.scope = $1::text \
    AND NOT EXISTS (SELECT 1 FROM unnest(r.hits) AS h (at) WHERE h.at > $2::bigint)";

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
        assert_eq!(LISTEN, format!("LISTEN {CHANNEL}"));
        assert_eq!(MIGRATIONS.len() as i64, SCHEMA_VERSION);
    }
}
