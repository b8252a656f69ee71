//! One handler per TURN method (RFC 8656 sections 7 to 11), and the authentication that
//! comes before all of them (RFC 8489 section 9.2).
//!
//! ```text
//!  request ─► unknown comprehension-required attribute? ──► 420
//!          ─► no MESSAGE-INTEGRITY ──► 401 + REALM + NONCE   (rate-limited per source)
//!          ─► nonce stale/foreign ──► 438 + fresh NONCE      (rate-limited per source)
//!          ─► unknown/expired user, wrong MAC ──► 401        (rate-limited per source)
//!          ─► Allocate | Refresh | CreatePermission | ChannelBind (answers signed with
//!             the user's key from here on)
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Event, Family, FiveTuple, Pending, RelayRequest, Server, Transmit, Transport};
use crate::allocation::{Allocation, ChannelNumber};
use crate::auth::{CredentialError, Key, NonceCheck};
use crate::ledger::Refusal;
use crate::policy::client_key;
use crate::stun::{Class, Message, MessageBuilder, Method, attr};

/// RFC 8656 section 14.7: REQUESTED-TRANSPORT for UDP.
const PROTOCOL_UDP: u8 = 17;

/// Attributes this server understands (so a request carrying them gets no 420).
const UNDERSTOOD: &[u16] = &[
    attr::MAPPED_ADDRESS,
    attr::USERNAME,
    attr::MESSAGE_INTEGRITY,
    attr::ERROR_CODE,
    attr::UNKNOWN_ATTRIBUTES,
    attr::CHANNEL_NUMBER,
    attr::LIFETIME,
    attr::XOR_PEER_ADDRESS,
    attr::DATA,
    attr::REALM,
    attr::NONCE,
    attr::XOR_RELAYED_ADDRESS,
    attr::REQUESTED_ADDRESS_FAMILY,
    attr::EVEN_PORT,
    attr::REQUESTED_TRANSPORT,
    attr::DONT_FRAGMENT,
    attr::XOR_MAPPED_ADDRESS,
    attr::RESERVATION_TOKEN,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
];

/// Who made an authenticated request.
struct Authenticated {
    username: Box<str>,
    key: Key,
}

/// The context of one request, for building its answer.
struct Request<'m, 'a> {
    from: FiveTuple,
    msg: &'m Message<'a>,
}

impl Server {
    pub(super) fn request(&mut self, now: Instant, from: FiveTuple, msg: &Message<'_>, method: Method) {
        let req = Request { from, msg };
        let known = [Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION, Method::CHANNEL_BIND];
        if !known.contains(&method) {
            return self.unauthenticated_error(now, &req, 400, "Bad Request");
        }
        let unknown: Vec<u16> = msg
            .attribute_types()
            .filter(|&t| attr::comprehension_required(t) && !UNDERSTOOD.contains(&t))
            .collect();
        if !unknown.is_empty() {
            // Unauthenticated too, so rate-limited like a 401 (it is as large).
            if !self.allow_unauthenticated(from.client.ip(), now) {
                self.stats.unauthenticated_dropped += 1;
                return;
            }
            let value: Vec<u8> = unknown.iter().flat_map(|t| t.to_be_bytes()).collect();
            return self.answer(&req, None, |b| {
                b.add_error_code(420, "Unknown Attribute").add(attr::UNKNOWN_ATTRIBUTES, &value);
            });
        }
        let Some(user) = self.authenticate(now, &req, method) else { return };
        match method {
            Method::ALLOCATE => self.allocate(now, &req, user),
            Method::REFRESH => self.refresh(now, &req, &user),
            Method::CREATE_PERMISSION => self.create_permission(now, &req, &user),
            _ => self.channel_bind(now, &req, &user),
        }
    }

