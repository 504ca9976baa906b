//! The log statements. `$1` is always the log table and `$2` the parent.
//! Appends to one parent serialise on the parent's row of
//! `kv_log_parents`, whose `last_seq` they raise in the same statement that
//! inserts the entries: numbers are allocated and used in one transaction,
//! so a failed append leaves no gap, and commits (and so notifications)
//! come in seq order per parent. Every change notifies the channel in the
//! same statement.

use super::Stmt;

/// The notification of an entry's state (a CTE or table `w` with columns
/// seq, value, created_at, author, deleted_at, schema_version, and a
/// lateral `n` from [`entry_json!`]); `$op` is `'a'` (append), `'r'` (rm)
/// or `'s'` (restore). The entry when it fits in a notification, else
/// `reread` and the listener reads it back.
macro_rules! notify_entry {
    ($op:literal) => {
        concat!(
            "pg_notify('kv_changes', CASE WHEN octet_length(n.full) <= 7900 THEN n.full ",
            "ELSE json_build_object('t', $1::text, 'p', $2::text, 'q', w.seq, 'o', ",
            $op,
            ", 'reread', true)::text END)"
        )
    };
}

/// `CROSS JOIN LATERAL` the full notification of an entry of `w` as `n.full`.
macro_rules! entry_json {
    ($op:literal) => {
        concat!(
            "CROSS JOIN LATERAL (SELECT json_build_object('t', $1::text, 'p', $2::text, ",
            "'q', w.seq, 'o', ",
            $op,
            ", 'e', json_build_object('v', w.value::text, 'c', w.created_at, ",
            "'b', w.author, 'd', w.deleted_at, 's', w.schema_version))::text AS full) AS n"
        )
    };
}

/// The columns of an entry, as [`GET`] returns them.
macro_rules! entry_columns {
    ($t:literal) => {
        concat!(
            $t,
            ".seq, ",
            $t,
            ".value::text, ",
            $t,
            ".created_at, ",
            $t,
            ".author, ",
            $t,
            ".deleted_at, ",
            $t,
            ".schema_version"
        )
    };
}

/// `$3` the values (JSON text, at least one), `$4` author, `$5` now, `$6`
/// the idempotency key (NULL: none), `$7` the values' schema version.
///
/// When an entry of the parent holds the key (as its snapshot shows),
/// nothing happens and no row is returned: the caller reads the earlier
/// append with [`REPLAY`]. Otherwise the parent's counter is raised by the
/// number of values (its row lock waits for other appends to the parent to
/// commit, then reads their number) and the entries are inserted after the
/// old value, the key and count on the first. A concurrent append with the
/// same key that committed after this statement's snapshot makes the
/// insert fail on the unique index (SQLSTATE 23505), rolling the counter
/// back too: the caller runs the statement again, and its fresh snapshot
/// sees that append.
///
/// Columns: as [`GET`], one row per appended entry, then the notification.
pub const APPEND: &str = concat!(
    "WITH prior AS (",
    "SELECT 1 FROM kv_log WHERE tbl = $1::text AND parent = $2::text AND idem_key = $6::text",
    "), c AS (",
    "INSERT INTO kv_log_parents AS p (tbl, parent, last_seq) ",
    "SELECT $1::text, $2::text, cardinality($3::text[]) WHERE NOT EXISTS (SELECT 1 FROM prior) ",
    "ON CONFLICT (tbl, parent) DO UPDATE SET last_seq = p.last_seq + cardinality($3::text[]) ",
    "RETURNING p.last_seq - cardinality($3::text[]) AS base",
    "), w AS (",
    "INSERT INTO kv_log (tbl, parent, seq, value, created_at, author, deleted_at, idem_key, ",
    "idem_count, schema_version) ",
    "SELECT $1::text, $2::text, c.base + v.i, v.value::jsonb, $5::bigint, $4::text, NULL, ",
    "CASE WHEN v.i = 1 THEN $6::text END, ",
    "CASE WHEN v.i = 1 AND $6::text IS NOT NULL THEN cardinality($3::text[]) END, $7::integer ",
    "FROM c CROSS JOIN unnest($3::text[]) WITH ORDINALITY AS v (value, i) ",
    "RETURNING seq, value, created_at, author, deleted_at, schema_version",
    ") SELECT ",
    entry_columns!("w"),
    ", ",
    notify_entry!("'a'"),
    " FROM w ",
    entry_json!("'a'")
);

/// `$3` the idempotency key. The entries of the append that stored the key,
/// as they are now. Columns: as [`GET`], in seq order.
pub const REPLAY: &str = concat!(
    "SELECT ",
    entry_columns!("e"),
    " FROM kv_log AS k JOIN kv_log AS e ON e.tbl = k.tbl AND e.parent = k.parent ",
    "AND e.seq >= k.seq AND e.seq < k.seq + coalesce(k.idem_count, 1) ",
    "WHERE k.tbl = $1::text AND k.parent = $2::text AND k.idem_key = $3::text ORDER BY e.seq"
);

