//! The `maven` adapter end to end (under construction).
