//! What callers do to instances: start, stop, reboot, terminate; attributes; status; network
//! interface attachments.

use crate::addresses;
use crate::core::checks::{self, Checks};
use crate::core::error::Fail;
use crate::core::filters;
use crate::core::ids::new_id;
use crate::core::paging;
use crate::enis;
use crate::flows::lifecycle::leave;
use crate::instances::{self};
use crate::records::instance::*;
use crate::records::net::*;
use crate::repo::instance::load;
use crate::repo::instance::visible;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeInstanceStatus as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::lifecycle::{apply, Action, Outcome, Refusal, State};
use kumo_store::{Query, Read, Scope, Tx};

fn reason_text(now_ms: i64) -> String {
    let t = DateTime(now_ms).to_iso8601();
    format!("User initiated ({} {} GMT)", &t[..10], &t[11..19])
}

fn state_of(s: State) -> InstanceState {
    InstanceState {
        code: Some(s.code()),
        name: Some(s.name().into()),
    }
}

/// The refusal of an action, as AWS words it.
fn refused(r: &InstanceRecord, action: Action, why: Refusal) -> Ec2Error {
    match why {
        Refusal::InstanceStoreCannotStop => Ec2Error::new(
            "UnsupportedOperation",
            format!(
                "The instance '{}' does not have an 'ebs' root device type and cannot be stopped.",
                r.id
            ),
        ),
        Refusal::IncorrectState => Ec2Error::new(
            "IncorrectInstanceState",
            match action {
                Action::Stop if r.state() == State::Pending => {
                    format!("Instance '{}' cannot be stopped as it has never reached the 'running' state.", r.id)
                }
                Action::Stop => format!(
                    "This instance '{}' is not in a state from which it can be stopped.",
                    r.id
                ),
                Action::Start => format!(
                    "The instance '{}' is not in a state from which it can be started.",
                    r.id
                ),
                Action::Reboot => format!(
                    "The instance '{}' is not in a state from which it can be rebooted.",
                    r.id
                ),
                Action::Terminate => format!(
                    "The instance '{}' is not in a state from which it can be terminated.",
                    r.id
                ),
                // What the guest or the host does, not a caller: worded as the admin call's
                // refusal (`kumo admin guest-shutdown`) is.
                Action::GuestShutdown { .. } | Action::ScheduledStop | Action::LaunchFailed => {
                    format!("The instance '{}' is not running.", r.id)
                }
            },
        ),
    }
}

