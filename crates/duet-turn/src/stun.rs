//! STUN messages (RFC 8489 section 5 and 14): parsing in place, and building.
//!
//! [`Message::parse`] checks the header, walks the attributes once and remembers where
//! each one is; nothing is copied and nothing is allocated. It refuses anything that is
//! not exactly one well-formed message: a length that disagrees with the datagram, an
//! attribute running past the end, a FINGERPRINT that is wrong or not last. Attributes
//! after MESSAGE-INTEGRITY other than FINGERPRINT are ignored, as section 14.5 says.
//!
//! [`MessageBuilder`] writes a message into a caller's `Vec<u8>` (reused across packets),
//! keeping the header length right after every attribute so MESSAGE-INTEGRITY and
//! FINGERPRINT can be computed over what precedes them.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |0 0|     STUN Message Type     |         Message Length        |
//! |                         Magic Cookie                          |
//! |                     Transaction ID (96 bits)                  |
//! |         Type                  |            Length             |  attributes,
//! |                         Value (padded to 4)               ....   TLV
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// RFC 8489 section 5.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// RFC 8489 section 5.
pub const HEADER_LEN: usize = 20;
/// RFC 8489 section 14.15: CRC-32 of the message XOR this.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// More attributes than this in one message is refused: browsers send fewer than ten.
const MAX_ATTRIBUTES: usize = 32;

/// Attribute types used here (RFC 8489 section 18.3, RFC 8656 section 18).
pub mod attr {
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
    pub const EVEN_PORT: u16 = 0x0018;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const DONT_FRAGMENT: u16 = 0x001A;
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
    pub const USERHASH: u16 = 0x001E;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const RESERVATION_TOKEN: u16 = 0x0022;
    pub const PRIORITY: u16 = 0x0024;
    pub const USE_CANDIDATE: u16 = 0x0025;
    pub const ADDITIONAL_ADDRESS_FAMILY: u16 = 0x8000;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
    pub const ICE_CONTROLLED: u16 = 0x8029;
    pub const ICE_CONTROLLING: u16 = 0x802A;

    /// Attributes 0x0000-0x7FFF are comprehension-required (RFC 8489 section 14): a
    /// request holding one the server does not know gets 420.
    pub fn comprehension_required(ty: u16) -> bool {
        ty < 0x8000
    }
}

/// STUN methods (RFC 8489 section 18.2, RFC 8656 section 17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    pub const BINDING: Self = Self(0x001);
    pub const ALLOCATE: Self = Self(0x003);
    pub const REFRESH: Self = Self(0x004);
    pub const SEND: Self = Self(0x006);
    pub const DATA: Self = Self(0x007);
    pub const CREATE_PERMISSION: Self = Self(0x008);
    pub const CHANNEL_BIND: Self = Self(0x009);
}

/// The class bits of the message type (RFC 8489 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Request,
    Indication,
    Success,
    Error,
}

/// RFC 8489 section 5: 96 random bits chosen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

/// Why bytes are not a STUN message. The driver counts these and drops the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than a STUN header")]
    TooShort,
    #[error("the first two bits are not zero")]
    NotStun,
    #[error("wrong magic cookie")]
    BadMagicCookie,
    #[error("the length field disagrees with the packet size")]
    LengthMismatch,
    #[error("an attribute runs past the end of the message")]
    AttributeOverrun,
    #[error("more than {MAX_ATTRIBUTES} attributes")]
    TooManyAttributes,
    #[error("FINGERPRINT is not the last attribute")]
    FingerprintNotLast,
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
    #[error("MESSAGE-INTEGRITY is not 20 bytes")]
    BadIntegrityLength,
}

#[derive(Debug, Clone, Copy, Default)]
struct AttrRef {
    ty: u16,
    /// Offset of the value within the message.
    start: u16,
    len: u16,
}

/// A parsed message borrowing the packet it came in.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    bytes: &'a [u8],
    method: Method,
    class: Class,
    transaction_id: TransactionId,
    attrs: [AttrRef; MAX_ATTRIBUTES],
    attr_count: usize,
    /// Offset of the MESSAGE-INTEGRITY attribute header, if present.
    integrity_at: Option<usize>,
}

