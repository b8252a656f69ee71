//! What duet nodes say to each other over Redis pub/sub: pure encoding and decoding.
//!
//! ```text
//!  duet:nodes          every node: Beat{from} each second, Bye{from} when draining
//!  duet:node:<owner>   relaying node ─► owner: Open, Text, Close   (one client = one link)
//!  duet:node:<relay>   owner ─► relaying node: Deliver, Drop
//! ```
//!
//! A message is lines: its kind, the sending node, the link, then the kind's fields; the
//! last field (a client's frame) is the rest of the message, newlines and all. Names,
//! rooms and addresses never hold a newline (their own parsers refuse one). Every
//! message travels sealed ([`super::envelope`]: signed with the nodes' shared key, so
//! Redis is not trusted with who says what); anything that does not open or decode is
//! dropped by the receiver and counted, and a node of another version cannot crash this
//! one.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use duet_signal::{Admission, RoomName, UserName};

/// A node's id: 16 hex digits, random at start, so a restarted node is a new node.
pub type NodeId = Arc<str>;

/// The channel every node hears (beats and goodbyes).
pub const NODES_CHANNEL: &str = "duet:nodes";

/// The channel a node hears what is for it.
pub fn node_channel(node: &str) -> String {
    format!("duet:node:{node}")
}

/// The node a channel of [`node_channel`] belongs to.
pub fn node_of_channel(channel: &str) -> Option<NodeId> {
    channel.strip_prefix("duet:node:").and_then(|node| node_id(node).ok())
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// On [`NODES_CHANNEL`]: `from` is alive.
    Beat { from: NodeId },
    /// On [`NODES_CHANNEL`]: `from` is draining; its rooms are free and its links gone.
    Bye { from: NodeId },
    /// To a room's owner: a client connected to `from` joins `room`.
    Open { from: NodeId, link: u64, open: Box<Opening> },
    /// To a room's owner: a text frame from the client of `link`.
    Text { from: NodeId, link: u64, text: String },
    /// To a room's owner: the client of `link` closed its socket (`lost`: without
    /// saying goodbye, so its session is held for a resume).
    Close { from: NodeId, link: u64, lost: bool },
    /// To the relaying node: a frame for the client of `link`.
    Deliver { from: NodeId, link: u64, text: String },
    /// To the relaying node: the owner no longer serves `link` (too slow, the room
    /// moved): the client is told to reconnect.
    Drop { from: NodeId, link: u64 },
}

/// What the owner needs to know about a client joining through another node. The
/// relaying node has checked who it is (access), as it would for its own hub.
#[derive(Debug, Clone, PartialEq)]
pub struct Opening {
    pub room: RoomName,
    pub address: IpAddr,
    pub admission: Admission,
    /// The Host the client asked for (TURN is announced at the same host).
    pub host: Option<String>,
}

/// A message that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unreadable message between nodes: {}", self.0)
    }
}

impl std::error::Error for WireError {}

impl Message {
    /// The node that sent it.
    pub fn from(&self) -> &NodeId {
        match self {
            Self::Beat { from }
            | Self::Bye { from }
            | Self::Open { from, .. }
            | Self::Text { from, .. }
            | Self::Close { from, .. }
            | Self::Deliver { from, .. }
            | Self::Drop { from, .. } => from,
        }
    }

    pub fn encode(&self) -> String {
        match self {
            Self::Beat { from } => format!("beat\n{from}"),
            Self::Bye { from } => format!("bye\n{from}"),
            Self::Open { from, link, open } => {
                let admission = match &open.admission {
                    Admission::Guest => "guest".to_owned(),
                    Admission::Named { name, verified: true } => format!("account {}", name.as_str()),
                    Admission::Named { name, verified: false } => format!("named {}", name.as_str()),
                };
                let host = open.host.as_deref().unwrap_or("");
                format!("open\n{from}\n{link}\n{}\n{}\n{admission}\n{host}", open.room.as_str(), open.address)
            }
            Self::Text { from, link, text } => format!("text\n{from}\n{link}\n{text}"),
            Self::Close { from, link, lost } => {
                format!("close\n{from}\n{link}\n{}", if *lost { "lost" } else { "left" })
            }
            Self::Deliver { from, link, text } => format!("deliver\n{from}\n{link}\n{text}"),
            Self::Drop { from, link } => format!("drop\n{from}\n{link}"),
        }
    }

