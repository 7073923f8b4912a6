//! Placeholder until the housekeep applet lands.

use awrite_lib::error::Error;

pub fn main(applet: &str, _args: &[String]) -> i32 {
    crate::common::fail(&Error::other(applet, "not yet available in this version"))
}
