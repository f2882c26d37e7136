//! Request and response heads: parsed with `httparse`, read from blocking readers, and
//! written.
//!
//! Parsing is incremental: [`parse_request`] and [`parse_response`] take whatever bytes
//! have arrived and say whether a head is complete, incomplete, or already wrong. A
//! non-blocking server calls them after every read; [`read_request`] and [`read_response`]
//! do the same over a blocking [`BufRead`], consuming exactly the head's bytes so that a
//! body or a pipelined request stays in the reader.
//!
//! The grammar is httparse's strict default (RFC 9112), plus what it leaves to callers:
//! a request target is visible ASCII, a request head is UTF-8, a status is 100 to 599.

use std::fmt;
use std::io::{self, BufRead};

/// The most header fields a head may have.
pub const MAX_HEADERS: usize = 100;

/// Header fields as the peer sent them, in order.
pub type Headers = Vec<(String, String)>;

/// The HTTP versions this project speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }

    fn from_minor(minor: u8) -> Version {
        if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        }
    }
}

/// A request line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// As the client sent it: still percent-encoded, origin-form or not.
    pub target: String,
    pub version: Version,
    pub headers: Headers,
}

/// A status line and its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub headers: Headers,
}

/// Why a head cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// It breaks the grammar; the text says where.
    Malformed(&'static str),
    /// Neither HTTP/1.0 nor HTTP/1.1.
    Version,
    /// More than [`MAX_HEADERS`] header fields.
    TooManyHeaders,
    /// Longer than the reader's limit.
    TooLarge,
}

impl HeadError {
    /// What is wrong, in a few words fit for an error answer.
    pub fn message(&self) -> &'static str {
        match self {
            HeadError::Malformed(what) => what,
            HeadError::Version => "unsupported HTTP version",
            HeadError::TooManyHeaders => "too many headers",
            HeadError::TooLarge => "head too large",
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HeadError {}

/// The outcome of parsing the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<T> {
    /// A complete head that took this many bytes.
    Complete(T, usize),
    /// Valid so far; more bytes are needed.
    Partial,
}

fn head_error(e: httparse::Error, first_line: &'static str) -> HeadError {
    match e {
        httparse::Error::HeaderName => HeadError::Malformed("malformed header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("malformed header value"),
        httparse::Error::NewLine => HeadError::Malformed("malformed line ending"),
        httparse::Error::Status | httparse::Error::Token => HeadError::Malformed(first_line),
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => HeadError::Version,
    }
}

/// A header value as text: trimmed of spaces and tabs; `None` when it is not UTF-8.
fn header_text(value: &[u8]) -> Option<String> {
    std::str::from_utf8(value)
        .ok()
        .map(|v| v.trim_matches([' ', '\t']).to_string())
}

/// Parses a request head from the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Parse<RequestHead>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        Err(e) => return Err(head_error(e, "malformed request line")),
    };
    if std::str::from_utf8(&buf[..len]).is_err() {
        return Err(HeadError::Malformed("request head is not UTF-8"));
    }
    // A complete parse has filled in every part of the request line.
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HeadError::Malformed("malformed request line"));
    };
    if !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed("malformed request target"));
    }
    let mut headers = Vec::with_capacity(request.headers.len());
    for field in request.headers.iter() {
        let value =
            header_text(field.value).ok_or(HeadError::Malformed("request head is not UTF-8"))?;
        headers.push((field.name.to_string(), value));
    }
    Ok(Parse::Complete(
        RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            version: Version::from_minor(minor),
            headers,
        },
        len,
    ))
}

/// Parses a response head from the start of `buf`. Header values that are not UTF-8 are
/// kept with U+FFFD in place of what is not.
pub fn parse_response(buf: &[u8]) -> Result<Parse<ResponseHead>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut fields);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(Parse::Partial),
        // A peer that answers in another protocol (or another HTTP) has no status line we
        // can read; that is what to tell whoever reads the error.
        Err(httparse::Error::Version) => return Err(HeadError::Malformed("malformed status line")),
        Err(e) => return Err(head_error(e, "malformed status line")),
    };
    let (Some(minor), Some(status)) = (response.version, response.code) else {
        return Err(HeadError::Malformed("malformed status line"));
    };
    if !(100..=599).contains(&status) {
        return Err(HeadError::Malformed("malformed status line"));
    }
    let headers = response
        .headers
        .iter()
        .map(|field| {
            let value = String::from_utf8_lossy(field.value);
            (
                field.name.to_string(),
                value.trim_matches([' ', '\t']).to_string(),
            )
        })
        .collect();
    Ok(Parse::Complete(
        ResponseHead {
            version: Version::from_minor(minor),
            status,
            headers,
        },
        len,
    ))
}

/// Why a head could not be read from a stream.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// The head breaks the grammar; `start` is its first line (at most 80 bytes, made
    /// printable), for the message of whoever reports it.
    Head {
        error: HeadError,
        start: String,
    },
    /// The stream ended inside a head (after at least one byte of it).
    Closed,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(_) => f.write_str("reading a head"),
            ReadError::Head { start, .. } => write!(f, "an unreadable head starting {start:?}"),
            ReadError::Closed => f.write_str("connection closed inside the head"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::Head { error, .. } => Some(error),
            ReadError::Closed => None,
        }
    }
}

