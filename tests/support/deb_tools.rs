//! Debian archive tools for tests/deb.rs (under construction).
