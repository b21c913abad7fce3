//! `kumo describe-unused-ips SUBNET_ID`: which addresses of a subnet are used, reserved and
//! free, and how fragmented the free space is for /28 prefix delegation. It uses only public
//! EC2 calls (DescribeSubnets, DescribeNetworkInterfaces, GetSubnetCidrReservations), so it
//! works against Kumo and against AWS.

use crate::ec2client::{ApiError, Client, ClientArgs};
use kumo_model::cidr::{addr_to_string, parse_addr, Cidr};
use kumo_model::ipam::{Reservation, SubnetIps};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The subnet to inspect.
    subnet_id: String,
    /// `text` or `json`.
    #[arg(long, default_value = "text")]
    output: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// What one address is.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// One of the five AWS keeps.
    AwsReserved,
    /// Held by a network interface (an address or part of a delegated prefix).
    Used,
    /// Inside a subnet CIDR reservation, not in use.
    Reserved,
    Unused,
}

struct Report {
    subnet_id: String,
    vpc_id: String,
    zone: String,
    cidr: Cidr,
    kinds: Vec<Kind>,
    owners: BTreeMap<u32, String>,
    reservations: Vec<(String, Cidr, String)>,
    free_28: Vec<Cidr>,
    largest_free: Option<Cidr>,
}

fn fetch(client: &Client, subnet_id: &str) -> Result<Report, ApiError> {
    let root = client.call(
        "DescribeSubnets",
        &[("SubnetId.1".into(), subnet_id.into())],
    )?;
    let sn = root.items("subnetSet").next().ok_or_else(|| ApiError {
        code: "InvalidSubnetID.NotFound".into(),
        message: format!("The subnet ID '{subnet_id}' does not exist"),
    })?;
    let cidr_text = sn.text_of("cidrBlock").unwrap_or("");
    let cidr = Cidr::parse(cidr_text).map_err(|_| ApiError {
        code: "ResponseError".into(),
        message: format!("unreadable subnet CIDR {cidr_text}"),
    })?;
    let mut owners: BTreeMap<u32, String> = BTreeMap::new();
    let params = [
        ("Filter.1.Name".to_string(), "subnet-id".to_string()),
        ("Filter.1.Value.1".to_string(), subnet_id.to_string()),
        ("MaxResults".to_string(), "1000".to_string()),
    ];
    client.paginate("DescribeNetworkInterfaces", &params, |page| {
        for eni in page.items("networkInterfaceSet") {
            let id = eni.text_of("networkInterfaceId").unwrap_or("").to_string();
            for a in eni.items("privateIpAddressesSet") {
                if let Some(x) = a.text_of("privateIpAddress").and_then(parse_addr) {
                    owners.insert(x, id.clone());
                }
            }
            for p in eni.items("ipv4PrefixSet") {
                if let Some(c) = p.text_of("ipv4Prefix").and_then(|t| Cidr::parse(t).ok()) {
                    for x in c.base()..=c.last() {
                        owners.insert(x, id.clone());
                    }
                }
            }
        }
    })?;
    let mut reservations = Vec::new();
    client.paginate(
        "GetSubnetCidrReservations",
        &[
            ("SubnetId".into(), subnet_id.into()),
            ("MaxResults".into(), "1000".into()),
        ],
        |page| {
            for r in page.items("subnetIpv4CidrReservationSet") {
                if let Some(c) = r.text_of("cidr").and_then(|t| Cidr::parse(t).ok()) {
                    reservations.push((
                        r.text_of("subnetCidrReservationId")
                            .unwrap_or("")
                            .to_string(),
                        c,
                        r.text_of("reservationType").unwrap_or("").to_string(),
                    ));
                }
            }
        },
    )?;
    Ok(analyse(
        subnet_id,
        sn.text_of("vpcId").unwrap_or(""),
        sn.text_of("availabilityZone").unwrap_or(""),
        cidr,
        owners,
        reservations,
    ))
}

fn analyse(
    subnet_id: &str,
    vpc_id: &str,
    zone: &str,
    cidr: Cidr,
    owners: BTreeMap<u32, String>,
    reservations: Vec<(String, Cidr, String)>,
) -> Report {
    let mut ips = SubnetIps::new(cidr);
    for (_, c, t) in &reservations {
        ips.reserve(
            *c,
            if t == "prefix" {
                Reservation::Prefix
            } else {
                Reservation::Explicit
            },
        );
    }
    for a in owners.keys() {
        ips.mark(*a);
    }
    let kinds: Vec<Kind> = (0..cidr.size())
        .map(|o| {
            let a = cidr.base() + o as u32;
            if ips.is_aws_reserved(a) {
                Kind::AwsReserved
            } else if owners.contains_key(&a) {
                Kind::Used
            } else if ips.is_in_reservation(a) {
                Kind::Reserved
            } else {
                Kind::Unused
            }
        })
        .collect();
    // The largest aligned block of unused addresses, from prefix sums.
    let mut sum = vec![0u64; kinds.len() + 1];
    for (i, k) in kinds.iter().enumerate() {
        sum[i + 1] = sum[i] + u64::from(*k == Kind::Unused);
    }
    let mut largest_free = None;
    'outer: for len in cidr.prefix_len()..=32 {
        let size = 1usize << (32 - len as u32);
        for start in (0..kinds.len()).step_by(size) {
            if sum[start + size] - sum[start] == size as u64 {
                largest_free = Cidr::new(cidr.base() + start as u32, len);
                break 'outer;
            }
        }
    }
    Report {
        subnet_id: subnet_id.into(),
        vpc_id: vpc_id.into(),
        zone: zone.into(),
        cidr,
        kinds,
        owners,
        reservations,
        free_28: ips.free_prefixes(),
        largest_free,
    }
}

