//! The client against a peer on a real Unix socket that writes chosen HTTP/2 frames, standing
//! in for a runtime's CRI socket.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use prost::Message;

use super::{api, h2, Cause, Code, CriClient};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A socket path in a directory of its own, removed when dropped.
struct TempSocket(PathBuf);

impl TempSocket {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cri-h2-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempSocket(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("cri.sock")
    }
}

impl Drop for TempSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn grpc(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

struct Request {
    stream: u32,
    path: String,
    body: Vec<u8>,
}

/// The server side of one connection: reads the client's frames, keeps the client's
/// flow-control windows, writes answers.
struct Peer {
    sock: UnixStream,
    encoder: loona_hpack::Encoder<'static>,
    decoder: loona_hpack::Decoder<'static>,
    conn_window: i64,
    initial_window: i64,
    windows: HashMap<u32, i64>,
}

impl Peer {
    fn accept(listener: &UnixListener) -> Peer {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut peer = Peer {
            sock,
            encoder: loona_hpack::Encoder::new(),
            decoder: loona_hpack::Decoder::new(),
            conn_window: 65_535,
            initial_window: 65_535,
            windows: HashMap::new(),
        };
        let mut preface = [0; 24];
        peer.sock.read_exact(&mut preface).unwrap();
        assert_eq!(preface, PREFACE);
        peer.write(&frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        peer
    }

    fn write(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).unwrap();
    }

    fn read_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0; 9];
        self.sock.read_exact(&mut head).ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
        let mut payload = vec![0; len];
        self.sock.read_exact(&mut payload).ok()?;
        match head[3] {
            4 if head[4] & 1 == 0 => {
                for e in payload.chunks_exact(6) {
                    if u16::from_be_bytes([e[0], e[1]]) == 4 {
                        let v = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                        self.initial_window = i64::from(v);
                    }
                }
                self.write(&frame(4, 1, 0, &[]));
            }
            8 => {
                let inc = i64::from(u32::from_be_bytes(payload[..4].try_into().unwrap()));
                if stream == 0 {
                    self.conn_window += inc;
                } else {
                    *self.windows.entry(stream).or_insert(self.initial_window) += inc;
                }
            }
            _ => {}
        }
        Some((head[3], head[4], stream, payload))
    }

    /// The next whole request, or `None` when the client hung up.
    fn request(&mut self) -> Option<Request> {
        let mut path = String::new();
        let mut body = Vec::new();
        loop {
            let (kind, flags, stream, payload) = self.read_frame()?;
            match kind {
                1 => {
                    assert_eq!(flags & 4, 4, "our request headers fit one frame");
                    for (n, v) in self.decoder.decode(&payload).unwrap() {
                        if n == b":path" {
                            path = String::from_utf8(v).unwrap();
                        }
                    }
                }
                0 => {
                    body.extend_from_slice(&payload);
                    if flags & 1 != 0 {
                        assert_eq!(body[0], 0);
                        return Some(Request {
                            stream,
                            path,
                            body: body[5..].to_vec(),
                        });
                    }
                }
                _ => {}
            }
        }
    }

    fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let block = self
            .encoder
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        let flags = 4 | u8::from(end_stream);
        self.write(&frame(1, flags, stream, &block));
    }

    /// DATA within the client's windows, waiting for its WINDOW_UPDATEs as needed.
    fn data(&mut self, stream: u32, bytes: &[u8]) {
        let mut sent = 0;
        while sent < bytes.len() {
            let window = *self.windows.entry(stream).or_insert(self.initial_window);
            let n = (bytes.len() - sent)
                .min(16_384)
                .min(self.conn_window.min(window).max(0) as usize);
            if n == 0 {
                self.read_frame().expect("a WINDOW_UPDATE");
                continue;
            }
            self.conn_window -= n as i64;
            *self.windows.get_mut(&stream).unwrap() -= n as i64;
            self.write(&frame(0, 0, stream, &bytes[sent..sent + n]));
            sent += n;
        }
    }

    fn answer(&mut self, stream: u32, message: &[u8]) {
        self.headers(
            stream,
            &[(":status", "200"), ("content-type", "application/grpc")],
            false,
        );
        self.data(stream, &grpc(message));
        self.headers(stream, &[("grpc-status", "0"), ("grpc-message", "")], true);
    }
}

