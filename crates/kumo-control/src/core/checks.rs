//! AWS's order of checks, in one place for every operation.
//!
//! EC2 answers a request's first failing check, and the checks come in this order:
//!
//! 1. **Required members and their combinations** ([`Checks::required`]): the members the
//!    model marks required are the decoder's ("MissingParameter"); an operation adds what the
//!    model cannot say ("size or snapshot", "both or neither", a member sent empty where AWS
//!    takes it as missing).
//! 2. **Value formats and ranges**: first every resource id the request carries
//!    ([`well_formed`], the same rule for every operation: `Invalid<Kind>ID.Malformed`), then
//!    the operation's own ([`Checks::formats`]: CIDRs, ports, sizes, names, enums the model
//!    leaves open, tag keys, page sizes and tokens).
//! 3. **Existence and state**: the lookups, inside the operation's store transaction.
//! 4. **Limits**: counted last, in the same transaction.
//!
//! Phases 1 and 2 need nothing but the request. The generated dispatcher calls
//! [`Ec2::check`](kumo_ec2_wire::Ec2::check), and so [`statics`], after decoding and before
//! anything reads the store (even the account's first-request set-up), so no lookup can answer
//! before a pure check. [`statics`] matches every served operation with no wildcard: an
//! operation added to the served list does not compile until its checks are written down.
//! Phases 3 and 4 stay in the operation, in that order. Each implementation's doc names the
//! operation's checks of every phase. An operation that needs a value a pure check computes
//! (a parsed CIDR, the permissions a request lists) computes it again in its body, where it
//! can no longer fail.

use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, IdKind, Ids, Request};

/// An operation's own pure checks: phases 1 and 2 of the module's order. The defaults check
/// nothing, for an operation whose model-required members and ids are all it has.
pub trait Checks {
    /// Phase 1: required members and combinations the model cannot express.
    fn required(&self) -> Result<(), Ec2Error> {
        Ok(())
    }
    /// Phase 2, after the ids: the operation's value formats and ranges.
    fn formats(&self) -> Result<(), Ec2Error> {
        Ok(())
    }
}

fn run<T: Checks + Ids>(input: &T) -> Result<(), Ec2Error> {
    input.required()?;
    input.ids(&mut |kind, id| well_formed(kind, id))?;
    input.formats()
}

/// Phases 1 and 2 of a request made inside an operation: RunInstances' request once a launch
/// template's data is merged into it is checked as if it had been sent so.
pub fn all<T: Checks + Ids>(input: &T) -> Result<(), Ec2Error> {
    run(input)
}

/// Phases 1 and 2 without the ids' forms, for an operation that answers a malformed id as
/// one failed item of its batch, as AWS does (ModifyInstanceCreditSpecification's
/// `UnsuccessfulInstanceCreditSpecificationSet`).
fn run_itemized<T: Checks>(input: &T) -> Result<(), Ec2Error> {
    input.required()?;
    input.formats()
}

