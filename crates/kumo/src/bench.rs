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
    /// first), `enis` (seeds `--enis` interfaces in one /16 subnet, then measures
    /// AssignPrivateIpAddresses and a filtered DescribeNetworkInterfaces), `big-bodies`
    /// (2 MB bodies of 100,000 distinct keys, alone and beside DescribeRegions),
    /// `create-volume`, or `all`.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Key pairs to create before `describe-key-pairs`.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Network interfaces to create before `enis`.
    #[arg(long, default_value_t = 10_000)]
    enis: usize,
    /// Instances to launch (100 per RunInstances call) before `instances`.
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// The server's process id, to report its memory per instance.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The server's data directory: `snapshots` writes into volume files there (with
    /// `qemu-io`) between snapshots.
    #[arg(long)]
    data_dir: Option<std::path::PathBuf>,
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
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
    reqs: Vec<Vec<u8>>,
) -> std::io::Result<Stats> {
    load_expecting(target, connections, seconds, reqs, 200).await
}

/// `load`, counting as errors the answers whose status is not `expect`.
async fn load_expecting(
    target: SocketAddr,
    connections: usize,
    seconds: f64,
    reqs: Vec<Vec<u8>>,
    expect: u16,
) -> std::io::Result<Stats> {
    load_paced(target, connections, seconds, reqs, expect, None).await
}

