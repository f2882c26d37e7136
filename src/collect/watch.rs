//! Each listed kind kept up to date by one list, then a watch, on a thread of its own: the
//! objects are held here, changed event by event, and the collector takes a copy when it
//! builds. A watch that ends (the API server's timeout) is resumed from the last version
//! seen, bookmarks included; one that is cut, hangs past its timeout or sends what cannot be
//! read is resumed the same way, or listed again when an event may have been lost; a 410
//! (the version is older than the server keeps) lists again, and so does a list that
//! skipped objects it could not read, after a while. Failures after the first back off from
//! one second to eight. Every restart is counted by reason, for `/status` and
//! `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::kube::{KubeClient, KubeError};
use super::{fetch_list, objects, ListError, Listed};
use crate::graph::observed::KubeObject;
use crate::graph::Kind;

/// How long one watch lasts before the API server ends it and it is resumed.
const WATCH_FOR: Duration = Duration::from_secs(120);
/// A watch open this long was accepted and held by the server, whatever it brought.
const LASTED: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// A list that skipped objects it could not read is listed again this long after.
const RELIST_INCOMPLETE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

/// Why a watch started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Restart {
    /// The server ended it at its timeout: resumed, nothing lost.
    Ended,
    /// 410: the version was older than the server keeps; listed again.
    Expired,
    /// The connection dropped between events, or went silent past the watch's timeout;
    /// resumed.
    Dropped,
    /// Cut off in the middle of an event; resumed.
    Cut,
    /// An event that could not be read; listed again, since it may have been a change.
    Malformed,
    /// The server refused the watch or sent an error event; tried again after a pause.
    Failed,
    /// The last list skipped objects it could not read; listed again in case they can be
    /// read now.
    Incomplete,
}

impl Restart {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Restart::Ended => "ended",
            Restart::Expired => "expired",
            Restart::Dropped => "dropped",
            Restart::Cut => "cut",
            Restart::Malformed => "malformed",
            Restart::Failed => "failed",
            Restart::Incomplete => "incomplete",
        }
    }
}

/// What one kind's watch holds.
#[derive(Default)]
struct KindState {
    objects: BTreeMap<(String, String), Arc<KubeObject>>,
    /// Listed at least once.
    synced: bool,
    /// The last failure, while it lasts.
    error: Option<ListError>,
    /// Pages listed and events applied since the collector last read.
    pages: usize,
    events: u64,
    /// Every restart so far, by reason.
    restarts: BTreeMap<Restart, u64>,
    resource_version: String,
    /// Events applied since the start.
    events_total: u64,
    /// When to list again, because the last list skipped objects.
    relist_at: Option<std::time::Instant>,
}

/// What the collector reads of one kind.
pub(crate) struct Reading {
    /// Sorted by namespace and name, as lists are.
    pub(crate) objects: Vec<Arc<KubeObject>>,
    pub(crate) synced: bool,
    pub(crate) error: Option<ListError>,
    pub(crate) pages: usize,
    pub(crate) events: u64,
    pub(crate) status: WatchStatus,
}

/// A kind's watch, for `/status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct WatchStatus {
    pub(crate) resource_version: String,
    pub(crate) events: u64,
    pub(crate) restarts: BTreeMap<&'static str, u64>,
}

struct Watched {
    state: Arc<Mutex<KindState>>,
    _thread: JoinHandle<()>,
}

/// Every listed kind's watch.
pub(crate) struct Watches {
    client: KubeClient,
    show_env: bool,
    /// How often a kind this server does not serve (404), or the master may not list (403),
    /// is asked again.
    absent_retry: Duration,
    kinds: HashMap<Kind, Watched>,
    changed_tx: Sender<()>,
    changed_rx: Receiver<()>,
    stop: Arc<AtomicBool>,
    /// Bumped by every change of any kind's objects or state.
    generation: Arc<AtomicU64>,
    /// When the oldest change not yet taken came.
    waiting: Waiting,
}

/// When the oldest change no build has taken yet came: milliseconds after `epoch`, plus
/// one (zero: none waits).
#[derive(Clone)]
struct Waiting {
    epoch: Instant,
    since: Arc<AtomicU64>,
}

impl Waiting {
    fn new() -> Waiting {
        Waiting {
            epoch: Instant::now(),
            since: Arc::new(AtomicU64::new(0)),
        }
    }

    fn came(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let _ = self
            .since
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
    }

    fn waited(&self) -> Duration {
        match self.since.load(Ordering::SeqCst) {
            0 => Duration::ZERO,
            since => self
                .epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(since - 1)),
        }
    }
}

