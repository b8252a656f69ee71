//! `docs/protocol.md` and the types agree: every example frame in the document's
//! "Examples" section round-trips through [`ClientMessage`] or [`ServerMessage`], and
//! every message type in its two tables has an example.

use serde_json::Value;

use super::{ClientMessage, ServerMessage};

const DOC: &str = include_str!("../../../../docs/protocol.md");

/// The lines of the ```json block after `label` in the Examples section.
fn block(label: &str) -> Vec<&'static str> {
    let examples = &DOC[DOC.find("## Examples").expect("an Examples section")..];
    let start = examples.find(label).expect("the block's label") + label.len();
    let body = &examples[start..];
    let body = &body[body.find("```json\n").expect("a json block") + "```json\n".len()..];
    body[..body.find("```").expect("the block ends")].lines().filter(|l| !l.trim().is_empty()).collect()
}

/// The message types listed in the table under `heading`.
fn table(heading: &str) -> Vec<&'static str> {
    let section = &DOC[DOC.find(heading).expect("the section") + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .collect()
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn kinds(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|line| value(line)["type"].as_str().expect("a type").to_owned()).collect()
}

#[test]
fn every_client_example_in_the_document_round_trips_through_the_types() {
    let lines = block("Client → server:");
    assert!(lines.len() >= 11, "{lines:?}");
    for line in lines {
        let msg = ClientMessage::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(value(&msg.to_json()), value(line), "{line}");
    }
}

#[test]
fn every_server_example_in_the_document_round_trips_through_the_types() {
    let lines = block("Server → client:");
    assert!(lines.len() >= 19, "{lines:?}");
    for line in lines {
        let msg = ServerMessage::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(value(&msg.to_json()), value(line), "{line}");
    }
}

#[test]
fn every_message_type_in_the_document_has_an_example() {
    for (heading, label) in
        [("## Client → server", "Client → server:"), ("## Server → client", "Server → client:")]
    {
        let listed = table(heading);
        assert!(listed.len() >= 11, "{heading}: {listed:?}");
        let shown = kinds(&block(label));
        for kind in listed {
            assert!(shown.iter().any(|k| k == kind), "{heading}: `{kind}` has no example");
        }
    }
}