/// Phases 1 and 2 for one request.
pub fn statics(request: Request<'_>) -> Result<(), Ec2Error> {
    match request {
        Request::AcceptVpcPeeringConnection(i) => run(i),
        Request::AllocateAddress(i) => run(i),
        Request::AssignIpv6Addresses(i) => run(i),
        Request::AssignPrivateIpAddresses(i) => run(i),
        Request::AssociateAddress(i) => run(i),
        Request::AssociateDhcpOptions(i) => run(i),
        Request::AssociateRouteTable(i) => run(i),
        Request::AssociateSubnetCidrBlock(i) => run(i),
        Request::AssociateVpcCidrBlock(i) => run(i),
        Request::AttachInternetGateway(i) => run(i),
        Request::AttachNetworkInterface(i) => run(i),
        Request::AttachVolume(i) => run(i),
        Request::AttachVpnGateway(i) => run(i),
        Request::AuthorizeSecurityGroupEgress(i) => run(i),
        Request::AuthorizeSecurityGroupIngress(i) => run(i),
        Request::CancelCapacityReservation(i) => run(i),
        Request::CopyImage(i) => run(i),
        Request::CopySnapshot(i) => run(i),
        Request::CreateCapacityReservation(i) => run(i),
        Request::CreateCustomerGateway(i) => run(i),
        Request::CreateDefaultSubnet(i) => run(i),
        Request::CreateDefaultVpc(i) => run(i),
        Request::CreateDhcpOptions(i) => run(i),
        Request::CreateEgressOnlyInternetGateway(i) => run(i),
        Request::CreateImage(i) => run(i),
        Request::CreateInternetGateway(i) => run(i),
        Request::CreateKeyPair(i) => run(i),
        Request::CreateLaunchTemplate(i) => run(i),
        Request::CreateLaunchTemplateVersion(i) => run(i),
        Request::CreateManagedPrefixList(i) => run(i),
        Request::CreateNatGateway(i) => run(i),
        Request::CreateNetworkAcl(i) => run(i),
        Request::CreateNetworkAclEntry(i) => run(i),
        Request::CreateNetworkInterface(i) => run(i),
        Request::CreatePlacementGroup(i) => run(i),
        Request::CreateRoute(i) => run(i),
        Request::CreateRouteTable(i) => run(i),
        Request::CreateSecurityGroup(i) => run(i),
        Request::CreateSnapshot(i) => run(i),
        Request::CreateSnapshots(i) => run(i),
        Request::CreateSubnet(i) => run(i),
        Request::CreateSubnetCidrReservation(i) => run(i),
        Request::CreateTags(i) => run(i),
        Request::CreateTrafficMirrorFilter(i) => run(i),
        Request::CreateTrafficMirrorFilterRule(i) => run(i),
        Request::CreateTrafficMirrorSession(i) => run(i),
        Request::CreateTrafficMirrorTarget(i) => run(i),
        Request::CreateVolume(i) => run(i),
        Request::CreateVpc(i) => run(i),
        Request::CreateVpcEndpoint(i) => run(i),
        Request::CreateVpcPeeringConnection(i) => run(i),
        Request::CreateVpnConnection(i) => run(i),
        Request::CreateVpnGateway(i) => run(i),
        Request::DeleteCustomerGateway(i) => run(i),
        Request::DeleteDhcpOptions(i) => run(i),
        Request::DeleteEgressOnlyInternetGateway(i) => run(i),
        Request::DeleteInternetGateway(i) => run(i),
        Request::DeleteKeyPair(i) => run(i),
        Request::DeleteLaunchTemplate(i) => run(i),
        Request::DeleteLaunchTemplateVersions(i) => run(i),
        Request::DeleteManagedPrefixList(i) => run(i),
        Request::DeleteNatGateway(i) => run(i),
        Request::DeleteNetworkAcl(i) => run(i),
        Request::DeleteNetworkAclEntry(i) => run(i),
        Request::DeleteNetworkInterface(i) => run(i),
        Request::DeletePlacementGroup(i) => run(i),
        Request::DeleteRoute(i) => run(i),
        Request::DeleteRouteTable(i) => run(i),
        Request::DeleteSecurityGroup(i) => run(i),
        Request::DeleteSnapshot(i) => run(i),
        Request::DeleteSubnet(i) => run(i),
        Request::DeleteSubnetCidrReservation(i) => run(i),
        Request::DeleteTags(i) => run(i),
        Request::DeleteTrafficMirrorFilter(i) => run(i),
        Request::DeleteTrafficMirrorFilterRule(i) => run(i),
        Request::DeleteTrafficMirrorSession(i) => run(i),
        Request::DeleteTrafficMirrorTarget(i) => run(i),
        Request::DeleteVolume(i) => run(i),
        Request::DeleteVpc(i) => run(i),
        Request::DeleteVpcEndpoints(i) => run(i),
        Request::DeleteVpcPeeringConnection(i) => run(i),
        Request::DeleteVpnGateway(i) => run(i),
        Request::DeregisterImage(i) => run(i),
        Request::DescribeAddresses(i) => run(i),
        Request::DescribeAvailabilityZones(i) => run(i),
        Request::DescribeCapacityReservations(i) => run(i),
        Request::DescribeCustomerGateways(i) => run(i),
        Request::DescribeDhcpOptions(i) => run(i),
        Request::DescribeEgressOnlyInternetGateways(i) => run(i),
        Request::DescribeImageAttribute(i) => run(i),
        Request::DescribeImages(i) => run(i),
        Request::DescribeInstanceAttribute(i) => run(i),
        Request::DescribeInstanceCreditSpecifications(i) => run(i),
        Request::DescribeInstanceStatus(i) => run(i),
        Request::DescribeInstanceTypeOfferings(i) => run(i),
        Request::DescribeInstanceTypes(i) => run(i),
        Request::DescribeInstances(i) => run(i),
        Request::DescribeInternetGateways(i) => run(i),
        Request::DescribeKeyPairs(i) => run(i),
        Request::DescribeLaunchTemplateVersions(i) => run(i),
        Request::DescribeLaunchTemplates(i) => run(i),
        Request::DescribeManagedPrefixLists(i) => run(i),
        Request::DescribeNatGateways(i) => run(i),
        Request::DescribeNetworkAcls(i) => run(i),
        Request::DescribeNetworkInterfaceAttribute(i) => run(i),
        Request::DescribeNetworkInterfaces(i) => run(i),
        Request::DescribePlacementGroups(i) => run(i),
        Request::DescribePrefixLists(i) => run(i),
        Request::DescribeRegions(i) => run(i),
        Request::DescribeRouteTables(i) => run(i),
        Request::DescribeSecurityGroupRules(i) => run(i),
        Request::DescribeSecurityGroups(i) => run(i),
        Request::DescribeSnapshotAttribute(i) => run(i),
        Request::DescribeSnapshots(i) => run(i),
        Request::DescribeSubnets(i) => run(i),
        Request::DescribeTags(i) => run(i),
        Request::DescribeTrafficMirrorFilterRules(i) => run(i),
        Request::DescribeTrafficMirrorFilters(i) => run(i),
        Request::DescribeTrafficMirrorSessions(i) => run(i),
        Request::DescribeTrafficMirrorTargets(i) => run(i),
        Request::DescribeVolumeAttribute(i) => run(i),
        Request::DescribeVolumeStatus(i) => run(i),
        Request::DescribeVolumes(i) => run(i),
        Request::DescribeVolumesModifications(i) => run(i),
        Request::DescribeVpcAttribute(i) => run(i),
        Request::DescribeVpcEndpointServices(i) => run(i),
        Request::DescribeVpcEndpoints(i) => run(i),
        Request::DescribeVpcPeeringConnections(i) => run(i),
        Request::DescribeVpcs(i) => run(i),
        Request::DescribeVpnGateways(i) => run(i),
        Request::DetachInternetGateway(i) => run(i),
        Request::DetachNetworkInterface(i) => run(i),
        Request::DetachVolume(i) => run(i),
        Request::DetachVpnGateway(i) => run(i),
        Request::DisableEbsEncryptionByDefault(i) => run(i),
        Request::DisableImageBlockPublicAccess(i) => run(i),
        Request::DisableVgwRoutePropagation(i) => run(i),
        Request::DisassociateAddress(i) => run(i),
        Request::DisassociateRouteTable(i) => run(i),
        Request::DisassociateSubnetCidrBlock(i) => run(i),
        Request::DisassociateVpcCidrBlock(i) => run(i),
        Request::EnableEbsEncryptionByDefault(i) => run(i),
        Request::EnableImageBlockPublicAccess(i) => run(i),
        Request::EnableVgwRoutePropagation(i) => run(i),
        Request::GetConsoleOutput(i) => run(i),
        Request::GetDefaultCreditSpecification(i) => run(i),
        Request::GetEbsDefaultKmsKeyId(i) => run(i),
        Request::GetEbsEncryptionByDefault(i) => run(i),
        Request::GetImageBlockPublicAccessState(i) => run(i),
        Request::GetLaunchTemplateData(i) => run(i),
        Request::GetManagedPrefixListAssociations(i) => run(i),
        Request::GetManagedPrefixListEntries(i) => run(i),
        Request::GetSecurityGroupsForVpc(i) => run(i),
        Request::GetSubnetCidrReservations(i) => run(i),
        Request::ImportKeyPair(i) => run(i),
        Request::ModifyCapacityReservation(i) => run(i),
        Request::ModifyDefaultCreditSpecification(i) => run(i),
        Request::ModifyImageAttribute(i) => run(i),
        Request::ModifyInstanceAttribute(i) => run(i),
        Request::ModifyInstanceCapacityReservationAttributes(i) => run(i),
        Request::ModifyInstanceCreditSpecification(i) => run_itemized(i),
        Request::ModifyInstanceMetadataOptions(i) => run(i),
        Request::ModifyInstancePlacement(i) => run(i),
        Request::ModifyLaunchTemplate(i) => run(i),
        Request::ModifyManagedPrefixList(i) => run(i),
        Request::ModifyNetworkInterfaceAttribute(i) => run(i),
        Request::ModifyPrivateDnsNameOptions(i) => run(i),
        Request::ModifySnapshotAttribute(i) => run(i),
        Request::ModifySubnetAttribute(i) => run(i),
        Request::ModifyTrafficMirrorFilterNetworkServices(i) => run(i),
        Request::ModifyTrafficMirrorFilterRule(i) => run(i),
        Request::ModifyTrafficMirrorSession(i) => run(i),
        Request::ModifyVolume(i) => run(i),
        Request::ModifyVolumeAttribute(i) => run(i),
        Request::ModifyVpcAttribute(i) => run(i),
        Request::ModifyVpcEndpoint(i) => run(i),
        Request::ModifyVpcPeeringConnectionOptions(i) => run(i),
        Request::MonitorInstances(i) => run(i),
        Request::RebootInstances(i) => run(i),
        Request::RegisterImage(i) => run(i),
        Request::RejectVpcPeeringConnection(i) => run(i),
        Request::ReleaseAddress(i) => run(i),
        Request::ReplaceNetworkAclAssociation(i) => run(i),
        Request::ReplaceNetworkAclEntry(i) => run(i),
        Request::ReplaceRoute(i) => run(i),
        Request::ReplaceRouteTableAssociation(i) => run(i),
        Request::ResetImageAttribute(i) => run(i),
        Request::ResetInstanceAttribute(i) => run(i),
        Request::ResetSnapshotAttribute(i) => run(i),
        Request::RestoreManagedPrefixListVersion(i) => run(i),
        Request::RevokeSecurityGroupEgress(i) => run(i),
        Request::RevokeSecurityGroupIngress(i) => run(i),
        Request::RunInstances(i) => run(i),
        Request::StartInstances(i) => run(i),
        Request::StopInstances(i) => run(i),
        Request::TerminateInstances(i) => run(i),
        Request::UnassignIpv6Addresses(i) => run(i),
        Request::UnassignPrivateIpAddresses(i) => run(i),
        Request::UnmonitorInstances(i) => run(i),
    }
}

