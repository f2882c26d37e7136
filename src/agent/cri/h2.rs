//! Unary gRPC calls over HTTP/2 without TLS, with prior knowledge (RFC 9113 §3.3), on a Unix
//! socket: the one way a container runtime's CRI socket can be spoken to. Only what a client
//! of unary calls needs is here: one stream at a time, no server push, no priorities.
//!
//! Every length, flag and stream ID that comes from the runtime is checked before it is used,
//! so a damaged or hostile byte stream ends the call with a [`Cause`], never a panic, and every
//! read has the call's deadline, so a silent peer cannot hold a thread.

use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use loona_hpack::Decoder;

use super::{Cause, Code};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
/// The largest frame payload we accept: the protocol's default, which we never raise, so
/// a frame that claims more is the peer's error and is never buffered.
const MAX_FRAME: usize = 16_384;
/// Response headers and trailers of a gRPC answer are a few hundred bytes; the cap only stops a
/// peer from making us buffer an endless CONTINUATION chain. Advertised as
/// SETTINGS_MAX_HEADER_LIST_SIZE too.
const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Our receive window, for the connection and for each stream. Larger than the protocol's
/// 65,535-byte default so that big answers (a node's container list runs to hundreds of KB)
/// need few round trips; we hand it back with WINDOW_UPDATE as we consume data.
const WINDOW: u32 = 1 << 20;
const DEFAULT_WINDOW: i64 = 65_535;
const MAX_WINDOW: i64 = (1 << 31) - 1;
/// HPACK dynamic table we allow the peer to use: the protocol's default, which we advertise.
const HEADER_TABLE: usize = 4096;
/// Stream IDs are 31 bits; the connection is replaced before they run out.
const LAST_STREAM_ID: u32 = (1 << 31) - 1;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

const SETTINGS_ENABLE_PUSH: u16 = 0x2;
const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

fn protocol(text: impl Into<String>) -> Cause {
    Cause::Protocol(text.into())
}

struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// One HTTP/2 connection to the runtime. Calls on it run one after the other.
pub(crate) struct Connection {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    decoder: Decoder<'static>,
    next_stream: u32,
    /// What we may still send on the connection, and what each new stream starts with.
    send_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// What the peer may still send us on the connection, and what it sent that we have
    /// not yet handed back.
    recv_window: i64,
    recv_unacked: u32,
    seen_settings: bool,
    /// The peer said GOAWAY: no new call may start here.
    going_away: bool,
    /// A write failed: no new call may start here.
    broken: bool,
}

/// The state of the one stream a call opens.
struct Call {
    id: u32,
    send_window: i64,
    recv_window: i64,
    recv_unacked: u32,
    headers: Option<HeaderList>,
    trailers: Option<HeaderList>,
    body: Vec<u8>,
    closed: bool,
    max_message: usize,
}

impl Connection {
    /// Connects and sends our side of the connection preface. The peer's SETTINGS are read
    /// with the first call's answer: a client need not wait for them (RFC 9113 §3.4).
    pub(crate) fn connect(socket: &Path, timeout: Duration) -> Result<Self, Cause> {
        let stream = crate::http::client::connect_unix(socket, timeout).map_err(Cause::Io)?;
        stream
            .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(Cause::Io)?;
        let writer = stream.try_clone().map_err(Cause::Io)?;
        let mut conn = Connection {
            reader: BufReader::with_capacity(MAX_FRAME + FRAME_HEADER_LEN, stream),
            writer,
            decoder: Decoder::new(),
            next_stream: 1,
            send_window: DEFAULT_WINDOW,
            peer_initial_window: DEFAULT_WINDOW,
            peer_max_frame: MAX_FRAME,
            recv_window: i64::from(WINDOW),
            recv_unacked: 0,
            seen_settings: false,
            going_away: false,
            broken: false,
        };
        conn.decoder.set_max_allowed_table_size(HEADER_TABLE);
        let mut out = PREFACE.to_vec();
        let mut settings = Vec::new();
        for (id, value) in [
            (SETTINGS_ENABLE_PUSH, 0),
            (SETTINGS_INITIAL_WINDOW_SIZE, WINDOW),
            (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK as u32),
        ] {
            settings.extend_from_slice(&id.to_be_bytes());
            settings.extend_from_slice(&value.to_be_bytes());
        }
        push_frame(&mut out, SETTINGS, 0, 0, &settings);
        let grow = WINDOW - DEFAULT_WINDOW as u32;
        push_frame(&mut out, WINDOW_UPDATE, 0, 0, &grow.to_be_bytes());
        conn.writer.write_all(&out).map_err(Cause::Io)?;
        Ok(conn)
    }