/// `load_expecting`, each connection starting a request at most once per `every` when given.
async fn load_paced(
    target: SocketAddr,
    connections: usize,
    seconds: f64,
    reqs: Vec<Vec<u8>>,
    expect: u16,
    every: Option<Duration>,
) -> std::io::Result<Stats> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let reqs = reqs.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(target).await?;
            conn.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(16384);
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = c;
            while Instant::now() < deadline {
                let req = &reqs[i % reqs.len()];
                i += 1;
                let t = Instant::now();
                let status = roundtrip(&mut conn, req, &mut buf).await?;
                lat.push(t.elapsed().as_micros() as u64);
                if status != expect {
                    errors += 1;
                }
                if let Some(every) = every {
                    tokio::time::sleep_until((t + every).into()).await;
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

/// The text of the first `<tag>` in a response body.
fn first(body: &[u8], tag: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find('<')? + start;
    Some(text[start..end].to_string())
}

async fn call(conn: &mut TcpStream, body: &str, buf: &mut Vec<u8>) -> std::io::Result<Vec<u8>> {
    let status = roundtrip(conn, &request("POST", "/", body), buf).await?;
    if status != 200 {
        return Err(std::io::Error::other(format!(
            "{body} answered {status}: {}",
            String::from_utf8_lossy(buf)
        )));
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    Ok(buf[end + 4..].to_vec())
}

/// A /16 subnet holding `n` interfaces; returns (interface ids, their primary addresses).
async fn seed_enis(target: SocketAddr, n: usize) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let mut conn = TcpStream::connect(target).await?;
    let mut buf = Vec::new();
    roundtrip(&mut conn, &request("POST", "/_kumo/reset", ""), &mut buf).await?;
    let vpc = call(
        &mut conn,
        "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
        &mut buf,
    )
    .await?;
    let vpc = first(&vpc, "vpcId").ok_or_else(|| std::io::Error::other("no vpc id"))?;
    let sn = call(
        &mut conn,
        &format!("Action=CreateSubnet&Version=2016-11-15&VpcId={vpc}&CidrBlock=10.0.0.0%2F16"),
        &mut buf,
    )
    .await?;
    let sn = first(&sn, "subnetId").ok_or_else(|| std::io::Error::other("no subnet id"))?;
    let t = Instant::now();
    let (mut ids, mut addrs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let out = call(
            &mut conn,
            &format!("Action=CreateNetworkInterface&Version=2016-11-15&SubnetId={sn}"),
            &mut buf,
        )
        .await?;
        ids.push(first(&out, "networkInterfaceId").unwrap_or_default());
        addrs.push(first(&out, "privateIpAddress").unwrap_or_default());
    }
    println!(
        "seeded {n} network interfaces in one /16 subnet in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok((ids, addrs))
}

/// Launches `n` instances, 100 per call, into /20 subnets of a new VPC spread over three
/// zones; returns (instance ids, RunInstances latencies in microseconds).
async fn seed_instances(
    target: SocketAddr,
    n: usize,
    pid: Option<u32>,
) -> std::io::Result<(Vec<String>, Vec<u64>)> {
    let mut conn = TcpStream::connect(target).await?;
    let mut buf = Vec::new();
    roundtrip(&mut conn, &request("POST", "/_kumo/reset", ""), &mut buf).await?;
    let ssm = format!(
        "POST / HTTP/1.1\r\nHost: bench\r\nAuthorization: {}\r\nX-Amz-Target: AmazonSSM.GetParameter\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{}",
        AUTH.replace("/ec2/", "/ssm/"),
        80,
        r#"{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}"#
    );
    // Content-Length above is the JSON's length: keep them in step.
    let json =
        r#"{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}"#;
    let ssm = ssm.replace(
        "Content-Length: 80",
        &format!("Content-Length: {}", json.len()),
    );
    roundtrip(&mut conn, ssm.as_bytes(), &mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let ami = text
        .split("\"Value\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap_or("")
        .to_string();
    let vpc = call(
        &mut conn,
        "Action=CreateVpc&Version=2016-11-15&CidrBlock=10.0.0.0%2F16",
        &mut buf,
    )
    .await?;
    let vpc = first(&vpc, "vpcId").ok_or_else(|| std::io::Error::other("no vpc id"))?;
    let mut subnets = Vec::new();
    for (i, zone) in ["us-east-1a", "us-east-1b", "us-east-1c"]
        .iter()
        .enumerate()
    {
        let body = format!("Action=CreateSubnet&Version=2016-11-15&VpcId={vpc}&CidrBlock=10.0.{}.0%2F18&AvailabilityZone={zone}", i * 64);
        let sn = call(&mut conn, &body, &mut buf).await?;
        subnets.push(first(&sn, "subnetId").ok_or_else(|| std::io::Error::other("no subnet id"))?);
    }
    let before = rss_kib(pid);
    let mut ids = Vec::with_capacity(n);
    let mut lat = Vec::new();
    let t = Instant::now();
    let mut batch = 0;
    while ids.len() < n {
        let count = (n - ids.len()).min(100);
        let body = format!(
            "Action=RunInstances&Version=2016-11-15&ImageId={ami}&InstanceType=t3.micro&MinCount={count}&MaxCount={count}&SubnetId={}&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Key=batch&TagSpecification.1.Tag.1.Value=b{batch}",
            subnets[batch % subnets.len()]
        );
        let s = Instant::now();
        let out = call(&mut conn, &body, &mut buf).await?;
        lat.push(s.elapsed().as_micros() as u64);
        let text = String::from_utf8_lossy(&out);
        ids.extend(
            text.split("<instanceId>")
                .skip(1)
                .filter_map(|p| p.split('<').next())
                .map(str::to_string),
        );
        batch += 1;
    }
    println!(
        "launched {} instances in {:.1} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );
    if let (Some(b), Some(a)) = (before, rss_kib(pid)) {
        println!(
            "server memory: {b} KiB before, {a} KiB after: {:.2} KiB per instance (with its interface)",
            a.saturating_sub(b) as f64 / ids.len().max(1) as f64
        );
    }
    lat.sort_unstable();
    Ok((ids, lat))
}

/// Snapshots of a 1 GiB volume, each after 10 MiB more were written; returns the
/// CreateSnapshot latencies in microseconds.
async fn snapshot_run(
    target: SocketAddr,
    data_dir: &std::path::Path,
    rounds: usize,
) -> std::io::Result<Vec<u64>> {
    let mut conn = TcpStream::connect(target).await?;
    let mut buf = Vec::new();
    roundtrip(&mut conn, &request("POST", "/_kumo/reset", ""), &mut buf).await?;
    let v = call(
        &mut conn,
        "Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a&Size=1&VolumeType=gp3",
        &mut buf,
    )
    .await?;
    let vol = first(&v, "volumeId").ok_or_else(|| std::io::Error::other("no volume id"))?;
    let file = data_dir.join("volumes").join(format!("{vol}.qcow2"));
    let mut lat = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let cmd = format!("write -P {} {}M 10M", (i % 250) + 1, (i * 10) % 1000);
        let out = std::process::Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", &cmd])
            .arg(&file)
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "qemu-io failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let t = Instant::now();
        call(
            &mut conn,
            &format!("Action=CreateSnapshot&Version=2016-11-15&VolumeId={vol}"),
            &mut buf,
        )
        .await?;
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat.sort_unstable();
    Ok(lat)
}

async fn run_all(args: BenchArgs) -> std::io::Result<()> {
    let base = request("GET", "/_kumo/health", "");
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" if args.data_dir.is_some() => vec![
            "describe-regions",
            "big-bodies",
            "create-volume",
            "describe-key-pairs",
            "enis",
            "instances",
            "snapshots",
        ],
        "all" => vec![
            "describe-regions",
            "big-bodies",
            "create-volume",
            "describe-key-pairs",
            "enis",
            "instances",
        ],
        s => vec![s],
    };
    for s in scenarios {
        let (reqs, conns, names): Plan<'_> = match s {
            "describe-regions" => (
                vec![vec![request(
                    "POST",
                    "/",
                    "Action=DescribeRegions&Version=2016-11-15",
                )]],
                args.connections,
                vec![s],
            ),
            "describe-key-pairs" => {
                seed_keys(args.target, args.keys).await?;
                let one = format!("bench-{:05}", args.keys / 2);
                let body = format!("Action=DescribeKeyPairs&Version=2016-11-15&Filter.1.Name=key-name&Filter.1.Value.1={one}");
                (vec![vec![request("POST", "/", &body)]], 1, vec![s])
            }
            "enis" => enis_plan(&args).await?,
            "big-bodies" => {
                big_bodies(&args).await?;
                continue;
            }
            "create-volume" => (
                vec![vec![request(
                    "POST",
                    "/",
                    "Action=CreateVolume&Version=2016-11-15&AvailabilityZone=us-east-1a&Size=8&VolumeType=gp3",
                )]],
                1,
                vec!["create-volume (8 GiB gp3)"],
            ),
            "snapshots" => {
                let dir = args
                    .data_dir
                    .clone()
                    .ok_or_else(|| std::io::Error::other("snapshots needs --data-dir"))?;
                let lat = snapshot_run(args.target, &dir, 20).await?;
                print_latencies(
                    &format!("create-snapshot (1 GiB gp3 volume, 10 MiB changed before each, {} snapshots)", lat.len()),
                    &lat,
                );
                continue;
            }
            "instances" => instances_plan(&args).await?,
            other => return Err(std::io::Error::other(format!("unknown scenario {other}"))),
        };
        measure(&args, s, &base, reqs, conns, &names).await?;
    }
    Ok(())
}

/// A scenario's requests (a list per measured kind), its connections, and each kind's name.
type Plan<'a> = (Vec<Vec<Vec<u8>>>, usize, Vec<&'a str>);

/// Measures each kind of a scenario's requests beside the baseline, in the same run, and
/// prints their ratios.
async fn measure(
    args: &BenchArgs,
    scenario: &str,
    base: &[u8],
    reqs: Vec<Vec<Vec<u8>>>,
    conns: usize,
    names: &[&str],
) -> std::io::Result<()> {
    println!(
        "-- {scenario}: {conns} connection(s), {:.1} s each",
        args.seconds
    );
    let b = load(args.target, conns, args.seconds, vec![base.to_vec()]).await?;
    b.print("baseline GET /_kumo/health");
    for (req, name) in reqs.into_iter().zip(names) {
        let r = load(args.target, conns, args.seconds, req).await?;
        r.print(name);
        println!(
            "ratio {name}/baseline: throughput {:.2}, p50 latency {:.2}",
            r.rate() / b.rate().max(1e-9),
            r.pct(0.5) / b.pct(0.5).max(1e-9)
        );
        if r.errors > 0 {
            return Err(std::io::Error::other(format!(
                "{name}: {} requests failed",
                r.errors
            )));
        }
    }
    Ok(())
}

/// Prints a sorted list of latencies (microseconds) as p50, p90 and max in milliseconds.
fn print_latencies(label: &str, lat: &[u64]) {
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize] as f64 / 1000.0;
    println!(
        "{label}: p50 {:.3} ms  p90 {:.3} ms  max {:.3} ms",
        p(0.5),
        p(0.9),
        p(1.0)
    );
}

/// AssignPrivateIpAddresses and DescribeNetworkInterfaces by address, among `args.enis`
/// interfaces.
async fn enis_plan(args: &BenchArgs) -> std::io::Result<Plan<'static>> {
    let (ids, addrs) = seed_enis(args.target, args.enis).await?;
    let step = (ids.len() / 1000).max(1);
    let assign: Vec<Vec<u8>> = ids
        .iter()
        .step_by(step)
        .map(|id| request("POST", "/", &format!("Action=AssignPrivateIpAddresses&Version=2016-11-15&NetworkInterfaceId={id}&SecondaryPrivateIpAddressCount=1")))
        .collect();
    let describe: Vec<Vec<u8>> = addrs
        .iter()
        .step_by(step)
        .map(|a| request("POST", "/", &format!("Action=DescribeNetworkInterfaces&Version=2016-11-15&Filter.1.Name=addresses.private-ip-address&Filter.1.Value.1={a}")))
        .collect();
    Ok((
        vec![assign, describe],
        1,
        vec![
            "assign-private-ip-addresses",
            "describe-network-interfaces (by address)",
        ],
    ))
}

