//! Answers that go on: a handler hands the server an [`EventSource`] with its response, and
//! after the head and the first body the server's I/O thread asks the source for more
//! whenever the client has taken what it was given. No thread waits on a stream: a thousand
//! idle streams are a thousand sockets and a thousand cheap polls, and a client that stops
//! reading is dropped by the same write timeout as any other.

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::body::Body;

/// What a streamed answer sends after its first body. Called by the I/O thread, so it must
/// never block.
pub trait EventSource: Send {
    /// The next bytes, when there are any now.
    fn poll(&mut self) -> Poll;
}

/// What a source has.
pub enum Poll {
    /// Send these.
    Ready(Body),
    /// Nothing now; ask again soon.
    Pending,
    /// The stream is over: close the connection.
    End,
}

/// A source as a response carries it; the server takes it out once.
#[derive(Clone)]
pub struct EventStream(Arc<Mutex<Option<Box<dyn EventSource>>>>);

impl EventStream {
    pub fn new(source: impl EventSource + 'static) -> EventStream {
        EventStream(Arc::new(Mutex::new(Some(Box::new(source)))))
    }

    /// The source, for the server; `None` once taken.
    pub(crate) fn take(&self) -> Option<Box<dyn EventSource>> {
        self.0.lock().take()
    }
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventStream")
    }
}
