//! The control plane's side of a compute driver: what to run for an instance (its
//! [`InstanceSpec`]: image root, root volume data, type limits, interface, metadata), and the
//! calls to the driver after each lifecycle change has committed.
//!
//! Without a driver (the `null` driver) none of this runs and instances are API state only.

use crate::error::Fail;
use crate::firewall_sync::Reach;
use crate::host::{volume_spec, Compute, Invocation, SentCommand};
use crate::key_pairs::KeyPairRecord;
use crate::records::instance::InstanceRecord;
use crate::records::net::{SubnetRecord, VpcRecord};
use crate::records::volume::VolumeRecord;
use crate::repo::instance::Context;
use crate::Kumo;
use kumo_compute::{InstanceSpec, Metadata, NetSpec};
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::lifecycle::{self, Action, Outcome, State};
use kumo_store::{Read, Scope};
use std::path::PathBuf;

/// The login user of an image, as its distribution names it.
fn default_user(image_name: &str) -> &'static str {
    let n = image_name.to_ascii_lowercase();
    if n.contains("ubuntu") {
        "ubuntu"
    } else if n.contains("debian") {
        "admin"
    } else {
        "ec2-user"
    }
}

fn image_name<V: Read>(v: &V, s: Scope, image_id: &str) -> Result<String, Fail> {
    if let Some(p) = kumo_model::images::by_id(s.region, image_id) {
        return Ok(p.name.to_string());
    }
    Ok(
        crate::sharing::owner_of::<crate::records::image::ImageRecord, _>(v, s, image_id)?
            .map(|(_, i)| i.name)
            .unwrap_or_default(),
    )
}