/// RunInstances of 100 (timed as they seed), then DescribeInstances by id, by one tag and a
/// page of 100.
async fn instances_plan(args: &BenchArgs) -> std::io::Result<Plan<'static>> {
    let (ids, lat) = seed_instances(args.target, args.instances, args.server_pid).await?;
    print_latencies(
        &format!("run-instances (100 per call, {} calls)", lat.len()),
        &lat,
    );
    let mut conn = TcpStream::connect(args.target).await?;
    let mut buf = Vec::new();
    let tagged = &ids[ids.len() / 2];
    call(&mut conn, &format!("Action=CreateTags&Version=2016-11-15&ResourceId.1={tagged}&Tag.1.Key=unique&Tag.1.Value=needle"), &mut buf).await?;
    let step = (ids.len() / 1000).max(1);
    let by_id: Vec<Vec<u8>> = ids
        .iter()
        .step_by(step)
        .map(|id| {
            request(
                "POST",
                "/",
                &format!("Action=DescribeInstances&Version=2016-11-15&InstanceId.1={id}"),
            )
        })
        .collect();
    let by_tag = vec![request("POST", "/", "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aunique&Filter.1.Value.1=needle")];
    let page = vec![request(
        "POST",
        "/",
        "Action=DescribeInstances&Version=2016-11-15&MaxResults=100",
    )];
    Ok((
        vec![by_id, by_tag, page],
        1,
        vec![
            "describe-instances (by id)",
            "describe-instances (by one tag)",
            "describe-instances (page of 100)",
        ],
    ))
}