impl Watches {
    pub(crate) fn new(client: KubeClient, show_env: bool, absent_retry: Duration) -> Watches {
        let (changed_tx, changed_rx) = crossbeam_channel::bounded(1);
        Watches {
            client,
            show_env,
            absent_retry,
            kinds: HashMap::new(),
            changed_tx,
            changed_rx,
            stop: Arc::new(AtomicBool::new(false)),
            generation: Arc::new(AtomicU64::new(0)),
            waiting: Waiting::new(),
        }
    }

    /// Changes so far, of any kind: equal numbers, nothing changed in between. Taken by a
    /// build before it reads the watches: what comes after waits for the next build.
    pub(crate) fn take_generation(&self) -> u64 {
        self.waiting.since.store(0, Ordering::SeqCst);
        self.generation.load(Ordering::SeqCst)
    }

    /// How long the oldest change no build has taken yet has waited.
    pub(crate) fn waited(&self) -> Duration {
        self.waiting.waited()
    }

    /// Starts the watch of every listed kind that has none (kinds named by discovery join
    /// the table later).
    pub(crate) fn ensure(&mut self) {
        for kind in Kind::listed() {
            if self.kinds.contains_key(&kind) {
                continue;
            }
            let state = Arc::new(Mutex::new(KindState::default()));
            let worker = Worker {
                client: self.client.clone(),
                kind,
                show_env: self.show_env,
                absent_retry: self.absent_retry,
                state: Arc::clone(&state),
                changed: self.changed_tx.clone(),
                stop: Arc::clone(&self.stop),
                generation: Arc::clone(&self.generation),
                waiting: self.waiting.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("watch-{}", kind.info().plural))
                .spawn(move || worker.run());
            match thread {
                Ok(thread) => {
                    self.kinds.insert(
                        kind,
                        Watched {
                            state,
                            _thread: thread,
                        },
                    );
                }
                Err(e) => log::error!("cannot start the watch of {kind}: {e}"),
            }
        }
    }

    /// Whether `kind` has been listed, and whether its watch is failing now.
    pub(crate) fn peek(&self, kind: Kind) -> Option<(bool, bool)> {
        let state = self.kinds.get(&kind)?.state.lock();
        Some((state.synced, state.error.is_some()))
    }

    /// Signalled (at most one pending) when any kind has changed.
    pub(crate) fn changed(&self) -> &Receiver<()> {
        &self.changed_rx
    }

    /// A copy of what `kind`'s watch holds, and what happened since the last reading.
    pub(crate) fn read(&self, kind: Kind) -> Option<Reading> {
        let watched = self.kinds.get(&kind)?;
        let mut state = watched.state.lock();
        let reading = Reading {
            objects: state.objects.values().cloned().collect(),
            synced: state.synced,
            error: state.error.clone(),
            pages: std::mem::take(&mut state.pages),
            events: std::mem::take(&mut state.events),
            status: WatchStatus {
                resource_version: state.resource_version.clone(),
                events: state.events_total,
                restarts: state.restarts.iter().map(|(r, n)| (r.name(), *n)).collect(),
            },
        };
        Some(reading)
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        // The threads end at their next event, bookmark or timeout.
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct Worker {
    client: KubeClient,
    kind: Kind,
    show_env: bool,
    absent_retry: Duration,
    state: Arc<Mutex<KindState>>,
    changed: Sender<()>,
    stop: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    waiting: Waiting,
}

/// How a watch ended.
enum Outcome {
    Resume(Restart),
    Relist(Restart),
    Stopped,
}

impl Worker {
    /// Runs the kind's list and watches until stopped; a panic is a failure of the kind,
    /// reported, and the loop starts again after a pause.
    fn run(&self) {
        loop {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.follow()));
            if outcome.is_ok() || self.stop.load(Ordering::SeqCst) {
                return;
            }
            log::error!(
                "the watch of {} panicked; starting it again",
                self.kind.info().plural
            );
            self.fail(ListError {
                message: format!(
                    "the watch of {} failed with a panic",
                    self.kind.info().plural
                ),
                status: None,
            });
            let mut wait = BACKOFF_MAX;
            if !self.pause(&mut wait) {
                return;
            }
        }
    }

