//! The config file (`--config duet.toml`, or `DUET_CONFIG`): every serve option, under
//! the flag's own name, grouped in sections by the flag's first word.
//!
//! ```text
//!  listen = "0.0.0.0:443"            ─► --listen 0.0.0.0:443
//!  [turn]  relay-ports = "50000-50999" ─► --turn-relay-ports 50000-50999
//!  [access] mode = "members"  password-file = "…" ─► --access members --access-password-file …
//!  no-echo = true                     ─► --no-echo        (a flag: true or false)
//!  [turn]  denied-peer = ["10.0.0.0/8", "192.168.0.0/16"] ─► repeated
//! ```
//!
//! A flag beats an environment variable, which beats the file: a setting from the file
//! is added only for options that neither gave. Each value goes through the option's own
//! parser before anything starts, so a wrong one is reported with the file's line and
//! key; an unknown key is an error too (a typo would otherwise be silently ignored).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use toml::de::{DeTable, DeValue};

/// The sections: a flag that starts with one of these words (`--turn-…`) is written in
/// that section; others stand at the top. Longer names first, so `external-turn` wins
/// over nothing and `turn` over nothing.
pub const SECTIONS: [&str; 10] =
    ["external-turn", "access", "limit", "metrics", "turn", "tls", "log", "acme", "http", "push"];

/// A flag named like a section is written as `mode` inside it: `[access] mode = "members"`
/// for `--access members` (TOML cannot have both a key and a table called `access`).
const SECTION_FLAGS: [&str; 1] = ["access"];

/// The flag a section's key stands for (`turn`, `relay-ports` → `turn-relay-ports`).
fn flag_of(section: &str, key: &str) -> String {
    if key == "mode" && SECTION_FLAGS.contains(&section) {
        section.to_owned()
    } else {
        format!("{section}-{key}")
    }
}

/// The section and key a flag is written under (`turn-relay-ports` → `turn`, `relay-ports`).
pub fn key_of(flag: &str) -> (Option<&'static str>, &str) {
    if let Some(section) = SECTIONS.iter().find(|s| SECTION_FLAGS.contains(s) && **s == flag) {
        return (Some(section), "mode");
    }
    for section in SECTIONS {
        if let Some(key) = flag.strip_prefix(section).and_then(|rest| rest.strip_prefix('-')) {
            return (Some(section), key);
        }
    }
    (None, flag)
}

