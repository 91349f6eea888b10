//! A fault-injecting HTTP proxy on a loopback port, in front of the emulator: what the
//! emulator cannot do by itself is lose an answer. ImportCertificate requests are, at
//! random (seeded), dropped before they reach the emulator, or forwarded and their answer
//! replaced by a 500 or a closed connection — so ACM imported, and the client cannot know.
//! Everything else passes through.

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
) {
    let mut reader = BufReader::new(client.try_clone().expect("clone socket"));
    let mut client = client;
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    seen.lock()
        .unwrap()
        .push((req.target.clone(), req.body.clone()));
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
        {
            let (fates, seen, stop) = (fates.clone(), seen.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (upstream, rng, fates, seen) =
                        (upstream.clone(), rng.clone(), fates.clone(), seen.clone());
                    thread::spawn(move || serve(conn, upstream, faults, rng, fates, seen));
                }
            });
        }
        FaultProxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            fates,
            seen,
            stop,
        }
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
