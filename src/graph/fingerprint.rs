//! Fingerprints of observed objects: a hash of an object's JSON that leaves out the fields
//! that change while the object itself does not.
//!
//! A resource keeps its `timestamp` across refreshes while its fingerprint is unchanged, so
//! a client can tell what changed by comparing timestamps. Which fields change without the
//! object changing is the source's business (Kubernetes bumps `resourceVersion`; a process
//! row carries CPU readings): the reader of each source names them, this module only hashes.
//! The hash is computed while the text is parsed, without building a tree.

use std::fmt;
use std::hash::Hasher;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A keyed hash of a text, the same for the same text within this process: finds the
/// previous copy of an object that did not change, without letting whoever writes the
/// objects choose collisions.
pub(crate) fn text_hash(text: &str) -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(RandomState::new).hash_one(text)
}

/// A hash of bytes that is the same in every process and build: for ETags that must
/// survive a restart of whoever computes them.
pub(crate) fn bytes_hash(bytes: &[u8]) -> u64 {
    let mut hasher = Fnv64::default();
    hasher.write(bytes);
    hasher.finish()
}

/// Any JSON text, nothing ignored.
pub fn plain(text: &str) -> Result<u64, serde_json::Error> {
    ignoring(text, &[])
}

/// A JSON text with the values of the keys `ignored` left out, at any depth.
pub fn ignoring(text: &str, ignored: &[&str]) -> Result<u64, serde_json::Error> {
    let mut hasher = Fnv64::default();
    let mut de = serde_json::Deserializer::from_str(text);
    HashSeed {
        hasher: &mut hasher,
        ignored,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(hasher.finish())
}

/// FNV-1a: fast on short keys and values, and stable across runs and builds (the standard
/// library's hasher promises neither), which keeps fingerprints comparable in tests.
pub(crate) struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

struct HashSeed<'h, 'i> {
    hasher: &'h mut Fnv64,
    ignored: &'i [&'i str],
}

impl<'de> DeserializeSeed<'de> for HashSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

// Each value is tagged with a type byte and strings carry their length, so that different
// documents cannot feed the hasher the same byte stream.
impl<'de> Visitor<'de> for HashSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.hasher.write(&[b'b', u8::from(v)]);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.hasher.write(b"i");
        self.hasher.write(&v.to_le_bytes());
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.hasher.write(b"u");
        self.hasher.write(&v.to_le_bytes());
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.hasher.write(b"f");
        self.hasher.write(&v.to_bits().to_le_bytes());
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.hasher.write(b"s");
        self.hasher.write(&(v.len() as u64).to_le_bytes());
        self.hasher.write(v.as_bytes());
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.hasher.write(b"n");
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        self.hasher.write(b"n");
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.hasher.write(b"[");
        while seq
            .next_element_seed(HashSeed {
                hasher: &mut *self.hasher,
                ignored: self.ignored,
            })?
            .is_some()
        {}
        self.hasher.write(b"]");
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.hasher.write(b"{");
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if self.ignored.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.hasher.write(b"k");
            self.hasher.write(&(key.len() as u64).to_le_bytes());
            self.hasher.write(key.as_bytes());
            map.next_value_seed(HashSeed {
                hasher: &mut *self.hasher,
                ignored: self.ignored,
            })?;
        }
        self.hasher.write(b"}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_keys_do_not_count_at_any_depth() {
        let a = r#"{"metadata":{"name":"n","resourceVersion":"1","managedFields":[{"x":1}]},
            "status":{"conditions":[{"type":"Ready","lastHeartbeatTime":"2026-01-01T00:00:00Z"}]}}"#;
        let b = r#"{"metadata":{"name":"n","resourceVersion":"2","managedFields":[]},
            "status":{"conditions":[{"type":"Ready","lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}}"#;
        let c = r#"{"metadata":{"name":"n","resourceVersion":"2"},
            "status":{"conditions":[{"type":"NotReady","lastHeartbeatTime":"2026-01-01T00:00:10Z"}]}}"#;
        let volatile = ["resourceVersion", "managedFields", "lastHeartbeatTime"];
        let hash = |text| ignoring(text, &volatile).unwrap();
        assert_eq!(hash(a), hash(b));
        assert_ne!(hash(b), hash(c));
    }

    #[test]
    fn distinct_documents_hash_apart() {
        let docs = [
            r#"{"a":"bc"}"#,
            r#"{"ab":"c"}"#,
            r#"{"a":["b","c"]}"#,
            r#"{"a":"b","c":null}"#,
            r#"[1]"#,
            r#"[1.0]"#,
            r#"["1"]"#,
            r#"[true]"#,
            r#"[[]]"#,
            r#"[{}]"#,
        ];
        let hashes: std::collections::HashSet<u64> =
            docs.iter().map(|d| plain(d).unwrap()).collect();
        assert_eq!(hashes.len(), docs.len());
    }

    #[test]
    fn escapes_are_hashed_by_meaning() {
        assert_eq!(
            plain(r#"{"a":"\u0041"}"#).unwrap(),
            plain(r#"{"a":"A"}"#).unwrap()
        );
    }

    #[test]
    fn invalid_json_is_an_error() {
        for bad in ["", "{", r#"{"a":}"#, "[1,]", "1 2", "nul"] {
            assert!(plain(bad).is_err(), "{bad}");
        }
    }
}
