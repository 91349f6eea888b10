//! A fault-injecting HTTP proxy on a loopback port, in front of the emulator: what the
//! emulator cannot do by itself is lose an answer. ImportCertificate requests are, at
//! random (seeded), dropped before they reach the emulator, or forwarded and their answer
//! replaced by a 500 or a closed connection — so ACM imported, and the client cannot know.
//! Everything else passes through, but for what a test asks of it by rule (for what the
//! emulator does not do): answer one operation with an error a number of times, answer one
//! with a canned body, or rewrite an answer.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

/// Every request seen: its operation and body.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// What a test asks of the proxy beyond faults: by operation (`X-Amz-Target`, or
/// `Action=NAME` for the query protocols).
#[derive(Default)]
pub(crate) struct Rules {
    /// Answer this operation with a 500 this many times (not forwarded).
    fail: Vec<(String, u32)>,
    /// Answer this operation with this status and body (not forwarded).
    canned: Vec<(String, u16, String)>,
    /// In answers to this operation whose request contains the needle, replace `from` by
    /// `to` (the next so many answers, or every one).
    rewrite: Vec<Rewrite>,
    /// Answer this operation only after this long (a slow service).
    delay: Vec<(String, std::time::Duration)>,
}

/// One rewriting rule: in answers to `op` whose request contains `needle`, `from` becomes
/// `to`, for the next `times` answers that contain `from` (`None`: every one).
struct Rewrite {
    op: String,
    needle: String,
    from: String,
    to: String,
    times: Option<u32>,
}

type SharedRules = Arc<Mutex<Rules>>;

/// The operation a request names: its X-Amz-Target, else `Action=NAME` from a query-protocol
/// body, else the request line.
fn operation(target: &str, body: &[u8]) -> String {
    if !target.contains(' ') {
        return target.to_owned();
    }
    let body = String::from_utf8_lossy(body);
    body.split('&')
        .find_map(|kv| kv.strip_prefix("Action="))
        .map(|a| format!("Action={a}"))
        .unwrap_or_else(|| target.to_owned())
}

/// An HTTP answer with `from` replaced by `to` in its body (Content-Length fixed).
fn rewritten(answer: &[u8], from: &str, to: &str) -> Vec<u8> {
    let Some(split) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return answer.to_vec();
    };
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = String::from_utf8_lossy(&answer[split + 4..]).replace(from, to);
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| {
            if l.to_ascii_lowercase().starts_with("content-length:") {
                format!("Content-Length: {}", body.len())
            } else {
                l.to_owned()
            }
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n")).into_bytes()
}

/// What happened to an ImportCertificate request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Passed through.
    Delivered,
    /// Never reached the emulator; the client saw the connection close.
    DroppedBeforeAcm,
    /// The emulator imported; the client saw a 500.
    AnswerLost500,
    /// The emulator imported; the client saw the connection close.
    AnswerLostReset,
}

/// Chances, in percent, of each fault for ImportCertificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    pub(crate) drop_before: u32,
    pub(crate) lose_500: u32,
    pub(crate) lose_reset: u32,
}

pub(crate) struct FaultProxy {
    pub(crate) endpoint: String,
    fates: Arc<Mutex<Vec<Fate>>>,
    /// Every request seen: its X-Amz-Target (or request line) and body.
    seen: Seen,
    rules: SharedRules,
    stop: Arc<AtomicBool>,
}

/// A small deterministic generator (xorshift64*), so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn percent(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32 % 100
    }
}

struct Request {
    head: Vec<u8>,
    body: Vec<u8>,
    target: String,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut head = Vec::new();
    let mut target = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        if lower.starts_with("x-amz-target:") {
            target = line["x-amz-target:".len()..].trim().to_owned();
        }
        if head.is_empty() && target.is_empty() {
            // The request line, until an X-Amz-Target names the operation.
            target = line.trim().to_owned();
        }
        if lower.starts_with("connection:") {
            continue;
        }
        if line == "\r\n" {
            head.extend_from_slice(b"Connection: close\r\n\r\n");
            break;
        }
        head.extend_from_slice(line.as_bytes());
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some(Request { head, body, target })
}

