//! SIGHUP: what can change without dropping a call is read again and applied, and the log
//! says what changed.
//!
//! ```text
//!  SIGHUP ─► access files (accounts, invites, sign-outs) ─► sockets rechecked
//!         └► the configuration again (command line + environment + --config file)
//!              wrong? ─► logged, nothing changes
//!              log level, allowed origins, trusted proxies ─► applied at once
//!              anything else changed ─► "takes effect after a restart: listen, …"
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::limits::Slots;
use crate::signaling::Signaling;

/// The settings SIGHUP applies, as `duet config` names them.
const RELOADABLE: [&str; 4] = ["log.level", "allowed-origin", "trusted-proxy", "allowed-host"];

/// Applies a new log level (`info`, `debug,duet::acme=trace`, ...).
pub type SetLogLevel = Box<dyn Fn(&str) -> anyhow::Result<()> + Send + Sync>;

/// How to read the configuration again.
pub struct Reconfigure {
    /// The command line duet started with (the file it names is read again).
    pub argv: Vec<OsString>,
    /// The effective configuration (`duet config`'s text) now in force.
    pub effective: Mutex<String>,
    pub set_log_level: SetLogLevel,
}

impl std::fmt::Debug for Reconfigure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconfigure").field("argv", &self.argv).finish_non_exhaustive()
    }
}

/// What a SIGHUP reaches.
#[derive(Debug)]
pub struct Reload {
    pub signaling: Arc<Signaling>,
    pub access: Arc<Access>,
    /// The web port's connection places (trusted proxies are held to the total only).
    pub slots: Slots,
    pub reconfigure: Option<Reconfigure>,
}

impl Reload {
    /// Reloads on every SIGHUP until `shutdown`.
    pub async fn on_sighup(self, shutdown: CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload by restarting");
            return;
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(()) = hangups.recv() => {
                    self.signaling.reload().await;
                    if let Some(reconfigure) = &self.reconfigure {
                        self.apply(reconfigure);
                    }
                }
            }
        }
    }

    /// Reads the configuration again and applies what can change while running.
    fn apply(&self, reconfigure: &Reconfigure) {
        let (config, effective) = match crate::cli::serve_config_from(&reconfigure.argv) {
            Ok(read) => read,
            Err(e) => {
                tracing::error!("SIGHUP: the configuration has an error, nothing in it changed: {e:#}");
                return;
            }
        };
        let mut now = reconfigure.effective.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = changed_keys(&now, &effective);
        let mut applied = Vec::new();
        if changed.iter().any(|k| k == "log.level") {
            match (reconfigure.set_log_level)(&config.log_level) {
                Ok(()) => applied.push(format!("log level: {}", config.log_level)),
                Err(e) => tracing::error!("SIGHUP: cannot change the log level: {e:#}"),
            }
        }
        let access = &config.access;
        applied.extend(self.access.set_lists(crate::access::Lists::of(access)));
        self.slots.set_exempt(access.trusted_proxies.clone());
        let later: Vec<&str> =
            changed.iter().map(String::as_str).filter(|k| !RELOADABLE.contains(k)).collect();
        match applied.is_empty() {
            true => tracing::info!("SIGHUP: the configuration's reloadable settings are unchanged"),
            false => tracing::info!("SIGHUP: reloaded the configuration: {}", applied.join("; ")),
        }
        if !later.is_empty() {
            tracing::warn!(
                "SIGHUP: these changed but take effect only after a restart: {}",
                later.join(", ")
            );
        }
        *now = effective;
    }
}

/// The settings (`section.key`) whose values differ between two effective configurations.
fn changed_keys(before: &str, after: &str) -> Vec<String> {
    let (before, after) = (settings(before), settings(after));
    let mut keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.retain(|k| before.get(k) != after.get(k));
    keys
}

/// `section.key` → value for every setting in force (the lines not commented out).
fn settings(effective: &str) -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut found = BTreeMap::new();
    for line in effective.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        } else if let Some((key, value)) = line.split_once(" = ")
            && !line.starts_with('#')
        {
            found.insert(format!("{section}{key}"), value.to_owned());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_that_changed_are_named_with_their_section() {
        let before =
            "# note\nlisten = \"0.0.0.0:443\"\n# ring-timeout = \"30s\"\n\n[log]\n\nlevel = \"info\"\n";
        let after = "listen = \"0.0.0.0:443\"\nring-timeout = \"45s\"\n[log]\nlevel = \"debug\"\n[turn]\nrelay-ports = \"1-2\"\n";
        assert_eq!(changed_keys(before, after), ["log.level", "ring-timeout", "turn.relay-ports"]);
        assert!(changed_keys(after, after).is_empty());
    }
}
