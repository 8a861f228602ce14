//! Stand-ins for services the server scripts talk to, for any test binary
//! (`mod standins;`). Each is written from its upstream's source or documentation.
#![allow(dead_code)]

pub mod bbb;
pub mod greenlight;
pub mod http;
pub mod scalelite;
