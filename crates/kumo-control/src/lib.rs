//! EC2's semantics: one module per resource family, each implementing its part of the
//! generated [`Ec2`] trait. No HTTP and no XML here: typed requests in, typed results or
//! [`Ec2Error`]s out.

/// The address VPC endpoints' connections reach the API from: the API refuses them its
/// operator paths.
pub use kumo_compute::services::endpoints::SOURCE as ENDPOINT_SOURCE;
mod addresses;
mod admin;
mod ami_sharing;
mod amis;
pub mod background;
mod capacity_reservations;
mod console;
mod core;
mod credits;
mod dhcp_options;
mod egress_only_gateways;
mod enis;
mod firewall_sync;
mod flows;
mod gateways;
mod host;
mod images;
mod instance_actions;
mod instance_types;
mod instances;
mod ipv6_addresses;
mod key_pairs;
mod keygen;
mod launch_templates;
mod launch_volumes;
pub mod metrics;
mod nat;
mod network;
mod network_acls;
mod placement_groups;
mod prefix_lists;
mod records;
mod regions;
mod repo;
mod routes;
mod security_groups;
mod sharing;
mod snapshot_sharing;
mod snapshots;
mod subnets;
mod tags;
mod traffic_mirroring;
mod volumes;
mod vpc_endpoints;
mod vpc_peering;
mod vpcs;
mod vpn_gateways;

use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2, Ec2Error, RequestContext};
use kumo_store::{Scope, Store};

pub use crate::core::error::Fail;
/// Installs the data directory's key for tamper-evident pagination tokens.
pub use crate::core::paging::install_key as install_paging_key;
use firewall_sync::Reach;
pub use flows::session::{
    DescribeQuery as SessionQuery, Opened as OpenedSession, SessionView,
    StartRequest as StartSessionRequest,
};
pub use flows::ssm::ListQuery as SsmListQuery;
pub use host::{Compute, ImageGate, Invocation, SentCommand};

/// The control plane. One per process; shared by every request.
pub struct Kumo {
    store: Store,
    /// Volume files.
    blocks: kumo_blockstore::BlockStore,
    net: network::NetState,
    options: Options,
    /// How far the test clock has been moved forward, in milliseconds.
    clock_offset: std::sync::atomic::AtomicI64,
    /// Where instances really run; `None` is the null driver.
    compute: Compute,
    /// The VPCs whose firewall a change touched, for the worker that re-renders them.
    firewall: firewall_sync::FirewallSync,
    /// Session Manager sessions started in this process.
    sessions: flows::session::Sessions,
}

/// How the control plane behaves where AWS leaves room: timing and capacity.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long each transitional instance state lasts (pending, stopping, shutting-down)
    /// with a driver that does not report its own progress. 0: done before the next call.
    pub transition_ms: i64,
    /// How long status checks stay `initializing` once an instance runs.
    pub status_ms: i64,
    /// How many instances each availability zone holds; beyond it launches answer
    /// `InsufficientInstanceCapacity`.
    pub zone_capacity: usize,
    /// Whether `kumo admin advance-clock` may move this server's clock forward (tests).
    pub test_clock: bool,
    /// Why instances run nowhere, when the server fell back to the null driver: said in each
    /// running instance's state reason.
    pub null_reason: Option<String>,
    /// `kumo serve --moto-compat`: moto's public AMI catalog, with moto's ids, in every
    /// region.
    pub moto_compat: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            transition_ms: 0,
            status_ms: 0,
            zone_capacity: 10_000,
            test_clock: false,
            null_reason: None,
            moto_compat: false,
        }
    }
}

impl Kumo {
    pub fn new(store: Store, blocks: kumo_blockstore::BlockStore) -> Kumo {
        Kumo::with_options(store, blocks, Options::default())
    }

    pub fn with_options(
        store: Store,
        blocks: kumo_blockstore::BlockStore,
        options: Options,
    ) -> Kumo {
        Kumo {
            store,
            blocks,
            net: network::NetState::default(),
            options,
            clock_offset: std::sync::atomic::AtomicI64::new(0),
            compute: Compute::null(),
            firewall: firewall_sync::FirewallSync::default(),
            sessions: Default::default(),
        }
    }

    /// Runs instances on a real driver instead of the null one.
    pub fn with_compute(mut self, compute: Compute) -> Kumo {
        self.compute = compute;
        self
    }

    /// Serves the VPCs' interface endpoints: their connections go to Kumo's API at
    /// `upstream` once their TLS is ended.
    pub fn serve_endpoints(&self, upstream: std::net::SocketAddr) {
        self.compute.driver.serve_endpoints(upstream);
    }