    /// Whether a new call may start here.
    pub(crate) fn usable(&self) -> bool {
        !self.going_away && !self.broken && self.next_stream <= LAST_STREAM_ID
    }

    /// One unary call: `message` is the encoded request, the answer is the encoded reply.
    /// After an error other than [`Cause::Status`] the connection's state is unknown and it
    /// must not be used again.
    pub(crate) fn unary(
        &mut self,
        path: &str,
        message: &[u8],
        timeout: Duration,
        max_message: usize,
    ) -> Result<Vec<u8>, Cause> {
        let deadline = Instant::now() + timeout;
        if !self.usable() {
            return Err(protocol("connection can take no new stream"));
        }
        let id = self.next_stream;
        self.next_stream += 2;
        self.writer
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(Cause::Io)?;

        let block = request_headers(path, timeout);
        let mut out = Vec::with_capacity(block.len() + message.len() + 64);
        let mut chunks = block.chunks(self.peer_max_frame).peekable();
        let mut kind = HEADERS;
        while let Some(chunk) = chunks.next() {
            let flags = if chunks.peek().is_none() {
                END_HEADERS
            } else {
                0
            };
            push_frame(&mut out, kind, flags, id, chunk);
            kind = CONTINUATION;
        }
        if let Err(e) = self.writer.write_all(&out) {
            return Err(self.why_closed(e, deadline));
        }

        let len = u32::try_from(message.len()).map_err(|_| protocol("request too large"))?;
        let mut body = Vec::with_capacity(5 + message.len());
        body.push(0);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(message);

        let mut call = Call {
            id,
            send_window: self.peer_initial_window,
            recv_window: i64::from(WINDOW),
            recv_unacked: 0,
            headers: None,
            trailers: None,
            body: Vec::new(),
            closed: false,
            max_message,
        };
        let mut sent = 0;
        while !call.closed {
            if sent < body.len() {
                sent = match self.send_body(&body, sent, &mut call) {
                    Ok(sent) => sent,
                    Err(e) => return Err(self.why_closed(e, deadline)),
                };
            }
            let frame = self.read_frame(deadline)?;
            self.handle(frame, &mut call, deadline)?;
        }
        finish(call)
    }

    /// Sends as much of the request body as the peer's windows allow, the last piece with
    /// END_STREAM; returns how much of it is sent.
    fn send_body(&mut self, body: &[u8], sent: usize, call: &mut Call) -> io::Result<usize> {
        let mut sent = sent;
        let mut out = Vec::new();
        while sent < body.len() {
            let allowed = self.send_window.min(call.send_window).max(0) as usize;
            let n = (body.len() - sent).min(allowed).min(self.peer_max_frame);
            if n == 0 {
                break;
            }
            let flags = if sent + n == body.len() {
                END_STREAM
            } else {
                0
            };
            push_frame(&mut out, DATA, flags, call.id, &body[sent..sent + n]);
            sent += n;
            self.send_window -= n as i64;
            call.send_window -= n as i64;
        }
        if !out.is_empty() {
            self.writer.write_all(&out)?;
        }
        Ok(sent)
    }

