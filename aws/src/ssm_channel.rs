//! Session Manager's data-channel messages, the binary frames `aws ecs execute-command`'s
//! `session-manager-plugin` exchanges over its WebSocket: a fixed big-endian header (type,
//! schema version, creation time, sequence number, flags, message id, payload digest,
//! payload type and length) and a payload, plus the JSON payloads of the handshake,
//! acknowledgements and `channel_closed`. Pure encoding: the control plane (server side)
//! and Berth's plugin (client side) share it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes from the start of a message to its payload-length field: what the
/// `HeaderLength` field holds.
pub const HEADER_LENGTH: u32 = 116;
/// The payload starts after the header and the 4-byte payload length.
const PAYLOAD_OFFSET: usize = 120;
const TYPE_LENGTH: usize = 32;
pub const SCHEMA_VERSION: u32 = 1;
/// A numbered message not acknowledged after this long is sent again (the plugin's
/// first retransmission timeout).
pub const RESEND_AFTER: Duration = Duration::from_millis(200);
/// Messages taken ahead of a gap in the peer's numbering (the plugin's own bound).
const EARLY_LIMIT: usize = 10_000;

/// Message types (the 32-byte, space-padded string field).
pub const INPUT_STREAM: &str = "input_stream_data";
pub const OUTPUT_STREAM: &str = "output_stream_data";
pub const ACKNOWLEDGE: &str = "acknowledge";
pub const CHANNEL_CLOSED: &str = "channel_closed";

/// What a stream message's payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadType {
    Output,
    Error,
    Size,
    Parameter,
    HandshakeRequest,
    HandshakeResponse,
    HandshakeComplete,
    EncChallengeRequest,
    EncChallengeResponse,
    Flag,
    StdErr,
    ExitCode,
    /// A type this code does not know (kept, so it can be ignored politely).
    Other(u32),
}

impl PayloadType {
    pub fn code(self) -> u32 {
        match self {
            Self::Output => 1,
            Self::Error => 2,
            Self::Size => 3,
            Self::Parameter => 4,
            Self::HandshakeRequest => 5,
            Self::HandshakeResponse => 6,
            Self::HandshakeComplete => 7,
            Self::EncChallengeRequest => 8,
            Self::EncChallengeResponse => 9,
            Self::Flag => 10,
            Self::StdErr => 11,
            Self::ExitCode => 12,
            Self::Other(n) => n,
        }
    }

    pub fn from_code(n: u32) -> Self {
        match n {
            1 => Self::Output,
            2 => Self::Error,
            3 => Self::Size,
            4 => Self::Parameter,
            5 => Self::HandshakeRequest,
            6 => Self::HandshakeResponse,
            7 => Self::HandshakeComplete,
            8 => Self::EncChallengeRequest,
            9 => Self::EncChallengeResponse,
            10 => Self::Flag,
            11 => Self::StdErr,
            12 => Self::ExitCode,
            n => Self::Other(n),
        }
    }
}

/// One data-channel message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub message_type: String,
    pub schema_version: u32,
    /// Unix milliseconds.
    pub created_date: u64,
    pub sequence_number: i64,
    pub flags: u64,
    /// The message id as a UUID's 16 bytes in their usual order.
    pub message_id: [u8; 16],
    pub payload_type: PayloadType,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("a data-channel message of {0} bytes is shorter than its 120-byte header")]
    Short(usize),
    #[error("the header says {header} bytes but the message type field ends at 36")]
    HeaderLength { header: u32 },
    #[error("the payload length says {said} bytes but {left} follow the header")]
    PayloadLength { said: u32, left: usize },
    #[error("the payload's SHA-256 digest does not match the header's")]
    Digest,
}

