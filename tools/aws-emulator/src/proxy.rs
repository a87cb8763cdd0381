//! A fault-injecting HTTP proxy between the engine and moto: what AWS does to a client that
//! moto never does. It can throttle and fail requests in each service's own error protocol,
//! reset connections before the request reaches AWS, drop the answer after AWS did the work,
//! add latency, and SIGKILL the engine right after AWS accepted request N.
//!
//! One request per client connection: the proxy forwards it to moto with `Connection: close`,
//! reads the whole answer, then answers (or not) and closes. Only the engine talks through the
//! proxy; tests check results against moto directly.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What the proxy does to the requests it forwards.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Forward everything faithfully (and count it).
    Pass,
    /// Like `KillAfter`, after the `nth` request labelled `label` (`SERVICE OPERATION`).
    KillAfterRequest { label: String, nth: usize },
    /// Forward everything, dropping the answer of the first request with each of these labels.
    LoseAnswersOf(Vec<String>),
    /// Forward everything, dropping the answer of the `nth` request labelled `label` only.
    LoseAnswerOfNth { label: String, nth: usize },
    /// After AWS has answered request number N (1-based), SIGKILL the victim process, then
    /// drop the answer: the work is done and the engine never hears of it.
    KillAfter(usize),
    /// When the first request whose label starts with `label` arrives, SIGKILL the victim at
    /// once and forward the request only `delay` later: a call still in flight when the process
    /// died, which AWS carries out after the next command has started.
    KillOnReceiptForwardLate { label: String, delay: Duration },
    /// When request number N (1-based) arrives, SIGKILL the victim at once and forward the
    /// request only `delay` later; the requests already in flight are answered into the void.
    KillOnReceiptOfNth { n: usize, delay: Duration },
    /// When the first request whose label starts with `label` arrives, SIGKILL the victim at
    /// once and hold the request until the test lets AWS carry it out (`ForwardHeldBefore`):
    /// a call in flight when the process died that lands at the moment the test chooses.
    KillOnReceiptHold { label: String },
    /// Forward everything; when the first request whose label starts with `label` arrives, let
    /// AWS carry out the held requests first: a dead command's call landing just before the
    /// next command's own.
    ForwardHeldBefore { label: String },
    /// For each request, seeded: with probability `transient` fail it before it reaches AWS
    /// (throttling or a 5xx in the service's protocol, or a reset connection); with probability
    /// `lost` forward it and drop the answer; add `latency` to everything forwarded.
    Faults { transient: f64, lost: f64, latency: Duration },
}

/// What happened to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fate {
    Forwarded,
    Throttled,
    Failed5xx,
    Reset,
    AnswerLost,
    Killed,
    /// The victim killed on receipt; the request forwarded after this delay.
    KilledForwardedLate(Duration),
    /// The victim killed on receipt; the request held until the test forwards it.
    KilledHeld,
    /// Forwarded once the held requests were.
    ForwardedAfterHeld,
}

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// 1-based, in the order requests arrived.
    pub n: usize,
    /// When it arrived.
    pub at: Instant,
    pub service: String,
    /// The operation where the protocol names it (query `Action`, JSON target), else
    /// `METHOD path`.
    pub operation: String,
    pub fate: Fate,
}

impl Seen {
    /// `SERVICE OPERATION`: `iam CreateRole`, `s3 PUT /bucket?policy`,
    /// `apigateway POST /v2/apis/*/routes`.
    pub fn label(&self) -> String {
        label(&self.service, &self.operation)
    }
}

struct Shared {
    upstream: u16,
    mode: Mutex<Mode>,
    count: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    /// When each forwarded request arrived and when its answer was written.
    spans: Mutex<Vec<(Instant, Instant)>>,
    rng: Mutex<fastrand::Rng>,
    victim: Mutex<Option<u32>>,
    stopping: AtomicBool,
    /// Requests moto could not be reached for, with why: the proxy's own failures.
    upstream_errors: Mutex<Vec<String>>,
    /// AWS's strict behaviours, when the proxy plays them.
    strict: Mutex<Option<Arc<crate::strict::Strict>>>,
    /// Requests held by `KillOnReceiptHold`, not yet forwarded.
    held: Mutex<Vec<Request>>,
}

pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on a free port forwarding to moto on `upstream`.
    pub fn start(upstream: u16, mode: Mode, seed: u64) -> Proxy {
        Proxy::listen(0, upstream, mode, seed).expect("a free port")
    }

    /// A proxy on `port` of 127.0.0.1 (0: a free one) forwarding to moto on `upstream`.
    pub fn listen(port: u16, upstream: u16, mode: Mode, seed: u64) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream,
            mode: Mutex::new(mode),
            count: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            spans: Mutex::new(Vec::new()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            victim: Mutex::new(None),
            stopping: AtomicBool::new(false),
            upstream_errors: Mutex::new(Vec::new()),
            strict: Mutex::new(None),
            held: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accepting.clone();
                thread::spawn(move || handle(&shared, stream));
            }
        });
        Ok(Proxy { port, shared })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Changes what happens to the requests from now on, and starts counting from zero.
    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("lock") = mode;
        self.shared.count.store(0, Ordering::SeqCst);
        self.shared.seen.lock().expect("lock").clear();
    }

    /// Plays AWS's strict behaviours from now on (see [`crate::strict`]), with these clocks.
    pub fn set_strict(&self, clocks: crate::strict::Clocks) -> Arc<crate::strict::Strict> {
        let strict = Arc::new(crate::strict::Strict::new(self.shared.upstream, clocks));
        *self.shared.strict.lock().expect("lock") = Some(strict.clone());
        strict
    }

    /// The strict rules being played, if any.
    pub fn strict(&self) -> Option<Arc<crate::strict::Strict>> {
        self.shared.strict.lock().expect("lock").clone()
    }

    /// The process `KillAfter` kills.
    pub fn set_victim(&self, pid: u32) {
        *self.shared.victim.lock().expect("lock") = Some(pid);
    }

    /// Why moto could not be reached, for each request it could not (the proxy's failures, not
    /// injected ones).
    pub fn upstream_errors(&self) -> Vec<String> {
        self.shared.upstream_errors.lock().expect("lock").clone()
    }

    /// Every request since the mode was last set, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        let mut seen = self.shared.seen.lock().expect("lock").clone();
        seen.sort_by_key(|s| s.n);
        seen
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A request read from the client, with its body de-chunked.
pub struct Request {
    head: String,
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub service: String,
    pub operation: String,
}

impl Request {
    /// `SERVICE OPERATION`, as [`Seen::label`] gives it.
    pub fn label(&self) -> String {
        label(&self.service, &self.operation)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A form parameter of a query-protocol request (IAM, SNS, STS), decoded.
    pub fn form(&self, name: &str) -> Option<String> {
        let body = String::from_utf8_lossy(&self.body);
        body.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name)
                .then(|| percent_encoding::percent_decode_str(&v.replace('+', " ")).decode_utf8_lossy().into_owned())
        })
    }

    /// The region the request is signed for.
    pub fn region(&self) -> Option<&str> {
        self.header("authorization")?.split("Credential=").nth(1)?.split('/').nth(2)
    }
}

/// `SERVICE OPERATION`, with the ids AWS assigns (an API's, a hosted zone's) as `*`, so the
/// same call has the same label in every account.
fn label(service: &str, operation: &str) -> String {
    let mut parts: Vec<&str> = operation.split('/').collect();
    for i in 1..parts.len() {
        if matches!(parts[i - 1], "apis" | "hostedzone") && !parts[i].is_empty() {
            parts[i] = "*";
        }
    }
    format!("{service} {}", parts.join("/"))
}