/// Applies one lifecycle action to every named instance, all or nothing.
/// `hibernate` marks a stop as a hibernation (the state reason says so); `force` stops the
/// guest without waiting for it to shut down.
fn act(
    k: &Kumo,
    ctx: &RequestContext,
    ids: &[String],
    action: Action,
    hibernate: bool,
    force: bool,
) -> Result<Vec<InstanceStateChange>, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    let mut gone: Vec<String> = Vec::new();
    // (instance, from, to) of every instance the action reached, for the driver.
    let mut moved: Vec<(String, State, State)> = Vec::new();
    let result = k
        .store
        .write(!ctx.dry_run, |tx| {
            let recs = load(k, tx, s, ids)?;
            let mut plans = Vec::with_capacity(recs.len());
            for r in recs {
                let before = r.state();
                match action {
                    Action::Terminate if r.disable_api_termination && before != State::Terminated => {
                        return Err(Fail(Ec2Error::new(
                            "OperationNotPermitted",
                            format!("The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", r.id),
                        )));
                    }
                    Action::Start if before == State::Stopped => {
                        let arch = crate::records::image::ImageTraits::of_instance(&r).architecture;
                        instances::runnable_here(k, &r.instance_type, &arch)?;
                    }
                    Action::Stop if r.disable_api_stop && before == State::Running => {
                        return Err(Fail(Ec2Error::new(
                            "OperationNotPermitted",
                            format!("The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.", r.id),
                        )));
                    }
                    _ => {}
                }
                let outcome = apply(before, action, r.ebs_backed()).map_err(|why| Fail(refused(&r, action, why)))?;
                plans.push((r, before, outcome));
            }
            let mut changes = Vec::with_capacity(plans.len());
            for (mut r, before, outcome) in plans {
                if let Outcome::MoveTo(next) = outcome {
                    r.state = next;
                    r.since_ms = now;
                    r.run_credits(now);
                    match next {
                        State::Stopping | State::ShuttingDown => {
                            r.transition_reason = reason_text(now);
                            r.state_reason = Some(if hibernate && next == State::Stopping {
                                ("Client.UserInitiatedHibernate".into(), "Client.UserInitiatedHibernate: User initiated hibernate".into())
                            } else {
                                ("Client.UserInitiatedShutdown".into(), "Client.UserInitiatedShutdown: User initiated shutdown".into())
                            });
                            leave(k, tx, s, &mut r, next, &mut gone)?;
                        }
                        State::Pending => {
                            r.transition_reason = String::new();
                            r.state_reason = None;
                            // While the base image is still being built, the guest boots from
                            // the queue once it is; the instance stays pending till then.
                            r.awaiting_boot = !k.compute.image.is_ready();
                            // A stop and start moves the instance to a healthy host: stop
                            // events are cleared. (A reboot keeps the host and its events.)
                            r.events.retain(|e| !e.stops());
                            // A completed reboot the stopped guest never felt is not felt at
                            // the start either.
                            for e in r.events.iter_mut().filter(|e| e.completed_ms.is_some()) {
                                e.acted = true;
                            }
                            if let Some(old) = r.public_ip.take() {
                                addresses::release_public_ip(tx, &old)?;
                            }
                            if r.auto_public_ip {
                                r.public_ip = Some(addresses::take_public_ip(tx, s, &r.id)?);
                            }
                            // A start takes a slot again: a spread group's, a reservation's.
                            crate::placement_groups::check_start(k, tx, s, &r)?;
                            crate::capacity_reservations::on_start(k, tx, s, &mut r)?;
                        }
                        State::Running | State::Stopped | State::Terminated => {}
                    }
                    tx.update(s, &r)?;
                }
                let current = r.state();
                moved.push((r.id.clone(), before, current));
                changes.push(InstanceStateChange {
                    instance_id: Some(r.id.clone()),
                    previous_state: Some(state_of(before)),
                    current_state: Some(state_of(current)),
                });
            }
            Ok(changes)
        })
        .map_err(|f: Fail| f.0);
    if let (Ok(_), false) = (&result, ctx.dry_run) {
        crate::flows::boot::after(k, ctx, &moved, action == Action::Reboot, force);
        crate::host::delete_files(k, &gone);
    }
    result
}

pub fn start(
    k: &Kumo,
    ctx: &RequestContext,
    input: StartInstancesRequest,
) -> Result<StartInstancesResult, Ec2Error> {
    let changes = act(k, ctx, &input.instance_ids, Action::Start, false, false)?;
    Ok(StartInstancesResult {
        starting_instances: Some(changes),
    })
}

pub fn stop(
    k: &Kumo,
    ctx: &RequestContext,
    input: StopInstancesRequest,
) -> Result<StopInstancesResult, Ec2Error> {
    if input.hibernate == Some(true) {
        let s = scope(ctx);
        let recs = k
            .store
            .read(|v| load(k, v, s, &input.instance_ids))
            .map_err(|f| f.0)?;
        if let Some(r) = recs.iter().find(|r| !r.hibernation) {
            return Err(Ec2Error::new(
                "UnsupportedHibernationConfiguration",
                format!("The instance '{}' was not launched with hibernation enabled. Stop it without hibernation.", r.id),
            ));
        }
    }
    let changes = act(
        k,
        ctx,
        &input.instance_ids,
        Action::Stop,
        input.hibernate.unwrap_or(false),
        input.force.unwrap_or(false),
    )?;
    Ok(StopInstancesResult {
        stopping_instances: Some(changes),
    })
}

pub fn reboot(
    k: &Kumo,
    ctx: &RequestContext,
    input: RebootInstancesRequest,
) -> Result<(), Ec2Error> {
    act(k, ctx, &input.instance_ids, Action::Reboot, false, false).map(|_| ())
}

pub fn terminate(
    k: &Kumo,
    ctx: &RequestContext,
    input: TerminateInstancesRequest,
) -> Result<TerminateInstancesResult, Ec2Error> {
    let changes = act(k, ctx, &input.instance_ids, Action::Terminate, false, false)?;
    Ok(TerminateInstancesResult {
        terminating_instances: Some(changes),
    })
}

fn bool_attr(v: Option<bool>) -> Option<AttributeBooleanValue> {
    v.map(|value| AttributeBooleanValue { value: Some(value) })
}