    fn read_frame(&mut self, deadline: Instant) -> Result<Frame, Cause> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        self.read_exact(&mut header, deadline)?;
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        if len > MAX_FRAME {
            return Err(protocol(format!(
                "frame of {len} bytes is over the {MAX_FRAME}-byte limit"
            )));
        }
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        self.read_exact(&mut payload, deadline)?;
        let frame = Frame {
            kind: header[3],
            flags: header[4],
            stream,
            payload,
        };
        if !self.seen_settings {
            if frame.kind != SETTINGS || frame.flags & ACK != 0 {
                return Err(protocol("the runtime's first frame is not SETTINGS"));
            }
            self.seen_settings = true;
        }
        Ok(frame)
    }

    fn read_exact(&mut self, buf: &mut [u8], deadline: Instant) -> Result<(), Cause> {
        let mut filled = 0;
        while filled < buf.len() {
            self.reader
                .get_ref()
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(Cause::Io)?;
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(Cause::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the runtime closed the connection",
                    )))
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Cause::Io(e)),
            }
        }
        Ok(())
    }

    fn handle(&mut self, frame: Frame, call: &mut Call, deadline: Instant) -> Result<(), Cause> {
        let Frame {
            kind,
            flags,
            stream,
            payload,
        } = frame;
        if stream != 0 && (stream % 2 == 0 || stream > call.id) && kind != PRIORITY {
            return Err(protocol(format!(
                "frame type {kind} on stream {stream}, which we never opened"
            )));
        }
        match kind {
            DATA => self.on_data(flags, stream, &payload, call),
            HEADERS => {
                if stream == 0 {
                    return Err(protocol("HEADERS on stream 0"));
                }
                let block = self.header_block(flags, stream, payload, deadline)?;
                let list = self
                    .decoder
                    .decode(&block)
                    .map_err(|e| protocol(format!("header block does not decode: {e}")))?;
                // Indexed fields expand: a small block may name the same large table entry
                // thousands of times. The list itself is held to what we announced.
                let decoded: usize = list.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
                if decoded > MAX_HEADER_BLOCK {
                    return Err(protocol(format!(
                        "header list of {decoded} bytes, over the {MAX_HEADER_BLOCK} announced"
                    )));
                }
                if stream != call.id {
                    // An earlier stream's late headers: decoded only to keep the HPACK table
                    // in step with the peer's.
                    return Ok(());
                }
                if call.trailers.is_some() || call.closed {
                    return Err(protocol("headers after the trailers"));
                }
                if call.headers.is_none() {
                    call.headers = Some(list);
                } else if flags & END_STREAM == 0 {
                    return Err(protocol("trailers without END_STREAM"));
                } else {
                    call.trailers = Some(list);
                }
                if flags & END_STREAM != 0 {
                    call.closed = true;
                }
                Ok(())
            }
            PRIORITY => {
                if payload.len() != 5 {
                    return Err(protocol("PRIORITY frame of the wrong size"));
                }
                Ok(())
            }
            RST_STREAM => {
                let code = four_bytes(&payload, "RST_STREAM")?;
                if stream == 0 {
                    return Err(protocol("RST_STREAM on stream 0"));
                }
                if stream == call.id {
                    return Err(protocol(format!(
                        "the runtime reset the stream (error code {code})"
                    )));
                }
                Ok(())
            }
            SETTINGS => self.on_settings(flags, stream, &payload, call),
            PUSH_PROMISE => Err(protocol("PUSH_PROMISE, though push is disabled")),
            PING => {
                if stream != 0 || payload.len() != 8 {
                    return Err(protocol("malformed PING"));
                }
                if flags & ACK == 0 {
                    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + 8);
                    push_frame(&mut out, PING, ACK, 0, &payload);
                    self.control(&out);
                }
                Ok(())
            }
            GOAWAY => {
                if stream != 0 || payload.len() < 8 {
                    return Err(protocol("malformed GOAWAY"));
                }
                let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff;
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                self.going_away = true;
                if last < call.id {
                    let debug = String::from_utf8_lossy(&payload[8..]);
                    return Err(Cause::GoAway {
                        code,
                        debug: debug.into_owned(),
                    });
                }
                Ok(())
            }
            WINDOW_UPDATE => {
                let increment = i64::from(four_bytes(&payload, "WINDOW_UPDATE")? & 0x7fff_ffff);
                if increment == 0 {
                    return Err(protocol("WINDOW_UPDATE of 0"));
                }
                let window = if stream == 0 {
                    &mut self.send_window
                } else if stream == call.id {
                    &mut call.send_window
                } else {
                    return Ok(());
                };
                *window += increment;
                if *window > MAX_WINDOW {
                    return Err(protocol("flow-control window over 2^31-1"));
                }
                Ok(())
            }
            CONTINUATION => Err(protocol("CONTINUATION without HEADERS")),
            // Unknown frame types are ignored (RFC 9113 §4.1).
            _ => Ok(()),
        }
    }

    fn on_data(
        &mut self,
        flags: u8,
        stream: u32,
        payload: &[u8],
        call: &mut Call,
    ) -> Result<(), Cause> {
        if stream == 0 {
            return Err(protocol("DATA on stream 0"));
        }
        let len = payload.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(protocol("the runtime sent past the connection's window"));
        }
        self.recv_unacked += payload.len() as u32;
        if self.recv_unacked >= WINDOW / 2 {
            let mut out = Vec::with_capacity(FRAME_HEADER_LEN + 4);
            push_frame(
                &mut out,
                WINDOW_UPDATE,
                0,
                0,
                &self.recv_unacked.to_be_bytes(),
            );
            self.control(&out);
            self.recv_window += i64::from(self.recv_unacked);
            self.recv_unacked = 0;
        }
        if stream != call.id {
            return Ok(());
        }
        if call.headers.is_none() || call.closed {
            return Err(protocol("DATA outside the answer's headers and trailers"));
        }
        call.recv_window -= len;
        if call.recv_window < 0 {
            return Err(protocol("the runtime sent past the stream's window"));
        }
        let data = unpad(flags, payload)?;
        call.body.extend_from_slice(data);
        check_size(&call.body, call.max_message)?;
        if flags & END_STREAM != 0 {
            call.closed = true;
            return Ok(());
        }
        call.recv_unacked += payload.len() as u32;
        if call.recv_unacked >= WINDOW / 2 {
            let mut out = Vec::with_capacity(FRAME_HEADER_LEN + 4);
            push_frame(
                &mut out,
                WINDOW_UPDATE,
                0,
                call.id,
                &call.recv_unacked.to_be_bytes(),
            );
            self.control(&out);
            call.recv_window += i64::from(call.recv_unacked);
            call.recv_unacked = 0;
        }
        Ok(())
    }

    fn on_settings(
        &mut self,
        flags: u8,
        stream: u32,
        payload: &[u8],
        call: &mut Call,
    ) -> Result<(), Cause> {
        if stream != 0 {
            return Err(protocol("SETTINGS on a stream"));
        }
        if flags & ACK != 0 {
            if !payload.is_empty() {
                return Err(protocol("SETTINGS ACK with a payload"));
            }
            return Ok(());
        }
        if !payload.len().is_multiple_of(6) {
            return Err(protocol("SETTINGS of the wrong size"));
        }
        for entry in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([entry[0], entry[1]]);
            let value = u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]);
            match id {
                SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(protocol("SETTINGS_ENABLE_PUSH other than 0 or 1"))
                }
                SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > MAX_WINDOW {
                        return Err(protocol("SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1"));
                    }
                    call.send_window += value - self.peer_initial_window;
                    if call.send_window > MAX_WINDOW {
                        return Err(protocol("flow-control window over 2^31-1"));
                    }
                    self.peer_initial_window = value;
                }
                SETTINGS_MAX_FRAME_SIZE => {
                    if !(16_384..=16_777_215).contains(&value) {
                        return Err(protocol("SETTINGS_MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value as usize;
                }
                // SETTINGS_HEADER_TABLE_SIZE sizes the peer's decoding table, which our
                // literal-only headers never use; the other settings concern servers or
                // are advisory.
                _ => {}
            }
        }
        let mut out = Vec::with_capacity(FRAME_HEADER_LEN);
        push_frame(&mut out, SETTINGS, ACK, 0, &[]);
        self.control(&out);
        Ok(())
    }

    /// Writes a frame that answers the peer (ACKs, window updates). A peer that has stopped
    /// reading may still have written what explains why (a GOAWAY, the answer itself), so a
    /// failed write does not end the call: reading goes on to that, or to the end of the
    /// stream. The connection is not used for another call.
    fn control(&mut self, frame: &[u8]) {
        if !self.broken && self.writer.write_all(frame).is_err() {
            self.broken = true;
        }
    }

    /// After the request could not be written: a GOAWAY the peer sent before closing says
    /// more than the broken pipe does.
    fn why_closed(&mut self, error: io::Error, deadline: Instant) -> Cause {
        self.broken = true;
        for _ in 0..16 {
            match self.read_frame(deadline) {
                Ok(frame) if frame.kind == GOAWAY && frame.payload.len() >= 8 => {
                    let code = u32::from_be_bytes([
                        frame.payload[4],
                        frame.payload[5],
                        frame.payload[6],
                        frame.payload[7],
                    ]);
                    let debug = String::from_utf8_lossy(&frame.payload[8..]).into_owned();
                    return Cause::GoAway { code, debug };
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Cause::Io(error)
    }

    /// A HEADERS frame's block, with the CONTINUATION frames that must follow it at once.
    fn header_block(
        &mut self,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, Cause> {
        let mut fragment = unpad(flags, &payload)?;
        if flags & PRIORITY_FLAG != 0 {
            fragment = fragment
                .get(5..)
                .ok_or_else(|| protocol("HEADERS too short for its priority"))?;
        }
        let mut block = fragment.to_vec();
        let mut end = flags & END_HEADERS != 0;
        while !end {
            let next = self.read_frame(deadline)?;
            if next.kind != CONTINUATION || next.stream != stream {
                return Err(protocol("header block interrupted by another frame"));
            }
            block.extend_from_slice(&next.payload);
            if block.len() > MAX_HEADER_BLOCK {
                return Err(protocol(format!(
                    "header block over {MAX_HEADER_BLOCK} bytes"
                )));
            }
            end = next.flags & END_HEADERS != 0;
        }
        Ok(block)
    }
}

fn remaining(deadline: Instant) -> Result<Duration, Cause> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Cause::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "the call's time ran out",
        )));
    }
    Ok(left)
}