/// One setting of the file.
#[derive(Debug, Clone, PartialEq)]
struct Setting {
    /// The flag it stands for, without `--`.
    flag: String,
    /// As written: `turn.relay-ports`.
    key: String,
    line: usize,
    value: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    /// One value, or several (an array).
    Text(Vec<String>),
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

/// The settings of a TOML document.
fn settings(text: &str, path: &Path) -> anyhow::Result<Vec<Setting>> {
    let doc = DeTable::parse(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (key, value) in doc.get_ref() {
        let line = line_of(text, key.span().start);
        match value.get_ref() {
            DeValue::Table(table) => {
                let section = key.get_ref().as_ref();
                if !SECTIONS.contains(&section) {
                    anyhow::bail!("{}:{line}: there is no section [{section}]", path.display());
                }
                for (inner, value) in table {
                    let line = line_of(text, inner.span().start);
                    let name = inner.get_ref().as_ref();
                    let key = format!("{section}.{name}");
                    out.push(setting(flag_of(section, name), key, line, value.get_ref(), path)?);
                }
            }
            other => {
                let name = key.get_ref().as_ref();
                out.push(setting(name.to_owned(), name.to_owned(), line, other, path)?);
            }
        }
    }
    Ok(out)
}

fn setting(
    flag: String,
    key: String,
    line: usize,
    value: &DeValue<'_>,
    path: &Path,
) -> anyhow::Result<Setting> {
    let scalar = |value: &DeValue<'_>| match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.as_str().to_owned()),
        DeValue::Float(f) => Some(f.as_str().to_owned()),
        _ => None,
    };
    let value = match value {
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Array(items) => Value::Text(
            items.iter().map(|item| scalar(item.get_ref())).collect::<Option<Vec<_>>>().ok_or_else(|| {
                anyhow::anyhow!("{}:{line}: {key}: a list of texts or numbers", path.display())
            })?,
        ),
        other => Value::Text(vec![scalar(other).ok_or_else(|| {
            anyhow::anyhow!(
                "{}:{line}: {key}: a {} is no value for this option",
                path.display(),
                other.type_str()
            )
        })?]),
    };
    Ok(Setting { flag, key, line, value })
}

/// The serve options' matches, wherever they are (`duet`, `duet serve`, `duet config`).
pub(crate) fn serve_matches(matches: &ArgMatches) -> Option<(&ArgMatches, Option<&'static str>)> {
    match matches.subcommand() {
        None => Some((matches, None)),
        Some(("serve", sub)) => Some((sub, Some("serve"))),
        Some(("config", sub)) => Some((sub, Some("config"))),
        Some(_) => None,
    }
}

/// `argv` with the config file's settings added where neither a flag nor an environment
/// variable set the option; `argv` unchanged without a config file.
pub fn merged(command: &Command, argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let matches = match command.clone().try_get_matches_from(&argv) {
        Ok(matches) => matches,
        Err(_) => return Ok(argv), // the real parse says what is wrong
    };
    let Some((serve, sub)) = serve_matches(&matches) else { return Ok(argv) };
    let Some(path) = serve.get_one::<PathBuf>("config").cloned() else { return Ok(argv) };
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
    let options = match sub {
        Some(name) => command.find_subcommand(name).expect("a known subcommand").clone(),
        None => command.clone(),
    };
    let mut extra = Vec::new();
    for setting in settings(&text, &path)? {
        let at = |message: String| {
            anyhow::anyhow!("{}:{}: {}: {message}", path.display(), setting.line, setting.key)
        };
        let Some(arg) = options.get_arguments().find(|a| a.get_long() == Some(setting.flag.as_str())) else {
            return Err(at("there is no such option (see `duet config` for them all)".into()));
        };
        if setting.flag == "config" {
            return Err(at("a config file cannot name another".into()));
        }
        let given = |id: &str| {
            matches!(serve.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable))
        };
        if given(arg.get_id().as_str()) {
            continue; // a flag or the environment said otherwise
        }
        let conflicts = |a: &clap::Arg, b: &clap::Arg| {
            options.get_arg_conflicts_with(a).iter().any(|c| c.get_id() == b.get_id())
        };
        let excluded = options
            .get_arguments()
            .any(|other| given(other.get_id().as_str()) && (conflicts(arg, other) || conflicts(other, arg)));
        if excluded {
            continue; // a flag that excludes this one was given (`--no-metrics` over `[metrics] listen`)
        }
        let takes_values = arg.get_action().takes_values();
        match (&setting.value, takes_values) {
            (Value::Bool(true), false) => extra.push(OsString::from(format!("--{}", setting.flag))),
            (Value::Bool(false), false) => {}
            (Value::Text(_), false) => return Err(at("write true or false".into())),
            (Value::Bool(_), true) => return Err(at("this option takes a value, not true or false".into())),
            (Value::Text(values), true) => {
                let many = matches!(arg.get_action(), clap::ArgAction::Append);
                if values.len() != 1 && !many {
                    return Err(at("this option takes one value".into()));
                }
                for value in values {
                    let token = OsString::from(format!("--{}={value}", setting.flag));
                    // The option's own parser judges the value, alone, before anything starts.
                    let alone = options.clone().try_get_matches_from([OsString::from("duet"), token.clone()]);
                    alone.map_err(|e| at(clap_reason(&e)))?;
                    extra.push(token);
                }
            }
        }
    }
    let mut argv = argv;
    argv.extend(extra);
    Ok(argv)
}

/// A clap error without its "error: " and usage lines.
fn clap_reason(error: &clap::Error) -> String {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or(&text);
    first.trim_start_matches("error: ").to_owned()
}

