//! Group commit: the writes waiting for the writer connection share one
//! transaction and one commit (one flush to disk).
//!
//! A write is queued as a [`Job`]. The first write that finds no leader
//! running becomes the leader: on a blocking thread, it takes every job
//! waiting (up to [`MAX_GROUP`]), opens one `BEGIN IMMEDIATE` transaction,
//! runs each job inside a savepoint of its own, commits once, publishes the
//! changes in commit order, and only then answers each job. While it
//! commits (an fsync with `synchronous = FULL`), the next writes queue up
//! and form the next group; when the queue is empty the leader stops.
//!
//! What each write keeps:
//!
//! - its check sees every earlier write of its group (same transaction),
//!   and the database's write lock is held from before the first check to
//!   the commit, as for a write alone;
//! - a write that fails is rolled back to its savepoint: the others of its
//!   group go on;
//! - it is answered only after the commit that holds it returned (durable
//!   at the configured `synchronous`), and if that commit fails, every
//!   write of the group fails with nothing changed;
//! - its deadline: a job still queued at its caller's deadline is cancelled
//!   (the caller gets the timeout error, and the job never runs); a job
//!   whose deadline passes while the group waits for another process's
//!   lock fails with the busy error, the others wait on.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::ops;
use super::Shared;
use crate::backend::ChangeFeed;
use crate::error::{Error, Result};

/// The most writes in one transaction.
const MAX_GROUP: usize = 256;
/// After a group of several writes, how long the leader waits for as many
/// to queue again before it starts the next group. Their callers were
/// answered a moment ago and are about to send their next writes; without
/// the pause the next group would be one write, and the one after it the
/// rest (groups alternating 1 and n-1).
const LINGER: Duration = Duration::from_micros(200);

/// A queued write, type-erased.
pub(super) trait Job: Send {
    /// The caller's deadline.
    fn deadline(&self) -> Instant;
    /// Marks the job as started; `false` when its caller gave up first.
    fn claim(&self) -> bool;
    /// Runs the write on `conn`, inside the group's transaction; `false`
    /// when it failed (its changes must then be rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Publishes what the write changed (after the commit).
    fn publish(&mut self, feed: &ChangeFeed);
    /// The caller's answer: the job's own result, or `failure` when the
    /// job could not complete (deadline, busy, failed commit). Sent by
    /// calling the returned [`Reply`], which the leader does only after it
    /// let go of the backend: a caller that drops the last handle once
    /// answered closes the connections on its own thread, as documented.
    fn answer(self: Box<Self>, shared: &Shared, failure: Option<Failure>) -> Reply;
}

/// An answer ready to be sent to its caller.
pub(super) type Reply = Box<dyn FnOnce() + Send>;

/// Why a job did not complete.
pub(super) enum Failure {
    /// Its deadline passed before it started.
    Late,
    /// Another connection held the write lock until its deadline.
    Busy,
    /// Something failed for the whole group (begin, savepoint, commit).
    Group(String),
}

/// The job of one call: its closure, what it publishes, and its answer.
pub(super) struct Pending<T, F, P> {
    op: &'static str,
    deadline: Instant,
    state: Arc<AtomicU8>,
    run: F,
    publish: Option<P>,
    result: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const CANCELLED: u8 = 2;

/// The caller's side of a queued job.
pub(super) struct Ticket<T> {
    state: Arc<AtomicU8>,
    pub(super) answer: oneshot::Receiver<Result<T>>,
}

impl<T> Ticket<T> {
    /// Withdraws the job if it has not started: `true` when it never will.
    pub(super) fn cancel(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl<T, F, P> Pending<T, F, P>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    P: FnOnce(&T, &ChangeFeed) + Send + 'static,
{
    pub(super) fn new(
        op: &'static str,
        deadline: Instant,
        run: F,
        publish: P,
    ) -> (Self, Ticket<T>) {
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            op,
            deadline,
            state: Arc::clone(&state),
            run,
            publish: Some(publish),
            result: None,
            reply,
        };
        (job, Ticket { state, answer })
    }
}

impl<T, F, P> Job for Pending<T, F, P>
where
    T: Send + 'static,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    P: FnOnce(&T, &ChangeFeed) + Send + 'static,
{
    fn deadline(&self) -> Instant {
        self.deadline
    }

    fn claim(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let result = (self.run)(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn publish(&mut self, feed: &ChangeFeed) {
        if let (Some(Ok(out)), Some(publish)) = (&self.result, self.publish.take()) {
            publish(out, feed);
        }
    }

    fn answer(mut self: Box<Self>, shared: &Shared, failure: Option<Failure>) -> Reply {
        let answer = match failure {
            Some(Failure::Late) => Err(shared.late(self.op, "this process's earlier writes")),
            Some(Failure::Busy) => Err(shared.error(self.op, ops::busy_error())),
            Some(Failure::Group(message)) => Err(Error::backend_msg(format!(
                "SQLite {} on `{}` failed: {message}; nothing was changed",
                self.op,
                shared.path.display()
            ))),
            None => match self.result.take() {
                Some(Ok(out)) => Ok(out),
                Some(Err(e)) => Err(shared.error(self.op, e)),
                None => Err(Error::Internal("a SQLite write was answered unrun".into())),
            },
        };
        let reply = self.reply;
        Box::new(move || {
            // The caller may have stopped waiting: nobody to tell then.
            let _ = reply.send(answer);
        })
    }
}

/// The queue of writes and the writer connection.
pub(super) struct Writer {
    queue: Mutex<Queue>,
    /// Wakes a lingering leader when a write is queued.
    queued: Condvar,
    conn: Mutex<Connection>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A leader is running (it will take whatever is queued).
    leading: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the data consistent (a push, a drain,
    // a flag), so a panic elsewhere does not make it unusable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Writer {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            conn: Mutex::new(conn),
        }
    }

    /// Queues `job`; starts a leader when none is running (on a blocking
    /// thread, or on this thread outside a Tokio runtime).
    pub(super) fn submit(shared: &Arc<Shared>, job: Box<dyn Job>) {
        let lead = {
            let mut queue = lock(&shared.writer.queue);
            queue.jobs.push_back(job);
            let lead = !queue.leading;
            queue.leading = true;
            lead
        };
        if !lead {
            shared.writer.queued.notify_one();
            return;
        }
        let leader = Arc::downgrade(shared);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || lead_groups(leader));
            }
            Err(_) => lead_groups(leader),
        }
    }
}