/// Reads one request head of at most `max` bytes, with the bytes it took; `Ok(None)` when
/// the stream ends cleanly before its first byte.
pub fn read_request<R: BufRead>(
    r: &mut R,
    max: usize,
) -> Result<Option<(RequestHead, usize)>, ReadError> {
    read_head(r, max, parse_request)
}

/// Reads one response head of at most `max` bytes, with the bytes it took; `Ok(None)` when
/// the stream ends cleanly before its first byte.
pub fn read_response<R: BufRead>(
    r: &mut R,
    max: usize,
) -> Result<Option<(ResponseHead, usize)>, ReadError> {
    read_head(r, max, parse_response)
}

/// The error for a head that breaks the grammar, with its first line.
fn refused(error: HeadError, head: &[u8]) -> ReadError {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let start = String::from_utf8_lossy(&line[..line.len().min(80)])
        .trim_end_matches('\r')
        .to_string();
    ReadError::Head { error, start }
}

fn read_head<R: BufRead, T>(
    r: &mut R,
    max: usize,
    parse: fn(&[u8]) -> Result<Parse<T>, HeadError>,
) -> Result<Option<(T, usize)>, ReadError> {
    let mut head: Vec<u8> = Vec::new();
    loop {
        let available = match r.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadError::Io(e)),
        };
        if available.is_empty() {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Closed)
            };
        }
        let before = head.len();
        let take = available.len().min(max + 1 - before);
        let line_end = available[..take].contains(&b'\n');
        head.extend_from_slice(&available[..take]);
        // A head completes at a line end: without a new one, parsing again can only say
        // what it said before (and a peer sending a byte at a time would make every read
        // cost the whole head again).
        if !line_end && head.len() <= max {
            r.consume(take);
            continue;
        }
        match parse(&head).map_err(|e| refused(e, &head))? {
            Parse::Complete(value, len) => {
                // Only the head's own bytes leave the reader.
                r.consume(len - before);
                return Ok(Some((value, len)));
            }
            Parse::Partial if head.len() > max => {
                return Err(refused(HeadError::TooLarge, &head));
            }
            Parse::Partial => r.consume(take),
        }
    }
}

/// The first value of header `name`, matched case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The comma-separated elements of every field named `name`, trimmed, empty ones skipped.
pub fn header_tokens<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether header `name` lists `token` (case-insensitively), as `Connection: close` does.
pub fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    header_tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// A token (RFC 9110 §5.6.2): a method or a header name.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a field can be written without changing the shape of the head.
fn writable(name: &str, value: &str) -> bool {
    is_token(name) && !value.contains(['\r', '\n', '\0'])
}

/// Appends a response head: the status line, `headers` in order (a field whose name is not
/// a token or whose value holds CR, LF or NUL is left out, so that no value can split the
/// head), `Content-Length` when given, and `Connection`.
pub fn write_response_head<'a>(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    content_length: Option<u64>,
    keep_alive: bool,
) {
    let reason = crate::status::reason_phrase(status);
    out.extend_from_slice(format!("{} {status} {reason}\r\n", version.as_str()).as_bytes());
    for (name, value) in headers {
        if writable(name, value) {
            push_field(out, name, value);
        }
    }
    if let Some(length) = content_length {
        push_field(out, "Content-Length", &length.to_string());
    }
    push_field(
        out,
        "Connection",
        if keep_alive { "keep-alive" } else { "close" },
    );
    out.extend_from_slice(b"\r\n");
}

