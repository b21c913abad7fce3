//! Generates `kumo-ec2-wire/src/generated/` from the pinned AWS EC2 model.
//!
//! Only the operations in `ALLOW` (and the shapes they reach) are generated, which keeps the
//! wire crate small enough to compile quickly on two cores. The output is committed; CI runs
//! `cargo run -p codegen -- --check` and fails when the committed files drift from the model.

mod error;
mod filters;
mod ids;
mod model;
mod rust;

use std::path::PathBuf;
use std::process::ExitCode;

/// The operations Kumo serves. Anything else is answered `InvalidAction`, as AWS answers an
/// action it does not know.
pub const ALLOW: &[&str] = &[
    "AcceptVpcPeeringConnection",
    "AllocateAddress",
    "AssignIpv6Addresses",
    "AssignPrivateIpAddresses",
    "AssociateAddress",
    "AssociateDhcpOptions",
    "AssociateRouteTable",
    "AssociateSubnetCidrBlock",
    "AssociateVpcCidrBlock",
    "AttachInternetGateway",
    "AttachNetworkInterface",
    "AttachVolume",
    "AttachVpnGateway",
    "AuthorizeSecurityGroupEgress",
    "AuthorizeSecurityGroupIngress",
    "CancelCapacityReservation",
    "CopyImage",
    "CopySnapshot",
    "CreateCapacityReservation",
    "CreateCustomerGateway",
    "CreateDefaultSubnet",
    "CreateDefaultVpc",
    "CreateDhcpOptions",
    "CreateEgressOnlyInternetGateway",
    "CreateImage",
    "CreateInternetGateway",
    "CreateKeyPair",
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "CreateManagedPrefixList",
    "CreateNatGateway",
    "CreateNetworkAcl",
    "CreateNetworkAclEntry",
    "CreateNetworkInterface",
    "CreatePlacementGroup",
    "CreateRoute",
    "CreateRouteTable",
    "CreateSecurityGroup",
    "CreateSnapshot",
    "CreateSnapshots",
    "CreateSubnet",
    "CreateSubnetCidrReservation",
    "CreateTags",
    "CreateTrafficMirrorFilter",
    "CreateTrafficMirrorFilterRule",
    "CreateTrafficMirrorSession",
    "CreateTrafficMirrorTarget",
    "CreateVolume",
    "CreateVpc",
    "CreateVpcEndpoint",
    "CreateVpcPeeringConnection",
    "CreateVpnConnection",
    "CreateVpnGateway",
    "DeleteCustomerGateway",
    "DeleteDhcpOptions",
    "DeleteEgressOnlyInternetGateway",
    "DeleteInternetGateway",
    "DeleteKeyPair",
    "DeleteLaunchTemplate",
    "DeleteLaunchTemplateVersions",
    "DeleteManagedPrefixList",
    "DeleteNatGateway",
    "DeleteNetworkAcl",
    "DeleteNetworkAclEntry",
    "DeleteNetworkInterface",
    "DeletePlacementGroup",
    "DeleteRoute",
    "DeleteRouteTable",
    "DeleteSecurityGroup",
    "DeleteSnapshot",
    "DeleteSubnet",
    "DeleteSubnetCidrReservation",
    "DeleteTags",
    "DeleteTrafficMirrorFilter",
    "DeleteTrafficMirrorFilterRule",
    "DeleteTrafficMirrorSession",
    "DeleteTrafficMirrorTarget",
    "DeleteVolume",
    "DeleteVpc",
    "DeleteVpcEndpoints",
    "DeleteVpcPeeringConnection",
    "DeleteVpnGateway",
    "DeregisterImage",
    "DescribeAddresses",
    "DescribeAvailabilityZones",
    "DescribeCapacityReservations",
    "DescribeCustomerGateways",
    "DescribeDhcpOptions",
    "DescribeEgressOnlyInternetGateways",
    "DescribeImageAttribute",
    "DescribeImages",
    "DescribeInstanceAttribute",
    "DescribeInstanceCreditSpecifications",
    "DescribeInstanceStatus",
    "DescribeInstanceTypeOfferings",
    "DescribeInstanceTypes",
    "DescribeInstances",
    "DescribeInternetGateways",
    "DescribeKeyPairs",
    "DescribeLaunchTemplateVersions",
    "DescribeLaunchTemplates",
    "DescribeManagedPrefixLists",
    "DescribeNatGateways",
    "DescribeNetworkAcls",
    "DescribeNetworkInterfaceAttribute",
    "DescribeNetworkInterfaces",
    "DescribePlacementGroups",
    "DescribePrefixLists",
    "DescribeRegions",
    "DescribeRouteTables",
    "DescribeSecurityGroupRules",
    "DescribeSecurityGroups",
    "DescribeSnapshotAttribute",
    "DescribeSnapshots",
    "DescribeSubnets",
    "DescribeTags",
    "DescribeTrafficMirrorFilterRules",
    "DescribeTrafficMirrorFilters",
    "DescribeTrafficMirrorSessions",
    "DescribeTrafficMirrorTargets",
    "DescribeVolumeAttribute",
    "DescribeVolumeStatus",
    "DescribeVolumes",
    "DescribeVolumesModifications",
    "DescribeVpcAttribute",
    "DescribeVpcEndpointServices",
    "DescribeVpcEndpoints",
    "DescribeVpcPeeringConnections",
    "DescribeVpcs",
    "DescribeVpnGateways",
    "DetachInternetGateway",
    "DetachNetworkInterface",
    "DetachVolume",
    "DetachVpnGateway",
    "DisableEbsEncryptionByDefault",
    "DisableImageBlockPublicAccess",
    "DisableVgwRoutePropagation",
    "DisassociateAddress",
    "DisassociateRouteTable",
    "DisassociateSubnetCidrBlock",
    "DisassociateVpcCidrBlock",
    "EnableEbsEncryptionByDefault",
    "EnableImageBlockPublicAccess",
    "EnableVgwRoutePropagation",
    "GetConsoleOutput",
    "GetDefaultCreditSpecification",
    "GetEbsDefaultKmsKeyId",
    "GetEbsEncryptionByDefault",
    "GetImageBlockPublicAccessState",
    "GetLaunchTemplateData",
    "GetManagedPrefixListAssociations",
    "GetManagedPrefixListEntries",
    "GetSecurityGroupsForVpc",
    "GetSubnetCidrReservations",
    "ImportKeyPair",
    "ModifyCapacityReservation",
    "ModifyDefaultCreditSpecification",
    "ModifyImageAttribute",
    "ModifyInstanceAttribute",
    "ModifyInstanceCapacityReservationAttributes",
    "ModifyInstanceCreditSpecification",
    "ModifyInstanceMetadataOptions",
    "ModifyInstancePlacement",
    "ModifyLaunchTemplate",
    "ModifyManagedPrefixList",
    "ModifyNetworkInterfaceAttribute",
    "ModifyPrivateDnsNameOptions",
    "ModifySnapshotAttribute",
    "ModifySubnetAttribute",
    "ModifyTrafficMirrorFilterNetworkServices",
    "ModifyTrafficMirrorFilterRule",
    "ModifyTrafficMirrorSession",
    "ModifyVolume",
    "ModifyVolumeAttribute",
    "ModifyVpcAttribute",
    "ModifyVpcEndpoint",
    "ModifyVpcPeeringConnectionOptions",
    "MonitorInstances",
    "RebootInstances",
    "RegisterImage",
    "RejectVpcPeeringConnection",
    "ReleaseAddress",
    "ReplaceNetworkAclAssociation",
    "ReplaceNetworkAclEntry",
    "ReplaceRoute",
    "ReplaceRouteTableAssociation",
    "ResetImageAttribute",
    "ResetInstanceAttribute",
    "ResetSnapshotAttribute",
    "RestoreManagedPrefixListVersion",
    "RevokeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RunInstances",
    "StartInstances",
    "StopInstances",
    "TerminateInstances",
    "UnassignIpv6Addresses",
    "UnassignPrivateIpAddresses",
    "UnmonitorInstances",
];