    fn follow(&self) {
        let Some(path) = self.kind.list_path() else {
            return;
        };
        let mut version: Option<String> = None;
        // The first failure after a watch that brought something is tried again at once (a
        // dropped connection, an expired version); the next ones wait, longer each time.
        let mut backoff = Duration::ZERO;
        // Watches in a row that brought nothing: a server that ends every watch at once.
        let mut empty_watches = 0u32;
        while !self.stop.load(Ordering::SeqCst) {
            let from = match version.take() {
                Some(v) => v,
                None => match self.list() {
                    Ok(v) => v,
                    Err(e) => {
                        // A kind this server does not serve, or the master may not list, is
                        // asked again seldom; a failure is said when it changes.
                        let absent =
                            matches!(e.status, Some(403 | 404)) && !self.state.lock().synced;
                        if self.fail(e.clone()) {
                            log::warn!("Kubernetes API: {}", e.message);
                        }
                        let waited = if absent {
                            self.sleep(self.absent_retry)
                        } else {
                            self.pause(&mut backoff)
                        };
                        if !waited {
                            return;
                        }
                        continue;
                    }
                },
            };
            let started = std::time::Instant::now();
            let (outcome, received) = self.watch(&path, &from);
            // A watch that lasted is well even if it brought nothing: a quiet kind on a
            // server that sends no bookmarks.
            let received = received || started.elapsed() >= LASTED;
            if received {
                backoff = Duration::ZERO;
                empty_watches = 0;
            } else {
                empty_watches += 1;
                let failing = match outcome {
                    // Cut in an event, garbage or an error before anything could be read:
                    // the server is failing. (A connection dropped between events is not.)
                    Outcome::Resume(Restart::Cut)
                    | Outcome::Relist(Restart::Malformed | Restart::Failed) => true,
                    Outcome::Resume(Restart::Dropped | Restart::Ended) => empty_watches >= 3,
                    _ => false,
                };
                if failing && self.state.lock().error.is_none() {
                    self.fail(ListError {
                        message: format!(
                            "watch {path}: no event could be read ({} in a row)",
                            empty_watches
                        ),
                        status: None,
                    });
                }
            }
            match outcome {
                Outcome::Stopped => return,
                Outcome::Resume(reason) => {
                    self.count(reason);
                    let at = self.state.lock().resource_version.clone();
                    version = Some(if at.is_empty() { from } else { at });
                    // A watch that lasted its time and brought something is resumed at once;
                    // any other waits its turn.
                    let at_once = reason == Restart::Ended && received;
                    if !at_once && !self.pause(&mut backoff) {
                        return;
                    }
                }
                Outcome::Relist(reason) => {
                    self.count(reason);
                    if !self.pause(&mut backoff) {
                        return;
                    }
                }
            }
            // Never two watches within a second, whatever the server does.
            let gap = Duration::from_secs(1).saturating_sub(started.elapsed());
            if !self.sleep(gap) {
                return;
            }
        }
    }

    /// Waits `backoff` (then sets the next: the first wait is none, then one second,
    /// doubling up to [`BACKOFF_MAX`]); false when stopped meanwhile.
    fn pause(&self, backoff: &mut Duration) -> bool {
        let wait = *backoff;
        *backoff = if backoff.is_zero() {
            BACKOFF_FIRST
        } else {
            (*backoff * 2).min(BACKOFF_MAX)
        };
        self.sleep(wait)
    }

