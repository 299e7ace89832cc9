//! A local stub receiver for actions: a minimal HTTP/1.1 server on 127.0.0.1 that
//! records every request and answers as told. It stops when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the stub saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// How the stub answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Status and body.
    Status(u16, String),
    /// Waits, then answers 200.
    Slow(Duration),
    /// A 302 to this location.
    Redirect(String),
    /// 200 with a body of this many bytes.
    Large(usize),
    /// 500 to the first N requests the stub sees, then 200.
    FailFirst(usize),
}

pub struct Stub {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
    stop: Arc<AtomicBool>,
}

impl Stub {
    pub fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer::Status(200, "{\"ok\":true}".into())));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, a, s) = (received.clone(), answer.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (r, a) = (r.clone(), a.clone());
                std::thread::spawn(move || handle(stream, &r, &a));
            }
        });
        Stub {
            port,
            received,
            answer,
            stop,
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn handle(stream: TcpStream, received: &Mutex<Vec<Received>>, answer: &Mutex<Answer>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let seen = {
        let mut received = received.lock().unwrap();
        received.push(Received {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            at: std::time::Instant::now(),
        });
        received.len()
    };
    let answer = answer.lock().unwrap().clone();
    let (status, extra, body) = match answer {
        Answer::Status(status, body) => (status, String::new(), body),
        Answer::Slow(delay) => {
            std::thread::sleep(delay);
            (200, String::new(), "slow".into())
        }
        Answer::Redirect(location) => (302, format!("Location: {location}\r\n"), String::new()),
        Answer::Large(size) => (200, String::new(), "x".repeat(size)),
        Answer::FailFirst(n) if seen <= n => (500, String::new(), "{\"down\":true}".into()),
        Answer::FailFirst(_) => (200, String::new(), "{}".into()),
    };
    let mut stream = reader.into_inner();
    // One write of the whole answer, then a graceful close: the write side first, and
    // whatever the client still sends read away, so that the close is never a reset.
    let response = format!(
        "HTTP/1.1 {status} Stub\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = std::io::copy(&mut stream, &mut std::io::sink());
}