/// Output shapes that also get `serde::Deserialize`, so that catalogs stored as AWS-shaped
/// JSON (PascalCase member names) load straight into the wire types.
pub const DESERIALIZE_ROOTS: &[&str] = &["InstanceTypeInfo"];

/// Shapes (and those they reach) that derive `serde::Serialize` and `Deserialize` under the
/// model's member names: a launch template's data is stored as its request's JSON, shown as
/// the response's shape and merged into a RunInstances request, and the model gives the
/// three the same member names.
pub const SERDE_ROOTS: &[&str] = &[
    "RequestLaunchTemplateData",
    "ResponseLaunchTemplateData",
    "RunInstancesRequest",
];

/// Enums whose values the decoder does not check, because the domain answers a more specific
/// AWS error for an unknown value (`InvalidInstanceType`), or the catalog may know values the
/// pinned model does not.
pub const OPEN_ENUMS: &[&str] = &["InstanceType"];

/// Filter names AWS accepts besides the one its reference lists, which clients send:
/// (operation, name, the documented name it stands for). Ansible's `ec2_vpc_net` sends
/// `cidr-block` and `isDefault`, Terraform's default subnet `availabilityZone`, and the
/// camel-case forms are the ones older SDK examples use.
pub const FILTER_ALIASES: &[(&str, &str, &str)] = &[
    ("DescribeVpcs", "cidr-block", "cidr"),
    ("DescribeVpcs", "cidrBlock", "cidr"),
    ("DescribeVpcs", "isDefault", "is-default"),
    ("DescribeSubnets", "cidr", "cidr-block"),
    ("DescribeSubnets", "cidrBlock", "cidr-block"),
    ("DescribeSubnets", "availabilityZone", "availability-zone"),
    (
        "DescribeSubnets",
        "availabilityZoneId",
        "availability-zone-id",
    ),
    ("DescribeSubnets", "defaultForAz", "default-for-az"),
    ("DescribeInstances", "ami-launch-index", "launch-index"),
    ("DescribeInstances", "group-id", "instance.group-id"),
    ("DescribeInstances", "group-name", "instance.group-name"),
    (
        "DescribeNetworkInterfaces",
        "ipv4-prefix",
        "ipv4-prefix.ipv4-prefix",
    ),
];

