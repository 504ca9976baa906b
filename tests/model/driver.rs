//! Runs operation sequences on a store and on the model, comparing every
//! answer, and runs proptest over many sequences.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kv_runtime::{Ctx, Error, ManualClock, PageRequest, Row, Store, Table};
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestError, TestRunner};

use super::ops::{self, CursorPick, KeyPick, Op, Tbl, Val, VersionPick, Who};
use super::reference::{Answer, Detail, Expect, ListCursor, MRow, Model, T0};
use super::schema::{register_hooks, Flag, ModelTable, Note};

/// A fresh store for one sequence, and what must outlive it (a temporary
/// directory).
pub type Fresh = Pin<Box<dyn Future<Output = (Store, Box<dyn Send>)>>>;

/// The context of a caller.
pub fn ctx(who: Who) -> Ctx {
    match who {
        Who::Ada => Ctx::user("ada").with_role("admin"),
        Who::Bo => Ctx::user("bo").with_role("admin"),
        Who::Cy => Ctx::user("cy"),
        Who::Anonymous => Ctx::anonymous(),
        Who::AnonymousAdmin => Ctx::anonymous().with_role("admin"),
        Who::AddrAdmin => Ctx::anonymous()
            .with_role("admin")
            .with_client_addr("10.0.0.7"),
        Who::Internal => Ctx::internal(),
    }
}

fn row_of<S: ModelTable>(row: Row<S>) -> MRow {
    use kv_runtime::KvKey;
    let (text, note) = row.value.parts();
    MRow {
        key: row.key.as_str().to_owned(),
        text: text.to_owned(),
        note: note.to_owned(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        deleted_at: row.deleted_at,
        updated_by: row.updated_by.as_deref().map(str::to_owned),
    }
}

fn err_of(e: Error) -> Answer {
    let code = e.code();
    let detail = match e {
        Error::Conflict {
            current_updated_at, ..
        } => Detail::Conflict(current_updated_at),
        Error::RateLimited { retry_after, .. } => Detail::RetryAfter(Some(
            i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX),
        )),
        Error::Rejected { hook, .. } => Detail::Hook(hook),
        _ => Detail::None,
    };
    Answer::Err(code, detail)
}

fn answer<T>(result: kv_runtime::Result<T>, ok: impl FnOnce(T) -> Answer) -> Answer {
    match result {
        Ok(v) => ok(v),
        Err(e) => err_of(e),
    }
}

/// A cursor from an earlier page.
struct Held {
    t: Tbl,
    cursor: String,
    /// The key it continues after, as the model saw the page.
    after: String,
}

/// The key text an operation on `t` uses. Declared keys cannot be written
/// wrong (the key type is an enum), so a bad pick for a write on `Flag`
/// takes a declared key.
fn write_key(t: Tbl, key: KeyPick) -> String {
    match (t, key) {
        (Tbl::Flag, KeyPick::Bad(i)) => KeyPick::Valid(i).text(t),
        _ => key.text(t),
    }
}

/// The store's answer to a write on `table`.
async fn set_on<S: ModelTable>(
    table: &Table<S>,
    who: Who,
    key: &str,
    value: &Val,
    expect: Expect,
) -> Answer {
    let key = S::key(key).expect("write keys are keys of their table");
    let value = S::make(&value.text, &value.note);
    let ctx = ctx(who);
    let result = match expect {
        Expect::Any => table.set(&ctx, &key, value).await,
        Expect::Version(v) => table.set_expecting(&ctx, &key, value, v).await,
        Expect::NotLive => table.set_if_absent(&ctx, &key, value).await,
    };
    answer(result, |row| Answer::Row(row_of(row)))
}

async fn rm_on<S: ModelTable>(table: &Table<S>, who: Who, key: &str) -> Answer {
    let key = S::key(key).expect("write keys are keys of their table");
    answer(table.rm(&ctx(who), &key).await, Answer::Removed)
}

