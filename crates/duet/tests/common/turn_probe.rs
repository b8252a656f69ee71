//! A bare TURN client over UDP for tests: one request at a time, the nonce dance done
//! like a real client, answers read as error codes. It speaks to the real server.

use std::net::SocketAddr;
use std::time::Duration;

use duet_turn::auth::{ephemeral_password, ephemeral_username, long_term_key};
use duet_turn::stun::{Class, Message, MessageBuilder, Method, TransactionId, attr};
use tokio::net::UdpSocket;

pub struct TurnProbe {
    pub socket: UdpSocket,
    server: SocketAddr,
    username: String,
    password: String,
    nonce: Option<String>,
    next_tid: u8,
}

/// What the server answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Success(Option<SocketAddr>),
    Error(u16),
    /// Nothing within a second (dropped, or rate-limited).
    Silence,
}

impl TurnProbe {
    /// A client bound to `local` (any port) with ephemeral credentials for `user`.
    pub async fn new(local: &str, server: SocketAddr, secret: &str, user: &str) -> Self {
        let unix =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
        let username = ephemeral_username(unix + 600, user);
        let password = ephemeral_password(secret.as_bytes(), &username);
        Self::with_credentials(local, server, &username, &password).await
    }

    pub async fn with_credentials(local: &str, server: SocketAddr, username: &str, password: &str) -> Self {
        let socket = UdpSocket::bind(local).await.expect("bind the probe");
        Self {
            socket,
            server,
            username: username.into(),
            password: password.into(),
            nonce: None,
            next_tid: 0,
        }
    }

    /// Allocate: the relayed address, or the error code.
    pub async fn allocate(&mut self) -> Answer {
        self.request(Method::ALLOCATE, |b| {
            b.add(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        })
        .await
    }

    pub async fn refresh(&mut self) -> Answer {
        self.request(Method::REFRESH, |_| {}).await
    }

    pub async fn permit(&mut self, peer: SocketAddr) -> Answer {
        self.request(Method::CREATE_PERMISSION, |b| {
            b.add_xor_address(attr::XOR_PEER_ADDRESS, peer);
        })
        .await
    }

    /// A Send indication with `data` for `peer` (no answer comes).
    pub async fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let tid = self.tid();
        let mut packet = Vec::new();
        MessageBuilder::new(&mut packet, Method::SEND, Class::Indication, tid)
            .add_xor_address(attr::XOR_PEER_ADDRESS, peer)
            .add(attr::DATA, data);
        self.socket.send_to(&packet, self.server).await.expect("send");
    }

    /// Sends a signed request (after a first unsigned one that fetches a nonce) and
    /// reads its answer, retrying once on 401/438 with the fresh nonce.
    pub async fn request(&mut self, method: Method, fill: impl Fn(&mut MessageBuilder<'_>)) -> Answer {
        for _ in 0..3 {
            let tid = self.tid();
            let mut packet = Vec::new();
            let mut b = MessageBuilder::new(&mut packet, method, Class::Request, tid);
            fill(&mut b);
            if let Some(nonce) = &self.nonce {
                b.add(attr::USERNAME, self.username.as_bytes())
                    .add(attr::REALM, b"duet")
                    .add(attr::NONCE, nonce.as_bytes())
                    .add_integrity(&long_term_key(&self.username, "duet", &self.password));
            }
            self.socket.send_to(&packet, self.server).await.expect("send");
            let mut buf = vec![0u8; 2048];
            let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), self.socket.recv(&mut buf)).await
            else {
                return Answer::Silence;
            };
            let msg = Message::parse(&buf[..n]).expect("the server answers STUN");
            let code = msg.get(attr::ERROR_CODE).map(|v| u16::from(v[2]) * 100 + u16::from(v[3]));
            match code {
                Some(401 | 438) if msg.get(attr::NONCE).is_some() => {
                    let fresh = msg.text(attr::NONCE).expect("a nonce").to_owned();
                    if self.nonce.as_deref() == Some(fresh.as_str()) && code == Some(401) {
                        return Answer::Error(401); // signed with a good nonce and still refused
                    }
                    self.nonce = Some(fresh);
                }
                Some(code) => return Answer::Error(code),
                None => return Answer::Success(msg.xor_address(attr::XOR_RELAYED_ADDRESS)),
            }
        }
        Answer::Error(401)
    }

    fn tid(&mut self) -> TransactionId {
        self.next_tid = self.next_tid.wrapping_add(1);
        let mut tid = [7u8; 12];
        tid[0] = self.next_tid;
        tid[1..5].copy_from_slice(&std::process::id().to_be_bytes());
        TransactionId(tid)
    }
}

/// The TURN server and credentials of an `ice-servers` message: where to send, user, password.
pub fn credentials_of(ice: &serde_json::Value) -> (SocketAddr, String, String) {
    let turn = &ice["iceServers"][1];
    let url = turn["urls"][0].as_str().expect("a TURN URL");
    let port: u16 = url
        .trim_start_matches("turn:127.0.0.1:")
        .split('?')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let text = |key: &str| turn[key].as_str().expect("a credential").to_owned();
    (([127, 0, 0, 1], port).into(), text("username"), text("credential"))
}