/// The IMDS tree of an instance.
fn metadata<V: Read>(
    v: &V,
    s: Scope,
    ctx: &RequestContext,
    r: &InstanceRecord,
    c: &Context,
) -> Result<(Metadata, NetSpec), Fail> {
    let eni = c
        .enis_of(r)
        .find(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == 0))
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    let subnet: SubnetRecord = v
        .get(s, &eni.subnet_id)?
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    let vpc: VpcRecord = v
        .get(s, &eni.vpc_id)?
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    let primary = eni
        .addresses
        .iter()
        .find(|a| a.primary)
        .map(|a| a.addr.clone())
        .unwrap_or_default();
    let secondary: Vec<String> = eni
        .addresses
        .iter()
        .filter(|a| !a.primary)
        .map(|a| a.addr.clone())
        .collect();
    let host = crate::network::private_dns_name(s.region, &primary);
    let public = c.public_ip(r);
    let mut m = std::collections::BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("ami-id", r.image_id.clone());
    put("ami-launch-index", r.launch_index.to_string());
    put("ami-manifest-path", "(unknown)".into());
    put(
        "block-device-mapping/ami",
        r.root_device_name.trim_start_matches("/dev/").into(),
    );
    put("block-device-mapping/root", r.root_device_name.clone());
    put("hostname", host.clone());
    put("local-hostname", host.clone());
    put("instance-action", "none".into());
    put("instance-id", r.id.clone());
    put("instance-life-cycle", "on-demand".into());
    put("instance-type", r.instance_type.clone());
    put("local-ipv4", primary.clone());
    put("mac", eni.mac.clone());
    put("placement/availability-zone", r.zone.clone());
    put("placement/availability-zone-id", r.zone_id.clone());
    put("placement/region", s.region.into());
    put("reservation-id", r.reservation_id.clone());
    put("security-groups", c_group_names(c, &eni.groups).join("\n"));
    put("services/domain", "amazonaws.com".into());
    put("services/partition", "aws".into());
    put("events/maintenance/scheduled", "[]".into());
    if let Some(p) = &public {
        put("public-ipv4", p.clone());
        put(
            "public-hostname",
            crate::repo::instance::public_dns(s.region, p),
        );
    }
    if let Some(name) = &r.key_name {
        if let Some(key) = v.get_by_name::<KeyPairRecord>(s, name)? {
            put("public-keys/", format!("0={name}"));
            put(
                "public-keys/0/openssh-key",
                key.public_key.trim().to_string(),
            );
        }
    }
    let mac = format!("network/interfaces/macs/{}", eni.mac);
    put(&format!("{mac}/device-number"), "0".into());
    put(&format!("{mac}/interface-id"), eni.id.clone());
    put(&format!("{mac}/local-hostname"), host.clone());
    put(
        &format!("{mac}/local-ipv4s"),
        std::iter::once(primary.clone())
            .chain(secondary.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    put(&format!("{mac}/mac"), eni.mac.clone());
    put(&format!("{mac}/owner-id"), ctx.account_id.clone());
    put(&format!("{mac}/security-group-ids"), eni.groups.join("\n"));
    put(
        &format!("{mac}/security-groups"),
        c_group_names(c, &eni.groups).join("\n"),
    );
    put(&format!("{mac}/subnet-id"), subnet.id.clone());
    put(
        &format!("{mac}/subnet-ipv4-cidr-block"),
        subnet.cidr.clone(),
    );
    put(&format!("{mac}/vpc-id"), vpc.id.clone());
    let vpc_cidr = vpc
        .cidrs
        .first()
        .map(|c| c.cidr.clone())
        .unwrap_or_default();
    put(&format!("{mac}/vpc-ipv4-cidr-block"), vpc_cidr.clone());
    put(
        &format!("{mac}/vpc-ipv4-cidr-blocks"),
        vpc.cidrs
            .iter()
            .map(|c| c.cidr.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if !eni.prefixes.is_empty() {
        put(&format!("{mac}/ipv4-prefix"), eni.prefixes.join("\n"));
    }
    if let Some(p) = &public {
        put(&format!("{mac}/public-ipv4s"), p.clone());
    }
    let identity = serde_json::json!({
        "accountId": ctx.account_id,
        "architecture": r.architecture,
        "availabilityZone": r.zone,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": r.image_id,
        "instanceId": r.id,
        "instanceType": r.instance_type,
        "kernelId": null,
        "pendingTime": kumo_ec2_wire::DateTime(r.launch_ms).to_iso8601(),
        "privateIp": primary,
        "ramdiskId": null,
        "region": s.region,
        "version": "2017-09-30",
    });
    let mut dynamic = std::collections::BTreeMap::new();
    dynamic.insert(
        "instance-identity/document".to_string(),
        serde_json::to_string_pretty(&identity).unwrap_or_default(),
    );
    let user_data = r.user_data.as_ref().and_then(|u| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(u).ok()
    });
    let md = Metadata {
        meta: m,
        dynamic,
        user_data,
        http_tokens: r.http_tokens.clone(),
        http_endpoint: r.http_endpoint.clone(),
        hop_limit: r.http_hop_limit.max(1) as u32,
        guest: Default::default(),
    };
    let net = NetSpec {
        vpc_id: vpc.id.clone(),
        vpc_cidr,
        subnet_id: subnet.id.clone(),
        subnet_cidr: subnet.cidr.clone(),
        mac: eni.mac.clone(),
        private_ip: primary,
        secondary_ips: secondary,
        prefixes: eni.prefixes.clone(),
    };
    Ok((md, net))
}

fn c_group_names(c: &Context, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|g| c.names.get(g).cloned().unwrap_or_else(|| g.clone()))
        .collect()
}

/// An instance's root volume, if it has one attached.
fn root_volume<'a>(r: &InstanceRecord, c: &'a Context) -> Option<&'a VolumeRecord> {
    c.volumes.iter().find(|v| {
        v.attachments
            .iter()
            .any(|a| a.instance_id == r.id && a.device == r.root_device_name)
    })
}

/// Where an instance's root volume keeps its data under `ns` (the overlay's upper layer) and
/// `vm` (its disk): beside the volume's file.
fn root_data(k: &Kumo, r: &InstanceRecord, c: &Context) -> PathBuf {
    let root = root_volume(r, c)
        .map(|v| v.id.clone())
        .unwrap_or_else(|| r.id.clone());
    k.blocks.root_data(&root)
}