/// The one attribute a ModifyInstanceAttribute call changes.
enum Change {
    InstanceType(String),
    UserData(kumo_ec2_wire::Blob),
    DisableApiTermination(bool),
    DisableApiStop(bool),
    EbsOptimized(bool),
    SourceDestCheck(bool),
    ShutdownBehavior(String),
    Groups(Vec<String>),
    /// `DeleteOnTermination` of attached volumes, by device.
    DeleteOnTermination(Vec<(String, bool)>),
}

/// The change asked for: the attribute comes either named (`Attribute` + `Value`) or as its
/// own parameter, and exactly one is given.
fn requested(input: &ModifyInstanceAttributeRequest) -> Result<Change, Ec2Error> {
    let named = |a: &str| input.attribute.as_deref() == Some(a);
    let text = |a: &str| input.value.clone().filter(|_| named(a));
    let flag = |own: &Option<AttributeBooleanValue>, a: &str| {
        own.as_ref()
            .and_then(|v| v.value)
            .or_else(|| text(a).map(|v| v.eq_ignore_ascii_case("true")))
    };
    let mut given: Vec<Change> = Vec::new();
    let instance_type = input
        .instance_type
        .as_ref()
        .and_then(|v| v.value.clone())
        .or_else(|| text("instanceType"));
    given.extend(instance_type.map(Change::InstanceType));
    let user_data = input
        .user_data
        .as_ref()
        .map(|b| b.value.clone().unwrap_or_default())
        .or_else(|| text("userData").map(|v| kumo_ec2_wire::Blob(v.into_bytes())));
    given.extend(user_data.map(Change::UserData));
    given.extend(
        flag(&input.disable_api_termination, "disableApiTermination")
            .map(Change::DisableApiTermination),
    );
    given.extend(flag(&input.disable_api_stop, "disableApiStop").map(Change::DisableApiStop));
    given.extend(flag(&input.ebs_optimized, "ebsOptimized").map(Change::EbsOptimized));
    given.extend(flag(&input.source_dest_check, "sourceDestCheck").map(Change::SourceDestCheck));
    let behavior = input
        .instance_initiated_shutdown_behavior
        .as_ref()
        .and_then(|v| v.value.clone())
        .or_else(|| text("instanceInitiatedShutdownBehavior"));
    given.extend(behavior.map(Change::ShutdownBehavior));
    given.extend(input.groups.clone().map(Change::Groups));
    if let Some(list) = &input.block_device_mappings {
        given.push(Change::DeleteOnTermination(Vec::new()));
        if given.len() == 1 {
            given = vec![Change::DeleteOnTermination(device_flags(list)?)];
        }
    }
    if given.len() > 1 {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "Fields for multiple attribute types specified",
        ));
    }
    let change = given
        .pop()
        .ok_or_else(|| Ec2Error::missing_parameter("attribute"))?;
    if let Change::ShutdownBehavior(b) = &change {
        if b != "stop" && b != "terminate" {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({b}) for parameter instanceInitiatedShutdownBehavior is invalid."
            )));
        }
    }
    Ok(change)
}

/// The block device mappings of a ModifyInstanceAttribute: only `DeleteOnTermination` of an
/// attached EBS volume can change.
fn device_flags(
    list: &[InstanceBlockDeviceMappingSpecification],
) -> Result<Vec<(String, bool)>, Ec2Error> {
    let mut out = Vec::new();
    for m in list {
        let device = m.device_name.clone().unwrap_or_default();
        let flag = m.ebs.as_ref().and_then(|e| e.delete_on_termination);
        match flag {
            Some(f) if m.no_device.is_none() && m.virtual_name.is_none() => out.push((device, f)),
            _ => {
                return Err(Ec2Error::new(
                    "InvalidInstanceAttributeValue",
                    format!("Only DeleteOnTermination of an attached EBS volume can be changed; the mapping for '{device}' asks for something else."),
                ))
            }
        }
    }
    Ok(out)
}

/// ModifyInstanceAttribute, before any lookup: exactly one change, of its attribute's form,
/// and a new instance type that exists. The instance, its state and what its image and
/// interfaces allow of the change follow.
impl Checks for ModifyInstanceAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::phase_one(requested(self).map(drop))
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        if let Change::InstanceType(t) = requested(self)? {
            crate::instance_types::find(&t).ok_or_else(|| {
                Ec2Error::invalid_value(format!("Invalid value '{t}' for InstanceType."))
            })?;
        }
        Ok(())
    }
}

