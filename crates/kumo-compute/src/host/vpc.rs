//! The VPCs on this host: per VPC, a network namespace `<p>v<vpc>` that routes between its
//! subnets (each subnet's gateway address on its loopback, as the VPC router has), serves the
//! metadata on 169.254.169.254 and the subnets' DHCP and DNS, holds the security groups'
//! nftables rules on its forward path, and has a veth to the host through which the host
//! routes the VPC's CIDRs ([`super::routes`]: by the main table where no other VPC here
//! overlaps them, and always from the host end's own address). A guest's link (an `ns` veth or a `vm` tap) is routed into it, not bridged
//! ([`route_guest`]), so all traffic between instances crosses the firewall.

use super::net::{self, ip, ip_batch, ip_quiet, short};
use super::routes::{self, Cidr, MainRoute};
use super::{apply_rules, bind_in, bind_udp_in};
use crate::services::dhcp::{Lease, Leases};
use crate::services::firewall::Firewall;
use crate::services::imds::Imds;
use crate::{ComputeError, InstanceSpec};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The host's links into the VPC namespaces.
pub(crate) const HOST_NET: &str = "100.127.0.0/16";

/// The VPC router's IPv6 address on each guest link: the guest's IPv6 default route goes
/// there.
pub const ROUTER6: &str = "fe80::1";

/// The metadata service's IPv6 address, AWS's.
pub const IMDS6: &str = "fd00:ec2::254";

/// An interface endpoint address served in a VPC's namespace.
struct Served {
    names: Vec<String>,
    acceptor: crate::services::endpoints::Acceptor,
    task: tokio::task::JoinHandle<()>,
}

struct Vpc {
    ns: String,
    /// The address of the namespace's end of the host link (the host's gateway into it).
    gateway: String,
    /// The host link's number, and the address of its host end: what the host sends from
    /// that address goes into this VPC ([`routes`]).
    link: u32,
    source: String,
    /// The CIDRs the host routes into it: the VPC's, and its subnets' outside that one.
    cidrs: Vec<Cidr>,
    /// Public addresses the host routes into this namespace.
    public: Vec<String>,
    /// The host's end of the link into the namespace.
    host_if: String,
    imds: Arc<Imds>,
    /// The metadata listener's task: its socket keeps the namespace alive until aborted.
    imds_task: tokio::task::JoinHandle<()>,
    /// The metadata's IPv6 listener (`[fd00:ec2::254]:80`), if the namespace has IPv6.
    imds6_task: Option<tokio::task::JoinHandle<()>>,
    /// The DNS resolver's task (likewise), and the public addresses and resource names it
    /// knows.
    dns_task: tokio::task::JoinHandle<()>,
    dns_known: Arc<Mutex<crate::services::dns::Known>>,
    /// The subnets' DHCP server (likewise), and its leases.
    dhcp: Arc<Leases>,
    dhcp_task: tokio::task::JoinHandle<()>,
    subnets: Vec<String>,
    /// Traffic mirror sessions' VXLAN devices here: (target, VXLAN id, UDP source port).
    mirror_devs: HashMap<String, (String, u32, u16)>,
    /// Interface endpoints served here, by address: the names their certificate holds, the
    /// acceptor (swapped in place when the names change), and the listener's task (its socket
    /// is the namespace's; its connections end with it).
    endpoints: HashMap<String, Served>,
}

impl Vpc {
    fn remove(self, prefix: &str) {
        for e in self.endpoints.values() {
            e.task.abort();
        }
        self.imds_task.abort();
        if let Some(t) = &self.imds6_task {
            t.abort();
        }
        self.dns_task.abort();
        self.dhcp_task.abort();
        for p in &self.public {
            ip_quiet(&["route", "delete", &format!("{p}/32")]);
        }
        let (priority, table) = (
            routes::rule_priority(prefix).to_string(),
            routes::table(prefix, self.link).to_string(),
        );
        ip_quiet(&[
            "rule",
            "delete",
            "priority",
            &priority,
            "from",
            &self.source,
            "lookup",
            &table,
        ]);
        // The link takes its routes, in the main table and its own, with it.
        ip_quiet(&["link", "delete", &self.host_if]);
        ip_quiet(&["netns", "delete", &self.ns]);
    }

