//! Maven tools for tests/maven.rs (under construction).
