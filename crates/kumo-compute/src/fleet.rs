//! What the `ns` and `vm` drivers share: the host they run on (VPC namespaces, cgroups, run
//! directories, the claim on their network names), the map of guests, their boots, and the
//! watcher of guests that stop on their own. A driver is a [`Fleet`] of one [`Kind`] of guest;
//! each guest is a [`Machine`] behind a lock of its own.

use crate::host::cgroups::Cgroups;
use crate::host::vpc::{GuestNet, Vpcs};
use crate::host::{net::ip_quiet, sweep};
use crate::services::imds::Imds;
use crate::{ComputeError, Driver, Guest, GuestEvent, InstanceSpec, Metadata};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The exit status of a guest's init that asks for a reboot (`reboot` in the guest).
pub(crate) const REBOOT_STATUS: i32 = 100;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The host a driver runs its guests on.
pub(crate) struct Host {
    /// `k` and two hex digits of the data directory, so two servers on one machine keep apart.
    pub(crate) prefix: String,
    /// The instances' run directories (`<data>/instances/<id>`).
    pub(crate) dir: PathBuf,
    pub(crate) vpcs: Mutex<Vpcs>,
    pub(crate) cgroups: Cgroups,
    /// The data directory's certificate authority (`<data>/tls/ca.pem`), which every guest
    /// trusts: it signs the interface endpoints' certificates.
    ca_pem: Option<String>,
}

impl Host {
    /// The host under `data_dir`, after sweeping what dead servers left (see
    /// [`crate::host::claims`]) and claiming this one's names.
    pub(crate) fn new(data_dir: &Path, rt: tokio::runtime::Handle) -> Result<Host, ComputeError> {
        let dir = data_dir.join("instances");
        std::fs::create_dir_all(&dir).map_err(|e| ComputeError::io("instance directory", e))?;
        let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        let hash = canon
            .to_string_lossy()
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
        let prefix = format!("k{:02x}", hash & 0xff);
        let mut vpcs = Vpcs::new(&prefix, rt);
        match crate::services::endpoints::Authority::load_or_make(&data_dir.join("tls")) {
            Ok(a) => vpcs.authority = Some(Arc::new(a)),
            Err(e) => {
                tracing::error!(error = %e, "no local certificate authority: VPC interface endpoints will not be served")
            }
        }
        let ca_pem = vpcs.authority.as_ref().map(|a| a.pem().to_string());
        let host = Host {
            ca_pem,
            vpcs: Mutex::new(vpcs),
            cgroups: Cgroups {
                prefix: prefix.clone(),
            },
            prefix,
            dir,
        };
        host.sweep_and_claim();
        Ok(host)
    }

    /// The local certificate authority's certificate, which guests trust.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The subnet of an interface in its VPC's namespace (a second interface may be in a
    /// subnet no guest here has used yet).
    pub(crate) fn ensure_subnet(&self, n: &crate::NetSpec) -> Result<(), ComputeError> {
        lock(&self.vpcs).ensure_subnet(&n.vpc_id, &n.subnet_id, &n.subnet_cidr)
    }

    /// Removes what an earlier server with this data directory left behind, and what every
    /// server that died without cleaning up left, then claims the prefix for this one.
    fn sweep_and_claim(&self) {
        use crate::host::claims::{Claims, Owner, DIR};
        let claims = Claims::new(Path::new(DIR));
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
        match Owner::me() {
            Some(me) => {
                if let Err(e) = claims.claim(&self.prefix, me) {
                    tracing::warn!(error = %e, dir = DIR, "cannot record this server's network names; a later server cannot sweep them if this one is killed");
                }
            }
            None => tracing::warn!("cannot read this process's start time"),
        }
    }

    /// Removes every VPC and everything named with the prefix, and drops the claim.
    fn clear(&self) {
        lock(&self.vpcs).remove_all();
        sweep(&self.prefix);
        if let Some(me) = crate::host::claims::Owner::me() {
            crate::host::claims::Claims::new(Path::new(crate::host::claims::DIR))
                .release(&self.prefix, me);
        }
    }

    /// What a boot needs first: the VPC's network (under the VPCs' lock) and the run
    /// directory.
    fn prepare(&self, spec: &InstanceSpec) -> Result<GuestNet, ComputeError> {
        let run = self.run_dir(&spec.id);
        std::fs::create_dir_all(&run).map_err(|e| ComputeError::io("instance directory", e))?;
        lock(&self.vpcs).prepare(spec, run)
    }

