//! Tests that need a network of their own: each re-runs its test binary, for just
//! itself, inside a fresh network namespace (`unshare --net`) holding only `lo`, so
//! nothing can leave and well-known ports (443, 80, 3478) are free.

use std::process::Command;

const INSIDE: &str = "DUET_TEST_IN_NETNS";

/// Outside the namespace: runs `test` inside a fresh one (after `lo` is up, `setup`
/// runs there as a shell command, e.g. to add an address) and asserts it passed; returns
/// false. Inside: returns true, and the caller runs the test's body.
pub fn inside_namespace(test: &str, setup: &str) -> bool {
    if std::env::var_os(INSIDE).is_some() {
        return true;
    }
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut unshare = Command::new("unshare");
    unshare.arg("--net");
    if !root {
        unshare.arg("--map-root-user");
    }
    let setup = if setup.is_empty() { String::new() } else { format!("{setup} && ") };
    let script =
        format!("ip link set lo up && {setup}exec \"$0\" --exact \"$1\" --nocapture --test-threads=1");
    let status = unshare
        .args(["--", "sh", "-c", &script])
        .arg(std::env::current_exe().expect("the test binary"))
        .arg(test)
        .env(INSIDE, "1")
        .status()
        .expect("unshare and ip run (util-linux, iproute2: ./test.sh installs them)");
    assert!(status.success(), "{test} failed inside its network namespace");
    false
}