    fn authenticate(&mut self, now: Instant, req: &Request<'_, '_>, method: Method) -> Option<Authenticated> {
        let msg = req.msg;
        if !msg.has_integrity() {
            self.unauthenticated_error(now, req, 401, "Unauthorized");
            return None;
        }
        let (Some(username), Some(realm), Some(nonce)) =
            (msg.text(attr::USERNAME), msg.text(attr::REALM), msg.text(attr::NONCE))
        else {
            self.unauthenticated_error(now, req, 400, "Bad Request");
            return None;
        };
        let unix = self.unix(now);
        if realm != self.config.realm {
            self.unauthenticated_error(now, req, 401, "Unauthorized");
            return None;
        }
        if self.nonces.check(nonce, req.from.client.ip(), unix) != NonceCheck::Valid {
            self.unauthenticated_error(now, req, 438, "Stale Nonce");
            return None;
        }
        let credentials = &self.config.credentials;
        let key = match credentials.key(username, realm, unix) {
            // Expiry limits who may *start* using the relay; an allocation made while the
            // username was valid lives on through Refresh, CreatePermission and ChannelBind.
            Err(CredentialError::Expired)
                if method != Method::ALLOCATE
                    && self.allocations.get(&req.from).is_some_and(|a| &*a.username == username) =>
            {
                credentials.key_ignoring_expiry(username, realm)
            }
            other => other,
        };
        let key = match key {
            Ok(key) if msg.verify_integrity(&key) && !self.is_revoked(username) => key,
            _ => {
                self.unauthenticated_error(now, req, 401, "Unauthorized");
                return None;
            }
        };
        self.authenticated(req.from.client.ip(), now);
        Some(Authenticated { username: username.into(), key })
    }

    fn allocate(&mut self, now: Instant, req: &Request<'_, '_>, user: Authenticated) {
        let msg = req.msg;
        let key = Some(&user.key);
        if let Some(existing) = self.allocations.get(&req.from) {
            if existing.allocate_tid == msg.transaction_id() {
                // A retransmission whose success was lost: send it again.
                let (relay, lifetime) =
                    (existing.advertised, existing.expires.saturating_duration_since(now));
                return self.allocate_success(req.from, msg, &user.key, relay, lifetime, None);
            }
            return self.fail(req, key, 437, "Allocation Mismatch");
        }
        if self.pending_by_tuple.contains_key(&req.from) {
            return; // a retransmission while the relay socket is being opened
        }
        match msg.get(attr::REQUESTED_TRANSPORT) {
            None => return self.fail(req, key, 400, "Bad Request"),
            Some(v) if v.first() != Some(&PROTOCOL_UDP) => {
                return self.fail(req, key, 442, "Unsupported Transport Protocol");
            }
            Some(_) => {}
        }
        let token = msg.get(attr::RESERVATION_TOKEN);
        let even = msg.get(attr::EVEN_PORT);
        if token.is_some() && (even.is_some() || msg.has(attr::REQUESTED_ADDRESS_FAMILY)) {
            return self.fail(req, key, 400, "Bad Request");
        }
        let family = match msg.get(attr::REQUESTED_ADDRESS_FAMILY).map(|v| v.first().copied()) {
            None => Family::V4,
            Some(Some(0x01)) => Family::V4,
            Some(Some(0x02)) => Family::V6,
            Some(_) => {
                return self.fail(req, key, 440, "Address Family not Supported");
            }
        };
        // Counted from here on (given back if the Allocate fails after all).
        let owner = crate::auth::user_of(&user.username);
        match self.ledger.take(owner, client_key(req.from.client.ip()), &self.config.quotas) {
            Ok(()) => {}
            Err(Refusal::Quota) => return self.fail(req, key, 486, "Allocation Quota Reached"),
            Err(Refusal::Capacity) => return self.fail(req, key, 508, "Insufficient Capacity"),
        }
        let pending = Pending {
            five_tuple: req.from,
            transaction_id: msg.transaction_id(),
            username: user.username,
            key: user.key,
            lifetime: self.granted_lifetime(msg),
            fingerprint: msg.has(attr::FINGERPRINT),
        };
        if let Some(token) = token {
            let reservation = <[u8; 8]>::try_from(token).ok().and_then(|t| self.ledger.claim(&t));
            return match reservation {
                Some(r) if now < r.expires => {
                    // Perhaps held by another server sharing the ledger: its socket is ours now.
                    self.events.push_back(Event::AdoptRelay { relay: r.local });
                    let bound =
                        super::BoundRelay { local: r.local, advertised: r.advertised, reserved: None };
                    finish_allocate(self, now, pending, Ok(bound));
                }
                Some(r) => {
                    self.uncount(&req.from, &pending.username);
                    self.events.push_back(Event::ReleaseRelay { relay: r.local });
                    self.fail(req, key, 508, "Insufficient Capacity")
                }
                None => {
                    self.uncount(&req.from, &pending.username);
                    self.fail(req, key, 508, "Insufficient Capacity")
                }
            };
        }
        // EVEN-PORT (RFC 8656 section 14.6): an even port, and with R=1 the next one held.
        let even_port = even.is_some();
        let reserve_next = even.and_then(|v| v.first()).is_some_and(|b| b & 0x80 != 0);
        let request = RelayRequest(self.next_request);
        self.next_request += 1;
        self.pending.insert(request, pending);
        self.pending_by_tuple.insert(req.from, request);
        self.events.push_back(Event::BindRelay { request, family, even_port, reserve_next });
    }