fn handle(shared: &Shared, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut client) else {
        shared.upstream_errors.lock().expect("lock").push("a request the proxy could not read".into());
        return;
    };
    if let Some(path) = request.path.strip_prefix(CONTROL) {
        let _ = client.write_all(&control(shared, &request.method, path));
        return;
    }
    let arrived = Instant::now();
    let n = shared.count.fetch_add(1, Ordering::SeqCst) + 1;
    let fate = decide(shared, n, &request.label());
    shared.seen.lock().expect("lock").push(Seen {
        n,
        at: Instant::now(),
        service: request.service.clone(),
        operation: request.operation.clone(),
        fate: fate.clone(),
    });
    if fate == Fate::ForwardedAfterHeld {
        forward_held(shared);
    }
    match fate {
        Fate::Forwarded | Fate::ForwardedAfterHeld => match strictly(shared, &request, || {
            forward(shared.upstream, &request)
        }) {
            Ok(answer) => {
                if let Some(problem) = incomplete(&answer) {
                    shared.upstream_errors.lock().expect("lock").push(format!("{}: {problem}", request.label()));
                }
                if let Err(e) = client.write_all(&answer) {
                    shared.upstream_errors.lock().expect("lock").push(format!("{}: answering: {e}", request.label()));
                }
                shared.spans.lock().expect("lock").push((arrived, Instant::now()));
            }
            Err(e) => shared.upstream_errors.lock().expect("lock").push(format!("{}: {e}", request.label())),
        },
        Fate::Throttled | Fate::Failed5xx => {
            let _ = client.write_all(&error_response(&request.service, fate == Fate::Throttled));
        }
        Fate::Reset => reset(client),
        Fate::AnswerLost => {
            let _ = forward(shared.upstream, &request);
            reset(client);
        }
        Fate::KilledForwardedLate(delay) => {
            kill_victim(shared);
            reset(client);
            thread::sleep(delay);
            let _ = forward(shared.upstream, &request);
        }
        Fate::KilledHeld => {
            kill_victim(shared);
            reset(client);
            shared.held.lock().expect("lock").push(request);
        }
        Fate::Killed => {
            let _ = forward(shared.upstream, &request);
            kill_victim(shared);
            reset(client);
        }
    }
}

/// Lets AWS carry out the requests `KillOnReceiptHold` held, each answered into the void.
fn forward_held(shared: &Shared) {
    let held = std::mem::take(&mut *shared.held.lock().expect("lock"));
    for request in &held {
        if let Err(e) = forward(shared.upstream, request) {
            shared.upstream_errors.lock().expect("lock").push(format!("{} (held): {e}", request.label()));
        }
    }
}