fn four_bytes(payload: &[u8], what: &str) -> Result<u32, Cause> {
    let bytes: [u8; 4] = payload
        .try_into()
        .map_err(|_| protocol(format!("{what} frame of the wrong size")))?;
    Ok(u32::from_be_bytes(bytes))
}

/// The payload without its padding (RFC 9113 §6.1).
fn unpad(flags: u8, payload: &[u8]) -> Result<&[u8], Cause> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload
        .split_first()
        .ok_or_else(|| protocol("padded frame without its pad length"))?;
    let keep = rest
        .len()
        .checked_sub(usize::from(pad))
        .ok_or_else(|| protocol("padding longer than the frame"))?;
    Ok(&rest[..keep])
}

/// Stops as soon as the gRPC prefix announces, or the data shows, more than we accept.
fn check_size(body: &[u8], max_message: usize) -> Result<(), Cause> {
    let too_large = Cause::TooLarge { limit: max_message };
    if body.len() >= 5 {
        let declared = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if declared > max_message {
            return Err(too_large);
        }
    }
    if body.len() > max_message + 5 {
        return Err(too_large);
    }
    Ok(())
}

/// The answer of a closed stream: the message, or the gRPC status the runtime gave.
fn finish(call: Call) -> Result<Vec<u8>, Cause> {
    let headers = call.headers.unwrap_or_default();
    // A trailers-only answer carries the status in its one header block.
    let trailers = call.trailers.as_ref().unwrap_or(&headers);
    let find = |list: &HeaderList, name: &[u8]| {
        list.iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    };
    let http_status = find(&headers, b":status");
    if let Some(status) = find(trailers, b"grpc-status") {
        let code: u32 = status
            .trim()
            .parse()
            .map_err(|_| protocol(format!("grpc-status {status:?} is not a number")))?;
        if code != 0 {
            let message = find(trailers, b"grpc-message")
                .map(|m| percent_decode(&m))
                .unwrap_or_default();
            return Err(Cause::Status {
                code: Code::from_u32(code),
                message,
            });
        }
    } else {
        return Err(protocol(match http_status {
            Some(s) if s != "200" => format!("HTTP status {s} without a grpc-status"),
            _ => "answer without a grpc-status".to_owned(),
        }));
    }
    if http_status.as_deref() != Some("200") {
        return Err(protocol(format!(
            "HTTP status {}",
            http_status.as_deref().unwrap_or("missing")
        )));
    }
    match find(&headers, b"content-type") {
        Some(t) if t.starts_with("application/grpc") => {}
        other => return Err(protocol(format!("content-type {other:?} is not gRPC"))),
    }
    let body = call.body;
    if body.len() < 5 {
        return Err(protocol("answer without a whole gRPC message"));
    }
    if body[0] != 0 {
        return Err(protocol(format!(
            "gRPC message with compressed flag {}, but we asked for none",
            body[0]
        )));
    }
    let declared = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() - 5 != declared {
        return Err(protocol(format!(
            "gRPC message declares {declared} bytes but the stream carried {}",
            body.len() - 5
        )));
    }
    Ok(body[5..].to_vec())
}

/// grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"); a malformed escape is kept
/// as it stands rather than failing the call over an error's text.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The request's header block. HPACK's literal form without indexing and without Huffman
/// coding (RFC 7541 §6.2.2) is a few lines and every decoder must accept it; a dynamic table
/// would save a few hundred bytes per call on a local socket.
fn request_headers(path: &str, timeout: Duration) -> Vec<u8> {
    // grpc-timeout has at most 8 digits; the runtime gives up when we do.
    let millis = timeout.as_millis().clamp(1, 99_999_999);
    let mut block = Vec::with_capacity(256);
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", &format!("{millis}m")),
        (
            "user-agent",
            concat!("cluster-insight/", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        block.push(0x00);
        for text in [name, value] {
            encode_integer(&mut block, text.len(), 7, 0x00);
            block.extend_from_slice(text.as_bytes());
        }
    }
    block
}

/// An HPACK integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the bits above it.
fn encode_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, high: u8) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn push_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}
