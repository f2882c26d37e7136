//! Resource IDs: text shared by a resource, its relations and the history, hashed once.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// A resource ID (`Pod:default/web-1`): shared by the resource, its relations and the
/// history rather than copied into each, and hashed once, when it is made. The hash is
/// keyed with this process's random key, so IDs chosen by whoever names pods cannot be
/// made to collide; maps keyed by IDs then only mix those hashes (see [`IdHasher`]).
#[derive(Clone)]
pub struct Id {
    text: Arc<str>,
    hash: u64,
}

impl Id {
    pub fn new(text: String) -> Id {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        let hash = KEY.get_or_init(RandomState::new).hash_one(text.as_str());
        Id {
            text: Arc::from(text),
            hash,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The keyed hash of the text: equal IDs have equal digests.
    pub(super) fn digest(&self) -> u64 {
        self.hash
    }
}

impl From<String> for Id {
    fn from(text: String) -> Id {
        Id::new(text)
    }
}

impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        // Copies of one ID share its text: no need to read it.
        self.hash == other.hash && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Mixes values that are already keyed hashes (IDs) or small tags (relation kinds).
#[derive(Default)]
pub(super) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    fn write_isize(&mut self, x: isize) {
        self.write_u64(x as u64);
    }
}

pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
pub(super) type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;