/// A resource id's form: its prefix, a dash, and 8 or 17 lowercase hex digits, else AWS's
/// `.Malformed` code for the kind, with AWS's message (`Invalid id: "sg-1" (expecting
/// "sg-...")`). An empty id is malformed too, as AWS answers `GroupId=`.
pub fn well_formed(kind: IdKind, id: &str) -> Result<(), Ec2Error> {
    // AssociateDhcpOptions takes `default` for "no DHCP options".
    if kind == IdKind::DefaultingDhcpOptionsId && id == "default" {
        return Ok(());
    }
    let Some((prefix, code)) = form(kind) else {
        return Ok(());
    };
    if kumo_model::ids::has_form(prefix, id) {
        return Ok(());
    }
    Err(Ec2Error::new(
        code,
        format!("Invalid id: \"{id}\" (expecting \"{prefix}-...\")"),
    ))
}

/// The prefix and the `.Malformed` code of each id kind (AWS's EC2 error-code reference), or
/// `None` where the form is not checked here, and why.
fn form(kind: IdKind) -> Option<(&'static str, &'static str)> {
    use IdKind as K;
    Some(match kind {
        K::VpcId => ("vpc", "InvalidVpcID.Malformed"),
        K::SubnetId => ("subnet", "InvalidSubnetID.Malformed"),
        K::SecurityGroupId => ("sg", "InvalidGroupId.Malformed"),
        K::InstanceId | K::InstanceIdForResolver | K::InstanceIdWithVolumeResolver => {
            ("i", "InvalidInstanceID.Malformed")
        }
        K::VolumeId | K::VolumeIdWithResolver => ("vol", "InvalidVolumeID.Malformed"),
        K::SnapshotId => ("snap", "InvalidSnapshotID.Malformed"),
        K::NetworkInterfaceId => ("eni", "InvalidNetworkInterfaceId.Malformed"),
        K::NetworkInterfaceAttachmentId => (
            "eni-attach",
            "InvalidNetworkInterfaceAttachmentId.Malformed",
        ),
        K::InternetGatewayId => ("igw", "InvalidInternetGatewayId.Malformed"),
        K::RouteTableId => ("rtb", "InvalidRouteTableId.Malformed"),
        K::NetworkAclId => ("acl", "InvalidNetworkAclId.Malformed"),
        K::DhcpOptionsId | K::DefaultingDhcpOptionsId => ("dopt", "InvalidDhcpOptionsId.Malformed"),
        K::PrefixListResourceId => ("pl", "InvalidPrefixListId.Malformed"),
        K::NatGatewayId => ("nat", "NatGatewayMalformed"),
        K::KernelId => ("aki", "InvalidKernelId.Malformed"),
        K::RamdiskId => ("ari", "InvalidRamDiskId.Malformed"),
        K::VpcPeeringConnectionId | K::VpcPeeringConnectionIdWithResolver => {
            ("pcx", "InvalidVpcPeeringConnectionId.Malformed")
        }
        K::LaunchTemplateId => ("lt", "InvalidLaunchTemplateId.Malformed"),
        K::VpcEndpointId => ("vpce", "InvalidVpcEndpointId.Malformed"),
        K::PlacementGroupId => ("pg", "InvalidPlacementGroupId.Malformed"),
        K::CapacityReservationId => ("cr", "InvalidCapacityReservationId.Malformed"),
        K::VpnGatewayId => ("vgw", "InvalidVpnGatewayID.Malformed"),
        K::CustomerGatewayId => ("cgw", "InvalidCustomerGatewayId.Malformed"),
        // The catalog decides: moto's ids under --moto-compat (`ami-ekswin`) are not AWS's
        // form, so the image lookup checks the form after the catalog.
        K::ImageId => return None,
        // No `.Malformed` code in AWS's reference: the lookup answers `.NotFound`.
        K::AllocationId
        | K::KeyPairId
        | K::SubnetCidrReservationId
        | K::RouteTableAssociationId
        | K::NetworkAclAssociationId
        // Its `.Malformed` answer has a message of its own: DisassociateSubnetCidrBlock's.
        | K::SubnetCidrAssociationId
        | K::VpcCidrAssociationId
        | K::ElasticIpAssociationId => return None,
        // Not an id of one form: a zone id is checked against the region's zones, a KMS key
        // may be an id, an alias or an ARN, a route's gateway is `igw-…`, `vgw-…` or `local`,
        // CreateTags takes any resource's id and answers `InvalidID` itself.
        K::AvailabilityZoneId
        | K::KmsKeyId
        | K::RouteGatewayId
        | K::SecondarySubnetId
        | K::TaggableResourceId => return None,
        // Resources Kumo does not serve: the operation refuses the member by name.
        K::CarrierGatewayId
        | K::CoipPoolId
        | K::DedicatedHostId
        | K::EgressOnlyInternetGatewayId
        | K::IpamPoolId
        | K::Ipv4PoolEc2Id
        | K::Ipv6PoolEc2Id
        | K::LocalGatewayId
        | K::TransitGatewayId
        | K::TransitGatewayAttachmentId
        | K::VpnConcentratorId => return None,
        // No `.Malformed` code in AWS's reference: the lookup answers `.NotFound`.
        K::TrafficMirrorFilterId
        | K::TrafficMirrorFilterRuleIdWithResolver
        | K::TrafficMirrorSessionId
        | K::TrafficMirrorTargetId => return None,
    })
}