    /// Waits `time`; false when stopped meanwhile.
    fn sleep(&self, time: Duration) -> bool {
        let until = std::time::Instant::now() + time;
        while std::time::Instant::now() < until {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        !self.stop.load(Ordering::SeqCst)
    }

    fn count(&self, reason: Restart) {
        *self.state.lock().restarts.entry(reason).or_default() += 1;
        if reason != Restart::Ended {
            log::info!(
                "watch of {}: {}; starting again",
                self.kind.info().plural,
                reason.name()
            );
        }
    }

    fn notify(&self) {
        self.waiting.came();
        self.generation.fetch_add(1, Ordering::SeqCst);
        let _ = self.changed.try_send(());
    }

    /// Records the kind's failure; signals (and says true) only when it is a new one.
    fn fail(&self, error: ListError) -> bool {
        let mut state = self.state.lock();
        let new = state.error.as_ref().map(|old| &old.message) != Some(&error.message);
        state.error = Some(error);
        drop(state);
        if new {
            self.notify();
        }
        new
    }

    /// Lists the kind, replacing what is held; the list's version.
    fn list(&self) -> Result<String, ListError> {
        let last: Vec<Arc<KubeObject>> = self.state.lock().objects.values().cloned().collect();
        let Listed {
            items,
            pages,
            resource_version: version,
            skipped,
        } = fetch_list(&self.client, self.kind, Some(&last), self.show_env)?;
        let mut state = self.state.lock();
        state.relist_at = (skipped > 0).then(|| std::time::Instant::now() + RELIST_INCOMPLETE);
        state.objects = items
            .into_iter()
            .map(|o| ((o.meta.namespace.clone(), o.meta.name.clone()), o))
            .collect();
        state.synced = true;
        state.error = None;
        state.pages += pages;
        let version = version.unwrap_or_default();
        state.resource_version = version.clone();
        drop(state);
        self.notify();
        Ok(version)
    }

    /// Follows one watch from `version` to its end; whether it brought anything (an event
    /// or a bookmark), which says the server is well again.
    fn watch(&self, path: &str, version: &str) -> (Outcome, bool) {
        let opened = std::time::Instant::now();
        let mut stream = match self.client.watch(path, version, WATCH_FOR) {
            Ok(stream) => stream,
            Err(KubeError::Status { code: 410, .. }) => {
                return (Outcome::Relist(Restart::Expired), false)
            }
            Err(e) => {
                let status = match &e {
                    KubeError::Status { code, .. } => Some(*code),
                    _ => None,
                };
                self.fail(ListError {
                    message: format!("watch {path}: {}", crate::report::chain(&e)),
                    status,
                });
                return (Outcome::Resume(Restart::Failed), false);
            }
        };
        let mut received = false;
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return (Outcome::Stopped, received);
            }
            let text = match stream.next_event() {
                Ok(Some(text)) => text,
                // A server that ends every watch at once would have us ask again and again.
                Ok(None) if !received && opened.elapsed() < Duration::from_secs(1) => {
                    return (Outcome::Resume(Restart::Dropped), false)
                }
                Ok(None) => return (Outcome::Resume(Restart::Ended), received),
                Err(KubeError::Parse(e)) if e.what == "watch stream" => {
                    let why = if e.detail.starts_with("dropped") {
                        Restart::Dropped
                    } else {
                        Restart::Cut
                    };
                    return (Outcome::Resume(why), received);
                }
                Err(_) => return (Outcome::Relist(Restart::Malformed), received),
            };
            let relist_due = self
                .state
                .lock()
                .relist_at
                .is_some_and(|at| std::time::Instant::now() >= at);
            if relist_due {
                return (Outcome::Relist(Restart::Incomplete), true);
            }
            let outcome = match self.apply(&text) {
                Applied::Change | Applied::Version => {
                    received = true;
                    // Watching again: what failed before is over.
                    if self.state.lock().error.take().is_some() {
                        self.notify();
                    }
                    continue;
                }
                Applied::Expired => Outcome::Relist(Restart::Expired),
                Applied::ErrorEvent(message) => {
                    self.fail(ListError {
                        message: format!("watch {path}: {message}"),
                        status: None,
                    });
                    Outcome::Relist(Restart::Failed)
                }
                Applied::Unreadable(why) => {
                    log::warn!("watch {path}: {why}");
                    Outcome::Relist(Restart::Malformed)
                }
            };
            return (outcome, true);
        }
    }

    /// Applies one event to what is held.
    fn apply(&self, text: &str) -> Applied {
        let event = match parse_event(text) {
            Ok(event) => event,
            Err(why) => return Applied::Unreadable(why),
        };
        match event.kind {
            EventKind::Bookmark => {
                self.state.lock().resource_version = event.version;
                Applied::Version
            }
            EventKind::Error { code, message } => {
                if code == Some(410) {
                    Applied::Expired
                } else {
                    Applied::ErrorEvent(message)
                }
            }
            EventKind::Deleted => {
                let mut state = self.state.lock();
                state.objects.remove(&(event.namespace, event.name));
                state.resource_version = event.version;
                state.events += 1;
                state.events_total += 1;
                drop(state);
                self.notify();
                Applied::Change
            }
            EventKind::Upsert => {
                let parsed = objects::parse_object(self.kind, event.object);
                let object = match parsed {
                    Ok(o) if self.show_env => o,
                    Ok(o) => objects::without_secrets(o),
                    Err(e) => {
                        // As a list skips an object it cannot read, so does its watch, and
                        // the kind is listed again after a while.
                        log::warn!(
                            "watch of {}: skipping an object: {e}",
                            self.kind.info().plural
                        );
                        let mut state = self.state.lock();
                        state.objects.remove(&(event.namespace, event.name));
                        state.resource_version = event.version;
                        state
                            .relist_at
                            .get_or_insert(std::time::Instant::now() + RELIST_INCOMPLETE);
                        drop(state);
                        self.notify();
                        return Applied::Version;
                    }
                };
                let mut state = self.state.lock();
                state.objects.insert(
                    (object.meta.namespace.clone(), object.meta.name.clone()),
                    Arc::new(object),
                );
                state.resource_version = event.version;
                state.error = None;
                state.events += 1;
                state.events_total += 1;
                drop(state);
                self.notify();
                Applied::Change
            }
        }
    }
}