pub fn modify_attribute(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyInstanceAttributeRequest,
) -> Result<(), Ec2Error> {
    let change = requested(&input)?;
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = load(k, tx, s, std::slice::from_ref(&input.instance_id))?.remove(0);
            let clock = (k.now_ms(), k.options.transition_ms);
            apply_change(tx, s, &mut r, &change, clock)?;
            tx.update(s, &r)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

/// Makes the change to the instance (and to its volumes' attachments or its primary
/// interface, which the transaction writes).
fn apply_change(
    tx: &Tx,
    s: Scope,
    r: &mut InstanceRecord,
    change: &Change,
    clock: (i64, i64),
) -> Result<(), Fail> {
    let stopped = r.state() == State::Stopped;
    match change {
        Change::InstanceType(t) => {
            if !stopped {
                return Err(crate::repo::instance::not_stopped(&r.id));
            }
            let img = crate::records::image::ImageTraits::of_instance(r);
            let info = instances::check_type_for_image(t, &img)?;
            crate::instance_types::check_tenancy(t, &r.tenancy)?;
            let (max_enis, max_ips) = crate::repo::instance::limits(info);
            let ids: Vec<&str> = r.enis.iter().map(String::as_str).collect();
            let enis: Vec<EniRecord> = tx.list(
                s,
                &Query {
                    ids: Some(&ids),
                    ..Query::default()
                },
            )?;
            if enis.len() > max_enis
                || enis
                    .iter()
                    .any(|e| crate::repo::instance::slots(e) > max_ips)
            {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "The instance '{}' has more network interfaces or addresses than the instance type '{t}' supports.",
                    r.id
                ))));
            }
            r.instance_type = t.clone();
            // CPU options chosen at launch were checked against the old type: the instance
            // takes the new type's default cores and threads.
            r.cpu = None;
        }
        Change::UserData(u) => {
            if !stopped {
                return Err(crate::repo::instance::not_stopped(&r.id));
            }
            use base64::Engine;
            // The CLI sends the text base64-encoded once more; store what the API carries.
            r.user_data =
                (!u.0.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(&u.0));
        }
        Change::DisableApiTermination(v) => r.disable_api_termination = *v,
        Change::DisableApiStop(v) => r.disable_api_stop = *v,
        Change::EbsOptimized(v) => r.ebs_optimized = *v,
        Change::ShutdownBehavior(b) => r.shutdown_behavior = b.clone(),
        Change::DeleteOnTermination(flags) => {
            for (device, flag) in flags {
                set_delete_on_termination(tx, s, r, device, *flag, clock)?;
            }
        }
        Change::SourceDestCheck(_) | Change::Groups(_) => {
            let primary = r.enis.first().cloned().ok_or(Fail(Ec2Error::internal()))?;
            let mut e = crate::repo::eni::get_eni(tx, s, &primary)?;
            match change {
                Change::SourceDestCheck(v) => e.source_dest_check = *v,
                Change::Groups(g) => {
                    let vpc = crate::vpcs::get_vpc(tx, s, &e.vpc_id)?;
                    e.groups = enis::resolve_groups(tx, s, &vpc, Some(g))?;
                }
                _ => {}
            }
            tx.update(s, &e)?;
        }
    }
    Ok(())
}

/// `DeleteOnTermination` of the volume attached at `device`.
fn set_delete_on_termination(
    tx: &Tx,
    s: Scope,
    r: &InstanceRecord,
    device: &str,
    flag: bool,
    clock: (i64, i64),
) -> Result<(), Fail> {
    let norm = |d: &str| d.trim_start_matches("/dev/").to_string();
    let mut found = false;
    for mut v in crate::repo::volume::attached_to(tx, s, &r.id, clock)? {
        let mut changed = false;
        for a in v
            .attachments
            .iter_mut()
            .filter(|a| a.instance_id == r.id && norm(&a.device) == norm(device))
        {
            a.delete_on_termination = flag;
            changed = true;
        }
        if changed {
            tx.update(s, &v)?;
            found = true;
        }
    }
    if found {
        Ok(())
    } else {
        Err(Fail(Ec2Error::new(
            "InvalidInstanceAttributeValue",
            format!("No device is currently mapped at {device}"),
        )))
    }
}

/// ModifyInstanceMetadataOptions, before any lookup: the hop limit.
impl Checks for ModifyInstanceMetadataOptionsRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        instances::check_hop_limit(self.http_put_response_hop_limit)
    }
}