async fn get_on<S: ModelTable>(table: &Table<S>, key: &str) -> Result<Answer, String> {
    let by_text = answer(table.get_str(key).await, |row| Answer::Got(row.map(row_of)));
    // The typed read must say the same.
    if let Some(typed) = S::key(key) {
        let by_key = answer(table.get(&typed).await, |row| Answer::Got(row.map(row_of)));
        if by_key != by_text {
            return Err(format!(
                "get and get_str differ on {key:?}: {by_key:?} vs {by_text:?}"
            ));
        }
    }
    Ok(by_text)
}

async fn list_on<S: ModelTable>(
    table: &Table<S>,
    who: Who,
    request: PageRequest,
) -> (Answer, Option<String>) {
    match table.list(&ctx(who), request).await {
        Ok(page) => {
            let cursor = page.continue_cursor.clone();
            let answer = Answer::Page {
                rows: page.page.into_iter().map(row_of).collect(),
                is_done: page.is_done,
                has_cursor: page.continue_cursor.is_some(),
            };
            (answer, cursor)
        }
        Err(e) => (err_of(e), None),
    }
}

async fn purge_on<S: ModelTable>(table: &Table<S>, retention_ms: i64) -> Answer {
    let retention = Duration::from_millis(u64::try_from(retention_ms).unwrap_or(0));
    answer(table.purge(retention).await, Answer::Purged)
}

/// Runs `ops` on `store` (whose tables are empty) and on a fresh model,
/// then reads every key and pages through every table. The error says
/// which operation answered what, against what the model expected.
pub async fn run_sequence(store: &Store, ops: &[Op]) -> Result<(), String> {
    let clock = ManualClock::new(T0);
    let store = store.with_clock(clock.clone());
    let notes = store.table::<Note>();
    let flags = store.table::<Flag>();
    let mut model = Model::new();
    let mut held: Vec<Held> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let (expected, observed) = match op {
            Op::Set { t, who, key, value }
            | Op::SetIfAbsent { t, who, key, value }
            | Op::SetExpecting {
                t, who, key, value, ..
            } => {
                let key = write_key(*t, *key);
                let expect = match op {
                    Op::Set { .. } => Expect::Any,
                    Op::SetIfAbsent { .. } => Expect::NotLive,
                    Op::SetExpecting { version, .. } => {
                        Expect::Version(resolve_version(&model, *t, &key, *version))
                    }
                    _ => unreachable!("a set"),
                };
                let observed = match t {
                    Tbl::Note => set_on(&notes, *who, &key, value, expect).await,
                    Tbl::Flag => set_on(&flags, *who, &key, value, expect).await,
                };
                let expected = model.set(*t, *who, &key, value, expect, &observed);
                (expected, observed)
            }
            Op::Rm { t, who, key } => {
                let key = write_key(*t, *key);
                let observed = match t {
                    Tbl::Note => rm_on(&notes, *who, &key).await,
                    Tbl::Flag => rm_on(&flags, *who, &key).await,
                };
                (model.rm(*t, *who, &key, &observed), observed)
            }
            Op::Restore { who, key } => {
                let key = key.text(Tbl::Note);
                let observed = answer(notes.restore(&ctx(*who), &key).await, |row| {
                    Answer::Row(row_of(row))
                });
                (model.restore(Tbl::Note, *who, &key), observed)
            }
            Op::Purge { t, retention_ms } => {
                let observed = match t {
                    Tbl::Note => purge_on(&notes, *retention_ms).await,
                    Tbl::Flag => purge_on(&flags, *retention_ms).await,
                };
                (model.purge(*t, *retention_ms), observed)
            }
            Op::Get { t, key } => {
                let key = key.text(*t);
                let observed = match t {
                    Tbl::Note => get_on(&notes, &key).await,
                    Tbl::Flag => get_on(&flags, &key).await,
                };
                let observed = observed.map_err(|e| format!("operation #{i} {op:?}: {e}"))?;
                (model.get(*t, &key), observed)
            }
            Op::List {
                t,
                who,
                num_items,
                cursor,
            } => {
                let (request, model_cursor) = match cursor {
                    CursorPick::First => (PageRequest::first(*num_items), ListCursor::First),
                    CursorPick::Garbage => (
                        PageRequest::after("v1.not-a-cursor", *num_items),
                        ListCursor::Invalid,
                    ),
                    CursorPick::Held(n) if !held.is_empty() => {
                        let h = &held[usize::from(*n) % held.len()];
                        let model_cursor = if h.t == *t {
                            ListCursor::After(&h.after)
                        } else {
                            ListCursor::Invalid
                        };
                        (
                            PageRequest::after(h.cursor.clone(), *num_items),
                            model_cursor,
                        )
                    }
                    CursorPick::Held(_) => (PageRequest::first(*num_items), ListCursor::First),
                };
                let (observed, cursor) = match t {
                    Tbl::Note => list_on(&notes, *who, request).await,
                    Tbl::Flag => list_on(&flags, *who, request).await,
                };
                let (expected, after) = model.list(*t, *who, *num_items, model_cursor);
                if let (Some(cursor), Some(after)) = (cursor, after) {
                    held.push(Held {
                        t: *t,
                        cursor,
                        after,
                    });
                    if held.len() > 8 {
                        held.remove(0);
                    }
                }
                (expected, observed)
            }
            Op::Clock { delta_ms } => {
                model.now = model.now.saturating_add(*delta_ms);
                clock.set(model.now);
                (Answer::Unit, Answer::Unit)
            }
            Op::Hooks => {
                if !model.hooks {
                    register_hooks(&notes);
                    register_hooks(&flags);
                    model.hooks = true;
                }
                (Answer::Unit, Answer::Unit)
            }
        };
        tally(op, &observed);
        if !expected.admits(&observed) {
            return Err(format!(
                "operation #{i} {op:?} at t0{:+} ms:\n  expected {expected:?}\n  got      {observed:?}",
                model.now - T0
            ));
        }
    }
    audit(&model, &notes, Tbl::Note)
        .await
        .map_err(|e| format!("after the sequence: {e}"))?;
    audit(&model, &flags, Tbl::Flag)
        .await
        .map_err(|e| format!("after the sequence: {e}"))?;
    OPS.fetch_add(ops.len(), Ordering::Relaxed);
    Ok(())
}

