//! Compute drivers: where instances really run. Knows nothing of EC2's API; the control plane
//! tells a driver what to run (an [`InstanceSpec`]) and the driver reports what it really did.
//!
//! - `ns` ([`ns::NsDriver`]): each instance is a set of Linux namespaces (mount, pid, net, uts,
//!   ipc) whose root is an overlay on the image's root file system, with a routed veth into
//!   its VPC's network namespace, and cgroups for its type's limits.
//! - `vm` ([`vm::VmDriver`]): each instance is a QEMU virtual machine with a tap in its VPC's
//!   namespace.
//! - `null` ([`null::NullDriver`]): no guests; the control plane keeps instances as API state.
//!
//! The modules: `host` (namespaces, links, nftables, cgroups: the only code that runs `ip`
//! or `nft` or touches `/sys/fs/cgroup`), `services` (what a VPC serves its guests: metadata,
//! DHCP, DNS, the firewall's rules, guest files, host keys), `storage` (live volumes, the
//! instance store, QMP), `fleet` (what `ns` and `vm` share: the guests' map, their boots and
//! watcher), and the three drivers, which never use each other.

mod fleet;
pub mod host;
pub mod ns;
pub mod null;
pub mod services;
mod storage;
pub mod vm;

pub use services::firewall;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An error with its causes, for the log: `mount proc on /x/proc: Permission denied`. Causes
/// are logged once, where an error ends a step or becomes `InternalError`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("{0}")]
    Guest(String),
    #[error("no instance {0} runs here")]
    Unknown(String),
}

impl ComputeError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ComputeError::Io {
            what: what.into(),
            source,
        }
    }
}

/// An instance's network: its primary interface in its subnet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetSpec {
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub subnet_id: String,
    /// The subnet's CIDR, e.g. `10.0.1.0/24`; its first host address is the gateway.
    pub subnet_cidr: String,
    pub mac: String,
    pub private_ip: String,
    pub secondary_ips: Vec<String>,
    /// Delegated prefixes (`10.0.1.16/28`), routed to the instance.
    pub prefixes: Vec<String>,
}

/// Instance metadata, as the IMDS serves it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// `meta-data/…` paths (without the prefix) and their values; directory listings are
    /// derived from the paths.
    pub meta: BTreeMap<String, String>,
    /// `dynamic/…` paths and values.
    pub dynamic: BTreeMap<String, String>,
    pub user_data: Option<Vec<u8>>,
    /// `optional` or `required` (IMDSv2 only).
    pub http_tokens: String,
    /// `enabled` or `disabled`.
    pub http_endpoint: String,
    /// The IP TTL of token responses.
    pub hop_limit: u32,
    /// Whether the metadata answers on its IPv6 address (`[fd00:ec2::254]`) too, for the
    /// instance's IPv6 addresses (`HttpProtocolIpv6`).
    #[serde(default)]
    pub http_protocol_ipv6: bool,
    /// Kumo's own files for the guest's init, served at `/kumo/guest/<name>` beside the
    /// metadata (whatever the endpoint and token settings): `instance.env`,
    /// `cloud-config.sh`, and `dev/<serial>`, the EC2 names of a disk's attachment.
    #[serde(default)]
    pub guest: BTreeMap<String, String>,
}

/// A data volume to attach to a running guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub volume_id: String,
    /// The volume's qcow2 file.
    pub file: PathBuf,
    /// The device node the guest sees: `/dev/nvme1n1` on Nitro types, `/dev/xvdf` on Xen ones.
    pub device: String,
    /// The name the attachment was made with (`/dev/sdf`), linked to the device as Amazon
    /// Linux's udev rules link it; None when it is the device itself.
    pub alias: Option<String>,
    /// The I/O the volume delivers; all zero is unlimited (the instance store).
    #[serde(default)]
    pub limits: IoLimits,
    /// A Multi-Attach volume: every guest that has it reads and writes one export of it
    /// (see `storage::Export`), never the file itself, whichever driver runs them.
    #[serde(default)]
    pub shared: bool,
}

/// A volume's I/O limits, as QEMU's throttle groups take them: sustained operations and bytes
/// per second, each with an optional burst rate and the seconds a full bucket lasts at it;
/// an operation counts up to `io_size` bytes. Zero is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoLimits {
    pub iops: u64,
    pub iops_max: u64,
    pub iops_max_secs: u64,
    pub bps: u64,
    pub bps_max: u64,
    pub bps_max_secs: u64,
    pub io_size: u64,
}