/// AttachNetworkInterface, before any lookup: the settings Kumo does not take. The
/// instance, the interface, their zones and states, the device index and the type's
/// interface limit follow.
impl Checks for AttachNetworkInterfaceRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::error::refuse_settings(
            "AttachNetworkInterface",
            &[
                (
                    "NetworkCardIndex",
                    self.network_card_index.is_some_and(|n| n != 0),
                ),
                ("EnaSrdSpecification", self.ena_srd_specification.is_some()),
                ("EnaQueueCount", self.ena_queue_count.is_some()),
            ],
        )
    }
}

/// ModifyInstanceMetadataOptions: the metadata service's settings of a running or stopped
/// instance; a setting not given keeps its value. The answer says `pending`, as AWS's does,
/// and DescribeInstances `applied` once the metadata service has it (at once here).
pub fn modify_metadata_options(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyInstanceMetadataOptionsRequest,
) -> Result<ModifyInstanceMetadataOptionsResult, Ec2Error> {
    let s = scope(ctx);
    let r = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = load(k, tx, s, std::slice::from_ref(&input.instance_id))?.remove(0);
            if let Some(v) = &input.http_tokens {
                r.http_tokens = v.clone();
            }
            if let Some(v) = &input.http_endpoint {
                r.http_endpoint = v.clone();
            }
            if let Some(v) = input.http_put_response_hop_limit {
                r.http_hop_limit = v;
            }
            if let Some(v) = &input.http_protocol_ipv6 {
                r.http_protocol_ipv6 = v.clone();
            }
            if let Some(v) = &input.instance_metadata_tags {
                r.instance_metadata_tags = v.clone();
            }
            tx.update(s, &r)?;
            Ok(r)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(ModifyInstanceMetadataOptionsResult {
        instance_id: Some(r.id.clone()),
        instance_metadata_options: Some(instances::metadata_options(&r, "pending")),
    })
}

/// ModifyPrivateDnsNameOptions: the host name type changes only while the instance is
/// stopped (its guest takes the new name at its next boot); the resource name's A and AAAA
/// records may change at any time, and the VPC resolver follows at once. Returns the
/// instance's VPC, whose resolver needs the change.
pub fn modify_private_dns_names(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyPrivateDnsNameOptionsRequest,
) -> Result<String, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut r = load(k, tx, s, std::slice::from_ref(&input.instance_id))?.remove(0);
            if let Some(t) = &input.private_dns_hostname_type {
                if r.state != State::Stopped {
                    return Err(Fail(Ec2Error::invalid_value(
                        "Cannot modify hostname-type for running instances",
                    )));
                }
                r.dns_names.resource_name = t == "resource-name";
            }
            if let Some(v) = input.enable_resource_name_dns_a_record {
                r.dns_names.a_record = v;
            }
            if let Some(v) = input.enable_resource_name_dns_aaaa_record {
                r.dns_names.aaaa_record = v;
            }
            tx.update(s, &r)?;
            Ok(r.vpc_id)
        })
        .map_err(|f: Fail| f.0)
}