/// Quick test whether a datagram looks like STUN (not ChannelData): the first two bits
/// are zero and the cookie is right. RFC 8656 section 12 multiplexing.
pub fn is_stun(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0] & 0xC0 == 0 && bytes[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// The length of the STUN message starting `bytes` (for framing over TCP), once its
/// header has arrived.
pub fn message_len(bytes: &[u8]) -> Option<usize> {
    (bytes.len() >= 4).then(|| HEADER_LEN + usize::from(u16::from_be_bytes([bytes[2], bytes[3]])))
}

fn decode_type(t: u16) -> (Method, Class) {
    let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    let class = match ((t >> 4) & 1) | ((t >> 7) & 2) {
        0 => Class::Request,
        1 => Class::Indication,
        2 => Class::Success,
        _ => Class::Error,
    };
    (Method(method), class)
}

pub(crate) fn encode_type(method: Method, class: Class) -> u16 {
    let c: u16 = match class {
        Class::Request => 0,
        Class::Indication => 1,
        Class::Success => 2,
        Class::Error => 3,
    };
    let m = method.0;
    (m & 0x000F) | ((c & 1) << 4) | ((m & 0x0070) << 1) | ((c & 2) << 7) | ((m & 0x0F80) << 2)
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

impl<'a> Message<'a> {
    /// Parses exactly one message that fills `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort);
        }
        if bytes[0] & 0xC0 != 0 {
            return Err(DecodeError::NotStun);
        }
        if bytes[4..8] != MAGIC_COOKIE.to_be_bytes() {
            return Err(DecodeError::BadMagicCookie);
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if length % 4 != 0 || HEADER_LEN + length != bytes.len() {
            return Err(DecodeError::LengthMismatch);
        }
        let (method, class) = decode_type(u16::from_be_bytes([bytes[0], bytes[1]]));
        let mut transaction_id = [0; 12];
        transaction_id.copy_from_slice(&bytes[8..20]);
        let mut msg = Self {
            bytes,
            method,
            class,
            transaction_id: TransactionId(transaction_id),
            attrs: [AttrRef::default(); MAX_ATTRIBUTES],
            attr_count: 0,
            integrity_at: None,
        };
        let mut at = HEADER_LEN;
        while at < bytes.len() {
            if bytes.len() - at < 4 {
                return Err(DecodeError::AttributeOverrun);
            }
            let ty = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
            let start = at + 4;
            if padded(len) > bytes.len() - start {
                return Err(DecodeError::AttributeOverrun);
            }
            let next = start + padded(len);
            if ty == attr::FINGERPRINT {
                if next != bytes.len() {
                    return Err(DecodeError::FingerprintNotLast);
                }
                if len != 4 {
                    return Err(DecodeError::BadFingerprint);
                }
                let expected = crc32fast::hash(&bytes[..at]) ^ FINGERPRINT_XOR;
                if bytes[start..start + 4] != expected.to_be_bytes() {
                    return Err(DecodeError::BadFingerprint);
                }
            } else if msg.integrity_at.is_some() {
                // Section 14.5: everything after MESSAGE-INTEGRITY but FINGERPRINT is ignored.
                at = next;
                continue;
            } else if ty == attr::MESSAGE_INTEGRITY {
                if len != 20 {
                    return Err(DecodeError::BadIntegrityLength);
                }
                msg.integrity_at = Some(at);
            }
            if msg.attr_count == MAX_ATTRIBUTES {
                return Err(DecodeError::TooManyAttributes);
            }
            // Offsets fit in u16: the whole message is at most 20 + 65535 bytes and the
            // value starts at least 24 bytes in, and ends within the message.
            msg.attrs[msg.attr_count] = AttrRef { ty, start: start as u16, len: len as u16 };
            msg.attr_count += 1;
            at = next;
        }
        Ok(msg)
    }

    pub fn method(&self) -> Method {
        self.method
    }

    pub fn class(&self) -> Class {
        self.class
    }

    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// Types of all attributes (before MESSAGE-INTEGRITY, plus it and FINGERPRINT).
    pub fn attribute_types(&self) -> impl Iterator<Item = u16> + '_ {
        self.attrs[..self.attr_count].iter().map(|a| a.ty)
    }

    /// The value of the first attribute of type `ty`.
    pub fn get(&self, ty: u16) -> Option<&'a [u8]> {
        self.get_all(ty).next()
    }

    /// The values of every attribute of type `ty`, in order.
    pub fn get_all(&self, ty: u16) -> impl Iterator<Item = &'a [u8]> + '_ {
        let bytes = self.bytes;
        self.attrs[..self.attr_count]
            .iter()
            .filter(move |a| a.ty == ty)
            .map(move |a| &bytes[usize::from(a.start)..usize::from(a.start) + usize::from(a.len)])
    }

    pub fn has(&self, ty: u16) -> bool {
        self.attribute_types().any(|t| t == ty)
    }

    /// A UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE).
    pub fn text(&self, ty: u16) -> Option<&'a str> {
        self.get(ty).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// A 32-bit attribute (LIFETIME).
    pub fn u32(&self, ty: u16) -> Option<u32> {
        let v = self.get(ty)?;
        Some(u32::from_be_bytes(v.try_into().ok()?))
    }

    /// An XOR-encoded address attribute (XOR-PEER-ADDRESS, XOR-MAPPED-ADDRESS, ...).
    pub fn xor_address(&self, ty: u16) -> Option<SocketAddr> {
        self.get(ty).and_then(|v| decode_xor_address(v, &self.transaction_id))
    }

    /// Every XOR-PEER-ADDRESS (CreatePermission may carry several); `None` for one that
    /// is malformed.
    pub fn xor_addresses(&self, ty: u16) -> impl Iterator<Item = Option<SocketAddr>> + '_ {
        let tid = self.transaction_id;
        self.get_all(ty).map(move |v| decode_xor_address(v, &tid))
    }

    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Checks MESSAGE-INTEGRITY (HMAC-SHA1 with `key`, RFC 8489 section 14.5), in
    /// constant time. False when absent.
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(at) = self.integrity_at else { return false };
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else { return false };
        // The length field covers the message up to and including MESSAGE-INTEGRITY.
        let adjusted = ((at + 24 - HEADER_LEN) as u16).to_be_bytes();
        mac.update(&self.bytes[..2]);
        mac.update(&adjusted);
        mac.update(&self.bytes[4..at]);
        mac.verify_slice(&self.bytes[at + 4..at + 24]).is_ok()
    }
}