    /// The compute driver's name.
    pub fn driver_name(&self) -> &'static str {
        self.compute.driver.name()
    }

    /// Acts on a guest that stopped on its own (see [`kumo_compute::Driver::events`]).
    pub fn guest_event(&self, ev: kumo_compute::GuestEvent) {
        flows::guest_events::guest_event(self, ev);
    }

    /// The launches whose guests are to boot, once: the server boots them on a thread.
    pub fn boot_queue(&self) -> Option<std::sync::mpsc::Receiver<(String, String, Vec<String>)>> {
        flows::boot::boot_queue(self)
    }

    /// Boots a queued launch's instances.
    pub fn boot_launched(&self, account: &str, region: &str, ids: &[String]) {
        flows::boot::boot_launched(self, account, region, ids);
    }

    /// The driver's stream of guests that stopped on their own, once.
    pub fn guest_events(&self) -> Option<std::sync::mpsc::Receiver<kumo_compute::GuestEvent>> {
        self.compute.driver.events()
    }

    /// SSM SendCommand (AWS-RunShellScript) to instances' agents.
    pub fn ssm_send_command(
        &self,
        account: &str,
        region: &str,
        document: &str,
        instance_ids: Vec<String>,
        commands: Vec<String>,
        comment: String,
    ) -> Result<crate::host::SentCommand, flows::ssm::SsmError> {
        flows::ssm::send_command(
            self,
            account,
            region,
            document,
            instance_ids,
            commands,
            comment,
        )
    }

    /// SSM StartSession: a shell in an instance, through its agent; the data channel is at
    /// `base` (`ws://host:port`).
    pub fn ssm_start_session(
        &self,
        account: &str,
        region: &str,
        req: &flows::session::StartRequest,
    ) -> Result<flows::session::Opened, flows::ssm::SsmError> {
        flows::session::start(self, account, region, req)
    }

    /// SSM ResumeSession.
    pub fn ssm_resume_session(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<flows::session::Opened, flows::ssm::SsmError> {
        flows::session::resume(self, account, region, id)
    }

    /// SSM TerminateSession.
    pub fn ssm_terminate_session(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<String, flows::ssm::SsmError> {
        flows::session::terminate(self, account, region, id)
    }

    /// SSM DescribeSessions.
    pub fn ssm_describe_sessions(
        &self,
        account: &str,
        region: &str,
        q: &flows::session::DescribeQuery,
    ) -> Result<(Vec<flows::session::SessionView>, Option<String>), flows::ssm::SsmError> {
        flows::session::describe(self, account, region, q)
    }

    /// A session's data channel opens with its token: the guest's shell is asked for.
    pub fn ssm_session_connect(
        &self,
        id: &str,
        token: &str,
        rows: u16,
        cols: u16,
        close: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) -> Result<kumo_compute::services::imds::SessionWait, flows::ssm::SsmError> {
        flows::session::connect(self, id, token, rows, cols, close)
    }

    /// A session's client resized its terminal.
    pub fn ssm_session_resize(&self, id: &str, rows: u16, cols: u16) {
        flows::session::resize(self, id, rows, cols)
    }

    /// A session's data channel closed; the session ends as `status`.
    pub fn ssm_session_closed(&self, id: &str, status: &str) {
        flows::session::closed(self, id, status)
    }

    /// SSM DescribeInstanceInformation: the instances whose agent is online.
    pub fn ssm_instance_information(
        &self,
        account: &str,
        region: &str,
    ) -> Vec<flows::ssm::AgentInfo> {
        flows::ssm::instance_information(self, account, region)
    }

    /// SSM GetCommandInvocation.
    pub fn ssm_command_invocation(
        &self,
        account: &str,
        region: &str,
        command_id: &str,
        instance: &str,
    ) -> Result<crate::host::Invocation, flows::ssm::SsmError> {
        flows::ssm::command_invocation(self, account, region, command_id, instance)
    }

    /// SSM ListCommands.
    pub fn ssm_list_commands(
        &self,
        account: &str,
        region: &str,
        q: &flows::ssm::ListQuery,
    ) -> Result<(Vec<crate::host::SentCommand>, Option<String>), flows::ssm::SsmError> {
        flows::ssm::list_commands(self, account, region, q)
    }

    /// SSM ListCommandInvocations.
    pub fn ssm_list_invocations(
        &self,
        account: &str,
        region: &str,
        q: &flows::ssm::ListQuery,
    ) -> Result<(Vec<crate::host::Invocation>, Option<String>), flows::ssm::SsmError> {
        flows::ssm::list_invocations(self, account, region, q)
    }

    /// One round of the scheduled events of the instances the driver runs (the guests of the
    /// completed ones are stopped or rebooted), and of the Run Commands whose runs ended
    /// (their output is stored).
    pub fn events_tick(&self) {
        flows::events::events_tick(self);
        flows::ssm::collect(self);
    }

    /// One round of the CPU credit ledgers of the instances the driver runs.
    pub fn credits_tick(&self) {
        flows::credits::credits_tick(self);
    }

    /// One round of the metrics sampler: the running guests whose minute closed.
    pub fn metrics_tick(&self) {
        flows::metrics::metrics_tick(self);
    }

    /// Boots again the instances that were running when the server last stopped.
    pub fn recover(&self) {
        // The peering links first: each is made as soon as its second VPC's namespace is.
        vpc_peering::push_links(self);
        flows::boot::recover(self);
    }

    /// Stops every instance the driver runs (server shutdown).
    pub fn shutdown(&self) {
        self.compute.driver.shutdown_all();
    }

    /// After a change to one security group's rules: its VPC's firewall and its instances'
    /// metadata follow, and no other VPC is re-rendered.
    fn sync_group(&self, ctx: &RequestContext, id: Option<&str>, name: Option<&str>) {
        if !self.compute.driver.runs_guests() {
            return;
        }
        let reach = match security_groups::vpc_of(&self.store, ctx, id, name) {
            Some(vpc) => Reach::Vpcs([vpc].into()),
            None => Reach::Scope,
        };
        self.sync_firewall(ctx, reach);
    }

    /// A route or a route table's association changed: where the scope has an active VPC
    /// peering connection, its firewalls follow (what a subnet's routes send through a
    /// peering link is let into it). Route changes are rare, so the whole scope is rendered.
    fn routes_changed(&self, ctx: &RequestContext) {
        if ctx.dry_run || !self.compute.driver.runs_guests() {
            return;
        }
        let s = scope(ctx);
        let peered = self.store.read(|v| {
            let all: Vec<records::net::VpcPeeringRecord> =
                kumo_store::Read::list(v, s, &kumo_store::Query::default())?;
            Ok::<_, core::error::Fail>(all.iter().any(|p| p.status == "active"))
        });
        if peered.unwrap_or(true) {
            self.sync_firewall(ctx, Reach::Scope);
        }
    }

    /// A change reached these VPCs' firewalls (and their instances' metadata): they are
    /// re-rendered, by the worker when one runs ([`Kumo::firewall_worker`]), before this
    /// returns.
    pub(crate) fn sync_firewall(&self, ctx: &RequestContext, reach: Reach) {
        if !self.compute.driver.runs_guests() || matches!(&reach, Reach::Vpcs(v) if v.is_empty()) {
            return;
        }
        // Groups may admit the members of a peered VPC's groups: the VPCs actively peered
        // with the ones changed follow too, each in its own account and region.
        let s = scope(ctx);
        let peerings: Vec<records::net::VpcPeeringRecord> = self
            .store
            .read(|v| {
                Ok::<_, core::error::Fail>(kumo_store::Read::list(
                    v,
                    s,
                    &kumo_store::Query::default(),
                )?)
            })
            .unwrap_or_default();
        let mut reach = reach;
        let mut elsewhere: std::collections::BTreeMap<
            (String, String),
            std::collections::BTreeSet<String>,
        > = Default::default();
        for p in peerings.iter().filter(|p| p.status == "active") {
            for (near, far) in [(&p.requester, &p.accepter), (&p.accepter, &p.requester)] {
                let here = near.account == ctx.account_id && near.region == ctx.region;
                let touched = match &reach {
                    Reach::Scope => true,
                    Reach::Vpcs(v) => v.contains(&near.vpc_id),
                };
                if !(here && touched) {
                    continue;
                }
                if far.account == ctx.account_id && far.region == ctx.region {
                    if let Reach::Vpcs(v) = &mut reach {
                        v.insert(far.vpc_id.clone());
                    }
                } else {
                    elsewhere
                        .entry((far.account.clone(), far.region.clone()))
                        .or_default()
                        .insert(far.vpc_id.clone());
                }
            }
        }
        self.sync_firewall_only(ctx, reach);
        for ((account_id, region), vpcs) in elsewhere {
            let far = RequestContext {
                account_id,
                region,
                ..RequestContext::default()
            };
            self.sync_firewall_only(&far, Reach::Vpcs(vpcs));
        }
    }

    /// [`Kumo::sync_firewall`] for these VPCs alone.
    fn sync_firewall_only(&self, ctx: &RequestContext, reach: Reach) {
        let scope = (ctx.account_id.clone(), ctx.region.clone());
        match self.firewall.mark(scope, reach.clone()) {
            Some(ticket) => {
                if !self
                    .firewall
                    .wait(ticket, std::time::Duration::from_secs(30))
                {
                    tracing::warn!(account = %ctx.account_id, region = %ctx.region, "the firewall worker is behind: answering before the change reached the firewall");
                }
            }
            None => host::firewall::refresh(self, ctx, reach.only().as_deref()),
        }
    }

    /// The firewall worker: re-renders the VPCs that changes marked, merging the marks that
    /// arrive while it renders. Runs until the process ends.
    pub fn firewall_worker(&self) {
        self.firewall.worker_started();
        loop {
            let round = self.firewall.take();
            for ((account, region), reach) in &round.work {
                let ctx = RequestContext {
                    account_id: account.clone(),
                    region: region.clone(),
                    ..RequestContext::default()
                };
                host::firewall::refresh(self, &ctx, reach.only().as_deref());
            }
            self.firewall.done(round.upto);
        }
    }

    /// Now, in milliseconds since the epoch: the clock that drives time-based transitions.
    pub fn now_ms(&self) -> i64 {
        kumo_ec2_wire::DateTime::now().0
            + self.clock_offset.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `kumo admin credits`: an instance's CPU credit ledger.
    pub fn admin_credits(
        &self,
        account: &str,
        region: &str,
        instance: &str,
    ) -> Result<serde_json::Value, Ec2Error> {
        credits::ledger(self, account, region, instance)
    }

    /// `kumo admin schedule-event`.
    pub fn admin_schedule_event(
        &self,
        account: &str,
        region: &str,
        instance: &str,
        code: &str,
        in_secs: i64,
    ) -> Result<serde_json::Value, Ec2Error> {
        admin::schedule_event(self, account, region, instance, code, in_secs)
    }

    /// `kumo admin guest-shutdown`: the guest powers itself off.
    pub fn admin_guest_shutdown(
        &self,
        account: &str,
        region: &str,
        instance: &str,
    ) -> Result<serde_json::Value, Ec2Error> {
        flows::guest_events::guest_shutdown(self, account, region, instance)
    }

    /// `kumo ssh`: how the host reaches a running instance.
    pub fn admin_reach(
        &self,
        account: &str,
        region: &str,
        instance: &str,
    ) -> Result<serde_json::Value, Ec2Error> {
        admin::reach(self, account, region, instance)
    }

    /// `kumo admin advance-clock`.
    pub fn admin_advance_clock(&self, secs: i64) -> Result<serde_json::Value, Ec2Error> {
        admin::advance_clock(self, secs)
    }

    /// The image id an SSM public parameter names in `region`, if any.
    pub fn ssm_parameter(&self, region: &str, name: &str) -> Option<(String, String)> {
        images::ssm_parameter(region, name)
    }

    /// Deletes all state of every account (`POST /_kumo/reset`).
    pub fn reset(&self) -> Result<(), Ec2Error> {
        self.sessions.close_all();
        self.shutdown();
        self.store.reset().map_err(|e| Fail::from(e).0)?;
        // A guest that rebooted itself may have been booting again meanwhile (the guest-event
        // thread): with the store empty nothing boots any more, so a second sweep leaves no
        // guest writing into the files about to go.
        self.shutdown();
        self.net.clear();
        if let Err(e) = self.blocks.clear() {
            tracing::error!(error = %e, "cannot delete volume files at reset");
            return Err(Ec2Error::internal());
        }
        Ok(())
    }

    /// Loads the lazily parsed catalogs now, so the first request does not pay for them.
    pub fn warm_up() {
        instance_types::catalog();
    }
}

fn scope(ctx: &RequestContext) -> Scope<'_> {
    Scope {
        account: &ctx.account_id,
        region: &ctx.region,
    }
}

impl Ec2 for Kumo {
    /// Every account has its default VPC in every region from its first request on, as on
    /// AWS: made here, once per request, not by each operation.
    fn prepare(&self, ctx: &RequestContext) -> Result<(), Ec2Error> {
        self.net.ensure_default(&self.store, ctx)
    }

    /// AWS's checks that need only the request, before anything is looked up
    /// ([`core::checks`]).
    fn check(
        &self,
        _ctx: &RequestContext,
        request: kumo_ec2_wire::Request<'_>,
    ) -> Result<(), Ec2Error> {
        core::checks::statics(request)
    }

    fn describe_regions(
        &self,
        ctx: &RequestContext,
        input: DescribeRegionsRequest,
    ) -> Result<DescribeRegionsResult, Ec2Error> {
        regions::describe_regions(ctx, input)
    }

    fn describe_availability_zones(
        &self,
        ctx: &RequestContext,
        input: DescribeAvailabilityZonesRequest,
    ) -> Result<DescribeAvailabilityZonesResult, Ec2Error> {
        regions::describe_availability_zones(ctx, input)
    }

    fn describe_instance_types(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceTypesRequest,
    ) -> Result<DescribeInstanceTypesResult, Ec2Error> {
        instance_types::describe_instance_types(ctx, input)
    }

    fn describe_instance_type_offerings(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceTypeOfferingsRequest,
    ) -> Result<DescribeInstanceTypeOfferingsResult, Ec2Error> {
        instance_types::describe_offerings(ctx, input)
    }

    fn create_key_pair(
        &self,
        ctx: &RequestContext,
        input: CreateKeyPairRequest,
    ) -> Result<KeyPair, Ec2Error> {
        key_pairs::create(&self.store, ctx, input)
    }

    fn import_key_pair(
        &self,
        ctx: &RequestContext,
        input: ImportKeyPairRequest,
    ) -> Result<ImportKeyPairResult, Ec2Error> {
        key_pairs::import(&self.store, ctx, input)
    }

    fn describe_key_pairs(
        &self,
        ctx: &RequestContext,
        input: DescribeKeyPairsRequest,
    ) -> Result<DescribeKeyPairsResult, Ec2Error> {
        key_pairs::describe(&self.store, ctx, input)
    }

    fn delete_key_pair(
        &self,
        ctx: &RequestContext,
        input: DeleteKeyPairRequest,
    ) -> Result<DeleteKeyPairResult, Ec2Error> {
        key_pairs::delete(&self.store, ctx, input)
    }

    fn create_tags(&self, ctx: &RequestContext, input: CreateTagsRequest) -> Result<(), Ec2Error> {
        tags::create_tags(&self.store, ctx, input)
    }

    fn delete_tags(&self, ctx: &RequestContext, input: DeleteTagsRequest) -> Result<(), Ec2Error> {
        tags::delete_tags(&self.store, ctx, input)
    }

    fn describe_tags(
        &self,
        ctx: &RequestContext,
        input: DescribeTagsRequest,
    ) -> Result<DescribeTagsResult, Ec2Error> {
        tags::describe_tags(&self.store, ctx, input)
    }

    fn create_vpc(
        &self,
        ctx: &RequestContext,
        input: CreateVpcRequest,
    ) -> Result<CreateVpcResult, Ec2Error> {
        vpcs::create_vpc(&self.store, ctx, input)
    }

    fn delete_vpc(&self, ctx: &RequestContext, input: DeleteVpcRequest) -> Result<(), Ec2Error> {
        vpcs::delete_vpc(&self.store, ctx, input, self.now_ms())
    }

    fn describe_vpcs(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcsRequest,
    ) -> Result<DescribeVpcsResult, Ec2Error> {
        vpcs::describe_vpcs(&self.store, ctx, input)
    }

    fn modify_vpc_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifyVpcAttributeRequest,
    ) -> Result<(), Ec2Error> {
        vpcs::modify_vpc_attribute(&self.store, ctx, input)
    }

    fn describe_vpc_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcAttributeRequest,
    ) -> Result<DescribeVpcAttributeResult, Ec2Error> {
        vpcs::describe_vpc_attribute(&self.store, ctx, input)
    }

    fn associate_vpc_cidr_block(
        &self,
        ctx: &RequestContext,
        input: AssociateVpcCidrBlockRequest,
    ) -> Result<AssociateVpcCidrBlockResult, Ec2Error> {
        let out = vpcs::associate_vpc_cidr_block(&self.store, ctx, input)?;
        if let Some(vpc) = &out.vpc_id {
            vpc_peering::blocks_changed(self, ctx, vpc);
        }
        Ok(out)
    }

    fn disassociate_vpc_cidr_block(
        &self,
        ctx: &RequestContext,
        input: DisassociateVpcCidrBlockRequest,
    ) -> Result<DisassociateVpcCidrBlockResult, Ec2Error> {
        let out = vpcs::disassociate_vpc_cidr_block(&self.store, ctx, input)?;
        if let Some(vpc) = &out.vpc_id {
            vpc_peering::blocks_changed(self, ctx, vpc);
        }
        Ok(out)
    }

    fn create_subnet(
        &self,
        ctx: &RequestContext,
        input: CreateSubnetRequest,
    ) -> Result<CreateSubnetResult, Ec2Error> {
        subnets::create_subnet(&self.store, ctx, input)
    }

    fn create_default_subnet(
        &self,
        ctx: &RequestContext,
        input: CreateDefaultSubnetRequest,
    ) -> Result<CreateDefaultSubnetResult, Ec2Error> {
        subnets::create_default_subnet(&self.store, ctx, input)
    }

    fn delete_subnet(
        &self,
        ctx: &RequestContext,
        input: DeleteSubnetRequest,
    ) -> Result<(), Ec2Error> {
        subnets::delete_subnet(&self.store, &self.net, ctx, input)
    }

    fn describe_subnets(
        &self,
        ctx: &RequestContext,
        input: DescribeSubnetsRequest,
    ) -> Result<DescribeSubnetsResult, Ec2Error> {
        subnets::describe_subnets(&self.store, ctx, input)
    }

    fn modify_subnet_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifySubnetAttributeRequest,
    ) -> Result<(), Ec2Error> {
        subnets::modify_subnet_attribute(&self.store, ctx, input)
    }

    fn create_subnet_cidr_reservation(
        &self,
        ctx: &RequestContext,
        input: CreateSubnetCidrReservationRequest,
    ) -> Result<CreateSubnetCidrReservationResult, Ec2Error> {
        subnets::create_reservation(&self.store, &self.net, ctx, input)
    }

    fn get_subnet_cidr_reservations(
        &self,
        ctx: &RequestContext,
        input: GetSubnetCidrReservationsRequest,
    ) -> Result<GetSubnetCidrReservationsResult, Ec2Error> {
        subnets::get_reservations(&self.store, ctx, input)
    }

    fn delete_subnet_cidr_reservation(
        &self,
        ctx: &RequestContext,
        input: DeleteSubnetCidrReservationRequest,
    ) -> Result<DeleteSubnetCidrReservationResult, Ec2Error> {
        subnets::delete_reservation(&self.store, &self.net, ctx, input)
    }

    fn create_network_interface(
        &self,
        ctx: &RequestContext,
        input: CreateNetworkInterfaceRequest,
    ) -> Result<CreateNetworkInterfaceResult, Ec2Error> {
        enis::create(&self.store, &self.net, ctx, input)
    }

    fn delete_network_interface(
        &self,
        ctx: &RequestContext,
        input: DeleteNetworkInterfaceRequest,
    ) -> Result<(), Ec2Error> {
        enis::delete(&self.store, &self.net, ctx, input)
    }

    fn describe_network_interfaces(
        &self,
        ctx: &RequestContext,
        input: DescribeNetworkInterfacesRequest,
    ) -> Result<DescribeNetworkInterfacesResult, Ec2Error> {
        enis::describe(&self.store, ctx, input)
    }

    fn assign_ipv6_addresses(
        &self,
        ctx: &RequestContext,
        input: AssignIpv6AddressesRequest,
    ) -> Result<AssignIpv6AddressesResult, Ec2Error> {
        let eni = input.network_interface_id.clone();
        let out = ipv6_addresses::assign(&self.store, ctx, input)?;
        if !ctx.dry_run {
            // The running guest's metadata, routes and rules follow at once.
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        Ok(out)
    }

    fn unassign_ipv6_addresses(
        &self,
        ctx: &RequestContext,
        input: UnassignIpv6AddressesRequest,
    ) -> Result<UnassignIpv6AddressesResult, Ec2Error> {
        let eni = input.network_interface_id.clone();
        let out = ipv6_addresses::unassign(&self.store, ctx, input)?;
        if !ctx.dry_run {
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        Ok(out)
    }

    fn assign_private_ip_addresses(
        &self,
        ctx: &RequestContext,
        input: AssignPrivateIpAddressesRequest,
    ) -> Result<AssignPrivateIpAddressesResult, Ec2Error> {
        let eni = input.network_interface_id.clone();
        let out = enis::assign(&self.store, &self.net, ctx, input)?;
        if !ctx.dry_run {
            // The running guest's metadata, routes and rules follow at once.
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        Ok(out)
    }

    fn unassign_private_ip_addresses(
        &self,
        ctx: &RequestContext,
        input: UnassignPrivateIpAddressesRequest,
    ) -> Result<(), Ec2Error> {
        let eni = input.network_interface_id.clone();
        enis::unassign(&self.store, &self.net, ctx, input)?;
        if !ctx.dry_run {
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        Ok(())
    }

    fn modify_network_interface_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifyNetworkInterfaceAttributeRequest,
    ) -> Result<(), Ec2Error> {
        let eni = input.network_interface_id.clone();
        let out = enis::modify_attribute(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        out
    }

    fn describe_network_interface_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeNetworkInterfaceAttributeRequest,
    ) -> Result<DescribeNetworkInterfaceAttributeResult, Ec2Error> {
        enis::describe_attribute(&self.store, ctx, input)
    }

    fn create_security_group(
        &self,
        ctx: &RequestContext,
        input: CreateSecurityGroupRequest,
    ) -> Result<CreateSecurityGroupResult, Ec2Error> {
        security_groups::create(&self.store, ctx, input)
    }

    fn delete_security_group(
        &self,
        ctx: &RequestContext,
        input: DeleteSecurityGroupRequest,
    ) -> Result<DeleteSecurityGroupResult, Ec2Error> {
        security_groups::delete(&self.store, ctx, input)
    }

    fn describe_security_groups(
        &self,
        ctx: &RequestContext,
        input: DescribeSecurityGroupsRequest,
    ) -> Result<DescribeSecurityGroupsResult, Ec2Error> {
        security_groups::describe_groups(&self.store, ctx, input)
    }

    fn describe_security_group_rules(
        &self,
        ctx: &RequestContext,
        input: DescribeSecurityGroupRulesRequest,
    ) -> Result<DescribeSecurityGroupRulesResult, Ec2Error> {
        security_groups::describe_rules(&self.store, ctx, input)
    }

    fn authorize_security_group_ingress(
        &self,
        ctx: &RequestContext,
        input: AuthorizeSecurityGroupIngressRequest,
    ) -> Result<AuthorizeSecurityGroupIngressResult, Ec2Error> {
        let (id, name) = (input.group_id.clone(), input.group_name.clone());
        let out = security_groups::authorize_ingress(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_group(ctx, id.as_deref(), name.as_deref());
        }
        out
    }

    fn authorize_security_group_egress(
        &self,
        ctx: &RequestContext,
        input: AuthorizeSecurityGroupEgressRequest,
    ) -> Result<AuthorizeSecurityGroupEgressResult, Ec2Error> {
        let (id, name) = (Some(input.group_id.clone()), None::<String>);
        let out = security_groups::authorize_egress(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_group(ctx, id.as_deref(), name.as_deref());
        }
        out
    }

    fn revoke_security_group_ingress(
        &self,
        ctx: &RequestContext,
        input: RevokeSecurityGroupIngressRequest,
    ) -> Result<RevokeSecurityGroupIngressResult, Ec2Error> {
        let (id, name) = (input.group_id.clone(), input.group_name.clone());
        let out = security_groups::revoke_ingress(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_group(ctx, id.as_deref(), name.as_deref());
        }
        out
    }

    fn revoke_security_group_egress(
        &self,
        ctx: &RequestContext,
        input: RevokeSecurityGroupEgressRequest,
    ) -> Result<RevokeSecurityGroupEgressResult, Ec2Error> {
        let (id, name) = (Some(input.group_id.clone()), None::<String>);
        let out = security_groups::revoke_egress(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_group(ctx, id.as_deref(), name.as_deref());
        }
        out
    }

    fn create_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: CreateInternetGatewayRequest,
    ) -> Result<CreateInternetGatewayResult, Ec2Error> {
        gateways::create_igw(&self.store, ctx, input)
    }

    fn delete_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: DeleteInternetGatewayRequest,
    ) -> Result<(), Ec2Error> {
        gateways::delete_igw(&self.store, ctx, input)
    }

    fn attach_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: AttachInternetGatewayRequest,
    ) -> Result<(), Ec2Error> {
        gateways::attach_igw(&self.store, ctx, input)
    }

    fn detach_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: DetachInternetGatewayRequest,
    ) -> Result<(), Ec2Error> {
        gateways::detach_igw(&self.store, ctx, input)
    }

    fn describe_internet_gateways(
        &self,
        ctx: &RequestContext,
        input: DescribeInternetGatewaysRequest,
    ) -> Result<DescribeInternetGatewaysResult, Ec2Error> {
        gateways::describe_igws(&self.store, ctx, input)
    }

    fn describe_route_tables(
        &self,
        ctx: &RequestContext,
        input: DescribeRouteTablesRequest,
    ) -> Result<DescribeRouteTablesResult, Ec2Error> {
        gateways::describe_route_tables(&self.store, ctx, input)
    }

    fn describe_network_acls(
        &self,
        ctx: &RequestContext,
        input: DescribeNetworkAclsRequest,
    ) -> Result<DescribeNetworkAclsResult, Ec2Error> {
        gateways::describe_network_acls(&self.store, ctx, input)
    }

    fn get_security_groups_for_vpc(
        &self,
        ctx: &RequestContext,
        input: GetSecurityGroupsForVpcRequest,
    ) -> Result<GetSecurityGroupsForVpcResult, Ec2Error> {
        security_groups::groups_for_vpc(&self.store, ctx, input)
    }

    fn create_egress_only_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: CreateEgressOnlyInternetGatewayRequest,
    ) -> Result<CreateEgressOnlyInternetGatewayResult, Ec2Error> {
        egress_only_gateways::create(self, ctx, input)
    }

    fn delete_egress_only_internet_gateway(
        &self,
        ctx: &RequestContext,
        input: DeleteEgressOnlyInternetGatewayRequest,
    ) -> Result<DeleteEgressOnlyInternetGatewayResult, Ec2Error> {
        egress_only_gateways::delete(self, ctx, input)
    }

    fn describe_egress_only_internet_gateways(
        &self,
        ctx: &RequestContext,
        input: DescribeEgressOnlyInternetGatewaysRequest,
    ) -> Result<DescribeEgressOnlyInternetGatewaysResult, Ec2Error> {
        egress_only_gateways::describe(self, ctx, input)
    }

    fn create_vpc_endpoint(
        &self,
        ctx: &RequestContext,
        input: CreateVpcEndpointRequest,
    ) -> Result<CreateVpcEndpointResult, Ec2Error> {
        vpc_endpoints::create(self, ctx, input)
    }

    fn modify_vpc_endpoint(
        &self,
        ctx: &RequestContext,
        input: ModifyVpcEndpointRequest,
    ) -> Result<ModifyVpcEndpointResult, Ec2Error> {
        vpc_endpoints::modify(self, ctx, input)
    }

    fn delete_vpc_endpoints(
        &self,
        ctx: &RequestContext,
        input: DeleteVpcEndpointsRequest,
    ) -> Result<DeleteVpcEndpointsResult, Ec2Error> {
        vpc_endpoints::delete(self, ctx, input)
    }

    fn describe_vpc_endpoints(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcEndpointsRequest,
    ) -> Result<DescribeVpcEndpointsResult, Ec2Error> {
        vpc_endpoints::describe(self, ctx, input)
    }

    fn describe_vpc_endpoint_services(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcEndpointServicesRequest,
    ) -> Result<DescribeVpcEndpointServicesResult, Ec2Error> {
        vpc_endpoints::describe_services(ctx, input)
    }

    fn describe_prefix_lists(
        &self,
        ctx: &RequestContext,
        input: DescribePrefixListsRequest,
    ) -> Result<DescribePrefixListsResult, Ec2Error> {
        vpc_endpoints::describe_prefix_lists(ctx, input)
    }

    fn create_traffic_mirror_target(
        &self,
        ctx: &RequestContext,
        input: CreateTrafficMirrorTargetRequest,
    ) -> Result<CreateTrafficMirrorTargetResult, Ec2Error> {
        traffic_mirroring::create_target(self, ctx, input)
    }

    fn delete_traffic_mirror_target(
        &self,
        ctx: &RequestContext,
        input: DeleteTrafficMirrorTargetRequest,
    ) -> Result<DeleteTrafficMirrorTargetResult, Ec2Error> {
        traffic_mirroring::delete_target(self, ctx, input)
    }

    fn describe_traffic_mirror_targets(
        &self,
        ctx: &RequestContext,
        input: DescribeTrafficMirrorTargetsRequest,
    ) -> Result<DescribeTrafficMirrorTargetsResult, Ec2Error> {
        traffic_mirroring::describe_targets(self, ctx, input)
    }

    fn create_traffic_mirror_filter(
        &self,
        ctx: &RequestContext,
        input: CreateTrafficMirrorFilterRequest,
    ) -> Result<CreateTrafficMirrorFilterResult, Ec2Error> {
        traffic_mirroring::create_filter(self, ctx, input)
    }

    fn delete_traffic_mirror_filter(
        &self,
        ctx: &RequestContext,
        input: DeleteTrafficMirrorFilterRequest,
    ) -> Result<DeleteTrafficMirrorFilterResult, Ec2Error> {
        traffic_mirroring::delete_filter(self, ctx, input)
    }

    fn describe_traffic_mirror_filters(
        &self,
        ctx: &RequestContext,
        input: DescribeTrafficMirrorFiltersRequest,
    ) -> Result<DescribeTrafficMirrorFiltersResult, Ec2Error> {
        traffic_mirroring::describe_filters(self, ctx, input)
    }

    fn modify_traffic_mirror_filter_network_services(
        &self,
        ctx: &RequestContext,
        input: ModifyTrafficMirrorFilterNetworkServicesRequest,
    ) -> Result<ModifyTrafficMirrorFilterNetworkServicesResult, Ec2Error> {
        traffic_mirroring::modify_network_services(self, ctx, input)
    }

    fn create_traffic_mirror_filter_rule(
        &self,
        ctx: &RequestContext,
        input: CreateTrafficMirrorFilterRuleRequest,
    ) -> Result<CreateTrafficMirrorFilterRuleResult, Ec2Error> {
        traffic_mirroring::create_rule(self, ctx, input)
    }

    fn modify_traffic_mirror_filter_rule(
        &self,
        ctx: &RequestContext,
        input: ModifyTrafficMirrorFilterRuleRequest,
    ) -> Result<ModifyTrafficMirrorFilterRuleResult, Ec2Error> {
        traffic_mirroring::modify_rule(self, ctx, input)
    }

    fn delete_traffic_mirror_filter_rule(
        &self,
        ctx: &RequestContext,
        input: DeleteTrafficMirrorFilterRuleRequest,
    ) -> Result<DeleteTrafficMirrorFilterRuleResult, Ec2Error> {
        traffic_mirroring::delete_rule(self, ctx, input)
    }

    fn describe_traffic_mirror_filter_rules(
        &self,
        ctx: &RequestContext,
        input: DescribeTrafficMirrorFilterRulesRequest,
    ) -> Result<DescribeTrafficMirrorFilterRulesResult, Ec2Error> {
        traffic_mirroring::describe_rules(self, ctx, input)
    }

    fn create_traffic_mirror_session(
        &self,
        ctx: &RequestContext,
        input: CreateTrafficMirrorSessionRequest,
    ) -> Result<CreateTrafficMirrorSessionResult, Ec2Error> {
        traffic_mirroring::create_session(self, ctx, input)
    }

    fn modify_traffic_mirror_session(
        &self,
        ctx: &RequestContext,
        input: ModifyTrafficMirrorSessionRequest,
    ) -> Result<ModifyTrafficMirrorSessionResult, Ec2Error> {
        traffic_mirroring::modify_session(self, ctx, input)
    }

    fn delete_traffic_mirror_session(
        &self,
        ctx: &RequestContext,
        input: DeleteTrafficMirrorSessionRequest,
    ) -> Result<DeleteTrafficMirrorSessionResult, Ec2Error> {
        traffic_mirroring::delete_session(self, ctx, input)
    }

    fn describe_traffic_mirror_sessions(
        &self,
        ctx: &RequestContext,
        input: DescribeTrafficMirrorSessionsRequest,
    ) -> Result<DescribeTrafficMirrorSessionsResult, Ec2Error> {
        traffic_mirroring::describe_sessions(self, ctx, input)
    }

    fn create_vpn_gateway(
        &self,
        ctx: &RequestContext,
        input: CreateVpnGatewayRequest,
    ) -> Result<CreateVpnGatewayResult, Ec2Error> {
        vpn_gateways::create_vgw(self, ctx, input)
    }

    fn attach_vpn_gateway(
        &self,
        ctx: &RequestContext,
        input: AttachVpnGatewayRequest,
    ) -> Result<AttachVpnGatewayResult, Ec2Error> {
        vpn_gateways::attach_vgw(self, ctx, input)
    }

    fn detach_vpn_gateway(
        &self,
        ctx: &RequestContext,
        input: DetachVpnGatewayRequest,
    ) -> Result<(), Ec2Error> {
        vpn_gateways::detach_vgw(self, ctx, input)
    }

    fn delete_vpn_gateway(
        &self,
        ctx: &RequestContext,
        input: DeleteVpnGatewayRequest,
    ) -> Result<(), Ec2Error> {
        vpn_gateways::delete_vgw(self, ctx, input)
    }

    fn describe_vpn_gateways(
        &self,
        ctx: &RequestContext,
        input: DescribeVpnGatewaysRequest,
    ) -> Result<DescribeVpnGatewaysResult, Ec2Error> {
        vpn_gateways::describe_vgws(self, ctx, input)
    }

    fn create_customer_gateway(
        &self,
        ctx: &RequestContext,
        input: CreateCustomerGatewayRequest,
    ) -> Result<CreateCustomerGatewayResult, Ec2Error> {
        vpn_gateways::create_cgw(self, ctx, input)
    }

    fn delete_customer_gateway(
        &self,
        ctx: &RequestContext,
        input: DeleteCustomerGatewayRequest,
    ) -> Result<(), Ec2Error> {
        vpn_gateways::delete_cgw(self, ctx, input)
    }

    fn describe_customer_gateways(
        &self,
        ctx: &RequestContext,
        input: DescribeCustomerGatewaysRequest,
    ) -> Result<DescribeCustomerGatewaysResult, Ec2Error> {
        vpn_gateways::describe_cgws(self, ctx, input)
    }

    fn enable_vgw_route_propagation(
        &self,
        ctx: &RequestContext,
        input: EnableVgwRoutePropagationRequest,
    ) -> Result<(), Ec2Error> {
        vpn_gateways::propagation(self, ctx, &input.gateway_id, &input.route_table_id, true)
    }

    fn disable_vgw_route_propagation(
        &self,
        ctx: &RequestContext,
        input: DisableVgwRoutePropagationRequest,
    ) -> Result<(), Ec2Error> {
        vpn_gateways::propagation(self, ctx, &input.gateway_id, &input.route_table_id, false)
    }

    fn create_vpn_connection(
        &self,
        ctx: &RequestContext,
        input: CreateVpnConnectionRequest,
    ) -> Result<CreateVpnConnectionResult, Ec2Error> {
        vpn_gateways::create_connection(self, ctx, input)
    }

    fn create_vpc_peering_connection(
        &self,
        ctx: &RequestContext,
        input: CreateVpcPeeringConnectionRequest,
    ) -> Result<CreateVpcPeeringConnectionResult, Ec2Error> {
        vpc_peering::create(self, ctx, input)
    }

    fn accept_vpc_peering_connection(
        &self,
        ctx: &RequestContext,
        input: AcceptVpcPeeringConnectionRequest,
    ) -> Result<AcceptVpcPeeringConnectionResult, Ec2Error> {
        vpc_peering::accept(self, ctx, input)
    }

    fn reject_vpc_peering_connection(
        &self,
        ctx: &RequestContext,
        input: RejectVpcPeeringConnectionRequest,
    ) -> Result<RejectVpcPeeringConnectionResult, Ec2Error> {
        vpc_peering::reject(self, ctx, input)
    }

    fn delete_vpc_peering_connection(
        &self,
        ctx: &RequestContext,
        input: DeleteVpcPeeringConnectionRequest,
    ) -> Result<DeleteVpcPeeringConnectionResult, Ec2Error> {
        vpc_peering::delete(self, ctx, input)
    }

    fn describe_vpc_peering_connections(
        &self,
        ctx: &RequestContext,
        input: DescribeVpcPeeringConnectionsRequest,
    ) -> Result<DescribeVpcPeeringConnectionsResult, Ec2Error> {
        vpc_peering::describe(self, ctx, input)
    }

    fn modify_vpc_peering_connection_options(
        &self,
        ctx: &RequestContext,
        input: ModifyVpcPeeringConnectionOptionsRequest,
    ) -> Result<ModifyVpcPeeringConnectionOptionsResult, Ec2Error> {
        vpc_peering::modify_options(self, ctx, input)
    }

    fn associate_subnet_cidr_block(
        &self,
        ctx: &RequestContext,
        input: AssociateSubnetCidrBlockRequest,
    ) -> Result<AssociateSubnetCidrBlockResult, Ec2Error> {
        subnets::associate_cidr_block(&self.store, ctx, input)
    }

    fn disassociate_subnet_cidr_block(
        &self,
        ctx: &RequestContext,
        input: DisassociateSubnetCidrBlockRequest,
    ) -> Result<DisassociateSubnetCidrBlockResult, Ec2Error> {
        subnets::disassociate_cidr_block(&self.store, ctx, input)
    }

    fn create_network_acl(
        &self,
        ctx: &RequestContext,
        input: CreateNetworkAclRequest,
    ) -> Result<CreateNetworkAclResult, Ec2Error> {
        network_acls::create(self, ctx, input)
    }

    fn delete_network_acl(
        &self,
        ctx: &RequestContext,
        input: DeleteNetworkAclRequest,
    ) -> Result<(), Ec2Error> {
        network_acls::delete(self, ctx, input)
    }

    fn create_network_acl_entry(
        &self,
        ctx: &RequestContext,
        input: CreateNetworkAclEntryRequest,
    ) -> Result<(), Ec2Error> {
        network_acls::create_entry(self, ctx, input)
    }

    fn replace_network_acl_entry(
        &self,
        ctx: &RequestContext,
        input: ReplaceNetworkAclEntryRequest,
    ) -> Result<(), Ec2Error> {
        network_acls::replace_entry(self, ctx, input)
    }

    fn delete_network_acl_entry(
        &self,
        ctx: &RequestContext,
        input: DeleteNetworkAclEntryRequest,
    ) -> Result<(), Ec2Error> {
        network_acls::delete_entry(self, ctx, input)
    }

    fn replace_network_acl_association(
        &self,
        ctx: &RequestContext,
        input: ReplaceNetworkAclAssociationRequest,
    ) -> Result<ReplaceNetworkAclAssociationResult, Ec2Error> {
        network_acls::replace_association(self, ctx, input)
    }

    fn create_dhcp_options(
        &self,
        ctx: &RequestContext,
        input: CreateDhcpOptionsRequest,
    ) -> Result<CreateDhcpOptionsResult, Ec2Error> {
        dhcp_options::create(self, ctx, input)
    }

    fn associate_dhcp_options(
        &self,
        ctx: &RequestContext,
        input: AssociateDhcpOptionsRequest,
    ) -> Result<(), Ec2Error> {
        dhcp_options::associate(self, ctx, input)
    }

    fn delete_dhcp_options(
        &self,
        ctx: &RequestContext,
        input: DeleteDhcpOptionsRequest,
    ) -> Result<(), Ec2Error> {
        dhcp_options::delete(self, ctx, input)
    }

    fn describe_dhcp_options(
        &self,
        ctx: &RequestContext,
        input: DescribeDhcpOptionsRequest,
    ) -> Result<DescribeDhcpOptionsResult, Ec2Error> {
        gateways::describe_dhcp_options(&self.store, ctx, input)
    }

    fn create_default_vpc(
        &self,
        ctx: &RequestContext,
        input: CreateDefaultVpcRequest,
    ) -> Result<CreateDefaultVpcResult, Ec2Error> {
        let _ = input;
        vpcs::create_default_vpc(&self.store, ctx)
    }

    fn create_route_table(
        &self,
        ctx: &RequestContext,
        input: CreateRouteTableRequest,
    ) -> Result<CreateRouteTableResult, Ec2Error> {
        routes::create_route_table(&self.store, ctx, input)
    }

    fn delete_route_table(
        &self,
        ctx: &RequestContext,
        input: DeleteRouteTableRequest,
    ) -> Result<(), Ec2Error> {
        routes::delete_route_table(&self.store, ctx, input)
    }

    fn create_route(
        &self,
        ctx: &RequestContext,
        input: CreateRouteRequest,
    ) -> Result<CreateRouteResult, Ec2Error> {
        let out = routes::create_route(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(out)
    }

    fn replace_route(
        &self,
        ctx: &RequestContext,
        input: ReplaceRouteRequest,
    ) -> Result<(), Ec2Error> {
        routes::replace_route(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(())
    }

    fn delete_route(
        &self,
        ctx: &RequestContext,
        input: DeleteRouteRequest,
    ) -> Result<(), Ec2Error> {
        routes::delete_route(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(())
    }

    fn associate_route_table(
        &self,
        ctx: &RequestContext,
        input: AssociateRouteTableRequest,
    ) -> Result<AssociateRouteTableResult, Ec2Error> {
        let out = routes::associate(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(out)
    }

    fn disassociate_route_table(
        &self,
        ctx: &RequestContext,
        input: DisassociateRouteTableRequest,
    ) -> Result<(), Ec2Error> {
        routes::disassociate(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(())
    }

    fn replace_route_table_association(
        &self,
        ctx: &RequestContext,
        input: ReplaceRouteTableAssociationRequest,
    ) -> Result<ReplaceRouteTableAssociationResult, Ec2Error> {
        let out = routes::replace_association(&self.store, ctx, input)?;
        self.routes_changed(ctx);
        Ok(out)
    }

    fn allocate_address(
        &self,
        ctx: &RequestContext,
        input: AllocateAddressRequest,
    ) -> Result<AllocateAddressResult, Ec2Error> {
        addresses::allocate(&self.store, ctx, input)
    }

    fn associate_address(
        &self,
        ctx: &RequestContext,
        input: AssociateAddressRequest,
    ) -> Result<AssociateAddressResult, Ec2Error> {
        let out = addresses::associate(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            // An Elastic IP may move between VPCs: every VPC of the scope may change.
            self.sync_firewall(ctx, Reach::Scope);
        }
        out
    }

    fn disassociate_address(
        &self,
        ctx: &RequestContext,
        input: DisassociateAddressRequest,
    ) -> Result<(), Ec2Error> {
        let out = addresses::disassociate(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            // An Elastic IP may move between VPCs: every VPC of the scope may change.
            self.sync_firewall(ctx, Reach::Scope);
        }
        out
    }

    fn release_address(
        &self,
        ctx: &RequestContext,
        input: ReleaseAddressRequest,
    ) -> Result<(), Ec2Error> {
        let out = addresses::release(&self.store, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            // An Elastic IP may move between VPCs: every VPC of the scope may change.
            self.sync_firewall(ctx, Reach::Scope);
        }
        out
    }

    fn describe_addresses(
        &self,
        ctx: &RequestContext,
        input: DescribeAddressesRequest,
    ) -> Result<DescribeAddressesResult, Ec2Error> {
        addresses::describe(&self.store, ctx, input)
    }

    fn create_nat_gateway(
        &self,
        ctx: &RequestContext,
        input: CreateNatGatewayRequest,
    ) -> Result<CreateNatGatewayResult, Ec2Error> {
        nat::create(&self.store, &self.net, ctx, input)
    }

    fn delete_nat_gateway(
        &self,
        ctx: &RequestContext,
        input: DeleteNatGatewayRequest,
    ) -> Result<DeleteNatGatewayResult, Ec2Error> {
        nat::delete(&self.store, &self.net, ctx, input)
    }

    fn create_managed_prefix_list(
        &self,
        ctx: &RequestContext,
        input: CreateManagedPrefixListRequest,
    ) -> Result<CreateManagedPrefixListResult, Ec2Error> {
        prefix_lists::create(self, ctx, input)
    }

    fn describe_managed_prefix_lists(
        &self,
        ctx: &RequestContext,
        input: DescribeManagedPrefixListsRequest,
    ) -> Result<DescribeManagedPrefixListsResult, Ec2Error> {
        prefix_lists::describe(self, ctx, input)
    }

    fn get_managed_prefix_list_entries(
        &self,
        ctx: &RequestContext,
        input: GetManagedPrefixListEntriesRequest,
    ) -> Result<GetManagedPrefixListEntriesResult, Ec2Error> {
        prefix_lists::entries(self, ctx, input)
    }

    fn get_managed_prefix_list_associations(
        &self,
        ctx: &RequestContext,
        input: GetManagedPrefixListAssociationsRequest,
    ) -> Result<GetManagedPrefixListAssociationsResult, Ec2Error> {
        prefix_lists::associations(self, ctx, input)
    }

    fn modify_managed_prefix_list(
        &self,
        ctx: &RequestContext,
        input: ModifyManagedPrefixListRequest,
    ) -> Result<ModifyManagedPrefixListResult, Ec2Error> {
        let id = input.prefix_list_id.clone();
        let out = prefix_lists::modify(self, ctx, input)?;
        if out.entries_changed && !ctx.dry_run {
            let vpcs = prefix_lists::vpcs_referencing(self, ctx, &id);
            self.sync_firewall(ctx, Reach::Vpcs(vpcs));
        }
        Ok(ModifyManagedPrefixListResult {
            prefix_list: Some(out.answer),
        })
    }

    fn restore_managed_prefix_list_version(
        &self,
        ctx: &RequestContext,
        input: RestoreManagedPrefixListVersionRequest,
    ) -> Result<RestoreManagedPrefixListVersionResult, Ec2Error> {
        let id = input.prefix_list_id.clone();
        let out = prefix_lists::restore(self, ctx, input)?;
        if !ctx.dry_run {
            let vpcs = prefix_lists::vpcs_referencing(self, ctx, &id);
            self.sync_firewall(ctx, Reach::Vpcs(vpcs));
        }
        Ok(RestoreManagedPrefixListVersionResult {
            prefix_list: Some(out),
        })
    }

    fn delete_managed_prefix_list(
        &self,
        ctx: &RequestContext,
        input: DeleteManagedPrefixListRequest,
    ) -> Result<DeleteManagedPrefixListResult, Ec2Error> {
        prefix_lists::delete(self, ctx, input)
    }

    fn describe_nat_gateways(
        &self,
        ctx: &RequestContext,
        input: DescribeNatGatewaysRequest,
    ) -> Result<DescribeNatGatewaysResult, Ec2Error> {
        nat::describe(&self.store, ctx, input)
    }

    fn create_launch_template(
        &self,
        ctx: &RequestContext,
        input: CreateLaunchTemplateRequest,
    ) -> Result<CreateLaunchTemplateResult, Ec2Error> {
        launch_templates::create(self, ctx, input)
    }

    fn create_launch_template_version(
        &self,
        ctx: &RequestContext,
        input: CreateLaunchTemplateVersionRequest,
    ) -> Result<CreateLaunchTemplateVersionResult, Ec2Error> {
        launch_templates::create_version(self, ctx, input)
    }

    fn describe_launch_templates(
        &self,
        ctx: &RequestContext,
        input: DescribeLaunchTemplatesRequest,
    ) -> Result<DescribeLaunchTemplatesResult, Ec2Error> {
        launch_templates::describe(self, ctx, input)
    }

    fn describe_launch_template_versions(
        &self,
        ctx: &RequestContext,
        input: DescribeLaunchTemplateVersionsRequest,
    ) -> Result<DescribeLaunchTemplateVersionsResult, Ec2Error> {
        launch_templates::describe_versions(self, ctx, input)
    }

    fn modify_launch_template(
        &self,
        ctx: &RequestContext,
        input: ModifyLaunchTemplateRequest,
    ) -> Result<ModifyLaunchTemplateResult, Ec2Error> {
        launch_templates::modify(self, ctx, input)
    }

    fn delete_launch_template(
        &self,
        ctx: &RequestContext,
        input: DeleteLaunchTemplateRequest,
    ) -> Result<DeleteLaunchTemplateResult, Ec2Error> {
        launch_templates::delete(self, ctx, input)
    }

    fn delete_launch_template_versions(
        &self,
        ctx: &RequestContext,
        input: DeleteLaunchTemplateVersionsRequest,
    ) -> Result<DeleteLaunchTemplateVersionsResult, Ec2Error> {
        launch_templates::delete_versions(self, ctx, input)
    }

    fn get_launch_template_data(
        &self,
        ctx: &RequestContext,
        input: GetLaunchTemplateDataRequest,
    ) -> Result<GetLaunchTemplateDataResult, Ec2Error> {
        launch_templates::get_data(self, ctx, input)
    }

    fn create_placement_group(
        &self,
        ctx: &RequestContext,
        input: CreatePlacementGroupRequest,
    ) -> Result<CreatePlacementGroupResult, Ec2Error> {
        placement_groups::create(self, ctx, input)
    }

    fn describe_placement_groups(
        &self,
        ctx: &RequestContext,
        input: DescribePlacementGroupsRequest,
    ) -> Result<DescribePlacementGroupsResult, Ec2Error> {
        placement_groups::describe(self, ctx, input)
    }

    fn delete_placement_group(
        &self,
        ctx: &RequestContext,
        input: DeletePlacementGroupRequest,
    ) -> Result<(), Ec2Error> {
        placement_groups::delete(self, ctx, input)
    }

    fn modify_instance_placement(
        &self,
        ctx: &RequestContext,
        input: ModifyInstancePlacementRequest,
    ) -> Result<ModifyInstancePlacementResult, Ec2Error> {
        placement_groups::modify_instance(self, ctx, input)
    }

    fn create_capacity_reservation(
        &self,
        ctx: &RequestContext,
        input: CreateCapacityReservationRequest,
    ) -> Result<CreateCapacityReservationResult, Ec2Error> {
        capacity_reservations::create(self, ctx, input)
    }

    fn describe_capacity_reservations(
        &self,
        ctx: &RequestContext,
        input: DescribeCapacityReservationsRequest,
    ) -> Result<DescribeCapacityReservationsResult, Ec2Error> {
        capacity_reservations::describe(self, ctx, input)
    }

    fn modify_capacity_reservation(
        &self,
        ctx: &RequestContext,
        input: ModifyCapacityReservationRequest,
    ) -> Result<ModifyCapacityReservationResult, Ec2Error> {
        capacity_reservations::modify(self, ctx, input)
    }

    fn cancel_capacity_reservation(
        &self,
        ctx: &RequestContext,
        input: CancelCapacityReservationRequest,
    ) -> Result<CancelCapacityReservationResult, Ec2Error> {
        capacity_reservations::cancel(self, ctx, input)
    }

    fn modify_instance_capacity_reservation_attributes(
        &self,
        ctx: &RequestContext,
        input: ModifyInstanceCapacityReservationAttributesRequest,
    ) -> Result<ModifyInstanceCapacityReservationAttributesResult, Ec2Error> {
        capacity_reservations::modify_instance(self, ctx, input)
    }

    fn monitor_instances(
        &self,
        ctx: &RequestContext,
        input: MonitorInstancesRequest,
    ) -> Result<MonitorInstancesResult, Ec2Error> {
        Ok(MonitorInstancesResult {
            instance_monitorings: Some(instance_actions::set_monitoring(
                self,
                ctx,
                &input.instance_ids,
                true,
            )?),
        })
    }

    fn unmonitor_instances(
        &self,
        ctx: &RequestContext,
        input: UnmonitorInstancesRequest,
    ) -> Result<UnmonitorInstancesResult, Ec2Error> {
        Ok(UnmonitorInstancesResult {
            instance_monitorings: Some(instance_actions::set_monitoring(
                self,
                ctx,
                &input.instance_ids,
                false,
            )?),
        })
    }

    fn run_instances(
        &self,
        ctx: &RequestContext,
        input: RunInstancesRequest,
    ) -> Result<Reservation, Ec2Error> {
        instances::run(self, ctx, input)
    }

    fn describe_instances(
        &self,
        ctx: &RequestContext,
        input: DescribeInstancesRequest,
    ) -> Result<DescribeInstancesResult, Ec2Error> {
        instances::describe(self, ctx, input)
    }

    fn start_instances(
        &self,
        ctx: &RequestContext,
        input: StartInstancesRequest,
    ) -> Result<StartInstancesResult, Ec2Error> {
        instance_actions::start(self, ctx, input)
    }

    fn stop_instances(
        &self,
        ctx: &RequestContext,
        input: StopInstancesRequest,
    ) -> Result<StopInstancesResult, Ec2Error> {
        instance_actions::stop(self, ctx, input)
    }

    fn reboot_instances(
        &self,
        ctx: &RequestContext,
        input: RebootInstancesRequest,
    ) -> Result<(), Ec2Error> {
        instance_actions::reboot(self, ctx, input)
    }

    fn terminate_instances(
        &self,
        ctx: &RequestContext,
        input: TerminateInstancesRequest,
    ) -> Result<TerminateInstancesResult, Ec2Error> {
        instance_actions::terminate(self, ctx, input)
    }

    fn describe_instance_status(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceStatusRequest,
    ) -> Result<DescribeInstanceStatusResult, Ec2Error> {
        instance_actions::describe_status(self, ctx, input)
    }

    fn modify_instance_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifyInstanceAttributeRequest,
    ) -> Result<(), Ec2Error> {
        let id = input.instance_id.clone();
        let out = instance_actions::modify_attribute(self, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_firewall(ctx, firewall_sync::reach_of_instances(self, ctx, &[id]));
        }
        out
    }

    fn describe_instance_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceAttributeRequest,
    ) -> Result<InstanceAttribute, Ec2Error> {
        instance_actions::describe_attribute(self, ctx, input)
    }

    fn reset_instance_attribute(
        &self,
        ctx: &RequestContext,
        input: ResetInstanceAttributeRequest,
    ) -> Result<(), Ec2Error> {
        instance_actions::reset_attribute(self, ctx, input)
    }

    fn attach_network_interface(
        &self,
        ctx: &RequestContext,
        input: AttachNetworkInterfaceRequest,
    ) -> Result<AttachNetworkInterfaceResult, Ec2Error> {
        let eni = input.network_interface_id.clone();
        let out = instance_actions::attach_interface(self, ctx, input)?;
        if !ctx.dry_run {
            // A running guest gets the interface now (its metadata, its link, its rules).
            self.sync_firewall(ctx, firewall_sync::reach_of_eni(self, ctx, &eni));
        }
        Ok(out)
    }

    fn detach_network_interface(
        &self,
        ctx: &RequestContext,
        input: DetachNetworkInterfaceRequest,
    ) -> Result<(), Ec2Error> {
        let vpc = instance_actions::detach_interface(self, ctx, input)?;
        if !ctx.dry_run {
            self.sync_firewall(ctx, Reach::Vpcs([vpc].into()));
        }
        Ok(())
    }

    fn describe_images(
        &self,
        ctx: &RequestContext,
        input: DescribeImagesRequest,
    ) -> Result<DescribeImagesResult, Ec2Error> {
        images::describe(self, ctx, input)
    }

    fn get_default_credit_specification(
        &self,
        ctx: &RequestContext,
        input: GetDefaultCreditSpecificationRequest,
    ) -> Result<GetDefaultCreditSpecificationResult, Ec2Error> {
        credits::get_default(self, ctx, input)
    }

    fn modify_default_credit_specification(
        &self,
        ctx: &RequestContext,
        input: ModifyDefaultCreditSpecificationRequest,
    ) -> Result<ModifyDefaultCreditSpecificationResult, Ec2Error> {
        credits::modify_default(self, ctx, input)
    }

    fn modify_instance_metadata_options(
        &self,
        ctx: &RequestContext,
        input: ModifyInstanceMetadataOptionsRequest,
    ) -> Result<ModifyInstanceMetadataOptionsResult, Ec2Error> {
        let id = input.instance_id.clone();
        let out = instance_actions::modify_metadata_options(self, ctx, input);
        if out.is_ok() && !ctx.dry_run {
            self.sync_firewall(ctx, firewall_sync::reach_of_instances(self, ctx, &[id]));
        }
        out
    }

    fn modify_private_dns_name_options(
        &self,
        ctx: &RequestContext,
        input: ModifyPrivateDnsNameOptionsRequest,
    ) -> Result<ModifyPrivateDnsNameOptionsResult, Ec2Error> {
        let vpc = instance_actions::modify_private_dns_names(self, ctx, input)?;
        if !ctx.dry_run {
            // The resolver answers the resource name by the new setting.
            self.sync_firewall(ctx, firewall_sync::Reach::Vpcs([vpc].into()));
        }
        Ok(ModifyPrivateDnsNameOptionsResult {
            r#return: Some(true),
        })
    }

    fn modify_instance_credit_specification(
        &self,
        ctx: &RequestContext,
        input: ModifyInstanceCreditSpecificationRequest,
    ) -> Result<ModifyInstanceCreditSpecificationResult, Ec2Error> {
        credits::modify_instances(self, ctx, input)
    }

    fn describe_instance_credit_specifications(
        &self,
        ctx: &RequestContext,
        input: DescribeInstanceCreditSpecificationsRequest,
    ) -> Result<DescribeInstanceCreditSpecificationsResult, Ec2Error> {
        credits::describe_instances(self, ctx, input)
    }

    fn create_volume(
        &self,
        ctx: &RequestContext,
        input: CreateVolumeRequest,
    ) -> Result<Volume, Ec2Error> {
        volumes::create(self, ctx, input)
    }

    fn delete_volume(
        &self,
        ctx: &RequestContext,
        input: DeleteVolumeRequest,
    ) -> Result<(), Ec2Error> {
        volumes::delete(self, ctx, input)
    }

    fn describe_volumes(
        &self,
        ctx: &RequestContext,
        input: DescribeVolumesRequest,
    ) -> Result<DescribeVolumesResult, Ec2Error> {
        volumes::describe(self, ctx, input)
    }

    fn attach_volume(
        &self,
        ctx: &RequestContext,
        input: AttachVolumeRequest,
    ) -> Result<VolumeAttachment, Ec2Error> {
        volumes::attach(self, ctx, input)
    }

    fn detach_volume(
        &self,
        ctx: &RequestContext,
        input: DetachVolumeRequest,
    ) -> Result<VolumeAttachment, Ec2Error> {
        volumes::detach(self, ctx, input)
    }

    fn modify_volume(
        &self,
        ctx: &RequestContext,
        input: ModifyVolumeRequest,
    ) -> Result<ModifyVolumeResult, Ec2Error> {
        volumes::modify(self, ctx, input)
    }

    fn describe_volumes_modifications(
        &self,
        ctx: &RequestContext,
        input: DescribeVolumesModificationsRequest,
    ) -> Result<DescribeVolumesModificationsResult, Ec2Error> {
        volumes::describe_modifications(self, ctx, input)
    }

    fn enable_ebs_encryption_by_default(
        &self,
        ctx: &RequestContext,
        input: EnableEbsEncryptionByDefaultRequest,
    ) -> Result<EnableEbsEncryptionByDefaultResult, Ec2Error> {
        let _ = input;
        Ok(EnableEbsEncryptionByDefaultResult {
            ebs_encryption_by_default: Some(volumes::set_encryption_default(self, ctx, true)?),
        })
    }

    fn disable_ebs_encryption_by_default(
        &self,
        ctx: &RequestContext,
        input: DisableEbsEncryptionByDefaultRequest,
    ) -> Result<DisableEbsEncryptionByDefaultResult, Ec2Error> {
        let _ = input;
        Ok(DisableEbsEncryptionByDefaultResult {
            ebs_encryption_by_default: Some(volumes::set_encryption_default(self, ctx, false)?),
        })
    }

    fn get_ebs_encryption_by_default(
        &self,
        ctx: &RequestContext,
        input: GetEbsEncryptionByDefaultRequest,
    ) -> Result<GetEbsEncryptionByDefaultResult, Ec2Error> {
        let _ = input;
        Ok(GetEbsEncryptionByDefaultResult {
            ebs_encryption_by_default: Some(volumes::encryption_default(self, ctx)?),
            sse_type: None,
        })
    }

    fn get_ebs_default_kms_key_id(
        &self,
        ctx: &RequestContext,
        input: GetEbsDefaultKmsKeyIdRequest,
    ) -> Result<GetEbsDefaultKmsKeyIdResult, Ec2Error> {
        let _ = (ctx, input);
        Ok(GetEbsDefaultKmsKeyIdResult {
            kms_key_id: Some(volumes::DEFAULT_KMS_KEY.into()),
        })
    }

    fn create_snapshot(
        &self,
        ctx: &RequestContext,
        input: CreateSnapshotRequest,
    ) -> Result<Snapshot, Ec2Error> {
        snapshots::create(self, ctx, input)
    }

    fn delete_snapshot(
        &self,
        ctx: &RequestContext,
        input: DeleteSnapshotRequest,
    ) -> Result<(), Ec2Error> {
        snapshots::delete(self, ctx, input)
    }

    fn describe_snapshots(
        &self,
        ctx: &RequestContext,
        input: DescribeSnapshotsRequest,
    ) -> Result<DescribeSnapshotsResult, Ec2Error> {
        snapshots::describe(self, ctx, input)
    }

    fn create_snapshots(
        &self,
        ctx: &RequestContext,
        input: CreateSnapshotsRequest,
    ) -> Result<CreateSnapshotsResult, Ec2Error> {
        snapshots::create_many(self, ctx, input)
    }

    fn copy_snapshot(
        &self,
        ctx: &RequestContext,
        input: CopySnapshotRequest,
    ) -> Result<CopySnapshotResult, Ec2Error> {
        snapshots::copy(self, ctx, input)
    }

    fn describe_volume_status(
        &self,
        ctx: &RequestContext,
        input: DescribeVolumeStatusRequest,
    ) -> Result<DescribeVolumeStatusResult, Ec2Error> {
        volumes::describe_status(self, ctx, input)
    }

    fn describe_volume_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeVolumeAttributeRequest,
    ) -> Result<DescribeVolumeAttributeResult, Ec2Error> {
        volumes::describe_attribute(self, ctx, input)
    }

    fn modify_volume_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifyVolumeAttributeRequest,
    ) -> Result<(), Ec2Error> {
        volumes::modify_attribute(self, ctx, input)
    }

    fn create_image(
        &self,
        ctx: &RequestContext,
        input: CreateImageRequest,
    ) -> Result<CreateImageResult, Ec2Error> {
        amis::create_from_instance(self, ctx, input)
    }

    fn register_image(
        &self,
        ctx: &RequestContext,
        input: RegisterImageRequest,
    ) -> Result<RegisterImageResult, Ec2Error> {
        amis::register(self, ctx, input)
    }

    fn deregister_image(
        &self,
        ctx: &RequestContext,
        input: DeregisterImageRequest,
    ) -> Result<DeregisterImageResult, Ec2Error> {
        amis::deregister(self, ctx, input)
    }

    fn get_console_output(
        &self,
        ctx: &RequestContext,
        input: GetConsoleOutputRequest,
    ) -> Result<GetConsoleOutputResult, Ec2Error> {
        console::console_output(self, ctx, input)
    }

    fn copy_image(
        &self,
        ctx: &RequestContext,
        input: CopyImageRequest,
    ) -> Result<CopyImageResult, Ec2Error> {
        amis::copy(self, ctx, input)
    }

    fn modify_image_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifyImageAttributeRequest,
    ) -> Result<(), Ec2Error> {
        ami_sharing::modify(self, ctx, input)
    }

    fn describe_image_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeImageAttributeRequest,
    ) -> Result<ImageAttribute, Ec2Error> {
        ami_sharing::describe(self, ctx, input)
    }

    fn reset_image_attribute(
        &self,
        ctx: &RequestContext,
        input: ResetImageAttributeRequest,
    ) -> Result<(), Ec2Error> {
        ami_sharing::reset(self, ctx, input)
    }

    fn enable_image_block_public_access(
        &self,
        ctx: &RequestContext,
        input: EnableImageBlockPublicAccessRequest,
    ) -> Result<EnableImageBlockPublicAccessResult, Ec2Error> {
        ami_sharing::enable_block_public(self, ctx, input)
    }

    fn disable_image_block_public_access(
        &self,
        ctx: &RequestContext,
        _input: DisableImageBlockPublicAccessRequest,
    ) -> Result<DisableImageBlockPublicAccessResult, Ec2Error> {
        ami_sharing::disable_block_public(self, ctx)
    }

    fn get_image_block_public_access_state(
        &self,
        ctx: &RequestContext,
        _input: GetImageBlockPublicAccessStateRequest,
    ) -> Result<GetImageBlockPublicAccessStateResult, Ec2Error> {
        ami_sharing::get_block_public(self, ctx)
    }

    fn modify_snapshot_attribute(
        &self,
        ctx: &RequestContext,
        input: ModifySnapshotAttributeRequest,
    ) -> Result<(), Ec2Error> {
        snapshot_sharing::modify(self, ctx, input)
    }

    fn describe_snapshot_attribute(
        &self,
        ctx: &RequestContext,
        input: DescribeSnapshotAttributeRequest,
    ) -> Result<DescribeSnapshotAttributeResult, Ec2Error> {
        snapshot_sharing::describe(self, ctx, input)
    }

    fn reset_snapshot_attribute(
        &self,
        ctx: &RequestContext,
        input: ResetSnapshotAttributeRequest,
    ) -> Result<(), Ec2Error> {
        snapshot_sharing::reset(self, ctx, input)
    }
}
