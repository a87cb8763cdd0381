//! An HTTP endpoint that captures what is POSTed to it (an SNS HTTP subscription's target). The
//! Lambda Runtime API emulator the end-to-end test runs the bootstraps through is
//! `aws_emulator::runtime_api`, the copy the demo uses too.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

pub use aws_emulator::runtime_api::{Outcome, Runtime};

/// Captures what is POSTed to it, as an SNS HTTP subscription endpoint would receive it.
pub struct Webhook {
    server: Arc<tiny_http::Server>,
    received: Receiver<String>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("webhook listens"));
        let (tx, received) = channel();
        let s = Arc::clone(&server);
        std::thread::spawn(move || {
            for mut request in s.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                let _ = tx.send(body);
                let _ = request.respond(tiny_http::Response::empty(200));
            }
        });
        Webhook { server, received }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.server_addr().to_ip().expect("an IP address"))
    }

    /// The body of the next POST, if one arrives within `wait`.
    pub fn next(&self, wait: Duration) -> Option<String> {
        self.received.recv_timeout(wait).ok()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.server.unblock();
    }
}
