//! An `ns` guest's boot: its configuration in the root's upper layer, the helper and its
//! protocol (`ready` → the interface is plugged in → `go` → `mounted` → the disks go into
//! the guest's `/dev` → `boot` → `pid N`), and its cgroups.

use super::{Ns, NsUp};
use crate::fleet::{Host, Proc};
use crate::host::net::{self, ip, ip_quiet, short};
use crate::host::vpc::{lease_for, route_guest, GuestNet};
use crate::services::guest_files::guest_files;
use crate::storage::{attach_loop, guest_root, instance_store, show_device, with_device};
use crate::storage::{BootDevices, LiveVolume};
use crate::{ComputeError, InstanceSpec, Metadata};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

/// Boots a guest on its prepared network.
/// The environment variable that tells the init stage where lxcfs serves.
pub(crate) const LXCFS_ENV: &str = "KUMO_LXCFS";

pub(super) fn boot(
    ns: &Ns,
    host: &Host,
    net: GuestNet,
    spec: &InstanceSpec,
) -> Result<NsUp, ComputeError> {
    // What the guest's init reads besides the metadata: under `ns` its files are in the
    // root's upper layer before it starts (a `vm` guest fetches them).
    let files = guest_files(spec, &[], host.ca_pem());
    write_config(spec, &files)?;
    install_host_keys(ns, spec);
    let run = &net.run;
    let mut helper = Command::new(&ns.exe);
    // The init stage binds lxcfs's files over the guest's /proc (`KUMO_LXCFS`).
    match &ns.lxcfs {
        Some(l) => helper.env(LXCFS_ENV, &l.dir),
        None => helper.env_remove(LXCFS_ENV),
    };
    let mut helper = helper
        .arg("__ns-helper")
        .arg(&spec.image_root)
        .arg(&spec.root_data)
        .arg(run.join("root"))
        .arg(run.join("console.log"))
        .arg(&spec.hostname)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| ComputeError::io("start the instance helper", e))?;
    let netns = format!("{}i{}", host.prefix, short(&spec.id));
    let (stdin, stdout) = (helper.stdin.take(), helper.stdout.take());
    let started = stdin
        .zip(stdout)
        .ok_or_else(|| ComputeError::Guest("the helper has no stdin or stdout".into()))
        .and_then(|(stdin, stdout)| {
            let mut lines = BufReader::new(stdout);
            let mut stdin = stdin;
            let (pid, ip, devices) = drive(
                host,
                &net,
                spec,
                &files,
                helper.id(),
                &netns,
                &mut stdin,
                &mut lines,
            )?;
            Ok((stdin, pid, ip, devices))
        });
    match started {
        Ok((stdin, pid, ip, devices)) => Ok(NsUp {
            proc: Proc {
                spec: spec.clone(),
                net,
                child: helper,
                pid,
                ip,
                netns,
                exited: false,
                reboot_exit: false,
                files,
            },
            _stdin: stdin,
            volumes: devices.volumes,
            ephemeral: devices.ephemeral,
        }),
        Err(e) => {
            let _ = helper.kill();
            let _ = helper.wait();
            host.release(&spec.id, None, &netns);
            Err(e)
        }
    }
}