/// The spec of an instance, read in one snapshot.
fn spec(k: &Kumo, cm: &Compute, ctx: &RequestContext, id: &str) -> Result<InstanceSpec, Fail> {
    let s = crate::scope(ctx);
    k.store.read(|v| {
        let r: InstanceRecord = v.get(s, id)?.ok_or_else(|| Fail(Ec2Error::internal()))?;
        let name = image_name(v, s, &r.image_id)?;
        let c = crate::repo::instance::context(v, s, &[&r])?;
        let (md, net) = metadata(v, s, ctx, &r, &c)?;
        let info = crate::instance_types::find(&r.instance_type);
        let vcpus = info
            .and_then(|i| i.v_cpu_info.as_ref()?.default_v_cpus)
            .unwrap_or(1)
            .max(1) as u32;
        let memory = info
            .and_then(|i| i.memory_info.as_ref()?.size_in_mi_b)
            .unwrap_or(512)
            .max(64) as u64;
        let volumes = c
            .volumes
            .iter()
            .filter_map(|vol| {
                let a = vol.attachments.iter().find(|a| {
                    a.instance_id == r.id
                        && a.device != r.root_device_name
                        && a.state != crate::records::volume::AttachState::Detaching
                })?;
                Some(volume_spec(k, &r, &vol.id, &a.device))
            })
            .collect();
        let root_vol = root_volume(&r, &c);
        // Nitro types show their instance store as NVMe disks (Xen types need ephemeral
        // mappings, which Kumo refuses at launch).
        let instance_store = info
            .filter(|i| i.hypervisor.as_deref().is_none_or(|h| h == "nitro"))
            .and_then(|i| i.instance_storage_info.as_ref()?.disks.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|d| {
                std::iter::repeat_n(
                    d.size_in_gb.unwrap_or(0).max(1) as u64,
                    d.count.unwrap_or(0).max(0) as usize,
                )
            })
            .collect();
        let root = root_vol.map(|v| {
            let mut spec = volume_spec(k, &r, &v.id, &r.root_device_name);
            if spec.device.is_empty() {
                spec.device = "/dev/nvme0n1".into();
            }
            spec
        });
        Ok(InstanceSpec {
            instance_store,
            root,
            root_size_gib: root_vol.map(|v| v.size as u64).unwrap_or(0),
            volumes,
            id: r.id.clone(),
            image_root: cm.image_root.clone(),
            root_data: root_data(k, &r, &c),
            hostname: md.meta.get("local-hostname").cloned().unwrap_or_default(),
            default_user: default_user(&name).into(),
            vcpus,
            memory_mib: memory,
            net,
            metadata: md,
        })
    })
}

/// Boots instances that just launched or started. One that cannot boot is terminated, with
/// AWS's internal-error reason, rather than left pretending to run.
pub fn boot(k: &Kumo, ctx: &RequestContext, ids: &[String]) {
    let cm = &k.compute;
    // The null driver's instances have no guest to boot: their state is the API's alone.
    if !cm.driver.runs_guests() {
        return;
    }
    let one = |id: &String| {
        cm.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), (ctx.account_id.clone(), ctx.region.clone()));
        let started = spec(k, cm, ctx, id)
            .map_err(|f| f.0.to_string())
            .and_then(|sp| cm.driver.start(&sp).map_err(|e| e.to_string()));
        if let Err(e) = started {
            tracing::error!(instance = %id, error = %e, "instance failed to boot; terminating it");
            fail_launch(k, ctx, id);
        }
    };
    // Each guest boots under its own lock in the driver, so a launch's instances boot side
    // by side: a boot mostly waits on the processes that set its guest up.
    for chunk in ids.chunks(PARALLEL_BOOTS) {
        if chunk.len() == 1 {
            one(&chunk[0]);
            continue;
        }
        std::thread::scope(|s| {
            for id in chunk {
                s.spawn(|| one(id));
            }
        });
    }
    if !ids.is_empty() {
        k.sync_firewall(ctx, reach_of_instances(k, ctx, ids));
    }
}

/// How many guests of one launch boot at once.
const PARALLEL_BOOTS: usize = 8;

fn fail_launch(k: &Kumo, ctx: &RequestContext, id: &str) {
    let s = crate::scope(ctx);
    let now = k.now_ms();
    let mut gone = Vec::new();
    let r = k.store.write(true, |tx| {
        let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
            return Ok(());
        };
        let Ok(Outcome::MoveTo(next)) = lifecycle::apply(r.state(), Action::LaunchFailed, true)
        else {
            // Stopped or terminated meanwhile: nothing left to fail.
            return Ok(());
        };
        crate::flows::lifecycle::leave(k, tx, s, &mut r, State::ShuttingDown, &mut gone)?;
        r.state = next;
        r.since_ms = now;
        r.state_reason = Some((
            "Server.InternalError".into(),
            "Server.InternalError: Internal error on launch".into(),
        ));
        tx.update(s, &r)?;
        Ok::<_, Fail>(())
    });
    if r.is_ok() {
        crate::host::delete_files(k, &gone);
    }
}

