//! The tables the command line knows, behind one object-safe trait: each
//! command goes through the typed [`Table`] of its schema.

use std::marker::PhantomData;
use std::time::Duration;

use super::exit::{CliError, Exit};
use crate::context::Ctx;
use crate::error::Result;
use crate::row::{PageRequest, Row};
use crate::schema::{BoxFuture, KvKey, KvSchema, WriteRole};
use crate::table::{codec, Table};
use crate::watch::Watch;

/// A row as the command line prints it: the value as JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub(super) struct RowOut {
    pub key: String,
    pub value: serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    pub updated_by: Option<String>,
}

impl RowOut {
    fn of<S: KvSchema>(row: &Row<S>) -> std::result::Result<Self, CliError> {
        let value = serde_json::to_value(&row.value).map_err(|e| {
            CliError::new(
                "INTERNAL",
                Exit::Internal,
                format!(
                    "the value of {:?} cannot be shown as JSON: {e}",
                    row.key.as_str()
                ),
                "this is a bug; please report it",
            )
        })?;
        Ok(RowOut {
            key: row.key.as_str().to_owned(),
            value,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            updated_by: row.updated_by.as_deref().map(str::to_owned),
        })
    }
}

/// How `set` writes.
#[derive(Clone, Copy, Debug)]
pub(super) enum SetMode {
    Any,
    Expect(i64),
    IfAbsent,
}

type Answer<'a, T> = BoxFuture<'a, std::result::Result<T, CliError>>;

/// One registered table, type-erased.
pub(super) trait CliTable: Send + Sync {
    fn name(&self) -> &'static str;
    fn soft_delete(&self) -> bool;
    fn write_role(&self) -> WriteRole;
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<RowOut>>;
    fn list<'a>(&'a self, ctx: &'a Ctx, deleted: bool) -> Answer<'a, Vec<RowOut>>;
    fn set<'a>(
        &'a self,
        ctx: &'a Ctx,
        key: &'a str,
        json: &'a str,
        mode: SetMode,
    ) -> Answer<'a, RowOut>;
    fn rm<'a>(&'a self, ctx: &'a Ctx, key: &'a str) -> Answer<'a, bool>;
    fn restore<'a>(&'a self, ctx: &'a Ctx, key: &'a str) -> Answer<'a, RowOut>;
    fn purge(&self, retention: Duration) -> Answer<'_, usize>;
    fn watch<'a>(&'a self, key: Option<&'a str>) -> Answer<'a, Box<dyn CliWatch + 'a>>;
}

/// A running watch: the next state, as a row or the key that has none.
pub(super) trait CliWatch: Send {
    /// `None` when the stream ended.
    fn next(&mut self) -> Answer<'_, Option<(String, Option<RowOut>)>>;
}

/// The [`CliTable`] of schema `S`.
pub(super) struct Typed<S: KvSchema> {
    table: Table<S>,
    _schema: PhantomData<fn() -> S>,
}

impl<S: KvSchema> Typed<S> {
    pub(super) fn new(table: Table<S>) -> Self {
        Typed {
            table,
            _schema: PhantomData,
        }
    }
}

fn key<S: KvSchema>(text: &str) -> std::result::Result<S::Key, CliError> {
    Ok(S::Key::parse_key(S::TABLE, text)?)
}

/// Parses `json` as a value of `S`, naming the place in the text that is
/// not JSON, or the field that does not fit.
fn value<S: KvSchema>(json: &str) -> std::result::Result<S, CliError> {
    let hint = "give the value as the table's JSON; `get TABLE KEY --json` shows one";
    let parsed: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        CliError::new(
            "INVALID_JSON",
            Exit::Invalid,
            format!(
                "the value for table `{}` is not JSON: {e} (line {}, column {})",
                S::TABLE,
                e.line(),
                e.column()
            ),
            hint,
        )
    })?;
    serde_path_to_error::deserialize::<_, S>(parsed).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!(" at field `{path}`")
        };
        CliError::new(
            "INVALID_JSON",
            Exit::Invalid,
            format!(
                "the value for table `{}` does not fit{field}: {}",
                S::TABLE,
                e.into_inner()
            ),
            hint,
        )
    })
}

fn rows<S: KvSchema>(rows: &[Row<S>]) -> std::result::Result<Vec<RowOut>, CliError> {
    rows.iter().map(RowOut::of).collect()
}