/// Filter names the EC2 API reference lists but the pinned model's documentation leaves out:
/// (operation, name).
pub const FILTER_EXTRA: &[(&str, &str)] = &[
    ("DescribeAddresses", "domain"),
    ("DescribeKeyPairs", "key-type"),
    ("DescribeNetworkInterfaces", "group-name"),
    ("DescribeNetworkInterfaces", "ipv4-prefix.ipv4-prefix"),
    ("DescribeVolumesModifications", "original-throughput"),
    ("DescribeVolumesModifications", "target-throughput"),
];

/// Operations whose reference leaves out the tag filters (`tag:<key>`, `tag-key`,
/// `tag-value`) that AWS answers for them: Terraform's `aws_ec2_managed_prefix_lists` data
/// source filters prefix lists by tag.
pub const FILTER_TAGS: &[&str] = &["DescribeManagedPrefixLists"];

/// Members that hold a resource id but that the model types as a plain `String` (or a list of
/// them): (structure, member, the id shape they hold). The id rule then checks their form as
/// it checks every `VpcId`-typed member.
pub const ID_MEMBERS: &[(&str, &str, &str)] = &[
    ("UserIdGroupPair", "GroupId", "SecurityGroupId"),
    ("UserIdGroupPair", "VpcId", "VpcId"),
    ("PrefixListId", "PrefixListId", "PrefixListResourceId"),
    (
        "InstanceNetworkInterfaceSpecification",
        "SubnetId",
        "SubnetId",
    ),
    ("CopySnapshotRequest", "SourceSnapshotId", "SnapshotId"),
    (
        "DescribeManagedPrefixListsRequest",
        "PrefixListIds",
        "PrefixListResourceId",
    ),
];

const MODEL: &str = "model/ec2-2016-11-15.service-2.json.gz";
const OUT: &str = "../kumo-ec2-wire/src/generated";

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model = match model::Model::load(&root.join(MODEL)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("codegen: cannot read the model: {e}");
            return ExitCode::FAILURE;
        }
    };
    let files = match rust::generate(&model, ALLOW, DESERIALIZE_ROOTS, SERDE_ROOTS, OPEN_ENUMS)
        .and_then(|mut files| {
            let f = filters::generate(&model, ALLOW, FILTER_ALIASES, FILTER_EXTRA, FILTER_TAGS)?;
            files.insert("filters.rs".to_string(), rust::rustfmt(&f)?);
            files.insert(
                "ids.rs".to_string(),
                rust::rustfmt(&ids::generate(&model, ALLOW, ID_MEMBERS)?)?,
            );
            Ok(files)
        }) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("codegen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let out = root.join(OUT);
    let mut drift = Vec::new();
    for (name, text) in &files {
        let path = out.join(name);
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        if old == *text {
            continue;
        }
        if check {
            drift.push(name.clone());
        } else if let Err(e) =
            std::fs::create_dir_all(&out).and_then(|_| std::fs::write(&path, text))
        {
            eprintln!("codegen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if !drift.is_empty() {
        eprintln!(
            "codegen: generated files differ from the model: {} (run `cargo run -p codegen`)",
            drift.join(", ")
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
