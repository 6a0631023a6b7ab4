//! The `deb` adapter end to end (under construction).