/// Appends a request head for a request without a body: the request line, then `headers`.
/// The method must be a token and the target an origin-form target (`/…`) of visible
/// ASCII characters, already percent-encoded; anything else is refused before a byte is
/// written.
pub fn write_request_head<'a>(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), HeadError> {
    if !is_token(method) {
        return Err(HeadError::Malformed("invalid request method"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HeadError::Malformed(
            "request target is not an origin-form target of visible ASCII characters",
        ));
    }
    out.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
    for (name, value) in headers {
        if writable(name, value) {
            push_field(out, name, value);
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &[u8]) -> Result<RequestHead, HeadError> {
        match parse_request(raw)? {
            Parse::Complete(head, _) => Ok(head),
            Parse::Partial => panic!("partial: {:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn response(raw: &[u8]) -> Result<ResponseHead, HeadError> {
        match parse_response(raw)? {
            Parse::Complete(head, _) => Ok(head),
            Parse::Partial => panic!("partial: {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn request_heads_parse_strictly() {
        let r =
            request(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept-Encoding:  gzip \r\n\r\n").unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.version),
            ("GET", "/a?b=c", Version::Http11)
        );
        assert_eq!(header(&r.headers, "accept-encoding"), Some("gzip"));
        // Blank lines before the request line and bare LF line ends are tolerated.
        let r = request(b"\r\nBREW /pot HTTP/1.0\n\n").unwrap();
        assert_eq!((r.method.as_str(), r.version), ("BREW", Version::Http10));
        for bad in [
            &b"GET /a HTTP/2.0\r\n\r\n"[..],
            b"GET  /a HTTP/1.1\r\n\r\n",
            b"GET /a\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"G(T /a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nX: \xff\r\n\r\n",
            b"GET /a HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        ] {
            refuses(parse_request, bad);
        }
    }

    /// Asserts that `parse` refuses `raw`.
    fn refuses<T: std::fmt::Debug>(parse: fn(&[u8]) -> Result<Parse<T>, HeadError>, raw: &[u8]) {
        let outcome = parse(raw);
        assert!(
            outcome.is_err(),
            "{:?}: {outcome:?}",
            String::from_utf8_lossy(raw)
        );
    }

    #[test]
    fn partial_heads_wait_and_wrong_ones_fail_early() {
        assert_eq!(parse_request(b"GET /a HT"), Ok(Parse::Partial));
        assert_eq!(
            parse_request(b"GET /a HTTP/1.1\r\nHost: x\r\n"),
            Ok(Parse::Partial)
        );
        assert!(parse_request(b"GET /a HTTP/9").is_err());
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Err(HeadError::TooManyHeaders));
        match parse_request(b"GET / HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n").unwrap() {
            Parse::Complete(head, len) => assert_eq!((head.target.as_str(), len), ("/", 18)),
            Parse::Partial => panic!("complete"),
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(response(b"HTTP/1.1 404\r\n\r\n").unwrap().status, 404);
        assert_eq!(response(b"HTTP/1.1 500 \r\n\r\n").unwrap().status, 500);
        assert_eq!(
            response(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().version,
            Version::Http10
        );
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 OK\r\n\r\n",
            b"HTTP/1.1 600 OK\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"{\"message\": \"page not found\"}\n",
            b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",
        ] {
            refuses(parse_response, bad);
        }
    }

    #[test]
    fn blocking_reads_take_only_the_head() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
        // One byte at a time, as a slow peer sends it.
        let mut reader = io::BufReader::with_capacity(1, &raw[..]);
        let (head, len) = read_response(&mut reader, 1024).unwrap().unwrap();
        assert_eq!(header(&head.headers, "content-length"), Some("4"));
        assert_eq!(len, raw.len() - 4);
        let mut rest = Vec::new();
        io::Read::read_to_end(&mut reader, &mut rest).unwrap();
        assert_eq!(rest, b"body");

        assert!(read_request(&mut &b""[..], 1024).unwrap().is_none());
        assert!(matches!(
            read_request(&mut &b"GET / HTTP/1.1\r\n"[..], 1024),
            Err(ReadError::Closed)
        ));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(2000));
        assert!(matches!(
            read_request(&mut long.as_bytes(), 1024),
            Err(ReadError::Head {
                error: HeadError::TooLarge,
                ..
            })
        ));
        match read_response(&mut &b"SSH-2.0-OpenSSH_9.6\r\nmore\r\n"[..], 1024) {
            Err(e @ ReadError::Head { .. }) => {
                assert_eq!(
                    e.to_string(),
                    "an unreadable head starting \"SSH-2.0-OpenSSH_9.6\""
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(read_request(&mut long.as_bytes(), 4096).unwrap().is_some());
    }

    #[test]
    fn written_heads_read_back_and_cannot_be_split() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            Version::Http11,
            200,
            [
                ("Content-Type", "application/json"),
                ("X-Evil", "a\r\nSet-Cookie: x"),
                ("Bad Name", "v"),
            ],
            Some(2),
            true,
        );
        let head = response(&out).unwrap();
        assert_eq!(
            head.headers,
            vec![
                ("Content-Type".to_string(), "application/json".to_string()),
                ("Content-Length".to_string(), "2".to_string()),
                ("Connection".to_string(), "keep-alive".to_string()),
            ]
        );
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));

        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/x?y=1", [("Host", "h")]).unwrap();
        let head = request(&out).unwrap();
        assert_eq!((head.target.as_str(), head.headers.len()), ("/x?y=1", 1));
        for (method, target) in [
            ("GET", "/a b"),
            ("GET", "/a\r\nX: y"),
            ("GET", "http://example/"),
            ("GET", ""),
            ("GET", "/é"),
            ("G T", "/"),
            ("", "/"),
        ] {
            assert!(
                write_request_head(&mut Vec::new(), method, target, []).is_err(),
                "{method:?} {target:?}"
            );
        }
    }

    #[test]
    fn tokens_of_a_header() {
        let headers = vec![
            ("Connection".to_string(), "keep-alive, Upgrade".to_string()),
            ("connection".to_string(), " close ,".to_string()),
        ];
        assert!(has_token(&headers, "CONNECTION", "close"));
        assert!(has_token(&headers, "connection", "upgrade"));
        assert!(!has_token(&headers, "connection", "keep"));
        assert_eq!(header_tokens(&headers, "connection").count(), 3);
    }
}