    fn granted_lifetime(&self, msg: &Message<'_>) -> Duration {
        let lifetimes = &self.config.lifetimes;
        match msg.u32(attr::LIFETIME) {
            Some(secs) => {
                Duration::from_secs(secs.into()).clamp(lifetimes.default_allocation, lifetimes.max_allocation)
            }
            None => lifetimes.default_allocation,
        }
    }

    /// Success with XOR-RELAYED-ADDRESS, LIFETIME, XOR-MAPPED-ADDRESS and, for EVEN-PORT
    /// with R=1, the RESERVATION-TOKEN of the port held next to it.
    fn allocate_success(
        &mut self,
        to: FiveTuple,
        msg: &Message<'_>,
        key: &Key,
        relay: SocketAddr,
        lifetime: Duration,
        token: Option<[u8; 8]>,
    ) {
        let req = Request { from: to, msg };
        self.answer_success(&req, key, |b| {
            b.add_xor_address(attr::XOR_RELAYED_ADDRESS, relay)
                .add_u32(attr::LIFETIME, lifetime.as_secs() as u32)
                .add_xor_address(attr::XOR_MAPPED_ADDRESS, to.client);
            if let Some(token) = token {
                b.add(attr::RESERVATION_TOKEN, &token);
            }
        });
    }

    fn refresh(&mut self, now: Instant, req: &Request<'_, '_>, user: &Authenticated) {
        let Some(allocation) = self.owned_allocation(req, user) else { return };
        let requested = req.msg.u32(attr::LIFETIME);
        if requested == Some(0) {
            let _ = allocation;
            self.remove_allocation(&req.from);
            return self.answer_success(req, &user.key, |b| {
                b.add_u32(attr::LIFETIME, 0);
            });
        }
        let lifetime = self.granted_lifetime(req.msg);
        let expires = now + lifetime;
        if let Some(allocation) = self.allocations.get_mut(&req.from) {
            allocation.expires = expires;
        }
        self.schedule_sweep(expires);
        self.answer_success(req, &user.key, |b| {
            b.add_u32(attr::LIFETIME, lifetime.as_secs() as u32);
        });
    }