/// A body of `keys` distinct keys at one level (about 2 MB for 100,000): the shape that cost
/// 72 s of CPU when each key was looked up among its siblings one by one.
fn big_body(keys: usize) -> String {
    let mut body = String::from("Action=DescribeRegions&Version=2016-11-15");
    for i in 0..keys {
        body.push_str(&format!("&RegionName{i:06}=x"));
    }
    body
}

/// The big bodies answered alone (their latency), then DescribeRegions on `--connections`
/// connections without big bodies, beside two connections each sending ten big bodies a
/// second (an attack that stalled the server for 100 s with two requests), and beside two
/// connections sending them as fast as they are answered (which shares out the CPU).
async fn big_bodies(args: &BenchArgs) -> std::io::Result<()> {
    let body = big_body(100_000);
    let big = vec![request("POST", "/", &body)];
    // At the cap of 10,000 parameters the whole tree is built, then refused as unknown.
    let at_cap = vec![request("POST", "/", &big_body(9_998))];
    let regions = vec![request(
        "POST",
        "/",
        "Action=DescribeRegions&Version=2016-11-15",
    )];
    println!(
        "-- big-bodies: {} bytes, 100,000 distinct keys; {:.1} s each",
        body.len(),
        args.seconds
    );
    // Refused as more parameters than a request may carry: 400 InvalidQueryParameter.
    let alone = load_expecting(args.target, 1, args.seconds, big.clone(), 400).await?;
    alone.print("big body, alone (1 conn)");
    let capped = load_expecting(args.target, 1, args.seconds, at_cap, 400).await?;
    capped.print("10,000 keys, decoded (1 conn)");
    let quiet = load(args.target, args.connections, args.seconds, regions.clone()).await?;
    quiet.print("describe-regions, quiet");
    let mut checked = vec![("big body", alone.errors), ("10,000 keys", capped.errors)];
    for (label, every) in [
        ("10/s on 2 conns", Some(Duration::from_millis(100))),
        ("flood on 2 conns", None),
    ] {
        let (busy, beside) = tokio::join!(
            load(args.target, args.connections, args.seconds, regions.clone()),
            load_paced(args.target, 2, args.seconds, big.clone(), 400, every)
        );
        let (busy, beside) = (busy?, beside?);
        busy.print(&format!("describe-regions, big {label}"));
        beside.print(&format!("big bodies, {label}"));
        println!(
            "ratio describe-regions with big bodies ({label}) / quiet: throughput {:.2}, p50 latency {:.2}, p99 latency {:.2}",
            busy.rate() / quiet.rate().max(1e-9),
            busy.pct(0.5) / quiet.pct(0.5).max(1e-9),
            busy.pct(0.99) / quiet.pct(0.99).max(1e-9)
        );
        checked.push(("describe-regions", busy.errors));
        checked.push(("big body beside", beside.errors));
    }
    for (name, errors) in checked {
        if errors > 0 {
            return Err(std::io::Error::other(format!(
                "{name}: {errors} requests answered otherwise than expected"
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