/// Phase 1 of a check written as one function of both pure phases (an operation that reads
/// its request in one pass): only its answers of phase 1 (a member missing, members that go
/// only together or never together); its value errors wait for phase 2, after the ids.
pub fn phase_one(checked: Result<(), Ec2Error>) -> Result<(), Ec2Error> {
    match checked {
        Err(e)
            if matches!(
                e.code(),
                "MissingParameter" | "InvalidParameterCombination" | "InvalidParameterDependency"
            ) =>
        {
            Err(e)
        }
        _ => Ok(()),
    }
}

/// A member the model leaves optional but the operation needs: MissingParameter with AWS's
/// name for it.
pub fn given<T>(member: &Option<T>, name: &str) -> Result<(), Ec2Error> {
    match member {
        Some(_) => Ok(()),
        None => Err(Ec2Error::missing_parameter(name)),
    }
}

/// A KMS key given only with encryption, as CopySnapshot and CopyImage require.
pub fn key_needs_encryption(key: &Option<String>, encrypted: Option<bool>) -> Result<(), Ec2Error> {
    if key.is_some() && encrypted != Some(true) {
        return Err(Ec2Error::new(
            "InvalidParameterDependency",
            "The parameter KmsKeyId requires the parameter Encrypted to be set.",
        ));
    }
    Ok(())
}