/// Tells the driver about lifecycle changes that committed: `(instance, from, to)`.
pub fn after(
    k: &Kumo,
    ctx: &RequestContext,
    changes: &[(String, State, State)],
    reboot: bool,
    force: bool,
) {
    let cm = &k.compute;
    let mut starts = Vec::new();
    for (id, before, after) in changes {
        let result = match after {
            _ if reboot => cm.driver.guest(id).map_or(Ok(()), |g| g.reboot()),
            State::Stopping | State::Stopped if *before != *after => cm.driver.stop(id, force),
            State::ShuttingDown | State::Terminated if *before != *after => cm.driver.destroy(id),
            State::Pending | State::Running
                if matches!(before, State::Stopped | State::Stopping) =>
            {
                starts.push(id.clone());
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::error!(instance = %id, error = %e, "the driver failed a lifecycle change");
        }
    }
    // Booting refreshes the security groups of the scope; without a boot, refresh here.
    if starts.is_empty() {
        if !changes.is_empty() {
            let ids: Vec<String> = changes.iter().map(|(id, _, _)| id.clone()).collect();
            k.sync_firewall(ctx, reach_of_instances(k, ctx, &ids));
        }
    } else if !cm.image.is_ready() {
        // Recorded as awaiting their boot (see `instance_actions`): they stay pending in the
        // queue until the base image is built.
        queue_boot(k, ctx, starts);
    } else {
        boot(k, ctx, &starts);
    }
}

/// GetConsoleOutput: what the guest wrote to its console, the last 64 KiB of it as AWS
/// keeps. Under the null driver no guest writes anything, and the output is absent.
pub fn console_output(
    k: &Kumo,
    ctx: &RequestContext,
    input: kumo_ec2_wire::shapes::GetConsoleOutputRequest,
) -> Result<kumo_ec2_wire::shapes::GetConsoleOutputResult, Ec2Error> {
    let s = crate::scope(ctx);
    let r = k
        .store
        .read(|v| crate::repo::instance::load(k, v, s, std::slice::from_ref(&input.instance_id)))
        .map_err(|f| f.0)?
        .remove(0);
    let output = k.compute.driver.console(&r.id).map(|bytes| {
        use base64::Engine;
        let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
        base64::engine::general_purpose::STANDARD.encode(tail)
    });
    Ok(kumo_ec2_wire::shapes::GetConsoleOutputResult {
        instance_id: Some(r.id.clone()),
        output,
        timestamp: Some(kumo_ec2_wire::DateTime(k.now_ms())),
    })
}

/// At start: boots again every instance the store says runs (the server stopped them when it
/// stopped, or it crashed and its sweep removed them). Stopped instances stay stopped.
pub fn recover(k: &Kumo) {
    let cm = &k.compute;
    if !cm.driver.runs_guests() {
        return;
    }
    cm.image.wait();
    let found = match k.store.scan_states("instance", &["pending", "running"]) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the instances to restart");
            return;
        }
    };
    for (account, region, id) in found {
        let ctx = RequestContext {
            account_id: account,
            region,
            ..RequestContext::default()
        };
        let s = crate::scope(&ctx);
        let launched = k
            .store
            .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, &id)?))
            .ok()
            .flatten()
            .is_some_and(|r| r.awaiting_boot);
        if launched {
            tracing::info!(instance = %id, "booting an instance that was waiting for its boot");
            // Never booted yet: it becomes running once it has.
            boot_launched(k, &ctx.account_id, &ctx.region, std::slice::from_ref(&id));
        } else {
            tracing::info!(instance = %id, "restarting an instance that was running");
            boot(k, &ctx, std::slice::from_ref(&id));
        }
    }
}

/// A guest stopped on its own. A reboot boots it again; a power-off is an instance-initiated
/// shutdown, which stops or terminates the instance as its `InstanceInitiatedShutdownBehavior`
/// says.
pub fn guest_event(k: &Kumo, ev: kumo_compute::GuestEvent) {
    let cm = &k.compute;
    if let Some(g) = cm.driver.guest(&ev.id) {
        g.reap();
    }
    let owner = cm
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&ev.id)
        .cloned();
    let Some((account, region)) = owner else {
        return;
    };
    let ctx = RequestContext {
        account_id: account.clone(),
        region: region.clone(),
        ..RequestContext::default()
    };
    if ev.reboot {
        boot(k, &ctx, std::slice::from_ref(&ev.id));
        // Terminated, or the whole state reset, while it booted again: it does not run on.
        let s = crate::scope(&ctx);
        let live = k
            .store
            .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, &ev.id)?))
            .ok()
            .flatten()
            .is_some_and(|r| r.state() == State::Running || r.state() == State::Pending);
        if !live {
            let _ = cm.driver.destroy(&ev.id);
        }
        return;
    }
    match crate::compute::guest_shutdown(k, &account, &region, &ev.id) {
        Ok(v) => {
            tracing::info!(instance = %ev.id, state = %v["state"], "instance-initiated shutdown")
        }
        Err(e) => {
            tracing::warn!(instance = %ev.id, error = %e, "cannot record the guest's power-off")
        }
    }
}

