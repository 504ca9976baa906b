//! Logs: numbering, idempotent and bulk appends, pages, deletes, roles,
//! purge, tails, hooks and rate limits, on every backend.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{clocked, T0};
use crate::backend::{Append, Appended, EntryOp, EntryRange, FeedEvent, Payload, RmMode};
use crate::hooks::HookError;
use crate::testing::schemas::*;
use crate::{Ctx, ErrorCode, PageRequest, Store, TailEvent, MAX_BATCH};

fn member() -> Ctx {
    Ctx::user("mo").with_role("member")
}

const ROOM: RoomId = RoomId(1);

/// Within ten seconds, the next event of a tail.
async fn next_event<L: crate::LogSchema>(tail: &mut crate::Tail<L>) -> TailEvent<L> {
    tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("the tail delivers within 10 s")
        .expect("the tail stays open")
        .expect("the event reads")
}

fn seqs<L: crate::LogSchema>(entries: &[crate::LogEntry<L>]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Each parent numbers its entries 1, 2, 3, ...; entries carry the value,
/// the time and the author; logs and parents are independent.
pub async fn log_appends_number_entries_per_parent(store: Store) {
    let (store, clock) = clocked(&store);
    let chat = store.log::<ChatLine>();
    let first = chat
        .append(&member(), ROOM, ChatLine::new("hi"))
        .await
        .unwrap();
    assert_eq!((first.parent, first.seq, first.created_at), (ROOM, 1, T0));
    assert_eq!(first.value, ChatLine::new("hi"));
    assert_eq!(first.author.as_deref(), Some("mo"));
    assert_eq!(first.deleted_at, None);
    clock.advance(Duration::from_millis(5));
    let second = chat
        .append(&member(), ROOM, ChatLine::new("there"))
        .await
        .unwrap();
    assert_eq!((second.seq, second.created_at), (2, T0 + 5));
    let other = chat
        .append(&member(), RoomId(2), ChatLine::new("elsewhere"))
        .await
        .unwrap();
    assert_eq!(other.seq, 1);
    let audit = store.log::<AuditEvent>();
    let a = audit
        .append(
            &Ctx::internal(),
            "ROOM".to_owned(),
            AuditEvent { what: "x".into() },
        )
        .await
        .unwrap();
    assert_eq!((a.seq, a.author.as_deref()), (1, Some("internal")));
    let read = chat.get(&Ctx::anonymous(), ROOM, 2).await.unwrap().unwrap();
    assert_eq!(read.value, ChatLine::new("there"));
    assert_eq!(read.author.as_deref(), Some("mo"));
    // A page gives each entry its own author, however they alternate
    // (backends share equal author text within a page).
    let mia = Ctx::user("mia").with_role("member");
    for ctx in [&mia, &member(), &Ctx::internal(), &mia, &mia] {
        chat.append(ctx, RoomId(3), ChatLine::new("x"))
            .await
            .unwrap();
    }
    let page = chat
        .list(&Ctx::anonymous(), RoomId(3), PageRequest::first(10))
        .await
        .unwrap();
    let authors: Vec<Option<&str>> = page.entries.iter().map(|e| e.author.as_deref()).collect();
    assert_eq!(
        authors,
        [
            Some("mia"),
            Some("mo"),
            Some("internal"),
            Some("mia"),
            Some("mia")
        ]
    );
    assert!(chat
        .get(&Ctx::anonymous(), ROOM, 3)
        .await
        .unwrap()
        .is_none());
    // The backend's view: the parent as its text.
    let raw = store
        .backend()
        .logs()
        .get("conformanceChat", "room-1", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((raw.parent.as_str(), raw.seq), ("room-1", 1));
}

/// Concurrent appends to one parent get distinct, consecutive numbers.
pub async fn log_concurrent_appends_get_consecutive_seqs(store: Store) {
    let chat = store.log::<ChatLine>();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            let chat = chat.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..25 {
                    let line = ChatLine::new(&format!("{t}-{i}"));
                    got.push(chat.append(&member(), ROOM, line).await.unwrap().seq);
                }
                got
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for task in tasks {
        let got = task.await.expect("no panic");
        // Each task's own appends come in order.
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        all.extend(got);
    }
    assert_eq!(all, (1..=100).collect::<BTreeSet<u64>>());
}

/// An append with an idempotency key appends once: retries (concurrent
/// ones too) return the first entry; the key is per parent.
pub async fn log_idempotent_appends_replay_the_first_entry(store: Store) {
    let chat = store.log::<ChatLine>();
    let first = chat
        .append_idempotent(&member(), ROOM, "msg-1", ChatLine::new("once"))
        .await
        .unwrap();
    let again = chat
        .append_idempotent(&member(), ROOM, "msg-1", ChatLine::new("twice?"))
        .await
        .unwrap();
    assert_eq!(again, first, "the first entry, not the retry's value");
    let next = chat
        .append_idempotent(&member(), ROOM, "msg-2", ChatLine::new("two"))
        .await
        .unwrap();
    assert_eq!(next.seq, 2);
    let elsewhere = chat
        .append_idempotent(&member(), RoomId(2), "msg-1", ChatLine::new("other room"))
        .await
        .unwrap();
    assert_eq!((elsewhere.parent, elsewhere.seq), (RoomId(2), 1));
    // A deleted entry is replayed as it is now.
    assert!(chat.rm(&member(), ROOM, 1).await.unwrap());
    let replay = chat
        .append_idempotent(&member(), ROOM, "msg-1", ChatLine::new("once"))
        .await
        .unwrap();
    assert_eq!(replay.seq, 1);
    assert!(replay.deleted_at.is_some());
    // A batch replays whole.
    let batch: Vec<ChatLine> = (0..3).map(|i| ChatLine::new(&format!("b{i}"))).collect();
    let made = chat
        .append_many_idempotent(&member(), ROOM, "batch-1", batch.clone())
        .await
        .unwrap();
    assert_eq!(seqs(&made), [3, 4, 5]);
    let again = chat
        .append_many_idempotent(&member(), ROOM, "batch-1", batch)
        .await
        .unwrap();
    assert_eq!(again, made);
    // Concurrent first attempts with one key: exactly one appends.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let chat = chat.clone();
            tokio::spawn(async move {
                let line = ChatLine::new(&format!("race {i}"));
                chat.append_idempotent(&member(), ROOM, "race", line)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = BTreeSet::new();
    for task in tasks {
        winners.insert(task.await.expect("no panic").seq);
    }
    assert_eq!(winners.into_iter().collect::<Vec<_>>(), [6]);
    let page = chat
        .list(&member(), ROOM, PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), [2, 3, 4, 5, 6]);
    // Keys follow the key rules.
    for bad in ["", "a\u{7}b"] {
        let err = chat
            .append_idempotent(&member(), ROOM, bad, ChatLine::new("x"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed, "{bad:?}");
    }
}

/// A bulk append is all or nothing: one bad value appends none.
pub async fn log_append_many_is_all_or_nothing(store: Store) {
    let chat = store.log::<ChatLine>();
    chat.append(&member(), ROOM, ChatLine::new("before"))
        .await
        .unwrap();
    let bad = vec![ChatLine::new("ok"), ChatLine::new(""), ChatLine::new("ok")];
    let err = chat.append_many(&member(), ROOM, bad).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    for n in [0, MAX_BATCH + 1] {
        let values = vec![ChatLine::new("x"); n];
        let err = chat.append_many(&member(), ROOM, values).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ValidationFailed, "{n}");
    }
    let too_big = ChatLine::new(&"x".repeat(300));
    let err = chat.append(&member(), ROOM, too_big).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    let made = chat
        .append_many(
            &member(),
            ROOM,
            vec![ChatLine::new("a"), ChatLine::new("b")],
        )
        .await
        .unwrap();
    assert_eq!(seqs(&made), [2, 3], "no number was used by the refusals");
    assert_eq!(made[1].value, ChatLine::new("b"));
    // The backend numbers on from the typed appends, without a gap.
    let logs = store.backend().logs();
    let append = Append {
        parent: "room-1",
        key: None,
        author: None,
        now: T0,
    };
    let values = vec![Payload::from_json(r#"{"text":"c"}"#)];
    match logs
        .append("conformanceChat", append, values)
        .await
        .unwrap()
    {
        Appended::New(entries) => assert_eq!(entries[0].seq, 4),
        other => panic!("{other:?}"),
    }
}

/// Pages go forwards (oldest first) and backwards (newest first), skip
/// deleted entries before counting, and their cursors stay valid as
/// entries are added.
pub async fn log_list_pages_forwards_and_backwards(store: Store) {
    let chat = store.log::<ChatLine>();
    let lines: Vec<ChatLine> = (1..=25).map(|i| ChatLine::new(&format!("{i}"))).collect();
    chat.append_many(&member(), ROOM, lines).await.unwrap();
    chat.rm_many(&member(), ROOM, &[2, 3, 24]).await.unwrap();
    let reader = Ctx::anonymous();
    let first = chat
        .list(&reader, ROOM, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(seqs(&first.entries), [1, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert!(!first.is_done);
    let cursor = first.continue_cursor.clone().unwrap();
    let second = chat
        .list(&reader, ROOM, PageRequest::after(cursor.clone(), 10))
        .await
        .unwrap();
    assert_eq!(seqs(&second.entries), (13..=22).collect::<Vec<_>>());
    let third = chat
        .list(
            &reader,
            ROOM,
            PageRequest::after(second.continue_cursor.unwrap(), 10),
        )
        .await
        .unwrap();
    assert_eq!(seqs(&third.entries), [23, 25]);
    assert!(third.is_done);
    // The cursor at the end picks up what is appended later.
    let end = third.continue_cursor.expect("a forward cursor stays");
    chat.append(&member(), ROOM, ChatLine::new("26"))
        .await
        .unwrap();
    let later = chat
        .list(&reader, ROOM, PageRequest::after(end.clone(), 10))
        .await
        .unwrap();
    assert_eq!(seqs(&later.entries), [26]);
    // And an old cursor still continues where it was.
    let again = chat
        .list(&reader, ROOM, PageRequest::after(cursor, 3))
        .await
        .unwrap();
    assert_eq!(seqs(&again.entries), [13, 14, 15]);
    // Backwards: newest first, down to the first entry.
    let newest = chat
        .list_backwards(&reader, ROOM, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        seqs(&newest.entries),
        [26, 25, 23, 22, 21, 20, 19, 18, 17, 16]
    );
    let mut all = seqs(&newest.entries);
    let mut next = newest.continue_cursor;
    while let Some(c) = next {
        let page = chat
            .list_backwards(&reader, ROOM, PageRequest::after(c, 10))
            .await
            .unwrap();
        all.extend(seqs(&page.entries));
        next = page.continue_cursor;
        assert_eq!(next.is_none(), page.is_done);
    }
    let mut expected: Vec<u64> = (1..=26).filter(|s| ![2, 3, 24].contains(s)).collect();
    expected.reverse();
    assert_eq!(all, expected);
    // Cursors of another parent, direction or log, and junk, are refused.
    let back = chat
        .list_backwards(&reader, ROOM, PageRequest::first(1))
        .await
        .unwrap()
        .continue_cursor
        .unwrap();
    for (parent, cursor, backwards) in [
        (RoomId(2), end.clone(), false),
        (ROOM, end.clone(), true),
        (ROOM, back, false),
        (ROOM, "v1.00.00".to_owned(), false),
        (ROOM, "junk".to_owned(), true),
    ] {
        let request = PageRequest::after(cursor.clone(), 10);
        let err = if backwards {
            chat.list_backwards(&reader, parent, request).await
        } else {
            chat.list(&reader, parent, request).await
        }
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidCursor, "{cursor}");
    }
    let err = chat
        .list(&reader, ROOM, PageRequest::first(1001))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed);
    let empty = chat
        .list(&reader, RoomId(9), PageRequest::first(10))
        .await
        .unwrap();
    assert!(empty.entries.is_empty() && empty.is_done && empty.continue_cursor.is_none());
}

/// `rm` marks entries deleted on soft-delete logs and `restore` brings
/// them back; on other logs `rm` removes them; numbers are never reused.
pub async fn log_rm_restore_and_rm_many(store: Store) {
    let chat = store.log::<ChatLine>();
    let lines: Vec<ChatLine> = (1..=5).map(|i| ChatLine::new(&format!("{i}"))).collect();
    chat.append_many(&member(), ROOM, lines).await.unwrap();
    assert!(chat.rm(&member(), ROOM, 2).await.unwrap());
    assert!(
        !chat.rm(&member(), ROOM, 2).await.unwrap(),
        "already deleted"
    );
    assert!(!chat.rm(&member(), ROOM, 99).await.unwrap(), "missing");
    assert!(chat.get(&member(), ROOM, 2).await.unwrap().is_none());
    let back = chat.restore(&member(), ROOM, 2).await.unwrap();
    assert_eq!((back.seq, back.deleted_at), (2, None));
    assert_eq!(back.value, ChatLine::new("2"));
    let live = chat.restore(&member(), ROOM, 3).await.unwrap();
    assert_eq!(live.seq, 3);
    let err = chat.restore(&member(), ROOM, 42).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(
        chat.rm_many(&member(), ROOM, &[1, 1, 3, 5, 77])
            .await
            .unwrap(),
        3
    );
    assert_eq!(chat.rm_many(&member(), ROOM, &[]).await.unwrap(), 0);
    let page = chat
        .list(&member(), ROOM, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), [2, 4]);
    // The deleted entries are still there for the backend.
    let all = store
        .backend()
        .logs()
        .list(
            "conformanceChat",
            "room-1",
            EntryRange {
                from: None,
                backwards: false,
                deleted: true,
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    // A hard-delete log removes; the next number is still the next one.
    let audit = store.log::<AuditEvent>();
    let internal = Ctx::internal();
    let event = |what: &str| AuditEvent { what: what.into() };
    let parent = "deploys".to_owned();
    audit.append(&internal, &parent, event("a")).await.unwrap();
    audit.append(&internal, &parent, event("b")).await.unwrap();
    assert!(audit.rm(&internal, &parent, 2).await.unwrap());
    assert!(!audit.rm(&internal, &parent, 2).await.unwrap());
    assert!(store
        .backend()
        .logs()
        .get("conformanceAudit", "deploys", 2)
        .await
        .unwrap()
        .is_none());
    let c = audit.append(&internal, &parent, event("c")).await.unwrap();
    assert_eq!(c.seq, 3, "numbers are not reused after a removal");
}

/// Appends and deletes need the write role, reads the read role (the
/// write role unless declared); a refusal changes nothing.
pub async fn log_roles_guard_writes_and_reads(store: Store) {
    let chat = store.log::<ChatLine>();
    let anonymous = Ctx::anonymous();
    let err = chat
        .append(&anonymous, ROOM, ChatLine::new("spam"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Forbidden);
    chat.append(&member(), ROOM, ChatLine::new("hi"))
        .await
        .unwrap();
    for err in [
        chat.rm(&anonymous, ROOM, 1).await.unwrap_err(),
        chat.restore(&anonymous, ROOM, 1).await.unwrap_err(),
        chat.rm_many(&anonymous, ROOM, &[1]).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::Forbidden);
    }
    // `read_role = public`: anyone reads.
    let page = chat
        .list(&anonymous, ROOM, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(seqs(&page.entries), [1]);
    assert!(chat.get(&anonymous, ROOM, 1).await.unwrap().is_some());
    drop(chat.tail(&anonymous, ROOM).await.unwrap());
    // No read role declared: the write role (internal) guards reads too.
    let audit = store.log::<AuditEvent>();
    let parent = "x".to_owned();
    audit
        .append(&Ctx::internal(), &parent, AuditEvent { what: "a".into() })
        .await
        .unwrap();
    let admin = Ctx::user("ada").with_role("admin");
    for err in [
        audit
            .list(&admin, &parent, PageRequest::first(1))
            .await
            .unwrap_err(),
        audit.get(&admin, &parent, 1).await.unwrap_err(),
        audit.tail(&admin, &parent).await.unwrap_err(),
        audit
            .append(&admin, &parent, AuditEvent { what: "b".into() })
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::Forbidden);
    }
    let page = audit
        .list(&Ctx::internal(), &parent, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);
    // Parents are checked like keys.
    let err = audit
        .append(
            &Ctx::internal(),
            String::new(),
            AuditEvent { what: "c".into() },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidKey);
}

/// `purge` removes entries soft-deleted longer ago than the retention;
/// numbers are not reused; an idempotency key goes with its entry.
pub async fn log_purge_removes_old_soft_deleted_entries(store: Store) {
    let (store, clock) = clocked(&store);
    let chat = store.log::<ChatLine>();
    chat.append_idempotent(&member(), ROOM, "k1", ChatLine::new("1"))
        .await
        .unwrap();
    chat.append(&member(), ROOM, ChatLine::new("2"))
        .await
        .unwrap();
    chat.append(&member(), ROOM, ChatLine::new("3"))
        .await
        .unwrap();
    chat.rm_many(&member(), ROOM, &[1, 3]).await.unwrap();
    let day = Duration::from_secs(86_400);
    assert_eq!(chat.purge(day).await.unwrap(), 0);
    clock.advance(Duration::from_secs(3_600));
    chat.rm(&member(), ROOM, 2).await.unwrap();
    clock.advance(day - Duration::from_secs(1_800));
    assert_eq!(chat.purge(day).await.unwrap(), 2, "only the old deletions");
    let err = chat.restore(&member(), ROOM, 1).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(chat.restore(&member(), ROOM, 2).await.unwrap().seq, 2);
    let next = chat
        .append_idempotent(&member(), ROOM, "k1", ChatLine::new("1 again"))
        .await
        .unwrap();
    assert_eq!(next.seq, 4, "a purged entry's key and number are gone");
    let err = chat.purge(Duration::from_millis(10)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Config);
    for (retention, every) in [
        (Duration::from_millis(10), Duration::from_secs(1)),
        (day, Duration::ZERO),
    ] {
        let err = chat.spawn_purge(retention, every).unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::Config,
            "{retention:?} every {every:?}"
        );
    }
    // The background task purges entry 2 once its deletion is old enough.
    chat.rm(&member(), ROOM, 2).await.unwrap();
    clock.advance(day * 2);
    let task = chat.spawn_purge(day, Duration::from_millis(5)).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match chat.restore(&member(), ROOM, 2).await {
            Err(e) if e.code() == ErrorCode::NotFound => break,
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => {
                // Not purged yet: delete it again, long ago, and wait.
                chat.rm(&member(), ROOM, 2).await.unwrap();
                clock.advance(day * 2);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the background purge never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(task);
    let live = chat.get(&member(), ROOM, 4).await.unwrap();
    assert_eq!(
        live.map(|e| e.value.text),
        Some("1 again".to_owned()),
        "a live entry is untouched"
    );
}

/// A tail delivers new entries in seq order, each once, and deletes and
/// restores of older ones; `tail_after` first catches up from a number.
pub async fn log_tail_follows_new_entries(store: Store) {
    let chat = store.log::<ChatLine>();
    let line = ChatLine::new;
    chat.append(&member(), ROOM, line("old")).await.unwrap();
    let mut tail = chat.tail(&Ctx::anonymous(), ROOM).await.unwrap();
    chat.append(&member(), RoomId(2), line("another room"))
        .await
        .unwrap();
    chat.append(&member(), ROOM, line("a")).await.unwrap();
    chat.append_many(&member(), ROOM, vec![line("b"), line("c")])
        .await
        .unwrap();
    for (seq, text) in [(2, "a"), (3, "b"), (4, "c")] {
        match next_event(&mut tail).await {
            TailEvent::Appended(e) => assert_eq!((e.seq, e.value.text.as_str()), (seq, text)),
            other => panic!("expected entry {seq}: {other:?}"),
        }
    }
    chat.rm(&member(), ROOM, 1).await.unwrap();
    match next_event(&mut tail).await {
        TailEvent::Removed { seq: 1, entry } => {
            assert!(entry.expect("soft-deleted").deleted_at.is_some())
        }
        other => panic!("expected the delete of 1: {other:?}"),
    }
    chat.restore(&member(), ROOM, 1).await.unwrap();
    match next_event(&mut tail).await {
        TailEvent::Restored(e) => assert_eq!(e.seq, 1),
        other => panic!("expected the restore of 1: {other:?}"),
    }
    chat.append(&member(), ROOM, line("d")).await.unwrap();
    chat.append(&member(), ROOM, line("e")).await.unwrap();
    match next_event(&mut tail).await {
        TailEvent::Appended(e) => assert_eq!(e.seq, 5),
        other => panic!("{other:?}"),
    }
    match next_event(&mut tail).await {
        TailEvent::Appended(e) => assert_eq!(e.seq, 6),
        other => panic!("{other:?}"),
    }
    // Catching up from a number: the live entries after it, then new ones.
    chat.rm(&member(), ROOM, 3).await.unwrap();
    let mut after = chat.tail_after(&Ctx::anonymous(), ROOM, 1).await.unwrap();
    let mut caught = Vec::new();
    while caught.len() < 5 {
        match next_event(&mut after).await {
            TailEvent::Appended(e) => {
                caught.push(e.seq);
                if caught.len() == 4 {
                    chat.append(&member(), ROOM, line("f")).await.unwrap();
                }
            }
            // The delete of 3 committed before this tail started, but a
            // shared backend's feed may deliver it after (as
            // `TailEvent::Removed` allows); nothing else may come.
            TailEvent::Removed { seq: 3, .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(caught, [2, 4, 5, 6, 7]);
}

/// The change feed carries log entries: appends in seq order, deletes and
/// restores, each with the entry after the change.
pub async fn log_feed_reports_entry_changes(store: Store) {
    let mut feed = store.backend().feed().subscribe();
    let chat = store.log::<ChatLine>();
    chat.append_many(
        &member(),
        ROOM,
        vec![ChatLine::new("a"), ChatLine::new("b")],
    )
    .await
    .unwrap();
    chat.rm(&member(), ROOM, 1).await.unwrap();
    chat.restore(&member(), ROOM, 1).await.unwrap();
    let audit = store.log::<AuditEvent>();
    let parent = "p".to_owned();
    audit
        .append(&Ctx::internal(), &parent, AuditEvent { what: "x".into() })
        .await
        .unwrap();
    audit.rm(&Ctx::internal(), &parent, 1).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let event = tokio::time::timeout(Duration::from_secs(10), feed.recv())
            .await
            .expect("the change arrives within 10 s")
            .expect("the feed stays open");
        match event {
            FeedEvent::Entry(c) if c.table.starts_with("conformance") => seen.push(c),
            FeedEvent::Resync => panic!("no resync expected on a healthy backend"),
            _ => {}
        }
    }
    let summary: Vec<(&str, &str, u64, EntryOp, Option<bool>)> = seen
        .iter()
        .map(|c| {
            (
                c.table.as_str(),
                c.parent.as_str(),
                c.seq,
                c.op,
                c.entry.as_ref().map(|e| e.is_live()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("conformanceChat", "room-1", 1, EntryOp::Append, Some(true)),
            ("conformanceChat", "room-1", 2, EntryOp::Append, Some(true)),
            ("conformanceChat", "room-1", 1, EntryOp::Rm, Some(false)),
            ("conformanceChat", "room-1", 1, EntryOp::Restore, Some(true)),
            ("conformanceAudit", "p", 1, EntryOp::Append, Some(true)),
            ("conformanceAudit", "p", 1, EntryOp::Rm, None),
        ]
    );
    let appended = seen[1].entry.as_ref().unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(appended.value.json()).unwrap(),
        serde_json::json!({ "text": "b" })
    );
}

/// `before_append` may change a value (validated again) or refuse the
/// whole call; `after_append` runs per new entry, not on a replay;
/// `before_rm` may refuse; `after_rm` sees the entry as it was.
pub async fn log_hooks_change_refuse_and_observe(store: Store) {
    let chat = store.log::<ChatLine>();
    chat.before_append("tidy", |mut change| async move {
        change.value.text = change.value.text.trim().to_owned();
        if change.value.text == "spam" {
            return Err(HookError::new("no spam"));
        }
        Ok(change.value)
    });
    let appended: Arc<Mutex<Vec<u64>>> = Arc::default();
    let log = Arc::clone(&appended);
    chat.after_append("record", move |done| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(done.entry.seq);
            Ok(())
        }
    });
    chat.before_rm("keep-first", |removal| async move {
        if removal.entry.seq == 1 {
            return Err(HookError::new("the first line stays"));
        }
        Ok(())
    });
    let removed: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&removed);
    chat.after_rm("record", move |done| {
        let log = Arc::clone(&log);
        async move {
            log.lock().unwrap().push(done.entry.value.text.clone());
            Ok(())
        }
    });
    let first = chat
        .append_idempotent(&member(), ROOM, "k", ChatLine::new("  hello  "))
        .await
        .unwrap();
    assert_eq!(first.value.text, "hello");
    chat.append_idempotent(&member(), ROOM, "k", ChatLine::new("hello"))
        .await
        .unwrap();
    let err = chat
        .append_many(
            &member(),
            ROOM,
            vec![ChatLine::new("fine"), ChatLine::new(" spam ")],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    let err = chat
        .append(&member(), ROOM, ChatLine::new("   "))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed, "trimmed to empty");
    chat.append(&member(), ROOM, ChatLine::new("second"))
        .await
        .unwrap();
    assert_eq!(*appended.lock().unwrap(), [1, 2]);
    let err = chat.rm_many(&member(), ROOM, &[1, 2]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Rejected);
    assert!(
        chat.get(&member(), ROOM, 2).await.unwrap().is_some(),
        "none deleted"
    );
    assert!(chat.rm(&member(), ROOM, 2).await.unwrap());
    assert_eq!(*removed.lock().unwrap(), ["second"]);
}

/// A log's rate limit counts each entry, per caller, in its own scope;
/// internal callers are exempt; a batch larger than the limit is refused.
pub async fn log_rate_limit_counts_entries(store: Store) {
    let (store, clock) = clocked(&store);
    let shouts = store.log::<Shout>();
    let parent = "wall".to_owned();
    let alice = Ctx::user("alice");
    shouts
        .append_many(&alice, &parent, vec![Shout { n: 1 }, Shout { n: 2 }])
        .await
        .unwrap();
    shouts
        .append(&alice, &parent, Shout { n: 3 })
        .await
        .unwrap();
    let err = shouts
        .append(&alice, &parent, Shout { n: 4 })
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited);
    let err = shouts.rm(&alice, &parent, 1).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::RateLimited, "rm counts too");
    shouts
        .append(&Ctx::user("bo"), &parent, Shout { n: 5 })
        .await
        .unwrap();
    let many: Vec<Shout> = (0..10).map(|n| Shout { n }).collect();
    shouts
        .append_many(&Ctx::internal(), &parent, many.clone())
        .await
        .unwrap();
    let err = shouts
        .append_many(&Ctx::user("cy"), &parent, many)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ValidationFailed, "4 > 3 never fits");
    clock.advance(Duration::from_secs(1));
    shouts
        .append(&alice, &parent, Shout { n: 6 })
        .await
        .unwrap();
    // The log's scope is its own: a table of the same name is unaffected.
    let usage = store
        .backend()
        .rate_counter()
        .peek(
            "log:conformanceShout",
            "user:alice",
            crate::backend::Window {
                max: 3,
                window_ms: 1_000,
            },
            T0 + 1_000,
        )
        .await
        .unwrap();
    assert_eq!(usage.used, 1);
}

/// The backend's log store numbers without gaps, lists in both directions
/// with or without deleted entries, and never reuses a number.
pub async fn log_store_numbers_and_lists(store: Store) {
    let logs = store.backend().logs();
    let t = "conformanceRawLog";
    let append = |parent: &'static str, key: Option<&'static str>, n: usize| async move {
        let values = (0..n)
            .map(|i| Payload::from_json(format!("{{\"i\":{i}}}")))
            .collect();
        let a = Append {
            parent,
            key,
            author: Some("ada"),
            now: T0,
        };
        logs.append(t, a, values).await.unwrap()
    };
    let new = |a: Appended| match a {
        Appended::New(e) => e.iter().map(|e| e.seq).collect::<Vec<_>>(),
        other => panic!("expected new entries: {other:?}"),
    };
    assert_eq!(new(append("p", None, 3).await), [1, 2, 3]);
    assert_eq!(new(append("p", Some("k"), 2).await), [4, 5]);
    match append("p", Some("k"), 2).await {
        Appended::Replayed(e) => assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]),
        other => panic!("expected a replay: {other:?}"),
    }
    assert_eq!(new(append("q", Some("k"), 1).await), [1]);
    let removed = logs.rm(t, "p", &[5, 2, 9], RmMode::Hard, T0).await.unwrap();
    assert_eq!(removed.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 5]);
    assert!(removed.iter().all(|e| e.deleted_at.is_none()), "as before");
    logs.rm(t, "p", &[3], RmMode::Soft, T0 + 1).await.unwrap();
    assert_eq!(new(append("p", None, 1).await), [6], "5 is not reused");
    let list = |from, backwards, deleted| async move {
        let range = EntryRange {
            from,
            backwards,
            deleted,
        };
        logs.list(t, "p", range, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(None, false, false).await, [1, 4, 6]);
    assert_eq!(list(None, false, true).await, [1, 3, 4, 6]);
    assert_eq!(list(Some(3), false, false).await, [4, 6]);
    assert_eq!(list(None, true, true).await, [6, 4, 3, 1]);
    assert_eq!(list(Some(4), true, false).await, [1]);
    assert_eq!(logs.purge(t, T0 + 2).await.unwrap(), 1);
    assert_eq!(logs.purge(t, T0 + 2).await.unwrap(), 0);
    let entry = logs.get(t, "p", 4).await.unwrap().unwrap();
    assert_eq!(entry.author.as_deref(), Some("ada"));
    assert_eq!(entry.created_at, T0);
}
