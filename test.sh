#!/usr/bin/env bash
# Runs every test duet has, installing what the tests need first.
#
#   ./test.sh            everything: format, lints, Rust tests, browser tests
#
# Installs (if missing): Debian's chromium, firefox-esr, coturn, pebble, redis-server and
# haproxy (apt: two real browser engines, coturn's turnutils as independent TURN clients,
# Let's Encrypt's test CA with its DNS, the store and the load balancer of several nodes),
# the e2e npm packages (npm ci), cargo-fuzz and cargo-deb (cargo install).
# Browser tests run in a fresh network namespace that holds only loopback, so nothing
# leaves the machine and parallel runs cannot collide on ports.
# Any missing tool or failed step stops the run with a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root (or sudo) to run: $*"
  fi
}

# --- what the tests need ---------------------------------------------------------------
# cargo-fuzz and cargo-deb compile (CPU) while apt and npm download (network): at once.
cargo_tools=()
command -v cargo-fuzz >/dev/null || cargo_tools+=(cargo-fuzz)
command -v cargo-deb >/dev/null || cargo_tools+=(cargo-deb)
cargo_log=$(mktemp)
cargo_pid=
if [ ${#cargo_tools[@]} -gt 0 ]; then
  step "installing ${cargo_tools[*]} (cargo install, in the background)"
  cargo install --locked "${cargo_tools[@]}" >"$cargo_log" 2>&1 &
  cargo_pid=$!
  # A failed step below stops the run: the install stops with it.
  trap '[ -z "$cargo_pid" ] || kill "$cargo_pid" 2>/dev/null || true' EXIT
fi

apt_packages=()
command -v chromium >/dev/null || apt_packages+=(chromium)
command -v firefox-esr >/dev/null || apt_packages+=(firefox-esr)
command -v turnutils_uclient >/dev/null || apt_packages+=(coturn)
command -v openssl >/dev/null || apt_packages+=(openssl)
command -v unshare >/dev/null || apt_packages+=(util-linux)
{ command -v ip && command -v tc; } >/dev/null || apt_packages+=(iproute2)
command -v node >/dev/null || apt_packages+=(nodejs npm)
command -v systemd-analyze >/dev/null || apt_packages+=(systemd)
command -v pebble >/dev/null || apt_packages+=(pebble)
command -v redis-server >/dev/null || apt_packages+=(redis-server)
command -v haproxy >/dev/null || apt_packages+=(haproxy)
# A session bus and a notification service on it (e2e/bin/notifications.py): clicks on
# the browser's notifications.
command -v dbus-daemon >/dev/null || apt_packages+=(dbus-daemon)
/usr/bin/python3 -c 'import dbus, gi' 2>/dev/null || apt_packages+=(python3-dbus python3-gi)
# Firefox shows notifications through libnotify.
dpkg -s libnotify4 >/dev/null 2>&1 || apt_packages+=(libnotify4)
if [ ${#apt_packages[@]} -gt 0 ]; then
  step "installing ${apt_packages[*]} (apt)"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${apt_packages[@]}"
fi
for tool in chromium firefox-esr openssl turnutils_uclient turnutils_peer turnutils_stunclient unshare ip tc node npm cargo systemd-analyze dpkg pebble pebble-challtestsrv redis-server haproxy dbus-daemon; do
  command -v "$tool" >/dev/null || die "$tool is still missing after installing packages"
done
/usr/bin/python3 -c 'import dbus, gi' || die "python3-dbus and python3-gi are still missing after installing packages"
dpkg -s libnotify4 >/dev/null 2>&1 || die "libnotify4 is still missing after installing packages"

step "installing browser-test packages (npm ci)"
(cd e2e && npm ci --no-audit --no-fund)

if [ -n "$cargo_pid" ]; then
  step "waiting for cargo install ${cargo_tools[*]}"
  status=0
  wait "$cargo_pid" || status=$?
  cargo_pid=
  [ "$status" -eq 0 ] || { tail -n 40 "$cargo_log" >&2; die "cargo install ${cargo_tools[*]} failed (its last lines above)"; }
  tail -n 2 "$cargo_log"
fi
rm -f "$cargo_log"
for tool in cargo-fuzz cargo-deb; do
  command -v "$tool" >/dev/null || die "$tool is still missing after cargo install"
done

# --- Rust ------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test"
cargo test --workspace --locked
step "cargo build --release (the binary the browser tests run)"
cargo build --release --locked -p duet

step "the package: systemd unit verified, .deb built, installed with dpkg, run, purged"
as_root ./packaging/check.sh

# --- benchmarks ------------------------------------------------------------------------
# Each runs in its quick mode, so a benchmark that breaks is noticed here; the figures
# are for reading, the full runs are in the README.
step "benchmarks, quick: signaling, TURN (against coturn), echo, access, soak, cluster (two nodes on Redis), call history, push (against web-push-testing and npm web-push)"
for bench in signaling turn echo access soak cluster history push; do
  cargo bench --locked -p duet --bench "$bench" -- --quick
done

# --- fuzzing ---------------------------------------------------------------------------
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain take them.
step "fuzz targets: build, then run each briefly"
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1
  cargo fuzz build
  for target in $(cargo fuzz list); do
    cargo fuzz run "$target" -- -max_total_time="${DUET_FUZZ_SECONDS:-10}" -print_final_stats=0 2>&1 | tail -n 2
  done
)

# --- browsers --------------------------------------------------------------------------
step "browser tests (headless Chromium and Firefox, loopback-only network namespace)"
ns=(unshare --net)
[ "$(id -u)" -eq 0 ] || ns=(unshare --net --map-root-user)
export DUET_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/duet"
[ -x "$DUET_BIN" ] || die "the release build did not produce $DUET_BIN"
"${ns[@]}" -- sh -c 'ip link set lo up && cd e2e && exec node --test --test-concurrency=2 --test-reporter=spec tests/'

step "call-setup benchmark, quick (headless Chromium, loopback-only network namespace)"
"${ns[@]}" -- sh -c 'ip link set lo up && cd e2e && exec node bench/call-setup.mjs 3'

step "browser tests that cut the network (each file alone in its own namespace)"
for file in e2e/isolated/*.test.mjs; do
  "${ns[@]}" -- sh -c 'ip link set lo up && cd e2e && exec node --test --test-reporter=spec "$1"' sh "${file#e2e/}"
done

step "all tests passed"