/// Clears the leader flag if a panic unwinds the leader, so that a later
/// write starts a new one.
struct Leading(Weak<Shared>);

impl Drop for Leading {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(shared) = self.0.upgrade() {
                lock(&shared.writer.queue).leading = false;
            }
        }
    }
}

/// The leader: runs groups until the queue is empty. It holds the backend
/// only while it runs a group, and answers after letting go of it.
fn lead_groups(shared: Weak<Shared>) {
    let _leading = Leading(shared.clone());
    let mut last_group = 0;
    loop {
        // Every queued job's caller holds a handle while it waits: gone,
        // the backend has nobody left to answer.
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let writer = &strong.writer;
        let group: Vec<Box<dyn Job>> = {
            let mut queue = lock(&writer.queue);
            if last_group > 1 && queue.jobs.len() < last_group {
                let until = Instant::now() + LINGER;
                while queue.jobs.len() < last_group {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    queue = writer
                        .queued
                        .wait_timeout(queue, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
            if queue.jobs.is_empty() {
                queue.leading = false;
                return;
            }
            let n = queue.jobs.len().min(MAX_GROUP);
            queue.jobs.drain(..n).collect()
        };
        last_group = group.len();
        let replies = {
            let mut conn = lock(&writer.conn);
            run_group(&strong, &mut conn, group)
        };
        drop(strong);
        for reply in replies {
            reply();
        }
    }
}

/// Runs one group: one transaction, a savepoint per job, one commit; then
/// publishes and answers.
fn run_group(shared: &Shared, conn: &mut Connection, group: Vec<Box<dyn Job>>) -> Vec<Reply> {
    let now = Instant::now();
    let mut replies = Vec::with_capacity(group.len());
    let mut jobs = Vec::with_capacity(group.len());
    for job in group {
        if !job.claim() {
            continue; // its caller gave up and was told so
        }
        if job.deadline() <= now {
            replies.push(job.answer(shared, Some(Failure::Late)));
            continue;
        }
        jobs.push(job);
    }
    // Take the database's write lock, waiting while another connection
    // holds it until the last deadline; jobs whose deadline passes fail.
    loop {
        if jobs.is_empty() {
            return replies;
        }
        match ops::begin(conn) {
            Ok(()) => break,
            Err(e) if ops::is_busy(&e) => {
                let now = Instant::now();
                let (late, waiting): (Vec<_>, Vec<_>) =
                    jobs.into_iter().partition(|j| j.deadline() <= now);
                for job in late {
                    replies.push(job.answer(shared, Some(Failure::Busy)));
                }
                jobs = waiting;
                if let Some(next) = jobs.iter().map(|j| j.deadline()).min() {
                    std::thread::sleep(ops::busy_pause().min(next - now));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs {
                    replies.push(job.answer(shared, Some(Failure::Group(message.clone()))));
                }
                return replies;
            }
        }
    }
    // Each job in a savepoint of its own, so that a failing one is undone
    // alone. A job alone needs none: the transaction is its savepoint.
    let alone = jobs.len() == 1;
    let mut ok = Vec::with_capacity(jobs.len());
    let mut failed = Vec::new();
    let mut broken: Option<String> = None;
    for mut job in jobs {
        if broken.is_some() {
            ok.push(job);
            continue;
        }
        if !alone {
            if let Err(e) = ops::savepoint(conn) {
                broken = Some(e.to_string());
                ok.push(job);
                continue;
            }
        }
        if job.run(conn) {
            if !alone {
                if let Err(e) = ops::release(conn) {
                    broken = Some(e.to_string());
                }
            }
            ok.push(job);
        } else if alone {
            failed.push(job);
        } else {
            if let Err(e) = ops::rollback_to(conn) {
                broken = Some(e.to_string());
            }
            failed.push(job);
        }
    }
    let commit = match broken {
        Some(message) => Err(message),
        None if ok.is_empty() => ops::rollback(conn).map_err(|e| e.to_string()),
        None => ops::commit(conn).map_err(|e| e.to_string()),
    };
    match commit {
        Ok(()) => {
            for job in &mut ok {
                job.publish(&shared.feed);
            }
            for job in ok.into_iter().chain(failed) {
                replies.push(job.answer(shared, None));
            }
        }
        Err(message) => {
            // Nothing of the group is stored: undo whatever is left open.
            let _ = ops::rollback(conn);
            for job in ok {
                replies.push(job.answer(shared, Some(Failure::Group(message.clone()))));
            }
            for job in failed {
                replies.push(job.answer(shared, None));
            }
        }
    }
    replies
}
