//! `kumo bench`: load a running server over HTTP with keep-alive connections and print req/s
//! and latency percentiles. Every scenario is measured next to a baseline (`GET
//! /_kumo/health`, which does no EC2 work) in the same run, so figures can be quoted as ratios
//! on a noisy machine.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The server to load.
    #[arg(long, default_value = "127.0.0.1:4566")]
    target: SocketAddr,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// What to measure: `describe-regions`, `describe-key-pairs` (seeds `--keys` key pairs
    /// first), or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Key pairs to create before `describe-key-pairs`.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
}

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=000000000000/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";

fn request(method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {AUTH}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request on a kept-alive connection and reads the whole response; returns the
/// status.
async fn roundtrip(conn: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<u16> {
    conn.write_all(req).await?;
    buf.clear();
    let mut chunk = [0u8; 16384];
    loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            return Ok(status);
        }
    }
}

struct Stats {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn print(&self, name: &str) {
        println!(
            "{name:<28} {:>9.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} requests, {} errors)",
            self.rate(),
            self.pct(0.5),
            self.pct(0.9),
            self.pct(0.99),
            self.pct(1.0),
            self.requests,
            self.errors
        );
    }
}

async fn load(
    target: SocketAddr,
    connections: usize,
    seconds: f64,
    req: Vec<u8>,
) -> std::io::Result<Stats> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(target).await?;
            conn.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(16384);
            let mut lat = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                let status = roundtrip(&mut conn, &req, &mut buf).await?;
                lat.push(t.elapsed().as_micros() as u64);
                if status != 200 {
                    errors += 1;
                }
            }
            Ok::<_, std::io::Error>((lat, errors))
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (lat, e) = t.await.map_err(std::io::Error::other)??;
        all.extend(lat);
        errors += e;
    }
    let elapsed = start.elapsed();
    all.sort_unstable();
    Ok(Stats {
        requests: all.len(),
        errors,
        elapsed,
        latencies_us: all,
    })
}

async fn seed_keys(target: SocketAddr, n: usize) -> std::io::Result<()> {
    let mut conn = TcpStream::connect(target).await?;
    let mut buf = Vec::new();
    let r = request("POST", "/_kumo/reset", "");
    roundtrip(&mut conn, &r, &mut buf).await?;
    let t = Instant::now();
    for i in 0..n {
        let body =
            format!("Action=CreateKeyPair&Version=2016-11-15&KeyName=bench-{i:05}&KeyType=ed25519");
        let status = roundtrip(&mut conn, &request("POST", "/", &body), &mut buf).await?;
        if status != 200 {
            return Err(std::io::Error::other(format!(
                "CreateKeyPair answered {status}"
            )));
        }
    }
    println!("seeded {n} key pairs in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

async fn run_all(args: BenchArgs) -> std::io::Result<()> {
    let base = request("GET", "/_kumo/health", "");
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" => vec!["describe-regions", "describe-key-pairs"],
        s => vec![s],
    };
    for s in scenarios {
        let (req, conns) = match s {
            "describe-regions" => (
                request("POST", "/", "Action=DescribeRegions&Version=2016-11-15"),
                args.connections,
            ),
            "describe-key-pairs" => {
                seed_keys(args.target, args.keys).await?;
                let one = format!("bench-{:05}", args.keys / 2);
                let body = format!("Action=DescribeKeyPairs&Version=2016-11-15&Filter.1.Name=key-name&Filter.1.Value.1={one}");
                (request("POST", "/", &body), 1)
            }
            other => return Err(std::io::Error::other(format!("unknown scenario {other}"))),
        };
        println!("-- {s}: {conns} connection(s), {:.1} s each", args.seconds);
        let b = load(args.target, conns, args.seconds, base.clone()).await?;
        b.print("baseline GET /_kumo/health");
        let r = load(args.target, conns, args.seconds, req).await?;
        r.print(s);
        println!(
            "ratio {s}/baseline: throughput {:.2}, p50 latency {:.2}",
            r.rate() / b.rate().max(1e-9),
            r.pct(0.5) / b.pct(0.5).max(1e-9)
        );
        if r.errors > 0 {
            return Err(std::io::Error::other(format!(
                "{s}: {} requests failed",
                r.errors
            )));
        }
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_all(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