/// Reads every key of `t`, and pages through it two rows at a time and
/// whole, comparing with the model.
async fn audit<S: ModelTable>(model: &Model, table: &Table<S>, t: Tbl) -> Result<(), String> {
    let keys = match t {
        Tbl::Note => ops::NOTE_KEYS,
        Tbl::Flag => ops::FLAG_KEYS,
    };
    for key in keys {
        let got = get_on(table, key).await?;
        let expected = model.get(t, key);
        if got != expected {
            return Err(format!(
                "{t:?} get {key:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    let live = model.live_rows(t);
    let (whole, _) = list_on(table, Who::Internal, PageRequest::first(0)).await;
    let expected = Answer::Page {
        rows: live.clone(),
        is_done: true,
        has_cursor: false,
    };
    if whole != expected {
        return Err(format!("{t:?} list: expected {expected:?}, got {whole:?}"));
    }
    let mut paged = Vec::new();
    let mut request = PageRequest::first(2);
    loop {
        match table.list(&ctx(Who::Internal), request).await {
            Ok(page) => {
                if !page.is_done && page.page.len() != 2 {
                    return Err(format!("{t:?} paging: a short page that is not the last"));
                }
                paged.extend(page.page.into_iter().map(row_of));
                match page.continue_cursor {
                    Some(c) if !page.is_done => request = PageRequest::after(c, 2),
                    None if page.is_done => break,
                    other => {
                        return Err(format!(
                            "{t:?} paging: is_done {} with cursor {other:?}",
                            page.is_done
                        ))
                    }
                }
            }
            Err(e) => return Err(format!("{t:?} paging: {e}")),
        }
    }
    if paged != live {
        return Err(format!("{t:?} paging: expected {live:?}, got {paged:?}"));
    }
    Ok(())
}

/// The version a `set_expecting` passes.
fn resolve_version(model: &Model, t: Tbl, key: &str, pick: VersionPick) -> i64 {
    let versions = model.versions(t, key);
    let current = model
        .live(t, key)
        .map(|r| r.updated_at)
        .or_else(|| versions.last().copied())
        .unwrap_or(T0);
    match pick {
        VersionPick::Current => current,
        VersionPick::Earlier(n) if !versions.is_empty() => {
            versions[usize::from(n) % versions.len()]
        }
        VersionPick::Earlier(_) => T0 - 1,
        VersionPick::Next => current.saturating_add(1),
        VersionPick::Never => T0 - 12_345,
    }
}

/// Operations run by every sequence that passed, in this process.
static OPS: AtomicUsize = AtomicUsize::new(0);

/// How often each kind of operation got each kind of answer, in this
/// process: printed after a run, so that a change that stops the
/// sequences from reaching some answer is seen.
static TALLY: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn tally(op: &Op, observed: &Answer) {
    let op = format!("{op:?}");
    let op = op.split([' ', '{']).next().unwrap_or_default().to_owned();
    let answer = match observed {
        Answer::Row(_) => "row".to_owned(),
        Answer::Got(row) => if row.is_some() { "some" } else { "none" }.to_owned(),
        Answer::Removed(b) => b.to_string(),
        Answer::Purged(n) => if *n > 0 { "purged" } else { "purged 0" }.to_owned(),
        Answer::Page { rows, is_done, .. } => {
            format!(
                "page of {}{}",
                rows.len(),
                if *is_done { ", done" } else { "" }
            )
        }
        Answer::Err(code, _) => code.as_str().to_owned(),
        Answer::Unit => return,
    };
    let mut tally = TALLY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *tally.entry(format!("{op}: {answer}")).or_default() += 1;
}

fn tally_text() -> String {
    let tally = TALLY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tally
        .iter()
        .map(|(k, n)| format!("  {k}: {n}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many sequences to run: `KV_MODEL_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("KV_MODEL_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The longest sequence: `KV_MODEL_OPS`, else 60.
pub fn max_ops() -> usize {
    std::env::var("KV_MODEL_OPS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60)
}

/// Runs proptest: `cases` random sequences (each on a store from `fresh`),
/// failing with the minimal sequence proptest shrinks a failure to.
/// Failing seeds are saved to, and replayed first from, `regressions`
/// (a path from the package root).
pub fn check(
    backend: &str,
    regressions: &'static str,
    default_cases: u32,
    fresh: impl Fn() -> Fresh,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        max_shrink_iters: 2_048,
        ..Config::default()
    };
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let started = Instant::now();
    let before = OPS.load(Ordering::Relaxed);
    let result = runner.run(&ops::sequence(max_ops()), |ops| {
        runtime
            .block_on(async {
                let (store, keep) = fresh().await;
                let result = run_sequence(&store, &ops).await;
                drop(store);
                drop(keep);
                result
            })
            .map_err(TestCaseError::fail)
    });
    match result {
        Ok(()) => crate::support::skip::loud(&format!(
            "model-based test on {backend}: {cases} sequences, {} operations, in {:.1} s; \
             answers:\n{}",
            OPS.load(Ordering::Relaxed) - before,
            started.elapsed().as_secs_f64(),
            tally_text()
        )),
        Err(TestError::Fail(why, ops)) => panic!(
            "the {backend} backend differs from the model.\n{why}\nminimal sequence ({} operations):\n{ops:#?}",
            ops.len()
        ),
        Err(TestError::Abort(why)) => panic!("proptest aborted on {backend}: {why}"),
    }
}

/// Runs one checked-in sequence on a store from `fresh`.
pub fn replay(backend: &str, name: &str, ops: &[Op], fresh: &dyn Fn() -> Fresh) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let (store, keep) = fresh().await;
        if let Err(why) = run_sequence(&store, ops).await {
            panic!("regression {name} on {backend}: {why}");
        }
        drop(store);
        drop(keep);
    });
}