impl ClientMessage {
    /// A new message with a fresh random id, created now.
    pub fn new(
        message_type: &str,
        sequence_number: i64,
        payload_type: PayloadType,
        payload: Vec<u8>,
    ) -> Self {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            message_type: message_type.to_owned(),
            schema_version: SCHEMA_VERSION,
            created_date: created,
            sequence_number,
            flags: 0,
            message_id: *uuid::Uuid::new_v4().as_bytes(),
            payload_type,
            payload,
        }
    }

    /// The id as Session Manager writes it in acknowledgements (hyphenated lowercase).
    pub fn message_id_string(&self) -> String {
        uuid::Uuid::from_bytes(self.message_id)
            .hyphenated()
            .to_string()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PAYLOAD_OFFSET + self.payload.len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut kind = [b' '; TYPE_LENGTH];
        let name = self.message_type.as_bytes();
        let n = name.len().min(TYPE_LENGTH);
        kind[..n].copy_from_slice(&name[..n]);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        // Session Manager writes a UUID's low 8 bytes first, then its high 8.
        out.extend_from_slice(&self.message_id[8..]);
        out.extend_from_slice(&self.message_id[..8]);
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.code().to_be_bytes());
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < PAYLOAD_OFFSET {
            return Err(DecodeError::Short(bytes.len()));
        }
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        let header = u32_at(0);
        if header < 36 || header as usize + 4 > bytes.len() {
            return Err(DecodeError::HeaderLength { header });
        }
        let message_type = String::from_utf8_lossy(&bytes[4..4 + TYPE_LENGTH])
            .trim_end_matches([' ', '\0'])
            .to_owned();
        let mut message_id = [0u8; 16];
        message_id[8..].copy_from_slice(&bytes[64..72]);
        message_id[..8].copy_from_slice(&bytes[72..80]);
        let digest = &bytes[80..112];
        let payload_type = PayloadType::from_code(u32_at(112));
        // The payload follows the length field, wherever the header says that is.
        let len_at = header as usize;
        let said = u32_at(len_at);
        let rest = &bytes[len_at + 4..];
        if said as usize > rest.len() {
            return Err(DecodeError::PayloadLength {
                said,
                left: rest.len(),
            });
        }
        let payload = rest[..said as usize].to_vec();
        if said > 0 && Sha256::digest(&payload).as_slice() != digest {
            return Err(DecodeError::Digest);
        }
        Ok(Self {
            message_type,
            schema_version: u32_at(36),
            created_date: u64_at(40),
            sequence_number: i64::from_be_bytes(bytes[48..56].try_into().expect("8")),
            flags: u64_at(56),
            message_id,
            payload_type,
            payload,
        })
    }
}

/// The first (text) frame a client sends on the WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    pub message_schema_version: String,
    pub request_id: String,
    pub token_value: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_version: String,
}

/// The payload of an `acknowledge` message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Acknowledge {
    #[serde(rename = "AcknowledgedMessageType")]
    pub message_type: String,
    #[serde(rename = "AcknowledgedMessageId")]
    pub message_id: String,
    #[serde(rename = "AcknowledgedMessageSequenceNumber")]
    pub sequence_number: i64,
    #[serde(rename = "IsSequentialMessage")]
    pub is_sequential: bool,
}

impl Acknowledge {
    /// The acknowledgement of `m` (acknowledgements carry sequence number 0).
    pub fn of(m: &ClientMessage) -> ClientMessage {
        let ack = Self {
            message_type: m.message_type.clone(),
            message_id: m.message_id_string(),
            sequence_number: m.sequence_number,
            is_sequential: true,
        };
        ClientMessage::new(
            ACKNOWLEDGE,
            0,
            PayloadType::Output,
            serde_json::to_vec(&ack).expect("serializable"),
        )
    }
}

/// A terminal size (payload type `Size`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TerminalSize {
    pub cols: u32,
    pub rows: u32,
}

/// The agent's handshake request (payload type `HandshakeRequest`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeRequest {
    pub agent_version: String,
    pub requested_client_actions: Vec<RequestedClientAction>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RequestedClientAction {
    pub action_type: String,
    pub action_parameters: serde_json::Value,
}

/// The client's handshake response (payload type `HandshakeResponse`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeResponse {
    pub client_version: String,
    #[serde(default)]
    pub processed_client_actions: Vec<ProcessedClientAction>,
    #[serde(default)]
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ProcessedClientAction {
    pub action_type: String,
    /// 1 success, 2 failed, 3 unsupported.
    pub action_status: i32,
    #[serde(default)]
    pub action_result: serde_json::Value,
    #[serde(default)]
    pub error: String,
}

/// The agent's word that the handshake is over (payload type `HandshakeComplete`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HandshakeComplete {
    /// Nanoseconds, as Go's `time.Duration` marshals.
    pub handshake_time_to_complete: u64,
    pub customer_message: String,
}

/// The payload of `channel_closed`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ChannelClosed {
    pub message_id: String,
    pub created_date: String,
    pub destination_id: String,
    pub session_id: String,
    pub message_type: String,
    pub schema_version: u32,
    pub output: String,
}

/// The session type Berth's exec sessions announce in their handshake.
pub const INTERACTIVE_COMMANDS: &str = "InteractiveCommands";