/// A Describe's page, for one that looks something up before it pages: the size within the
/// operation's bounds, the token one that Kumo made for the operation.
pub fn page(
    op: &str,
    max_results: Option<i32>,
    token: Option<&str>,
    (min, max): (i32, i32),
) -> Result<(), Ec2Error> {
    super::paging::max_results(max_results, min, max)?;
    super::paging::cursor(op, token).map(drop)
}

/// Ids named together with a page size: AWS takes one or the other.
pub fn ids_or_page(
    ids: Option<&Vec<String>>,
    max_results: Option<i32>,
    member: &str,
) -> Result<(), Ec2Error> {
    if ids.is_some_and(|l| !l.is_empty()) && max_results.is_some() {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            format!("The parameter {member} cannot be used with the parameter maxResults"),
        ));
    }
    Ok(())
}

/// The operations with no pure checks of their own to run here. Beyond the decoder's and the
/// ids', they have none, or they run them first in their body, before any lookup, on values
/// they then use: a Describe's filters and page (`describe::run` checks the page before it
/// reads), the names a Describe of the static catalog takes (regions, zones, instance types).
macro_rules! plain {
    ($($t:ty),* $(,)?) => { $(impl Checks for $t {})* };
}

plain!(
    AttachInternetGatewayRequest,
    CancelCapacityReservationRequest,
    CreateDefaultSubnetRequest,
    CreateDefaultVpcRequest,
    DeleteInternetGatewayRequest,
    DeleteManagedPrefixListRequest,
    DeleteNatGatewayRequest,
    DeleteNetworkInterfaceRequest,
    DeleteRouteTableRequest,
    DeleteSecurityGroupRequest,
    DeleteSnapshotRequest,
    DeleteSubnetCidrReservationRequest,
    DeleteSubnetRequest,
    DeleteVolumeRequest,
    DeleteVpcRequest,
    DeregisterImageRequest,
    DescribeAddressesRequest,
    DescribeAvailabilityZonesRequest,
    DescribeDhcpOptionsRequest,
    DescribeImageAttributeRequest,
    DescribeImagesRequest,
    DescribeInstanceAttributeRequest,
    DescribeInstanceCreditSpecificationsRequest,
    DescribeInstanceTypeOfferingsRequest,
    DescribeInstanceTypesRequest,
    DescribeInternetGatewaysRequest,
    DescribeKeyPairsRequest,
    DescribeManagedPrefixListsRequest,
    DescribeNatGatewaysRequest,
    DescribePlacementGroupsRequest,
    DescribeRegionsRequest,
    DescribeRouteTablesRequest,
    DescribeSecurityGroupRulesRequest,
    DescribeSnapshotAttributeRequest,
    DescribeTagsRequest,
    DescribeVolumeAttributeRequest,
    DescribeVolumeStatusRequest,
    DescribeVolumesModificationsRequest,
    DescribeVolumesRequest,
    DescribeVpcAttributeRequest,
    DescribeVpcsRequest,
    DetachInternetGatewayRequest,
    DetachNetworkInterfaceRequest,
    DetachVolumeRequest,
    DisableEbsEncryptionByDefaultRequest,
    DisableImageBlockPublicAccessRequest,
    DisassociateRouteTableRequest,
    DisassociateVpcCidrBlockRequest,
    EnableEbsEncryptionByDefaultRequest,
    EnableImageBlockPublicAccessRequest,
    GetConsoleOutputRequest,
    GetEbsDefaultKmsKeyIdRequest,
    GetEbsEncryptionByDefaultRequest,
    GetImageBlockPublicAccessStateRequest,
    GetLaunchTemplateDataRequest,
    GetManagedPrefixListAssociationsRequest,
    GetManagedPrefixListEntriesRequest,
    ModifyInstanceCreditSpecificationRequest,
    ModifyPrivateDnsNameOptionsRequest,
    ModifyVolumeRequest,
    MonitorInstancesRequest,
    RebootInstancesRequest,
    ReplaceRouteTableAssociationRequest,
    ResetImageAttributeRequest,
    ResetInstanceAttributeRequest,
    RestoreManagedPrefixListVersionRequest,
    StartInstancesRequest,
    StopInstancesRequest,
    TerminateInstancesRequest,
    UnmonitorInstancesRequest,
);