fn forward(upstream: &str, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(upstream)?;
    s.write_all(&req.head)?;
    s.write_all(&req.body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// One request per connection: the answer carries `Connection: close`, so the client
/// opens a new connection for the next.
fn serve(
    client: TcpStream,
    upstream: String,
    faults: Faults,
    rng: Arc<Mutex<Rng>>,
    fates: Arc<Mutex<Vec<Fate>>>,
    seen: Seen,
    rules: SharedRules,
) {
    let mut reader = BufReader::new(client.try_clone().expect("clone socket"));
    let mut client = client;
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let op = operation(&req.target, &req.body);
    seen.lock().unwrap().push((op.clone(), req.body.clone()));
    let delay = rules
        .lock()
        .unwrap()
        .delay
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, d)| *d);
    if let Some(d) = delay {
        thread::sleep(d);
    }
    let ruled: Option<(u16, String)> = {
        let mut r = rules.lock().unwrap();
        if let Some(f) = r.fail.iter_mut().find(|(o, n)| *o == op && *n > 0) {
            f.1 -= 1;
            Some((
                500,
                "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>injected by the test proxy</Message></Error><RequestId>test</RequestId></ErrorResponse>".into(),
            ))
        } else {
            r.canned
                .iter()
                .find(|(o, _, _)| *o == op)
                .map(|(_, status, body)| (*status, body.clone()))
        }
    };
    if let Some((status, body)) = ruled {
        // As AWS: every answer has a request id of its own.
        static ANSWERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let n = ANSWERS.fetch_add(1, Ordering::Relaxed);
        let content_type = if body.starts_with('{') {
            "application/x-amz-json-1.1"
        } else {
            "text/xml"
        };
        let _ = write!(
            client,
            "HTTP/1.1 {status} Ruled\r\nContent-Type: {content_type}\r\nx-amzn-RequestId: ruled-{n}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let fate = if req.target.ends_with(".ImportCertificate") {
        let p = rng.lock().unwrap().percent();
        let f = if p < faults.drop_before {
            Fate::DroppedBeforeAcm
        } else if p < faults.drop_before + faults.lose_500 {
            Fate::AnswerLost500
        } else if p < faults.drop_before + faults.lose_500 + faults.lose_reset {
            Fate::AnswerLostReset
        } else {
            Fate::Delivered
        };
        fates.lock().unwrap().push(f);
        f
    } else {
        Fate::Delivered
    };
    let answer = match fate {
        Fate::DroppedBeforeAcm => None,
        _ => forward(&upstream, &req).ok(),
    };
    match (fate, answer) {
        (Fate::AnswerLost500, Some(_)) => {
            let body = br#"{"__type":"InternalFailure","message":"injected by the test proxy"}"#;
            let _ = write!(
                client,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = client.write_all(body);
        }
        (Fate::Delivered, Some(answer)) => {
            let mut answer = answer;
            let text = String::from_utf8_lossy(&req.body).into_owned();
            for r in &mut rules.lock().unwrap().rewrite {
                let applies = r.op == op
                    && text.contains(r.needle.as_str())
                    && r.times != Some(0)
                    && String::from_utf8_lossy(&answer).contains(r.from.as_str());
                if applies {
                    answer = rewritten(&answer, &r.from, &r.to);
                    if let Some(n) = &mut r.times {
                        *n -= 1;
                    }
                }
            }
            let _ = client.write_all(&answer);
        }
        // Dropped, reset, or the emulator did not answer: the connection just closes.
        _ => {}
    }
    let _ = client.shutdown(Shutdown::Both);
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`).
    pub(crate) fn start(upstream: &str, faults: Faults, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().unwrap().port();
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let fates = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let rng = Arc::new(Mutex::new(Rng(seed.max(1))));
        let rules: SharedRules = Arc::default();
        {
            let (fates, seen, stop, rules) =
                (fates.clone(), seen.clone(), stop.clone(), rules.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (upstream, rng, fates, seen, rules) = (
                        upstream.clone(),
                        rng.clone(),
                        fates.clone(),
                        seen.clone(),
                        rules.clone(),
                    );
                    thread::spawn(move || serve(conn, upstream, faults, rng, fates, seen, rules));
                }
            });
        }
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            fates,
            seen,
            rules,
            stop,
        }
    }

    /// A proxy that passes everything through (rules aside).
    pub(crate) fn clean(upstream: &str) -> FaultProxy {
        FaultProxy::start(
            upstream,
            Faults {
                drop_before: 0,
                lose_500: 0,
                lose_reset: 0,
            },
            1,
        )
    }

    /// Answers `op` with a 500 the next `times` times.
    pub(crate) fn fail(&self, op: &str, times: u32) {
        self.rules.lock().unwrap().fail.push((op.to_owned(), times));
    }

    /// Forgets every failure asked with [`FaultProxy::fail`].
    pub(crate) fn clear_failures(&self) {
        self.rules.lock().unwrap().fail.clear();
    }

    /// Answers `op` with `status` and `body`.
    pub(crate) fn canned(&self, op: &str, status: u16, body: &str) {
        self.rules
            .lock()
            .unwrap()
            .canned
            .push((op.to_owned(), status, body.to_owned()));
    }

    /// Answers `op` only after `by` (a slow service).
    pub(crate) fn delay(&self, op: &str, by: std::time::Duration) {
        self.rules.lock().unwrap().delay.push((op.to_owned(), by));
    }

    /// In answers to `op` whose request contains `needle`, replaces `from` by `to`.
    pub(crate) fn rewrite(&self, op: &str, needle: &str, from: &str, to: &str) {
        self.push_rewrite(op, needle, from, to, None);
    }

    /// The same for the next `times` such answers only (then they pass unchanged): what
    /// changes over time, as an instance that is `modifying` for a while.
    pub(crate) fn rewrite_times(&self, op: &str, needle: &str, from: &str, to: &str, times: u32) {
        self.push_rewrite(op, needle, from, to, Some(times));
    }

    fn push_rewrite(&self, op: &str, needle: &str, from: &str, to: &str, times: Option<u32>) {
        self.rules.lock().unwrap().rewrite.push(Rewrite {
            op: op.to_owned(),
            needle: needle.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
            times,
        });
    }

    /// Every request so far: its operation (X-Amz-Target, else the request line) and body.
    pub(crate) fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.seen.lock().unwrap().clone()
    }

    /// What happened to each ImportCertificate so far.
    pub(crate) fn fates(&self) -> Vec<Fate> {
        self.fates.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}