    /// The `via … dev …` of a route into it.
    fn via(&self) -> String {
        format!("via {} dev {}", self.gateway, self.host_if)
    }
}

/// What a guest holds of its VPC, taken under the VPCs' lock when it boots, so that
/// nothing later (its shutdown, its cleanup) needs the lock to find it.
#[derive(Clone)]
pub(crate) struct GuestNet {
    pub(crate) imds: Arc<Imds>,
    pub(crate) leases: Arc<Leases>,
    pub(crate) vpc_ns: String,
    pub(crate) run: PathBuf,
}

/// The VPCs that have (or had) guests here, by id. Behind the host's lock, held only while
/// a VPC or subnet is set up or its rules change.
pub(crate) struct Vpcs {
    prefix: String,
    rt: tokio::runtime::Handle,
    map: HashMap<String, Vpc>,
    links: u32,
    /// Kumo's routes in the host's main table, as last written.
    main: BTreeMap<Cidr, MainRoute>,
    /// The active peering connections, and the ones whose link is made (both VPCs have a
    /// namespace here), with the link's number.
    peerings: Vec<crate::PeeringLink>,
    peer_links: HashMap<String, (crate::PeeringLink, u32)>,
    /// The data directory's certificate authority, which signs the endpoints' certificates,
    /// and Kumo's API listener, where their connections go.
    pub(crate) authority: Option<Arc<crate::services::endpoints::Authority>>,
    pub(crate) upstream: Option<std::net::SocketAddr>,
}

/// The links between peered VPC namespaces: a /30 each from here.
const PEER_NET: u32 = 0x647e_0000; // 100.126.0.0/16

impl Vpcs {
    pub(crate) fn new(prefix: &str, rt: tokio::runtime::Handle) -> Vpcs {
        Vpcs {
            prefix: prefix.to_string(),
            rt,
            map: HashMap::new(),
            links: 0,
            main: BTreeMap::new(),
            peerings: Vec::new(),
            peer_links: HashMap::new(),
            authority: None,
            upstream: None,
        }
    }

    /// What a boot needs first: the VPC's namespace and the subnet in it. Returns what the
    /// guest holds of them, with its run directory.
    pub(crate) fn prepare(
        &mut self,
        spec: &InstanceSpec,
        run: PathBuf,
    ) -> Result<GuestNet, ComputeError> {
        let n = &spec.net;
        let fresh = !self.map.contains_key(&n.vpc_id);
        let imds = self.ensure_vpc(&n.vpc_id, &n.vpc_cidr)?;
        self.ensure_subnet(&n.vpc_id, &n.subnet_id, &n.subnet_cidr)?;
        if fresh {
            // A peer's namespace may have waited for this one.
            if let Err(e) = self.sync_peerings() {
                tracing::warn!(vpc = %n.vpc_id, error = %e, "a peering link could not be made");
            }
        }
        let v = &self.map[&n.vpc_id];
        Ok(GuestNet {
            imds,
            leases: v.dhcp.clone(),
            vpc_ns: v.ns.clone(),
            run,
        })
    }

    /// A command's result, from whichever VPC's metadata service ran it.
    pub(crate) fn command_result(&self, command_id: &str) -> Option<crate::CommandResult> {
        self.map.values().find_map(|v| v.imds.result(command_id))
    }

    /// The name of a peering link's ends (one in each VPC's namespace).
    fn peer_dev(&self, pcx: &str) -> String {
        format!("{}p{}", self.prefix, short(pcx))
    }

    /// Replaces the active peering connections, and makes or removes their links.
    pub(crate) fn set_peerings(
        &mut self,
        links: &[crate::PeeringLink],
    ) -> Result<(), ComputeError> {
        self.peerings = links.to_vec();
        self.sync_peerings()
    }