/// The effective configuration as a commented TOML file: every option with its help,
/// what it is set to (by a flag, the environment or the file) or, commented out, its
/// default. Secrets are not written.
pub fn effective(options: &Command, matches: &ArgMatches) -> String {
    const SECRETS: [&str; 3] = ["turn-secret", "external-turn-secret", "turn-user"];
    let mut top = String::new();
    let mut sections: Vec<(&str, String)> = SECTIONS.iter().map(|s| (*s, String::new())).collect();
    for arg in options.get_arguments() {
        let Some(flag) = arg.get_long() else { continue };
        if matches!(flag, "help" | "version" | "config") || arg.is_hide_set() {
            continue;
        }
        let (section, key) = key_of(flag);
        let out = match section {
            Some(name) => &mut sections.iter_mut().find(|(s, _)| *s == name).expect("a known section").1,
            None => &mut top,
        };
        if let Some(help) = arg.get_help() {
            out.push_str(&comment(&help.to_string()));
        }
        let choices: Vec<String> =
            arg.get_possible_values().iter().map(|v| v.get_name().to_owned()).collect();
        if !choices.is_empty() {
            out.push_str(&format!("# One of: {}.\n", choices.join(", ")));
        }
        let set = matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        let takes_values = arg.get_action().takes_values();
        let values: Vec<String> = if !takes_values {
            vec![matches.get_flag(arg.get_id().as_str()).to_string()]
        } else if set {
            matches
                .get_raw(arg.get_id().as_str())
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        } else {
            arg.get_default_values().iter().map(|v| v.to_string_lossy().into_owned()).collect()
        };
        let shown = if SECRETS.contains(&flag) && set {
            "\"(set, not shown)\"".to_owned()
        } else if !takes_values {
            values.first().cloned().unwrap_or_else(|| "false".into())
        } else if matches!(arg.get_action(), clap::ArgAction::Append) {
            format!("[{}]", values.iter().map(|v| quoted(v)).collect::<Vec<_>>().join(", "))
        } else {
            let example = choices.first().map(String::as_str).unwrap_or("");
            quoted(values.first().map_or(example, String::as_str))
        };
        let active = set && !(SECRETS.contains(&flag));
        let prefix = if active { "" } else { "# " };
        out.push_str(&format!("{prefix}{key} = {shown}\n\n"));
    }
    let mut file = String::from(
        "# duet's configuration: `duet --config this-file`. Flags and DUET_* variables\n# override what is written here; lines starting with # are defaults or notes.\n\n",
    );
    file.push_str(&top);
    for (name, body) in sections {
        if !body.is_empty() {
            file.push_str(&format!("[{name}]\n\n{body}"));
        }
    }
    file
}

/// `text` as comment lines of at most 88 characters.
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 88 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A TOML string (numbers are written as texts too: each option parses its own).
fn quoted(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_sections_by_their_first_word() {
        assert_eq!(key_of("turn-relay-ports"), (Some("turn"), "relay-ports"));
        assert_eq!(key_of("external-turn-url"), (Some("external-turn"), "url"));
        assert_eq!(key_of("access-password-file"), (Some("access"), "password-file"));
        assert_eq!(key_of("access"), (Some("access"), "mode"));
        assert_eq!(flag_of("access", "mode"), "access");
        assert_eq!(key_of("listen"), (None, "listen"));
        assert_eq!(key_of("no-echo"), (None, "no-echo"));
    }

    #[test]
    fn settings_keep_their_lines() {
        let text = "listen = \"0.0.0.0:443\"\nno-echo = true\n\n[turn]\nrelay-ports = \"50000-50999\"\ndenied-peer = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n";
        let found = settings(text, Path::new("duet.toml")).expect("valid");
        let keys: Vec<(&str, usize)> = found.iter().map(|s| (s.key.as_str(), s.line)).collect();
        assert!(keys.contains(&("listen", 1)) && keys.contains(&("turn.relay-ports", 5)), "{keys:?}");
        let denied = found.iter().find(|s| s.flag == "turn-denied-peer").expect("found");
        assert_eq!(denied.value, Value::Text(vec!["10.0.0.0/8".into(), "192.168.0.0/16".into()]));
        let err = settings("[tunr]\nsecret = \"x\"\n", Path::new("duet.toml")).expect_err("no such section");
        assert!(err.to_string().contains("duet.toml:1: there is no section [tunr]"), "{err}");
        let err = settings("listen = \n", Path::new("duet.toml")).expect_err("a syntax error");
        assert!(err.to_string().contains("duet.toml"), "{err}");
    }
}
