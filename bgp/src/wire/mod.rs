//! BGP-4 messages (RFC 4271 §4): the common header as a zero-copy view, each message type in
//! its own file, and [`Message`], the parsed form of a whole message.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                           Marker (16 x 0xff)                  +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Parsing never panics: every error is a [`MessageError`] that names what was wrong and
//! carries the NOTIFICATION the session sends before closing. UPDATE attribute errors that
//! RFC 7606 handles by treat-as-withdraw or attribute-discard are not errors: they are
//! reported inside the parsed [`Update`].

pub mod notification;
pub mod open;
mod reader;
pub mod update;

use core::fmt;

pub use notification::{ErrorCode, Notification};
pub use open::{AddressFamily, Capability, Open};
pub use update::{AttrErrorAction, Origin, PathAttributes, Update};

use reader::Reader;

/// The header: marker, length, type.
pub const HEADER_LEN: usize = field::TYPE + 1;
/// The largest message RFC 4271 allows (no extended messages, RFC 8654).
pub const MAX_MESSAGE_LEN: usize = 4096;

mod field {
    use core::ops::Range;
    pub const MARKER: Range<usize> = 0..16;
    pub const LENGTH: Range<usize> = 16..18;
    pub const TYPE: usize = 18;
}

/// The message type: an open number space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType(pub u8);

impl MessageType {
    /// OPEN.
    pub const OPEN: MessageType = MessageType(1);
    /// UPDATE.
    pub const UPDATE: MessageType = MessageType(2);
    /// NOTIFICATION.
    pub const NOTIFICATION: MessageType = MessageType(3);
    /// KEEPALIVE.
    pub const KEEPALIVE: MessageType = MessageType(4);
    /// ROUTE-REFRESH (RFC 2918).
    pub const ROUTE_REFRESH: MessageType = MessageType(5);
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageType({})", self.0)
    }
}

/// Why a message was refused, and the NOTIFICATION that says so to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}: {what}")]
pub struct MessageError {
    /// The message (or part) at fault: "header", "OPEN", "UPDATE attribute AS_PATH", ...
    pub message: &'static str,
    /// What was wrong with it.
    pub what: &'static str,
    /// Whether the bytes ran out (`true`) or were wrong.
    pub truncated: bool,
    /// What the session sends before closing.
    pub notification: Notification,
}

impl MessageError {
    pub(crate) fn new(message: &'static str, what: &'static str, notification: Notification) -> Self {
        MessageError { message, what, truncated: false, notification }
    }

    pub(crate) fn truncated(message: &'static str, notification: Notification) -> Self {
        MessageError { message, what: "too short", truncated: true, notification }
    }
}

/// A view of a message's header over a buffer holding at least [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// A view without checks; accessors panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// A view whose marker, length and type were checked (RFC 4271 §6.1).
    pub fn new_checked(buffer: T) -> Result<Self, MessageError> {
        let h = Header { buffer };
        let b = h.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(MessageError::truncated("header", Notification::header_bad_length(b.len())));
        }
        if b[field::MARKER].iter().any(|&m| m != 0xff) {
            return Err(MessageError::new(
                "header",
                "marker is not all ones",
                Notification::new(ErrorCode::HEADER, 1),
            ));
        }
        let len = usize::from(h.length());
        let min = match h.message_type() {
            MessageType::OPEN => HEADER_LEN + open::MIN_BODY,
            MessageType::UPDATE => HEADER_LEN + update::MIN_BODY,
            MessageType::NOTIFICATION => HEADER_LEN + 2,
            MessageType::KEEPALIVE => HEADER_LEN,
            MessageType::ROUTE_REFRESH => HEADER_LEN + 4,
            t => {
                return Err(MessageError::new(
                    "header",
                    "unknown message type",
                    Notification::with_data(ErrorCode::HEADER, 3, vec![t.0]),
                ));
            }
        };
        let max = if h.message_type() == MessageType::KEEPALIVE { HEADER_LEN } else { MAX_MESSAGE_LEN };
        if len < min || len > max {
            return Err(MessageError::new(
                "header",
                "length out of range for the type",
                Notification::header_bad_length(len),
            ));
        }
        Ok(h)
    }

    /// The whole message's length, header included.
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::LENGTH.start], b[field::LENGTH.start + 1]])
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        MessageType(self.buffer.as_ref()[field::TYPE])
    }
}

/// Writes a header (marker, `length`, `ty`) into the first [`HEADER_LEN`] bytes of `out`.
fn emit_header(out: &mut [u8], length: u16, ty: MessageType) {
    out[field::MARKER].fill(0xff);
    out[field::LENGTH].copy_from_slice(&length.to_be_bytes());
    out[field::TYPE] = ty.0;
}

/// How many bytes the message at the start of `buf` takes, once its header is in: `Ok(None)`
/// while fewer than [`HEADER_LEN`] bytes are there. Stream framing for a TCP reader.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, MessageError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = Header::new_checked(&buf[..HEADER_LEN])?;
    Ok(Some(usize::from(h.length())))
}

