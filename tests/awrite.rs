//! awrite: the writer.

use crate::util::*;

#[test]
fn writes_stdin() {
    let env = Env::new();
    let out = env.cmd("awrite").arg("out.txt").stdin("hi\n").run().ok();
    assert_eq!(env.read("out.txt"), "hi\n");
    assert_eq!(out.stdout(), "");
    assert_eq!(env.ls(), ["out.txt"]);
}

#[test]
fn no_input_is_an_error() {
    let env = Env::new();
    let out = env.cmd("awrite").arg("out.txt").run().code_is(1);
    snap!("awrite_no_input", out.stderr());
    assert!(env.ls().is_empty());
}
