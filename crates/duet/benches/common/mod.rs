//! What the benchmarks share: starting the duet binary, and reading a process's CPU time.
#![allow(dead_code)] // each benchmark uses its own subset

use std::process::{Child, Command, Stdio};

pub mod http;
pub mod routing;

/// Starts `duet` with `args` (behind `prefix`, e.g. `taskset -c 0`, which execs it in
/// place so the PID is duet's) and waits for its address; returns the process and the
/// address it printed (`host:port`).
pub fn start_duet(prefix: &[&str], args: &[&str]) -> (Child, String) {
    let duet = env!("CARGO_BIN_EXE_duet");
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(duet);
            command
        }
        None => Command::new(duet),
    };
    let mut child = command
        .args(args)
        .env("DUET_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start duet");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("duet prints its address");
    assert!(line.contains("listening"), "{line}");
    let address =
        line.split_whitespace().last().expect("an address").trim_start_matches("http://").to_owned();
    (child, address)
}

/// User and system CPU time of process `pid`, in microseconds: where the time goes (the
/// program's own code, or the kernel's).
pub fn cpu_split_us(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let fields: Vec<&str> = stat.rsplit(')').next().expect("stat").split_whitespace().collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count") * 1e6 / 100.0; // USER_HZ
    (ticks(11), ticks(12))
}

/// User plus system CPU time of process `pid`, in microseconds.
pub fn cpu_us(pid: u32) -> f64 {
    let (user, system) = cpu_split_us(pid);
    user + system
}

/// Raises the open-file limit, soft and hard, for `count` connections: this process holds
/// the client side, and the server it starts inherits the limit (duet keeps 80 % of its
/// open files for WebSockets without TURN, so it needs a quarter more than the
/// connections). Raising the hard limit needs CAP_SYS_RESOURCE; without it, how many fit,
/// said on the output (`what` names them). Returns how many to open.
pub fn open_files_for(count: usize, what: &str) -> usize {
    use rlimit::Resource;
    const SPARE: u64 = 2_000;
    let wanted = count as u64 * 5 / 4 + SPARE;
    let (soft, hard) = Resource::NOFILE.get().expect("read the open-file limit");
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return count;
    }
    let limit = rlimit::increase_nofile_limit(wanted).unwrap_or(soft);
    if limit >= wanted {
        return count;
    }
    let fits = usize::try_from(limit.saturating_sub(SPARE) * 4 / 5).unwrap_or(0).max(100);
    println!(
        "(the open-file limit is {limit} and cannot be raised here (no CAP_SYS_RESOURCE): {count} {what} need \
         {wanted}; measuring {fits})"
    );
    fits
}