fn version_answer() -> api::VersionResponse {
    api::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "containerd".into(),
        runtime_version: "v1.7.24".into(),
        runtime_api_version: "v1".into(),
    }
}

/// Answers every request on every connection from `reply`, counting connections.
fn serve(
    reply: impl Fn(&Request) -> Vec<u8> + Send + Sync + 'static,
) -> (TempSocket, Arc<AtomicUsize>) {
    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let reply = Arc::new(reply);
    thread::spawn(move || {
        for _ in 0..8 {
            let mut peer = Peer::accept(&listener);
            counted.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            thread::spawn(move || {
                while let Some(request) = peer.request() {
                    let message = reply(&request);
                    peer.answer(request.stream, &message);
                }
            });
        }
    });
    (dir, connections)
}

#[test]
fn unary_calls_share_one_connection() {
    let (dir, connections) = serve(|request| match request.path.as_str() {
        "/runtime.v1.RuntimeService/Version" => {
            let asked = api::VersionRequest::decode(request.body.as_slice()).unwrap();
            assert_eq!(asked.version, "0.1.0");
            version_answer().encode_to_vec()
        }
        "/runtime.v1.ImageService/ImageStatus" => {
            let asked = api::ImageStatusRequest::decode(request.body.as_slice()).unwrap();
            let image = api::Image {
                id: asked.image.unwrap().image,
                size: 42,
                ..Default::default()
            };
            api::ImageStatusResponse {
                image: Some(image),
                info: BTreeMap::new(),
            }
            .encode_to_vec()
        }
        _ => Vec::new(),
    });
    let client = CriClient::new(dir.path()).with_timeout(Duration::from_secs(5));
    assert_eq!(client.version().unwrap(), version_answer());
    let status = client.image_status("sha256:abc", false).unwrap();
    assert_eq!(status.image.as_ref().unwrap().id, "sha256:abc");
    assert_eq!(status.image.unwrap().size, 42);
    assert!(client.list_pod_sandboxes().unwrap().is_empty());
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn client_is_shared_by_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CriClient>();
    let (dir, connections) = serve(|_| version_answer().encode_to_vec());
    let client = Arc::new(CriClient::new(dir.path()).with_timeout(Duration::from_secs(5)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            thread::spawn(move || {
                for _ in 0..5 {
                    assert_eq!(client.version().unwrap().runtime_name, "containerd");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[test]
fn answer_of_megabytes_spans_many_frames_and_window_updates() {
    let containers: Vec<api::Container> = (0..7000)
        .map(|i| api::Container {
            id: format!("{i:064x}"),
            pod_sandbox_id: format!("{:064x}", i / 3),
            image_ref: format!("sha256:{i:064x}"),
            labels: (0..8)
                .map(|l| (format!("label-{l}"), "x".repeat(40)))
                .collect(),
            state: api::ContainerState::ContainerRunning as i32,
            ..Default::default()
        })
        .collect();
    let answer = api::ListContainersResponse {
        containers: containers.clone(),
    }
    .encode_to_vec();
    assert!(answer.len() > 4 << 20, "{} bytes", answer.len());
    let (dir, _) = serve(move |_| answer.clone());
    let client = CriClient::new(dir.path()).with_timeout(Duration::from_secs(10));
    for _ in 0..2 {
        assert_eq!(client.list_containers().unwrap(), containers);
    }
}

#[test]
fn trailers_only_and_trailer_statuses() {
    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    thread::spawn(move || {
        let mut peer = Peer::accept(&listener);
        let r = peer.request().unwrap();
        peer.headers(
            r.stream,
            &[
                (":status", "200"),
                ("content-type", "application/grpc"),
                ("grpc-status", "12"),
                (
                    "grpc-message",
                    "unknown%20service runtime.v1.RuntimeService",
                ),
            ],
            true,
        );
        let r = peer.request().unwrap();
        peer.headers(
            r.stream,
            &[(":status", "200"), ("content-type", "application/grpc")],
            false,
        );
        peer.headers(
            r.stream,
            &[
                ("grpc-status", "5"),
                ("grpc-message", "container \"c1\" not found: %E2%9C%97 %zz"),
            ],
            true,
        );
        let r = peer.request().unwrap();
        peer.answer(r.stream, &version_answer().encode_to_vec());
        while peer.request().is_some() {}
    });
    let client = CriClient::new(dir.path()).with_timeout(Duration::from_secs(5));

    let e = client.list_containers().unwrap_err();
    assert!(e.is_unimplemented(), "{e}");
    assert_eq!(
        e.to_string(),
        format!(
            "CRI call /runtime.v1.RuntimeService/ListContainers at unix:{}: gRPC status \
             Unimplemented: unknown service runtime.v1.RuntimeService",
            dir.path().display()
        )
    );

    let e = client.container_status("c1", true).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        matches!(e.cause(), Cause::Status { message, .. } if message == "container \"c1\" not found: ✗ %zz")
    );

    // A status ends its stream cleanly: the same connection answers the next call.
    assert_eq!(client.version().unwrap(), version_answer());
}

#[test]
fn goaway_then_a_new_connection() {
    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    thread::spawn(move || {
        let mut peer = Peer::accept(&listener);
        peer.request().unwrap();
        let mut goaway = 0u32.to_be_bytes().to_vec();
        goaway.extend_from_slice(&0u32.to_be_bytes());
        goaway.extend_from_slice(b"shutting down");
        peer.write(&frame(7, 0, 0, &goaway));
        drop(peer);
        let mut peer = Peer::accept(&listener);
        let r = peer.request().unwrap();
        assert_eq!(r.stream, 1);
        peer.answer(r.stream, &version_answer().encode_to_vec());
        while peer.request().is_some() {}
    });
    let client = CriClient::new(dir.path()).with_timeout(Duration::from_secs(5));
    let e = client.version().unwrap_err();
    assert!(
        matches!(e.cause(), Cause::GoAway { code: 0, debug } if debug == "shutting down"),
        "{e}"
    );
    assert_eq!(client.version().unwrap(), version_answer());
}

/// Writes `bytes` as the whole server side of one connection.
fn scripted(bytes: Vec<u8>) -> TempSocket {
    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let _ = sock.write_all(&bytes);
        let _ = sock.shutdown(std::net::Shutdown::Write);
        let _ = std::io::copy(&mut sock, &mut std::io::sink());
    });
    dir
}

fn headers_block(fields: &[(&str, &str)]) -> Vec<u8> {
    loona_hpack::Encoder::new().encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
}

/// A whole valid answer on stream 1, as a runtime writes it.
fn valid_stream(message: &[u8]) -> Vec<u8> {
    let mut encoder = loona_hpack::Encoder::new();
    let mut out = frame(4, 0, 0, &[0, 4, 0, 1, 0, 0, 0, 5, 0, 0, 64, 0]);
    out.extend(frame(4, 1, 0, &[]));
    out.extend(frame(6, 0, 0, b"12345678"));
    let block = encoder.encode([
        (&b":status"[..], &b"200"[..]),
        (b"content-type", b"application/grpc"),
    ]);
    let (first, rest) = block.split_at(block.len() / 2);
    out.extend(frame(1, 0, 1, first));
    out.extend(frame(9, 4, 1, rest));
    let body = grpc(message);
    let (a, b) = body.split_at(body.len() / 2);
    let mut padded = vec![3];
    padded.extend_from_slice(a);
    padded.extend_from_slice(&[0, 0, 0]);
    out.extend(frame(0, 8, 1, &padded));
    out.extend(frame(8, 0, 1, &100u32.to_be_bytes()));
    out.extend(frame(0, 0, 1, b));
    let trailers = encoder.encode([(&b"grpc-status"[..], &b"0"[..])]);
    out.extend(frame(1, 5, 1, &trailers));
    out
}

#[test]
fn damaged_answers_are_typed_errors() {
    let ok = version_answer().encode_to_vec();
    let call = |bytes: Vec<u8>| {
        let dir = scripted(bytes);
        CriClient::new(dir.path())
            .with_timeout(Duration::from_secs(5))
            .with_max_message(1 << 20)
            .version()
    };
    assert_eq!(call(valid_stream(&ok)).unwrap(), version_answer());

    let protocol = |bytes: Vec<u8>, words: &str| {
        let e = call(bytes).unwrap_err();
        assert!(
            matches!(e.cause(), Cause::Protocol(text) if text.contains(words)),
            "{e} lacks {words:?}"
        );
    };
    let settings = frame(4, 0, 0, &[]);
    let head = |extra: &[(&str, &str)], end: bool| {
        let mut fields = vec![(":status", "200"), ("content-type", "application/grpc")];
        fields.extend_from_slice(extra);
        frame(1, 4 | u8::from(end), 1, &headers_block(&fields))
    };
    let with = |parts: &[Vec<u8>]| {
        let mut out = settings.clone();
        for p in parts {
            out.extend_from_slice(p);
        }
        out
    };

    let mut compressed = grpc(&ok);
    compressed[0] = 1;
    protocol(
        with(&[
            head(&[], false),
            frame(0, 0, 1, &compressed),
            frame(1, 5, 1, &headers_block(&[("grpc-status", "0")])),
        ]),
        "compressed",
    );
    protocol(frame(6, 0, 0, b"12345678"), "first frame is not SETTINGS");
    protocol(with(&[frame(0, 1, 1, &grpc(&ok))]), "DATA outside");
    protocol(with(&[head(&[], true)]), "without a grpc-status");
    protocol(with(&[frame(5, 4, 1, &[0, 0, 0, 2])]), "PUSH_PROMISE");
    protocol(with(&[frame(9, 4, 1, &[])]), "CONTINUATION without HEADERS");
    protocol(with(&[frame(1, 4, 1, &[0xff, 0xff])]), "does not decode");
    protocol(
        with(&[frame(3, 0, 1, &2u32.to_be_bytes())]),
        "reset the stream",
    );
    protocol(
        with(&[frame(1, 5, 1, &headers_block(&[(":status", "503")]))]),
        "HTTP status 503",
    );
    protocol(
        with(&[
            head(&[], false),
            frame(0, 0, 1, &grpc(&ok)[..4]),
            frame(1, 5, 1, &headers_block(&[("grpc-status", "0")])),
        ]),
        "whole gRPC message",
    );
    let mut huge_frame = settings.clone();
    huge_frame.extend_from_slice(&[0x00, 0x40, 0x01, 0, 0, 0, 0, 0, 1]);
    protocol(huge_frame, "over the 16384-byte limit");

    // A message declared larger than the cap ends the call at its first bytes.
    let mut big = vec![0];
    big.extend_from_slice(&(2u32 << 20).to_be_bytes());
    let e = call(with(&[head(&[], false), frame(0, 0, 1, &big)])).unwrap_err();
    assert!(
        matches!(e.cause(), Cause::TooLarge { limit } if *limit == 1 << 20),
        "{e}"
    );

    let e = call(with(&[
        head(&[], false),
        frame(0, 0, 1, &grpc(b"\xff\xff")),
        frame(1, 5, 1, &headers_block(&[("grpc-status", "0")])),
    ]))
    .unwrap_err();
    assert!(matches!(e.cause(), Cause::Decode(_)), "{e}");

    let e = call(Vec::new()).unwrap_err();
    assert!(matches!(e.cause(), Cause::Io(_)), "{e}");
    assert!(std::error::Error::source(&e).is_some());

    let e = CriClient::new(TempSocket::new().path())
        .version()
        .unwrap_err();
    assert!(matches!(e.cause(), Cause::Io(_)), "{e}");
}

#[test]
fn silent_runtime_times_out() {
    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    // The peer outlives the call by far; the test does not wait for it.
    thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        // Half a frame, then nothing.
        sock.write_all(&[0, 0, 6, 4]).unwrap();
        thread::sleep(Duration::from_secs(5));
    });
    let started = Instant::now();
    let e = CriClient::new(dir.path())
        .with_timeout(Duration::from_millis(150))
        .version()
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "{e}");
    assert!(
        matches!(e.cause(), Cause::Io(io) if matches!(io.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)),
        "{e}"
    );
}