impl IoLimits {
    /// The limits as a QEMU `ThrottleLimits` object (a throttle group's `limits`).
    pub fn qemu(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        let mut put = |k: &str, v: u64| {
            if v > 0 {
                o.insert(k.into(), v.into());
            }
        };
        put("iops-total", self.iops);
        if self.iops_max > self.iops {
            put("iops-total-max", self.iops_max);
            put("iops-total-max-length", self.iops_max_secs.max(1));
        }
        put("bps-total", self.bps);
        if self.bps_max > self.bps {
            put("bps-total-max", self.bps_max);
            put("bps-total-max-length", self.bps_max_secs.max(1));
        }
        put("iops-size", self.io_size);
        serde_json::Value::Object(o)
    }
}

/// What to run: everything a driver needs, decided by the control plane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub id: String,
    /// The image's root file system (read-only lower layer).
    pub image_root: PathBuf,
    /// Where the root volume's data lives (the writable layer); it survives stop and start.
    pub root_data: PathBuf,
    pub hostname: String,
    /// The user the launch key is installed for.
    pub default_user: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub net: NetSpec,
    pub metadata: Metadata,
    /// Data volumes attached at boot.
    pub volumes: Vec<VolumeSpec>,
    /// The root volume, as the guest names it (`/dev/nvme0n1`, or `/dev/xvda` on Xen types),
    /// and its size. The `vm` driver keeps its disk in `root_data`, not in `file`.
    #[serde(default)]
    pub root: Option<VolumeSpec>,
    #[serde(default)]
    pub root_size_gib: u64,
    /// The type's instance store disks (their size in GB, 10^9 bytes, as the type lists it),
    /// NVMe on Nitro types: blank at each start, kept across a reboot, gone at a stop.
    #[serde(default)]
    pub instance_store: Vec<u64>,
    /// The interfaces attached besides the primary (`eth1`…), by device index.
    #[serde(default)]
    pub interfaces: Vec<Nic>,
    /// The VPC's DHCP options.
    #[serde(default)]
    pub dhcp: DhcpSettings,
}

/// What a VPC's DHCP options set gives its guests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DhcpSettings {
    /// Whether these come from the VPC's set; a spec from before sets existed has none, and
    /// its guests get the VPC's resolver.
    #[serde(default)]
    pub explicit: bool,
    /// `domain-name-servers`: addresses, or `AmazonProvidedDNS` for the VPC's resolver.
    #[serde(default)]
    pub name_servers: Vec<String>,
    /// `domain-name`: the resolver's search domains.
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub ntp_servers: Vec<String>,
}

impl DhcpSettings {
    /// The name servers as addresses, `AmazonProvidedDNS` as the VPC's resolver `vpc_dns`.
    pub fn resolvers(&self, vpc_dns: Option<std::net::Ipv4Addr>) -> Vec<std::net::Ipv4Addr> {
        if !self.explicit {
            return vpc_dns.into_iter().collect();
        }
        let mut out = Vec::new();
        for n in &self.name_servers {
            let a = if n == "AmazonProvidedDNS" {
                vpc_dns
            } else {
                n.parse().ok()
            };
            if let Some(a) = a.filter(|a| !out.contains(a)) {
                out.push(a);
            }
        }
        out
    }
}

/// An interface attached at a device index above 0: the guest sees it as `eth<index>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    pub device_index: u32,
    pub net: NetSpec,
}

/// Counters of a guest's interfaces, summed over them all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct NetCounters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
}

/// A block device's counters since it appeared: the kernel's `/sys/block/*/stat` fields, or
/// QEMU's block statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BlockCounters {
    pub read_ops: u64,
    pub write_ops: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    /// Time the completed reads and writes took, summed over them.
    pub read_time_ms: u64,
    pub write_time_ms: u64,
    /// Time with at least one request in flight.
    pub busy_ms: u64,
    /// Requests in flight, integrated over time (their average count is its rate).
    pub queue_ms: u64,
}

impl BlockCounters {
    pub fn add(&mut self, o: &BlockCounters) {
        self.read_ops += o.read_ops;
        self.write_ops += o.write_ops;
        self.read_bytes += o.read_bytes;
        self.write_bytes += o.write_bytes;
        self.read_time_ms += o.read_time_ms;
        self.write_time_ms += o.write_time_ms;
        self.busy_ms += o.busy_ms;
        self.queue_ms += o.queue_ms;
    }
}

/// What a guest's disks have done: each data volume's device, and its instance store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskCounters {
    pub volumes: Vec<(String, BlockCounters)>,
    pub instance_store: Option<BlockCounters>,
}