impl<S: KvSchema> Typed<S> {
    async fn list_rows(&self, ctx: &Ctx, deleted: bool) -> Result<Vec<Row<S>>> {
        let mut out = Vec::new();
        if !deleted {
            let mut request = PageRequest::first(PageRequest::MAX_ITEMS);
            loop {
                let page = self.table.list(ctx, request.clone()).await?;
                out.extend(page.page);
                match page.continue_cursor {
                    Some(cursor) => request = PageRequest::after(cursor, PageRequest::MAX_ITEMS),
                    None => return Ok(out),
                }
            }
        }
        // Soft-deleted rows too: a scan, with the same check as `list`.
        self.table.authorize(ctx, "list").await?;
        let backend = &self.table.store().backend;
        let mut after: Option<String> = None;
        loop {
            let batch = backend
                .scan(S::TABLE, after.as_deref(), PageRequest::MAX_ITEMS)
                .await?;
            for raw in &batch {
                // Keys the schema no longer declares are skipped, as `list` does.
                if let Ok(key) = codec::key_of::<S>(raw) {
                    out.push(codec::decode(raw, key)?);
                }
            }
            match batch.last() {
                Some(last) if batch.len() == PageRequest::MAX_ITEMS => {
                    after = Some(last.key.clone())
                }
                _ => return Ok(out),
            }
        }
    }
}

impl<S: KvSchema> CliTable for Typed<S> {
    fn name(&self) -> &'static str {
        S::TABLE
    }

    fn soft_delete(&self) -> bool {
        S::SOFT_DELETE
    }

    fn write_role(&self) -> WriteRole {
        S::WRITE_ROLE
    }

    fn get<'a>(&'a self, text: &'a str) -> Answer<'a, Option<RowOut>> {
        Box::pin(async move {
            let key = key::<S>(text)?;
            match self.table.get(key).await? {
                Some(row) => Ok(Some(RowOut::of(&row)?)),
                None => Ok(None),
            }
        })
    }

    fn list<'a>(&'a self, ctx: &'a Ctx, deleted: bool) -> Answer<'a, Vec<RowOut>> {
        Box::pin(async move { rows(&self.list_rows(ctx, deleted).await?) })
    }

    fn set<'a>(
        &'a self,
        ctx: &'a Ctx,
        text: &'a str,
        json: &'a str,
        mode: SetMode,
    ) -> Answer<'a, RowOut> {
        Box::pin(async move {
            let key = key::<S>(text)?;
            let value = value::<S>(json)?;
            let row = match mode {
                SetMode::Any => self.table.set(ctx, key, value).await?,
                SetMode::Expect(v) => self.table.set_expecting(ctx, key, value, v).await?,
                SetMode::IfAbsent => self.table.set_if_absent(ctx, key, value).await?,
            };
            RowOut::of(&row)
        })
    }

    fn rm<'a>(&'a self, ctx: &'a Ctx, text: &'a str) -> Answer<'a, bool> {
        Box::pin(async move { Ok(self.table.rm(ctx, key::<S>(text)?).await?) })
    }

    fn restore<'a>(&'a self, ctx: &'a Ctx, text: &'a str) -> Answer<'a, RowOut> {
        Box::pin(async move {
            if !S::SOFT_DELETE {
                return Err(CliError::usage(format!(
                    "table `{}` does not keep deleted rows (no `soft_delete`), so nothing can be \
                     restored",
                    S::TABLE
                )));
            }
            let key = key::<S>(text)?;
            RowOut::of(&self.table.restore_checked(ctx, &key).await?)
        })
    }

    fn purge(&self, retention: Duration) -> Answer<'_, usize> {
        Box::pin(async move { Ok(self.table.purge(retention).await?) })
    }

    fn watch<'a>(&'a self, text: Option<&'a str>) -> Answer<'a, Box<dyn CliWatch + 'a>> {
        Box::pin(async move {
            let watch = match text {
                Some(text) => self.table.watch(key::<S>(text)?).await?,
                None => self.table.watch_table().await?,
            };
            Ok(Box::new(TypedWatch(watch)) as Box<dyn CliWatch + 'a>)
        })
    }
}

struct TypedWatch<S: KvSchema>(Watch<S>);

impl<S: KvSchema> CliWatch for TypedWatch<S> {
    fn next(&mut self) -> Answer<'_, Option<(String, Option<RowOut>)>> {
        Box::pin(async move {
            match self.0.next().await {
                None => Ok(None),
                Some(event) => {
                    let event = event?;
                    let row = event.row.as_ref().map(RowOut::of).transpose()?;
                    Ok(Some((event.key.as_str().to_owned(), row)))
                }
            }
        })
    }
}
