//! Response bodies: how one is delimited (RFC 9112 §6.3) and reading it from a blocking
//! reader under a size cap.
//!
//! The cap is enforced before memory is taken: a `Content-Length` or a chunk size over the
//! cap is refused at once, and a length that promises more than the peer sends costs no
//! more memory than what actually arrived (bodies are read in steps).

use std::fmt;
use std::io::{self, BufRead, Read};

use crate::head::{has_token, header_tokens, ResponseHead, Version};

/// A chunk-size line (hex size and extensions) longer than this is not from a sane server.
const MAX_CHUNK_LINE: usize = 4096;

/// Trailer fields of a chunked body may take this many bytes.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// Bodies are read in steps of at most this much.
const READ_STEP: usize = 256 * 1024;

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// A read failed (including a socket timeout, which the caller classifies).
    Io(io::Error),
    /// The stream ended before the body did.
    Closed,
    /// The framing breaks the grammar; the text says how.
    Malformed(String),
    /// The body is larger than the cap.
    TooLarge { limit: usize },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Io(_) => f.write_str("reading a body"),
            BodyError::Closed => f.write_str("connection closed inside the body"),
            BodyError::Malformed(what) => f.write_str(what),
            BodyError::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for BodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BodyError::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (an answer to HEAD, a 1xx, 204 or 304).
    Empty,
    Length(usize),
    Chunked,
    /// Until the peer closes the connection.
    UntilClose,
}

/// The framing of the body that follows `head`, and whether the connection can carry
/// another request after it. `to_head`: the request was HEAD.
pub fn response_framing(head: &ResponseHead, to_head: bool) -> Result<(Framing, bool), BodyError> {
    let headers = &head.headers;
    let mut reusable =
        head.version == Version::Http11 && !has_token(headers, "connection", "close");
    let has_te = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
    let has_cl = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    let framing = if to_head || crate::status::has_no_body(head.status) {
        // No body, whatever the headers say about the body a GET would have had.
        Framing::Empty
    } else if has_te {
        let codings: Vec<&str> = header_tokens(headers, "transfer-encoding").collect();
        if !matches!(codings.as_slice(), [only] if only.eq_ignore_ascii_case("chunked")) {
            return Err(BodyError::Malformed(format!(
                "unsupported transfer coding {:?}",
                codings.join(", ")
            )));
        }
        // A length beside chunked framing is a sign of a confused (or smuggling)
        // intermediary: use the framing, but never trust the connection again.
        if has_cl {
            reusable = false;
        }
        Framing::Chunked
    } else if has_cl {
        Framing::Length(content_length(&head.headers)?)
    } else {
        reusable = false;
        Framing::UntilClose
    };
    Ok((framing, reusable))
}

/// Every `Content-Length` value must be the same decimal number (RFC 9112 §6.3).
pub fn content_length(headers: &[(String, String)]) -> Result<usize, BodyError> {
    let mut length = None;
    for value in header_tokens(headers, "content-length") {
        let parsed = parse_decimal(value)
            .ok_or_else(|| BodyError::Malformed(format!("invalid Content-Length {value:?}")))?;
        match length {
            Some(previous) if previous != parsed => {
                return Err(BodyError::Malformed(
                    "conflicting Content-Length values".to_string(),
                ))
            }
            _ => length = Some(parsed),
        }
    }
    length.ok_or_else(|| BodyError::Malformed("empty Content-Length".to_string()))
}

fn parse_decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0usize, |n, d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// Reads a body framed by `framing`, of at most `max` bytes.
pub fn read_body<R: BufRead>(
    r: &mut R,
    framing: Framing,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(length) => {
            if length > max {
                return Err(BodyError::TooLarge { limit: max });
            }
            read_exactly(r, &mut body, length, max)?;
        }
        Framing::Chunked => read_chunked(r, &mut body, max)?,
        Framing::UntilClose => read_to_end(r, &mut body, max)?,
    }
    Ok(body)
}