    /// Frees what a stopped instance held on the host (its root data stays): its namespace,
    /// its cgroups and its metadata.
    pub(crate) fn release(&self, id: &str, metadata: Option<(&Imds, IpAddr)>, netns: &str) {
        if !netns.is_empty() {
            ip_quiet(&["netns", "delete", netns]);
        }
        self.cgroups.release(id);
        if let Some((imds, a)) = metadata {
            imds.remove(&a);
        }
    }
}

/// What every running guest has, whatever its kind.
pub(crate) struct Proc {
    pub(crate) spec: InstanceSpec,
    pub(crate) net: GuestNet,
    /// The `ns` helper, or the `vm` guest's QEMU.
    pub(crate) child: Child,
    /// The guest's init (`ns`), or QEMU (`vm`).
    pub(crate) pid: i32,
    pub(crate) ip: IpAddr,
    /// The guest's own network namespace (`ns`; empty under `vm`).
    pub(crate) netns: String,
    /// Set once the guest was seen to exit on its own (and reported).
    pub(crate) exited: bool,
    /// The guest exited asking for a reboot (its instance store stays).
    pub(crate) reboot_exit: bool,
    /// Kumo's files for the guest, served beside its metadata.
    pub(crate) files: BTreeMap<String, String>,
}

impl Proc {
    /// What its metadata service serves: its metadata and its guest files.
    pub(crate) fn published(&self) -> Metadata {
        Metadata {
            guest: self.files.clone(),
            ..self.spec.metadata.clone()
        }
    }

    /// Serves its metadata again (after a change to it, to its files or to its IPv6
    /// addresses, the /128 prefixes routed to it, which stand for it on the IPv6 endpoint).
    pub(crate) fn publish(&self) {
        self.net.imds.set(self.ip, self.published());
        let v6 = crate::services::imds::v6_of(&self.spec.net.prefixes);
        self.net.imds.set_aliases(self.ip, &v6);
    }
}

/// A kind of guest: how one boots, is powered off and cleaned up, and handles its disks.
pub(crate) trait Kind: Send + Sync + Sized + 'static {
    /// A running guest of this kind.
    type Up: Send + 'static;
    const NAME: &'static str;
    /// How long a clean shutdown may take before the guest is killed.
    const GRACE: Duration;
    /// The highest device index of an interface it can plug.
    const MAX_DEVICE_INDEX: u32 = u32::MAX;
    /// The VPC namespace's end of an instance's link (its veth or tap).
    fn link(host: &Host, id: &str) -> String;
    /// Plugs and unplugs the guest's interfaces besides the primary to match `nics`.
    fn set_interfaces(
        m: &Machine<Self>,
        up: &mut Self::Up,
        nics: &[crate::Nic],
    ) -> Result<(), ComputeError>
    where
        Self: Sized;
    fn degraded(&self) -> Option<(String, String)> {
        None
    }
    /// Boots a guest on its prepared network.
    fn boot(
        &self,
        host: &Host,
        net: GuestNet,
        spec: &InstanceSpec,
    ) -> Result<Self::Up, ComputeError>;
    fn proc(up: &Self::Up) -> &Proc;
    fn proc_mut(up: &mut Self::Up) -> &mut Proc;
    /// Asks the guest to shut down (it then has [`Kind::GRACE`]).
    fn power_off(up: &Self::Up);
    /// Gives back its disks and links once it is down.
    fn cleanup(up: &mut Self::Up);
    fn attach(m: &Machine<Self>, v: &crate::VolumeSpec) -> Result<(), ComputeError>;
    fn busy(m: &Machine<Self>, volume_id: &str) -> bool;
    fn detach(m: &Machine<Self>, volume_id: &str) -> Result<(), ComputeError>;
    /// Grows a disk; `None` when the guest has no such disk.
    fn grow(up: &Self::Up, volume_id: &str, bytes: u64) -> Option<Result<(), ComputeError>>;
    /// Sets a disk's I/O limits; `None` when the guest has no such disk.
    fn limit(
        up: &Self::Up,
        volume_id: &str,
        limits: crate::IoLimits,
    ) -> Option<Result<(), ComputeError>>;
    /// Moves a disk onto its new overlay; `None` when the guest has no such disk.
    fn snapshotted(up: &mut Self::Up, volume_id: &str) -> Option<Result<(), ComputeError>>;
    /// What its data volumes and instance store have done.
    fn disk_counters(_up: &Self::Up) -> crate::DiskCounters {
        crate::DiskCounters::default()
    }
    /// Pauses or resumes the guest around a copy of its root disk; `None` when its root is
    /// not that volume's file.
    fn hold_root(
        _up: &Self::Up,
        _volume_id: &str,
        _pause: bool,
    ) -> Option<Result<(), ComputeError>> {
        None
    }
}