/// The security-group rules of one VPC, for the interfaces of the instances the driver runs.
fn firewall<V: Read>(
    k: &Kumo,
    cm: &Compute,
    v: &V,
    s: Scope,
    vpc_id: &str,
) -> Result<kumo_compute::firewall::Firewall, Fail> {
    use crate::records::net::{EniRecord, SecurityGroupRecord};
    use kumo_compute::firewall::{Firewall, Interface, Rule};
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let enis: Vec<EniRecord> = v.list(s, &q)?;
    let groups: Vec<SecurityGroupRecord> = v.list(s, &q)?;
    let addrs_of =
        |e: &EniRecord| -> Vec<String> { e.addresses.iter().map(|a| a.addr.clone()).collect() };
    // A group's members: the private addresses of every interface in it.
    let members = |g: &str| -> Vec<String> {
        enis.iter()
            .filter(|e| e.groups.iter().any(|x| x == g))
            .flat_map(addrs_of)
            .collect()
    };
    let rules = |rs: &[crate::records::net::SgRule]| -> Vec<Rule> {
        rs.iter()
            .map(|r| Rule {
                protocol: r.protocol.clone(),
                from_port: r.from_port,
                to_port: r.to_port,
                peers: match (&r.cidr, &r.group_id) {
                    (Some(c), _) => vec![c.clone()],
                    (None, Some(g)) => members(g),
                    (None, None) => Vec::new(),
                },
            })
            .collect()
    };
    let _ = k;
    let mut fw = Firewall::default();
    // Elastic IPs on the VPC's interfaces, and launch public IPs of running instances.
    let eips = crate::repo::address::by_interface(v, s)?;
    for a in &eips {
        if let Some(x) = &a.association {
            if enis.iter().any(|e| e.id == x.eni_id) {
                fw.public.push((a.public_ip.clone(), x.private_ip.clone()));
            }
        }
    }
    for e in &enis {
        let Some(a) = &e.attachment else { continue };
        if !cm.driver.is_running(&a.instance_id) {
            continue;
        }
        let mut iface = Interface {
            addrs: addrs_of(e)
                .into_iter()
                .chain(e.prefixes.iter().cloned())
                .collect(),
            ..Interface::default()
        };
        for g in groups.iter().filter(|g| e.groups.contains(&g.id)) {
            iface.ingress.extend(rules(&g.ingress));
            iface.egress.extend(rules(&g.egress));
        }
        fw.interfaces.push(iface);
        let primary = e
            .addresses
            .iter()
            .find(|x| x.primary)
            .map(|x| x.addr.clone());
        let launch_ip = v
            .get::<InstanceRecord>(s, &a.instance_id)?
            .and_then(|r| r.public_ip);
        if let (Some(p), Some(priv_ip), 0) = (launch_ip, primary, a.device_index) {
            // An Elastic IP on the primary address replaces the launch one.
            if !fw.public.iter().any(|(_, x)| *x == priv_ip) {
                fw.public.push((p, priv_ip));
            }
        }
    }
    Ok(fw)
}

/// The VPCs of these instances, for [`Kumo::sync_firewall`] (the scope when one cannot be
/// read: better a render too many than a firewall left behind).
pub fn reach_of_instances(k: &Kumo, ctx: &RequestContext, ids: &[String]) -> Reach {
    let s = crate::scope(ctx);
    let vpcs = k.store.read(|v| {
        let mut out = std::collections::BTreeSet::new();
        for id in ids {
            if let Some(r) = v.get::<InstanceRecord>(s, id)? {
                out.insert(r.vpc_id);
            }
        }
        Ok::<_, Fail>(out)
    });
    vpcs.map(Reach::Vpcs).unwrap_or(Reach::Scope)
}

/// The VPC of a network interface, as [`reach_of_instances`].
pub fn reach_of_eni(k: &Kumo, ctx: &RequestContext, id: &str) -> Reach {
    let s = crate::scope(ctx);
    k.store
        .read(|v| Ok::<_, Fail>(v.get::<crate::records::net::EniRecord>(s, id)?))
        .ok()
        .flatten()
        .map(|e| Reach::Vpcs([e.vpc_id].into()))
        .unwrap_or(Reach::Scope)
}