/// SIGKILLs the process under test, if one is set.
fn kill_victim(shared: &Shared) {
    if let Some(pid) = *shared.victim.lock().expect("lock") {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("a pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

/// Where the emulator answers for itself rather than as AWS: `GET /_emulator/report`, what it
/// saw; `POST /_emulator/reset`, forget it (after moto is reset).
pub const CONTROL: &str = "/_emulator/";

fn control(shared: &Shared, method: &str, path: &str) -> Vec<u8> {
    match (method, path) {
        ("GET", "report") => {
            let strict = shared.strict.lock().expect("lock").clone();
            let report = serde_json::json!({
                "requests": shared.count.load(Ordering::SeqCst),
                "sequential_depth": sequential_depth(&shared.spans.lock().expect("lock")),
                "refusals": strict.map(|s| s.refusals()).unwrap_or_default(),
                "upstream_errors": shared.upstream_errors.lock().expect("lock").clone(),
            });
            answer(200, &[("Content-Type", "application/json")], &report.to_string())
        }
        ("POST", "reset") => {
            let mut strict = shared.strict.lock().expect("lock");
            if let Some(old) = strict.take() {
                *strict = Some(Arc::new(crate::strict::Strict::new(shared.upstream, old.clocks().clone())));
            }
            shared.count.store(0, Ordering::SeqCst);
            shared.seen.lock().expect("lock").clear();
            shared.spans.lock().expect("lock").clear();
            shared.upstream_errors.lock().expect("lock").clear();
            answer(200, &[("Content-Type", "application/json")], "{}")
        }
        _ => answer(404, &[("Content-Type", "application/json")], r#"{"message":"GET report or POST reset"}"#),
    }
}

/// The most requests that ran one after another, each arriving after the one before was
/// answered: the floor under a command's time when every request takes a fixed latency. (An
/// upper bound of the chain of calls that depend on each other: requests that could have run at
/// once but did not count too.) Earliest-answered-first picks the longest such chain.
pub fn sequential_depth(spans: &[(Instant, Instant)]) -> usize {
    let mut by_end = spans.to_vec();
    by_end.sort_by_key(|(_, end)| *end);
    let mut last_end: Option<Instant> = None;
    let mut depth = 0;
    for (start, end) in by_end {
        if last_end.is_none_or(|last| start >= last) {
            depth += 1;
            last_end = Some(end);
        }
    }
    depth
}

/// For a mode that acts once, on the first request whose label starts with `wanted`: `fate` for
/// that request, after which everything passes; forwarded before it.
fn once_on_prefix(mode: &mut Mode, label: &str, wanted: &str, fate: Fate) -> Fate {
    if !label.starts_with(wanted) {
        return Fate::Forwarded;
    }
    *mode = Mode::Pass;
    fate
}

/// What happens to request `n`, by the mode (which a one-shot mode updates).
fn decide(shared: &Shared, n: usize, label: &str) -> Fate {
    let (transient, lost, latency) = {
        let mut mode = shared.mode.lock().expect("lock");
        match &mut *mode {
            Mode::Pass => return Fate::Forwarded,
            Mode::KillAfter(k) => return if *k == n { Fate::Killed } else { Fate::Forwarded },
            Mode::KillOnReceiptOfNth { n: at, delay } => {
                if *at != n {
                    return Fate::Forwarded;
                }
                let delay = *delay;
                *mode = Mode::Pass;
                return Fate::KilledForwardedLate(delay);
            }
            Mode::KillOnReceiptHold { label: wanted } => {
                let wanted = wanted.clone();
                return once_on_prefix(&mut mode, label, &wanted, Fate::KilledHeld);
            }
            Mode::ForwardHeldBefore { label: wanted } => {
                let wanted = wanted.clone();
                return once_on_prefix(&mut mode, label, &wanted, Fate::ForwardedAfterHeld);
            }
            Mode::KillOnReceiptForwardLate { label: wanted, delay } => {
                let (wanted, fate) = (wanted.clone(), Fate::KilledForwardedLate(*delay));
                return once_on_prefix(&mut mode, label, &wanted, fate);
            }
            Mode::KillAfterRequest { label: wanted, nth } => {
                if wanted != label {
                    return Fate::Forwarded;
                }
                *nth -= 1;
                if *nth > 0 {
                    return Fate::Forwarded;
                }
                // Once: what follows passes.
                *mode = Mode::Pass;
                return Fate::Killed;
            }
            Mode::LoseAnswerOfNth { label: wanted, nth } => {
                if wanted != label {
                    return Fate::Forwarded;
                }
                *nth -= 1;
                if *nth > 0 {
                    return Fate::Forwarded;
                }
                // Once: what follows passes.
                *mode = Mode::Pass;
                return Fate::AnswerLost;
            }
            Mode::LoseAnswersOf(labels) => {
                return match labels.iter().position(|l| l == label) {
                    Some(i) => {
                        labels.remove(i);
                        Fate::AnswerLost
                    }
                    None => Fate::Forwarded,
                };
            }
            Mode::Faults { transient, lost, latency } => (*transient, *lost, *latency),
        }
    };
    thread::sleep(latency);
    let mut rng = shared.rng.lock().expect("lock");
    let roll = rng.f64();
    if roll < transient {
        match rng.u8(0..3) {
            0 => Fate::Throttled,
            1 => Fate::Failed5xx,
            _ => Fate::Reset,
        }
    } else if roll < transient + lost {
        Fate::AnswerLost
    } else {
        Fate::Forwarded
    }
}

/// The answer AWS would give: what the strict rules say instead of forwarding, or moto's answer
/// as they rewrite it; moto's own when the proxy plays no strict rules.
fn strictly(
    shared: &Shared,
    request: &Request,
    forward: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> std::io::Result<Vec<u8>> {
    let strict = shared.strict.lock().expect("lock").clone();
    let Some(strict) = strict else { return forward() };
    if let Some(refusal) = strict.before(request) {
        return Ok(refusal);
    }
    let answer = forward();
    strict.done(request);
    Ok(strict.after(request, answer?))
}

/// Closes the connection without a word: the client sees it reset or closed mid-request.
fn reset(client: TcpStream) {
    let _ = client.shutdown(Shutdown::Both);
}

fn read_request(client: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&buf[..head_end]).ok()?;
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length: usize = header("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    let complete = |body: &[u8]| if chunked { find(body, b"0\r\n\r\n").is_some() } else { body.len() >= length };
    while !complete(&body) {
        let n = client.read(&mut chunk).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    if chunked {
        body = dechunk(&body)?;
    }
    let service = header("authorization")
        .and_then(|a| a.split("Credential=").nth(1).and_then(|c| c.split('/').nth(3)).map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    let method = parsed.method.unwrap_or("GET").to_string();
    let path = parsed.path.unwrap_or("/").to_string();
    let headers = parsed
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    let operation = header("x-amz-target")
        .or_else(|| {
            let form = String::from_utf8_lossy(&body);
            form.split('&').find_map(|kv| kv.strip_prefix("Action=")).map(str::to_string)
        })
        .unwrap_or_else(|| format!("{method} {}", path.trim_end_matches('?')));
    // The head again, for moto: one request per connection, the body by its length.
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in parsed.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        if matches!(name.as_str(), "connection" | "content-length" | "transfer-encoding") {
            continue;
        }
        head.push_str(&format!("{}: {}\r\n", h.name, String::from_utf8_lossy(h.value)));
    }
    head.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len()));
    Some(Request { head, method, path, headers, body, service, operation })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What is wrong with an answer from moto, if anything: no head, or fewer body bytes than it
/// announced.
fn incomplete(answer: &[u8]) -> Option<String> {
    let Some(head_end) = find(answer, b"\r\n\r\n").map(|i| i + 4) else {
        return Some(format!("no head in {} bytes", answer.len()));
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    if parsed.parse(&answer[..head_end]).is_err() {
        return Some("unparsable head".into());
    }
    let length = parsed.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length"));
    let length: usize = length.and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())?;
    let body = answer.len() - head_end;
    (body < length).then(|| format!("{body} of {length} body bytes"))
}

/// A request of the proxy's own to moto (what the strict rules need to know), signed for
/// `service` as moto routes by the signature's scope; moto's answer body if it answered 2xx.
pub fn ask_moto(upstream: u16, service: &str, method: &str, path: &str) -> Option<String> {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{upstream}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let mut moto = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    moto.write_all(head.as_bytes()).ok()?;
    let mut answer = Vec::new();
    moto.read_to_end(&mut answer).ok()?;
    let (status, _, body) = split_answer(&answer)?;
    (200..300).contains(&status).then_some(body)
}

/// An answer's status, head and body.
pub fn split_answer(answer: &[u8]) -> Option<(u16, String, String)> {
    let head_end = find(answer, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, String::from_utf8_lossy(&answer[head_end + 4..]).into_owned()))
}

/// An answer with this status line's code, head lines and body (its length set).
pub fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "x-amzn-RequestId: strict\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        301 => "Moved Permanently",
        400 => "Bad Request",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    }
}

/// moto's answer with its body (and length) replaced, and any header set.
pub fn rewritten(original: &[u8], body: Option<String>, set_header: Option<(&str, String)>) -> Vec<u8> {
    let Some((_, head, old_body)) = split_answer(original) else { return original.to_vec() };
    let body = body.unwrap_or(old_body);
    let mut lines: Vec<String> = head
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !l.starts_with("content-length:")
                && set_header.as_ref().is_none_or(|(k, _)| !l.starts_with(&format!("{}:", k.to_ascii_lowercase())))
        })
        .map(str::to_string)
        .collect();
    if let Some((k, v)) = set_header {
        lines.push(format!("{k}: {v}"));
    }
    lines.push(format!("Content-Length: {}", body.len()));
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// Sends the request to moto and returns its whole answer (moto closes after each).
fn forward(upstream: u16, request: &Request) -> std::io::Result<Vec<u8>> {
    let mut moto = TcpStream::connect(("127.0.0.1", upstream))?;
    moto.write_all(request.head.as_bytes())?;
    moto.write_all(&request.body)?;
    let mut answer = Vec::new();
    moto.read_to_end(&mut answer)?;
    Ok(closing(answer))
}

/// The answer with `Connection: close` (the proxy closes after each answer: the client must not
/// send a second request on the connection).
fn closing(answer: Vec<u8>) -> Vec<u8> {
    let Some(head_end) = find(&answer, b"\r\n\r\n") else { return answer };
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let mut lines: Vec<&str> =
        head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push("Connection: close");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&answer[head_end..]);
    out
}

