//! The `ns` driver: instances as Linux namespaces.
//!
//! Per VPC, a network namespace `<p>v<vpc>` that routes between its subnets (each subnet's
//! gateway address on its loopback, as the VPC router has), runs the metadata service on
//! 169.254.169.254 and the subnets' DHCP and DNS, holds the security groups' nftables rules
//! on its forward path, and has a veth to the host with a host route for the VPC's CIDR. Per
//! instance, a helper process (see [`crate::guest`]) whose namespaces hold the guest; its
//! network namespace is named `<p>i<instance>` and gets a veth whose VPC end is routed, not
//! bridged (proxy ARP and a /32 route per address: [`route_guest`]), so all traffic between
//! instances crosses the firewall. cgroups (v1) cap its CPU, memory and processes. `<p>` is
//! `k` and two hex digits of the data directory, so two servers on one machine keep apart,
//! and each server claims its prefix ([`crate::claims`]) so that what a killed one left is
//! swept by the next.
//!
//! The same driver runs `vm` guests (see [`crate::vm`]): everything around the guest is shared,
//! and the guest is a QEMU process with a tap in the VPC's namespace instead of a helper with
//! a veth.

use crate::dhcp::{Lease, Leases};
use crate::host::{
    apply_rules, bind_in, bind_udp_in, cpu_list, join_cpus, kill_cgroup, sweep, CGROUP, CONTROLLERS,
};
use crate::imds::Imds;
use crate::net::{self, ip, ip_quiet, short};
use crate::storage::{
    attach_loop, grow_live, guest_root, instance_store, show_device, snapshot_live, with_device,
    BootDevices, LiveVolume,
};
use crate::vm::{self, VmConfig};
use crate::{ComputeError, Driver, GuestEvent, InstanceSpec, Metadata, VolumeSpec};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Vpc {
    ns: String,
    /// The address of the namespace's end of the host link (the host's gateway into it).
    gateway: String,
    /// Public addresses the host routes into this namespace.
    public: Vec<String>,
    /// The host's end of the link into the namespace.
    host_if: String,
    imds: Arc<Imds>,
    /// The metadata listener's task: its socket keeps the namespace alive until aborted.
    imds_task: tokio::task::JoinHandle<()>,
    /// The DNS resolver's task (likewise), and the public addresses it knows.
    dns_task: tokio::task::JoinHandle<()>,
    dns_public: Arc<Mutex<Vec<(String, String)>>>,
    /// The subnets' DHCP server (likewise), and its leases.
    dhcp: Arc<Leases>,
    dhcp_task: tokio::task::JoinHandle<()>,
    subnets: Vec<String>,
}

impl Vpc {
    fn remove(self) {
        self.imds_task.abort();
        self.dns_task.abort();
        self.dhcp_task.abort();
        for p in &self.public {
            ip_quiet(&["route", "delete", &format!("{p}/32")]);
        }
        ip_quiet(&["link", "delete", &self.host_if]);
        ip_quiet(&["netns", "delete", &self.ns]);
    }
}

/// What a guest holds of its VPC, taken under the driver's lock when it boots, so that
/// nothing later (its shutdown, its cleanup) needs the lock to find it.
#[derive(Clone)]
struct GuestNet {
    imds: Arc<Imds>,
    leases: Arc<Leases>,
    vpc_ns: String,
    run: PathBuf,
}

struct Running {
    spec: InstanceSpec,
    net: GuestNet,
    /// The `ns` helper, or the `vm` guest's QEMU.
    helper: Child,
    /// Kept open: closing it would not stop the helper, but keeps the protocol simple.
    _stdin: Option<ChildStdin>,
    /// The guest's init (`ns`), or QEMU (`vm`).
    init_pid: i32,
    /// A `vm` guest's monitor, tap and hot-plugged disks.
    vm: Option<VmGuest>,
    netns: String,
    ip: IpAddr,
    /// Set once the guest was seen to exit on its own (and reported).
    exited: bool,
    /// Data volumes attached live, by volume id.
    volumes: HashMap<String, LiveVolume>,
    /// Instance store disks (`ns`: with their loop devices).
    ephemeral: Vec<(VolumeSpec, String)>,
    /// The guest exited asking for a reboot (its instance store stays).
    reboot_exit: bool,
    /// Kumo's files for the guest, served beside its metadata.
    guest: BTreeMap<String, String>,
}

struct VmGuest {
    qmp: PathBuf,
    tap: String,
    /// Data volumes by id: their spec and root port.
    disks: HashMap<String, (VolumeSpec, u32)>,
}

/// A guest's place: `None` once it has been taken out to shut down.
type Slot = Arc<Mutex<Option<Running>>>;

/// The driver's shared state. Its lock is held only to read or change these maps: never
/// across a boot, a shutdown's grace period or a guest's reply.
#[derive(Default)]
struct State {
    vpcs: HashMap<String, Vpc>,
    /// Each guest behind a lock of its own: an operation on one never waits for another.
    instances: HashMap<String, Slot>,
    /// Instances whose guest is booting now (a second start waits its turn in the control
    /// plane; here it is a no-op).
    booting: std::collections::HashSet<String>,
    links: u32,
}

pub struct NsDriver {
    prefix: String,
    dir: PathBuf,
    exe: PathBuf,
    rt: tokio::runtime::Handle,
    state: Arc<Mutex<State>>,
    events: Mutex<Option<std::sync::mpsc::Receiver<GuestEvent>>>,
    /// Set when this driver runs `vm` guests.
    vm: Option<VmConfig>,
    /// SSH host keys made ahead of boots, when a pool is set up.
    host_keys: Option<Arc<crate::hostkeys::HostKeys>>,
}

/// The exit status of a guest's init that asks for a reboot (`reboot` in the guest).
const REBOOT_STATUS: i32 = 100;