/// Reads one line ending in LF (a CR before it is dropped), charging its length to
/// `budget`; `None` at a clean end of the stream before any byte of the line.
fn read_line<R: BufRead>(
    r: &mut R,
    budget: &mut usize,
    what: &str,
) -> Result<Option<Vec<u8>>, BodyError> {
    let mut line = Vec::new();
    loop {
        let available = match r.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BodyError::Io(e)),
        };
        if available.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(BodyError::Closed);
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if take > *budget {
            return Err(BodyError::Malformed(format!("{what} too long")));
        }
        *budget -= take;
        line.extend_from_slice(&available[..take]);
        r.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some(line));
        }
    }
}

fn read_chunked<R: BufRead>(r: &mut R, body: &mut Vec<u8>, max: usize) -> Result<(), BodyError> {
    loop {
        let mut line_budget = MAX_CHUNK_LINE;
        let line = read_line(r, &mut line_budget, "chunk size line")?.ok_or(BodyError::Closed)?;
        let size = parse_chunk_size(&line)?;
        if size == 0 {
            return read_trailers(r);
        }
        if size > max - body.len() {
            return Err(BodyError::TooLarge { limit: max });
        }
        read_exactly(r, body, size, max)?;
        let mut crlf_budget = 2;
        match read_line(r, &mut crlf_budget, "chunk") {
            Ok(Some(end)) if end.is_empty() => {}
            Ok(None) => return Err(BodyError::Closed),
            Ok(Some(_)) | Err(BodyError::Malformed(_)) => {
                return Err(BodyError::Malformed(
                    "chunk data not followed by CRLF".to_string(),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Trailer fields are read to find the end of the message, then dropped: nothing we talk
/// to sends any that matter.
fn read_trailers<R: BufRead>(r: &mut R) -> Result<(), BodyError> {
    let mut budget = MAX_TRAILER_BYTES;
    loop {
        let line = read_line(r, &mut budget, "trailer")?.ok_or(BodyError::Closed)?;
        if line.is_empty() {
            return Ok(());
        }
        let valid = line.iter().position(|&b| b == b':').is_some_and(|colon| {
            std::str::from_utf8(&line[..colon]).is_ok_and(crate::head::is_token)
        });
        if !valid {
            return Err(BodyError::Malformed(format!(
                "invalid trailer line {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            )));
        }
    }
}

/// `HEX [ws] [; extensions]`: the size must be plain hex digits that fit in a usize.
fn parse_chunk_size(line: &[u8]) -> Result<usize, BodyError> {
    let bad = || {
        BodyError::Malformed(format!(
            "invalid chunk size line {:?}",
            String::from_utf8_lossy(&line[..line.len().min(80)])
        ))
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad());
    }
    let mut rest = &line[digits..];
    while let [b' ' | b'\t', tail @ ..] = rest {
        rest = tail;
    }
    if !(rest.is_empty() || rest[0] == b';') {
        return Err(bad());
    }
    if rest
        .iter()
        .any(|&b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
    {
        return Err(bad());
    }
    line[..digits].iter().try_fold(0usize, |n, &d| {
        let digit = (d as char).to_digit(16).ok_or_else(bad)? as usize;
        n.checked_mul(16)
            .and_then(|n| n.checked_add(digit))
            .ok_or_else(bad)
    })
}

/// Makes room for `needed` bytes in `body`, growing geometrically but never past `max`.
fn grow(body: &mut Vec<u8>, needed: usize, max: usize) {
    if needed > body.capacity() {
        let target = needed.max(body.capacity() * 2).min(max).max(needed);
        body.reserve_exact(target - body.len());
    }
}

fn read_exactly<R: Read>(
    r: &mut R,
    body: &mut Vec<u8>,
    mut length: usize,
    max: usize,
) -> Result<(), BodyError> {
    while length > 0 {
        let step = length.min(READ_STEP);
        let start = body.len();
        grow(body, start + step, max);
        body.resize(start + step, 0);
        if let Err(e) = r.read_exact(&mut body[start..]) {
            return Err(match e.kind() {
                io::ErrorKind::UnexpectedEof => BodyError::Closed,
                _ => BodyError::Io(e),
            });
        }
        length -= step;
    }
    Ok(())
}

fn read_to_end<R: Read>(r: &mut R, body: &mut Vec<u8>, max: usize) -> Result<(), BodyError> {
    loop {
        let start = body.len();
        let step = (max - start).min(READ_STEP);
        if step == 0 {
            // At the limit: the body is acceptable only if it ends right here.
            let mut probe = [0u8; 1];
            return match read_some(r, &mut probe)? {
                0 => Ok(()),
                _ => Err(BodyError::TooLarge { limit: max }),
            };
        }
        grow(body, start + step, max);
        body.resize(start + step, 0);
        let n = read_some(r, &mut body[start..]);
        body.truncate(start + n.as_ref().copied().unwrap_or(0));
        if n? == 0 {
            return Ok(());
        }
    }
}

fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, BodyError> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map_err(BodyError::Io),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::{parse_response, Parse};

    /// Head and body of a raw response.
    fn read(raw: &[u8], to_head: bool, max: usize) -> Result<(Vec<u8>, bool), BodyError> {
        let Ok(Parse::Complete(head, len)) = parse_response(raw) else {
            panic!("bad head in {:?}", String::from_utf8_lossy(raw));
        };
        let (framing, reusable) = response_framing(&head, to_head)?;
        let mut rest = &raw[len..];
        Ok((read_body(&mut rest, framing, max)?, reusable))
    }

    fn malformed(raw: &[u8]) {
        match read(raw, false, 1 << 20) {
            Err(BodyError::Malformed(_)) => {}
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn lengths_and_codings() {
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 9).unwrap(),
            (b"{}".to_vec(), true)
        );
        // Repeated identical lengths are one length.
        assert_eq!(
            read(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
                false,
                9
            )
            .unwrap()
            .0,
            b"abc"
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        ] {
            malformed(bad);
        }
        // HTTP/1.0 and `Connection: close` never keep the connection; neither does a
        // length beside chunked framing, nor a body that runs to the close.
        assert!(
            !read(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 9)
                .unwrap()
                .1
        );
        assert!(
            !read(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
                9
            )
            .unwrap()
            .1
        );
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", false, 9).unwrap(),
            (b"a".to_vec(), false)
        );
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\n\r\nall of it", false, 99).unwrap(),
            (b"all of it".to_vec(), false)
        );
    }

    #[test]
    fn no_body_for_head_204_and_304() {
        assert_eq!(
            read(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, 9).unwrap(),
            (Vec::new(), true)
        );
        for status in ["204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n");
            assert_eq!(read(raw.as_bytes(), false, 9).unwrap(), (Vec::new(), true));
        }
    }

    #[test]
    fn chunks_with_extensions_and_trailers() {
        let (body, reusable) = read(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n\
            4;name=value\r\n[1, \r\n3 ; a=\"b;c\"\r\n2, \r\n9\r\n3]abcdefg\r\n0\r\nX-Trailer: t\r\n\r\n",
            false,
            1 << 20,
        )
        .unwrap();
        assert_eq!(body, b"[1, 2, 3]abcdefg");
        assert!(reusable);
        for chunk in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"+1\r\n",
            b"0x10\r\n",
            b" 1\r\na\r\n",
            b"10000000000000000\r\n",
            b"1 x\r\na\r\n",
            b"2\r\nabc\r\n0\r\n\r\n",
            b"1\r\na\r\n0\r\nbad trailer\r\n\r\n",
        ] {
            let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            raw.extend_from_slice(chunk);
            malformed(&raw);
        }
        // Cut short: the stream ended, not a success with half a body.
        assert!(matches!(
            read(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                false,
                99
            ),
            Err(BodyError::Closed)
        ));
    }

    #[test]
    fn the_cap_holds_for_every_framing() {
        let too_large = |raw: &[u8]| match read(raw, false, 4) {
            Err(BodyError::TooLarge { limit: 4 }) => {}
            other => panic!("{other:?}"),
        };
        too_large(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345");
        too_large(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n123\r\n2\r\n45\r\n0\r\n\r\n");
        too_large(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n");
        too_large(b"HTTP/1.1 200 OK\r\n\r\n12345");
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n1234"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n123\r\n1\r\n4\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n1234",
        ] {
            let (body, _) = read(raw, false, 4).unwrap();
            assert_eq!(body, b"1234");
            assert!(body.capacity() <= 4);
        }
    }
}