/// A throttling or 5xx answer as the service itself would send it.
fn error_response(service: &str, throttled: bool) -> Vec<u8> {
    let (status, content_type, extra, body) = match (service, throttled) {
        ("s3", true) => {
            (503, "application/xml", "", xml_error("Error", "SlowDown", "Please reduce your request rate."))
        }
        ("s3", false) => {
            (500, "application/xml", "", xml_error("Error", "InternalError", "We encountered an internal error."))
        }
        ("iam" | "sts" | "sns" | "cloudfront" | "route53", true) => {
            (400, "text/xml", "", query_error("Sender", "Throttling", "Rate exceeded"))
        }
        ("iam", false) => (500, "text/xml", "", query_error("Receiver", "ServiceFailure", "internal failure")),
        ("sts" | "sns" | "cloudfront" | "route53", false) => {
            (500, "text/xml", "", query_error("Receiver", "InternalError", "internal error"))
        }
        ("lambda", true) => (
            429,
            "application/json",
            "x-amzn-ErrorType: TooManyRequestsException\r\n",
            r#"{"Type":"User","message":"Rate exceeded","Reason":"CallerRateLimitExceeded"}"#.to_string(),
        ),
        ("lambda", false) => (
            500,
            "application/json",
            "x-amzn-ErrorType: ServiceException\r\n",
            r#"{"Type":"Service","Message":"internal error"}"#.to_string(),
        ),
        ("cognito-idp", true) => (
            400,
            "application/x-amz-json-1.1",
            "",
            r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#.to_string(),
        ),
        ("cognito-idp", false) => (
            500,
            "application/x-amz-json-1.1",
            "",
            r#"{"__type":"InternalErrorException","message":"internal error"}"#.to_string(),
        ),
        // API Gateway and anything else speaking REST-JSON.
        (_, true) => (
            429,
            "application/json",
            "x-amzn-ErrorType: TooManyRequestsException\r\n",
            r#"{"message":"Too Many Requests"}"#.to_string(),
        ),
        (_, false) => (
            503,
            "application/json",
            "x-amzn-ErrorType: ServiceUnavailableException\r\n",
            r#"{"message":"Service Unavailable"}"#.to_string(),
        ),
    };
    let reason = match status {
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n{extra}x-amzn-RequestId: injected\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn xml_error(root: &str, code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><{root}><Code>{code}</Code><Message>{message}</Message><RequestId>injected</RequestId></{root}>"
    )
}

fn query_error(kind: &str, code: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_aws_assigns_are_left_out_of_labels() {
        // The same call in two accounts has one label.
        assert_eq!(label("apigateway", "POST /v2/apis/x1y2/routes"), "apigateway POST /v2/apis/*/routes");
        assert_eq!(
            label("route53", "POST /2013-04-01/hostedzone/Z9/rrset"),
            "route53 POST /2013-04-01/hostedzone/*/rrset"
        );
        assert_eq!(label("apigateway", "POST /v2/apis"), "apigateway POST /v2/apis");
    }

    #[test]
    fn the_sequential_depth_counts_requests_that_ran_one_after_another() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Three in parallel, then one after them, then two more in a chain: 1 + 1 + 2.
        let spans = [
            (at(0), at(40)),
            (at(1), at(41)),
            (at(2), at(42)),
            (at(43), at(83)),
            (at(84), at(124)),
            (at(125), at(165)),
        ];
        assert_eq!(sequential_depth(&spans), 4);
        // A long request beside a chain does not shorten it.
        assert_eq!(sequential_depth(&[(at(0), at(200)), (at(0), at(10)), (at(11), at(20))]), 2);
        assert_eq!(sequential_depth(&[]), 0);
    }

    #[test]
    fn every_answer_tells_the_client_the_connection_closes() {
        // Whatever moto said about the connection, the proxy closes it after the answer.
        let kept = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok".to_vec();
        let out = String::from_utf8(closing(kept)).expect("utf8");
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    }

    #[test]
    fn a_chunked_body_is_put_back_together() {
        // Two chunks and the terminator give the bytes sent.
        assert_eq!(dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n").as_deref(), Some(&b"hello world"[..]));
    }
}
