//! Response bodies as handlers hand them to the server: empty, owned, shared, or composed of
//! pieces of shared buffers, so that a snapshot's body costs a reference count per request
//! and is copied only into the socket.

use std::sync::Arc;

/// A response body. Snapshot bodies are shared, so that answering a request costs a
/// reference count and the copy into the socket, never a serialization.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// Pieces of shared buffers, written back to back (see [`Composed`]).
    Composed(Arc<Composed>),
}

impl Body {
    pub(crate) fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Owned(bytes) => bytes.len(),
            Body::Shared(bytes) => bytes.len(),
            Body::Composed(c) => c.len(),
        }
    }

    /// The whole body in one buffer (a copy for composed bodies; for tests and small bodies).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_piece(|piece| out.extend_from_slice(piece));
        out
    }

    /// The body gzipped (fast compression): what an answer sends to a client that takes
    /// gzip.
    pub(crate) fn gzip(&self) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(self.len() / 8),
            flate2::Compression::fast(),
        );
        let mut failed = false;
        self.for_each_piece(|piece| failed |= encoder.write_all(piece).is_err());
        // Writing into a Vec cannot fail.
        if failed {
            Vec::new()
        } else {
            encoder.finish().unwrap_or_default()
        }
    }

    /// Calls `f` with each piece of the body in order.
    pub(crate) fn for_each_piece(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Body::Empty => {}
            Body::Owned(bytes) => f(bytes),
            Body::Shared(bytes) => f(bytes),
            Body::Composed(c) => c.pieces.iter().for_each(|p| f(p.bytes())),
        }
    }

    /// The pieces from byte `offset` on, at most `max` of them, into `out`. `hint` remembers
    /// where the previous call ended, so that writing a body in order costs no search.
    pub(crate) fn pieces_from<'a>(
        &'a self,
        offset: usize,
        hint: &mut usize,
        max: usize,
        out: &mut Vec<&'a [u8]>,
    ) {
        match self {
            Body::Empty => {}
            Body::Owned(bytes) => out.extend(bytes.get(offset..).filter(|b| !b.is_empty())),
            Body::Shared(bytes) => out.extend(bytes.get(offset..).filter(|b| !b.is_empty())),
            Body::Composed(c) => c.pieces_from(offset, hint, max, out),
        }
    }
}

/// A body made of ranges of shared buffers: the snapshot's resources keep their observed
/// JSON text once, and every endpoint that shows them refers to that text instead of
/// holding a copy of its own.
#[derive(Debug, Default)]
pub struct Composed {
    pieces: Vec<Piece>,
    /// `starts[i]`: the body offset where piece `i` begins.
    starts: Vec<usize>,
    len: usize,
}

/// Part of a shared buffer.
#[derive(Debug, Clone)]
pub struct Piece {
    owner: Owner,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone)]
enum Owner {
    Bytes(Arc<[u8]>),
    Text(Arc<str>),
}

impl Piece {
    /// `range` of `bytes`; clamped to the buffer.
    pub(crate) fn bytes_range(bytes: &Arc<[u8]>, range: std::ops::Range<usize>) -> Piece {
        let end = range.end.min(bytes.len());
        Piece {
            owner: Owner::Bytes(Arc::clone(bytes)),
            start: range.start.min(end),
            end,
        }
    }

    /// All of `bytes`, which the piece then owns.
    pub(crate) fn owned(bytes: Vec<u8>) -> Piece {
        let bytes: Arc<[u8]> = bytes.into();
        let end = bytes.len();
        Piece::bytes_range(&bytes, 0..end)
    }

    /// All of `text`.
    pub(crate) fn text(text: &Arc<str>) -> Piece {
        Piece {
            owner: Owner::Text(Arc::clone(text)),
            start: 0,
            end: text.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        let all = match &self.owner {
            Owner::Bytes(b) => &b[..],
            Owner::Text(t) => t.as_bytes(),
        };
        &all[self.start..self.end]
    }

    fn same_buffer_follows(&self, next: &Piece) -> bool {
        match (&self.owner, &next.owner) {
            (Owner::Bytes(a), Owner::Bytes(b)) => Arc::ptr_eq(a, b) && self.end == next.start,
            _ => false,
        }
    }
}

impl Composed {
    /// Appends a piece, merging it with the last one when it continues the same buffer.
    pub(crate) fn push(&mut self, piece: Piece) {
        if piece.start == piece.end {
            return;
        }
        self.len += piece.end - piece.start;
        if let Some(last) = self.pieces.last_mut() {
            if last.same_buffer_follows(&piece) {
                last.end = piece.end;
                return;
            }
        }
        self.starts.push(self.len - (piece.end - piece.start));
        self.pieces.push(piece);
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends every piece of `other`.
    pub(crate) fn extend(&mut self, other: &Composed) {
        for piece in &other.pieces {
            self.push(piece.clone());
        }
    }

    fn pieces_from<'a>(
        &'a self,
        offset: usize,
        hint: &mut usize,
        max: usize,
        out: &mut Vec<&'a [u8]>,
    ) {
        if offset >= self.len {
            return;
        }
        // Sequential writing: the piece is the hinted one or a later one, most often.
        let mut i = *hint;
        if i >= self.pieces.len() || self.starts[i] > offset {
            i = self.starts.partition_point(|&s| s <= offset) - 1;
        }
        while i + 1 < self.pieces.len() && self.starts[i + 1] <= offset {
            i += 1;
        }
        *hint = i;
        let first = &self.pieces[i].bytes()[offset - self.starts[i]..];
        out.push(first);
        for piece in self.pieces[i + 1..].iter().take(max.saturating_sub(1)) {
            out.push(piece.bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_bodies_read_back_from_any_offset() {
        let glue: Arc<[u8]> = b"0123456789".to_vec().into();
        let text: Arc<str> = Arc::from("abcdef");
        let mut c = Composed::default();
        c.push(Piece::bytes_range(&glue, 0..3));
        c.push(Piece::bytes_range(&glue, 3..5)); // merges with the previous piece
        c.push(Piece::text(&text));
        c.push(Piece::bytes_range(&glue, 7..7)); // empty: dropped
        c.push(Piece::bytes_range(&glue, 7..10));
        assert_eq!(c.pieces.len(), 3);
        let body = Body::Composed(Arc::new(c));
        let all = body.to_vec();
        assert_eq!(all, b"01234abcdef789");
        assert_eq!(body.len(), all.len());
        for offset in 0..=all.len() {
            for start_hint in [0, 1, 2, 7] {
                let mut hint = start_hint;
                let mut out = Vec::new();
                body.pieces_from(offset, &mut hint, 64, &mut out);
                assert_eq!(
                    out.concat(),
                    &all[offset..],
                    "offset {offset} hint {start_hint}"
                );
                let mut limited = Vec::new();
                body.pieces_from(offset, &mut hint, 1, &mut limited);
                assert!(limited.len() <= 1);
            }
        }
    }
}
