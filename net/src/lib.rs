//! distk-net