/// Re-renders the security groups of the scope's VPCs (`only` these, when given) and follows
/// them in the metadata of their running instances. Called by the firewall worker, or inline
/// when none runs ([`Kumo::sync_firewall`]).
pub fn refresh(k: &Kumo, ctx: &RequestContext, only: Option<&[String]>) {
    let cm = &k.compute;
    let s = crate::scope(ctx);
    let touched = |vpc: &str| only.is_none_or(|o| o.iter().any(|v| v == vpc));
    let built = k.store.read(|v| {
        let vpcs: Vec<VpcRecord> = v.list(s, &kumo_store::Query::default())?;
        let mut out = Vec::new();
        for vpc in vpcs.into_iter().filter(|x| touched(&x.id)) {
            out.push((vpc.id.clone(), firewall(k, cm, v, s, &vpc.id)?));
        }
        Ok::<_, Fail>(out)
    });
    match built {
        Ok(all) => {
            for (vpc, fw) in all {
                if let Err(e) = cm.driver.set_firewall(&vpc, &fw) {
                    tracing::error!(vpc = %vpc, error = %crate::error::chain(&e), "cannot apply the security groups");
                }
            }
        }
        Err(f) => tracing::error!(error = %f.0, "cannot read the security groups"),
    }
    // The metadata follows too: public-ipv4 after an Elastic IP moved, security groups.
    let running: Vec<String> = cm
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, (a, r))| *a == ctx.account_id && *r == ctx.region)
        .map(|(id, _)| id.clone())
        .filter(|id| cm.driver.is_running(id))
        .collect();
    for id in running {
        let md = k.store.read(|v| {
            let r: InstanceRecord = v.get(s, &id)?.ok_or_else(|| Fail(Ec2Error::internal()))?;
            if !touched(&r.vpc_id) {
                return Ok(None);
            }
            let c = crate::repo::instance::context(v, s, &[&r])?;
            Ok::<_, Fail>(Some(metadata(v, s, ctx, &r, &c)?.0))
        });
        if let Ok(Some(md)) = md {
            if let Some(g) = cm.driver.guest(&id) {
                g.set_metadata(md);
            }
        }
    }
}

/// One round of the CPU credit ledgers of the burstable instances the driver runs: spending
/// follows the CPU time the guest really used since the last round, earning the baseline; a
/// standard-mode instance whose balance reaches zero is capped at its baseline, and gets its
/// full vCPUs back once it has credits again (or runs unlimited).
pub fn credits_tick(k: &Kumo) {
    let cm = &k.compute;
    let owners: Vec<(String, (String, String))> = cm
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    for (id, (account, region)) in owners {
        if !cm.driver.is_running(&id) {
            cm.cpu.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            continue;
        }
        let Some(used) = cm.driver.guest(&id).and_then(|g| g.cpu_usage_ns()) else {
            continue;
        };
        let at = std::time::Instant::now();
        let last = cm
            .cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied();
        let capped = last.is_some_and(|l| l.2);
        let Some((prev_used, prev_at, _)) = last else {
            cm.cpu
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, (used, at, false));
            continue;
        };
        let elapsed = at.duration_since(prev_at).as_secs_f64();
        if elapsed <= 0.0 {
            continue;
        }
        // Percent of one vCPU (a busy core is 100).
        let usage_pct = used.saturating_sub(prev_used) as f64 / 1e9 / elapsed * 100.0;
        let s = Scope {
            account: &account,
            region: &region,
        };
        let now = k.now_ms();
        let throttle = k.store.write(true, |tx| {
            let Some(mut r) = tx.get::<InstanceRecord>(s, &id)? else {
                return Ok(None);
            };
            let (Some(b), Some(mode)) = (
                kumo_model::credits::burst(&r.instance_type),
                r.credit_specification.clone(),
            ) else {
                return Ok(None);
            };
            // Earnings at the baseline up to now (and any state change time has made)...
            r.settle(now, k.options.transition_ms);
            if r.state() != State::Running {
                tx.update(s, &r)?;
                return Ok(None);
            }
            // ... then what the guest really used since the last round.
            let mut l = kumo_model::credits::Ledger {
                balance: r.credit_balance,
                surplus: r.credit_surplus,
            };
            l.spend(&mode, elapsed / 60.0, usage_pct);
            r.credit_balance = l.balance;
            r.credit_surplus = l.surplus;
            r.cpu_usage_pct = usage_pct;
            tx.update(s, &r)?;
            // Held at the baseline (the vCPUs' baseline share, as a fraction of one core) once
            // the balance is spent; let go once a whole credit is banked again, so that an
            // instance earning exactly what it spends stays at its baseline instead of
            // flapping between rounds.
            let hold = mode == "standard"
                && if capped {
                    l.balance < 1.0
                } else {
                    l.throttled(&mode)
                };
            Ok::<_, Fail>(Some(hold.then(|| b.baseline_pct / 100.0 * b.vcpus as f64)))
        });
        let cap = match throttle {
            Ok(Some(cap)) => cap,
            Ok(None) => None,
            Err(f) => {
                tracing::warn!(instance = %id, error = %f.0, "cannot run the credit ledger");
                continue;
            }
        };
        if cap.is_some() != capped {
            let capping = cm
                .driver
                .guest(&id)
                .ok_or_else(|| kumo_compute::ComputeError::Unknown(id.clone()))
                .and_then(|g| g.set_cpu_cap(cap));
            match capping {
                Ok(()) => {
                    tracing::info!(instance = %id, cap = ?cap, "CPU credits: {}", if cap.is_some() { "out of credits, held at the baseline" } else { "credits again, full CPU" })
                }
                Err(e) => tracing::warn!(instance = %id, error = %e, "cannot cap the CPU"),
            }
        }
        cm.cpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, (used, at, cap.is_some()));
    }
}