/// The guest's configuration files in its root's upper layer; a file this boot has not (a
/// key the metadata no longer serves) is not left behind.
fn write_config(spec: &InstanceSpec, files: &BTreeMap<String, String>) -> Result<(), ComputeError> {
    for (name, dir) in [
        ("instance.env", "etc/kumo"),
        ("launch-key", "etc/kumo"),
        ("ca.pem", "etc/kumo"),
        ("cloud-config.sh", "var/lib/kumo"),
    ] {
        let dir = spec.root_data.join("upper").join(dir);
        match files.get(name) {
            Some(text) => std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(dir.join(name), text))
                .map_err(|e| ComputeError::io("guest configuration", e))?,
            None => {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
    }
    Ok(())
}

/// Puts a set of host keys from the pool into the root's `/etc/ssh`; without one the guest
/// makes its own.
fn install_host_keys(ns: &Ns, spec: &InstanceSpec) {
    let Some(pool) = ns.host_keys.get() else {
        return;
    };
    match pool.install(&spec.root_data.join("upper/etc/ssh")) {
        Ok(true) => {}
        Ok(false) => {
            tracing::debug!(instance = %spec.id, "the host-key pool is empty; the guest makes its own keys")
        }
        Err(e) => {
            tracing::warn!(instance = %spec.id, error = %e, "cannot install pooled host keys; the guest makes its own")
        }
    }
}

/// The helper's protocol: its cgroups and interface once it is `ready`, its metadata, then
/// its disks once it has `mounted` the root, then `boot`. Returns init's pid, the guest's
/// address and its disks.
#[allow(clippy::too_many_arguments)]
fn drive(
    host: &Host,
    net: &GuestNet,
    spec: &InstanceSpec,
    files: &BTreeMap<String, String>,
    pid: u32,
    netns: &str,
    stdin: &mut ChildStdin,
    lines: &mut BufReader<ChildStdout>,
) -> Result<(i32, IpAddr, BootDevices), ComputeError> {
    let n = &spec.net;
    expect(lines, "ready")?;
    host.cgroups.limit(spec, pid, 0)?;
    ip_quiet(&["netns", "delete", netns]);
    ip(&["netns", "attach", netns, &pid.to_string()])?;
    let host_side = <super::Ns as crate::fleet::Kind>::link(host, &spec.id);
    ip(&[
        "-n",
        &net.vpc_ns,
        "link",
        "add",
        &host_side,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        netns,
    ])?;
    // The interface has its MAC; its addresses come from the subnet's DHCP server (the
    // primary) and the metadata (the secondaries), as the guest's init asks.
    crate::host::net::ip_batch_in(
        netns,
        &[
            "link set lo up".to_string(),
            format!("link set eth0 address {}", n.mac),
        ],
    )?;
    route_guest(&net.vpc_ns, &host_side, n)?;
    net.leases.set(&n.mac, lease_for(spec)?);
    for nic in &spec.interfaces {
        plug(host, &net.vpc_ns, netns, &spec.id, nic)?;
    }
    let addr: IpAddr = n
        .private_ip
        .parse()
        .map_err(|_| ComputeError::Guest(format!("bad address {}", n.private_ip)))?;
    net.imds.set(
        addr,
        Metadata {
            guest: files.clone(),
            ..spec.metadata.clone()
        },
    );
    net.imds
        .set_aliases(addr, &crate::services::imds::v6_of(&n.prefixes));
    writeln!(stdin, "go").map_err(|e| ComputeError::io("start the guest", e))?;
    // The helper has mounted the root and its /dev: the disks go in before init runs.
    expect(lines, "mounted")?;
    let mountpoint = std::path::absolute(net.run.join("root"))
        .map_err(|e| ComputeError::io("the guest's root", e))?;
    let root = guest_root(pid as i32).join(mountpoint.strip_prefix("/").unwrap_or(&mountpoint));
    let devices = devices_at_boot(&net.run, spec, &root);
    let started = writeln!(stdin, "boot")
        .map_err(|e| ComputeError::io("start the guest", e))
        .and_then(|_| read_line(lines))
        .and_then(|line| {
            line.strip_prefix("pid ")
                .and_then(|p| p.trim().parse::<i32>().ok())
                .ok_or_else(|| ComputeError::Guest(format!("the helper said {line:?}")))
        });
    match started {
        Ok(init_pid) => Ok((init_pid, addr, devices)),
        Err(e) => {
            devices.release();
            Err(e)
        }
    }
}

/// The devices a guest gets at each boot: its instance store disks (loop devices on their
/// files), then its attached volumes.
///
/// They are in place before the guest's init runs, as a machine's disks are there when it
/// powers on: the helper has mounted the guest's `/dev` (under `root`, the guest's `/` seen
/// from the host) and waits for them. A device that cannot be given is logged and left out;
/// the guest boots without it.
fn devices_at_boot(run: &Path, spec: &InstanceSpec, root: &Path) -> BootDevices {
    let mut out = BootDevices::default();
    match instance_store(run, spec) {
        Ok(disks) => {
            for d in disks {
                let shown = attach_loop(&d.file).and_then(|dev| {
                    show_device(root, &dev, &d)
                        .map(|_| dev.clone())
                        .inspect_err(|_| {
                            let _ = net::run("losetup", &["-d", &dev]);
                        })
                });
                match shown {
                    Ok(dev) => out.ephemeral.push((d, dev)),
                    Err(e) => {
                        tracing::error!(instance = %spec.id, error = %e, "cannot give the guest its instance store")
                    }
                }
            }
        }
        Err(e) => {
            tracing::error!(instance = %spec.id, error = %e, "cannot make the instance store")
        }
    }
    for v in &spec.volumes {
        let v = &with_device(
            v,
            out.volumes
                .values()
                .map(|l| &l.spec)
                .chain(out.ephemeral.iter().map(|(d, _)| d)),
        );
        match LiveVolume::start(run, root, v) {
            Ok(lv) => {
                out.volumes.insert(v.volume_id.clone(), lv);
            }
            Err(e) => {
                tracing::error!(instance = %spec.id, volume = %v.volume_id, error = %e, "cannot attach a volume at boot")
            }
        }
    }
    out
}

fn read_line(r: &mut BufReader<ChildStdout>) -> Result<String, ComputeError> {
    let mut line = String::new();
    r.read_line(&mut line)
        .map_err(|e| ComputeError::io("read from the helper", e))?;
    if line.is_empty() {
        return Err(ComputeError::Guest(
            "the instance helper exited early".into(),
        ));
    }
    Ok(line.trim().to_string())
}

fn expect(r: &mut BufReader<ChildStdout>, want: &str) -> Result<(), ComputeError> {
    let line = read_line(r)?;
    if line == want {
        Ok(())
    } else {
        Err(ComputeError::Guest(format!(
            "the helper said {line:?}, not {want}"
        )))
    }
}

/// The VPC namespace's end of an instance's interface at `device_index` (1 and up).
pub(crate) fn nic_link(host: &Host, id: &str, device_index: u32) -> String {
    format!(
        "{}n{}{device_index}",
        host.prefix,
        crate::host::net::short(id)
    )
}

/// Plugs an interface into a guest: a veth whose guest end is `eth<index>` with the
/// interface's MAC (the guest brings it up and takes its addresses from the metadata, as
/// ec2-net-utils does), and whose VPC end routes the interface's addresses, in its own
/// subnet of the VPC.
pub(crate) fn plug(
    host: &Host,
    vpc_ns: &str,
    netns: &str,
    id: &str,
    nic: &crate::Nic,
) -> Result<(), ComputeError> {
    let n = &nic.net;
    host.ensure_subnet(n)?;
    let link = nic_link(host, id, nic.device_index);
    let guest_if = format!("eth{}", nic.device_index);
    ip_quiet(&["-n", vpc_ns, "link", "delete", &link]);
    ip(&[
        "-n", vpc_ns, "link", "add", &link, "type", "veth", "peer", "name", &guest_if, "netns",
        netns,
    ])?;
    crate::host::net::ip_batch_in(netns, &[format!("link set {guest_if} address {}", n.mac)])?;
    route_guest(vpc_ns, &link, n)?;
    tracing::info!(instance = id, interface = %guest_if, mac = %n.mac, address = %n.private_ip, "interface plugged");
    Ok(())
}

/// Unplugs an interface: deleting the VPC end of its veth takes the guest's end with it.
pub(crate) fn unplug(host: &Host, vpc_ns: &str, id: &str, nic: &crate::Nic) {
    ip_quiet(&[
        "-n",
        vpc_ns,
        "link",
        "delete",
        &nic_link(host, id, nic.device_index),
    ]);
    tracing::info!(
        instance = id,
        interface = nic.device_index,
        "interface unplugged"
    );
}
