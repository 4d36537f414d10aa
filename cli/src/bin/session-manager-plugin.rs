//! Berth's `session-manager-plugin`: what `aws ecs execute-command` runs once ECS answered
//! `ExecuteCommand`, with the command-line contract of Session Manager's own plugin:
//! `session-manager-plugin <session JSON> <region> StartSession <profile> <parameters JSON>
//! <endpoint>`; run bare, it says it is installed. Unlike Session Manager's plugin, which
//! always exits 0, it exits with the remote command's status.

use std::io::Write;
use std::process::exit;

use berth_cli::exec_session::{attach, SessionInfo};

const INSTALLED: &str =
    "\nThe Session Manager plugin was installed successfully. Use the AWS CLI to start a session.\n\n";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        None => {
            print!("{INSTALLED}");
            exit(0);
        }
        Some("--version") => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            exit(0);
        }
        Some(_) => {}
    }
    if args.get(3).map(String::as_str) != Some("StartSession") {
        eprintln!(
            "\nUnknown operation {}. \nUse session-manager-plugin --version to check the version.\n",
            args.get(3).map_or("", String::as_str)
        );
        exit(1);
    }
    // Session Manager's plugin reads the session from the named variable when the
    // argument is that name.
    let raw = match args[1].as_str() {
        name if name.starts_with("AWS_SSM_START_SESSION_RESPONSE") => {
            std::env::var(name).unwrap_or_default()
        }
        json => json.to_owned(),
    };
    let session = serde_json::from_str(&raw)
        .map_err(anyhow::Error::from)
        .and_then(|v| SessionInfo::from_json(&v));
    let session = match session {
        Ok(s) => s,
        Err(e) => {
            eprintln!("session-manager-plugin: {e:#}");
            exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    print!(
        "\nStarting session with SessionId: {}\n",
        session.session_id
    );
    let _ = std::io::stdout().flush();
    // The aws CLI runs the plugin with the user's environment: AWS_CA_BUNDLE, when set,
    // verifies a `wss://` stream as it verified the API.
    let bundle = std::env::var_os("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    let ending = runtime.block_on(attach(&session, bundle.as_deref()));
    let code = match ending {
        Ok(end) if end.output.is_empty() => {
            print!(
                "\n\nExiting session with sessionId: {}.\n\n",
                session.session_id
            );
            end.exit_code.unwrap_or(0)
        }
        Ok(end) => {
            print!("\n\nSessionId: {} : {}\n\n", session.session_id, end.output);
            end.exit_code.unwrap_or(1)
        }
        Err(e) => {
            eprintln!("session-manager-plugin: {e:#}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    // Not returning through the runtime: its stdin reader thread may be blocked in a read.
    exit(code);
}
