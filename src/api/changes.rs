//! The change feed (`/cluster/changes?since=SEQ`) and its stream
//! (`/cluster/changes/stream`, Server-Sent Events), both answered from the change log with
//! the documents written when each change was recorded (contract §7).
//!
//! A client reads `/cluster` (whose `sequence` says which snapshot it has), then asks for
//! what changed since, or follows the stream, which resumes after `Last-Event-ID`. A stream
//! holds no thread: the server's I/O thread polls it ([`ChangeStream`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::ApiError;
use super::graph::gone;
use super::params::Params;
use super::ApiState;
use crate::http::{Body, Composed, EventSource, EventStream, Piece, Poll, Request, Response};
use crate::publish::Shared;
use cluster_insight_wire::time::rfc3339_millis;

/// How often an idle stream sends a comment: it keeps proxies from closing the connection,
/// and finds clients that left.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Streams open at once; one more is a 503. Every stream is an open connection, and the
/// server's connections (4,096) must leave room for probes and other clients.
pub(crate) const MAX_STREAMS: usize = 1024;

/// The most changes one feed answer may be asked to hold (`limit=`).
const MAX_LIMIT: u64 = 100_000;

/// What a browser's `EventSource` waits before it reconnects, in milliseconds.
const RETRY_MS: u64 = 2000;