/// Runs of consecutive addresses of one kind: `10.0.1.4-10.0.1.9`.
fn ranges(r: &Report, kind: Kind) -> Vec<String> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for i in 0..=r.kinds.len() {
        let hit = r.kinds.get(i) == Some(&kind);
        match (hit, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let a = r.cidr.base() + s as u32;
                let b = r.cidr.base() + i as u32 - 1;
                out.push(if a == b {
                    addr_to_string(a)
                } else {
                    format!("{}-{}", addr_to_string(a), addr_to_string(b))
                });
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn count(r: &Report, kind: Kind) -> usize {
    r.kinds.iter().filter(|k| **k == kind).count()
}

fn print_text(r: &Report) {
    let line = |label: &str, kind: Kind| {
        let rs = ranges(r, kind);
        println!(
            "{label} ({}): {}",
            count(r, kind),
            if rs.is_empty() {
                "-".to_string()
            } else {
                rs.join(", ")
            }
        );
    };
    println!(
        "subnet {} ({} in {}) cidr {}",
        r.subnet_id, r.vpc_id, r.zone, r.cidr
    );
    println!(
        "all addresses ({}): {}-{}",
        r.cidr.size(),
        addr_to_string(r.cidr.base()),
        addr_to_string(r.cidr.last())
    );
    line("reserved by AWS", Kind::AwsReserved);
    for (id, c, t) in &r.reservations {
        println!("cidr reservation {id}: {c} ({t})");
    }
    line("in cidr reservations, not used", Kind::Reserved);
    line("used", Kind::Used);
    let mut by_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for o in r.owners.values() {
        *by_owner.entry(o).or_default() += 1;
    }
    for (o, n) in by_owner {
        println!("  {o}: {n}");
    }
    line("unused", Kind::Unused);
    let reserved = count(r, Kind::AwsReserved) + count(r, Kind::Reserved);
    println!(
        "cidr={} cidr_ips={} reserved={} used={} unused={}",
        r.cidr,
        r.cidr.size(),
        reserved,
        count(r, Kind::Used),
        count(r, Kind::Unused)
    );
    let blocks: Vec<String> = r.free_28.iter().map(|c| c.to_string()).collect();
    println!(
        "free /28 blocks for prefix delegation: {}{}",
        r.free_28.len(),
        if blocks.is_empty() {
            String::new()
        } else {
            format!(" ({})", blocks.join(", "))
        }
    );
    match r.largest_free {
        Some(c) => println!("largest free block: {c} ({} addresses)", c.size()),
        None => println!("largest free block: none"),
    }
}

fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "subnet_id": r.subnet_id,
        "vpc_id": r.vpc_id,
        "availability_zone": r.zone,
        "cidr": r.cidr.to_string(),
        "cidr_ips": r.cidr.size(),
        "aws_reserved": ranges(r, Kind::AwsReserved),
        "cidr_reservations": r.reservations.iter().map(|(id, c, t)| json!({"id": id, "cidr": c.to_string(), "type": t})).collect::<Vec<_>>(),
        "reserved_unused": ranges(r, Kind::Reserved),
        "used": r.owners.iter().map(|(a, o)| json!({"address": addr_to_string(*a), "network_interface_id": o})).collect::<Vec<_>>(),
        "unused": ranges(r, Kind::Unused),
        "counts": {
            "reserved": count(r, Kind::AwsReserved) + count(r, Kind::Reserved),
            "aws_reserved": count(r, Kind::AwsReserved),
            "in_cidr_reservations": count(r, Kind::Reserved),
            "used": count(r, Kind::Used),
            "unused": count(r, Kind::Unused),
        },
        "free_28_blocks": r.free_28.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "free_28_count": r.free_28.len(),
        "largest_free_block": r.largest_free.map(|c| c.to_string()),
    })
}

pub fn run(args: Args) -> ExitCode {
    let client = match Client::new(&args.client) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kumo describe-unused-ips: {e}");
            return ExitCode::from(255);
        }
    };
    match fetch(&client, &args.subnet_id) {
        Ok(r) => {
            if args.output == "json" {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&to_json(&r)).unwrap_or_default()
                );
            } else {
                print_text(&r);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The AWS CLI's wording and exit status, so scripts treat both alike.
            eprintln!(
                "An error occurred ({}) when calling describe-unused-ips: {}",
                e.code, e.message
            );
            ExitCode::from(255)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_finds_free_blocks() {
        let cidr = Cidr::parse("10.0.0.0/26").unwrap();
        let mut owners = BTreeMap::new();
        for a in [4u32, 5, 20] {
            owners.insert(cidr.base() + a, "eni-1".to_string());
        }
        let res = vec![(
            "scr-1".to_string(),
            Cidr::parse("10.0.0.48/28").unwrap(),
            "explicit".to_string(),
        )];
        let r = analyse("subnet-1", "vpc-1", "z", cidr, owners, res);
        assert_eq!(count(&r, Kind::AwsReserved), 5);
        assert_eq!(count(&r, Kind::Used), 3);
        assert_eq!(count(&r, Kind::Reserved), 15);
        assert_eq!(count(&r, Kind::Unused), 64 - 5 - 3 - 15);
        assert_eq!(
            ranges(&r, Kind::Used),
            vec!["10.0.0.4-10.0.0.5", "10.0.0.20"]
        );
        // /28s: .0 has reserved, .16 has .20 used, .32 is free, .48 is explicitly reserved.
        assert_eq!(r.free_28, vec![Cidr::parse("10.0.0.32/28").unwrap()]);
        assert_eq!(r.largest_free, Cidr::parse("10.0.0.32/28").ok());
    }
}