fn decode_xor_address(v: &[u8], tid: &TransactionId) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match (v[1], v.len()) {
        (0x01, 8) => {
            let mut ip = [0; 4];
            for i in 0..4 {
                ip[i] = v[4 + i] ^ cookie[i];
            }
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        (0x02, 20) => {
            let mut ip = [0; 16];
            for i in 0..16 {
                let mask = if i < 4 { cookie[i] } else { tid.0[i - 4] };
                ip[i] = v[4 + i] ^ mask;
            }
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

/// The value of an XOR-encoded address attribute (RFC 8489 section 14.2): 8 bytes for
/// IPv4, 20 for IPv6.
pub(crate) fn xor_address_value(addr: SocketAddr, tid: &TransactionId) -> ([u8; 20], usize) {
    let mut v = [0u8; 20];
    v[2..4].copy_from_slice(&(addr.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes());
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match addr.ip() {
        IpAddr::V4(ip) => {
            v[1] = 0x01;
            for (i, b) in ip.octets().iter().enumerate() {
                v[4 + i] = b ^ cookie[i];
            }
            (v, 8)
        }
        IpAddr::V6(ip) => {
            v[1] = 0x02;
            for (i, b) in ip.octets().iter().enumerate() {
                v[4 + i] = b ^ if i < 4 { cookie[i] } else { tid.0[i - 4] };
            }
            (v, 20)
        }
    }
}

/// Writes one message into a reused buffer.
#[derive(Debug)]
pub struct MessageBuilder<'b> {
    buf: &'b mut Vec<u8>,
    transaction_id: TransactionId,
}

impl<'b> MessageBuilder<'b> {
    /// Clears `buf` and writes the header.
    pub fn new(buf: &'b mut Vec<u8>, method: Method, class: Class, transaction_id: TransactionId) -> Self {
        buf.clear();
        buf.extend_from_slice(&encode_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&transaction_id.0);
        Self { buf, transaction_id }
    }

    fn set_length(&mut self) {
        let len = (self.buf.len() - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Adds an attribute, padding it to a multiple of four bytes.
    pub fn add(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&ty.to_be_bytes());
        self.buf.extend_from_slice(&(value.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(padded(self.buf.len()), 0);
        self.set_length();
        self
    }

    pub fn add_u32(&mut self, ty: u16, value: u32) -> &mut Self {
        self.add(ty, &value.to_be_bytes())
    }

    /// An XOR-encoded address (RFC 8489 section 14.2).
    pub fn add_xor_address(&mut self, ty: u16, addr: SocketAddr) -> &mut Self {
        let (value, len) = xor_address_value(addr, &self.transaction_id);
        self.add(ty, &value[..len])
    }

    /// ERROR-CODE (RFC 8489 section 14.8).
    pub fn add_error_code(&mut self, code: u16, reason: &str) -> &mut Self {
        let mut v = Vec::with_capacity(4 + reason.len());
        v.extend_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
        v.extend_from_slice(reason.as_bytes());
        self.add(attr::ERROR_CODE, &v)
    }

    /// MESSAGE-INTEGRITY over everything written so far.
    pub fn add_integrity(&mut self, key: &[u8]) -> &mut Self {
        let end = self.buf.len();
        // The length must already count the 24 bytes of MESSAGE-INTEGRITY.
        let len = (end + 24 - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
        mac.update(&self.buf[..end]);
        let tag = mac.finalize().into_bytes();
        self.add(attr::MESSAGE_INTEGRITY, &tag)
    }

    /// FINGERPRINT over everything written so far; must be the last attribute.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        let end = self.buf.len();
        let len = (end + 8 - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32fast::hash(&self.buf[..end]) ^ FINGERPRINT_XOR;
        self.add(attr::FINGERPRINT, &crc.to_be_bytes())
    }
}

#[cfg(test)]
mod tests;
