//! A Lambda Runtime API emulator: runs a real `bootstrap` as Lambda's `provided.al2023` runtime
//! would, speaking the documented protocol (2018-06-01) to it over HTTP:
//! `GET  /runtime/invocation/next`            blocks until an event is queued, then returns it
//!                                            with the request id, deadline and function ARN;
//! `POST /runtime/invocation/{id}/response`   the handler's result;
//! `POST /runtime/invocation/{id}/error`      a handler error (`errorType`, `errorMessage`);
//! `POST /runtime/init/error`                 the bootstrap could not initialise.
//! See <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>.
//!
//! The one copy: the integration tests drive it in-process, and the `lambda-runtime` binary
//! serves it to the demo and the Lambda benchmark (events in on stdin, outcomes out on stdout,
//! one JSON line each), timing what the benchmark reports: initialisation (the process started
//! to its first `next` request) and each invocation (the event handed out to the answer read).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const PREFIX: &str = "/2018-06-01/runtime";

/// How one invocation ended.
#[derive(Debug)]
pub enum Outcome {
    Response(Value),
    /// The handler failed; the error document it posted.
    Error(Value),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
}

/// (request id, outcome or an init error, when the answer was read).
type Answered = (String, Result<Outcome, Value>, Instant);

/// When the bootstrap first asked for an event, and when each event was handed out.
#[derive(Default)]
struct Times {
    first_next: Option<Instant>,
    handed_out: HashMap<String, Instant>,
}

/// A bootstrap process served by its own Runtime API endpoint; stopped when dropped.
pub struct Runtime {
    server: Arc<tiny_http::Server>,
    child: Child,
    queue: Sender<Invocation>,
    outcomes: Receiver<Answered>,
    times: Arc<Mutex<Times>>,
    started: Instant,
    log: PathBuf,
    count: usize,
}

/// Spawns `command`, again while Linux refuses it with ETXTBSY. A bootstrap is a file its caller
/// has just written: while any other thread of the process forks a child, that child holds the
/// write descriptor until it execs, and executing the file fails meanwhile (CI saw it: a test
/// unpacked a zip while others started processes). The window is a fork's length; 5 s is ample.
fn spawn_once_not_busy(command: &mut Command) -> std::io::Result<Child> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            spawned => return spawned,
        }
    }
}

impl Runtime {
    /// Starts `bootstrap` with the function's `environment` plus the variables Lambda sets.
    pub fn start(bootstrap: &Path, function_name: &str, environment: &[(String, String)], log: PathBuf) -> Runtime {
        Self::start_with_args(bootstrap, &[], function_name, environment, log)
    }

    /// The same for a bootstrap that takes arguments (`node peer.js ...`, the benchmark's peer).
    /// `environment` may override the variables Lambda sets (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub fn start_with_args(
        bootstrap: &Path,
        args: &[String],
        function_name: &str,
        environment: &[(String, String)],
        log: PathBuf,
    ) -> Runtime {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("the runtime API listens"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let (queue, next) = channel::<Invocation>();
        let (done, outcomes) = channel();
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}");
        let times = Arc::new(Mutex::new(Times::default()));
        serve(Arc::clone(&server), next, done, arn, Arc::clone(&times));
        let started = Instant::now();
        let mut command = Command::new(bootstrap);
        command
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function_name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]emulator")
            .env("LAMBDA_TASK_ROOT", bootstrap.parent().unwrap_or(Path::new("/")))
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map(Stdio::from).unwrap_or(Stdio::null()));
        let child =
            spawn_once_not_busy(&mut command).unwrap_or_else(|e| panic!("cannot start {}: {e}", bootstrap.display()));
        Runtime { server, child, queue, outcomes, times, started, log, count: 0 }
    }

    /// The bootstrap's process id (the benchmark reads its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// From starting the process to its first `next` request: its initialisation.
    pub fn init_time(&self) -> Option<Duration> {
        self.times.lock().expect("times lock").first_next.map(|t| t - self.started)
    }

    /// Hands `event` to the function and waits for how it ended; panics if the bootstrap could not
    /// initialise (`/init/error`) or did not answer.
    pub fn invoke(&mut self, event: &Value) -> Outcome {
        self.try_invoke(event).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The same, with an initialisation error or no answer within 60 s as an error naming it
    /// and the function's log.
    pub fn try_invoke(&mut self, event: &Value) -> Result<Outcome, String> {
        self.try_invoke_timed(event).map(|(outcome, _)| outcome)
    }

    /// The same, with how long the invocation took: from the event handed out to the bootstrap
    /// to its answer read, as Lambda bills it.
    pub fn try_invoke_timed(&mut self, event: &Value) -> Result<(Outcome, Duration), String> {
        self.count += 1;
        let id = format!("invocation-{}", self.count);
        let event = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        self.queue.send(Invocation { id: id.clone(), event }).map_err(|e| e.to_string())?;
        loop {
            match self.outcomes.recv_timeout(Duration::from_secs(60)) {
                Ok((got, Ok(outcome), answered)) if got == id => {
                    let handed_out = self.times.lock().expect("times lock").handed_out.remove(&id);
                    return Ok((outcome, handed_out.map(|t| answered - t).unwrap_or_default()));
                }
                Ok((_, Ok(_), _)) => continue,
                Ok((_, Err(init_error), _)) => {
                    return Err(format!("the bootstrap could not initialise: {init_error}\n{}", self.log()));
                }
                Err(e) => {
                    return Err(format!("no answer to invocation {id} ({e}); the function's log:\n{}", self.log()));
                }
            }
        }
    }

    /// What the function wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.unblock();
    }
}