/// What parsing needs to know about the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    /// Both sides announced the 4-octet AS capability: AS_PATH carries 4-octet numbers.
    pub four_octet_as: bool,
}

impl Default for Context {
    fn default() -> Self {
        Context { four_octet_as: true }
    }
}

/// ROUTE-REFRESH (RFC 2918): the address family to send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The address family.
    pub family: AddressFamily,
}

/// One whole BGP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// Parses one whole message (`bytes` is exactly its header-declared length).
    pub fn parse(bytes: &[u8], ctx: Context) -> Result<Message, MessageError> {
        let h = Header::new_checked(bytes)?;
        if usize::from(h.length()) != bytes.len() {
            return Err(MessageError::new(
                "header",
                "length differs from the bytes given",
                Notification::header_bad_length(usize::from(h.length())),
            ));
        }
        let body = &bytes[HEADER_LEN..];
        Ok(match h.message_type() {
            MessageType::OPEN => Message::Open(Open::parse(body)?),
            MessageType::UPDATE => Message::Update(Update::parse(body, ctx)?),
            MessageType::NOTIFICATION => Message::Notification(Notification::parse(body)),
            MessageType::KEEPALIVE => Message::Keepalive,
            MessageType::ROUTE_REFRESH => {
                let mut r = Reader::new(body);
                let afi = r.u16().unwrap_or(0);
                let _subtype = r.u8();
                let safi = r.u8().unwrap_or(0);
                Message::RouteRefresh(RouteRefresh { family: AddressFamily { afi, safi } })
            }
            _ => unreachable!("Header::new_checked admits only the known types"),
        })
    }

    /// The message's type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::OPEN,
            Message::Update(_) => MessageType::UPDATE,
            Message::Notification(_) => MessageType::NOTIFICATION,
            Message::Keepalive => MessageType::KEEPALIVE,
            Message::RouteRefresh(_) => MessageType::ROUTE_REFRESH,
        }
    }

    /// Appends the message, header included, to `out`. Keeping an UPDATE within
    /// [`MAX_MESSAGE_LEN`] is the caller's job: a longer one is still written, with its length
    /// saturated, and the peer will refuse it.
    pub fn emit(&self, out: &mut Vec<u8>, ctx: Context) {
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        match self {
            Message::Open(o) => o.emit(out),
            Message::Update(u) => u.emit(out, ctx),
            Message::Notification(n) => n.emit(out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => {
                out.extend_from_slice(&r.family.afi.to_be_bytes());
                out.push(0);
                out.push(r.family.safi);
            }
        }
        let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
        emit_header(&mut out[start..], len, self.message_type());
    }

    /// The message as bytes (a convenience over [`Message::emit`]).
    pub fn to_bytes(&self, ctx: Context) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v, ctx);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keepalive_is_nineteen_bytes_of_header() {
        let b = Message::Keepalive.to_bytes(Context::default());
        assert_eq!(b.len(), 19);
        assert_eq!(&b[..16], &[0xff; 16]);
        assert_eq!(&b[16..], &[0, 19, 4]);
        assert_eq!(Message::parse(&b, Context::default()), Ok(Message::Keepalive));
    }

    #[test]
    fn a_bad_marker_is_connection_not_synchronized() {
        let mut b = Message::Keepalive.to_bytes(Context::default());
        b[3] = 0;
        let e = Message::parse(&b, Context::default()).unwrap_err();
        assert_eq!((e.notification.code, e.notification.subcode), (ErrorCode::HEADER, 1));
    }

    #[test]
    fn a_bad_length_names_it_in_the_notification_data() {
        let mut b = Message::Keepalive.to_bytes(Context::default());
        b.push(0);
        b[17] = 20;
        let e = Message::parse(&b, Context::default()).unwrap_err();
        assert_eq!(e.notification, Notification::with_data(ErrorCode::HEADER, 2, vec![0, 20]));
        assert_eq!(e.to_string(), "header: length out of range for the type");
    }

    #[test]
    fn an_unknown_type_is_bad_message_type() {
        let mut b = Message::Keepalive.to_bytes(Context::default());
        b[18] = 9;
        let e = Message::parse(&b, Context::default()).unwrap_err();
        assert_eq!(e.notification, Notification::with_data(ErrorCode::HEADER, 3, vec![9]));
    }

    #[test]
    fn frame_len_waits_for_a_whole_header() {
        let b = Message::Keepalive.to_bytes(Context::default());
        assert_eq!(frame_len(&b[..18]), Ok(None));
        assert_eq!(frame_len(&b), Ok(Some(19)));
    }

    #[test]
    fn route_refresh_round_trips() {
        let m = Message::RouteRefresh(RouteRefresh { family: AddressFamily::IPV4_UNICAST });
        let b = m.to_bytes(Context::default());
        assert_eq!(&b[16..], &[0, 23, 5, 0, 1, 0, 1]);
        assert_eq!(Message::parse(&b, Context::default()), Ok(m));
    }
}
