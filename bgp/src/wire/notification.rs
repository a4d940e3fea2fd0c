//! NOTIFICATION (RFC 4271 §4.5): error code, subcode, data; the session closes after it.
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

/// The error code: an open number space.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u8);

impl ErrorCode {
    /// Message Header Error.
    pub const HEADER: ErrorCode = ErrorCode(1);
    /// OPEN Message Error.
    pub const OPEN: ErrorCode = ErrorCode(2);
    /// UPDATE Message Error.
    pub const UPDATE: ErrorCode = ErrorCode(3);
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: ErrorCode = ErrorCode(4);
    /// Finite State Machine Error.
    pub const FSM: ErrorCode = ErrorCode(5);
    /// Cease (RFC 4486 subcodes).
    pub const CEASE: ErrorCode = ErrorCode(6);
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: ErrorCode = ErrorCode(7);

    /// The code's name in RFC 4271.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "message header error",
            2 => "OPEN message error",
            3 => "UPDATE message error",
            4 => "hold timer expired",
            5 => "finite state machine error",
            6 => "cease",
            7 => "ROUTE-REFRESH message error",
            _ => "unknown error code",
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorCode({})", self.0)
    }
}

/// Cease subcodes (RFC 4486) weft sends.
pub mod cease {
    /// Administrative Shutdown.
    pub const ADMIN_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Connection Collision Resolution.
    pub const COLLISION: u8 = 7;
}

/// A NOTIFICATION message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The error code.
    pub code: ErrorCode,
    /// The subcode (meaning depends on the code).
    pub subcode: u8,
    /// Diagnostic data.
    pub data: Vec<u8>,
}

impl Notification {
    /// A NOTIFICATION without data.
    pub fn new(code: ErrorCode, subcode: u8) -> Self {
        Notification { code, subcode, data: Vec::new() }
    }

    /// A NOTIFICATION with data.
    pub fn with_data(code: ErrorCode, subcode: u8, data: Vec<u8>) -> Self {
        Notification { code, subcode, data }
    }

    /// Message Header Error / Bad Message Length, with the length as data.
    pub fn header_bad_length(len: usize) -> Self {
        let len = u16::try_from(len).unwrap_or(u16::MAX);
        Notification::with_data(ErrorCode::HEADER, 2, len.to_be_bytes().to_vec())
    }

    /// A body of at least two bytes (the header check guarantees it); a shorter one reads
    /// as zeros.
    pub(crate) fn parse(body: &[u8]) -> Self {
        Notification {
            code: ErrorCode(body.first().copied().unwrap_or(0)),
            subcode: body.get(1).copied().unwrap_or(0),
            data: body.get(2..).unwrap_or_default().to_vec(),
        }
    }

    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.push(self.code.0);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {} subcode {})", self.code.name(), self.code.0, self.subcode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Context, Message};

    #[test]
    fn a_notification_round_trips_with_its_data() {
        let n = Notification::with_data(ErrorCode::CEASE, cease::ADMIN_SHUTDOWN, b"bye".to_vec());
        let b = Message::Notification(n.clone()).to_bytes(Context::default());
        assert_eq!(&b[16..], &[0, 24, 3, 6, 2, b'b', b'y', b'e']);
        assert_eq!(Message::parse(&b, Context::default()), Ok(Message::Notification(n)));
    }

    #[test]
    fn display_names_the_code() {
        let n = Notification::new(ErrorCode::HOLD_TIMER_EXPIRED, 0);
        assert_eq!(n.to_string(), "hold timer expired (code 4 subcode 0)");
    }
}