/// SSM's answer to a bad Run Command call: its error code and message.
pub type SsmError = (String, String);

fn command_id() -> String {
    let mut b = [0u8; 16];
    let _ = openssl::rand::rand_bytes(&mut b);
    kumo_model::ids::format_uuid(b)
}

/// SSM SendCommand with `AWS-RunShellScript`: the commands run as root in each instance by
/// its agent.
pub fn send_command(
    k: &Kumo,
    account: &str,
    region: &str,
    document: &str,
    instance_ids: Vec<String>,
    commands: Vec<String>,
    comment: String,
) -> Result<SentCommand, SsmError> {
    let bad = |c: &str, m: String| (c.to_string(), m);
    if document.is_empty() {
        return Err(bad("ValidationException", "1 validation error detected: Value null at 'documentName' failed to satisfy constraint: Member must not be null".into()));
    }
    if document != "AWS-RunShellScript" {
        return Err(bad(
            "InvalidDocument",
            format!(
                "Document {document} does not exist in your account. Kumo runs AWS-RunShellScript."
            ),
        ));
    }
    if commands.is_empty() {
        return Err(bad(
            "InvalidParameters",
            "Parameter \"commands\" is required by AWS-RunShellScript.".into(),
        ));
    }
    if instance_ids.is_empty() {
        return Err(bad(
            "ValidationException",
            "Specify InstanceIds or Targets.".into(),
        ));
    }
    let s = Scope { account, region };
    // Only instances whose agent is online (running under a real driver) take commands.
    let offline: Vec<&str> = instance_ids
        .iter()
        .filter(|id| {
            let mine = k
                .store
                .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, id)?.is_some()))
                .unwrap_or(false);
            !mine || !k.compute.driver.is_running(id)
        })
        .map(String::as_str)
        .collect();
    if !offline.is_empty() {
        return Err(bad(
            "InvalidInstanceId",
            format!(
                "Instances [[{}]] not in a valid state for account {account}",
                offline.join(", ")
            ),
        ));
    }
    let cm = &k.compute;
    let id = command_id();
    let script = commands.join("\n") + "\n";
    for i in &instance_ids {
        cm.driver
            .guest(i)
            .ok_or_else(|| kumo_compute::ComputeError::Unknown(i.clone()))
            .and_then(|g| g.send_command(&id, &script))
            .map_err(|e| bad("InternalServerError", e.to_string()))?;
    }
    let sent = SentCommand {
        id: id.clone(),
        account: account.to_string(),
        instances: instance_ids,
        commands,
        comment,
        requested_ms: k.now_ms(),
    };
    cm.commands
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id, sent.clone());
    Ok(sent)
}

/// SSM GetCommandInvocation.
pub fn command_invocation(
    k: &Kumo,
    account: &str,
    command_id: &str,
    instance: &str,
) -> Result<Invocation, SsmError> {
    let missing = || ("InvocationDoesNotExist".to_string(), String::new());
    let cm = &k.compute;
    let command = cm
        .commands
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(command_id)
        .cloned()
        .filter(|c| c.account == account && c.instances.iter().any(|i| i == instance))
        .ok_or_else(missing)?;
    let result = cm
        .driver
        .command_result(instance, command_id)
        .unwrap_or_default();
    Ok(Invocation {
        command,
        instance: instance.to_string(),
        result,
    })
}