/// Watches for guests that exit without the server asking, twice a second.
fn watch(state: std::sync::Weak<Mutex<State>>, tx: std::sync::mpsc::Sender<GuestEvent>) {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let Some(state) = state.upgrade() else { return };
        let slots: Vec<(String, Slot)> = lock(&state)
            .instances
            .iter()
            .map(|(id, g)| (id.clone(), g.clone()))
            .collect();
        drop(state);
        for (id, slot) in slots {
            // A guest busy with an operation is looked at next round.
            let Ok(mut g) = slot.try_lock() else { continue };
            let Some(r) = g.as_mut().filter(|r| !r.exited) else {
                continue;
            };
            if let Ok(Some(status)) = r.helper.try_wait() {
                r.exited = true;
                let reboot = status.code() == Some(REBOOT_STATUS);
                r.reboot_exit = reboot;
                tracing::info!(instance = %id, reboot, "the guest stopped on its own");
                if tx.send(GuestEvent { id, reboot }).is_err() {
                    return;
                }
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why `ns` cannot run on this host, if it cannot: it needs root, overlayfs, network
/// namespaces and iproute2.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not running as root".into());
    }
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.contains("overlay") {
        return Some("the kernel has no overlayfs".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (`ip`) is not installed".into());
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("nftables (`nft`), which enforces security groups, is not installed".into());
    }
    None
}

impl NsDriver {
    /// A driver keeping its instances' run files under `data_dir/instances`.
    pub fn new(data_dir: &Path, rt: tokio::runtime::Handle) -> Result<NsDriver, ComputeError> {
        let dir = data_dir.join("instances");
        std::fs::create_dir_all(&dir).map_err(|e| ComputeError::io("instance directory", e))?;
        let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let hash = canon
            .to_string_lossy()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        let exe = std::env::current_exe().map_err(|e| ComputeError::io("own executable", e))?;
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(&state);
        std::thread::Builder::new()
            .name("kumo-ns-watch".into())
            .spawn(move || watch(weak, tx))
            .map_err(|e| ComputeError::io("start the guest watcher", e))?;
        let d = NsDriver {
            prefix: format!("k{:02x}", hash & 0xff),
            dir,
            exe,
            rt,
            state,
            events: Mutex::new(Some(rx)),
            vm: None,
            host_keys: None,
        };
        d.sweep_and_claim();
        Ok(d)
    }

    /// Takes `ns` guests' SSH host keys from a pool in `dir` (kept at 32 sets), so that no
    /// boot waits for its RSA key.
    pub fn with_host_keys(mut self, dir: &Path) -> Result<NsDriver, ComputeError> {
        let pool = crate::hostkeys::HostKeys::start(dir, 32)
            .map_err(|e| ComputeError::io("start the host-key pool", e))?;
        self.host_keys = Some(pool);
        Ok(self)
    }

    /// A driver running `vm` guests (QEMU) on the image in `image_dir`.
    pub fn new_vm(
        data_dir: &Path,
        rt: tokio::runtime::Handle,
        image_dir: &Path,
    ) -> Result<NsDriver, ComputeError> {
        let mut d = NsDriver::new(data_dir, rt)?;
        let cfg = VmConfig::new(image_dir);
        tracing::info!(accel = %cfg.accel, "vm driver: QEMU guests under {}", cfg.accel);
        d.vm = Some(cfg);
        Ok(d)
    }

    /// `kvm` or `tcg` for a `vm` driver.
    pub fn accel(&self) -> Option<&str> {
        self.vm.as_ref().map(|v| v.accel.as_str())
    }

    /// Removes what an earlier server with this data directory left behind, and what every
    /// server that died without cleaning up left (see [`crate::claims`]), then claims the
    /// prefix for this one.
    fn sweep_and_claim(&self) {
        let claims = crate::claims::Claims::new(Path::new(crate::claims::DIR));
        for dead in claims.dead() {
            if dead != self.prefix {
                tracing::warn!(prefix = %dead, "a server that was killed left namespaces, links and cgroups behind: removing them");
                sweep(&dead);
            }
            claims.forget(&dead);
        }
        if let Some(other) = claims.owner(&self.prefix).filter(|o| o.alive()) {
            tracing::warn!(pid = other.pid, prefix = %self.prefix, "another server claims this data directory's network names");
        }
        sweep(&self.prefix);
        match crate::claims::Owner::me() {
            Some(me) => {
                if let Err(e) = claims.claim(&self.prefix, me) {
                    tracing::warn!(error = %e, dir = crate::claims::DIR, "cannot record this server's network names; a later server cannot sweep them if this one is killed");
                }
            }
            None => tracing::warn!("cannot read this process's start time"),
        }
    }

    /// Drops this server's claim once it swept its own names at shutdown.
    fn unclaim(&self) {
        if let Some(me) = crate::claims::Owner::me() {
            crate::claims::Claims::new(Path::new(crate::claims::DIR)).release(&self.prefix, me);
        }
    }

    fn vpc_ns(&self, vpc: &str) -> String {
        format!("{}v{}", self.prefix, short(vpc))
    }

    fn ensure_vpc(
        &self,
        st: &mut State,
        vpc_id: &str,
        cidr: &str,
    ) -> Result<Arc<Imds>, ComputeError> {
        if let Some(v) = st.vpcs.get(vpc_id) {
            return Ok(v.imds.clone());
        }
        let ns = self.vpc_ns(vpc_id);
        ip_quiet(&["netns", "delete", &ns]);
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "addr", "add", "169.254.169.254/32", "dev", "lo"])?;
        // No rules yet: nothing is forwarded until the security groups arrive.
        apply_rules(&ns, &crate::firewall::Firewall::default())?;
        net::run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        // The host's way in: a /30 from 100.127.0.0/16 per VPC, and a route for its CIDR.
        let n = st.links;
        st.links += 1;
        let base = u32::from(std::net::Ipv4Addr::new(100, 127, 0, 0)) + n * 4;
        let (host_if, vpc_if) = (
            format!("{}h{}", self.prefix, short(vpc_id)),
            format!("{}x{}", self.prefix, short(vpc_id)),
        );
        ip_quiet(&["link", "delete", &host_if]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &vpc_if, "netns", &ns,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", net::addr(base + 1)),
            "dev",
            &host_if,
        ])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/30", net::addr(base + 2)),
            "dev",
            &vpc_if,
        ])?;
        ip(&["-n", &ns, "link", "set", &vpc_if, "up"])?;
        if let Err(e) = ip(&[
            "route",
            "add",
            cidr,
            "via",
            &net::addr(base + 2),
            "dev",
            &host_if,
        ]) {
            tracing::warn!(vpc = vpc_id, cidr, error = %e, "the host cannot route to this VPC (its CIDR overlaps another's): its instances are not reachable from the host");
        }
        let imds = Arc::new(Imds::default());
        let listener = bind_in(&ns, "169.254.169.254:80")?;
        let imds_task = {
            let _enter = self.rt.enter();
            let l = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| ComputeError::io("IMDS listener", e))?;
            self.rt.spawn(imds.clone().serve(l))
        };
        let dns_addr = net::vpc_dns(cidr)
            .ok_or_else(|| ComputeError::Guest(format!("bad VPC CIDR {cidr}")))?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{dns_addr}/32"),
            "dev",
            "lo",
        ])?;
        let dns_public: Arc<Mutex<Vec<(String, String)>>> = Default::default();
        let public = dns_public.clone();
        let dns_task = self.serve_udp(&ns, &format!("{dns_addr}:53"), move |q, peer| {
            let known = lock(&public).clone();
            crate::dns::answer(q, &known).map(|r| (r, peer))
        })?;
        // The subnets' DHCP server.
        let dhcp = Arc::new(Leases::default());
        let leases = dhcp.clone();
        let dhcp_task = self.serve_udp(&ns, "0.0.0.0:67", move |q, _| {
            leases
                .reply(q)
                .map(|(r, to)| (r, std::net::SocketAddr::from((to, 68))))
        })?;
        tracing::info!(vpc = vpc_id, netns = %ns, "VPC network namespace ready");
        st.vpcs.insert(
            vpc_id.to_string(),
            Vpc {
                ns,
                gateway: net::addr(base + 2),
                public: Vec::new(),
                host_if,
                imds: imds.clone(),
                imds_task,
                dns_task,
                dns_public,
                dhcp,
                dhcp_task,
                subnets: Vec::new(),
            },
        );
        Ok(imds)
    }

    /// Answers UDP datagrams on `addr` inside a VPC's namespace: `answer` gives each one's
    /// reply and where it goes, or nothing. The task's socket keeps the namespace alive until
    /// it is aborted.
    fn serve_udp(
        &self,
        ns: &str,
        addr: &str,
        answer: impl Fn(&[u8], std::net::SocketAddr) -> Option<(Vec<u8>, std::net::SocketAddr)>
            + Send
            + 'static,
    ) -> Result<tokio::task::JoinHandle<()>, ComputeError> {
        let udp = bind_udp_in(ns, addr)?;
        let _enter = self.rt.enter();
        let sock = tokio::net::UdpSocket::from_std(udp)
            .map_err(|e| ComputeError::io(format!("UDP socket on {addr}"), e))?;
        Ok(self.rt.spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                if let Some((reply, to)) = answer(&buf[..n], peer) {
                    let _ = sock.send_to(&reply, to).await;
                }
            }
        }))
    }

    /// A subnet in its VPC's namespace: its gateway address (the VPC router's `.1`) on the
    /// namespace's loopback, so each instance's link answers for it.
    fn ensure_subnet(
        &self,
        st: &mut State,
        vpc_id: &str,
        subnet_id: &str,
        cidr: &str,
    ) -> Result<(), ComputeError> {
        let vpc = st
            .vpcs
            .get_mut(vpc_id)
            .ok_or_else(|| ComputeError::Guest(format!("VPC {vpc_id} has no namespace")))?;
        if vpc.subnets.iter().any(|s| s == subnet_id) {
            return Ok(());
        }
        let gw =
            net::gateway(cidr).ok_or_else(|| ComputeError::Guest(format!("bad CIDR {cidr}")))?;
        ip(&[
            "-n",
            &vpc.ns,
            "addr",
            "add",
            &format!("{gw}/32"),
            "dev",
            "lo",
        ])?;
        vpc.subnets.push(subnet_id.to_string());
        Ok(())
    }

    fn cgroup(&self, id: &str, c: &str) -> PathBuf {
        Path::new(CGROUP)
            .join(c)
            .join(format!("kumo-{}", self.prefix))
            .join(id)
    }

    /// Caps an instance at its type: vCPUs as a CFS quota, memory, and processes.
    fn limit(&self, spec: &InstanceSpec, pid: u32) -> Result<(), ComputeError> {
        let write = |p: PathBuf, v: String| {
            std::fs::write(&p, v).map_err(|e| ComputeError::io(format!("write {}", p.display()), e))
        };
        for c in CONTROLLERS {
            let dir = self.cgroup(&spec.id, c);
            std::fs::create_dir_all(&dir)
                .map_err(|e| ComputeError::io(format!("cgroup {}", dir.display()), e))?;
        }
        // The guest sees its vCPUs (as many as the host has): `nproc` answers the type's
        // count. A cpuset needs its CPUs and memory nodes before it takes a process, and so
        // does the directory above it.
        let host = Path::new(CGROUP).join("cpuset");
        let host_cpus =
            cpu_list(&std::fs::read_to_string(host.join("cpuset.cpus")).unwrap_or_default());
        let mems = std::fs::read_to_string(host.join("cpuset.mems")).unwrap_or_else(|_| "0".into());
        let parent = self.cgroup(&spec.id, "cpuset");
        if let Some(p) = parent.parent() {
            write(p.join("cpuset.cpus"), join_cpus(&host_cpus))?;
            write(p.join("cpuset.mems"), mems.trim().to_string())?;
        }
        let n = (spec.vcpus.max(1) as usize).min(host_cpus.len().max(1));
        write(
            parent.join("cpuset.cpus"),
            join_cpus(&host_cpus[..n.min(host_cpus.len())]),
        )?;
        write(parent.join("cpuset.mems"), mems.trim().to_string())?;
        write(
            self.cgroup(&spec.id, "cpu").join("cpu.cfs_period_us"),
            "100000".into(),
        )?;
        write(
            self.cgroup(&spec.id, "cpu").join("cpu.cfs_quota_us"),
            (u64::from(spec.vcpus.max(1)) * 100_000).to_string(),
        )?;
        write(
            self.cgroup(&spec.id, "memory")
                .join("memory.limit_in_bytes"),
            ((spec.memory_mib.max(64)
                + if self.vm.is_some() {
                    vm::OVERHEAD_MIB
                } else {
                    0
                })
                << 20)
                .to_string(),
        )?;
        write(
            self.cgroup(&spec.id, "pids").join("pids.max"),
            (1024 * spec.vcpus.max(1)).to_string(),
        )?;
        for c in CONTROLLERS {
            write(
                self.cgroup(&spec.id, c).join("cgroup.procs"),
                pid.to_string(),
            )?;
        }
        Ok(())
    }

    /// What every boot needs first: the VPC's namespace and subnet, and the instance's run
    /// directory. Returns the VPC's metadata service, namespace and DHCP leases, and the
    /// directory.
    fn prepare(&self, st: &mut State, spec: &InstanceSpec) -> Result<GuestNet, ComputeError> {
        let n = &spec.net;
        let imds = self.ensure_vpc(st, &n.vpc_id, &n.vpc_cidr)?;
        self.ensure_subnet(st, &n.vpc_id, &n.subnet_id, &n.subnet_cidr)?;
        let v = &st.vpcs[&n.vpc_id];
        let run = self.dir.join(&spec.id);
        std::fs::create_dir_all(&run).map_err(|e| ComputeError::io("instance directory", e))?;
        Ok(GuestNet {
            imds,
            leases: v.dhcp.clone(),
            vpc_ns: v.ns.clone(),
            run,
        })
    }

    /// Boots a guest on its prepared network, without the driver's lock.
    fn boot(&self, net: GuestNet, spec: &InstanceSpec) -> Result<Running, ComputeError> {
        if let Some(cfg) = &self.vm {
            return self.boot_vm(cfg, net, spec);
        }
        let n = &spec.net;
        let GuestNet {
            imds,
            leases,
            vpc_ns,
            run,
        } = net.clone();
        // What the guest's init reads besides the metadata: under `ns` its files are in
        // the root's upper layer before it starts (a `vm` guest fetches them).
        let guest = guest_files(spec, &[]);
        for (name, dir) in [
            ("instance.env", "etc/kumo"),
            ("launch-key", "etc/kumo"),
            ("cloud-config.sh", "var/lib/kumo"),
        ] {
            let dir = spec.root_data.join("upper").join(dir);
            match guest.get(name) {
                Some(text) => std::fs::create_dir_all(&dir)
                    .and_then(|_| std::fs::write(dir.join(name), text))
                    .map_err(|e| ComputeError::io("guest configuration", e))?,
                // Not this boot's (a key the metadata no longer serves): not left behind.
                None => {
                    let _ = std::fs::remove_file(dir.join(name));
                }
            }
        }
        if let Some(pool) = &self.host_keys {
            let etc_ssh = spec.root_data.join("upper/etc/ssh");
            match pool.install(&etc_ssh) {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(instance = %spec.id, "the host-key pool is empty; the guest makes its own keys")
                }
                Err(e) => {
                    tracing::warn!(instance = %spec.id, error = %e, "cannot install pooled host keys; the guest makes its own")
                }
            }
        }
        let console = run.join("console.log");
        let mut helper = Command::new(&self.exe)
            .arg("__ns-helper")
            .arg(&spec.image_root)
            .arg(&spec.root_data)
            .arg(run.join("root"))
            .arg(&console)
            .arg(&spec.hostname)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| ComputeError::io("start the instance helper", e))?;
        let pid = helper.id();
        let stdin = helper.stdin.take();
        let stdout = helper.stdout.take();
        let setup = (|| {
            let mut stdin =
                stdin.ok_or_else(|| ComputeError::Guest("helper has no stdin".into()))?;
            let mut lines = BufReader::new(
                stdout.ok_or_else(|| ComputeError::Guest("helper has no stdout".into()))?,
            );
            expect(&mut lines, "ready")?;
            self.limit(spec, pid)?;
            let ins = format!("{}i{}", self.prefix, short(&spec.id));
            ip_quiet(&["netns", "delete", &ins]);
            ip(&["netns", "attach", &ins, &pid.to_string()])?;
            let host_side = format!("{}e{}", self.prefix, short(&spec.id));
            ip(&[
                "-n", &vpc_ns, "link", "add", &host_side, "type", "veth", "peer", "name", "eth0",
                "netns", &ins,
            ])?;
            ip(&["-n", &ins, "link", "set", "lo", "up"])?;
            // The interface has its MAC; its addresses come from the subnet's DHCP server
            // (the primary) and the metadata (the secondaries), as the guest's init asks.
            ip(&["-n", &ins, "link", "set", "eth0", "address", &n.mac])?;
            route_guest(&vpc_ns, &host_side, n)?;
            leases.set(&n.mac, lease_for(spec)?);
            let addr: IpAddr = n
                .private_ip
                .parse()
                .map_err(|_| ComputeError::Guest(format!("bad address {}", n.private_ip)))?;
            imds.set(
                addr,
                Metadata {
                    guest: guest.clone(),
                    ..spec.metadata.clone()
                },
            );
            writeln!(stdin, "go").map_err(|e| ComputeError::io("start the guest", e))?;
            // The helper has mounted the root and its /dev: the disks go in before init runs.
            expect(&mut lines, "mounted")?;
            let mountpoint = std::path::absolute(run.join("root"))
                .map_err(|e| ComputeError::io("the guest's root", e))?;
            let root =
                guest_root(pid as i32).join(mountpoint.strip_prefix("/").unwrap_or(&mountpoint));
            let devices = self.devices_at_boot(spec, &root);
            let started = writeln!(stdin, "boot")
                .map_err(|e| ComputeError::io("start the guest", e))
                .and_then(|_| read_line(&mut lines))
                .and_then(|line| {
                    line.strip_prefix("pid ")
                        .and_then(|p| p.trim().parse::<i32>().ok())
                        .ok_or_else(|| ComputeError::Guest(format!("the helper said {line:?}")))
                });
            match started {
                Ok(init_pid) => Ok((stdin, init_pid, ins, addr, devices)),
                Err(e) => {
                    devices.release();
                    Err(e)
                }
            }
        })();
        match setup {
            Ok((stdin, init_pid, netns, addr, devices)) => Ok(Running {
                spec: spec.clone(),
                net,
                helper,
                _stdin: Some(stdin),
                init_pid,
                vm: None,
                netns,
                ip: addr,
                exited: false,
                volumes: devices.volumes,
                ephemeral: devices.ephemeral,
                reboot_exit: false,
                guest,
            }),
            Err(e) => {
                let _ = helper.kill();
                let _ = helper.wait();
                self.release(
                    &spec.id,
                    None,
                    &format!("{}i{}", self.prefix, short(&spec.id)),
                );
                Err(e)
            }
        }
    }

    /// Boots a `vm` guest: its root disk, a tap in the VPC's namespace routed like an `ns`
    /// guest's veth, its DHCP lease, and QEMU (inside the namespace, so it opens the tap there)
    /// in the instance's cgroups.
    fn boot_vm(
        &self,
        cfg: &VmConfig,
        net: GuestNet,
        spec: &InstanceSpec,
    ) -> Result<Running, ComputeError> {
        let n = &spec.net;
        let GuestNet {
            imds,
            leases,
            vpc_ns,
            run,
        } = net.clone();
        let disk = vm::ensure_disk(cfg, spec)?;
        let ip4: std::net::Ipv4Addr = n.private_ip.parse().map_err(|_| {
            ComputeError::Guest(format!("bad address {} for the instance", n.private_ip))
        })?;
        let tap = format!("{}t{}", self.prefix, short(&spec.id));
        let plumb = || -> Result<(), ComputeError> {
            ip_quiet(&["-n", &vpc_ns, "link", "delete", &tap]);
            ip(&["-n", &vpc_ns, "tuntap", "add", "dev", &tap, "mode", "tap"])?;
            route_guest(&vpc_ns, &tap, n)
        };
        let undo = |e: ComputeError| {
            ip_quiet(&["-n", &vpc_ns, "link", "delete", &tap]);
            e
        };
        plumb().map_err(undo)?;
        leases.set(&n.mac, lease_for(spec).map_err(undo)?);
        // Instance store disks take the last root ports, volumes the first ones.
        let store = instance_store(&run, spec).map_err(undo)?;
        let store_disks: Vec<(String, PathBuf, u32)> = store
            .iter()
            .enumerate()
            .map(|(i, d)| (d.volume_id.clone(), d.file.clone(), vm::PORTS - i as u32))
            .collect();
        let mut disks: HashMap<String, (VolumeSpec, u32)> = HashMap::new();
        for v in &spec.volumes {
            let v = with_device(v, disks.values().map(|(d, _)| d).chain(&store));
            let port = (1..=vm::PORTS - store.len() as u32)
                .find(|p| !disks.values().any(|(_, q)| q == p))
                .ok_or_else(|| ComputeError::Guest("no free slot for a volume".into()))?;
            disks.insert(v.volume_id.clone(), (v, port));
        }
        let boot_disks: Vec<(String, PathBuf, u32)> = disks
            .values()
            .map(|(v, p)| (v.volume_id.clone(), v.file.clone(), *p))
            .collect();
        let specs: Vec<VolumeSpec> = disks
            .values()
            .map(|(v, _)| v.clone())
            .chain(store.iter().cloned())
            .collect();
        let guest = guest_files(spec, &specs);
        imds.set(
            IpAddr::V4(ip4),
            Metadata {
                guest: guest.clone(),
                ..spec.metadata.clone()
            },
        );
        let qmp = run.join("qmp.sock");
        let _ = std::fs::remove_file(&qmp);
        let log = std::fs::File::create(run.join("qemu.log"))
            .map_err(|e| ComputeError::io("QEMU log", e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| ComputeError::io("QEMU log", e))?;
        let args = vm::args(cfg, spec, &run, &disk, &tap, &boot_disks, &store_disks);
        let spawned = Command::new("ip")
            .args(["netns", "exec", &vpc_ns, "qemu-system-x86_64"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                leases.remove(&n.mac);
                imds.remove(&IpAddr::V4(ip4));
                return Err(undo(ComputeError::io("start QEMU", e)));
            }
        };
        let pid = child.id();
        let started = self.limit(spec, pid).and_then(|_| {
            // QEMU is up once its monitor answers.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    let log = std::fs::read_to_string(run.join("qemu.log")).unwrap_or_default();
                    return Err(ComputeError::Guest(format!(
                        "QEMU exited ({status}): {}",
                        log.trim()
                    )));
                }
                if qmp.exists() && vm::qmp(&qmp, &[]).is_ok() {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    return Err(ComputeError::Guest("QEMU's monitor did not answer".into()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        if let Err(e) = started {
            let _ = child.kill();
            let _ = child.wait();
            leases.remove(&n.mac);
            self.release(&spec.id, Some((&imds, IpAddr::V4(ip4))), "");
            return Err(undo(e));
        }
        tracing::info!(instance = %spec.id, accel = %cfg.accel, tap = %tap, "QEMU guest started");
        Ok(Running {
            spec: spec.clone(),
            net,
            helper: child,
            _stdin: None,
            init_pid: pid as i32,
            vm: Some(VmGuest { qmp, tap, disks }),
            netns: String::new(),
            ip: IpAddr::V4(ip4),
            exited: false,
            volumes: HashMap::new(),
            ephemeral: store.into_iter().map(|v| (v, String::new())).collect(),
            reboot_exit: false,
            guest,
        })
    }

    /// The devices an `ns` guest gets at each boot: its instance store disks (loop devices on
    /// their files), then its attached volumes. A `vm` guest has them on QEMU's command line.
    ///
    /// They are in place before the guest's init runs, as a machine's disks are there when
    /// it powers on: the helper has mounted the guest's `/dev` (under `root`, the guest's `/`
    /// seen from the host) and waits for them. A device that cannot be given is logged and
    /// left out; the guest boots without it.
    fn devices_at_boot(&self, spec: &InstanceSpec, root: &Path) -> BootDevices {
        let mut out = BootDevices::default();
        let run = self.dir.join(&spec.id);
        match instance_store(&run, spec) {
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
            match LiveVolume::start(&run, root, v) {
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

    /// Frees what a stopped instance held on the host (its root data stays).
    fn release(&self, id: &str, metadata: Option<(&Imds, IpAddr)>, netns: &str) {
        if !netns.is_empty() {
            ip_quiet(&["netns", "delete", netns]);
        }
        for c in CONTROLLERS {
            let dir = self.cgroup(id, c);
            kill_cgroup(&dir);
            let _ = std::fs::remove_dir(&dir);
        }
        if let Some((imds, a)) = metadata {
            imds.remove(&a);
        }
    }

    /// Takes an instance's guest out of the map, under the lock only for that.
    fn take(&self, id: &str) -> Option<Running> {
        let slot = lock(&self.state).instances.remove(id)?;
        let r = lock(&slot).take();
        r
    }

    /// A guest's slot, found under the map's lock, which is then released.
    fn slot(&self, id: &str) -> Option<Slot> {
        lock(&self.state).instances.get(id).cloned()
    }

    /// Every guest's slot.
    fn slots(&self) -> Vec<Slot> {
        lock(&self.state).instances.values().cloned().collect()
    }

    /// Shuts a guest down (its grace period, without the driver's lock) and frees what it held.
    fn halt(&self, mut r: Running, force: bool) -> InstanceSpec {
        let id = r.spec.id.clone();
        let id = id.as_str();
        let pid = nix::unistd::Pid::from_raw(r.init_pid);
        if !force {
            match &r.vm {
                // The ACPI power button: the guest shuts down and QEMU exits.
                Some(g) => {
                    if let Err(e) = vm::qmp(&g.qmp, &[r#"{"execute":"system_powerdown"}"#.into()]) {
                        tracing::warn!(instance = id, error = %e, "cannot press the guest's power button");
                    }
                }
                None => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
        // A virtual machine under emulation takes longer to shut down.
        let grace = match (force, &r.vm) {
            (true, _) => 0,
            (false, Some(_)) => 120,
            (false, None) => 10,
        };
        let deadline = Instant::now() + Duration::from_secs(grace);
        loop {
            if let Ok(Some(_)) = r.helper.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                kill_cgroup(&self.cgroup(id, "pids"));
                let _ = r.helper.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for (_, mut lv) in r.volumes.drain() {
            lv.stop();
        }
        for (_, dev) in r.ephemeral.drain(..) {
            let _ = net::run("losetup", &["-d", &dev]);
        }
        r.net.leases.remove(&r.spec.net.mac);
        if let Some(g) = &r.vm {
            ip_quiet(&["-n", &r.net.vpc_ns, "link", "delete", &g.tap]);
        }
        self.release(id, Some((&r.net.imds, r.ip)), &r.netns);
        r.spec
    }

    /// Boots `spec`'s guest: the VPC's network under the lock, the guest itself without it,
    /// then the guest into the map.
    fn launch(&self, spec: &InstanceSpec) -> Result<(), ComputeError> {
        let net = {
            let mut st = lock(&self.state);
            if st.instances.contains_key(&spec.id) || !st.booting.insert(spec.id.clone()) {
                return Ok(());
            }
            match self.prepare(&mut st, spec) {
                Ok(net) => net,
                Err(e) => {
                    st.booting.remove(&spec.id);
                    return Err(e);
                }
            }
        };
        let booted = self.boot(net, spec);
        let mut st = lock(&self.state);
        st.booting.remove(&spec.id);
        let r = booted?;
        tracing::info!(instance = %spec.id, pid = r.init_pid, address = %spec.net.private_ip, "instance started");
        st.instances
            .insert(spec.id.clone(), Arc::new(Mutex::new(Some(r))));
        Ok(())
    }
}

/// Grows a `vm` guest's disk when `volume_id` is its root or one of its data disks (virtio
/// tells the guest its new size); `None` when the guest has no such disk.
fn grow_vm_disk(r: &Running, volume_id: &str, bytes: u64) -> Option<Result<(), ComputeError>> {
    let g = r.vm.as_ref()?;
    let node = if r
        .spec
        .root
        .as_ref()
        .is_some_and(|x| x.volume_id == volume_id)
    {
        "root".to_string()
    } else if g.disks.contains_key(volume_id) {
        vm::node(volume_id)
    } else {
        return None;
    };
    Some(vm::qmp(
        &g.qmp,
        &[serde_json::json!({"execute": "block_resize", "arguments": {"node-name": node, "size": bytes}}).to_string()],
    ))
}

/// A `vm` guest's data disk was frozen as a snapshot: QEMU flushes the frozen layer and moves
/// to the new overlay.
fn snapshot_vm_disk(qmp: &Path, volume_id: &str, v: &VolumeSpec) -> Result<(), ComputeError> {
    let node = vm::node(volume_id);
    let top = format!("{node}-{}", unique_tag());
    vm::qmp(
        qmp,
        &[
            serde_json::json!({"execute": "blockdev-add", "arguments": {
                "driver": "qcow2", "node-name": top, "backing": null,
                "file": {"driver": "file", "filename": v.file.to_string_lossy()}}})
            .to_string(),
            serde_json::json!({"execute": "blockdev-snapshot", "arguments": {"node": current_top(qmp, volume_id)?, "overlay": top}}).to_string(),
        ],
    )
}

/// Makes the VPC's end of a guest's link (a veth or a tap) a routed one. Routed, not bridged:
/// the VPC side answers ARP for every other address (proxy ARP) and routes each of the
/// interface's addresses and prefixes to the link, answering from the subnet's gateway, so all
/// traffic between instances crosses the VPC namespace's forward path, where the security
/// groups' rules sit. A permanent neighbour entry lets the DHCP server's unicast replies reach
/// a guest that has no address yet.
fn route_guest(vpc_ns: &str, link: &str, n: &crate::NetSpec) -> Result<(), ComputeError> {
    let gw = net::gateway(&n.subnet_cidr)
        .ok_or_else(|| ComputeError::Guest(format!("bad subnet CIDR {}", n.subnet_cidr)))?;
    net::run(
        "ip",
        &[
            "netns",
            "exec",
            vpc_ns,
            "sysctl",
            "-qw",
            &format!("net.ipv4.conf.{link}.proxy_arp=1"),
        ],
    )?;
    ip(&["-n", vpc_ns, "link", "set", link, "up"])?;
    for a in std::iter::once(&n.private_ip).chain(&n.secondary_ips) {
        ip(&[
            "-n",
            vpc_ns,
            "route",
            "replace",
            &format!("{a}/32"),
            "dev",
            link,
            "src",
            &gw,
        ])?;
    }
    for p in &n.prefixes {
        ip(&["-n", vpc_ns, "route", "replace", p, "dev", link])?;
    }
    ip(&[
        "-n",
        vpc_ns,
        "neigh",
        "replace",
        &n.private_ip,
        "lladdr",
        &n.mac,
        "dev",
        link,
        "nud",
        "permanent",
    ])?;
    Ok(())
}

/// What the subnet's DHCP server gives an instance's interface.
fn lease_for(spec: &InstanceSpec) -> Result<Lease, ComputeError> {
    let n = &spec.net;
    let bad = |what: &str| ComputeError::Guest(format!("bad {what} in the instance's network"));
    let gw = net::gateway(&n.subnet_cidr).ok_or_else(|| bad("subnet CIDR"))?;
    let (_, len) = net::parse_cidr(&n.subnet_cidr).ok_or_else(|| bad("subnet CIDR"))?;
    let dns = net::vpc_dns(&n.vpc_cidr).ok_or_else(|| bad("VPC CIDR"))?;
    let (host, domain) = spec
        .hostname
        .split_once('.')
        .unwrap_or((spec.hostname.as_str(), ""));
    Ok(Lease {
        ip: n.private_ip.parse().map_err(|_| bad("address"))?,
        prefix_len: len,
        router: gw.parse().map_err(|_| bad("gateway"))?,
        dns,
        hostname: host.to_string(),
        domain: domain.to_string(),
    })
}

/// Whether a `vm` guest has a volume mounted, asked through its agent: it answers within a
/// few seconds, and a guest that does not answer is taken to be using it (a forced detach
/// still works), as a volume must not be pulled from under a file system.
fn vm_busy(imds: &Imds, ip: IpAddr, volume_id: &str) -> bool {
    let serial = vm::serial(volume_id);
    let id = format!("kumo-busy-{}", unique_tag());
    let script = format!(
        "d=$(readlink -f /dev/disk/by-id/virtio-{serial}) || exit 1\n\
         for m in $(awk '{{print $1}}' /proc/mounts /proc/swaps); do\n\
         case \"$(readlink -f \"$m\" 2>/dev/null)\" in \"$d\"|\"$d\"[0-9]*|\"$d\"p[0-9]*) exit 0 ;; esac\n\
         done\nexit 1\n"
    );
    imds.queue(ip, &id, &script);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match imds.result(&id) {
            Some(r) if r.status == "Success" || r.status == "Failed" => return r.code == 0,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    tracing::warn!(
        volume = volume_id,
        "the guest's agent did not say whether the volume is mounted; it stays busy until forced"
    );
    true
}

/// A tag unique within this process for names made at run time.
fn unique_tag() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The node a `vm` guest's disk reads and writes now (its newest overlay).
fn current_top(qmp: &Path, volume_id: &str) -> Result<String, ComputeError> {
    let out = vm::qmp_returns(qmp, &[r#"{"execute":"query-block"}"#.into()])?;
    let v: serde_json::Value = serde_json::from_str(out.first().map(|s| s.as_str()).unwrap_or(""))
        .map_err(|e| ComputeError::Guest(format!("QMP query-block: {e}")))?;
    let want = vm::device_id(volume_id);
    v["return"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| {
            d["qdev"]
                .as_str()
                .is_some_and(|q| q == want || q.ends_with(&format!("/{want}/virtio-backend")))
        })
        .and_then(|d| d["inserted"]["node-name"].as_str().map(String::from))
        .ok_or_else(|| ComputeError::Guest(format!("QEMU has no disk for {volume_id}")))
}

/// The host's links into the VPC namespaces.
pub(crate) const HOST_NET: &str = "100.127.0.0/16";

/// Kumo's files for the guest (see [`crate::Metadata::guest`]), made once per boot: the
/// init's settings (the default user and the VPC's resolver), the script for `#cloud-config`
/// user data, and each disk's EC2 names by serial.
fn guest_files(spec: &InstanceSpec, disks: &[VolumeSpec]) -> BTreeMap<String, String> {
    let dns = net::vpc_dns(&spec.net.vpc_cidr)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut files = BTreeMap::new();
    let mut env = format!("DEFAULT_USER={}\nDNS={dns}\n", spec.default_user);
    // What the guest would read from the metadata at boot, when it can read it at all: the
    // init then asks the metadata service nothing it already has here.
    if spec.metadata.http_endpoint != "disabled" {
        let m = &spec.metadata.meta;
        let get = |k: &str| m.get(k).map(String::as_str).unwrap_or("");
        let mac = get("mac");
        let nic = |k: &str| get(&format!("network/interfaces/macs/{mac}/{k}")).to_string();
        let len = nic("subnet-ipv4-cidr-block")
            .split('/')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let secondary: Vec<String> = nic("local-ipv4s")
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect();
        // Kumo's own values (ids, addresses), quoted for the shell all the same.
        let q = |v: &str| format!("'{}'", v.replace('\'', ""));
        env.push_str(&format!(
            "HOST_MD=1\nIID={}\nLOCAL_IP={}\nMAC={}\nCIDR_LEN={}\nSECONDARY={}\nUSER_DATA={}\n",
            q(get("instance-id")),
            q(get("local-ipv4")),
            q(mac),
            q(&len),
            q(&secondary.join(" ")),
            u8::from(
                spec.metadata
                    .user_data
                    .as_ref()
                    .is_some_and(|u| !u.is_empty())
            )
        ));
        if let Some(key) = m.get("public-keys/0/openssh-key") {
            files.insert("launch-key".to_string(), key.clone());
        }
    }
    files.insert("instance.env".to_string(), env);
    if let Some(ud) = spec.metadata.user_data.as_deref() {
        if ud.starts_with(b"#cloud-config") {
            let script = crate::cloudconfig::to_script(&String::from_utf8_lossy(ud))
                .unwrap_or_else(|e| {
                    format!("#!/bin/sh\necho '[kumo-init] {}'\n", e.replace('\'', ""))
                });
            files.insert("cloud-config.sh".to_string(), script);
        }
    }
    files.extend(spec.root.iter().chain(disks).map(dev_entry));
    files
}

/// A disk's entry among the guest files: `dev/<serial>` → its names (`nvme1n1 sdf`).
fn dev_entry(v: &VolumeSpec) -> (String, String) {
    let names: Vec<&str> = std::iter::once(&v.device)
        .chain(v.alias.as_ref())
        .map(|d| d.trim_start_matches("/dev/"))
        .collect();
    (format!("dev/{}", vm::serial(&v.volume_id)), names.join(" "))
}

/// What an instance's metadata service serves: its metadata and its guest files.
fn published(r: &Running) -> Metadata {
    Metadata {
        guest: r.guest.clone(),
        ..r.spec.metadata.clone()
    }
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

impl Driver for NsDriver {
    fn degraded(&self) -> Option<(String, String)> {
        (self.accel() == Some("tcg")).then(|| {
            (
                "Kumo.SoftwareEmulation".to_string(),
                "Kumo.SoftwareEmulation: this host has no usable KVM, so the vm driver runs the instance under QEMU's TCG software emulation, many times slower than hardware".to_string(),
            )
        })
    }

    fn name(&self) -> &'static str {
        if self.vm.is_some() {
            "vm"
        } else {
            "ns"
        }
    }

    fn start(&self, spec: &InstanceSpec) -> Result<(), ComputeError> {
        self.launch(spec)
    }

    fn stop(&self, id: &str, force: bool) -> Result<(), ComputeError> {
        if let Some(r) = self.take(id) {
            self.halt(r, force);
            tracing::info!(instance = id, force, "instance stopped");
        }
        // Instance store data does not survive a stop.
        let _ = std::fs::remove_dir_all(self.dir.join(id).join("ephemeral"));
        Ok(())
    }

    fn reboot(&self, id: &str) -> Result<(), ComputeError> {
        let Some(r) = self.take(id) else {
            return Err(ComputeError::Unknown(id.to_string()));
        };
        let spec = self.halt(r, false);
        self.launch(&spec)?;
        tracing::info!(instance = id, "instance rebooted");
        Ok(())
    }

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        if let Some(r) = self.take(id) {
            self.halt(r, true);
        }
        let _ = std::fs::remove_dir_all(self.dir.join(id));
        Ok(())
    }

    fn console(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(id).join("console.log")).ok()
    }

    fn is_running(&self, id: &str) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        let mut g = lock(&slot);
        g.as_mut()
            .is_some_and(|r| matches!(r.helper.try_wait(), Ok(None)))
    }

    fn update_metadata(&self, id: &str, metadata: Metadata) {
        let Some(slot) = self.slot(id) else { return };
        let mut g = lock(&slot);
        let Some(r) = g.as_mut() else { return };
        r.spec.metadata = metadata;
        r.net.imds.set(r.ip, published(r));
    }

    fn events(&self) -> Option<std::sync::mpsc::Receiver<GuestEvent>> {
        lock(&self.events).take()
    }

    fn set_firewall(
        &self,
        vpc_id: &str,
        fw: &crate::firewall::Firewall,
    ) -> Result<(), ComputeError> {
        let mut st = lock(&self.state);
        let Some(v) = st.vpcs.get_mut(vpc_id) else {
            // No instance ever ran in this VPC: nothing to guard.
            return Ok(());
        };
        apply_rules(&v.ns, fw)?;
        // The host reaches the public addresses through the VPC that holds them.
        let want: Vec<String> = fw.public.iter().map(|(p, _)| p.clone()).collect();
        for gone in v.public.iter().filter(|p| !want.contains(p)) {
            ip_quiet(&["route", "delete", &format!("{gone}/32")]);
        }
        for p in &want {
            ip(&[
                "route",
                "replace",
                &format!("{p}/32"),
                "via",
                &v.gateway,
                "dev",
                &v.host_if,
            ])?;
        }
        v.public = want;
        *lock(&v.dns_public) = fw.public.clone();
        Ok(())
    }

    fn attach_volume(&self, id: &str, v: &VolumeSpec) -> Result<(), ComputeError> {
        let unknown = || ComputeError::Unknown(id.to_string());
        let slot = self.slot(id).ok_or_else(unknown)?;
        let mut g = lock(&slot);
        let r = g.as_mut().ok_or_else(unknown)?;
        if r.volumes.contains_key(&v.volume_id) {
            return Ok(());
        }
        if let Some(g) = &mut r.vm {
            if g.disks.contains_key(&v.volume_id) {
                return Ok(());
            }
            let v = with_device(
                v,
                g.disks
                    .values()
                    .map(|(d, _)| d)
                    .chain(r.ephemeral.iter().map(|(d, _)| d)),
            );
            let port = (1..=vm::PORTS - r.ephemeral.len() as u32)
                .find(|p| !g.disks.values().any(|(_, q)| q == p))
                .ok_or_else(|| ComputeError::Guest("no free slot for another volume".into()))?;
            // The guest learns the disk's EC2 names before it appears.
            g.disks.insert(v.volume_id.clone(), (v.clone(), port));
            let (key, names) = dev_entry(&v);
            r.guest.insert(key, names);
            r.net.imds.set(r.ip, published(r));
            let g =
                r.vm.as_mut()
                    .ok_or_else(|| ComputeError::Unknown(id.to_string()))?;
            if let Err(e) = vm::qmp(&g.qmp, &vm::plug(&v.volume_id, &v.file, port)) {
                g.disks.remove(&v.volume_id);
                let _ = vm::qmp(
                    &g.qmp,
                    &[serde_json::json!({"execute": "blockdev-del", "arguments": {"node-name": vm::node(&v.volume_id)}}).to_string()],
                );
                return Err(e);
            }
            r.spec.volumes.retain(|x| x.volume_id != v.volume_id);
            r.spec.volumes.push(v.clone());
            tracing::info!(instance = id, volume = %v.volume_id, device = %v.device, port, "volume hot-plugged");
            return Ok(());
        }
        let v = &with_device(
            v,
            r.volumes
                .values()
                .map(|l| &l.spec)
                .chain(r.ephemeral.iter().map(|(d, _)| d)),
        );
        let lv = LiveVolume::start(&self.dir.join(id), &guest_root(r.init_pid), v)?;
        r.spec.volumes.retain(|x| x.volume_id != v.volume_id);
        r.spec.volumes.push(v.clone());
        r.volumes.insert(v.volume_id.clone(), lv);
        tracing::info!(instance = id, volume = %v.volume_id, device = %v.device, "volume attached");
        Ok(())
    }

    fn volume_busy(&self, id: &str, volume_id: &str) -> bool {
        let Some(slot) = self.slot(id) else {
            return false;
        };
        let guard = lock(&slot);
        let Some(r) = guard.as_ref() else {
            return false;
        };
        if let Some(g) = &r.vm {
            if !g.disks.contains_key(volume_id) {
                return false;
            }
            // The guest's answer is awaited without holding its lock.
            let (imds, ip) = (r.net.imds.clone(), r.ip);
            drop(guard);
            return vm_busy(&imds, ip, volume_id);
        }
        let Some(lv) = r.volumes.get(volume_id) else {
            return false;
        };
        // Mounted in the guest: its mount table names the device (or the loop device).
        let mounts =
            std::fs::read_to_string(format!("/proc/{}/mounts", r.init_pid)).unwrap_or_default();
        mounts.lines().any(|l| {
            let dev = l.split_whitespace().next().unwrap_or("");
            dev == lv.spec.device || lv.spec.alias.as_deref() == Some(dev) || dev == lv.loop_dev
        })
    }

    fn detach_volume(&self, id: &str, volume_id: &str) -> Result<(), ComputeError> {
        let Some(slot) = self.slot(id) else {
            return Ok(());
        };
        let mut guard = lock(&slot);
        let Some(r) = guard.as_mut() else {
            return Ok(());
        };
        r.spec.volumes.retain(|x| x.volume_id != volume_id);
        if let Some(g) = &mut r.vm {
            if g.disks.contains_key(volume_id) {
                // The guest takes seconds to release the device: wait without its lock.
                let qmp = g.qmp.clone();
                drop(guard);
                vm::unplug(&qmp, volume_id)?;
                if let Some(g) = lock(&slot).as_mut().and_then(|r| r.vm.as_mut()) {
                    g.disks.remove(volume_id);
                }
                tracing::info!(instance = id, volume = volume_id, "volume unplugged");
            }
            return Ok(());
        }
        let pid = r.init_pid;
        if let Some(mut lv) = r.volumes.remove(volume_id) {
            lv.hide(&guest_root(pid));
            lv.stop();
            tracing::info!(instance = id, volume = volume_id, "volume detached");
        }
        Ok(())
    }

    fn grow_volume(&self, volume_id: &str, bytes: u64) -> Result<bool, ComputeError> {
        for slot in self.slots() {
            let guard = lock(&slot);
            let Some(r) = guard.as_ref() else { continue };
            if r.vm.is_some() {
                if let Some(grown) = grow_vm_disk(r, volume_id, bytes) {
                    return grown.map(|_| true);
                }
                continue;
            }
            let Some(lv) = r.volumes.get(volume_id) else {
                continue;
            };
            return grow_live(lv, bytes).map(|_| true);
        }
        Ok(false)
    }

    fn hold_root(&self, volume_id: &str, pause: bool) -> Result<bool, ComputeError> {
        for slot in self.slots() {
            let guard = lock(&slot);
            let Some(r) = guard.as_ref() else { continue };
            let Some(g) = r
                .spec
                .root
                .as_ref()
                .filter(|x| x.volume_id == volume_id)
                .and(r.vm.as_ref())
            else {
                continue;
            };
            // QEMU's `stop` drains and flushes every disk before it returns.
            let cmd = if pause { "stop" } else { "cont" };
            vm::qmp(&g.qmp, &[format!(r#"{{"execute":"{cmd}"}}"#)])?;
            return Ok(true);
        }
        Ok(false)
    }

    fn volume_snapshotted(&self, volume_id: &str) -> Result<bool, ComputeError> {
        for slot in self.slots() {
            let mut guard = lock(&slot);
            let Some(r) = guard.as_mut() else { continue };
            if let Some(g) = &r.vm {
                if let Some((v, _)) = g.disks.get(volume_id) {
                    snapshot_vm_disk(&g.qmp, volume_id, v)?;
                    return Ok(true);
                }
                continue;
            }
            if let Some(lv) = r.volumes.get_mut(volume_id) {
                snapshot_live(lv)?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn send_command(&self, id: &str, command_id: &str, script: &str) -> Result<(), ComputeError> {
        let unknown = || ComputeError::Unknown(id.to_string());
        let slot = self.slot(id).ok_or_else(unknown)?;
        let guard = lock(&slot);
        let r = guard.as_ref().ok_or_else(unknown)?;
        r.net.imds.queue(r.ip, command_id, script);
        Ok(())
    }

    fn command_result(&self, id: &str, command_id: &str) -> Option<crate::CommandResult> {
        let imds = self
            .slot(id)
            .and_then(|slot| lock(&slot).as_ref().map(|r| r.net.imds.clone()));
        match imds {
            Some(imds) => imds.result(command_id),
            // The instance may have stopped since; its VPC's listener still has the result.
            None => lock(&self.state)
                .vpcs
                .values()
                .find_map(|v| v.imds.result(command_id)),
        }
    }

    fn cpu_usage_ns(&self, id: &str) -> Option<u64> {
        std::fs::read_to_string(self.cgroup(id, "cpuacct").join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn set_cpu_cap(&self, id: &str, cores: Option<f64>) -> Result<(), ComputeError> {
        let vcpus = self
            .slot(id)
            .and_then(|slot| lock(&slot).as_ref().map(|r| r.spec.vcpus.max(1)))
            .ok_or_else(|| ComputeError::Unknown(id.to_string()))?;
        let quota = match cores {
            Some(c) => ((c * 100_000.0) as u64).max(1000),
            None => u64::from(vcpus) * 100_000,
        };
        let p = self.cgroup(id, "cpu").join("cpu.cfs_quota_us");
        std::fs::write(&p, quota.to_string())
            .map_err(|e| ComputeError::io(format!("write {}", p.display()), e))
    }

    fn reap(&self, id: &str) {
        let Some(r) = self.take(id) else { return };
        let reboot = r.reboot_exit;
        self.halt(r, true);
        if !reboot {
            let _ = std::fs::remove_dir_all(self.dir.join(id).join("ephemeral"));
        }
    }

    fn shutdown_all(&self) {
        let slots: Vec<Slot> = lock(&self.state)
            .instances
            .drain()
            .map(|(_, g)| g)
            .collect();
        let guests: Vec<Running> = slots.iter().filter_map(|g| lock(g).take()).collect();
        // Every guest gets its grace period at once, not one after another.
        std::thread::scope(|s| {
            for r in guests {
                s.spawn(move || self.halt(r, false));
            }
        });
        for (_, v) in lock(&self.state).vpcs.drain() {
            v.remove();
        }
        sweep(&self.prefix);
        self.unclaim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,6\n"), vec![0, 1, 2, 3, 6]);
        assert_eq!(cpu_list("1"), vec![1]);
        assert_eq!(join_cpus(&cpu_list("0-1")), "0,1");
        assert!(cpu_list("").is_empty());
    }
}