    /// Makes the link of each active peering whose two VPCs have a namespace here (each end
    /// routes the other side's CIDRs through it), and removes the links of the others. A
    /// peering whose CIDRs changed is linked anew.
    fn sync_peerings(&mut self) -> Result<(), ComputeError> {
        let stale: Vec<String> = self
            .peer_links
            .iter()
            .filter(|(id, (made, _))| !self.peerings.iter().any(|p| p.id == **id && p == made))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some((made, _)) = self.peer_links.remove(&id) {
                // Deleting one end takes the other and both ends' routes with it.
                if let Some(v) = self.map.get(&made.a_vpc) {
                    ip_quiet(&["-n", &v.ns, "link", "delete", &self.peer_dev(&id)]);
                }
                tracing::info!(peering = %id, "VPC peering link removed");
            }
        }
        let mut result = Ok(());
        for p in self.peerings.clone() {
            if self.peer_links.contains_key(&p.id) {
                continue;
            }
            let (Some(a), Some(b)) = (self.map.get(&p.a_vpc), self.map.get(&p.b_vpc)) else {
                continue;
            };
            // The lowest number no link holds: 16,384 /30s in 100.126.0.0/16.
            let Some(n) = (0..16_384u32).find(|n| !self.peer_links.values().any(|(_, x)| x == n))
            else {
                tracing::error!(peering = %p.id, "no /30 left in 100.126.0.0/16 for a peering link");
                continue;
            };
            let base = PEER_NET + n * 4;
            let dev = self.peer_dev(&p.id);
            let (a_ns, b_ns) = (a.ns.clone(), b.ns.clone());
            let made = (|| {
                ip(&[
                    "link", "add", &dev, "netns", &a_ns, "type", "veth", "peer", "name", &dev,
                    "netns", &b_ns,
                ])?;
                for (ns, own, other, cidrs) in [
                    (&a_ns, base + 1, base + 2, &p.b_cidrs),
                    (&b_ns, base + 2, base + 1, &p.a_cidrs),
                ] {
                    let mut batch = vec![
                        format!("addr add {}/30 dev {dev}", net::addr(own)),
                        format!("link set {dev} up"),
                    ];
                    for c in cidrs {
                        batch.push(format!(
                            "route replace {c} via {} dev {dev}",
                            net::addr(other)
                        ));
                    }
                    net::ip_batch_in(ns, &batch)?;
                }
                Ok::<_, ComputeError>(())
            })();
            match made {
                Ok(()) => {
                    tracing::info!(peering = %p.id, a = %p.a_vpc, b = %p.b_vpc, "VPC peering link made");
                    self.peer_links.insert(p.id.clone(), (p, n));
                }
                Err(e) => {
                    ip_quiet(&["-n", &a_ns, "link", "delete", &dev]);
                    tracing::error!(peering = %p.id, error = %e, "cannot link the peered VPCs");
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Removes every VPC's namespace, link and routes.
    pub(crate) fn remove_all(&mut self) {
        self.peer_links.clear();
        self.peerings.clear();
        for (_, v) in self.map.drain() {
            v.remove(&self.prefix);
        }
        // The unreachable routes belong to no link.
        self.sync_main();
    }

    /// The host's address on its link into a VPC that has had a guest here: what is sent
    /// from it reaches that VPC's private addresses, whichever other VPC overlaps them.
    pub(crate) fn source(&self, vpc_id: &str) -> Option<String> {
        self.map.get(vpc_id).map(|v| v.source.clone())
    }

    /// Brings the host's main table to what the VPCs here call for ([`routes::main_routes`]).
    fn sync_main(&mut self) {
        let vpcs: Vec<(u32, Vec<Cidr>)> = self
            .map
            .values()
            .map(|v| (v.link, v.cidrs.clone()))
            .collect();
        let want = routes::main_routes(&vpcs);
        let via = |l: u32| self.map.values().find(|v| v.link == l).map(Vpc::via);
        let lines = routes::main_table_lines(&self.main, &want, routes::metric(&self.prefix), via);
        // Each line is tried: a deletion may find its route gone with its link. After a
        // failure every route is written again at the next sync (`replace` is idempotent).
        let wrote = ip_batch(&lines, true);
        if let Err(e) = &wrote {
            tracing::debug!(error = %e, "a host route into a VPC could not be written");
        }
        for (c, r) in &want {
            if *r == MainRoute::Unreachable && self.main.get(c) != Some(r) {
                tracing::warn!(cidr = %routes::show(*c), "two VPCs on this host overlap here: the host routes this CIDR into neither (use `kumo ssh`, or bind to the VPC link's own address)");
            }
        }
        self.main = if wrote.is_ok() { want } else { BTreeMap::new() };
    }

    /// Routes one more CIDR of a VPC from the host: in its own table at once, in the main
    /// table as [`routes::main_routes`] says.
    fn add_cidr(&mut self, vpc_id: &str, cidr: Cidr) -> Result<(), ComputeError> {
        let Some(v) = self.map.get_mut(vpc_id) else {
            return Ok(());
        };
        if v.cidrs.iter().any(|&c| routes::overlap(c, cidr)) {
            return Ok(());
        }
        let table = routes::table(&self.prefix, v.link).to_string();
        ip(&[
            "route",
            "replace",
            &routes::show(cidr),
            "via",
            &v.gateway,
            "dev",
            &v.host_if,
            "table",
            &table,
        ])?;
        v.cidrs.push(cidr);
        self.sync_main();
        Ok(())
    }

    fn vpc_ns(&self, vpc: &str) -> String {
        format!("{}v{}", self.prefix, short(vpc))
    }

    fn ensure_vpc(&mut self, vpc_id: &str, cidr: &str) -> Result<Arc<Imds>, ComputeError> {
        if let Some(v) = self.map.get(vpc_id) {
            return Ok(v.imds.clone());
        }
        let ns = self.vpc_ns(vpc_id);
        ip_quiet(&["netns", "delete", &ns]);
        ip(&["netns", "add", &ns])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "addr", "add", "169.254.169.254/32", "dev", "lo"])?;
        // No rules yet: nothing is forwarded until the security groups arrive.
        apply_rules(&ns, &Firewall::default())?;
        net::run(
            "ip",
            &[
                "netns",
                "exec",
                &ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.default.forwarding=1",
            ],
        )?;
        // The host's way in: a /30 from 100.127.0.0/16 per VPC, and a route for its CIDR.
        let n = self.links;
        self.links += 1;
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
        // What the host sends from its end's own address goes into this VPC, whatever the
        // main table says ([`routes`]).
        let source = net::addr(base + 1);
        let (priority, table) = (
            routes::rule_priority(&self.prefix).to_string(),
            routes::table(&self.prefix, n).to_string(),
        );
        ip_quiet(&[
            "rule", "delete", "priority", &priority, "from", &source, "lookup", &table,
        ]);
        ip(&[
            "rule", "add", "priority", &priority, "from", &source, "lookup", &table,
        ])?;
        let imds = Arc::new(Imds::default());
        let listener = bind_in(&ns, "169.254.169.254:80")?;
        let imds_task = {
            let _enter = self.rt.enter();
            let l = tokio::net::TcpListener::from_std(listener)
                .map_err(|e| ComputeError::io("IMDS listener", e))?;
            self.rt.spawn(imds.clone().serve(l))
        };
        // The same service on AWS's IPv6 address for it, for instances with HttpProtocolIpv6.
        let imds6_task = match ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{IMDS6}/128"),
            "dev",
            "lo",
            "nodad",
        ])
        .and_then(|_| bind_in(&ns, &format!("[{IMDS6}]:80")))
        {
            Ok(l) => {
                let _enter = self.rt.enter();
                tokio::net::TcpListener::from_std(l)
                    .ok()
                    .map(|l| self.rt.spawn(imds.clone().serve(l)))
            }
            Err(e) => {
                tracing::warn!(vpc = vpc_id, error = %e, "no IPv6 metadata endpoint in this VPC");
                None
            }
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
        let dns_known: Arc<Mutex<crate::services::dns::Known>> = Default::default();
        let known = dns_known.clone();
        let dns_task = self.serve_udp(&ns, &format!("{dns_addr}:53"), move |q, peer| {
            crate::services::dns::answer(q, &lock(&known)).map(|r| (r, peer))
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
        let c = net::parse_cidr(cidr)
            .ok_or_else(|| ComputeError::Guest(format!("bad VPC CIDR {cidr}")))?;
        self.map.insert(
            vpc_id.to_string(),
            Vpc {
                ns,
                gateway: net::addr(base + 2),
                link: n,
                source,
                cidrs: Vec::new(),
                public: Vec::new(),
                host_if,
                imds: imds.clone(),
                imds_task,
                imds6_task,
                dns_task,
                dns_known,
                dhcp,
                dhcp_task,
                subnets: Vec::new(),
                mirror_devs: HashMap::new(),
                endpoints: HashMap::new(),
            },
        );
        self.add_cidr(vpc_id, c)?;
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
    pub(crate) fn ensure_subnet(
        &mut self,
        vpc_id: &str,
        subnet_id: &str,
        cidr: &str,
    ) -> Result<(), ComputeError> {
        let vpc = self
            .map
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
        // A subnet of a secondary block is outside the VPC's own CIDR.
        let c =
            net::parse_cidr(cidr).ok_or_else(|| ComputeError::Guest(format!("bad CIDR {cidr}")))?;
        self.add_cidr(vpc_id, c)
    }

    pub(crate) fn set_firewall(&mut self, vpc_id: &str, fw: &Firewall) -> Result<(), ComputeError> {
        // Each peering leaves by its link, where the link is made.
        let mut fw = fw.clone();
        for p in &mut fw.peerings {
            p.dev = if self.peer_links.contains_key(&p.id) {
                self.peer_dev(&p.id)
            } else {
                String::new()
            };
        }
        let Some(v) = self.map.get_mut(vpc_id) else {
            // No instance ever ran in this VPC: nothing to guard.
            return Ok(());
        };
        sync_mirrors(&self.prefix, v, &mut fw);
        // The rules first, the endpoints' own among them: a listener is never up without the
        // groups and ACLs that guard it (an address not served yet is harmless in them).
        apply_rules(&v.ns, &fw)?;
        let served = match (&self.authority, self.upstream) {
            (Some(a), Some(up)) if up.is_ipv4() => {
                sync_endpoints(&self.rt, a, up, v, &fw.endpoints)
            }
            (Some(_), Some(_)) if !fw.endpoints.is_empty() => {
                tracing::error!("the API listens on IPv6 only: VPC endpoints are not served (listen on an IPv4 address)");
                Vec::new()
            }
            _ => Vec::new(),
        };
        // The resolver answers only the endpoints served.
        fw.endpoints.retain(|e| served.contains(&e.addr));
        let fw = &fw;
        // The host reaches the public addresses through the VPC that holds them. Only what
        // changed is routed anew, in one `ip` process: a render that moved no address (a
        // rule change) spawns none.
        let want: Vec<String> = fw.public.iter().map(|(p, _)| p.clone()).collect();
        let gone: Vec<String> = v
            .public
            .iter()
            .filter(|p| !want.contains(p))
            .map(|p| format!("route delete {p}/32 dev {}", v.host_if))
            .collect();
        if let Err(e) = ip_batch(&gone, true) {
            tracing::debug!(error = %e, "a public address's old route was already gone");
        }
        let new: Vec<String> = want
            .iter()
            .filter(|p| !v.public.contains(p))
            .map(|p| format!("route replace {p}/32 via {} dev {}", v.gateway, v.host_if))
            .collect();
        ip_batch(&new, false)?;
        v.public = want;
        *lock(&v.dns_known) = crate::services::dns::Known {
            public: fw.public.iter().chain(&fw.peer_public).cloned().collect(),
            names: fw.names.clone(),
            endpoints: endpoint_names(&fw.endpoints),
            names6: fw
                .names6
                .iter()
                .filter_map(|(id, a)| Some((id.clone(), a.parse().ok()?)))
                .collect(),
        };
        Ok(())
    }
}

/// What the resolver answers for the endpoints: each name with every address it leads to.
fn endpoint_names(
    endpoints: &[crate::services::firewall::Endpoint],
) -> Vec<(String, std::net::Ipv4Addr)> {
    let mut out = Vec::new();
    for e in endpoints {
        let Ok(addr) = e.addr.parse() else { continue };
        let private = e.private_dns.then_some(&e.private_name);
        for n in e.names.iter().chain(private) {
            out.push((n.to_ascii_lowercase(), addr));
        }
    }
    out
}

/// Brings a VPC's served endpoints to `want`: each address on the namespace's loopback with a
/// TLS listener on 443 whose certificate holds the endpoint's names (a new certificate swapped
/// into the running listener when they change), and the ones no longer wanted removed with
/// their connections. Returns the addresses served; one that could not be is logged, left
/// out, and tried again at the next sync.
fn sync_endpoints(
    rt: &tokio::runtime::Handle,
    authority: &Arc<crate::services::endpoints::Authority>,
    upstream: std::net::SocketAddr,
    v: &mut Vpc,
    want: &[crate::services::firewall::Endpoint],
) -> Vec<String> {
    let names_of = |e: &crate::services::firewall::Endpoint| -> Vec<String> {
        let mut n = e.names.clone();
        n.push(e.private_name.clone());
        n
    };
    let gone: Vec<String> = v
        .endpoints
        .keys()
        .filter(|addr| !want.iter().any(|e| e.addr == **addr))
        .cloned()
        .collect();
    for addr in gone {
        if let Some(s) = v.endpoints.remove(&addr) {
            s.task.abort();
        }
        ip_quiet(&[
            "-n",
            &v.ns,
            "addr",
            "delete",
            &format!("{addr}/32"),
            "dev",
            "lo",
        ]);
    }
    let mut served = Vec::new();
    for e in want {
        let names = names_of(e);
        if let Some(s) = v.endpoints.get_mut(&e.addr) {
            if s.names != names {
                match authority.acceptor(&names) {
                    Ok(a) => {
                        *s.acceptor.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(a);
                        s.names = names;
                    }
                    Err(x) => {
                        tracing::error!(address = %e.addr, error = %x, "cannot renew a VPC endpoint's certificate")
                    }
                }
            }
            served.push(e.addr.clone());
            continue;
        }
        let made = (|| {
            let acceptor = authority
                .acceptor(&names)
                .map_err(|x| ComputeError::io("an endpoint's certificate", x))?;
            ip(&[
                "-n",
                &v.ns,
                "addr",
                "replace",
                &format!("{}/32", e.addr),
                "dev",
                "lo",
            ])?;
            // The address's last listener may still be closing (its task was just aborted).
            let mut tries = 0;
            let listener = loop {
                match bind_in(&v.ns, &format!("{}:443", e.addr)) {
                    Ok(l) => break l,
                    Err(x) if tries < 5 => {
                        tries += 1;
                        tracing::debug!(address = %e.addr, error = %x, "binding a VPC endpoint again");
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    Err(x) => return Err(x),
                }
            };
            let _enter = rt.enter();
            let l = tokio::net::TcpListener::from_std(listener)
                .map_err(|x| ComputeError::io("an endpoint's listener", x))?;
            let acceptor: crate::services::endpoints::Acceptor =
                Arc::new(Mutex::new(Arc::new(acceptor)));
            let task = rt.spawn(crate::services::endpoints::serve(
                l,
                acceptor.clone(),
                upstream,
            ));
            Ok::<_, ComputeError>(Served {
                names: names.clone(),
                acceptor,
                task,
            })
        })();
        match made {
            Ok(s) => {
                tracing::info!(address = %e.addr, names = ?names, "VPC endpoint served");
                v.endpoints.insert(e.addr.clone(), s);
                served.push(e.addr.clone());
            }
            Err(x) => {
                ip_quiet(&[
                    "-n",
                    &v.ns,
                    "addr",
                    "delete",
                    &format!("{}/32", e.addr),
                    "dev",
                    "lo",
                ]);
                tracing::error!(address = %e.addr, error = %x, "cannot serve a VPC endpoint");
            }
        }
    }
    served
}

/// Brings a VPC's traffic mirror devices to its sessions: one VXLAN device per session
/// (to the target's address, under the session's id, on a UDP port of its own),
/// made or remade when its target or id changes and removed with the session; then names
/// each session's device and port in `fw`. A session whose device cannot be made is left
/// out of the rules (logged), so the rest still load.
fn sync_mirrors(prefix: &str, v: &mut Vpc, fw: &mut Firewall) {
    let want: HashMap<String, (String, u32)> = fw
        .mirrors
        .iter()
        .flat_map(|m| &m.sessions)
        .map(|s| (s.id.clone(), (s.target.clone(), s.vni)))
        .collect();
    let dev = |id: &str| format!("{prefix}m{}", short(id));
    let stale: Vec<String> = v
        .mirror_devs
        .iter()
        .filter(|(id, (t, vni, _))| want.get(*id) != Some(&(t.clone(), *vni)))
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        ip_quiet(&["-n", &v.ns, "link", "delete", &dev(&id)]);
        v.mirror_devs.remove(&id);
    }
    for (id, (target, vni)) in &want {
        if v.mirror_devs.contains_key(id) {
            continue;
        }
        let used: Vec<u16> = v.mirror_devs.values().map(|x| x.2).collect();
        let Some(port) = (40000..60000u16).find(|p| !used.contains(p)) else {
            tracing::error!(session = %id, "no UDP source port left for a mirror session");
            continue;
        };
        let d = dev(id);
        ip_quiet(&["-n", &v.ns, "link", "delete", &d]);
        let made = ip(&[
            "-n",
            &v.ns,
            "link",
            "add",
            &d,
            "type",
            "vxlan",
            "id",
            &vni.to_string(),
            "remote",
            target,
            "local",
            &v.gateway,
            // Its own port, not 4789: two sessions may carry one VXLAN id, and the kernel
            // takes one device per (id, port) in a namespace. nftables sends the copies on to
            // 4789 (`firewall::mirror_table`).
            "dstport",
            &port.to_string(),
            "srcport",
            &port.to_string(),
            &(port + 1).to_string(),
        ])
        .and_then(|_| {
            // No IPv6 or ARP chatter into the tunnel: only the copies go there.
            net::run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &v.ns,
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{d}.disable_ipv6=1"),
                ],
            )?;
            net::ip_batch_in(
                &v.ns,
                &[
                    format!("link set {d} arp off up"),
                    format!(
                        "neigh replace {} lladdr 02:00:00:00:4d:01 dev {d} nud permanent",
                        crate::services::firewall::MIRROR_NEXT_HOP
                    ),
                ],
            )
        });
        match made {
            Ok(_) => {
                v.mirror_devs
                    .insert(id.clone(), (target.clone(), *vni, port));
            }
            Err(e) => {
                ip_quiet(&["-n", &v.ns, "link", "delete", &d]);
                tracing::error!(session = %id, error = %e, "cannot make a traffic mirror session's VXLAN device");
            }
        }
    }
    for s in fw.mirrors.iter_mut().flat_map(|m| m.sessions.iter_mut()) {
        match v.mirror_devs.get(&s.id) {
            Some((_, _, port)) => {
                s.dev = dev(&s.id);
                s.port = *port;
            }
            None => s.dev = String::new(),
        }
    }
}

/// Makes the VPC's end of a guest's link (a veth or a tap) a routed one. Routed, not bridged:
/// the VPC side answers ARP for every other address (proxy ARP) and routes each of the
/// interface's addresses and prefixes to the link, answering from the subnet's gateway, so all
/// traffic between instances crosses the VPC namespace's forward path, where the security
/// groups' rules sit. A permanent neighbour entry lets the DHCP server's unicast replies reach
/// a guest that has no address yet.
pub(crate) fn route_guest(
    vpc_ns: &str,
    link: &str,
    n: &crate::NetSpec,
) -> Result<(), ComputeError> {
    let gw = net::gateway(&n.subnet_cidr)
        .ok_or_else(|| ComputeError::Guest(format!("bad subnet CIDR {}", n.subnet_cidr)))?;
    // Proxy ARP, written from a thread inside the namespace (its /proc/sys/net is the
    // namespace's), then the link's routes in one `ip` process: a boot spawns one process for
    // this, not one per address.
    let knob = format!("/proc/sys/net/ipv4/conf/{link}/proxy_arp");
    super::in_netns(vpc_ns, "turn on proxy ARP", move || {
        std::fs::write(&knob, "1")
    })?;
    // The VPC router's IPv6 address on every link, where the guest's agent points its
    // default IPv6 route (its addresses are routed to the link as /128 prefixes).
    let mut lines = vec![
        format!("link set {link} up"),
        format!("addr replace {ROUTER6}/64 dev {link} nodad"),
    ];
    for a in std::iter::once(&n.private_ip).chain(&n.secondary_ips) {
        lines.push(format!("route replace {a}/32 dev {link} src {gw}"));
    }
    for p in &n.prefixes {
        lines.push(format!("route replace {p} dev {link}"));
    }
    lines.push(format!(
        "neigh replace {} lladdr {} dev {link} nud permanent",
        n.private_ip, n.mac
    ));
    net::ip_batch_in(vpc_ns, &lines)
}

/// Routes a guest's link in the VPC namespace `vpc_ns` from its addresses `n` to the
/// secondaries and prefixes given: the ones it gave up away (a route already gone, because
/// the address moved to another instance, is fine), then the new ones to the link.
pub(crate) fn reroute(
    vpc_ns: &str,
    link: &str,
    n: &crate::NetSpec,
    secondary_ips: &[String],
    prefixes: &[String],
) -> Result<(), ComputeError> {
    let gw = net::gateway(&n.subnet_cidr)
        .ok_or_else(|| ComputeError::Guest(format!("bad subnet CIDR {}", n.subnet_cidr)))?;
    let mut gone = Vec::new();
    for a in n
        .secondary_ips
        .iter()
        .filter(|a| !secondary_ips.contains(a))
    {
        gone.push(format!("route delete {a}/32 dev {link}"));
    }
    for p in n.prefixes.iter().filter(|p| !prefixes.contains(p)) {
        gone.push(format!("route delete {p} dev {link}"));
    }
    net::ip_batch_in_gone(vpc_ns, &gone);
    let mut new = Vec::new();
    for a in secondary_ips
        .iter()
        .filter(|a| !n.secondary_ips.contains(a))
    {
        new.push(format!("route replace {a}/32 dev {link} src {gw}"));
    }
    for p in prefixes.iter().filter(|p| !n.prefixes.contains(p)) {
        new.push(format!("route replace {p} dev {link}"));
    }
    net::ip_batch_in(vpc_ns, &new)
}

/// What the subnet's DHCP server gives an instance's interface.
pub(crate) fn lease_for(spec: &InstanceSpec) -> Result<Lease, ComputeError> {
    let n = &spec.net;
    let bad = |what: &str| ComputeError::Guest(format!("bad {what} in the instance's network"));
    let gw = net::gateway(&n.subnet_cidr).ok_or_else(|| bad("subnet CIDR"))?;
    let (_, len) = net::parse_cidr(&n.subnet_cidr).ok_or_else(|| bad("subnet CIDR"))?;
    let vpc_dns = net::vpc_dns(&n.vpc_cidr).ok_or_else(|| bad("VPC CIDR"))?;
    let (host, host_domain) = spec
        .hostname
        .split_once('.')
        .unwrap_or((spec.hostname.as_str(), ""));
    // The set's domain name (option 15), as AWS's DHCP gives it; the host name's domain for
    // a spec from before sets.
    let search = if spec.dhcp.explicit {
        spec.dhcp.search.clone()
    } else {
        vec![host_domain.to_string()]
    };
    Ok(Lease {
        ip: n.private_ip.parse().map_err(|_| bad("address"))?,
        prefix_len: len,
        router: gw.parse().map_err(|_| bad("gateway"))?,
        dns: spec.dhcp.resolvers(Some(vpc_dns)),
        hostname: host.to_string(),
        domain: search.first().cloned().unwrap_or_default(),
        search,
        ntp: spec
            .dhcp
            .ntp_servers
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
