//! The receiving side of a real SMTP conversation for tests: one accepted
//! connection driven through a `mailin` session (the protocol state machine)
//! line by line. Each test supplies its own `mailin::Handler`.

use mailin::{Action, Handler, Session};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Serves one SMTP connection until the client quits or the connection ends.
pub async fn serve_connection<H: Handler>(stream: TcpStream, mut session: Session<H>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let Ok(greeting) = session.greeting().buffer() else {
        return;
    };
    if writer.write_all(&greeting).await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = session.process(&line);
        let Ok(buffer) = response.buffer() else {
            return;
        };
        match response.action {
            Action::NoReply => {}
            Action::Reply => {
                if writer.write_all(&buffer).await.is_err() {
                    return;
                }
            }
            Action::Close | Action::UpgradeTls => {
                let _ = writer.write_all(&buffer).await;
                return;
            }
        }
    }
}