/// `/cluster/changes?since=SEQ[&limit=N]`: every change published after snapshot SEQ (the
/// first N), oldest first: `{"success":true,"timestamp":…,"since":SEQ,"sequence":LAST,
/// "more":…,"changes":[…]}`.
pub(super) fn feed(state: &ApiState, request: &Request) -> Result<Response, ApiError> {
    let params = Params::of(request, &["since", "limit"])?;
    let limit = params.number("limit", 1..=MAX_LIMIT)?;
    let since = params.number("since", 0..=u64::MAX)?.ok_or_else(|| {
        ApiError::BadParameter(
            "since=SEQUENCE is required: the sequence of the /cluster answer (or change) you \
             have"
                .into(),
        )
    })?;
    let snapshot = state.shared.current().ok_or(ApiError::NoSnapshotYet)?;
    let changes = state.shared.changes().since(since).map_err(gone)?;
    // Only what the published snapshot has: a change recorded a moment before its snapshot
    // is swapped in comes with the next ask.
    let mut changes: Vec<_> = changes
        .into_iter()
        .filter(|c| c.sequence <= snapshot.sequence)
        .collect();
    // A client far behind may take the chain a page at a time: `more` says there is more
    // after `sequence`.
    let more = limit.is_some_and(|limit| changes.len() as u64 > limit);
    if let Some(limit) = limit {
        changes.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    let latest = changes.last().map_or(since, |c| c.sequence);
    let mut body = Composed::default();
    body.push(Piece::owned(format!(
        "{{\"success\":true,\"timestamp\":\"{}\",\"since\":{since},\"sequence\":{latest},\"more\":{more},\"changes\":[",
        rfc3339_millis(snapshot.timestamp_ms)
    ).into_bytes()));
    for (i, change) in changes.iter().enumerate() {
        if i > 0 {
            body.push(Piece::owned(b",".to_vec()));
        }
        body.extend(&change.document);
    }
    body.push(Piece::owned(b"]}".to_vec()));
    let body = Body::Composed(Arc::new(body));
    let response = if super::accepts_gzip(request.header("Accept-Encoding")) {
        Response::new(200, super::JSON, Body::Owned(body.gzip()))
            .with_header("Content-Encoding", "gzip")
    } else {
        Response::new(200, super::JSON, body)
    };
    Ok(response
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-cache"))
}

/// `/cluster/changes/stream`: an event per published snapshot from now on (`event: change`,
/// `id: SEQUENCE`, the change document as data). With `Last-Event-ID` (or `since=`) the
/// log still has, it goes on from there; otherwise it starts with an `event: sync` naming
/// the current snapshot (`"reset": true` when the client's place was lost), which a client
/// that has no graph, or lost its place, reads from `/cluster` before applying changes
/// after it.
pub(super) fn stream(state: &ApiState, request: &Request) -> Result<Response, ApiError> {
    let params = Params::of(request, &["since"])?;
    let since = params.number("since", 0..=u64::MAX)?;
    let snapshot = state.shared.current().ok_or(ApiError::NoSnapshotYet)?;
    // A browser reconnecting sends the last id it saw; a wrong one is a lost place.
    let last_event = request
        .header("Last-Event-ID")
        .map(|v| v.trim().parse::<u64>().ok());
    let resume = match last_event {
        Some(parsed) => parsed,
        None => since,
    };
    let resumes = resume.filter(|&s| s <= snapshot.sequence && state.shared.changes().holds(s));
    let mut first = format!("retry: {RETRY_MS}\n\n");
    let cursor = match resumes {
        Some(s) => s,
        None => {
            let reset = last_event.is_some() || since.is_some();
            first.push_str(&sync_event(snapshot.sequence, snapshot.timestamp_ms, reset));
            snapshot.sequence
        }
    };
    let open = state.streams.fetch_add(1, Ordering::SeqCst);
    if open >= MAX_STREAMS {
        state.streams.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::Busy(format!(
            "{MAX_STREAMS} change streams are open already; poll /cluster/changes instead"
        )));
    }
    let source = ChangeStream {
        shared: Arc::clone(&state.shared),
        cursor,
        last_sent: Instant::now(),
        ended: false,
        open: Arc::clone(&state.streams),
    };
    Ok(
        Response::new(200, "text/event-stream", Body::Owned(first.into_bytes()))
            .with_header("Cache-Control", "no-cache")
            // Proxies that buffer answers (nginx) pass this one on as it comes.
            .with_header("X-Accel-Buffering", "no")
            .with_stream(EventStream::new(source)),
    )
}

fn sync_event(sequence: u64, timestamp_ms: i64, reset: bool) -> String {
    format!(
        "id: {sequence}\nevent: sync\ndata: {{\"sequence\":{sequence},\"timestamp\":\"{}\",\"reset\":{reset}}}\n\n",
        rfc3339_millis(timestamp_ms)
    )
}

/// One stream client's place in the log: the sequence it has. Polled by the server's I/O
/// thread: an atomic load while nothing is new.
struct ChangeStream {
    shared: Arc<Shared>,
    cursor: u64,
    last_sent: Instant,
    /// The log forgot the client's place: after the `sync` that says so, the stream ends.
    ended: bool,
    /// The count of open streams, which this one is in while it lives.
    open: Arc<AtomicUsize>,
}

impl Drop for ChangeStream {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EventSource for ChangeStream {
    fn poll(&mut self) -> Poll {
        if self.ended {
            return Poll::End;
        }
        if self.shared.latest_sequence() > self.cursor {
            // The I/O thread never waits: with the log being written, ask again next turn.
            let Some(log) = self.shared.try_changes() else {
                return Poll::Pending;
            };
            let next = log.next_after(self.cursor);
            drop(log);
            match next {
                Ok(Some(change)) => {
                    self.cursor = change.sequence;
                    self.last_sent = Instant::now();
                    return Poll::Ready(change.event.clone());
                }
                Ok(None) => {}
                // A client so slow the history moved past it: it must read the graph again.
                Err(_) => {
                    self.ended = true;
                    let latest = self.shared.latest_sequence();
                    let timestamp = self.shared.current().map_or(0, |s| s.timestamp_ms);
                    return Poll::Ready(Body::Owned(
                        sync_event(latest, timestamp, true).into_bytes(),
                    ));
                }
            }
        }
        if self.last_sent.elapsed() >= KEEP_ALIVE {
            self.last_sent = Instant::now();
            return Poll::Ready(Body::Shared(Arc::from(&b": keep-alive\n\n"[..])));
        }
        Poll::Pending
    }
}