/// `$3` seq. Columns: seq, value, created_at, author, deleted_at,
/// schema_version.
pub const GET: &str = "SELECT seq, value::text, created_at, author, deleted_at, schema_version \
    FROM kv_log WHERE tbl = $1::text AND parent = $2::text AND seq = $3::bigint";

/// `$3` exclusive lower bound, `$4` limit, `$5` true to include
/// soft-deleted entries. Columns: as [`GET`], ascending seq.
pub const FORWARD: &str =
    "SELECT seq, value::text, created_at, author, deleted_at, schema_version \
    FROM kv_log WHERE tbl = $1::text AND parent = $2::text AND seq > $3::bigint \
    AND ($5::boolean OR deleted_at IS NULL) ORDER BY seq LIMIT $4::bigint";

/// `$3` exclusive upper bound, `$4` limit, `$5` true to include
/// soft-deleted entries. Columns: as [`GET`], descending seq.
pub const BACKWARD: &str =
    "SELECT seq, value::text, created_at, author, deleted_at, schema_version \
    FROM kv_log WHERE tbl = $1::text AND parent = $2::text AND seq < $3::bigint \
    AND ($5::boolean OR deleted_at IS NULL) ORDER BY seq DESC LIMIT $4::bigint";

/// `$3` the seqs, `$4` now. Marks the live ones deleted (a concurrent
/// delete of the same entry waits for the row lock, then finds it deleted
/// and skips it). Columns: as [`GET`] after the change, then the
/// notification.
pub const RM_SOFT: &str = concat!(
    "WITH w AS (UPDATE kv_log SET deleted_at = $4::bigint ",
    "WHERE tbl = $1::text AND parent = $2::text AND seq = ANY($3::bigint[]) ",
    "AND deleted_at IS NULL ",
    "RETURNING seq, value, created_at, author, deleted_at, schema_version",
    ") SELECT ",
    entry_columns!("w"),
    ", ",
    notify_entry!("'r'"),
    " FROM w ",
    entry_json!("'r'")
);

/// `$3` the seqs. Removes the live ones. Columns: as [`GET`] before the
/// change, then the notification.
pub const RM_HARD: &str = concat!(
    "WITH w AS (DELETE FROM kv_log ",
    "WHERE tbl = $1::text AND parent = $2::text AND seq = ANY($3::bigint[]) ",
    "AND deleted_at IS NULL ",
    "RETURNING seq, value, created_at, author, deleted_at, schema_version",
    ") SELECT ",
    entry_columns!("w"),
    ", pg_notify('kv_changes', json_build_object('t', $1::text, 'p', $2::text, 'q', w.seq, ",
    "'o', 'r')::text) FROM w"
);

/// `$3` seq. Revives a soft-deleted entry; `old` locks it first, so the
/// state compared is the latest committed one. Columns: as [`GET`] before
/// the change (no row: not found), then the notification (NULL when
/// nothing changed).
pub const RESTORE: &str = concat!(
    "WITH old AS (",
    "SELECT seq, value, created_at, author, deleted_at, schema_version FROM kv_log ",
    "WHERE tbl = $1::text AND parent = $2::text AND seq = $3::bigint FOR UPDATE",
    "), w AS (",
    "UPDATE kv_log AS e SET deleted_at = NULL FROM old ",
    "WHERE e.tbl = $1::text AND e.parent = $2::text AND e.seq = $3::bigint ",
    "AND old.deleted_at IS NOT NULL ",
    "RETURNING e.seq, e.value, e.created_at, e.author, e.deleted_at, e.schema_version",
    ") SELECT ",
    entry_columns!("old"),
    ", (SELECT ",
    notify_entry!("'s'"),
    " FROM w ",
    entry_json!("'s'"),
    ") FROM old"
);

/// `$2` cut-off (here not a parent). Removes the entries of every parent
/// soft-deleted before it. Column: how many.
pub const PURGE: &str = "WITH d AS (DELETE FROM kv_log WHERE tbl = $1::text \
    AND deleted_at IS NOT NULL AND deleted_at < $2::bigint RETURNING 1) SELECT count(*) FROM d";

/// The log statements for one schema.
#[derive(Clone, Debug)]
pub struct Statements {
    /// [`APPEND`].
    pub append: Stmt,
    /// [`REPLAY`].
    pub replay: Stmt,
    /// [`GET`].
    pub get: Stmt,
    /// [`FORWARD`].
    pub forward: Stmt,
    /// [`BACKWARD`].
    pub backward: Stmt,
    /// [`RM_SOFT`].
    pub rm_soft: Stmt,
    /// [`RM_HARD`].
    pub rm_hard: Stmt,
    /// [`RESTORE`].
    pub restore: Stmt,
    /// [`PURGE`].
    pub purge: Stmt,
}