pub fn describe_attribute(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstanceAttributeRequest,
) -> Result<InstanceAttribute, Ec2Error> {
    let s = scope(ctx);
    let (r, primary, names, vols) = k
        .store
        .read(|v| {
            let r = load(k, v, s, std::slice::from_ref(&input.instance_id))?.remove(0);
            let primary = match r.enis.first() {
                Some(id) => v.get::<EniRecord>(s, id)?,
                None => None,
            };
            let vols: Vec<crate::records::volume::VolumeRecord> = v.list(
                s,
                &Query {
                    ids: Some(&r.volumes.iter().map(String::as_str).collect::<Vec<_>>()),
                    ..Query::default()
                },
            )?;
            Ok::<_, Fail>((r, primary, crate::repo::eni::group_names(v, s)?, vols))
        })
        .map_err(|f| f.0)?;
    let sv = |v: String| Some(AttributeValue { value: Some(v) });
    let mut out = InstanceAttribute {
        instance_id: Some(r.id.clone()),
        ..InstanceAttribute::default()
    };
    match input.attribute.as_str() {
        "instanceType" => out.instance_type = sv(r.instance_type),
        "userData" => out.user_data = Some(AttributeValue { value: r.user_data }),
        "disableApiTermination" => {
            out.disable_api_termination = bool_attr(Some(r.disable_api_termination))
        }
        "disableApiStop" => out.disable_api_stop = bool_attr(Some(r.disable_api_stop)),
        "instanceInitiatedShutdownBehavior" => {
            out.instance_initiated_shutdown_behavior = sv(r.shutdown_behavior)
        }
        "rootDeviceName" => out.root_device_name = sv(r.root_device_name),
        "blockDeviceMapping" => {
            out.block_device_mappings = Some(crate::volumes::mappings(&vols, &r.id))
        }
        "productCodes" => out.product_codes = Some(Vec::new()),
        "sourceDestCheck" => {
            out.source_dest_check = bool_attr(primary.as_ref().map(|e| e.source_dest_check))
        }
        "groupSet" => {
            out.groups = Some(
                primary
                    .map(|e| {
                        e.groups
                            .iter()
                            .map(|g| GroupIdentifier {
                                group_id: Some(g.clone()),
                                group_name: names.get(g).cloned(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        }
        "ebsOptimized" => out.ebs_optimized = bool_attr(Some(r.ebs_optimized)),
        "enaSupport" => out.ena_support = bool_attr(Some(r.ena_support)),
        "sriovNetSupport" => out.sriov_net_support = sv("simple".into()),
        "kernel" => out.kernel_id = Some(AttributeValue { value: None }),
        "ramdisk" => out.ramdisk_id = Some(AttributeValue { value: None }),
        "enclaveOptions" => {
            out.enclave_options = Some(EnclaveOptions {
                enabled: Some(false),
            })
        }
        other => {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid."
            )))
        }
    }
    Ok(out)
}

pub fn reset_attribute(
    k: &Kumo,
    ctx: &RequestContext,
    input: ResetInstanceAttributeRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    match input.attribute.as_str() {
        "sourceDestCheck" => k
            .store
            .write(!ctx.dry_run, |tx| {
                let r = load(k, tx, s, std::slice::from_ref(&input.instance_id))?.remove(0);
                if let Some(id) = r.enis.first() {
                    let mut e = crate::repo::eni::get_eni(tx, s, id)?;
                    e.source_dest_check = true;
                    tx.update(s, &e)?;
                }
                Ok(())
            })
            .map_err(|f: Fail| f.0),
        // Kumo's images carry no separate kernel or RAM disk: resetting them changes nothing.
        "kernel" | "ramdisk" => k
            .store
            .read(|v| load(k, v, s, std::slice::from_ref(&input.instance_id)).map(|_| ()))
            .map_err(|f| f.0),
        other => Err(Ec2Error::invalid_value(format!(
            "Value ({other}) for parameter attribute is invalid. Only kernel, ramdisk and sourceDestCheck can be reset."
        ))),
    }
}

struct StatusView<'a>(&'a InstanceRecord, &'a str);

impl Filterable<F> for StatusView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let st = self.0.state();
        match f {
            F::AvailabilityZone => out(&self.0.zone),
            F::AvailabilityZoneId => out(&self.0.zone_id),
            F::InstanceStateName => out(st.name()),
            F::InstanceStateCode => out(&st.code().to_string()),
            F::InstanceStatusStatus | F::SystemStatusStatus => out(self.1),
            F::InstanceStatusReachability | F::SystemStatusReachability => {
                out(if self.1 == "ok" { "passed" } else { self.1 })
            }
            // The scheduled events, as the answer's `eventsSet` shows them.
            F::EventCode => self.0.events.iter().for_each(|e| out(&e.code)),
            F::EventDescription => self
                .0
                .events
                .iter()
                .for_each(|e| out(&e.shown_description())),
            F::EventInstanceEventId => self.0.events.iter().for_each(|e| out(&e.id)),
            F::EventNotBefore => self
                .0
                .events
                .iter()
                .for_each(|e| out(&DateTime(e.not_before_ms).to_iso8601())),
            F::EventNotBeforeDeadline => self
                .0
                .events
                .iter()
                .for_each(|e| out(&DateTime(e.deadline_ms).to_iso8601())),
            // Kumo's events have a deadline, not a window: the answer has no `notAfter`.
            F::EventNotAfter => {}
            // Refused when compiling.
            F::AttachedEbsStatusStatus | F::OperatorManaged | F::OperatorPrincipal => {}
        }
    }
}

/// DescribeInstanceStatus, before any lookup: ids or a page size, not both.
impl Checks for DescribeInstanceStatusRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::ids_or_page(self.instance_ids.as_ref(), self.max_results, "instancesSet")
    }
}