/// Hands a launch's instances to the boot thread; boots them here if there is none.
pub fn queue_boot(k: &Kumo, ctx: &RequestContext, ids: Vec<String>) {
    let cm = &k.compute;
    let sent = cm
        .boots
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .map(|tx| {
            tx.send((ctx.account_id.clone(), ctx.region.clone(), ids.clone()))
                .is_ok()
        });
    if sent != Some(true) {
        boot_launched(k, &ctx.account_id, &ctx.region, &ids);
    }
}

/// The boot thread's queue, taken once.
pub fn boot_queue(k: &Kumo) -> Option<std::sync::mpsc::Receiver<(String, String, Vec<String>)>> {
    k.compute
        .boot_queue
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
}

/// Boots launched instances that still wait for it, and marks each `running` from the moment
/// its guest started. One terminated meanwhile is not booted (or is destroyed at once if the
/// termination raced the boot).
pub fn boot_launched(k: &Kumo, account: &str, region: &str, ids: &[String]) {
    let cm = &k.compute;
    cm.image.wait();
    let ctx = RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..RequestContext::default()
    };
    let s = crate::scope(&ctx);
    let waiting = |id: &str| {
        k.store
            .read(|v| Ok::<_, Fail>(v.get::<InstanceRecord>(s, id)?))
            .ok()
            .flatten()
            .is_some_and(|r| r.awaiting_boot && r.state() == State::Pending)
    };
    let todo: Vec<String> = ids.iter().filter(|id| waiting(id)).cloned().collect();
    boot(k, &ctx, &todo);
    for id in &todo {
        if !cm.driver.is_running(id) {
            continue;
        }
        let now = k.now_ms();
        let still = k.store.write(true, |tx| {
            let Some(mut r) = tx.get::<InstanceRecord>(s, id)? else {
                return Ok(false);
            };
            if r.state() != State::Pending || !r.awaiting_boot {
                return Ok(false);
            }
            r.awaiting_boot = false;
            r.since_ms = now;
            tx.update(s, &r)?;
            Ok::<_, Fail>(true)
        });
        if !matches!(still, Ok(true)) {
            // Terminated (or stopped) while it booted: it does not run on.
            let _ = cm.driver.destroy(id);
        }
    }
}

/// The guest powers itself off: the instance stops or terminates as its
/// `InstanceInitiatedShutdownBehavior` says.
pub fn guest_shutdown(
    k: &Kumo,
    account: &str,
    region: &str,
    instance: &str,
) -> Result<serde_json::Value, Ec2Error> {
    let s = Scope { account, region };
    let now = k.now_ms();
    let mut gone = Vec::new();
    let state = k
        .store
        .write(true, |tx| {
            let mut r = crate::repo::instance::load(k, tx, s, &[instance.to_string()])?.remove(0);
            let terminate = r.shutdown_behavior == "terminate";
            let next = match lifecycle::apply(
                r.state(),
                lifecycle::Action::GuestShutdown { terminate },
                r.ebs_backed(),
            ) {
                Ok(lifecycle::Outcome::MoveTo(next)) => next,
                Ok(lifecycle::Outcome::NoChange) | Err(_) => {
                    return Err(Fail(Ec2Error::new(
                        "IncorrectInstanceState",
                        format!("The instance '{instance}' is not running."),
                    )))
                }
            };
            r.run_credits(now);
            r.state = next;
            r.since_ms = now;
            r.transition_reason = "Instance initiated shutdown".into();
            r.state_reason = Some((
                "Client.InstanceInitiatedShutdown".into(),
                "Client.InstanceInitiatedShutdown: Instance initiated shutdown".into(),
            ));
            crate::flows::lifecycle::leave(k, tx, s, &mut r, next, &mut gone)?;
            tx.update(s, &r)?;
            Ok(next)
        })
        .map_err(|f: Fail| f.0)?;
    // The guest is down (it powered off, or is told to now).
    let ctx = kumo_ec2_wire::RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..Default::default()
    };
    after(
        k,
        &ctx,
        &[(instance.to_string(), State::Running, state)],
        false,
        true,
    );
    crate::host::delete_files(k, &gone);
    Ok(serde_json::json!({ "instance_id": instance, "state": state.name() }))
}
