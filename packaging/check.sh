#!/usr/bin/env bash
# The package as an operator gets it: the systemd units (duet, and duet-turn for a
# TURN-only node) pass `systemd-analyze verify`,
# the .deb builds from the release binary, installs with dpkg, and its `duet --version`
# and example configuration work; then it is removed again (purged: nothing stays).
#
#   packaging/check.sh      (run by ../test.sh after the release build; needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/duet"
[ -x "$bin" ] || { echo "packaging/check.sh: build $bin first (cargo build --release -p duet)" >&2; exit 1; }
dpkg -s duet >/dev/null 2>&1 && { echo "packaging/check.sh: a duet package is installed already; not touching it" >&2; exit 1; }

work=$(mktemp -d)
cleanup() {
  dpkg --purge duet >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "the unit: systemd-analyze verify"
sed "s|/usr/bin/duet|$bin|" packaging/duet.service > "$work/duet.service"
systemd-analyze verify "$work/duet.service"
# Exposure at most 3.0 of 10 ("OK"); the threshold counts in tenths.
systemd-analyze security --offline=yes --threshold=30 "$work/duet.service" | tail -n 1

sed "s|/usr/bin/duet|$bin|" packaging/duet-turn.service > "$work/duet-turn.service"
systemd-analyze verify "$work/duet-turn.service"
systemd-analyze security --offline=yes --threshold=30 "$work/duet-turn.service" | tail -n 1

echo "the package: cargo deb, dpkg -i"
cargo deb -p duet --no-build --strip --output "$work/duet.deb" >/dev/null
dpkg -i "$work/duet.deb"
test -f /usr/lib/systemd/system/duet.service
test -f /etc/duet/duet.toml
/usr/bin/duet --version
# The example configuration is complete: duet reads it and would start from it.
/usr/bin/duet config --config /etc/duet/duet.toml >"$work/effective.toml" 2>"$work/notes"
if [ -s "$work/notes" ]; then cat "$work/notes" >&2; exit 1; fi
grep -q '^mode = "members"' "$work/effective.toml"
# The README's one edit, the domain in [acme], makes a configuration that would start.
sed 's/^# domain = /domain = /' /etc/duet/duet.toml >"$work/with-domain.toml"
/usr/bin/duet config --config "$work/with-domain.toml" >"$work/effective.toml" 2>"$work/notes"
if [ -s "$work/notes" ]; then cat "$work/notes" >&2; exit 1; fi
grep -q '^domain = \["call.example.org"\]' "$work/effective.toml"
# The TURN node's unit and settings: the example settings file and a secret file start
# a node (on loopback here), which says where it listens.
test -f /usr/lib/systemd/system/duet-turn.service
printf 'a secret shared with the signaling nodes\n' >"$work/turn-secret"
(set -a; . /etc/duet/turn.env; DUET_TURN_LISTEN=127.0.0.1:0 DUET_NO_METRICS=true \
  exec /usr/bin/duet turn --turn-secret-file "$work/turn-secret") >"$work/turn.out" 2>"$work/turn.err" &
turn_pid=$!
for _ in $(seq 50); do grep -q 'duet turn is listening on 127.0.0.1:' "$work/turn.out" && break; sleep 0.1; done
kill "$turn_pid"; wait "$turn_pid" || true
grep -q 'duet turn is listening on 127.0.0.1:' "$work/turn.out" || { cat "$work/turn.err" >&2; exit 1; }
dpkg --purge duet >/dev/null
test ! -e /usr/bin/duet
echo "the package installs, runs and leaves again"