pub fn describe_status(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstanceStatusRequest,
) -> Result<DescribeInstanceStatusResult, Ec2Error> {
    let fs = filters::compile::<F>(
        input.filters,
        &[
            F::AttachedEbsStatusStatus,
            F::OperatorManaged,
            F::OperatorPrincipal,
        ],
    )?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let after = paging::cursor("DescribeInstanceStatus", input.next_token.as_deref())?;
    let ids = input.instance_ids.unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let all_states = input.include_all_instances.unwrap_or(false);
    let recs: Vec<InstanceRecord> = k
        .store
        .read(|v| {
            if ids.is_empty() {
                let mut all: Vec<InstanceRecord> = v.list(s, &Query::default())?;
                all.retain(|r| visible(r, now, k.options.transition_ms));
                for r in all.iter_mut() {
                    r.settle(now, k.options.transition_ms);
                }
                Ok(all)
            } else {
                load(k, v, s, &ids)
            }
        })
        .map_err(|f| f.0)?;
    let statuses: Vec<InstanceStatus> = recs
        .iter()
        .filter(|r| all_states || r.state() == State::Running)
        .filter(|r| after.as_deref().is_none_or(|a| r.id.as_str() > a))
        .filter_map(|r| {
            let st = r.state();
            // Checks start once the instance runs, and pass after the status delay.
            let check = if st != State::Running {
                "not-applicable"
            } else if now < r.since_ms + k.options.transition_ms + k.options.status_ms {
                "initializing"
            } else {
                "ok"
            };
            if !fs.matches(&StatusView(r, check)) {
                return None;
            }
            let summary = |name: &str| InstanceStatusSummary {
                status: Some(check.into()),
                details: (check != "not-applicable").then(|| {
                    vec![InstanceStatusDetails {
                        name: Some(name.into()),
                        status: Some(
                            if check == "ok" {
                                "passed"
                            } else {
                                "initializing"
                            }
                            .into(),
                        ),
                        impaired_since: None,
                    }]
                }),
            };
            Some(InstanceStatus {
                instance_id: Some(r.id.clone()),
                availability_zone: Some(r.zone.clone()),
                availability_zone_id: Some(r.zone_id.clone()),
                instance_state: Some(state_of(st)),
                instance_status: Some(summary("reachability")),
                system_status: Some(summary("reachability")),
                events: Some(
                    r.events
                        .iter()
                        .map(|e| InstanceStatusEvent {
                            instance_event_id: Some(e.id.clone()),
                            code: Some(e.code.clone()),
                            description: Some(e.shown_description()),
                            not_before: Some(DateTime(e.not_before_ms)),
                            not_before_deadline: Some(DateTime(e.deadline_ms)),
                            not_after: None,
                        })
                        .collect(),
                ),
                ..InstanceStatus::default()
            })
        })
        .collect();
    let mut statuses = statuses;
    statuses.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let (page, next) = paging::page(statuses, limit, "DescribeInstanceStatus", |x| {
        x.instance_id.clone().unwrap_or_default()
    });
    Ok(DescribeInstanceStatusResult {
        instance_statuses: Some(page),
        next_token: next,
    })
}