#[test]
fn grpc_message_is_percent_decoded() {
    assert_eq!(h2::percent_decode("a%20b%"), "a b%");
    assert_eq!(h2::percent_decode("%4"), "%4");
    assert_eq!(h2::percent_decode("%E2%9C%97%2x"), "✗%2x");
    assert_eq!(Code::from_u32(12), Code::Unimplemented);
    assert_eq!(Code::from_u32(99), Code::Other(99));
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Fewer than `max` random bytes.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Damaged and random server byte streams: every call ends, in an answer or a typed error,
/// and nothing panics.
#[test]
fn fuzzed_answers_never_panic_or_hang() {
    const ROUNDS: usize = 2000;
    let valid = valid_stream(&version_answer().encode_to_vec());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut streams = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut s = valid.clone();
        match rng.below(6) {
            0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(s.len());
                    s[i] = rng.next() as u8;
                }
            }
            1 => s.truncate(rng.below(s.len())),
            2 => {
                let at = rng.below(s.len());
                let junk = rng.bytes(33);
                s.splice(at..at, junk);
            }
            3 => s = rng.bytes(200),
            4 => {
                // A plausible frame with random type, flags and payload after the SETTINGS.
                let payload = rng.bytes(40);
                let f = frame(
                    rng.below(12) as u8,
                    rng.next() as u8,
                    rng.below(4) as u32,
                    &payload,
                );
                let at = 9 + 12;
                s.splice(at..at, f);
            }
            _ => {
                let i = rng.below(s.len());
                s[i] ^= 1 << rng.below(8);
            }
        }
        streams.push(s);
    }

    let dir = TempSocket::new();
    let listener = UnixListener::bind(dir.path()).unwrap();
    let server = thread::spawn(move || {
        for bytes in streams {
            let (mut sock, _) = listener.accept().unwrap();
            let _ = sock.write_all(&bytes);
            let _ = sock.shutdown(std::net::Shutdown::Write);
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = std::io::copy(&mut sock, &mut std::io::sink());
        }
    });
    let started = Instant::now();
    let mut answered = 0;
    for _ in 0..ROUNDS {
        let client = CriClient::new(dir.path()).with_timeout(Duration::from_secs(2));
        if client.version().is_ok() {
            answered += 1;
        }
    }
    server.join().unwrap();
    assert!(answered > 0 && answered < ROUNDS, "{answered} answered");
    assert!(started.elapsed() < Duration::from_secs(20));

    // The HPACK decoder alone, on random and damaged blocks.
    let block = headers_block(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-message", "a longer value to index"),
    ]);
    for _ in 0..20_000 {
        let input = if rng.below(2) == 0 {
            let mut b = block.clone();
            let i = rng.below(b.len());
            b[i] = rng.next() as u8;
            b.truncate(rng.below(b.len() + 1));
            b
        } else {
            rng.bytes(64)
        };
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(4096);
        let _ = decoder.decode(&input);
    }
}
