//! The query decoder must answer every input with a typed request or an AWS error, never a
//! panic. This is a property-based fuzz target: it runs on stable Rust in the normal test run.

use kumo_ec2_wire::query::Node;
use kumo_ec2_wire::{dispatch, Ec2, RequestContext, OPERATIONS};
use proptest::prelude::*;

/// A service that implements nothing: every call stops right after decoding.
struct Nothing;
impl Ec2 for Nothing {}

fn run_all(body: &[u8]) {
    let Ok(params) = Node::parse(body) else {
        return;
    };
    for op in OPERATIONS {
        let mut ctx = RequestContext::default();
        match dispatch(&Nothing, &mut ctx, op, &params) {
            Ok(_) => panic!("{op} succeeded without a service"),
            Err(e) => assert!(e.status() >= 400, "{op}: {e}"),
        }
    }
}

const WORDS: &[&str] = &[
    "KeyName",
    "KeyType",
    "KeyFormat",
    "DryRun",
    "Filter",
    "Name",
    "Value",
    "ResourceId",
    "Tag",
    "Key",
    "TagSpecification",
    "ResourceType",
    "MaxResults",
    "NextToken",
    "RegionName",
    "AllRegions",
    "ZoneName",
    "ZoneId",
    "InstanceType",
    "LocationType",
    "PublicKeyMaterial",
    "KeyPairId",
    "IncludePublicKey",
    "1",
    "2",
    "10",
    "0",
    "-1",
    "",
    "x",
];

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..6).prop_map(|w| w.join("."))
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("5".to_string()),
        Just("2026-11-27T00:00:00Z".to_string()),
        Just("c3NoLXJzYSBBQUFB".to_string()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        run_all(&body);
    }

    #[test]
    fn shaped_parameters_never_panic(pairs in prop::collection::vec((key(), value()), 0..12)) {
        let mut body = String::new();
        for (k, v) in pairs {
            let v: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            body.push_str(&format!("{k}={v}&"));
        }
        run_all(body.as_bytes());
    }
}

#[test]
fn listed_but_unimplemented_is_an_explicit_error() {
    let params = Node::parse(b"").unwrap();
    let mut ctx = RequestContext::default();
    let e = dispatch(&Nothing, &mut ctx, "DescribeRegions", &params).unwrap_err();
    assert_eq!(e.code(), "NotImplemented");
    assert_eq!(e.status(), 400);
    let e = dispatch(&Nothing, &mut ctx, "RunSomethingElse", &params).unwrap_err();
    assert_eq!(e.code(), "InvalidAction");
}