    pub fn decode(raw: &str) -> Result<Self, WireError> {
        let (kind, rest) = raw.split_once('\n').ok_or(WireError("no kind"))?;
        if matches!(kind, "beat" | "bye") {
            let from = node_id(rest)?;
            return Ok(if kind == "beat" { Self::Beat { from } } else { Self::Bye { from } });
        }
        let mut fields = rest.splitn(3, '\n');
        let from = node_id(fields.next().ok_or(WireError("no node"))?)?;
        let link = fields.next().and_then(|l| l.parse().ok()).ok_or(WireError("no link"))?;
        let body = fields.next();
        match (kind, body) {
            ("text", Some(text)) => Ok(Self::Text { from, link, text: text.to_owned() }),
            ("deliver", Some(text)) => Ok(Self::Deliver { from, link, text: text.to_owned() }),
            ("close", Some("lost")) => Ok(Self::Close { from, link, lost: true }),
            ("close", Some("left")) => Ok(Self::Close { from, link, lost: false }),
            ("drop", None) => Ok(Self::Drop { from, link }),
            ("open", Some(body)) => Ok(Self::Open { from, link, open: Box::new(opening(body)?) }),
            _ => Err(WireError("unknown kind or missing field")),
        }
    }
}

fn node_id(raw: &str) -> Result<NodeId, WireError> {
    if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WireError("bad node id"));
    }
    Ok(raw.into())
}

fn opening(body: &str) -> Result<Opening, WireError> {
    let mut fields = body.split('\n');
    let mut next = || fields.next().ok_or(WireError("short open"));
    let room = RoomName::new(next()?).map_err(|_| WireError("bad room"))?;
    let address = next()?.parse().map_err(|_| WireError("bad address"))?;
    let admission = match next()?.split_once(' ') {
        None => Admission::Guest,
        Some((kind @ ("account" | "named"), name)) => Admission::Named {
            name: UserName::new(name).map_err(|_| WireError("bad name"))?,
            verified: kind == "account",
        },
        Some(_) => return Err(WireError("bad admission")),
    };
    let host = Some(next()?).filter(|h| !h.is_empty()).map(str::to_owned);
    Ok(Opening { room, address, admission, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeId {
        "0123abcd0123abcd".into()
    }

    #[test]
    fn every_message_reads_back_as_itself() {
        let open = |admission, host: Option<&str>| Opening {
            room: RoomName::new("family").expect("a room"),
            address: "2001:db8::7".parse().expect("an address"),
            admission,
            host: host.map(str::to_owned),
        };
        let ann = UserName::new("Ann Lee").expect("a name");
        let messages = [
            Message::Beat { from: node() },
            Message::Bye { from: node() },
            Message::Open { from: node(), link: 7, open: Box::new(open(Admission::Guest, None)) },
            Message::Open {
                from: node(),
                link: 8,
                open: Box::new(open(
                    Admission::Named { name: ann.clone(), verified: true },
                    Some("duet.example:443"),
                )),
            },
            Message::Open {
                from: node(),
                link: 9,
                open: Box::new(open(Admission::Named { name: ann, verified: false }, Some("h"))),
            },
            Message::Text {
                from: node(),
                link: 1,
                text: "{\"type\":\"chat\",\"text\":\"two\\nlines\"}\n\nraw".into(),
            },
            Message::Close { from: node(), link: u64::MAX, lost: true },
            Message::Close { from: node(), link: 0, lost: false },
            Message::Deliver { from: node(), link: 3, text: String::new() },
            Message::Drop { from: node(), link: 4 },
        ];
        for message in messages {
            assert_eq!(Message::decode(&message.encode()), Ok(message.clone()), "{message:?}");
        }
    }

    #[test]
    fn a_node_channel_names_its_node() {
        assert_eq!(node_of_channel(&node_channel("0123abcd")).as_deref(), Some("0123abcd"));
        assert_eq!(node_of_channel(NODES_CHANNEL), None);
    }

    #[test]
    fn garbage_between_nodes_is_an_error_not_a_panic() {
        for raw in [
            "",
            "beat",
            "beat\n",
            "beat\nnot a node!",
            "text\nabc\nnotanumber\nhi",
            "open\nabc\n1\nfamily\nnot-an-ip\nguest\n",
            "open\nabc\n1\nfamily\n127.0.0.1\nadmin root\n",
            "open\nabc\n1\n../x\n127.0.0.1\nguest\n",
            "close\nabc\n1\nmaybe",
            "drop\nabc\n1\nextra",
            "shout\nabc\n1\nhi",
        ] {
            assert!(Message::decode(raw).is_err(), "{raw:?} should not decode");
        }
    }
}