/// Answers the runtime's requests, one thread each: `next` may wait for a long time.
fn serve(
    server: Arc<tiny_http::Server>,
    next: Receiver<Invocation>,
    done: Sender<Answered>,
    arn: String,
    times: Arc<Mutex<Times>>,
) {
    let next = Arc::new(Mutex::new(next));
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let (next, done, arn, times) = (Arc::clone(&next), done.clone(), arn.clone(), Arc::clone(&times));
            std::thread::spawn(move || answer(request, &next, &done, &arn, &times));
        }
    });
}

fn answer(
    mut request: tiny_http::Request,
    next: &Mutex<Receiver<Invocation>>,
    done: &Sender<Answered>,
    arn: &str,
    times: &Mutex<Times>,
) {
    let url = request.url().to_string();
    let path = url.strip_prefix(PREFIX).unwrap_or(&url).to_string();
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let json = || {
        serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()))
    };
    let status = |code: u16| tiny_http::Response::from_string("{}").with_status_code(code);
    let result = match (request.method(), path.as_str()) {
        (tiny_http::Method::Get, "/invocation/next") => {
            times.lock().expect("times lock").first_next.get_or_insert_with(Instant::now);
            let Ok(invocation) = next.lock().expect("queue lock").recv() else { return };
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock") + Duration::from_secs(30);
            // One write for the whole answer: written as headers then body (what a response
            // longer than tiny_http's buffer becomes), the body would wait with Nagle's algorithm
            // for the runtime's delayed ACK of the headers, 40 ms on Linux, which no real Runtime
            // API costs and the Lambda benchmark would measure.
            let mut answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: {arn}\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=0\r\n\r\n",
                invocation.event.len(),
                invocation.id,
                deadline.as_millis(),
            )
            .into_bytes();
            answer.extend_from_slice(&invocation.event);
            times.lock().expect("times lock").handed_out.insert(invocation.id, Instant::now());
            let mut writer = request.into_writer();
            writer.write_all(&answer).and_then(|()| writer.flush())
        }
        (tiny_http::Method::Post, "/init/error") => {
            let _ = done.send((String::new(), Err(json()), Instant::now()));
            request.respond(status(202))
        }
        (tiny_http::Method::Post, p) => {
            let mut parts = p.trim_start_matches("/invocation/").splitn(2, '/');
            let (id, what) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default());
            let outcome = match what {
                "response" => Outcome::Response(json()),
                "error" => Outcome::Error(json()),
                _ => return drop(request.respond(status(404))),
            };
            let _ = done.send((id, Ok(outcome), Instant::now()));
            request.respond(status(202))
        }
        _ => request.respond(status(404)),
    };
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_bootstrap_still_open_for_writing_is_started_once_it_is_closed() {
        let dir = std::env::temp_dir().join(format!("runtime-api-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let path = dir.join("bootstrap");
        let mut file = std::fs::File::create(&path).expect("create");
        file.write_all(b"#!/bin/sh\nexit 7\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        // What a forked child of another thread does: holds the write descriptor a moment.
        let refused = Command::new(&path).spawn().map(|_| ()).expect_err("Linux refuses a file open for writing");
        assert_eq!(refused.kind(), std::io::ErrorKind::ExecutableFileBusy);
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(file);
        });
        let mut child = spawn_once_not_busy(&mut Command::new(&path)).expect("started once closed");
        assert_eq!(child.wait().expect("waited").code(), Some(7));
        closer.join().expect("closer");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
