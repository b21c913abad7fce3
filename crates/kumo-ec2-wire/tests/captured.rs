//! Request bodies captured from the AWS CLI 1.45 and boto3 1.43 (tests/fixtures), decoded into
//! the generated typed inputs.

use kumo_ec2_wire::decode::{Decode, Path};
use kumo_ec2_wire::query::Node;
use kumo_ec2_wire::shapes::*;

fn decode<T: Decode>(file: &str) -> T {
    let body = std::fs::read(format!(
        "{}/tests/fixtures/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut node = Node::parse(&body).unwrap();
    node.take("Action").unwrap();
    assert_eq!(node.take("Version").as_deref(), Some("2016-11-15"));
    T::decode(&node, &Path::ROOT).unwrap()
}

#[test]
fn cli_create_key_pair() {
    let r: CreateKeyPairRequest = decode("awscli-CreateKeyPair.body");
    assert_eq!(r.key_name, "k");
    assert_eq!(r.key_type.as_deref(), Some("ed25519"));
    assert_eq!(r.key_format.as_deref(), Some("ppk"));
    let spec = &r.tag_specifications.unwrap()[0];
    assert_eq!(spec.resource_type.as_deref(), Some("key-pair"));
    let tag = &spec.tags.as_ref().unwrap()[0];
    assert_eq!(
        (tag.key.as_deref(), tag.value.as_deref()),
        (Some("env"), Some("dev"))
    );
}

#[test]
fn cli_describe_key_pairs() {
    let r: DescribeKeyPairsRequest = decode("awscli-DescribeKeyPairs.body");
    assert_eq!(r.key_names.unwrap(), ["a", "b"]);
    assert_eq!(r.include_public_key, Some(true));
    let f = r.filters.unwrap();
    assert_eq!(f[0].name.as_deref(), Some("key-name"));
    assert_eq!(f[1].name.as_deref(), Some("tag:env"));
    assert_eq!(f[1].values.as_deref().unwrap(), ["dev", "prod"]);
}

#[test]
fn cli_create_tags_with_a_valueless_tag() {
    let r: CreateTagsRequest = decode("awscli-CreateTags.body");
    assert_eq!(r.resources, ["key-0123456789abcdef0"]);
    assert_eq!(r.tags.len(), 2);
    assert_eq!(r.tags[1].key.as_deref(), Some("empty"));
}

#[test]
fn cli_import_key_pair_blob_and_dry_run() {
    let r: ImportKeyPairRequest = decode("awscli-ImportKeyPair.body");
    assert_eq!(r.dry_run, Some(true));
    assert!(r.public_key_material.0.starts_with(b"ssh-ed25519 AAAA"));
}

#[test]
fn cli_describe_instance_types_page_size() {
    let r: DescribeInstanceTypesRequest = decode("awscli-DescribeInstanceTypes.body");
    assert_eq!(r.max_results, Some(5));
    assert_eq!(r.instance_types.unwrap(), ["t3.micro"]);
}

#[test]
fn cli_describe_regions() {
    let r: DescribeRegionsRequest = decode("awscli-DescribeRegions.body");
    assert_eq!(r.all_regions, Some(true));
    assert_eq!(r.region_names.unwrap(), ["eu-west-1"]);
}

#[test]
fn boto3_delete_tags_distinguishes_empty_and_absent_values() {
    let r: DeleteTagsRequest = decode("boto3-DeleteTags.body");
    let tags = r.tags.unwrap();
    assert_eq!(tags[0].value.as_deref(), Some(""));
    assert_eq!(tags[1].value, None);
}

#[test]
fn boto3_describe_tags() {
    let r: DescribeTagsRequest = decode("boto3-DescribeTags.body");
    assert_eq!(
        (r.max_results, r.next_token.as_deref()),
        (Some(5), Some("abc"))
    );
}

#[test]
fn boto3_zones_offerings_and_delete() {
    let z: DescribeAvailabilityZonesRequest = decode("boto3-DescribeAvailabilityZones.body");
    assert_eq!(z.zone_ids.unwrap(), ["euw1-az1"]);
    assert_eq!(z.all_availability_zones, Some(true));
    let o: DescribeInstanceTypeOfferingsRequest =
        decode("boto3-DescribeInstanceTypeOfferings.body");
    assert_eq!(o.location_type.as_deref(), Some("availability-zone"));
    let d: DeleteKeyPairRequest = decode("boto3-DeleteKeyPair.body");
    assert_eq!(d.key_pair_id.as_deref(), Some("key-0123456789abcdef0"));
}