/// A command run by the guest's agent: `Pending` until the agent takes it, `InProgress`, then
/// `Success` or `Failed` with its exit status and output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResult {
    pub status: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Default for CommandResult {
    fn default() -> Self {
        CommandResult {
            status: "Pending".into(),
            code: -1,
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

/// A guest that stopped on its own: it powered off (`poweroff`, `shutdown -h`), or asked for a
/// reboot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEvent {
    pub id: String,
    pub reboot: bool,
}

/// A driver: the port the control plane boots guests through. Every call reports what
/// really happened.
pub trait Driver: Send + Sync {
    fn name(&self) -> &'static str;
    /// How this driver falls short of real hardware on this host, if it does (a `vm` driver
    /// without KVM): `(code, message)` for the instances' state reason.
    fn degraded(&self) -> Option<(String, String)> {
        None
    }
    /// Whether guests really run here (false for the null driver: instances are API state).
    fn runs_guests(&self) -> bool {
        true
    }
    /// The highest device index an interface can have here.
    fn max_device_index(&self) -> u32 {
        u32::MAX
    }
    /// Whether a guest of an image of this architecture (`x86_64`, `arm64`, …, as EC2 names
    /// them) runs here. A driver runs its host's kind of CPU only: an `ns` guest shares the
    /// host's kernel, and `vm` has no arm64 emulation yet. The null driver runs nothing, so
    /// anything.
    fn runs_architecture(&self, arch: &str) -> bool {
        host_runs(arch)
    }
    /// Boots an instance (first launch, or a start after a stop); an instance already
    /// running or booting is left as it is.
    fn start(&self, spec: &InstanceSpec) -> Result<(), ComputeError>;
    /// The instance's guest, while it runs.
    fn guest(&self, id: &str) -> Option<Arc<dyn Guest>>;
    /// Every running guest.
    fn guests(&self) -> Vec<Arc<dyn Guest>>;
    /// Stops the instance if it runs and releases everything it held on the host, its
    /// console log and instance store included (a terminated instance's).
    fn destroy(&self, id: &str) -> Result<(), ComputeError>;
    /// The guest's console output so far (kept after it stopped).
    fn console(&self, id: &str) -> Option<Vec<u8>>;
    /// Where a command sent to an instance's agent stands (kept after the guest stopped).
    fn command_result(&self, id: &str, command_id: &str) -> Option<CommandResult>;
    /// Replaces a VPC's security-group rules, at once and atomically.
    fn set_firewall(&self, vpc_id: &str, fw: &firewall::Firewall) -> Result<(), ComputeError>;
    /// Replaces the host's active VPC peering connections: each is a link between its two
    /// VPCs' namespaces (made once both have one here), through which each routes the
    /// other's CIDRs. Which subnets may send through it is the firewall's
    /// ([`firewall::Peering`]).
    fn set_peerings(&self, _links: &[PeeringLink]) -> Result<(), ComputeError> {
        Ok(())
    }
    /// Where the interface endpoints' connections go once their TLS is ended: Kumo's own API
    /// listener. Until it is given, endpoints are not served.
    fn serve_endpoints(&self, _upstream: std::net::SocketAddr) {}
    /// The host's own address on its link into a VPC that has had a guest here: what the host
    /// sends from it reaches that VPC's private addresses, even where another VPC here
    /// overlaps them (`kumo ssh` binds to it). None where guests run nowhere.
    fn host_source(&self, _vpc_id: &str) -> Option<String> {
        None
    }
    /// The stream of guests that stopped on their own; taken once, by the control plane.
    fn events(&self) -> Option<std::sync::mpsc::Receiver<GuestEvent>>;
    /// Stops every instance and removes every host resource (server shutdown, reset).
    fn shutdown_all(&self);
}

/// An active VPC peering connection: its id and each side's VPC and CIDRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeeringLink {
    pub id: String,
    pub a_vpc: String,
    pub a_cidrs: Vec<String>,
    pub b_vpc: String,
    pub b_cidrs: Vec<String>,
}

/// Whether this host's CPU runs guests of `arch`.
pub fn host_runs(arch: &str) -> bool {
    match std::env::consts::ARCH {
        "x86_64" => matches!(arch, "x86_64" | "i386" | "x86_64_mac"),
        "aarch64" => matches!(arch, "arm64" | "arm64_mac"),
        _ => false,
    }
}

/// One running guest, behind a lock of its own: an operation on one never waits for
/// another, and none holds a lock across a boot, a shutdown's grace period or the guest's
/// reply.
pub trait Guest: Send + Sync {
    fn id(&self) -> &str;
    /// Whether its process is alive (false once it stopped, on its own or not).
    fn is_running(&self) -> bool;
    /// Shuts it down cleanly (forcefully with `force`, or when it does not stop in time) and
    /// waits until it is down. Its root data stays; its instance store goes.
    fn stop(&self, force: bool) -> Result<(), ComputeError>;
    /// Restarts it in place (its instance store stays).
    fn reboot(&self) -> Result<(), ComputeError>;
    /// Releases what it held on the host after it stopped on its own (its root data stays,
    /// and its instance store too when it asked for a reboot).
    fn reap(&self);
    /// Replaces its metadata (an address or a group changed).
    fn set_metadata(&self, metadata: Metadata);
    /// Its primary interface's secondary addresses and delegated prefixes changed: the VPC
    /// routes them to it (and stops routing the ones it gave up). The guest adds and removes
    /// the addresses itself, from its metadata, as Amazon Linux's ec2-net-utils does.
    fn set_addresses(
        &self,
        secondary_ips: Vec<String>,
        prefixes: Vec<String>,
    ) -> Result<(), ComputeError>;
    /// The interfaces attached besides the primary changed: new ones appear in the guest (a
    /// link named `eth<index>` with the interface's MAC), detached ones leave it, and the VPC
    /// routes each one's addresses to it.
    fn set_interfaces(&self, nics: Vec<Nic>) -> Result<(), ComputeError>;
    /// Attaches a data volume: its device node appears in the guest.
    fn attach_volume(&self, v: &VolumeSpec) -> Result<(), ComputeError>;
    /// Whether the guest has the volume mounted (a detach then waits, as AWS's does, unless
    /// forced).
    fn volume_busy(&self, volume_id: &str) -> bool;
    /// Detaches a data volume.
    fn detach_volume(&self, volume_id: &str) -> Result<(), ComputeError>;
    /// Grows an attached volume to `bytes`; the guest's device grows with it. False when the
    /// guest has no such volume.
    fn grow_volume(&self, volume_id: &str, bytes: u64) -> Result<bool, ComputeError>;
    /// Sets an attached volume's I/O limits (a ModifyVolume of its type, IOPS or throughput);
    /// the guest's I/O follows at once. False when the guest has no such volume.
    fn set_volume_limits(&self, volume_id: &str, limits: IoLimits) -> Result<bool, ComputeError>;
    /// The volume's file was just frozen as a snapshot and a new, empty overlay put in its
    /// place: the guest's writes move to the overlay from now on. False when the guest has no
    /// such volume.
    fn volume_snapshotted(&self, volume_id: &str) -> Result<bool, ComputeError>;
    /// Pauses (or resumes) the guest when its root disk is this volume's and a file the
    /// snapshot copies (`vm`): paused, its writes are flushed and none land during the copy.
    /// False when its root is not that volume's file.
    fn hold_root(&self, _volume_id: &str, _pause: bool) -> Result<bool, ComputeError> {
        Ok(false)
    }
    /// Queues a shell script for the guest's agent (Kumo's run-command channel).
    fn send_command(&self, command_id: &str, script: &str) -> Result<(), ComputeError>;
    /// Asks the guest's agent for a Session Manager session: a shell as `ssm-user` on a PTY
    /// of `rows` × `cols`, whose bytes arrive (both ways) on the stream the receiver gives
    /// once the agent has connected back.
    fn open_session(
        &self,
        session_id: &str,
        rows: u16,
        cols: u16,
    ) -> Result<services::imds::SessionWait, ComputeError>;
    /// Tells the guest's agent the new size of a session's terminal.
    fn resize_session(&self, session_id: &str, rows: u16, cols: u16) -> Result<(), ComputeError>;
    /// CPU time it has used since it booted, in nanoseconds.
    fn cpu_usage_ns(&self) -> Option<u64>;
    /// What its interfaces have carried since they were plugged, as the guest sees it (bytes
    /// and packets in are what it received). `None` when it cannot be read.
    fn net_counters(&self) -> Option<NetCounters> {
        None
    }
    /// What its data volumes' devices and its instance store have done.
    fn disk_counters(&self) -> DiskCounters {
        DiskCounters::default()
    }
    /// The VPC's DHCP options changed: the guest gets them at its next lease (a `vm` guest's
    /// renewal, any guest's next boot).
    fn set_dhcp(&self, _dhcp: DhcpSettings) -> Result<(), ComputeError> {
        Ok(())
    }
    /// Caps its CPU at `cores` (a fraction of one core: a burstable instance held at its
    /// baseline), or lifts the cap back to its vCPUs with `None`.
    fn set_cpu_cap(&self, cores: Option<f64>) -> Result<(), ComputeError>;
}

impl dyn Driver {
    /// Whether the instance's guest runs here.
    pub fn is_running(&self, id: &str) -> bool {
        self.guest(id).is_some_and(|g| g.is_running())
    }

    /// Stops the instance's guest if it runs here.
    pub fn stop(&self, id: &str, force: bool) -> Result<(), ComputeError> {
        match self.guest(id) {
            Some(g) => g.stop(force),
            None => Ok(()),
        }
    }
}
