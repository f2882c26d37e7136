//! How an error is written where it is reported (a log line, `/status`, an error answer,
//! stderr): with its causes, outermost first, `what was being done: why: why that`.
//!
//! Each error type of the project says only its own level in `Display` and hands its cause
//! over through `source()`; this is the one place that puts them together.

use std::error::Error;

/// `error` and every cause behind it, joined by `": "`.
pub fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("reading the token")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_follow_their_error() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&e), "reading the token: disk on fire");
        assert_eq!(chain(&e.0), "disk on fire");
    }
}