/// Where a guest stands.
pub(crate) enum Slot<U> {
    Up(U),
    /// Booting, rebooting or shutting down: taken out, so no lock is held meanwhile.
    Busy,
    Down,
}

/// One guest: its kind's running state behind its own lock.
pub(crate) struct Machine<K: Kind> {
    pub(crate) id: String,
    pub(crate) host: Arc<Host>,
    pub(crate) kind: Arc<K>,
    pub(crate) slot: Mutex<Slot<K::Up>>,
    /// Whether the slot is `Down`, readable without its lock: the driver's map is filtered
    /// by it and must not wait for a guest busy with an operation.
    down: std::sync::atomic::AtomicBool,
    /// Set once the instance is destroyed (terminated): a boot still under way then
    /// releases everything, its run directory too.
    pub(crate) destroyed: std::sync::atomic::AtomicBool,
}

impl<K: Kind> Machine<K> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slot<K::Up>> {
        lock(&self.slot)
    }

    /// Runs `f` on the running guest, under its lock.
    pub(crate) fn with_up<T>(&self, f: impl FnOnce(&mut K::Up) -> T) -> Option<T> {
        match &mut *self.lock() {
            Slot::Up(up) => Some(f(up)),
            _ => None,
        }
    }

    /// Like [`Machine::with_up`], for an operation that fails on a guest that does not run.
    pub(crate) fn up<T>(
        &self,
        f: impl FnOnce(&mut K::Up) -> Result<T, ComputeError>,
    ) -> Result<T, ComputeError> {
        self.with_up(f)
            .unwrap_or_else(|| Err(ComputeError::Unknown(self.id.clone())))
    }

    fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Takes the running guest out (leaving it busy), if it runs.
    fn take(&self, only_exited: bool) -> Option<K::Up> {
        let mut g = self.lock();
        match &*g {
            Slot::Up(up) if !only_exited || K::proc(up).exited => {}
            _ => return None,
        }
        match std::mem::replace(&mut *g, Slot::Busy) {
            Slot::Up(up) => Some(up),
            _ => None,
        }
    }

    fn set(&self, s: Slot<K::Up>) {
        let mut g = self.lock();
        self.down
            .store(matches!(s, Slot::Down), std::sync::atomic::Ordering::SeqCst);
        *g = s;
    }

    fn boot(&self, spec: &InstanceSpec) -> Result<(), ComputeError> {
        let booted = self
            .host
            .prepare(spec)
            .and_then(|net| self.kind.boot(&self.host, net, spec));
        match booted {
            Ok(up) => {
                let mut g = self.lock();
                if matches!(*g, Slot::Down) {
                    // Stopped or terminated while it booted: it does not run on.
                    drop(g);
                    tracing::info!(instance = %spec.id, "the instance was stopped or terminated while it booted");
                    self.halt(up, true);
                    self.remove_instance_store();
                    if self.destroyed.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = std::fs::remove_dir_all(self.host.run_dir(&self.id));
                    }
                    return Ok(());
                }
                tracing::info!(instance = %spec.id, pid = K::proc(&up).pid, address = %spec.net.private_ip, "instance started");
                *g = Slot::Up(up);
                Ok(())
            }
            Err(e) => {
                self.set(Slot::Down);
                Err(e)
            }
        }
    }

    /// Shuts a taken guest down (its grace period, without any lock) and frees what it held.
    fn halt(&self, mut up: K::Up, force: bool) -> InstanceSpec {
        if !force {
            K::power_off(&up);
        }
        let grace = if force { Duration::ZERO } else { K::GRACE };
        let deadline = Instant::now() + grace;
        let p = K::proc_mut(&mut up);
        loop {
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                self.host.cgroups.kill(&self.id);
                let _ = p.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        K::cleanup(&mut up);
        let p = K::proc_mut(&mut up);
        p.net.leases.remove(&p.spec.net.mac);
        self.host
            .release(&self.id, Some((&p.net.imds, p.ip)), &p.netns);
        p.spec.clone()
    }

    fn remove_instance_store(&self) {
        let _ = std::fs::remove_dir_all(self.host.run_dir(&self.id).join("ephemeral"));
    }

    /// Whether the guest exited on its own since the last look: `Some(reboot)` once.
    fn exited(&self) -> Option<bool> {
        // A guest busy with an operation is looked at next round.
        let mut g = self.slot.try_lock().ok()?;
        let Slot::Up(up) = &mut *g else { return None };
        let p = K::proc_mut(up);
        if p.exited {
            return None;
        }
        let status = p.child.try_wait().ok()??;
        p.exited = true;
        p.reboot_exit = status.code() == Some(REBOOT_STATUS);
        Some(p.reboot_exit)
    }
}

