//! Live delivery: one background task per instance reads new events from the database and fans
//! them out to this instance's subscribers through a broadcast channel.
//!
//! The task runs only while someone listens: the first subscriber starts it, and it stops once the
//! last one has gone. It reads `seq > last` when this instance commits a write with events (woken
//! by [`Live::wrote`], so a local event is pushed at once) and otherwise every `EVENTS_POLL_MS`
//! (250 ms by default), which is how writes of other instances sharing the database arrive. It
//! sends what it read as a [`Batch`] covering a range of numbers `(after, upto]`.
//!
//! A subscriber never relies on having seen every batch: it keeps the number up to which it has
//! considered the feed, and a batch that starts past it (it subscribed while a read was under way,
//! or it fell behind and the channel dropped batches for it) makes it read the gap from the
//! database first. So it misses nothing and delivers nothing twice.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{broadcast, Notify};

use super::feed;
use super::Event;
use crate::domain::events::EventCursor;
use crate::domain::ValidationError;
use crate::error::{AppError, AppResult};

/// Batches the channel holds for a slow subscriber before it must catch up from the database.
const CHANNEL_BATCHES: usize = 256;
/// Events the task reads at once, and a subscriber catching up.
const READ_PAGE: u64 = 500;

/// Every event with a number in `(after, upto]`.
#[derive(Debug)]
pub struct Batch {
    pub after: EventCursor,
    pub upto: EventCursor,
    pub events: Vec<Event>,
}

type Slot = Arc<Mutex<Option<broadcast::Sender<Arc<Batch>>>>>;

/// This instance's live feed (in `AppState`).
pub struct Live {
    slot: Slot,
    wake: Arc<Notify>,
    poll: Duration,
}

impl Live {
    pub fn new(poll: Duration) -> Live {
        Live { slot: Default::default(), wake: Default::default(), poll }
    }

    /// What wakes the feed's task: the catalog generation's watch holds it too, so a write that
    /// another instance announced (PostgreSQL NOTIFY) is read at once rather than at the next poll.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// This instance committed events: read them now rather than at the next poll.
    pub fn wrote(&self) {
        self.wake.notify_one();
    }

    /// A receiver of every batch from now on, starting the task if none runs.
    fn receiver(&self, db: &DatabaseConnection) -> broadcast::Receiver<Arc<Batch>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = slot.as_ref() {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(CHANNEL_BATCHES);
        *slot = Some(tx.clone());
        tokio::spawn(run(db.clone(), tx, self.slot.clone(), self.wake.clone(), self.poll));
        rx
    }
}

async fn run(db: DatabaseConnection, tx: broadcast::Sender<Arc<Batch>>, slot: Slot, wake: Arc<Notify>, poll: Duration) {
    tracing::debug!("live event feed started");
    // Where the feed is now; subscribers that started before this read catch up through the empty
    // batch announcing it.
    let mut last = loop {
        match feed::head(&db).await {
            Ok(head) => break head,
            Err(e) => {
                tracing::warn!(error = %e, "live event feed: cannot read the head; retrying");
                tokio::time::sleep(poll.max(Duration::from_millis(100))).await;
            }
        }
    };
    let _ = tx.send(Arc::new(Batch { after: last, upto: last, events: Vec::new() }));
    loop {
        {
            // Under the lock that `receiver` takes: no subscriber can join a task about to stop.
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            if tx.receiver_count() == 0 {
                *slot = None;
                tracing::debug!("live event feed stopped: no subscribers");
                return;
            }
        }
        match feed::read(&db, last, None, READ_PAGE, None).await {
            Ok(events) => {
                if let Some(newest) = events.last().map(|e| e.cursor) {
                    let full = events.len() as u64 == READ_PAGE;
                    let _ = tx.send(Arc::new(Batch { after: last, upto: newest, events }));
                    last = newest;
                    if full {
                        continue;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "live event feed: read failed; retrying"),
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One subscriber: the events after its starting point, then live, in order, each once.
pub struct Subscriber {
    db: DatabaseConnection,
    rx: broadcast::Receiver<Arc<Batch>>,
    /// Every event numbered up to this one has been delivered or filtered out.
    last: EventCursor,
    package: Option<String>,
    pending: VecDeque<Event>,
    /// Reading the database from `last`: up to this number, or to the end (a replay).
    catching_up: Option<Option<EventCursor>>,
    /// A batch to apply once caught up.
    held: Option<Arc<Batch>>,
}

impl Subscriber {
    /// Subscribes on `state`'s instance: after `after` (a replay first, refused when it would be
    /// longer than `replay_max` events), or from now on.
    pub async fn start(
        state: &crate::state::AppState,
        after: Option<EventCursor>,
        package: Option<String>,
        replay_max: u64,
    ) -> AppResult<Subscriber> {
        // First the receiver, then the database: whatever commits in between is in both, and the
        // cursor check drops the second copy.
        let rx = state.events.receiver(&state.db);
        let (last, catching_up) = match after {
            Some(after) => {
                if feed::more_than(&state.db, after, package.as_deref(), replay_max).await? {
                    return Err(ValidationError::new(
                        "after",
                        format!(
                            "more than {replay_max} events follow `after`: read them with the `events` query \
                             (or GET /api/v1/events) first, then subscribe after the last cursor it returned"
                        ),
                    )
                    .into());
                }
                (after, Some(None))
            }
            None => (feed::head(&state.db).await?, None),
        };
        Ok(Subscriber { db: state.db.clone(), rx, last, package, pending: VecDeque::new(), catching_up, held: None })
    }

    fn wanted(&self, e: &Event) -> bool {
        e.cursor > self.last && self.package.as_deref().is_none_or(|p| p == e.package)
    }

    /// The next event, waiting for one.
    pub async fn next(&mut self) -> AppResult<Event> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(e);
            }
            if let Some(upto) = self.catching_up {
                let events = feed::read(&self.db, self.last, upto, READ_PAGE, self.package.as_deref()).await?;
                let done = (events.len() as u64) < READ_PAGE;
                if let Some(newest) = events.last() {
                    self.last = newest.cursor;
                }
                self.pending.extend(events);
                if done {
                    self.catching_up = None;
                    if let Some(upto) = upto {
                        self.last = self.last.max(upto);
                    }
                }
                continue;
            }
            if let Some(batch) = self.held.take() {
                let fresh: Vec<Event> = batch.events.iter().filter(|e| self.wanted(e)).cloned().collect();
                self.pending.extend(fresh);
                self.last = self.last.max(batch.upto);
                continue;
            }
            match self.rx.recv().await {
                Ok(batch) => {
                    if batch.after > self.last {
                        // A gap: read it from the database before this batch.
                        self.catching_up = Some(Some(batch.after));
                    }
                    self.held = Some(batch);
                }
                // The batches still in the channel start past `last`: the next one fills the gap.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "event subscriber fell behind; catching up from the database");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(AppError::Unavailable(
                        "the live event feed stopped; subscribe again with `after`".into(),
                    ))
                }
            }
        }
    }
}
