//! Percent-encoding (RFC 3986 §2.1): one level of decoding, strict, and encoding of
//! everything but the unreserved characters and those a caller keeps.
//!
//! Decoding is strict on purpose: a `%` not followed by two hex digits is an error, never
//! passed through, so that a request cannot mean one thing to us and another to whatever
//! decodes it next.

use std::fmt;

/// A `%` not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedEscape;

impl fmt::Display for MalformedEscape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed percent-encoding")
    }
}

impl std::error::Error for MalformedEscape {}

/// One level of percent-decoding, into bytes.
pub fn decode(s: &str) -> Result<Vec<u8>, MalformedEscape> {
    decode_with(s, false)
}

/// One level of percent-decoding, into UTF-8 text; `None` for a malformed escape or bytes
/// that are not UTF-8.
pub fn decode_utf8(s: &str) -> Option<String> {
    String::from_utf8(decode(s).ok()?).ok()
}

/// A query parameter's name or value (`application/x-www-form-urlencoded`: `+` is a space),
/// decoded into text; bytes that are not UTF-8 become U+FFFD.
pub fn decode_query_component(s: &str) -> Result<String, MalformedEscape> {
    Ok(String::from_utf8_lossy(&decode_with(s, true)?).into_owned())
}

fn decode_with(s: &str, plus_is_space: bool) -> Result<Vec<u8>, MalformedEscape> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    // Two hex digits make one byte.
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(MalformedEscape),
                }
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Percent-encodes every byte but the unreserved characters (ASCII letters, digits, `-`,
/// `.`, `_`, `~`) and those in `keep`.
pub fn encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_one_level_strictly() {
        assert_eq!(decode("a%2Fb%3d").unwrap(), b"a/b=");
        assert_eq!(decode("%252e").unwrap(), b"%2e");
        assert_eq!(decode("a+b").unwrap(), b"a+b");
        for bad in ["%", "%2", "%zz", "a%g0", "100%"] {
            assert_eq!(decode(bad), Err(MalformedEscape), "{bad}");
        }
        assert_eq!(decode_utf8("/%50ods").as_deref(), Some("/Pods"));
        assert_eq!(decode_utf8("/a%ff"), None);
        assert_eq!(decode_query_component("a+b%2B").unwrap(), "a b+");
    }

    #[test]
    fn encodes_all_but_unreserved_and_kept() {
        assert_eq!(encode("a+b/c==~", b""), "a%2Bb%2Fc%3D%3D~");
        assert_eq!(encode("sha256:ab", b":"), "sha256:ab");
        assert_eq!(encode("../x?y", b":"), "..%2Fx%3Fy");
        assert_eq!(encode("é", b""), "%C3%A9");
        for s in ["", "plain", "a b&c=d", "\u{1F600}%"] {
            assert_eq!(decode_utf8(&encode(s, b"")).as_deref(), Some(s));
        }
    }
}