impl<K: Kind> Guest for Machine<K> {
    fn id(&self) -> &str {
        &self.id
    }

    fn is_running(&self) -> bool {
        self.with_up(|up| matches!(K::proc_mut(up).child.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    fn stop(&self, force: bool) -> Result<(), ComputeError> {
        if let Some(up) = self.take(false) {
            self.halt(up, force);
            tracing::info!(instance = %self.id, force, "instance stopped");
        }
        self.set(Slot::Down);
        // Instance store data does not survive a stop.
        self.remove_instance_store();
        Ok(())
    }

    fn reboot(&self) -> Result<(), ComputeError> {
        let up = self
            .take(false)
            .ok_or_else(|| ComputeError::Unknown(self.id.clone()))?;
        let spec = self.halt(up, false);
        self.boot(&spec)?;
        tracing::info!(instance = %self.id, "instance rebooted");
        Ok(())
    }

    fn reap(&self) {
        let Some(up) = self.take(true) else { return };
        let reboot = K::proc(&up).reboot_exit;
        self.halt(up, true);
        self.set(Slot::Down);
        if !reboot {
            self.remove_instance_store();
        }
    }

    fn set_metadata(&self, metadata: Metadata) {
        self.with_up(|up| {
            let p = K::proc_mut(up);
            p.spec.metadata = metadata;
            p.publish();
        });
    }

    fn set_interfaces(&self, nics: Vec<crate::Nic>) -> Result<(), ComputeError> {
        self.up(|up| {
            if K::proc_mut(up).spec.interfaces == nics {
                return Ok(());
            }
            K::set_interfaces(self, up, &nics)?;
            K::proc_mut(up).spec.interfaces = nics;
            Ok(())
        })
    }

    fn set_addresses(
        &self,
        secondary_ips: Vec<String>,
        prefixes: Vec<String>,
    ) -> Result<(), ComputeError> {
        let link = K::link(&self.host, &self.id);
        self.up(|up| {
            let p = K::proc_mut(up);
            let n = &p.spec.net;
            if n.secondary_ips == secondary_ips && n.prefixes == prefixes {
                return Ok(());
            }
            crate::host::vpc::reroute(&p.net.vpc_ns, &link, n, &secondary_ips, &prefixes)?;
            p.spec.net.secondary_ips = secondary_ips;
            p.spec.net.prefixes = prefixes;
            p.publish();
            tracing::info!(instance = %self.id, secondaries = ?p.spec.net.secondary_ips, prefixes = ?p.spec.net.prefixes, "addresses routed anew");
            Ok(())
        })
    }

    fn attach_volume(&self, v: &crate::VolumeSpec) -> Result<(), ComputeError> {
        K::attach(self, v)
    }

    fn volume_busy(&self, volume_id: &str) -> bool {
        K::busy(self, volume_id)
    }

    fn detach_volume(&self, volume_id: &str) -> Result<(), ComputeError> {
        K::detach(self, volume_id)
    }

    fn grow_volume(&self, volume_id: &str, bytes: u64) -> Result<bool, ComputeError> {
        match self.with_up(|up| K::grow(up, volume_id, bytes)).flatten() {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }

    fn set_volume_limits(
        &self,
        volume_id: &str,
        limits: crate::IoLimits,
    ) -> Result<bool, ComputeError> {
        match self.with_up(|up| K::limit(up, volume_id, limits)).flatten() {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }

    fn volume_snapshotted(&self, volume_id: &str) -> Result<bool, ComputeError> {
        match self.with_up(|up| K::snapshotted(up, volume_id)).flatten() {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }

    fn hold_root(&self, volume_id: &str, pause: bool) -> Result<bool, ComputeError> {
        match self
            .with_up(|up| K::hold_root(up, volume_id, pause))
            .flatten()
        {
            Some(r) => r.map(|_| true),
            None => Ok(false),
        }
    }

    fn send_command(&self, command_id: &str, script: &str) -> Result<(), ComputeError> {
        self.up(|up| {
            let p = K::proc(up);
            p.net.imds.queue(p.ip, command_id, script);
            Ok(())
        })
    }

    fn open_session(
        &self,
        session_id: &str,
        rows: u16,
        cols: u16,
    ) -> Result<crate::services::imds::SessionWait, ComputeError> {
        self.up(|up| {
            let p = K::proc(up);
            Ok(p.net.imds.queue_session(p.ip, session_id, rows, cols))
        })
    }

    fn resize_session(&self, session_id: &str, rows: u16, cols: u16) -> Result<(), ComputeError> {
        self.up(|up| {
            let p = K::proc(up);
            p.net.imds.queue_resize(p.ip, session_id, rows, cols);
            Ok(())
        })
    }

    fn cpu_usage_ns(&self) -> Option<u64> {
        self.host.cgroups.usage_ns(&self.id)
    }

    fn disk_counters(&self) -> crate::DiskCounters {
        self.up(|up| Ok(K::disk_counters(up))).unwrap_or_default()
    }

    fn set_dhcp(&self, dhcp: crate::DhcpSettings) -> Result<(), ComputeError> {
        self.up(|up| {
            let p = K::proc_mut(up);
            p.spec.dhcp = dhcp;
            let lease = crate::host::vpc::lease_for(&p.spec)?;
            p.net.leases.set(&p.spec.net.mac, lease);
            Ok(())
        })
    }

    fn net_counters(&self) -> Option<crate::NetCounters> {
        let vpc_ns = self.up(|up| Ok(K::proc(up).net.vpc_ns.clone())).ok()?;
        let out = std::process::Command::new("ip")
            .args(["-n", &vpc_ns, "-s", "-j", "link", "show"])
            .output()
            .ok()?;
        crate::host::net::link_counters(
            &String::from_utf8_lossy(&out.stdout),
            &self.host.prefix,
            &self.id,
        )
    }

    fn set_cpu_cap(&self, cores: Option<f64>) -> Result<(), ComputeError> {
        let vcpus = self.up(|up| Ok(K::proc(up).spec.vcpus.max(1)))?;
        let quota = match cores {
            Some(c) => ((c * 100_000.0) as u64).max(1000),
            None => u64::from(vcpus) * 100_000,
        };
        self.host.cgroups.set_quota(&self.id, quota)
    }
}

/// The guests by instance id. Its lock is held only to read or change the map: never across
/// a boot, a shutdown's grace period or a guest's reply.
type Registry<K> = Mutex<HashMap<String, Arc<Machine<K>>>>;

/// A driver: guests of one kind on one host. The kinds are this crate's own (`ns`, `vm`), so
/// the bound is private on purpose.
#[allow(private_bounds)]
pub struct Fleet<K: Kind> {
    pub(crate) host: Arc<Host>,
    pub(crate) kind: Arc<K>,
    guests: Arc<Registry<K>>,
    events: Mutex<Option<std::sync::mpsc::Receiver<GuestEvent>>>,
}

#[allow(private_bounds)]
impl<K: Kind> Fleet<K> {
    /// A driver of `kind` guests keeping their run files under `data_dir/instances`, with a
    /// thread that watches for guests stopping on their own.
    pub(crate) fn start(
        data_dir: &Path,
        rt: tokio::runtime::Handle,
        kind: K,
    ) -> Result<Fleet<K>, ComputeError> {
        let host = Arc::new(Host::new(data_dir, rt)?);
        let guests: Arc<Registry<K>> = Default::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(&guests);
        std::thread::Builder::new()
            .name(format!("kumo-{}-watch", K::NAME))
            .spawn(move || watch(weak, tx))
            .map_err(|e| ComputeError::io("start the guest watcher", e))?;
        Ok(Fleet {
            host,
            kind: Arc::new(kind),
            guests,
            events: Mutex::new(Some(rx)),
        })
    }

    fn machine(&self, id: &str) -> Option<Arc<Machine<K>>> {
        let mut map = lock(&self.guests);
        let m = map.get(id)?.clone();
        if m.is_down() {
            map.remove(id);
            return None;
        }
        Some(m)
    }
}

/// Watches for guests that exit without the server asking, twice a second.
fn watch<K: Kind>(guests: Weak<Registry<K>>, tx: std::sync::mpsc::Sender<GuestEvent>) {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let Some(guests) = guests.upgrade() else {
            return;
        };
        let all: Vec<Arc<Machine<K>>> = lock(&guests).values().cloned().collect();
        drop(guests);
        for m in all {
            if let Some(reboot) = m.exited() {
                tracing::info!(instance = %m.id, reboot, "the guest stopped on its own");
                if tx
                    .send(GuestEvent {
                        id: m.id.clone(),
                        reboot,
                    })
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

impl<K: Kind> Driver for Fleet<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn degraded(&self) -> Option<(String, String)> {
        self.kind.degraded()
    }

    fn max_device_index(&self) -> u32 {
        K::MAX_DEVICE_INDEX
    }

    fn start(&self, spec: &InstanceSpec) -> Result<(), ComputeError> {
        let m = {
            let mut map = lock(&self.guests);
            if map.get(&spec.id).is_some_and(|m| !m.is_down()) {
                // Running or booting: a second start is a no-op.
                return Ok(());
            }
            let m = Arc::new(Machine {
                id: spec.id.clone(),
                host: self.host.clone(),
                kind: self.kind.clone(),
                slot: Mutex::new(Slot::Busy),
                down: Default::default(),
                destroyed: Default::default(),
            });
            map.insert(spec.id.clone(), m.clone());
            m
        };
        let booted = m.boot(spec);
        if booted.is_err() {
            let mut map = lock(&self.guests);
            if map.get(&spec.id).is_some_and(|x| Arc::ptr_eq(x, &m)) {
                map.remove(&spec.id);
            }
        }
        booted
    }

    fn guest(&self, id: &str) -> Option<Arc<dyn Guest>> {
        self.machine(id).map(|m| m as Arc<dyn Guest>)
    }

    fn guests(&self) -> Vec<Arc<dyn Guest>> {
        let mut map = lock(&self.guests);
        map.retain(|_, m| !m.is_down());
        map.values().map(|m| m.clone() as Arc<dyn Guest>).collect()
    }

    fn destroy(&self, id: &str) -> Result<(), ComputeError> {
        if let Some(m) = self.machine(id) {
            m.destroyed.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Some(up) = m.take(false) {
                m.halt(up, true);
            }
            m.set(Slot::Down);
        }
        lock(&self.guests).remove(id);
        let _ = std::fs::remove_dir_all(self.host.run_dir(id));
        Ok(())
    }

    fn console(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.host.run_dir(id).join("console.log")).ok()
    }

    fn command_result(&self, id: &str, command_id: &str) -> Option<crate::CommandResult> {
        let imds = self
            .machine(id)
            .and_then(|m| m.with_up(|up| K::proc(up).net.imds.clone()));
        match imds {
            Some(imds) => imds.result(command_id),
            // The instance may have stopped since; its VPC's listener still has the result.
            None => lock(&self.host.vpcs).command_result(command_id),
        }
    }

    fn set_firewall(
        &self,
        vpc_id: &str,
        fw: &crate::services::firewall::Firewall,
    ) -> Result<(), ComputeError> {
        lock(&self.host.vpcs).set_firewall(vpc_id, fw)
    }

    fn host_source(&self, vpc_id: &str) -> Option<String> {
        lock(&self.host.vpcs).source(vpc_id)
    }

    fn set_peerings(&self, links: &[crate::PeeringLink]) -> Result<(), ComputeError> {
        lock(&self.host.vpcs).set_peerings(links)
    }

    fn serve_endpoints(&self, upstream: std::net::SocketAddr) {
        lock(&self.host.vpcs).upstream = Some(upstream);
    }

    fn events(&self) -> Option<std::sync::mpsc::Receiver<GuestEvent>> {
        lock(&self.events).take()
    }

    fn shutdown_all(&self) {
        let all: Vec<Arc<Machine<K>>> = lock(&self.guests).drain().map(|(_, m)| m).collect();
        // Every guest gets its grace period at once, not one after another; the instance
        // store stays, as across a host's restart.
        std::thread::scope(|s| {
            for m in &all {
                s.spawn(move || {
                    if let Some(up) = m.take(false) {
                        m.halt(up, false);
                    }
                    m.set(Slot::Down);
                });
            }
        });
        self.host.clear();
    }
}
