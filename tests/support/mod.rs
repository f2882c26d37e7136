//! What the integration tests share: a plain HTTP client, a fake Docker daemon, the real
//! binary started as a master, and where the recorded real API data lives. Each test module
//! uses a different part of it.

#![allow(dead_code)]

pub(crate) mod client;
pub(crate) mod fake_docker;
pub(crate) mod master;
pub(crate) mod realdata;