enum Applied {
    Change,
    Version,
    Expired,
    ErrorEvent(String),
    Unreadable(String),
}

/// One watch event, as far as keeping a list goes.
pub struct WatchEvent<'a> {
    pub kind: EventKind,
    pub namespace: String,
    pub name: String,
    /// The object's `resourceVersion`: where to resume after it.
    pub version: String,
    pub object: &'a RawValue,
}

#[derive(Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `ADDED` or `MODIFIED`.
    Upsert,
    Deleted,
    Bookmark,
    /// An `ERROR` event's Status.
    Error {
        code: Option<u16>,
        message: String,
    },
}

/// Reads a watch event (`{"type": …, "object": …}`).
pub fn parse_event(text: &str) -> Result<WatchEvent<'_>, String> {
    #[derive(Deserialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: String,
        #[serde(borrow)]
        object: &'a RawValue,
    }
    #[derive(Deserialize, Default)]
    struct Meta {
        #[serde(default)]
        namespace: String,
        #[serde(default)]
        name: String,
        #[serde(default, rename = "resourceVersion")]
        resource_version: String,
    }
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Option<Meta>,
        code: Option<u16>,
        message: Option<String>,
    }
    let event: Event = serde_json::from_str(text.trim())
        .map_err(|e| format!("an event that is not a watch event ({e})"))?;
    let object: Object = serde_json::from_str(event.object.get())
        .map_err(|e| format!("a {} event whose object is not an object ({e})", event.kind))?;
    let meta = object.metadata.unwrap_or_default();
    let kind = match event.kind.as_str() {
        "ADDED" | "MODIFIED" => EventKind::Upsert,
        "DELETED" => EventKind::Deleted,
        "BOOKMARK" => EventKind::Bookmark,
        "ERROR" => EventKind::Error {
            code: object.code,
            message: object.message.unwrap_or_default(),
        },
        other => return Err(format!("an event of unknown type {other:?}")),
    };
    if matches!(kind, EventKind::Upsert | EventKind::Deleted) && meta.name.is_empty() {
        return Err(format!(
            "a {} event for an object without a name",
            event.kind
        ));
    }
    if matches!(kind, EventKind::Bookmark) && meta.resource_version.is_empty() {
        return Err("a bookmark without a resourceVersion".to_string());
    }
    Ok(WatchEvent {
        kind,
        namespace: meta.namespace,
        name: meta.name,
        version: meta.resource_version,
        object: event.object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_counted_from_the_first_change_no_build_took() {
        let waiting = Waiting::new();
        assert_eq!(waiting.waited(), Duration::ZERO, "nothing waits");
        waiting.came();
        std::thread::sleep(Duration::from_millis(30));
        waiting.came();
        let waited = waiting.waited();
        assert!(
            waited >= Duration::from_millis(29),
            "from the first: {waited:?}"
        );
        // A build takes what came.
        waiting.since.store(0, Ordering::SeqCst);
        assert_eq!(waiting.waited(), Duration::ZERO);
        waiting.came();
        assert!(waiting.waited() < Duration::from_millis(29));
    }

    #[test]
    fn events_of_every_type_are_read() {
        let added = parse_event(
            r#"{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a","namespace":"ns","resourceVersion":"7"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                added.kind,
                added.namespace.as_str(),
                added.name.as_str(),
                added.version.as_str()
            ),
            (EventKind::Upsert, "ns", "a", "7")
        );
        let bookmark = parse_event(
            r#"{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#,
        )
        .unwrap();
        assert_eq!(
            (bookmark.kind, bookmark.version.as_str()),
            (EventKind::Bookmark, "12")
        );
        let gone = parse_event(
            r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
        )
        .unwrap();
        assert_eq!(
            gone.kind,
            EventKind::Error {
                code: Some(410),
                message: "too old resource version: 1 (5)".to_string()
            }
        );
    }

    #[test]
    fn what_cannot_be_an_event_says_why() {
        for (text, expected) in [
            ("<html>", "not a watch event"),
            (r#"{"type":"ADDED","object":[1]}"#, "not an object"),
            (r#"{"type":"RESYNC","object":{}}"#, "unknown type"),
            (
                r#"{"type":"DELETED","object":{"metadata":{}}}"#,
                "without a name",
            ),
            (
                r#"{"type":"BOOKMARK","object":{"metadata":{}}}"#,
                "without a resourceVersion",
            ),
        ] {
            let why = parse_event(text).err().unwrap();
            assert!(why.contains(expected), "{text}: {why}");
        }
    }
}