/// The handshake request an exec session starts with: a session type and nothing to encrypt.
pub fn handshake_request(agent_version: &str) -> HandshakeRequest {
    HandshakeRequest {
        agent_version: agent_version.to_owned(),
        requested_client_actions: vec![RequestedClientAction {
            action_type: "SessionType".to_owned(),
            action_parameters: serde_json::json!({
                "SessionType": INTERACTIVE_COMMANDS,
                "Properties": {},
            }),
        }],
    }
}

/// Numbered output not yet acknowledged, resent until it is.
pub struct Outbox {
    message_type: &'static str,
    /// The number the next message gets.
    pub next: i64,
    unacked: VecDeque<(i64, Vec<u8>, Instant)>,
}

impl Outbox {
    /// Numbers messages of `message_type` from 0.
    pub fn new(message_type: &'static str) -> Self {
        Self {
            message_type,
            next: 0,
            unacked: VecDeque::new(),
        }
    }

    /// A new numbered message, kept until acknowledged; its bytes, to send.
    pub fn stream(&mut self, payload_type: PayloadType, payload: Vec<u8>) -> Vec<u8> {
        let mut m = ClientMessage::new(self.message_type, self.next, payload_type, payload);
        if self.next == 0 && self.message_type == OUTPUT_STREAM {
            m.flags = 1; // SYN, as the SSM agent marks its first stream message
        }
        let bytes = m.encode();
        self.unacked
            .push_back((self.next, bytes.clone(), Instant::now()));
        self.next += 1;
        bytes
    }

    pub fn acked(&mut self, seq: i64) {
        self.unacked.retain(|(s, ..)| *s != seq);
    }

    /// Messages unacknowledged for `RESEND_AFTER`, to send again.
    pub fn due(&mut self, now: Instant) -> Vec<Vec<u8>> {
        self.unacked
            .iter_mut()
            .filter(|(_, _, sent)| now.duration_since(*sent) >= RESEND_AFTER)
            .map(|(_, bytes, sent)| {
                *sent = now;
                bytes.clone()
            })
            .collect()
    }

    /// Messages not yet acknowledged.
    pub fn len(&self) -> usize {
        self.unacked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.unacked.is_empty()
    }
}

/// The client's numbered input, applied once each and in order.
#[derive(Default)]
pub struct Inbox {
    expected: i64,
    early: BTreeMap<i64, ClientMessage>,
}

