//! The client end of an ECS Exec session, shared by Berth's `session-manager-plugin` and
//! `berth exec`: the Session Manager data channel over a WebSocket (token first, then the
//! handshake, numbered input resent until acknowledged, output taken once each and in
//! order), with this process's terminal in raw mode while it lasts.

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use berth_aws::ssm_channel::{self as ssm, ClientMessage, Inbox, Outbox, PayloadType};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What `ExecuteCommand` returned as `session`.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session_id: String,
    pub stream_url: String,
    pub token_value: String,
}

impl SessionInfo {
    /// From the `session` JSON, with any casing of its keys (the plugin gets ECS's
    /// camel case; Session Manager's own Pascal case works too).
    pub fn from_json(v: &Value) -> Result<Self> {
        let field = |name: &str| -> Result<String> {
            v.as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
                .and_then(|(_, v)| v.as_str())
                .map(str::to_owned)
                .with_context(|| format!("the session has no {name}"))
        };
        Ok(Self {
            session_id: field("sessionId")?,
            stream_url: field("streamUrl")?,
            token_value: field("tokenValue")?,
        })
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The command's exit status, when the server said it.
    pub exit_code: Option<i32>,
    /// The server's closing words (empty after a normal end).
    pub output: String,
}

/// This client's version, as it introduces itself (the server tells Berth's clients the
/// command's exit status).
pub const CLIENT_VERSION: &str = concat!("berth-", env!("CARGO_PKG_VERSION"));

/// Puts the terminal on stdin in raw mode until dropped (nothing when stdin is no
/// terminal): keystrokes, Ctrl-C included, go to the remote command as they are.
struct RawTerminal(Option<rustix::termios::Termios>);

impl RawTerminal {
    fn new() -> Self {
        use rustix::termios::{tcgetattr, tcsetattr, OptionalActions};
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return Self(None);
        };
        let mut raw = saved.clone();
        raw.make_raw();
        if tcsetattr(&stdin, OptionalActions::Now, &raw).is_err() {
            return Self(None);
        }
        Self(Some(saved))
    }

    fn is_tty(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// The size of the terminal on stdout (or stdin), if there is one.
fn terminal_size() -> Option<ssm::TerminalSize> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout())
        .or_else(|_| rustix::termios::tcgetwinsize(std::io::stdin()))
        .ok()
        .filter(|w| w.ws_col > 0)?;
    Some(ssm::TerminalSize {
        cols: u32::from(size.ws_col),
        rows: u32::from(size.ws_row),
    })
}

/// Reads stdin on a thread of its own (a blocked read must not keep the process alive);
/// an empty chunk means end of input.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1024];
        loop {
            let n = std::io::Read::read(&mut std::io::stdin(), &mut buf).unwrap_or(0);
            if tx.blocking_send(buf[..n].to_vec()).is_err() || n == 0 {
                return;
            }
        }
    });
    rx
}

/// TLS for a `wss://` stream: the certificates of `ca_bundle` (`AWS_CA_BUNDLE`, as the
/// aws CLI verifies the API with them), else the system's.
fn tls_connector(ca_bundle: Option<&std::path::Path>) -> Result<tokio_tungstenite::Connector> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = ca_bundle {
        let pem =
            std::fs::read(bundle).with_context(|| format!("AWS_CA_BUNDLE {}", bundle.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.with_context(|| format!("AWS_CA_BUNDLE {}", bundle.display()))?)?;
        }
    } else {
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
        config,
    )))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to the session's stream (a `wss://` one verified with `ca_bundle`'s
/// certificates, else the system's) and presents the token.
async fn open(session: &SessionInfo, ca_bundle: Option<&std::path::Path>) -> Result<Socket> {
    let connector = if session.stream_url.starts_with("wss://") {
        Some(tls_connector(ca_bundle)?)
    } else {
        None
    };
    // No Nagle: a keystroke goes out at once.
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        session.stream_url.as_str(),
        None,
        true,
        connector,
    )
    .await
    .with_context(|| format!("connecting to {}", session.stream_url))?;
    let open = ssm::OpenDataChannel {
        message_schema_version: "1.0".to_owned(),
        request_id: uuid::Uuid::new_v4().to_string(),
        token_value: session.token_value.clone(),
        client_id: uuid::Uuid::new_v4().to_string(),
        client_version: CLIENT_VERSION.to_owned(),
    };
    ws.send(Message::text(serde_json::to_string(&open)?))
        .await?;
    Ok(ws)
}