    fn create_permission(&mut self, now: Instant, req: &Request<'_, '_>, user: &Authenticated) {
        let Some(allocation) = self.owned_allocation(req, user) else { return };
        let relay_v4 = allocation.relay.is_ipv4();
        let peers: Vec<Option<SocketAddr>> = req.msg.xor_addresses(attr::XOR_PEER_ADDRESS).collect();
        let key = Some(&user.key);
        if peers.is_empty() || peers.iter().any(Option::is_none) {
            return self.fail(req, key, 400, "Bad Request");
        }
        let peers: Vec<SocketAddr> = peers.into_iter().flatten().collect();
        if peers.iter().any(|p| p.is_ipv4() != relay_v4) {
            return self.fail(req, key, 443, "Peer Address Family Mismatch");
        }
        // All or nothing (RFC 8656 section 9.2): check every peer before installing any.
        if !peers.iter().all(|p| self.peer_allowed(p.ip())) {
            return self.fail(req, key, 403, "Forbidden");
        }
        let allocation = self.allocations.get(&req.from).expect("checked by owned_allocation");
        let new = peers.iter().filter(|p| !allocation.has_permission(p.ip(), now)).count();
        if allocation.permission_count() + new > self.config.quotas.permissions_per_allocation {
            return self.fail(req, key, 508, "Insufficient Capacity");
        }
        let expires = now + self.config.lifetimes.permission;
        let allocation = self.allocations.get_mut(&req.from).expect("checked by owned_allocation");
        for peer in &peers {
            allocation.install_permission(peer.ip(), expires, now);
        }
        self.answer_success(req, &user.key, |_| {});
    }

    fn channel_bind(&mut self, now: Instant, req: &Request<'_, '_>, user: &Authenticated) {
        let Some(allocation) = self.owned_allocation(req, user) else { return };
        let relay_v4 = allocation.relay.is_ipv4();
        let key = Some(&user.key);
        let number = req
            .msg
            .get(attr::CHANNEL_NUMBER)
            .and_then(|v| v.get(..2))
            .and_then(|v| ChannelNumber::try_from(u16::from_be_bytes([v[0], v[1]])).ok());
        let peer = req.msg.xor_address(attr::XOR_PEER_ADDRESS);
        let (Some(number), Some(peer)) = (number, peer) else {
            return self.fail(req, key, 400, "Bad Request");
        };
        if peer.is_ipv4() != relay_v4 {
            return self.fail(req, key, 443, "Peer Address Family Mismatch");
        }
        if !self.peer_allowed(peer.ip()) {
            return self.fail(req, key, 403, "Forbidden");
        }
        let allocation = self.allocations.get(&req.from).expect("checked by owned_allocation");
        let refresh = match allocation.check_bind(number, peer, now) {
            Ok(refresh) => refresh,
            Err(_) => return self.fail(req, key, 400, "Bad Request"),
        };
        let quotas = &self.config.quotas;
        let new_permission = usize::from(!allocation.has_permission(peer.ip(), now));
        if !refresh && allocation.channel_count() >= quotas.channels_per_allocation
            || allocation.permission_count() + new_permission > quotas.permissions_per_allocation
        {
            return self.fail(req, key, 508, "Insufficient Capacity");
        }
        let lifetimes = &self.config.lifetimes;
        let (channel_expires, permission_expires) = (now + lifetimes.channel, now + lifetimes.permission);
        let allocation = self.allocations.get_mut(&req.from).expect("checked by owned_allocation");
        allocation.bind_channel(number, peer, channel_expires, now);
        allocation.install_permission(peer.ip(), permission_expires, now);
        self.answer_success(req, &user.key, |_| {});
    }

    /// The allocation of this five-tuple, if it exists and belongs to `user`; otherwise
    /// the 437 or 441 has been answered.
    fn owned_allocation(&mut self, req: &Request<'_, '_>, user: &Authenticated) -> Option<&Allocation> {
        match self.allocations.get(&req.from) {
            None => {
                self.fail(req, Some(&user.key), 437, "Allocation Mismatch");
                None
            }
            Some(a) if a.username != user.username => {
                self.fail(req, Some(&user.key), 441, "Wrong Credentials");
                None
            }
            Some(_) => self.allocations.get(&req.from),
        }
    }

    /// 401/438/400 to a client that has not authenticated: REALM and NONCE, no
    /// MESSAGE-INTEGRITY, and only within the per-source rate.
    fn unauthenticated_error(&mut self, now: Instant, req: &Request<'_, '_>, code: u16, reason: &str) {
        if !self.allow_unauthenticated(req.from.client.ip(), now) {
            self.stats.unauthenticated_dropped += 1;
            return;
        }
        let nonce = self.nonces.issue(req.from.client.ip(), self.unix(now));
        let realm = self.config.realm.clone();
        self.answer(req, None, |b| {
            b.add_error_code(code, reason)
                .add(attr::REALM, realm.as_bytes())
                .add(attr::NONCE, nonce.as_bytes());
        });
    }