pub fn attach_interface(
    k: &Kumo,
    ctx: &RequestContext,
    input: AttachNetworkInterfaceRequest,
) -> Result<AttachNetworkInterfaceResult, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    let id = k
        .store
        .write(!ctx.dry_run, |tx| {
            let mut r = load(k, tx, s, std::slice::from_ref(&input.instance_id))?.remove(0);
            if !matches!(r.state(), State::Running | State::Stopped) {
                return Err(Fail(Ec2Error::new(
                    "IncorrectInstanceState",
                    format!("The instance '{}' is not in a valid state for this operation.", r.id),
                )));
            }
            let mut eni = crate::repo::eni::get_eni(tx, s, &input.network_interface_id)?;
            if eni.attachment.is_some() {
                return Err(Fail(Ec2Error::new("InvalidNetworkInterface.InUse", format!("Interface: [{}] in use.", eni.id))));
            }
            crate::repo::eni::check_not_managed(&eni)?;
            if eni.zone != r.zone {
                return Err(Fail(Ec2Error::new(
                    "InvalidParameterCombination",
                    "You may not attach a network interface to an instance if they are not in the same availability zone",
                )));
            }
            if eni.vpc_id != r.vpc_id {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "The network interface '{}' and the instance '{}' must be in the same VPC.",
                    eni.id, r.id
                ))));
            }
            let attached: Vec<EniRecord> = tx.list(s, &Query { ids: Some(&r.enis.iter().map(String::as_str).collect::<Vec<_>>()), ..Query::default() })?;
            let attached: Vec<&EniRecord> = attached.iter().filter(|e| e.attachment.as_ref().is_some_and(|a| a.instance_id == r.id)).collect();
            if attached.iter().any(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == input.device_index)) {
                return Err(Fail(Ec2Error::invalid_value(format!(
                    "Instance '{}' already has an interface attached at device index '{}'.",
                    r.id, input.device_index
                ))));
            }
            let img = crate::records::image::ImageTraits::of_instance(&r);
            let info = instances::check_type_for_image(&r.instance_type, &img)?;
            let (max_enis, max_ips) = crate::repo::instance::limits(info);
            if attached.len() + 1 > max_enis {
                return Err(Fail(Ec2Error::new(
                    "AttachmentLimitExceeded",
                    format!("Interface count {} exceeds the limit for {}", attached.len() + 1, r.instance_type),
                )));
            }
            if crate::repo::instance::slots(&eni) > max_ips
                || crate::ipv6_addresses::slots6(&eni) > crate::ipv6_addresses::ipv6_per_interface(info)
            {
                return Err(Fail(crate::repo::instance::address_limit()));
            }
            instances::pluggable(k, input.device_index)?;
            let aid = new_id("eni-attach");
            eni.attachment = Some(EniAttachment {
                id: aid.clone(),
                instance_id: r.id.clone(),
                device_index: input.device_index,
                status: "attached".into(),
                delete_on_termination: false,
                attach_time_ms: now,
            });
            tx.update(s, &eni)?;
            r.enis.retain(|x| x != &eni.id);
            r.enis.push(eni.id.clone());
            tx.update(s, &r)?;
            Ok(aid)
        })
        .map_err(|f: Fail| f.0)?;
    Ok(AttachNetworkInterfaceResult {
        attachment_id: Some(id),
        network_card_index: Some(0),
    })
}

/// Detaches an interface; the VPC it is in, whose firewall and guests follow.
pub fn detach_interface(
    k: &Kumo,
    ctx: &RequestContext,
    input: DetachNetworkInterfaceRequest,
) -> Result<String, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let all: Vec<EniRecord> = tx.list(s, &Query::default())?;
            let Some(mut eni) = all.into_iter().find(|e| {
                e.attachment
                    .as_ref()
                    .is_some_and(|a| a.id == input.attachment_id)
            }) else {
                return Err(Fail(Ec2Error::new(
                    "InvalidAttachmentID.NotFound",
                    format!(
                        "The network interface attachment ID '{}' does not exist",
                        input.attachment_id
                    ),
                )));
            };
            if eni.attachment.as_ref().is_some_and(|a| a.device_index == 0) {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    "The network interface at device index 0 cannot be detached.",
                )));
            }
            if eni.requester_managed {
                return Err(Fail(Ec2Error::new(
                    "OperationNotPermitted",
                    format!(
                        "You are not allowed to manage '{}' attachments.",
                        eni.interface_type
                    ),
                )));
            }
            eni.attachment = None;
            tx.update(s, &eni)?;
            Ok(eni.vpc_id)
        })
        .map_err(|f: Fail| f.0)
}

/// MonitorInstances and UnmonitorInstances: detailed monitoring switched on or off for each
/// instance (`pending` or `disabling` for one transition, then `enabled` or `disabled`). An
/// instance that is terminated or shutting down is refused, and the call changes nothing.
pub fn set_monitoring(
    k: &Kumo,
    ctx: &RequestContext,
    ids: &[String],
    on: bool,
) -> Result<Vec<InstanceMonitoring>, Ec2Error> {
    let s = scope(ctx);
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut out = Vec::new();
            for mut r in load(k, tx, s, ids)? {
                if matches!(r.state(), State::Terminated | State::ShuttingDown) {
                    return Err(Fail(Ec2Error::new(
                        "IncorrectInstanceState",
                        format!(
                            "The instance '{}' is not in a state from which its monitoring can be changed.",
                            r.id
                        ),
                    )));
                }
                if r.monitoring != on {
                    r.monitoring = on;
                    r.monitoring_since_ms = now.max(1);
                }
                out.push(r);
            }
            if ctx.dry_run {
                return Err(Fail(Ec2Error::dry_run()));
            }
            for r in &out {
                tx.update(s, r)?;
            }
            Ok(out
                .iter()
                .map(|r| InstanceMonitoring {
                    instance_id: Some(r.id.clone()),
                    monitoring: Some(Monitoring {
                        state: Some(r.monitoring_state().into()),
                    }),
                })
                .collect())
        })
        .map_err(|f: Fail| f.0)
}