impl Inbox {
    /// The messages now ready, in order: none for a repeat, none while a gap is open.
    pub fn accept(&mut self, m: ClientMessage) -> Vec<ClientMessage> {
        if m.sequence_number < self.expected {
            return Vec::new();
        }
        if m.sequence_number > self.expected {
            if self.early.len() < EARLY_LIMIT {
                self.early.insert(m.sequence_number, m);
            }
            return Vec::new();
        }
        let mut ready = vec![m];
        self.expected += 1;
        while let Some(m) = self.early.remove(&self.expected) {
            ready.push(m);
            self.expected += 1;
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_its_header_is_where_the_plugin_reads_it() {
        let mut m = ClientMessage::new(OUTPUT_STREAM, 7, PayloadType::Output, b"hi\r\n".to_vec());
        m.message_id = *uuid::Uuid::parse_str("00112233-4455-6677-8899-aabbccddeeff")
            .unwrap()
            .as_bytes();
        let bytes = m.encode();
        assert_eq!(bytes.len(), 124);
        assert_eq!(&bytes[0..4], &116u32.to_be_bytes());
        assert_eq!(&bytes[4..22], b"output_stream_data");
        assert!(bytes[22..36].iter().all(|b| *b == b' '));
        assert_eq!(&bytes[48..56], &7i64.to_be_bytes());
        // Low half of the UUID first.
        assert_eq!(
            &bytes[64..72],
            &[0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]
        );
        assert_eq!(&bytes[112..116], &1u32.to_be_bytes());
        assert_eq!(&bytes[116..120], &4u32.to_be_bytes());
        assert_eq!(ClientMessage::decode(&bytes).unwrap(), m);
        assert_eq!(
            m.message_id_string(),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
    }

    #[test]
    fn damaged_messages_are_refused() {
        let m = ClientMessage::new(INPUT_STREAM, 0, PayloadType::Size, b"{}".to_vec());
        let mut bytes = m.encode();
        assert_eq!(
            ClientMessage::decode(&bytes[..100]),
            Err(DecodeError::Short(100))
        );
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(ClientMessage::decode(&bytes), Err(DecodeError::Digest));
        bytes.truncate(last);
        assert!(matches!(
            ClientMessage::decode(&bytes),
            Err(DecodeError::PayloadLength { said: 2, left: 1 })
        ));
    }

    #[test]
    fn an_acknowledgement_names_the_message_it_answers() {
        let m = ClientMessage::new(INPUT_STREAM, 3, PayloadType::Output, b"ls\r".to_vec());
        let ack = Acknowledge::of(&m);
        assert_eq!(ack.message_type, ACKNOWLEDGE);
        let body: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
        assert_eq!(body["AcknowledgedMessageType"], "input_stream_data");
        assert_eq!(body["AcknowledgedMessageId"], m.message_id_string());
        assert_eq!(body["AcknowledgedMessageSequenceNumber"], 3);
        assert_eq!(body["IsSequentialMessage"], true);
    }

    #[test]
    fn the_open_frame_uses_session_managers_field_names() {
        let open: OpenDataChannel = serde_json::from_str(
            r#"{"MessageSchemaVersion":"1.0","RequestId":"r","TokenValue":"t","ClientId":"c","ClientVersion":"1.2"}"#,
        )
        .unwrap();
        assert_eq!(open.token_value, "t");
        let hs = serde_json::to_value(handshake_request("berth")).unwrap();
        assert_eq!(
            hs["RequestedClientActions"][0]["ActionParameters"]["SessionType"],
            "InteractiveCommands"
        );
    }

    fn input(seq: i64) -> ClientMessage {
        ClientMessage::new(INPUT_STREAM, seq, PayloadType::Output, vec![b'a'])
    }

    #[test]
    fn input_is_applied_once_and_in_order() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.accept(input(0)).len(), 1);
        assert!(inbox.accept(input(0)).is_empty(), "a repeat is dropped");
        assert!(inbox.accept(input(2)).is_empty(), "held until 1 comes");
        let ready: Vec<i64> = inbox
            .accept(input(1))
            .iter()
            .map(|m| m.sequence_number)
            .collect();
        assert_eq!(ready, vec![1, 2]);
        assert_eq!(inbox.expected, 3);
    }

    #[test]
    fn output_is_numbered_and_resent_until_acknowledged() {
        let mut out = Outbox::new(OUTPUT_STREAM);
        let first =
            ClientMessage::decode(&out.stream(PayloadType::HandshakeRequest, b"{}".to_vec()))
                .unwrap();
        assert_eq!((first.sequence_number, first.flags), (0, 1));
        let second =
            ClientMessage::decode(&out.stream(PayloadType::Output, b"x".to_vec())).unwrap();
        assert_eq!((second.sequence_number, second.flags), (1, 0));
        assert!(out.due(Instant::now()).is_empty(), "not yet due");
        let later = Instant::now() + RESEND_AFTER;
        assert_eq!(out.due(later).len(), 2);
        out.acked(0);
        let again = out.due(later + RESEND_AFTER);
        assert_eq!(again.len(), 1);
        assert_eq!(ClientMessage::decode(&again[0]).unwrap().sequence_number, 1);
        out.acked(1);
        assert!(out.is_empty());
        let mut input = Outbox::new(INPUT_STREAM);
        let m = ClientMessage::decode(&input.stream(PayloadType::Size, b"{}".to_vec())).unwrap();
        assert_eq!(m.flags, 0, "the plugin marks no input SYN");
    }

    /// Generated frames: whatever arrives decodes or is refused, never panics, and what
    /// this side encodes always decodes to itself.
    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn any_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
                let _ = ClientMessage::decode(&bytes);
            }

            #[test]
            fn damaged_real_messages_decode_or_are_refused(
                payload in prop::collection::vec(any::<u8>(), 0..200),
                at in any::<prop::sample::Index>(),
                byte in any::<u8>(),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut bytes = ClientMessage::new(OUTPUT_STREAM, 3, PayloadType::Output, payload).encode();
                let i = at.index(bytes.len());
                bytes[i] = byte;
                bytes.truncate(cut.index(bytes.len() + 1));
                let _ = ClientMessage::decode(&bytes);
            }

            #[test]
            fn encoded_messages_round_trip(
                kind in "[a-z_]{1,32}",
                seq in any::<i64>(),
                payload_type in any::<u32>(),
                payload in prop::collection::vec(any::<u8>(), 0..300),
            ) {
                let m = ClientMessage::new(&kind, seq, PayloadType::from_code(payload_type), payload);
                prop_assert_eq!(ClientMessage::decode(&m.encode()).unwrap(), m);
            }
        }
    }
}