    /// An error response with just its code (signed when the user is known).
    fn fail(&mut self, req: &Request<'_, '_>, key: Option<&Key>, code: u16, reason: &str) {
        self.answer(req, key, |b| {
            b.add_error_code(code, reason);
        });
    }

    fn answer_success(
        &mut self,
        req: &Request<'_, '_>,
        key: &Key,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        self.respond(req, Class::Success, Some(key), fill);
    }

    fn answer(
        &mut self,
        req: &Request<'_, '_>,
        key: Option<&Key>,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        self.respond(req, Class::Error, key, fill);
    }

    fn respond(
        &mut self,
        req: &Request<'_, '_>,
        class: Class,
        key: Option<&Key>,
        fill: impl FnOnce(&mut MessageBuilder<'_>),
    ) {
        let mut data = Vec::with_capacity(96);
        let mut b = MessageBuilder::new(&mut data, req.msg.method(), class, req.msg.transaction_id());
        fill(&mut b);
        if let Some(software) = &self.config.software {
            b.add(attr::SOFTWARE, software.as_bytes());
        }
        if let Some(key) = key {
            b.add_integrity(key);
        }
        if req.msg.has(attr::FINGERPRINT) {
            b.add_fingerprint();
        }
        self.transmits.push_back(Transmit { to: req.from, data });
    }
}

/// Completes an Allocate once the driver has opened (or failed to open) its relay socket.
pub(super) fn finish_allocate(
    server: &mut Server,
    now: Instant,
    pending: Pending,
    result: Result<super::BoundRelay, ()>,
) {
    let Pending { five_tuple, transaction_id, username, key, lifetime, fingerprint } = pending;
    // Rebuild just enough of the request to answer it.
    let mut request = Vec::with_capacity(32);
    let mut b = MessageBuilder::new(&mut request, Method::ALLOCATE, Class::Request, transaction_id);
    if fingerprint {
        b.add_fingerprint();
    }
    let msg = Message::parse(&request).expect("a message we just built");
    let req = Request { from: five_tuple, msg: &msg };
    let Ok(bound) = result else {
        server.uncount(&five_tuple, &username);
        return server.fail(&req, Some(&key), 508, "Insufficient Capacity");
    };
    let (local, advertised) = (bound.local, bound.advertised);
    if server.is_revoked(&username) {
        // The session ended while its relay socket was being opened.
        server.uncount(&five_tuple, &username);
        server.events.push_back(Event::ReleaseRelay { relay: local });
        if let Some((reserved, _)) = bound.reserved {
            server.events.push_back(Event::ReleaseRelay { relay: reserved });
        }
        return server.fail(&req, None, 401, "Unauthorized");
    }
    if server.allocations.contains_key(&five_tuple) {
        server.uncount(&five_tuple, &username);
        server.events.push_back(Event::ReleaseRelay { relay: local });
        if let Some((reserved, _)) = bound.reserved {
            server.events.push_back(Event::ReleaseRelay { relay: reserved });
        }
        return server.fail(&req, Some(&key), 437, "Allocation Mismatch");
    }
    let token = bound.reserved.map(|(reserved_local, reserved_advertised)| {
        let expires = now + super::RESERVATION_LIFETIME;
        let reservation =
            crate::ledger::Reservation { local: reserved_local, advertised: reserved_advertised, expires };
        let token = server.ledger.reserve(&server.config.nonce_secret, reservation);
        server.schedule_sweep(expires);
        token
    });
    let expires = now + lifetime;
    let allocation = Allocation::new(local, advertised, username, expires, transaction_id);
    server.allocations.insert(five_tuple, allocation);
    server.by_relay.insert(local, five_tuple);
    server.stats.allocations_created += 1;
    server.schedule_sweep(expires);
    server.allocate_success(five_tuple, &msg, &key, advertised, lifetime, token);
}

impl Transport {
    /// Whether the transport is a byte stream that needs STUN/ChannelData framing.
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}