/// Runs the session to its end, the command's output on stdout.
pub async fn attach(session: &SessionInfo, ca_bundle: Option<&std::path::Path>) -> Result<Ending> {
    let mut ws = open(session, ca_bundle).await?;
    let terminal = RawTerminal::new();
    let mut out = Outbox::new(ssm::INPUT_STREAM);
    let mut inbox = Inbox::default();
    let mut stdin = stdin_chunks();
    let mut stdin_open = true;
    let mut ready = false;
    let mut exit_code = None;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut tick = tokio::time::interval(ssm::RESEND_AFTER / 2);
    loop {
        let mut sends = Vec::new();
        tokio::select! {
            frame = ws.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("the session's connection failed: {e}"),
                    None => bail!("the server closed the session without saying why"),
                };
                let m = ClientMessage::decode(&bytes).context("a damaged session message")?;
                match m.message_type.as_str() {
                    ssm::ACKNOWLEDGE => {
                        if let Ok(ack) = serde_json::from_slice::<ssm::Acknowledge>(&m.payload) {
                            out.acked(ack.sequence_number);
                        }
                    }
                    ssm::CHANNEL_CLOSED => {
                        let closed: ssm::ChannelClosed = serde_json::from_slice(&m.payload).unwrap_or_default();
                        drop(terminal);
                        return Ok(Ending { exit_code, output: closed.output });
                    }
                    ssm::OUTPUT_STREAM => {
                        sends.push(ssm::Acknowledge::of(&m).encode());
                        for m in inbox.accept(m) {
                            match m.payload_type {
                                PayloadType::HandshakeRequest => {
                                    let response = handshake_response(&m.payload);
                                    sends.push(out.stream(PayloadType::HandshakeResponse, serde_json::to_vec(&response)?));
                                }
                                PayloadType::HandshakeComplete => {
                                    ready = true;
                                    print_customer_message(&m.payload);
                                    if let Some(size) = terminal_size().filter(|_| terminal.is_tty()) {
                                        sends.push(out.stream(PayloadType::Size, serde_json::to_vec(&size)?));
                                    }
                                }
                                PayloadType::ExitCode => exit_code = parse_exit_code(&m.payload),
                                kind => show(kind, &m.payload),
                            }
                        }
                    }
                    _ => {}
                }
            }
            chunk = stdin.recv(), if ready && stdin_open => match chunk {
                Some(bytes) if !bytes.is_empty() => sends.push(out.stream(PayloadType::Output, bytes)),
                // End of input: the command goes on (it may be reading nothing); the
                // session ends when it does.
                _ => stdin_open = false,
            },
            _ = winch.recv(), if ready => {
                if let Some(size) = terminal_size() {
                    sends.push(out.stream(PayloadType::Size, serde_json::to_vec(&size)?));
                }
            }
            _ = tick.tick() => sends.extend(out.due(Instant::now())),
        }
        for bytes in sends {
            ws.send(Message::binary(bytes)).await?;
        }
    }
}

/// The command's output where it belongs: terminal output on stdout, `StdErr` on stderr.
fn show(kind: PayloadType, payload: &[u8]) {
    match kind {
        PayloadType::Output => {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(payload);
            let _ = stdout.flush();
        }
        PayloadType::StdErr => {
            let _ = std::io::stderr().write_all(payload);
        }
        _ => {}
    }
}

/// What the server has to say once the handshake is over, if anything.
fn print_customer_message(payload: &[u8]) {
    if let Ok(done) = serde_json::from_slice::<ssm::HandshakeComplete>(payload) {
        if !done.customer_message.is_empty() {
            println!("{}", done.customer_message);
        }
    }
}

/// Takes the session type the server asks for and nothing else (no KMS here).
fn handshake_response(request: &[u8]) -> ssm::HandshakeResponse {
    let request: Option<ssm::HandshakeRequest> = serde_json::from_slice(request).ok();
    let actions = request
        .map(|r| r.requested_client_actions)
        .unwrap_or_default();
    ssm::HandshakeResponse {
        client_version: CLIENT_VERSION.to_owned(),
        processed_client_actions: actions
            .into_iter()
            .map(|a| {
                let supported = a.action_type == "SessionType";
                ssm::ProcessedClientAction {
                    error: if supported {
                        String::new()
                    } else {
                        format!("Unsupported action {}", a.action_type)
                    },
                    action_type: a.action_type,
                    action_status: if supported { 1 } else { 3 },
                    action_result: Value::Null,
                }
            })
            .collect(),
        errors: Vec::new(),
    }
}

/// `EXIT_CODE: <n>`, as the SSM agent words an exit status.
fn parse_exit_code(payload: &[u8]) -> Option<i32> {
    std::str::from_utf8(payload)
        .ok()?
        .trim()
        .strip_prefix("EXIT_CODE:")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_read_whatever_the_casing_of_its_keys() {
        let ecs = serde_json::json!({"sessionId": "s", "streamUrl": "ws://h/v1/data-channel/s", "tokenValue": "t"});
        let s = SessionInfo::from_json(&ecs).unwrap();
        assert_eq!((s.session_id.as_str(), s.token_value.as_str()), ("s", "t"));
        let ssm = serde_json::json!({"SessionId": "s", "StreamUrl": "u", "TokenValue": "t"});
        assert_eq!(SessionInfo::from_json(&ssm).unwrap().stream_url, "u");
        let e = SessionInfo::from_json(&serde_json::json!({"sessionId": "s"})).unwrap_err();
        assert!(e.to_string().contains("no streamUrl"), "{e}");
    }

    #[test]
    fn the_handshake_takes_the_session_type_and_refuses_encryption() {
        let request = serde_json::json!({"AgentVersion": "x", "RequestedClientActions": [
            {"ActionType": "SessionType", "ActionParameters": {"SessionType": "InteractiveCommands"}},
            {"ActionType": "KMSEncryption", "ActionParameters": {"KMSKeyId": "k"}},
        ]});
        let r = handshake_response(request.to_string().as_bytes());
        assert_eq!(r.processed_client_actions[0].action_status, 1);
        assert_eq!(r.processed_client_actions[1].action_status, 3);
        assert_eq!(parse_exit_code(b"EXIT_CODE: 3"), Some(3));
        assert_eq!(parse_exit_code(b"garbage"), None);
    }
}
